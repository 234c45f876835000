package report

// fleetTemplate is the fleet report page; its stylesheet is the run
// report's (fleetCSS), plus the few rules only this page needs.
const fleetTemplate = `<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="meshroll">
<title>FleetUpgrade {{.FU.Name}} to {{.FU.Spec.Version}} ({{.FU.Status.Phase}})</title>
<style>{{.CSS}}
.tl svg { display: block; width: 100%; height: auto; }
.tl .stage { fill: #f8fafc; } .tl .stage.Halted { fill: #fef2f2; } .tl .stage.Succeeded { fill: #f0fdf4; }
.tl text { fill: #374151; font-size: 12px; font-family: system-ui, -apple-system, "Segoe UI", Roboto, Arial, sans-serif; }
.tl text.stage-name { font-weight: 650; fill: #111827; }
.tl .up.ok, .tl .up.run { fill: #2563eb; } .tl .soak.ok { fill: #15803d; } .tl .soak.run { fill: #60a5fa; }
.tl .up.bad, .tl .soak.bad { fill: #dc2626; } .tl .up.warn, .tl .soak.warn { fill: #f59e0b; } .tl .up.idle { fill: #9ca3af; }
.tl .grid { stroke: #e6e9ef; }
.mix { display: flex; height: 14px; border-radius: 4px; overflow: hidden; background: var(--idle-bg); min-width: 200px; }
</style>
</head>
<body>
<main>
<header>
  <div>
    <h1>FleetUpgrade {{.FU.Name}}</h1>
    <p class="sub">to Istio <span class="mono">{{.FU.Spec.Version}}</span> · {{len .FU.Spec.Stages}} stage(s) · {{len .FU.Status.Clusters}} cluster(s) · at most {{if .FU.Spec.MaxConcurrent}}{{.FU.Spec.MaxConcurrent}}{{else}}1{{end}} at once · failure budget {{.FU.Spec.MaxFailedClusters}}</p>
  </div>
  <span class="badge big {{.Class}}" id="phase">{{.FU.Status.Phase}}</span>
</header>
{{with .FU.Status.Message}}<p class="message {{$.Class}}" id="why">{{.}}</p>{{end}}

<div class="cards">
  <div class="card"><div class="label">Phase</div><div class="value {{.Class}}">{{.FU.Status.Phase}}</div><div class="note">{{with .FU.Status.CurrentStage}}stage {{.}}{{else}}—{{end}}</div></div>
  <div class="card"><div class="label">Succeeded</div><div class="value ok">{{index .Counts "Succeeded"}}</div><div class="note">of {{len .FU.Status.Clusters}} clusters</div></div>
  <div class="card"><div class="label">Failed</div><div class="value {{if .Failed}}bad{{else}}idle{{end}}">{{len .Failed}}</div><div class="note">budget {{.FU.Spec.MaxFailedClusters}}</div></div>
  <div class="card"><div class="label">Rolled back</div><div class="value {{if index .Counts "RolledBack"}}warn{{else}}idle{{end}}">{{index .Counts "RolledBack"}}</div></div>
  <div class="card"><div class="label">Untouched</div><div class="value idle">{{index .Counts "Pending"}}</div><div class="note">never started</div></div>
  <div class="card"><div class="label">Duration</div><div class="value">{{dur .Duration}}</div><div class="note">{{with .FU.Status.StartedAt}}since {{clock .Time}} UTC{{end}}</div></div>
</div>

{{if .Failed}}<section class="panel" id="halted">
  <h2>What failed</h2>
  <table><thead><tr><th>Cluster</th><th>Stage</th><th>Member phase</th><th>Why</th></tr></thead>
  <tbody>{{range .Failed}}<tr><td class="mono">{{.Name}}</td><td>{{.Stage}}</td><td><span class="badge bad">{{.MemberPhase}}</span></td><td class="msg">{{.Message}}</td></tr>{{end}}</tbody></table>
</section>{{end}}

<section class="panel tl" id="timeline">
  <h2>Clusters × stages</h2>
  {{with .Timeline}}<svg viewBox="0 0 {{.W}} {{.H}}" role="img" aria-label="Each cluster's upgrade and soak over time, by stage">
    {{range .Ticks}}<line class="grid" x1="{{.Pos}}" x2="{{.Pos}}" y1="24" y2="{{$.Timeline.H}}"/><text x="{{.Pos}}" y="16" text-anchor="{{.Anchor}}">{{.Label}}</text>{{end}}
    {{range .Stages}}<rect class="stage {{.State}}" x="0" y="{{.Y}}" width="{{$.Timeline.W}}" height="{{.H}}"/>
    <text class="stage-name" x="8" y="{{.Y}}" dy="15">stage {{.Name}} · {{.State}}</text>{{end}}
    {{range .Rows}}<text x="24" y="{{.Y}}" dy="18">{{.Name}}{{if .Canary}} (canary){{end}}</text>
    {{if .UpW}}<rect class="up {{.Class}}" x="{{.UpX}}" y="{{.Y}}" height="16" width="{{.UpW}}" transform="translate(0,5)"><title>{{.Title}}</title></rect>{{end}}
    {{if .SoakW}}<rect class="soak {{.Class}}" x="{{.SoakX}}" y="{{.Y}}" height="16" width="{{.SoakW}}" transform="translate(0,5)"><title>{{.Title}}</title></rect>{{end}}
    {{end}}
  </svg>{{end}}
  <div class="legend"><span><span class="sw" style="background: #2563eb"></span>member upgrade</span><span><span class="sw" style="background: #15803d"></span>soak held</span>
  <span><span class="sw" style="background: #dc2626"></span>failed</span><span><span class="sw" style="background: #f59e0b"></span>rolled back</span><span>time in UTC</span></div>
</section>

<div class="grid2">
<section class="panel" id="mix">
  <h2>Proxies per version, by cluster</h2>
  <table><thead><tr><th>Cluster</th><th>Stage</th><th>Mix</th><th class="num">Pods</th></tr></thead><tbody>
  {{range .Mix}}<tr><td class="mono">{{.Cluster}}</td><td>{{.Stage}}</td><td><div class="mix">{{range .Parts}}<span style="width: {{printf "%.1f" .Percent}}%; background: {{.Color}}" title="{{.Key}}: {{.Pods}}"></span>{{end}}</div></td><td class="num">{{.Total}}</td></tr>{{end}}
  </tbody></table>
  <div class="legend">{{range .MixKeys}}<span><span class="sw" style="background: {{.Color}}"></span><span class="mono">{{.Key}}</span></span>{{end}}<span>when last seen</span></div>
</section>
<section class="panel" id="gates">
  <h2>Gate evidence</h2>
  {{if .Gates}}<table><thead><tr><th>Cluster</th><th>Gate</th><th>Result</th><th>Evidence</th></tr></thead><tbody>
  {{range .Gates}}<tr><td class="mono">{{.Cluster}}</td><td>{{.Gate.Name}}</td><td>{{if .Gate.Passed}}<span class="badge ok">pass</span>{{else}}<span class="badge bad">fail</span>{{end}}</td>
  <td><span class="mono msg">{{.Gate.Evidence}}</span><div class="note sub" style="font-size: 12px">{{ts .Gate.At.Time}}</div></td></tr>{{end}}
  </tbody></table>{{else}}<p class="empty">No gate has run yet.</p>{{end}}
</section>
</div>

<section class="panel" id="history">
  <h2>History</h2>
  <ul class="timeline">{{range .FU.Status.History}}<li class="{{if eq .Type "halt"}}bad{{else if eq .Type "rollback"}}warn{{else}}ok{{end}}"><span class="when">{{clock .At.Time}}</span><span class="what">{{.Type}}</span>{{with .Stage}}<span class="wave">{{.}}</span>{{end}}{{with .Cluster}}<span class="wave mono">{{.}}</span>{{end}}<span class="msg">{{.Message}}</span></li>{{end}}</ul>
</section>
<footer>generated by meshroll at {{ts .Generated}}</footer>
</main>
</body>
</html>
`

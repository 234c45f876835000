package check

import (
	"strings"

	"github.com/robfig/cron/v3"
)

// cronSchedule reports CronJobs whose schedule Kubernetes cannot parse (the
// API server rejects them) or that set a time zone inside the schedule
// (TZ=… is unsupported since Kubernetes 1.27; use spec.timeZone).
type cronSchedule struct{}

// Name implements Checker.
func (cronSchedule) Name() string { return "cron-schedule" }

// Code implements Checker.
func (cronSchedule) Code() string { return "MV028" }

// Run implements Checker.
func (c cronSchedule) Run(in *Input) []Finding {
	// The same parser options the CronJob controller uses: five fields and
	// descriptors such as @hourly.
	parser := cron.NewParser(cron.Minute | cron.Hour | cron.Dom | cron.Month | cron.Dow | cron.Descriptor)
	var out []Finding
	for _, u := range in.Objects {
		if !is(u, "batch", "CronJob") {
			continue
		}
		sched, _, _ := nestedStr(u.Object, "spec", "schedule")
		if strings.HasPrefix(sched, "TZ=") || strings.HasPrefix(sched, "CRON_TZ=") {
			out = append(out, finding(c, Error, ref(u), "schedule "+quote(sched)+" embeds a time zone",
				"move the zone to spec.timeZone and keep a plain five-field schedule"))
			continue
		}
		if _, err := parser.Parse(sched); err != nil {
			out = append(out, finding(c, Error, ref(u), "schedule "+quote(sched)+" does not parse: "+err.Error(),
				"use five fields: minute hour day-of-month month day-of-week (or @hourly, @daily, …)"))
		}
	}
	return out
}

package vmagent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"text/template"
	"time"
)

// Agent keeps one VM's sidecar on its assignment.
type Agent struct {
	cfg     Config
	layout  layout
	fetch   *fetcher
	tmpl    *template.Template
	entry   *entryClient
	service Service
	health  checker
	log     *slog.Logger
	now     func() time.Time
	// Version is the agent's own version, reported on the WorkloadEntry.
	version string

	journal  Journal
	override string
	retries  int
	nextTry  time.Time
	reported map[string]string
	lastBeat time.Time
}

// New builds an agent from a validated configuration.
func New(cfg Config, version string, log *slog.Logger) (*Agent, error) {
	cfg = cfg.withDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("invalid agent config: %w", err)
	}
	tmpl, err := ParseURLTemplate(cfg.ArtifactURL)
	if err != nil {
		return nil, err
	}
	a := &Agent{
		cfg: cfg, layout: layout{cfg.Root}, tmpl: tmpl, service: NewService(cfg), log: log,
		now: time.Now, version: version,
		fetch: &fetcher{http: &http.Client{Timeout: 10 * time.Minute}, maxBytes: cfg.MaxArtifactBytes},
		health: checker{http: &http.Client{Timeout: 2 * time.Second}, readyURL: cfg.ReadyURL,
			versionURL: cfg.VersionURL, timeout: time.Duration(cfg.Ready)},
	}
	if cfg.PublicKey != "" {
		if a.fetch.key, err = parsePublicKey(cfg.PublicKey); err != nil {
			return nil, err
		}
	}
	if cfg.APIServer != "" {
		if a.entry, err = newEntryClient(cfg); err != nil {
			return nil, err
		}
	}
	return a, nil
}

// Run resumes whatever the journal says was in flight, then reconciles every
// Poll until ctx ends.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	t := time.NewTicker(time.Duration(a.cfg.Poll))
	defer t.Stop()
	for {
		a.Once(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Start prepares the directory and finishes an attempt a kill interrupted:
// before the switch it is simply started over later; from the switch on, the
// switch and restart are redone and the target health-checked (rolled back
// on failure); an interrupted rollback is redone.
func (a *Agent) Start(ctx context.Context) error {
	if err := a.layout.ensure(); err != nil {
		return err
	}
	j, err := ReadJournal(a.layout.journal())
	if err != nil {
		return err
	}
	a.journal = j
	switch j.Step {
	case StepSwitch:
		a.log.Info("resuming an interrupted switch", "from", j.From, "to", j.To)
		a.activate(ctx, j.From, j.To)
	case StepRollback:
		a.log.Info("resuming an interrupted rollback", "from", j.To, "to", j.From)
		a.rollback(ctx, j.From, j.To, errors.New(j.Error))
	case StepPrepare:
		a.setIdle(Phase(""), Assignment{}, "")
	}
	if cur, _ := a.layout.Current(); !cur.IsZero() {
		if err := a.service.Ensure(ctx); err != nil {
			a.log.Error("sidecar not running and could not be started", "err", err)
		}
	}
	return nil
}

// Once reads the assignment, acts on it and reports. Errors are recorded in
// the journal and reported; they never stop the agent.
func (a *Agent) Once(ctx context.Context) {
	want, err := a.desired(ctx)
	if err != nil {
		a.log.Warn("assignment unknown", "err", err)
	} else {
		a.reconcile(ctx, want)
	}
	a.report(ctx)
}

// desired is the override file's assignment when there is one, else the
// WorkloadEntry's.
func (a *Agent) desired(ctx context.Context) (Assignment, error) {
	o, err := ReadOverride(a.cfg.OverrideFile)
	if err != nil {
		return Assignment{}, err
	}
	a.override = o.Reason
	if !o.IsZero() || a.entry == nil {
		return o, nil
	}
	ann, err := a.entry.Get(ctx)
	if err != nil {
		return Assignment{}, err
	}
	return FromAnnotations(ann), nil
}

func (a *Agent) reconcile(ctx context.Context, want Assignment) {
	cur, err := a.layout.Current()
	if err != nil {
		a.setIdle(PhaseFailed, Assignment{}, err.Error())
		return
	}
	switch {
	case want.IsZero():
		return
	case want == cur:
		if a.journal.Phase != PhaseReady || a.journal.GaveUp != (Assignment{}) {
			a.setIdle(PhaseReady, Assignment{}, "")
		}
		return
	case want == a.journal.GaveUp:
		return // failed for good; waits for another assignment
	case a.now().Before(a.nextTry) && want == a.journal.To:
		return
	}
	if err := want.Validate(); err != nil {
		a.giveUp(PhaseFailed, want, fmt.Errorf("refused assignment %s (nothing changed on this VM): %w", want, err))
		return
	}
	url, err := a.artifactURL(want)
	if err != nil {
		a.giveUp(PhaseFailed, want, err)
		return
	}
	a.write(Journal{Step: StepPrepare, From: cur, To: want, Phase: PhaseUpgrading})
	if err := a.prepare(ctx, want, url); err != nil {
		if IsPermanent(err) {
			a.giveUp(PhaseFailed, want, fmt.Errorf("upgrade to %s failed, %s still serving: %w", want, describe(cur), err))
			return
		}
		a.retries++
		a.nextTry = a.now().Add(min(time.Duration(a.cfg.Poll)<<min(a.retries, 6), time.Minute))
		a.write(Journal{Step: StepIdle, From: cur, To: want, Phase: PhaseRetrying,
			Error: fmt.Sprintf("upgrade to %s not ready, %s still serving, retrying: %v", want, describe(cur), err)})
		return
	}
	a.retries = 0
	a.activate(ctx, cur, want)
}

func describe(a Assignment) string {
	if a.IsZero() {
		return "no version"
	}
	return a.String()
}

func (a *Agent) artifactURL(want Assignment) (string, error) {
	var b strings.Builder
	if err := a.tmpl.Execute(&b, URLVars{Version: want.Version, Revision: want.Revision, OS: runtime.GOOS, Arch: runtime.GOARCH}); err != nil {
		return "", fmt.Errorf("failed to render artifactURL for %s: %w", want, err)
	}
	return b.String(), nil
}

// prepare downloads, verifies and installs a version beside the others.
func (a *Agent) prepare(ctx context.Context, want Assignment, url string) error {
	if a.layout.Installed(want) {
		return nil
	}
	art, err := a.fetch.Fetch(ctx, url, a.layout.downloads())
	if err != nil {
		return err
	}
	base, err := LoadBase(a.cfg.BaseDir)
	if err != nil {
		return permanent(err)
	}
	files, err := base.Render(a.cfg.BaseDir, want.Revision)
	if err != nil {
		return permanent(err)
	}
	return a.layout.Install(want, art.Path, a.cfg.MaxArtifactBytes, files)
}

// activate switches to want and health-checks it; on failure it rolls back
// to from.
func (a *Agent) activate(ctx context.Context, from, want Assignment) {
	a.write(Journal{Step: StepSwitch, From: from, To: want, Phase: PhaseUpgrading})
	err := a.layout.Switch(want)
	if err == nil {
		err = a.service.Restart(ctx)
	}
	if err == nil {
		err = a.health.Check(ctx, want.Version)
	}
	if err != nil {
		a.rollback(ctx, from, want, err)
		return
	}
	a.setIdle(PhaseReady, Assignment{}, "")
	if err := a.layout.Prune(a.cfg.Retain, want, from); err != nil {
		a.log.Warn("old versions not pruned", "err", err)
	}
	a.log.Info("sidecar upgraded", "from", from, "to", want)
}

// rollback goes back to from after want failed with why.
func (a *Agent) rollback(ctx context.Context, from, want Assignment, why error) {
	if from.IsZero() {
		a.giveUp(PhaseFailed, want, fmt.Errorf("%s failed and there is no previous version to go back to: %w", want, why))
		return
	}
	a.write(Journal{Step: StepRollback, From: from, To: want, Phase: PhaseUpgrading, Error: why.Error()})
	err := a.layout.Switch(from)
	if err == nil {
		err = a.service.Restart(ctx)
	}
	if err == nil {
		err = a.health.Check(ctx, from.Version)
	}
	if err != nil {
		a.giveUp(PhaseFailed, want, fmt.Errorf("%s failed (%v) and rollback to %s failed too: %w", want, why, from, err))
		return
	}
	// A version that failed its health check is no rollback target: drop
	// it, so a retry after the mirror is fixed downloads it again.
	if err := os.RemoveAll(a.layout.slot(want)); err != nil {
		a.log.Warn("failed version not removed", "target", want, "err", err)
	}
	a.giveUp(PhaseRolledBack, want, fmt.Errorf("%s failed, rolled back to %s: %w", want, from, why))
}

func (a *Agent) giveUp(p Phase, want Assignment, err error) {
	a.log.Error("upgrade failed", "target", want, "phase", p, "err", err)
	a.setIdle(p, want, err.Error())
}

func (a *Agent) setIdle(p Phase, gaveUp Assignment, msg string) {
	if p == "" {
		p = a.journal.Phase
	}
	a.write(Journal{Step: StepIdle, From: a.journal.From, To: a.journal.To, GaveUp: gaveUp, Phase: p, Error: msg})
}

// write records the journal; the attempt goes on when it cannot (the disk
// may be full), the failure is logged and reported.
func (a *Agent) write(j Journal) {
	j.Transition = a.journal.Transition
	if j.Phase != a.journal.Phase || j.Transition.IsZero() {
		j.Transition = a.now().UTC()
	}
	a.journal = j
	if err := WriteJournal(a.layout.journal(), j); err != nil {
		a.log.Error("journal not written", "err", err)
	}
}

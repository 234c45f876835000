package vmagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// Step is where an attempt stands in the journal.
type Step string

// Steps an attempt goes through; each is journaled before the action it
// names, so a restart knows what may be half done:
//
//	StepIdle        nothing in flight
//	StepPrepare     downloading / unpacking: current still points at From,
//	                the sidecar was not touched; a restart starts the attempt over
//	StepSwitch      current is about to point (or points) at To; a restart
//	                redoes the switch and restart and health-checks To
//	StepRollback    going back to From; a restart redoes that
const (
	StepIdle     Step = "Idle"
	StepPrepare  Step = "Prepare"
	StepSwitch   Step = "Switch"
	StepRollback Step = "Rollback"
)

// Journal is the agent's fsync'd record.
type Journal struct {
	Step Step `json:"step"`
	// From is what ran before the attempt, To the attempt's target.
	From Assignment `json:"from"`
	To   Assignment `json:"to"`
	// Gave up on GaveUp (Failed or RolledBack) with Error; the agent does
	// not try it again until the assignment changes.
	GaveUp Assignment `json:"gaveUp"`
	Phase  Phase      `json:"phase"`
	Error  string     `json:"error,omitempty"`
	// Transition is when Phase last changed.
	Transition time.Time `json:"transition"`
}

// ReadJournal reads the journal; a missing one is an idle agent.
func ReadJournal(path string) (Journal, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Journal{Step: StepIdle}, nil
	}
	if err != nil {
		return Journal{}, fmt.Errorf("failed to read journal %q: %w", path, err)
	}
	var j Journal
	if err := json.Unmarshal(b, &j); err != nil {
		return Journal{}, fmt.Errorf("failed to parse journal %q (it is only ever replaced by rename, so this is disk corruption: move it away to start fresh): %w", path, err)
	}
	return j, nil
}

// WriteJournal replaces the journal: temp file, fsync, rename, fsync of the
// directory. After it returns the record survives a crash; before, the old
// one does.
func WriteJournal(path string, j Journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode journal: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return diskError(fmt.Errorf("failed to write journal %q: %w", tmp, err))
	}
	if _, err := f.Write(b); err != nil {
		f.Close()
		return diskError(fmt.Errorf("failed to write journal %q: %w", tmp, err))
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return diskError(fmt.Errorf("failed to sync journal %q: %w", tmp, err))
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("failed to write journal %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("failed to replace journal %q: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

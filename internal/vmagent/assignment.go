package vmagent

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"regexp"
	"strings"
)

// Assignment is what the sidecar should run.
type Assignment struct {
	Revision string `json:"revision"`
	Version  string `json:"version"`
	// Reason is set by an override file and reported on the WorkloadEntry.
	Reason string `json:"reason,omitempty"`
}

// String is "revision@version", the form the journal and reports use.
func (a Assignment) String() string { return a.Revision + "@" + a.Version }

// IsZero says no assignment was made.
func (a Assignment) IsZero() bool { return a.Revision == "" && a.Version == "" }

var (
	versionRE  = regexp.MustCompile(`^[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)
	revisionRE = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$`)
)

// Validate refuses an assignment the agent cannot act on, before anything on
// the VM changes: a malformed version or revision, or a revision named after
// a release (1-24-2) with another version (a typo that would point the new
// proxy at the wrong istiod).
func (a Assignment) Validate() error {
	if !versionRE.MatchString(a.Version) {
		return fmt.Errorf("version %q is not a release like 1.24.2", a.Version)
	}
	if a.Revision == "default" || !revisionRE.MatchString(a.Revision) {
		return fmt.Errorf("revision %q is not a revision name like 1-24-2", a.Revision)
	}
	if looksLikeRelease(a.Revision) && a.Revision != strings.ReplaceAll(a.Version, ".", "-") {
		return fmt.Errorf("revision %q is release %s but the assigned version is %s: fix the assignment",
			a.Revision, strings.ReplaceAll(a.Revision, "-", "."), a.Version)
	}
	return nil
}

var releaseRevisionRE = regexp.MustCompile(`^[0-9]+-[0-9]+-[0-9]+$`)

func looksLikeRelease(rev string) bool { return releaseRevisionRE.MatchString(rev) }

// FromAnnotations reads the assignment meshroll wrote; zero when none.
func FromAnnotations(ann map[string]string) Assignment {
	return Assignment{Revision: ann[AnnotationDesiredRevision], Version: ann[AnnotationDesiredVersion]}
}

// ReadOverride reads a break-glass override file. A missing file is no
// override (zero Assignment, nil error); a malformed one is an error, so a
// typo never silently falls back to the cluster's assignment.
func ReadOverride(path string) (Assignment, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return Assignment{}, nil
	}
	if err != nil {
		return Assignment{}, fmt.Errorf("failed to read override file %q: %w", path, err)
	}
	var a Assignment
	if err := json.Unmarshal(b, &a); err != nil {
		return Assignment{}, fmt.Errorf("failed to parse override file %q (want {\"revision\":..,\"version\":..,\"reason\":..}): %w", path, err)
	}
	if a.Reason == "" {
		a.Reason = "local override"
	}
	return a, nil
}

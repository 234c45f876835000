package report

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

// TestText compares the terminal report of each fixture with its golden file.
func TestText(t *testing.T) {
	for _, tc := range []struct {
		golden string
		u      *v1alpha1.MeshUpgrade
	}{
		{"text-succeeded.golden", succeededRun()},
		{"text-rolledback.golden", rolledBackRun()},
		{"text-empty.golden", emptyRun()},
		{"text-hostile.golden", hostileRun()},
	} {
		t.Run(tc.golden, func(t *testing.T) {
			var buf bytes.Buffer
			if err := Text(&buf, tc.u); err != nil {
				t.Fatalf("Text: %v", err)
			}
			path := filepath.Join("testdata", tc.golden)
			if *update {
				if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read golden (run with -update to create it): %v", err)
			}
			if diff := cmp.Diff(string(want), buf.String()); diff != "" {
				t.Errorf("Text output differs from %s (-want +got), rerun with -update if intended:\n%s", path, diff)
			}
		})
	}
}

// TestTextHostile checks that cluster-supplied strings cannot smuggle
// terminal control sequences into the operator's terminal.
func TestTextHostile(t *testing.T) {
	var buf bytes.Buffer
	if err := Text(&buf, hostileRun()); err != nil {
		t.Fatal(err)
	}
	if strings.ContainsRune(buf.String(), '\x1b') {
		t.Errorf("text report contains an ESC character:\n%q", buf.String())
	}
}

// TestTextHistoryCap checks only the newest events are printed, oldest first.
func TestTextHistoryCap(t *testing.T) {
	var buf bytes.Buffer
	u := succeededRun()
	if err := Text(&buf, u); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if n := len(u.Status.History); n <= textHistory {
		t.Fatalf("fixture has %d events; needs more than %d to test the cap", n, textHistory)
	}
	if strings.Contains(out, u.Status.History[0].Message) {
		t.Errorf("oldest event %q printed despite the cap", u.Status.History[0].Message)
	}
	last := u.Status.History[len(u.Status.History)-1].Message
	if !strings.Contains(out, last) {
		t.Errorf("newest event %q missing", last)
	}
}

// errWriter fails every write.
type errWriter struct{}

func (errWriter) Write([]byte) (int, error) { return 0, os.ErrClosed }

// TestRenderErrors checks both renderers report writer failures and nil input.
func TestRenderErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		run  func() error
	}{
		{"text writer", func() error { return Text(errWriter{}, succeededRun()) }},
		{"html writer", func() error { return HTML(errWriter{}, succeededRun(), fixtureStart()) }},
		{"text nil", func() error { return Text(&bytes.Buffer{}, nil) }},
		{"html nil", func() error { return HTML(&bytes.Buffer{}, nil, fixtureStart()) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.run(); err == nil {
				t.Error("want an error, got nil")
			} else if !strings.HasPrefix(err.Error(), "failed to ") {
				t.Errorf("error %q does not say what failed", err)
			}
		})
	}
}

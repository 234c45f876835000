//go:build linux

package xds_test

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	runreport "github.com/meshroll/meshroll/internal/report"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// writeTrafficReport writes the run report of MeshUpgrade name with the
// clients' per-second series and checks that the report states the calls
// and failures the harness counted. Set MESHROLL_XDS_REPORT=<dir> to keep
// a copy for a human (or a browser).
func (e *env) writeTrafficReport(t *testing.T, name string, tr *runreport.Traffic, path string, sums []summary) {
	t.Helper()
	mu, err := upgrade.Store{Dynamic: e.dyn}.Get(t.Context(), name)
	if err != nil {
		t.Fatalf("read MeshUpgrade %s for the report: %v", name, err)
	}
	var buf bytes.Buffer
	if err := runreport.HTMLWithTraffic(&buf, mu, tr, time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if dir := os.Getenv("MESHROLL_XDS_REPORT"); dir != "" {
		keep := dir + "/" + name + ".html"
		if err := os.WriteFile(keep, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("report with the traffic series: %s", keep)
	}
	calls, failed := 0, 0
	for _, s := range sums {
		calls += s.ok + s.fail
		failed += s.fail
	}
	requests, errors, _, _ := tr.Summary()
	page := buf.String()
	if requests < calls || errors < failed {
		t.Errorf("report series has %d calls, %d failed; the phases counted %d, %d", requests, errors, calls, failed)
	}
	for _, want := range []string{`id="traffic"`, fmt.Sprintf("%d calls", requests), fmt.Sprintf("%d failed</span>", errors), `class="boundary"`} {
		if !strings.Contains(page, want) {
			t.Errorf("report of %s lacks %q", name, want)
		}
	}
}

//go:build linux

package xds_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/gate/gatetest"
	"github.com/meshroll/meshroll/internal/istio"
)

// istiodScrape is the Prometheus configuration that scrapes istiod on its
// monitoring port (15014) at the targets listed in file, each labelled with
// its revision and pod. A cluster's Prometheus finds istiod pods with
// kubernetes_sd; Debian's Prometheus is built without it, so the test
// discovers them itself (discoverIstiods) and Prometheus reads them with
// file_sd, which notices each rewrite of the file.
func istiodScrape(file string) string {
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: istiod
    file_sd_configs:
      - files: [%q]
`, file)
}

// fileTarget is one entry of a file_sd file.
type fileTarget struct {
	Targets []string          `json:"targets"`
	Labels  map[string]string `json:"labels"`
}

// discoverIstiods writes the istiod pods of istio-system that have an
// address to file every second until the test ends: a canary istiod is
// scraped as soon as its pod runs, a removed one is dropped.
func (e *env) discoverIstiods(t *testing.T, file string) {
	t.Helper()
	write := func(ctx context.Context) error {
		pods, err := e.kube.CoreV1().Pods(istio.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		if err != nil {
			return err
		}
		targets := []fileTarget{}
		for _, p := range pods.Items {
			if p.Status.PodIP != "" && p.DeletionTimestamp == nil {
				targets = append(targets, fileTarget{Targets: []string{net.JoinHostPort(p.Status.PodIP, "15014")},
					Labels: map[string]string{"revision": p.Labels[istio.LabelRev], "pod": p.Name}})
			}
		}
		data, err := json.Marshal(targets)
		if err != nil {
			return err
		}
		if err := os.WriteFile(file+".tmp", data, 0o644); err != nil {
			return err
		}
		return os.Rename(file+".tmp", file)
	}
	if err := write(t.Context()); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-time.After(time.Second):
				_ = write(ctx) // a missed refresh is retried a second later
			}
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
}

// startIstiodPrometheus runs the real Prometheus scraping every istiod of
// the sandbox and waits for istiod's push metrics.
func (e *env) startIstiodPrometheus(t *testing.T) *gatetest.Server {
	t.Helper()
	file := filepath.Join(t.TempDir(), "istiods.json")
	e.discoverIstiods(t, file)
	prom := gatetest.StartPrometheusConfig(t, istiodScrape(file))
	prom.WaitForSeries(t, `sum(pilot_xds_pushes)`)
	return prom
}

// istiodGates are the gates the zero-failure upgrade runs after every wave,
// on istiod's own metrics: config pushed to every proxy within a second
// (p99), no config rejected by a proxy, no push that failed to build or send.
func istiodGates(prom *gatetest.Server) []string {
	return []string{"--prometheus", prom.URL(), "--gate", "push-time:1:30s", "--gate", "xds-rejects:1:30s", "--gate", "push-errors:1:30s"}
}

// assertIstiodMetrics checks that Prometheus learned from both istiods (each
// pushed config) and that the upgrade ran the istiod gates.
func assertIstiodMetrics(t *testing.T, prom *gatetest.Server, out string) {
	t.Helper()
	for _, rev := range []string{fromRev, toRev} {
		if v := prom.Query(t, fmt.Sprintf(`max_over_time(sum(pilot_xds_pushes{revision=%q})[10m:1s])`, rev)); len(v) == 0 || v[0].Value <= 0 {
			t.Errorf("no pilot_xds_pushes of istiod %s in Prometheus: %v", rev, v)
		}
	}
	conv := prom.Query(t, `histogram_quantile(0.99, sum by (le) (rate(pilot_proxy_convergence_time_bucket[5m])))`)
	rejects := prom.Query(t, `sum(pilot_total_xds_rejects) or vector(0)`)
	t.Logf("MEASURE istiod metrics: p99 pilot_proxy_convergence_time over 5m %v s, pilot_total_xds_rejects %v", conv, rejects)
	for _, g := range []string{"push-time", "xds-rejects", "push-errors"} {
		if !strings.Contains(out, g) {
			t.Errorf("upgrade output does not mention gate %s", g)
		}
	}
}

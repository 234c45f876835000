package gatetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/api"
	promv1 "github.com/prometheus/client_golang/api/prometheus/v1"
	"github.com/prometheus/common/model"
)

// PrometheusBinary is where Debian's prometheus package installs the server;
// CI installs it with apt-get so tests run the same server everywhere.
const PrometheusBinary = "/usr/bin/prometheus"

// startTimeout bounds how long Prometheus may take to become ready and how
// long WaitForSeries polls; both take about a second on a laptop.
const startTimeout = 30 * time.Second

// Server is a running Prometheus scraping the targets given to
// StartPrometheus every second.
type Server struct {
	url string
	api promv1.API
}

// StartPrometheus runs the real Prometheus binary scraping scrapeTargets
// (host:port) every second as one job named "gatetest", with its TSDB under
// tb.TempDir(). It skips the test when the binary is not installed, and
// kills the server on cleanup.
func StartPrometheus(tb testing.TB, scrapeTargets ...string) *Server {
	tb.Helper()
	return StartPrometheusConfig(tb, configYAML(scrapeTargets))
}

// StartPrometheusConfig is StartPrometheus with configYAML as the server's
// whole configuration file: for service discovery (e.g. kubernetes_sd_configs
// against the sandbox) rather than fixed targets.
func StartPrometheusConfig(tb testing.TB, configYAML string) *Server {
	tb.Helper()
	if _, err := os.Stat(PrometheusBinary); err != nil {
		tb.Skipf("skipping: %s not found (%v); install it with `apt-get install prometheus`", PrometheusBinary, err)
	}
	dir := tb.TempDir()
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, []byte(configYAML), 0o600); err != nil {
		tb.Fatalf("failed to write Prometheus config: %v", err)
	}
	// The free port is found by listening and closing, so another process
	// can take it in between; a retry covers that rare race.
	var lastErr error
	for attempt := range 3 {
		addr, err := freeAddress()
		if err != nil {
			tb.Fatalf("failed to find a free port: %v", err)
		}
		data := filepath.Join(dir, "data-"+strconv.Itoa(attempt))
		s, err := start(tb, config, data, addr)
		if err == nil {
			return s
		}
		lastErr = err
	}
	tb.Fatalf("failed to start Prometheus: %v", lastErr)
	return nil
}

// configYAML renders the scrape config. Targets are quoted so IPv6 or odd
// host names cannot break the YAML.
func configYAML(targets []string) string {
	quoted := make([]string, len(targets))
	for i, t := range targets {
		quoted[i] = strconv.Quote(t)
	}
	return fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: gatetest
    static_configs:
      - targets: [%s]
`, strings.Join(quoted, ", "))
}

func freeAddress() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

// LockedBuffer collects a process's output for failure messages: the
// process (or an in-process command's goroutines, some of which outlive
// the command's return) writes it while the test reads it.
type LockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *LockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *LockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// start runs one Prometheus process and waits until it is ready, returning
// an error (with the server's output) if it exits or never becomes ready.
func start(tb testing.TB, config, data, addr string) (*Server, error) {
	tb.Helper()
	out := &LockedBuffer{}
	cmd := exec.Command(PrometheusBinary,
		"--config.file="+config,
		"--storage.tsdb.path="+data,
		"--web.listen-address="+addr,
		"--log.level=warn",
	)
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("failed to run %s: %w", PrometheusBinary, err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	stop := func() {
		_ = cmd.Process.Kill()
		<-exited
	}
	url := "http://" + addr
	deadline := time.Now().Add(startTimeout)
	for {
		select {
		case err := <-exited:
			return nil, fmt.Errorf("prometheus exited before ready (%v): %s", err, lastLines(out.String(), 10))
		case <-time.After(100 * time.Millisecond):
		}
		if ready(url) {
			break
		}
		if time.Now().After(deadline) {
			stop()
			return nil, fmt.Errorf("prometheus not ready after %s: %s", startTimeout, lastLines(out.String(), 10))
		}
	}
	tb.Cleanup(stop)
	client, err := api.NewClient(api.Config{Address: url})
	if err != nil {
		stop()
		return nil, fmt.Errorf("failed to create Prometheus client: %w", err)
	}
	return &Server{url: url, api: promv1.NewAPI(client)}, nil
}

func ready(url string) bool {
	resp, err := http.Get(url + "/-/ready")
	if err != nil {
		return false
	}
	_ = resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// URL is the server's base URL, e.g. http://127.0.0.1:40123.
func (s *Server) URL() string { return s.url }

// WaitForSeries polls query until it returns at least one sample that is a
// number, and returns that result. Tests call it before evaluating a gate so
// they do not race the first scrapes: a rate() needs two scrapes, and a
// ratio of rates is NaN until then. It fails the test after 30 seconds.
func (s *Server) WaitForSeries(tb testing.TB, query string) model.Vector {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	var last string
	for {
		v, err := s.query(ctx, query)
		switch {
		case err != nil:
			last = err.Error()
		case hasNumber(v):
			return v
		default:
			last = fmt.Sprintf("result %v", v)
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("query %q returned no data within %s; last: %s", query, startTimeout, last)
			return nil
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// Query runs an instant query now, for assertions on what Prometheus holds.
func (s *Server) Query(tb testing.TB, query string) model.Vector {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, err := s.query(ctx, query)
	if err != nil {
		tb.Fatalf("failed to query %q: %v", query, err)
	}
	return v
}

func (s *Server) query(ctx context.Context, query string) (model.Vector, error) {
	value, _, err := s.api.Query(ctx, query, time.Time{})
	if err != nil {
		return nil, err
	}
	switch r := value.(type) {
	case model.Vector:
		return r, nil
	case *model.Scalar:
		return model.Vector{{Metric: model.Metric{}, Value: r.Value, Timestamp: r.Timestamp}}, nil
	}
	return nil, errors.New("query returns a " + value.Type().String() + ", not an instant vector")
}

func hasNumber(v model.Vector) bool {
	for _, s := range v {
		if !math.IsNaN(float64(s.Value)) {
			return true
		}
	}
	return false
}

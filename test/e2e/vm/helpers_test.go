package vm

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

var createOpts = metav1.CreateOptions{}

func nsObject(name string) *corev1.Namespace {
	return &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}
}

// usage is the summed RSS and CPU time of processes.
type usage struct {
	rssKiB  int64
	cpuTick int64
}

func readUsage(pids []int) usage {
	var u usage
	for _, pid := range pids {
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid)); err == nil {
			for _, l := range strings.Split(string(b), "\n") {
				if f := strings.Fields(l); len(f) >= 2 && f[0] == "VmRSS:" {
					n, _ := strconv.ParseInt(f[1], 10, 64)
					u.rssKiB += n
				}
			}
		}
		if b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid)); err == nil {
			s := string(b)
			f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
			ut, _ := strconv.ParseInt(f[11], 10, 64)
			st, _ := strconv.ParseInt(f[12], 10, 64)
			u.cpuTick += ut + st
		}
	}
	return u
}

// cpuPercent is the CPU the processes used over d, as percent of one core
// (clock ticks are 1/100 s on Linux).
func cpuPercent(before, after usage, d time.Duration) float64 {
	return float64(after.cpuTick-before.cpuTick) / 100 / d.Seconds() * 100
}

// gapTracker requests a URL every 10 ms and keeps the longest run of
// failed requests.
type gapTracker struct {
	mu       sync.Mutex
	longest  time.Duration
	failures int
	requests int
	stop     chan struct{}
	done     chan struct{}
}

func trackGaps(url string) *gapTracker {
	g := &gapTracker{stop: make(chan struct{}), done: make(chan struct{})}
	c := http.Client{Timeout: 500 * time.Millisecond}
	go func() {
		defer close(g.done)
		var since time.Time
		for {
			select {
			case <-g.stop:
				return
			case <-time.After(10 * time.Millisecond):
			}
			resp, err := c.Get(url)
			ok := err == nil && resp.StatusCode == http.StatusOK
			if resp != nil {
				resp.Body.Close()
			}
			now := time.Now()
			g.mu.Lock()
			g.requests++
			if ok {
				since = time.Time{}
			} else {
				g.failures++
				if since.IsZero() {
					since = now
				}
				g.longest = max(g.longest, now.Sub(since))
			}
			g.mu.Unlock()
		}
	}()
	return g
}

func (g *gapTracker) Stop() (longest time.Duration, failures, requests int) {
	close(g.stop)
	<-g.done
	return g.longest, g.failures, g.requests
}

// agentGet GETs an API path with VM i's own token.
func (f *fleet) agentGet(i int, method, path string) int {
	f.t.Helper()
	ca, err := os.ReadFile(f.vms[i].Config.CAFile)
	if err != nil {
		f.t.Fatal(err)
	}
	tok, err := os.ReadFile(f.vms[i].Config.TokenFile)
	if err != nil {
		f.t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(ca)
	c := http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}}
	body := strings.NewReader(`{"metadata":{"annotations":{"x":"y"}}}`)
	req, err := http.NewRequestWithContext(f.t.Context(), method, f.vms[i].Config.APIServer+path, body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	req.Header.Set("Content-Type", "application/merge-patch+json")
	resp, err := c.Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func (f *fleet) agentPids() []int {
	var pids []int
	for _, a := range f.agents {
		if a != nil && a.Process != nil {
			pids = append(pids, a.Process.Pid)
		}
	}
	return pids
}

func wePath(name string) string {
	return filepath.Join("/apis/networking.istio.io/v1/namespaces", vmNamespace, "workloadentries", name)
}

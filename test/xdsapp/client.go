package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"math"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
	_ "google.golang.org/grpc/xds" // the xds:/// resolver and balancers
)

// Second is one line of a client's stats file: what the calls sent in
// second T (unix seconds) got.
type Second struct {
	T        int64          `json:"t"`
	Pod      string         `json:"pod"`
	OK       int            `json:"ok"`
	Fail     int            `json:"fail"`
	Codes    map[string]int `json:"codes,omitempty"`
	Versions map[string]int `json:"versions,omitempty"`
	// Lat is a histogram of call latencies: bucket i holds calls that took
	// less than 1.05^(i+1) microseconds and at least 1.05^i.
	Lat map[int]int `json:"lat"`
}

// latBucket is the histogram bucket of d (see Second.Lat).
func latBucket(d time.Duration) int {
	us := float64(d.Microseconds())
	if us < 1 {
		return 0
	}
	return int(math.Log(us) / math.Log(1.05))
}

// stats collects the seconds of one client.
type stats struct {
	mu  sync.Mutex
	pod string
	by  map[int64]*Second
}

func (s *stats) record(sent time.Time, d time.Duration, code, version string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	t := sent.Unix()
	sec := s.by[t]
	if sec == nil {
		sec = &Second{T: t, Pod: s.pod, Codes: map[string]int{}, Versions: map[string]int{}, Lat: map[int]int{}}
		s.by[t] = sec
	}
	if code != "" {
		sec.Fail++
		sec.Codes[code]++
		return
	}
	sec.OK++
	sec.Versions[version]++
	sec.Lat[latBucket(d)]++
}

// flush writes the seconds before until (all when until is zero) to f.
func (s *stats) flush(f *os.File, until int64) error {
	s.mu.Lock()
	var out []*Second
	for t, sec := range s.by {
		if until == 0 || t < until {
			out = append(out, sec)
			delete(s.by, t)
		}
	}
	s.mu.Unlock()
	enc := json.NewEncoder(f)
	for _, sec := range out {
		if err := enc.Encode(sec); err != nil {
			return fmt.Errorf("failed to write stats %q: %w", f.Name(), err)
		}
	}
	return nil
}

func runClient(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("client", flag.ContinueOnError)
	target := fs.String("target", "", "xds:///<service>.<namespace>.svc.cluster.local:<port>")
	qps := fs.Int("qps", 250, "calls per second, open loop")
	admin := fs.Int("admin", 8081, "HTTP port on POD_IP for /ready")
	dir := fs.String("stats", "", "directory for <pod>.jsonl")
	timeout := fs.Duration("timeout", 2*time.Second, "deadline of one call")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *target == "" || *dir == "" || *qps <= 0 {
		return errors.New("failed to start client: --target, --stats and a positive --qps are required")
	}
	pod, ip := os.Getenv("POD_NAME"), os.Getenv("POD_IP")
	f, err := os.OpenFile(filepath.Join(*dir, pod+".jsonl"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("failed to open stats of pod %q: %w", pod, err)
	}
	defer f.Close()
	conn, err := grpc.NewClient(*target, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("failed to create client for %q: %w", *target, err)
	}
	defer conn.Close()
	hc := healthpb.NewHealthClient(conn)

	var ready atomic.Bool
	adminLis, err := net.Listen("tcp", net.JoinHostPort(ip, fmt.Sprint(*admin)))
	if err != nil {
		return fmt.Errorf("failed to listen on %q: %w", ip, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /ready", func(w http.ResponseWriter, _ *http.Request) {
		if !ready.Load() {
			http.Error(w, "no answer yet", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok"))
	})
	go func() { _ = http.Serve(adminLis, mux) }() //nolint:gosec // test app on a pod address

	// Ready at the first answer: until then the target's config has not
	// arrived and no call is counted, as a readiness probe keeps a pod out
	// of service.
	for !ready.Load() {
		cctx, cancel := context.WithTimeout(ctx, *timeout)
		_, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.WaitForReady(true))
		cancel()
		if ctx.Err() != nil {
			return nil
		}
		if err == nil {
			ready.Store(true)
		}
	}
	log.Printf("client %s ready: %d calls/s to %s", pod, *qps, *target)

	st := &stats{pod: pod, by: map[int64]*Second{}}
	var wg sync.WaitGroup
	flushed := make(chan error, 1)
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				flushed <- nil
				return
			case now := <-t.C:
				// A second is complete once its calls' deadline has passed.
				if err := st.flush(f, now.Add(-*timeout-time.Second).Unix()); err != nil {
					flushed <- err
					return
				}
			}
		}
	}()
	interval := time.Second / time.Duration(*qps)
	began := time.Now()
	var errLogs atomic.Int32
	for i := 0; ctx.Err() == nil; i++ {
		if d := time.Until(began.Add(time.Duration(i) * interval)); d > 0 {
			select {
			case <-ctx.Done():
				continue
			case <-time.After(d):
			}
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			sent := time.Now()
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), *timeout)
			defer cancel()
			var hdr metadata.MD
			resp, err := hc.Check(cctx, &healthpb.HealthCheckRequest{}, grpc.Header(&hdr))
			code := ""
			switch {
			case err != nil:
				code = status.Code(err).String()
				if errLogs.Add(1) <= 20 {
					log.Printf("call failed: %v", err)
				}
			case resp.GetStatus() != healthpb.HealthCheckResponse_SERVING:
				code = resp.GetStatus().String()
			}
			version := ""
			if v := hdr.Get("x-version"); len(v) > 0 {
				version = v[0]
			}
			st.record(sent, time.Since(sent), code, version)
		}()
	}
	wg.Wait()
	if err := <-flushed; err != nil {
		return err
	}
	log.Printf("client %s stopping after %d failed calls", pod, errLogs.Load())
	return st.flush(f, 0)
}

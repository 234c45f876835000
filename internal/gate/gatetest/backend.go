package gatetest

import (
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
)

// Backend is an HTTP server answering 200, or 503 for a chosen fraction of
// requests, so probe tests control exactly what a load probe sees.
type Backend struct {
	srv *httptest.Server

	mu       sync.Mutex
	fraction float64
	served   int64
	failed   int64
}

// StartBackend serves on 127.0.0.1 until the test ends.
func StartBackend(tb testing.TB) *Backend {
	tb.Helper()
	b := &Backend{}
	b.srv = httptest.NewServer(http.HandlerFunc(b.handle))
	tb.Cleanup(b.srv.Close)
	return b
}

// URL is the backend's base URL.
func (b *Backend) URL() string { return b.srv.URL }

// SetFailFraction makes the backend answer 503 to fraction (0..1) of the
// requests from now on. Failures are spread evenly and deterministically
// (with 0.1, exactly every tenth request fails) so tests need no tolerance.
func (b *Backend) SetFailFraction(fraction float64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.fraction = min(max(fraction, 0), 1)
	b.served, b.failed = 0, 0
}

// Counts returns how many requests were answered since the last
// SetFailFraction, and how many of them with 503.
func (b *Backend) Counts() (served, failed int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.served, b.failed
}

func (b *Backend) handle(w http.ResponseWriter, _ *http.Request) {
	b.mu.Lock()
	b.served++
	// Fail when the running quota of failures has grown past what was
	// already failed; this spreads failures evenly at any fraction.
	fail := float64(b.failed+1) <= b.fraction*float64(b.served)
	if fail {
		b.failed++
	}
	b.mu.Unlock()
	if fail {
		http.Error(w, "gatetest: planted failure", http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("ok\n"))
}

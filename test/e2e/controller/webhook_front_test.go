package controller

import (
	"io"
	"net"
	"sync"
	"testing"
	"time"
)

// front stands in for the webhook's Service: the sandbox has no
// kube-proxy, so the webhook is registered by URL on this listener, which
// passes the TLS through to one replica per connection and skips one that
// refuses (a killed replica, as the endpoints controller drops a dead
// pod). The API server opens a new HTTP/2 client whenever the CA bundle
// changes, i.e. at every rotation, and keeps one connection of the burst
// it dials then (one per request in flight): so the front hands each burst
// of connections (each opened within a second of the previous one) to the
// next replica in turn, and the replicas alternate from one rotation to
// the next. Balancing single connections would pick the replica carrying
// the calls at random.
type front struct {
	ln       net.Listener
	backends []string
	mu       sync.Mutex
	next     int
	lastPick time.Time
	current  string                 // the backend of the latest connection
	conns    map[string][]time.Time // backend → when each connection opened
	lastIO   map[string]time.Time
}

func startFront(t *testing.T, backends []string) *front {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &front{ln: ln, backends: backends, conns: map[string][]time.Time{}, lastIO: map[string]time.Time{}}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go f.forward(c)
		}
	}()
	return f
}

func (f *front) addr() string { return f.ln.Addr().String() }

func (f *front) forward(c net.Conn) {
	defer c.Close()
	f.mu.Lock()
	if time.Since(f.lastPick) > time.Second {
		f.next++ // a new burst
	}
	f.lastPick = time.Now()
	start := f.next
	f.mu.Unlock()
	var b net.Conn
	var backend string
	for i := range f.backends {
		backend = f.backends[(start+i)%len(f.backends)]
		var err error
		if b, err = net.DialTimeout("tcp", backend, time.Second); err == nil {
			break
		}
	}
	if b == nil {
		return
	}
	defer b.Close()
	f.mu.Lock()
	f.conns[backend] = append(f.conns[backend], time.Now())
	f.current = backend
	f.mu.Unlock()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(b, f.touch(backend, c)); done <- struct{}{} }()
	go func() { _, _ = io.Copy(c, f.touch(backend, b)); done <- struct{}{} }()
	<-done
}

// touch stamps the backend's last activity on every read.
func (f *front) touch(backend string, r io.Reader) io.Reader {
	return readerFunc(func(p []byte) (int, error) {
		n, err := r.Read(p)
		f.mu.Lock()
		f.lastIO[backend] = time.Now()
		f.mu.Unlock()
		return n, err
	})
}

type readerFunc func([]byte) (int, error)

func (f readerFunc) Read(p []byte) (int, error) { return f(p) }

// idle reports whether no byte went to or from backend for d and the
// latest connection went elsewhere: the API server's calls are not on it.
func (f *front) idle(backend string, d time.Duration) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	return time.Since(f.lastIO[backend]) >= d && f.current != backend
}

func (f *front) connsSince(backend string, since time.Time) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, at := range f.conns[backend] {
		if at.After(since) {
			n++
		}
	}
	return n
}

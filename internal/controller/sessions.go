package controller

import (
	"sync"

	"github.com/meshroll/meshroll/internal/upgrade"
)

// sessions keeps, between reconciles, the engine session of each upgrade
// whose last Step yielded with moves in flight: the moves go on while the
// reconcile returns, and the next reconcile records them and starts the
// next ones. A reconcile thus lasts a slice (Reconciler.Slice), not a
// wave, and the per-upgrade lease stays held across them.
type sessions struct {
	mu sync.Mutex
	m  map[string]*upgrade.Session
}

func (s *sessions) get(name string) *upgrade.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[name]
}

func (s *sessions) put(name string, sess *upgrade.Session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.m == nil {
		s.m = map[string]*upgrade.Session{}
	}
	s.m[name] = sess
}

// drop forgets name's session, without ending it.
func (s *sessions) drop(name string) *upgrade.Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	sess := s.m[name]
	delete(s.m, name)
	return sess
}

// close ends and forgets name's session, if one is held.
func (s *sessions) close(name string) {
	if sess := s.drop(name); sess != nil {
		sess.Close()
	}
}

// closeAll ends every session (the manager stops): moves in flight are
// cancelled and recorded pending, which the next leader resumes.
func (s *sessions) closeAll() {
	s.mu.Lock()
	all := s.m
	s.m = nil
	s.mu.Unlock()
	for _, sess := range all {
		sess.Close()
	}
}

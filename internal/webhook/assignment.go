package webhook

import (
	"maps"
	"sync/atomic"
)

// Assignments answers which revision a workload is assigned to. The handler
// depends on this interface rather than on Table so the engine may back it by
// whatever it keeps (an informer cache, a test stub).
type Assignments interface {
	// Assigned returns the revision assigned to the workload of kind (e.g.
	// "Deployment", "CronJob") namespace/name, and false when no active
	// MeshUpgrade covers it.
	Assigned(kind, namespace, name string) (revision string, ok bool)
}

// Key names one workload. Kind is the bare kind ("Deployment", "StatefulSet",
// "DaemonSet", "CronJob"); these kinds are unique across apps and batch, so the
// group adds nothing.
type Key struct {
	Kind      string
	Namespace string
	Name      string
}

// Table is a concurrency-safe Assignments kept in memory. The whole mapping is
// swapped atomically by Replace, so admission calls read a consistent snapshot
// without ever waiting for the engine to finish an update. The zero value is an
// empty table ready to use.
type Table struct {
	m atomic.Pointer[map[Key]string]
}

// NewTable returns an empty Table.
func NewTable() *Table { return &Table{} }

// Replace makes m the complete set of assignments. m is copied, so the caller
// may keep mutating its own map afterwards without racing admission calls.
func (t *Table) Replace(m map[Key]string) {
	c := maps.Clone(m)
	if c == nil {
		c = map[Key]string{}
	}
	t.m.Store(&c)
}

// Assigned implements Assignments. An empty revision counts as unassigned, so a
// half-filled entry can never stamp istio.io/rev="".
func (t *Table) Assigned(kind, namespace, name string) (string, bool) {
	p := t.m.Load()
	if p == nil {
		return "", false
	}
	rev, ok := (*p)[Key{Kind: kind, Namespace: namespace, Name: name}]
	return rev, ok && rev != ""
}

// Len reports how many workloads are assigned, for logs and status.
func (t *Table) Len() int {
	p := t.m.Load()
	if p == nil {
		return 0
	}
	return len(*p)
}

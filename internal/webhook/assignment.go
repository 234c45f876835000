package webhook

import (
	"maps"
	"sync/atomic"
)

// Assignments answers which revision a workload is assigned to. The handler
// depends on this interface rather than on Table so the engine may back it by
// whatever it keeps (an informer cache, a test stub).
type Assignments interface {
	// Assigned returns the revision the MeshUpgrade named upgrade assigns to
	// the workload of kind (e.g. "Deployment", "CronJob") namespace/name,
	// and false when that upgrade is not active or does not cover it. Only
	// the upgrade the workload's own meshroll.io/upgrade label names is
	// asked: another upgrade (an earlier one, long finished) must never
	// stamp its revision over the move of the one running now.
	Assigned(upgrade, kind, namespace, name string) (revision string, ok bool)
}

// Key names one workload under one MeshUpgrade. Kind is the bare kind
// ("Deployment", "StatefulSet", "DaemonSet", "CronJob"); these kinds are
// unique across apps and batch, so the group adds nothing.
type Key struct {
	// Upgrade is the MeshUpgrade's name, the value of meshroll.io/upgrade.
	Upgrade   string
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
func (t *Table) Assigned(upgrade, kind, namespace, name string) (string, bool) {
	p := t.m.Load()
	if p == nil {
		return "", false
	}
	rev, ok := (*p)[Key{Upgrade: upgrade, Kind: kind, Namespace: namespace, Name: name}]
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

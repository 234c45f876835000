package upgrade

import (
	"context"
	"time"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/gateway"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// Executors build the engine's writers (tag moves, gateway flips, the prune
// step's removal) from cluster clients. The CLI and the controller both
// take their engine from here, so a MeshUpgrade is carried out by the same
// writes whoever runs it.
type Executors struct {
	Clients   controlplane.Clients
	Inventory inventory.Clients
	// Cache renders each release once; Source is where every render finds
	// its charts (nil is the Go module), so a run never switches source half
	// way through.
	Cache  *istio.RenderCache
	Source istio.ChartSource
	// Removed, when set, is told about a revision the prune step removed.
	Removed func(rev string, objects int)
}

// Engine is an engine writing through x; snap gives every revision's proxy
// image. Observer and Lease are left to the caller.
func (x Executors) Engine(store StatusStore, gates GateRunner, snap *inventory.Snapshot) *Engine {
	images := map[string]string{}
	for _, r := range snap.Revisions {
		images[r.Name] = r.ProxyImage
	}
	return &Engine{
		Store: store, Kube: x.Clients.Kube, Gates: gates,
		MoveTag:        x.MoveTag,
		ProxyImage:     func(rev string) string { return images[rev] },
		Gateways:       x.Switcher(),
		RemoveRevision: x.RemoveRevision,
		VMs:            &dataplane.VMExecutor{Dyn: x.Clients.Dynamic},
	}
}

// MoveTag points tag at rev, as `meshroll tag set --overwrite --force`
// does: the engine already judged skew when it planned the move. The tag
// webhook renders from Source: a download from the Go module in the middle
// of a wave (or of a rollback) fails air-gapped. Moving a tag back to the
// old revision renders its webhook from the same source, which is safe
// because the webhook's client config is copied from the revision's own
// injector.
func (x Executors) MoveTag(ctx context.Context, tag, rev string) error {
	_, err := controlplane.SetTag(ctx, x.Clients, controlplane.TagOptions{Tag: tag, Revision: rev, Overwrite: true, Force: true, Cache: x.Cache, Source: x.Source})
	return err
}

// Switcher is the gateway executor: colours render from Source.
func (x Executors) Switcher() *gateway.Switcher {
	return &gateway.Switcher{Clients: gateway.Clients{Kube: x.Clients.Kube, Dynamic: x.Clients.Dynamic}, Source: x.Source, Cache: x.Cache}
}

// RemoveRevision is the prune step's executor: it reads the cluster again,
// so controlplane.Remove refuses while anything (pods, pod templates,
// namespaces, tags, gateways, webhooks, VMs) still references rev.
func (x Executors) RemoveRevision(ctx context.Context, rev string) error {
	snap, err := inventory.Read(ctx, x.Inventory, time.Now())
	if err != nil {
		return err
	}
	res, err := controlplane.Remove(ctx, x.Clients, snap, controlplane.RemoveOptions{Revision: rev})
	if err != nil {
		return err
	}
	if x.Removed != nil {
		x.Removed(rev, len(res.Deleted))
	}
	return nil
}

package fleet

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// ReadOptions bound a fleet-wide read.
type ReadOptions struct {
	// Timeout is each cluster's budget (default 30 s): a member that does not
	// answer in time becomes a row with its error.
	Timeout time.Duration
	// Concurrency is how many clusters are read at once (default 16): the
	// hub's memory and connections grow with it, not with the fleet's size.
	Concurrency int
	// Now stamps the snapshots.
	Now time.Time
}

func (o ReadOptions) timeout() time.Duration {
	if o.Timeout > 0 {
		return o.Timeout
	}
	return 30 * time.Second
}

func (o ReadOptions) concurrency() int {
	if o.Concurrency > 0 {
		return o.Concurrency
	}
	return 16
}

// Revision is one control plane of a member, as the fleet table shows it.
type Revision struct {
	Name    string `json:"name"`
	Version string `json:"version,omitempty"`
	Ready   bool   `json:"ready"`
}

// ClusterStatus is one row of `meshroll fleet status`: what one member runs,
// or why it could not be read.
type ClusterStatus struct {
	Name   string            `json:"name"`
	Labels map[string]string `json:"labels,omitempty"`
	// Error is set when the member could not be read; the rest is empty.
	Error     string            `json:"error,omitempty"`
	Revisions []Revision        `json:"revisions,omitempty"`
	Proxies   []inventory.Count `json:"proxiesByVersion,omitempty"`
	Skew      string            `json:"skew,omitempty"`
	Findings  map[string]int    `json:"findingsBySeverity,omitempty"`
	Details   []check.Finding   `json:"findings,omitempty"`
	Upgrades  []ActiveUpgrade   `json:"activeUpgrades,omitempty"`
	Pods      int               `json:"pods"`
	Took      time.Duration     `json:"took"`
}

// ActiveUpgrade is an unfinished MeshUpgrade of a member.
type ActiveUpgrade struct {
	Name  string `json:"name"`
	From  string `json:"from"`
	To    string `json:"to"`
	Phase string `json:"phase"`
}

// Reader reads one member; Collect calls it concurrently. Tests and
// benchmarks swap it; ReadCluster is the real one.
type Reader func(ctx context.Context, c Cluster, now time.Time) ClusterStatus

// Collect reads every cluster concurrently (at most o.Concurrency at once,
// each within o.Timeout) and returns one row per cluster in input order. It
// never fails: a member's error is its row's Error.
func Collect(ctx context.Context, clusters []Cluster, read Reader, o ReadOptions) []ClusterStatus {
	out := make([]ClusterStatus, len(clusters))
	sem := make(chan struct{}, o.concurrency())
	var wg sync.WaitGroup
	for i, c := range clusters {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				out[i] = ClusterStatus{Name: c.Name, Labels: c.Labels, Error: ctx.Err().Error()}
				return
			}
			defer func() { <-sem }()
			cctx, cancel := context.WithTimeout(ctx, o.timeout())
			defer cancel()
			start := time.Now()
			row := read(cctx, c, o.Now)
			row.Name, row.Labels, row.Took = c.Name, c.Labels, time.Since(start)
			if row.Error != "" && errors.Is(cctx.Err(), context.DeadlineExceeded) {
				row.Error = fmt.Sprintf("no answer within %s (%s): %s", o.timeout(), c.Source, row.Error)
			}
			out[i] = row
		}()
	}
	wg.Wait()
	return out
}

// ReadCluster is the real Reader: inventory, check and the member's
// unfinished MeshUpgrades. Only the summary is kept, so the hub holds a few
// kilobytes per member rather than its whole snapshot.
func ReadCluster(ctx context.Context, c Cluster, now time.Time) ClusterStatus {
	row := ClusterStatus{}
	cfg, err := c.RESTConfig()
	if err != nil {
		row.Error = err.Error()
		return row
	}
	cfg.ContentType = "application/vnd.kubernetes.protobuf"
	cfg.AcceptContentTypes = "application/vnd.kubernetes.protobuf,application/json"
	cfg.QPS, cfg.Burst = 100, 200
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		row.Error = fmt.Sprintf("failed to create client for cluster %q: %v", c.Name, err)
		return row
	}
	mc, err := metadata.NewForConfig(cfg)
	if err != nil {
		row.Error = fmt.Sprintf("failed to create metadata client for cluster %q: %v", c.Name, err)
		return row
	}
	// The member's MeshUpgrades are listed while its inventory is read:
	// one round trip less per member.
	type upgrades struct {
		list []ActiveUpgrade
		err  error
	}
	upc := make(chan upgrades, 1)
	jcfg := *cfg
	jcfg.ContentType, jcfg.AcceptContentTypes = "", "" // custom resources speak JSON only
	go func() {
		dc, err := dynamic.NewForConfig(&jcfg)
		if err != nil {
			upc <- upgrades{}
			return
		}
		list, err := activeUpgrades(ctx, dc)
		upc <- upgrades{list, err}
	}()
	snap, err := inventory.Read(ctx, inventory.Clients{Kube: kc, Meta: mc}, now)
	up := <-upc
	if err != nil {
		row.Error = fmt.Sprintf("failed to read cluster %q at %s: %v", c.Name, cfg.Host, err)
		return row
	}
	Summarize(&row, snap)
	row.Upgrades = up.list
	if up.err != nil {
		row.Error = fmt.Sprintf("failed to list MeshUpgrades of cluster %q: %v", c.Name, up.err)
	}
	return row
}

// Summarize fills a row from a snapshot: revisions, proxies by version, skew
// and findings by severity.
func Summarize(row *ClusterStatus, snap *inventory.Snapshot) {
	for _, r := range snap.Revisions {
		row.Revisions = append(row.Revisions, Revision{Name: r.Name, Version: r.Version,
			Ready: r.DesiredReplicas > 0 && r.ReadyReplicas >= r.DesiredReplicas})
	}
	sum := snap.Summary()
	for _, c := range sum.ByVersion {
		if c.Key != "" {
			row.Proxies = append(row.Proxies, c)
		}
	}
	row.Pods = snap.Pods
	row.Details = check.Run(snap)
	row.Findings = map[string]int{}
	behind, unsupported := 0, 0
	for _, f := range row.Details {
		row.Findings[string(f.Severity)]++
		switch f.Code {
		case check.CodeSkewBehind:
			behind++
		case check.CodeSkewUnsupported:
			unsupported++
		}
	}
	switch {
	case unsupported > 0:
		row.Skew = fmt.Sprintf("unsupported (%d)", unsupported)
	case behind > 0:
		row.Skew = fmt.Sprintf("behind (%d)", behind)
	default:
		row.Skew = "ok"
	}
}

// activeUpgrades lists the member's unfinished MeshUpgrades; a member that
// never ran one has no CRD, which is no error.
func activeUpgrades(ctx context.Context, dc dynamic.Interface) ([]ActiveUpgrade, error) {
	list, err := upgrade.Store{Dynamic: dc}.List(ctx)
	if err != nil {
		return nil, err
	}
	var out []ActiveUpgrade
	for _, mu := range list {
		if !mu.Status.Phase.Final() {
			out = append(out, ActiveUpgrade{Name: mu.Name, From: mu.Spec.From, To: mu.Spec.To, Phase: string(mu.Status.Phase)})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

package inventory

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/tools/pager"

	"github.com/meshroll/meshroll/internal/istio"
)

const (
	// pageSize bounds each LIST response; 500 is client-go's default and keeps
	// one page of full pods at a few MB.
	pageSize = 500
	// pageBuffer lets the next pages download while the current one is
	// folded, without holding more than a few pages in memory.
	pageBuffer = 4
)

var (
	gvrNamespaces   = schema.GroupVersionResource{Version: "v1", Resource: "namespaces"}
	gvrReplicaSets  = schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	gvrJobs         = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}
	errUnexpectedTy = errors.New("unexpected object type in list")
)

// ref names an object or its controller within a namespace.
type ref struct {
	kind, namespace, name string
}

// owners is the view of pod owners, joined to pods at the end: metadata for
// ReplicaSets and Jobs (only their controller matters), a small template
// summary for the kinds users manage.
type owners struct {
	namespaces  map[string]map[string]string // name → istio labels only
	replicaSets map[ref]ref                  // ReplicaSet → its controller
	jobs        map[ref]ref                  // Job → its controller
	templates   map[ref]*podTemplate         // Deployment, DaemonSet, StatefulSet, CronJob
}

// Read takes a Snapshot of the cluster behind c. now is recorded as TakenAt.
// It returns ErrNoIstio when the cluster has no Istio control plane.
func Read(ctx context.Context, c Clients, now time.Time) (*Snapshot, error) {
	// The namespaces are read while the control plane is: the pod LISTs
	// need both, and neither depends on the other.
	type nsResult struct {
		m   map[string]map[string]string
		err error
	}
	nsc := make(chan nsResult, 1)
	go func() {
		m, err := readNamespaces(ctx, c)
		nsc <- nsResult{m, err}
	}()
	cp, err := readControlPlane(ctx, c)
	nsr := <-nsc
	if err != nil {
		return nil, err
	}
	if len(cp.deployments) == 0 && !hasInjector(cp) {
		return nil, ErrNoIstio
	}
	s := &Snapshot{TakenAt: now}
	cp.build(s)
	inj := s.Injectors()

	// The first failing LIST cancels the others: the snapshot is useless anyway.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		o     = owners{templates: map[ref]*podTemplate{}}
		tally *podTally
		wg    sync.WaitGroup
		mu    sync.Mutex
		errs  []error
	)
	run := func(f func() error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := f(); err != nil {
				mu.Lock()
				if len(errs) == 0 || !errors.Is(err, context.Canceled) {
					errs = append(errs, err)
				}
				mu.Unlock()
				cancel()
			}
		}()
	}
	// Namespaces first: the pod LIST is split by namespace so that the API
	// server encodes and this process decodes several pages at once.
	if o.namespaces, err = nsr.m, nsr.err; err != nil {
		return nil, err
	}
	tally = newPodTally(&evidence{injectors: inj, namespaces: o.namespaces, proxyConfigs: cp.proxyConfigs,
		versions: revisionVersions(s), injectorCreated: cp.injectorCreated()})
	run(func() error { return eachPod(ctx, c, sortedKeys(o.namespaces), tally.add) })
	run(func() (err error) {
		o.replicaSets, err = readControllers(ctx, c, gvrReplicaSets, "ReplicaSet")
		return err
	})
	run(func() (err error) { o.jobs, err = readControllers(ctx, c, gvrJobs, "Job"); return err })
	var tmu sync.Mutex
	for _, read := range templateReaders() {
		run(func() error {
			return read(ctx, c, func(r ref, t *podTemplate) {
				tmu.Lock()
				o.templates[r] = t
				tmu.Unlock()
			})
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}

	s.Namespaces = namespaces(o.namespaces, inj)
	s.Workloads = join(tally, &o, inj, s)
	s.Pods = tally.total
	return s, nil
}

func hasInjector(cp *controlPlane) bool {
	for _, w := range cp.mutating {
		if isInjector(w) {
			return true
		}
	}
	return false
}

// eachPage streams a paged LIST through fn.
func eachPage(ctx context.Context, list pager.ListPageFunc, fn func(runtime.Object) error) error {
	p := pager.New(list)
	p.PageSize = pageSize
	p.PageBufferSize = pageBuffer
	return p.EachListItem(ctx, metav1.ListOptions{}, fn)
}

// podListers is how many namespaces' pods are listed at once. Two streams
// already keep both sides of the connection busy; more only add contention.
const podListers = 3

// eachPod lists every pod, paged, a few namespaces at a time, and folds them
// through fn on one goroutine (fn need not be safe for concurrent use). Each
// namespace's pages come from one consistent LIST.
func eachPod(ctx context.Context, c Clients, namespaces []string, fn func(*corev1.Pod)) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pages := make(chan []corev1.Pod, pageBuffer)
	next := make(chan string)
	errc := make(chan error, podListers)
	var wg sync.WaitGroup
	for range podListers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ns := range next {
				if err := listPods(ctx, c, ns, pages); err != nil {
					errc <- err
					cancel()
					return
				}
			}
		}()
	}
	go func() {
		defer close(pages)
		defer wg.Wait()
		defer close(next)
		for _, ns := range namespaces {
			select {
			case next <- ns:
			case <-ctx.Done():
				return
			}
		}
	}()
	for items := range pages {
		for i := range items {
			fn(&items[i])
		}
	}
	select {
	case err := <-errc:
		return fmt.Errorf("failed to list %s: %w", "pods", err)
	default:
		return ctx.Err()
	}
}

// listPods sends one namespace's pods, page by page.
func listPods(ctx context.Context, c Clients, ns string, pages chan<- []corev1.Pod) error {
	opts := metav1.ListOptions{Limit: pageSize}
	for {
		list, err := c.Kube.CoreV1().Pods(ns).List(ctx, opts)
		if err != nil {
			return err
		}
		select {
		case pages <- list.Items:
		case <-ctx.Done():
			return ctx.Err()
		}
		if list.Continue == "" {
			return nil
		}
		opts.Continue = list.Continue
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// eachMeta streams a paged metadata-only LIST through fn.
func eachMeta(ctx context.Context, c Clients, gvr schema.GroupVersionResource, fn func(*metav1.PartialObjectMetadata)) error {
	err := eachPage(ctx, func(ctx context.Context, opts metav1.ListOptions) (runtime.Object, error) {
		return c.Meta.Resource(gvr).List(ctx, opts)
	}, func(obj runtime.Object) error {
		m, ok := obj.(*metav1.PartialObjectMetadata)
		if !ok {
			return fmt.Errorf("failed to read %s %T: %w", gvr.Resource, obj, errUnexpectedTy)
		}
		fn(m)
		return nil
	})
	if err != nil {
		return fmt.Errorf("failed to list %s: %w", gvr.Resource, err)
	}
	return nil
}

func readNamespaces(ctx context.Context, c Clients) (map[string]map[string]string, error) {
	out := map[string]map[string]string{}
	err := eachMeta(ctx, c, gvrNamespaces, func(m *metav1.PartialObjectMetadata) {
		labels := map[string]string{}
		for _, k := range [...]string{istio.LabelInjection, istio.LabelRev, istio.LabelDataplaneMode} {
			if v, ok := m.Labels[k]; ok {
				labels[k] = v
			}
		}
		out[m.Name] = labels
	})
	return out, err
}

// readControllers maps each object of gvr to its controller (if any).
func readControllers(ctx context.Context, c Clients, gvr schema.GroupVersionResource, kind string) (map[ref]ref, error) {
	in := interner{}
	out := map[ref]ref{}
	err := eachMeta(ctx, c, gvr, func(m *metav1.PartialObjectMetadata) {
		if owner := metav1.GetControllerOf(m); owner != nil {
			ns := in.get(m.Namespace)
			out[ref{kind: kind, namespace: ns, name: m.Name}] = ref{kind: in.get(owner.Kind), namespace: ns, name: in.get(owner.Name)}
		}
	})
	return out, err
}

func namespaces(labels map[string]map[string]string, inj istio.Injectors) []Namespace {
	out := make([]Namespace, 0, len(labels))
	for name, l := range labels {
		inject, rev := lookup(l, istio.LabelInjection), lookup(l, istio.LabelRev)
		out = append(out, Namespace{
			Name:              name,
			InjectionLabel:    inject.value,
			HasInjectionLabel: inject.set,
			RevLabel:          rev.value,
			HasRevLabel:       rev.set,
			DataplaneMode:     l[istio.LabelDataplaneMode],
			Injection:         inj.Injection(istio.InjectionTarget{Namespace: name, NamespaceLabels: l}),
		})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// revisionVersions maps each revision to the release its injector writes.
func revisionVersions(s *Snapshot) map[string]string {
	out := map[string]string{}
	for _, r := range s.Revisions {
		v := istio.ImageVersion(r.ProxyImage)
		if v == "" {
			v = r.Version
		}
		out[r.Name] = v
	}
	return out
}

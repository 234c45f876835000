package podproc

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corelisters "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"

	"github.com/meshroll/meshroll/sandbox/proc"
)

// Options configure a Runner.
type Options struct {
	// Dir is the sandbox's state directory: each process logs to
	// Dir/logs/podproc/<namespace>.<pod>.log and runs in
	// Dir/podproc/<namespace>.<pod>.
	Dir string
	// Images maps a container image to the binary that stands for it.
	Images map[string]string
	// Logger receives starts, stops and failures; nil means slog.Default().
	Logger *slog.Logger
}

// Backoff of a process that dies while its pod stays, like the kubelet's
// CrashLoopBackOff; addrWait is how often a pod whose address is still held
// by a draining process (kwok reuses a deleted pod's address at once) is
// looked at again.
const (
	crashBackoffBase = time.Second
	crashBackoffMax  = 30 * time.Second
	addrWait         = 200 * time.Millisecond
)

// Runner owns the processes of the labelled pods of one cluster.
type Runner struct {
	opts  Options
	log   *slog.Logger
	kube  kubernetes.Interface
	pods  corelisters.PodLister
	queue workqueue.TypedRateLimitingInterface[string]

	mu sync.Mutex
	// procs are the processes of live pods, by pod key; draining are those
	// told to stop that may still hold their address.
	procs     map[string]*instance
	draining  map[*instance]struct{}
	restarts  map[string]int
	notBefore map[string]time.Time
}

// New prepares a Runner; nothing runs before Run.
func New(cfg *rest.Config, opts Options) (*Runner, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("failed to create process runner %q: Dir is empty", cfg.Host)
	}
	r := &Runner{opts: opts, log: opts.Logger, procs: map[string]*instance{}, draining: map[*instance]struct{}{},
		restarts: map[string]int{}, notBefore: map[string]time.Time{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	var err error
	if r.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("failed to create client for %q: %w", cfg.Host, err)
	}
	r.queue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](crashBackoffBase, crashBackoffMax))
	return r, nil
}

// Run serves the labelled pods until ctx is done, then stops every process
// it started (each with its pod's grace period). It is called once.
func (r *Runner) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(r.kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Selector() }))
	inf := factory.Core().V1().Pods()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			r.queue.Add(key)
		}
	}
	if _, err := inf.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("failed to watch pods %q: %w", Selector(), err)
	}
	r.pods = inf.Lister()
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok && ctx.Err() == nil {
			return fmt.Errorf("failed to sync informer %q", typ.String())
		}
	}
	r.log.Info("process runner watching", "selector", Selector(), "images", len(r.opts.Images))
	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	for r.next(ctx) {
	}
	r.stopAll(context.WithoutCancel(ctx))
	return nil
}

// next handles one queued pod key; false once the queue shut down.
func (r *Runner) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	if err := r.reconcile(ctx, key); err != nil && ctx.Err() == nil {
		r.log.Error("process runner", "pod", key, "err", err)
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// reconcile makes the process of one pod match the pod: none when it is
// gone or terminating (the old one drains in the background for its grace
// period), a fresh one when what it runs with changed or, after a backoff,
// when the last one died.
func (r *Runner) reconcile(ctx context.Context, key string) error {
	ns, name := splitKey(key)
	var want *spec
	pod, err := r.pods.Pods(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to get pod %q: %w", key, err)
	default:
		if want, err = podSpec(pod, r.opts.Images); err != nil {
			return err
		}
	}

	r.mu.Lock()
	cur := r.procs[key]
	died := cur != nil && cur.Exited()
	keep := cur != nil && !died && want != nil && cur.spec.equal(*want)
	if cur != nil && !keep {
		delete(r.procs, key)
		r.draining[cur] = struct{}{}
		if died && want != nil && want.uid == cur.spec.uid {
			r.restarts[key]++
			r.notBefore[key] = time.Now().Add(proc.Backoff(r.restarts[key], crashBackoffBase, crashBackoffMax))
		}
	}
	if want == nil {
		delete(r.restarts, key)
		delete(r.notBefore, key)
	}
	wait := time.Until(r.notBefore[key])
	r.mu.Unlock()

	if cur != nil && !keep {
		if died {
			r.log.Warn("process exited", "pod", key, "err", cur.Err(), "log", cur.Log)
		} else {
			r.log.Info("stopping process", "pod", key, "grace", cur.spec.grace)
		}
		go r.drain(ctx, cur)
	}
	if want == nil || keep {
		return nil
	}
	if wait > 0 {
		r.queue.AddAfter(key, wait)
		return nil
	}
	if r.addressHeld(want.ip) {
		r.queue.AddAfter(key, addrWait)
		return nil
	}
	return r.start(ctx, *want)
}

// drain stops in and forgets it once it is gone.
func (r *Runner) drain(ctx context.Context, in *instance) {
	in.stop(ctx)
	r.mu.Lock()
	delete(r.draining, in)
	r.mu.Unlock()
}

// addressHeld reports whether a process still runs on ip.
func (r *Runner) addressHeld(ip netip.Addr) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for in := range r.draining {
		if in.spec.ip == ip && !in.Exited() {
			return true
		}
	}
	return false
}

// start runs the process of s, with an xDS bootstrap when Istio injected
// the pod.
func (r *Runner) start(ctx context.Context, s spec) error {
	base := strings.ReplaceAll(s.key, "/", ".")
	workDir := filepath.Join(r.opts.Dir, "podproc", base)
	logFile := filepath.Join(r.opts.Dir, "logs", "podproc", base+".log")
	var extraEnv []string
	if s.discovery != "" {
		addr, err := resolveDiscovery(ctx, r.kube, s.discovery)
		if err != nil {
			return err
		}
		path := filepath.Join(r.opts.Dir, "podproc", base+".grpc-bootstrap.json")
		if err := writeBootstrap(path, bootstrapFor(s, addr)); err != nil {
			return err
		}
		extraEnv = append(extraEnv, "GRPC_XDS_BOOTSTRAP="+path)
	}
	in, err := start(s, workDir, logFile, extraEnv)
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.procs[s.key] = in
	r.mu.Unlock()
	r.log.Info("started process", "pod", s.key, "ip", s.ip, "pid", in.Pid(), "discovery", s.discovery, "log", logFile)
	go func() {
		// A death is noticed at once, not at the pod's next change.
		<-in.Done()
		if ctx.Err() == nil {
			r.queue.Add(s.key)
		}
	}()
	go r.watchReady(ctx, in)
	return nil
}

// stopAll stops every process in parallel: the runner is going away.
func (r *Runner) stopAll(ctx context.Context) {
	r.mu.Lock()
	var all []*instance
	for _, in := range r.procs {
		all = append(all, in)
	}
	for in := range r.draining {
		all = append(all, in)
	}
	r.procs = map[string]*instance{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range all {
		wg.Go(func() { r.drain(ctx, in) })
	}
	wg.Wait()
}

// Instance is one running process as Instances reports it.
type Instance struct {
	// Pod is namespace/name of the pod it serves.
	Pod string
	// IP is the pod's address.
	IP string
	// PID is its process id.
	PID int
	// Started is when it was started.
	Started time.Time
	// Ready is the last readiness the runner wrote to the pod.
	Ready bool
	// Terminating is set once the pod went away: the process drains for the
	// pod's grace period.
	Terminating bool
	// Log is the file its output goes to.
	Log string
}

// Instances reports the running processes, draining ones included, sorted
// by pod.
func (r *Runner) Instances() []Instance {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Instance
	add := func(in *instance, terminating bool) {
		if !in.Exited() {
			out = append(out, Instance{Pod: in.spec.key, IP: in.spec.ip.String(), PID: in.Pid(), Started: in.Started,
				Ready: in.ready.Load(), Terminating: terminating, Log: in.Log})
		}
	}
	for _, in := range r.procs {
		add(in, false)
	}
	for in := range r.draining {
		add(in, true)
	}
	slices.SortFunc(out, func(a, b Instance) int { return strings.Compare(a.Pod, b.Pod) })
	return out
}

// splitKey splits a namespace/name key.
func splitKey(key string) (ns, name string) {
	ns, name, _ = strings.Cut(key, "/")
	return ns, name
}

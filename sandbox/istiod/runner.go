package istiod

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
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

	"github.com/meshroll/meshroll/sandbox"
	"github.com/meshroll/meshroll/sandbox/proc"
)

// Options configure Run.
type Options struct {
	// Dir is the sandbox's state directory: each istiod logs to
	// Dir/logs/istiod/<namespace>.<pod>.log and runs in
	// Dir/istiod/<namespace>.<pod>.
	Dir string
	// Addr, when set, serves GET /healthz and GET /istiods (JSON, see
	// Instance) there, on loopback: `sandbox up` probes its injector
	// process on that port.
	Addr string
	// Binary returns the pilot-discovery of a release; nil builds it from
	// Istio's module (sandbox.EnsurePilotDiscovery), which takes minutes
	// cold: `make sandbox-bin` prebuilds sandbox.PilotDiscoveryReleases.
	Binary func(ctx context.Context, version string) (string, error)
	// Logger receives starts, stops and failures; nil means slog.Default().
	Logger *slog.Logger
}

// crashBackoff bounds how fast a dying istiod is restarted, like the
// kubelet's CrashLoopBackOff.
const (
	crashBackoffBase = time.Second
	crashBackoffMax  = time.Minute
)

// Runner owns the pilot-discovery processes of one sandbox.
type Runner struct {
	opts  Options
	log   *slog.Logger
	cfg   *rest.Config
	kube  kubernetes.Interface
	pods  corelisters.PodLister
	nodes corelisters.NodeLister
	queue workqueue.TypedRateLimitingInterface[string]

	mu    sync.Mutex
	procs map[string]*instance
	// restarts counts starts after the first, per pod key.
	restarts map[string]int
	// notBefore holds back the restart of a pod whose istiod died, however
	// soon the pod changes next (the runner itself writes its readiness).
	notBefore map[string]time.Time
}

// Run serves every istiod pod of the cluster with a pilot-discovery process
// until ctx is done, then stops them all. Only one runner may serve a
// sandbox.
func Run(ctx context.Context, cfg *rest.Config, opts Options) error {
	r, err := New(cfg, opts)
	if err != nil {
		return err
	}
	return r.Run(ctx)
}

// New prepares a Runner; nothing runs before Run.
func New(cfg *rest.Config, opts Options) (*Runner, error) {
	if opts.Dir == "" {
		return nil, fmt.Errorf("failed to create istiod runner %q: Dir is empty", opts.Addr)
	}
	r := &Runner{opts: opts, log: opts.Logger, cfg: cfg, procs: map[string]*instance{}, restarts: map[string]int{}, notBefore: map[string]time.Time{}}
	if r.log == nil {
		r.log = slog.Default()
	}
	if r.opts.Binary == nil {
		r.opts.Binary = func(ctx context.Context, version string) (string, error) {
			return sandbox.EnsurePilotDiscovery(ctx, version, logWriter{r.log})
		}
	}
	var err error
	if r.kube, err = kubernetes.NewForConfig(cfg); err != nil {
		return nil, fmt.Errorf("failed to create client for %q: %w", cfg.Host, err)
	}
	r.queue = workqueue.NewTypedRateLimitingQueue(workqueue.NewTypedItemExponentialFailureRateLimiter[string](crashBackoffBase, crashBackoffMax))
	return r, nil
}

// Run serves istiod pods until ctx is done, then stops every process it
// started. It is called once.
func (r *Runner) Run(ctx context.Context) error {
	opts := r.opts
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory := informers.NewSharedInformerFactoryWithOptions(r.kube, 0,
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = Selector() }))
	podInformer := factory.Core().V1().Pods()
	enqueue := func(obj any) {
		if key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj); err == nil {
			r.queue.Add(key)
		}
	}
	if _, err := podInformer.Informer().AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: enqueue, UpdateFunc: func(_, o any) { enqueue(o) }, DeleteFunc: enqueue,
	}); err != nil {
		return fmt.Errorf("failed to watch pods %q: %w", Selector(), err)
	}
	r.pods = podInformer.Lister()
	nodeFactory := informers.NewSharedInformerFactory(r.kube, 0)
	r.nodes = nodeFactory.Core().V1().Nodes().Lister()
	factory.Start(ctx.Done())
	nodeFactory.Start(ctx.Done())
	defer nodeFactory.Shutdown()
	defer factory.Shutdown()
	for typ, ok := range factory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return syncErr(ctx, typ.String())
		}
	}
	for typ, ok := range nodeFactory.WaitForCacheSync(ctx.Done()) {
		if !ok {
			return syncErr(ctx, typ.String())
		}
	}

	serveErr := make(chan error, 1)
	if opts.Addr != "" {
		stopServe, err := r.serve(opts.Addr, serveErr)
		if err != nil {
			return err
		}
		defer stopServe()
	}
	r.log.Info("istiod runner watching", "selector", Selector(), "dir", opts.Dir)

	go func() {
		<-ctx.Done()
		r.queue.ShutDown()
	}()
	work := make(chan struct{})
	go func() {
		defer close(work)
		for r.next(ctx) {
		}
	}()
	var result error
	select {
	case <-ctx.Done():
	case err := <-serveErr:
		result = err
		cancel()
	}
	<-work
	r.stopAll(context.WithoutCancel(ctx))
	return result
}

// syncErr tells a cancelled start from an informer that never synced.
func syncErr(ctx context.Context, what string) error {
	if ctx.Err() != nil {
		return nil
	}
	return fmt.Errorf("failed to sync informer %q", what)
}

// next handles one queued pod key; false once the queue shut down.
func (r *Runner) next(ctx context.Context) bool {
	key, quit := r.queue.Get()
	if quit {
		return false
	}
	defer r.queue.Done(key)
	if err := r.reconcile(ctx, key); err != nil && ctx.Err() == nil {
		r.log.Error("istiod runner", "pod", key, "err", err)
		r.queue.AddRateLimited(key)
		return true
	}
	r.queue.Forget(key)
	return true
}

// reconcile makes the process of one pod match the pod: none when it is
// gone or not running, a fresh one when anything it runs with changed or,
// after a backoff, when the last one died.
func (r *Runner) reconcile(ctx context.Context, key string) error {
	ns, name := splitKey(key)
	var want *spec
	pod, err := r.pods.Pods(ns).Get(name)
	switch {
	case apierrors.IsNotFound(err):
	case err != nil:
		return fmt.Errorf("failed to get pod %q: %w", key, err)
	default:
		node, _ := r.nodes.Get(pod.Spec.NodeName)
		if want, err = podSpec(ctx, pod, node, r.lookup(ns)); err != nil {
			return err
		}
	}

	r.mu.Lock()
	cur := r.procs[key]
	r.mu.Unlock()
	died := cur != nil && cur.Exited()
	if cur != nil && (want == nil || died || !cur.spec.equal(*want)) {
		if died {
			r.log.Warn("istiod exited", "pod", key, "err", cur.Err(), "log", cur.Log)
		} else {
			r.log.Info("stopping istiod", "pod", key)
		}
		cur.stop(ctx)
		r.mu.Lock()
		delete(r.procs, key)
		r.mu.Unlock()
		if died && want != nil {
			r.mu.Lock()
			r.restarts[key]++
			r.notBefore[key] = time.Now().Add(proc.Backoff(r.restarts[key], crashBackoffBase, crashBackoffMax))
			r.mu.Unlock()
		}
	}
	if want == nil {
		r.mu.Lock()
		delete(r.restarts, key)
		delete(r.notBefore, key)
		r.mu.Unlock()
		return nil
	}
	if cur != nil && !died && cur.spec.equal(*want) {
		return nil
	}
	r.mu.Lock()
	wait := time.Until(r.notBefore[key])
	r.mu.Unlock()
	if wait > 0 {
		r.queue.AddAfter(key, wait)
		return nil
	}
	return r.start(ctx, *want)
}

// start runs pilot-discovery for s, first stopping any other process still
// bound to s's address (a pod that went away whose deletion this runner has
// not handled yet: kwok hands a deleted pod's address to the next pod).
func (r *Runner) start(ctx context.Context, s spec) error {
	r.mu.Lock()
	var stale []*instance
	for k, in := range r.procs {
		if k != s.key && in.spec.ip == s.ip {
			stale = append(stale, in)
			delete(r.procs, k)
		}
	}
	r.mu.Unlock()
	for _, in := range stale {
		r.log.Info("stopping istiod whose address moved to another pod", "pod", in.spec.key, "ip", s.ip)
		in.stop(ctx)
	}
	bin, err := r.opts.Binary(ctx, s.version)
	if err != nil {
		return err
	}
	kubeconfig, err := identityKubeconfig(ctx, r.kube, r.cfg, s)
	if err != nil {
		return err
	}
	base := strings.ReplaceAll(s.key, "/", ".")
	workDir := filepath.Join(r.opts.Dir, "istiod", base)
	logFile := filepath.Join(r.opts.Dir, "logs", "istiod", base+".log")
	kubeconfigFile := filepath.Join(r.opts.Dir, "istiod", base+".kubeconfig")
	if err := os.MkdirAll(filepath.Dir(kubeconfigFile), 0o755); err != nil {
		return fmt.Errorf("failed to create directory %q: %w", filepath.Dir(kubeconfigFile), err)
	}
	if err := os.WriteFile(kubeconfigFile, kubeconfig, 0o600); err != nil {
		return fmt.Errorf("failed to write kubeconfig %q: %w", kubeconfigFile, err)
	}
	// The chart points KUBECONFIG at an optional remote-cluster Secret that
	// is absent in a primary cluster, so istiod uses its in-cluster config:
	// here, the pod identity's kubeconfig.
	in, err := start(s, bin, workDir, logFile, []string{"--kubeconfig=" + kubeconfigFile}, []string{"KUBECONFIG=" + kubeconfigFile})
	if err != nil {
		return err
	}
	r.mu.Lock()
	r.procs[s.key] = in
	r.mu.Unlock()
	r.log.Info("started istiod", "pod", s.key, "version", s.version, "ip", s.ip, "pid", in.Pid(), "log", logFile)
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

// stopAll stops every process, in parallel: the runner is going away.
func (r *Runner) stopAll(ctx context.Context) {
	r.mu.Lock()
	procs := r.procs
	r.procs = map[string]*instance{}
	r.mu.Unlock()
	var wg sync.WaitGroup
	for _, in := range procs {
		wg.Go(func() { in.stop(ctx) })
	}
	wg.Wait()
}

// lookup reads ConfigMap and Secret keys of namespace ns for env entries.
func (r *Runner) lookup(ns string) lookup {
	return func(ctx context.Context, secret bool, name, key string) (string, bool, error) {
		if secret {
			s, err := r.kube.CoreV1().Secrets(ns).Get(ctx, name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return "", false, nil
			}
			if err != nil {
				return "", false, fmt.Errorf("failed to get secret %q: %w", ns+"/"+name, err)
			}
			v, ok := s.Data[key]
			return string(v), ok, nil
		}
		cm, err := r.kube.CoreV1().ConfigMaps(ns).Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return "", false, nil
		}
		if err != nil {
			return "", false, fmt.Errorf("failed to get config map %q: %w", ns+"/"+name, err)
		}
		v, ok := cm.Data[key]
		return v, ok, nil
	}
}

// splitKey splits a namespace/name key.
func splitKey(key string) (ns, name string) {
	ns, name, _ = strings.Cut(key, "/")
	return ns, name
}

// logWriter turns the build's progress lines into log records.
type logWriter struct{ log *slog.Logger }

func (w logWriter) Write(p []byte) (int, error) {
	w.log.Info(strings.TrimSpace(string(p)))
	return len(p), nil
}

var _ io.Writer = logWriter{}

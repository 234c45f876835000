package fleet

import (
	"context"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	coreinformers "k8s.io/client-go/informers/core/v1"
	"k8s.io/client-go/tools/cache"
)

// The hub controller polls each running FleetUpgrade every couple of
// seconds, and every step needs the members. Listing their Secrets each
// time sent every member's kubeconfig over the wire again: at 200 members,
// about a megabyte every poll per FleetUpgrade. An informer on the member
// Secrets alone (one namespace, one label) lists them once and then only
// receives changes, so an edited or rotated kubeconfig is still seen at the
// next step.

// memberSyncWait bounds how long a reconcile waits for the member informer's
// first list before reading the Secrets directly: a first list that cannot
// succeed (a missing permission) must become the FleetUpgrade's condition,
// with the API server's own words, not a silent wait.
const memberSyncWait = 2 * time.Second

// watchTrust is how long after a failed list or watch of the member
// Secrets the informer's copy is not trusted: a Role granting list but not
// watch lets the informer list once and then never hear of a change, so
// while its watch keeps failing the members are read directly.
const watchTrust = time.Minute

// memberInformer is the informer on the member Secrets and when its list
// or watch last failed.
type memberInformer struct {
	cache.SharedIndexInformer
	failed atomic.Int64 // unix nanoseconds, 0 never
}

// trusted reports whether the informer has listed and its list and watch
// have not failed lately.
func (m *memberInformer) trusted(now time.Time) bool {
	at := m.failed.Load()
	return m.HasSynced() && (at == 0 || now.Sub(time.Unix(0, at)) > watchTrust)
}

// startMembers starts the informer on the member Secrets of namespace,
// running until ctx ends.
func startMembers(ctx context.Context, r *Reconciler) *memberInformer {
	inf := &memberInformer{SharedIndexInformer: coreinformers.NewFilteredSecretInformer(r.Hub, r.Namespace, 0, cache.Indexers{},
		func(o *metav1.ListOptions) { o.LabelSelector = LabelCluster })}
	_ = inf.SetWatchErrorHandlerWithContext(func(ctx context.Context, rf *cache.Reflector, err error) {
		inf.failed.Store(time.Now().UnixNano())
		cache.DefaultWatchErrorHandler(ctx, rf, err)
	})
	// Managed fields are dropped: FromSecret never reads them, and at 200
	// members they would be most of what the hub keeps in memory besides
	// the kubeconfigs.
	_ = inf.SetTransform(func(obj any) (any, error) {
		if s, ok := obj.(*corev1.Secret); ok {
			s.ManagedFields = nil
		}
		return obj, nil
	})
	go inf.Run(ctx.Done())
	return inf
}

// loadMembers reads the member clusters: from the informer while this
// replica leads and it is trusted, else (not started yet, list or watch
// failing) straight from the hub, which also names what went wrong.
func (r *Reconciler) loadMembers(ctx context.Context) ([]Cluster, error) {
	r.mu.Lock()
	inf := r.members
	r.mu.Unlock()
	if inf != nil && !inf.HasSynced() && inf.failed.Load() == 0 {
		wait, cancel := context.WithTimeout(ctx, memberSyncWait)
		cache.WaitForCacheSync(wait.Done(), inf.HasSynced)
		cancel()
	}
	if inf == nil || !inf.trusted(time.Now()) {
		return LoadSecrets(ctx, r.Hub, r.Namespace)
	}
	items := inf.GetStore().List()
	secrets := make([]*corev1.Secret, 0, len(items))
	for _, o := range items {
		if s, ok := o.(*corev1.Secret); ok {
			secrets = append(secrets, s)
		}
	}
	return FromSecrets(secrets, r.Namespace)
}

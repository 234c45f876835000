package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// Lease makes one engine at a time run a MeshUpgrade: two engines writing
// one status would overwrite each other's record on every conflict. It is a
// coordination.k8s.io Lease named meshupgrade-<name>, held while the engine
// runs and renewed every third of its duration; a holder that stops
// renewing (killed) loses it once the duration has passed, so a rerun after
// kill -9 waits at most that long.
type Lease struct {
	Kube kubernetes.Interface
	// Namespace holds the Lease objects (MeshUpgrades are cluster-scoped;
	// leases are not).
	Namespace string
	// Holder names this engine (host, pid, a random suffix).
	Holder string
	// Duration is how long a lease outlives its last renewal (default 15 s).
	Duration time.Duration
	// Now is the clock; nil is time.Now.
	Now func() time.Time
	// Alive, when set, says whether a holder is still running; a holder it
	// declares dead (a killed CLI on this host) is taken over at once
	// instead of after the lease expires.
	Alive func(holder string) bool
}

// HeldError says another engine runs the upgrade.
type HeldError struct {
	Upgrade, Holder string
	Renewed         time.Time
	Expires         time.Time
}

func (e *HeldError) Error() string {
	return fmt.Sprintf("MeshUpgrade %q is being run by %s (lease renewed %s, held until %s unless renewed): wait for it, or stop that engine; to roll back, `meshroll rollback %s` asks it to",
		e.Upgrade, e.Holder, e.Renewed.Format(time.RFC3339), e.Expires.Format(time.RFC3339), e.Upgrade)
}

func (l Lease) now() time.Time {
	if l.Now != nil {
		return l.Now()
	}
	return time.Now()
}

func (l Lease) duration() time.Duration {
	if l.Duration > 0 {
		return l.Duration
	}
	return 15 * time.Second
}

// LocalHolder names this process as a lease holder: host, pid and start
// time, so LocalAlive can tell a dead holder on the same host.
func LocalHolder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s/%d/%d", host, os.Getpid(), time.Now().UnixNano())
}

// LocalAlive reports a holder dead when it ran on this host and its process
// is gone (a killed CLI); holders elsewhere count as alive until their lease
// expires.
func LocalAlive(holder string) bool {
	host, _ := os.Hostname()
	parts := strings.Split(holder, "/")
	if len(parts) != 3 || parts[0] != host {
		return true
	}
	pid, err := strconv.Atoi(parts[1])
	if err != nil || pid <= 0 {
		return true
	}
	p, err := os.FindProcess(pid)
	if err != nil {
		return false
	}
	return p.Signal(syscall.Signal(0)) == nil
}

// leaseName names the Lease of one upgrade.
func leaseName(upgrade string) string { return "meshupgrade-" + upgrade }

// Acquire takes the upgrade's lease, or returns *HeldError while another
// holder's lease is live. The returned context is cancelled when the lease
// is lost (renewal refused); release stops renewing and gives the lease up.
func (l Lease) Acquire(ctx context.Context, upgrade string) (context.Context, func(), error) {
	if err := l.take(ctx, upgrade); err != nil {
		return nil, nil, err
	}
	ctx, cancel := context.WithCancelCause(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		t := time.NewTicker(l.duration() / 3)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := l.take(ctx, upgrade); err != nil && ctx.Err() == nil {
					var held *HeldError
					if errors.As(err, &held) {
						cancel(fmt.Errorf("lost the lease of MeshUpgrade %q: %w", upgrade, err))
						return
					}
					// A failed renewal is retried at the next tick; the
					// lease lasts three of them.
				}
			}
		}
	}()
	release := func() {
		cancel(nil)
		<-done
		ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer stop()
		l.give(ctx, upgrade)
	}
	return ctx, release, nil
}

// take creates, renews or (once expired) takes over the lease.
func (l Lease) take(ctx context.Context, upgrade string) error {
	leases := l.Kube.CoordinationV1().Leases(l.Namespace)
	secs := int32(l.duration() / time.Second)
	for range 3 { // a conflict means someone else wrote it: read and decide again
		now := metav1.NewMicroTime(l.now())
		cur, err := leases.Get(ctx, leaseName(upgrade), metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = leases.Create(ctx, &coordinationv1.Lease{
				ObjectMeta: metav1.ObjectMeta{Name: leaseName(upgrade), Namespace: l.Namespace, Labels: map[string]string{labelRecordOf: upgrade}},
				Spec: coordinationv1.LeaseSpec{HolderIdentity: ptr.To(l.Holder), LeaseDurationSeconds: ptr.To(secs),
					AcquireTime: &now, RenewTime: &now},
			}, metav1.CreateOptions{FieldManager: "meshroll"})
			if apierrors.IsAlreadyExists(err) {
				continue
			}
			if err != nil {
				return fmt.Errorf("failed to create lease %q: %w", leaseName(upgrade), err)
			}
			return nil
		}
		if err != nil {
			return fmt.Errorf("failed to get lease %q: %w", leaseName(upgrade), err)
		}
		holder := ptr.Deref(cur.Spec.HolderIdentity, "")
		if holder != "" && holder != l.Holder {
			renewed := cur.CreationTimestamp.Time
			if cur.Spec.RenewTime != nil {
				renewed = cur.Spec.RenewTime.Time
			}
			expires := renewed.Add(time.Duration(ptr.Deref(cur.Spec.LeaseDurationSeconds, secs)) * time.Second)
			if l.now().Before(expires) && (l.Alive == nil || l.Alive(holder)) {
				return &HeldError{Upgrade: upgrade, Holder: holder, Renewed: renewed, Expires: expires}
			}
		}
		if holder != l.Holder {
			cur.Spec.AcquireTime = &now
			cur.Spec.LeaseTransitions = ptr.To(ptr.Deref(cur.Spec.LeaseTransitions, 0) + 1)
		}
		cur.Spec.HolderIdentity, cur.Spec.RenewTime, cur.Spec.LeaseDurationSeconds = ptr.To(l.Holder), &now, ptr.To(secs)
		_, err = leases.Update(ctx, cur, metav1.UpdateOptions{FieldManager: "meshroll"})
		if apierrors.IsConflict(err) {
			continue
		}
		if err != nil {
			return fmt.Errorf("failed to renew lease %q: %w", leaseName(upgrade), err)
		}
		return nil
	}
	return fmt.Errorf("failed to take lease %q: it kept changing under us", leaseName(upgrade))
}

// give releases the lease if this engine still holds it, so the next run
// need not wait for it to expire. Errors are ignored: an unreleased lease
// only delays the next engine by its duration.
func (l Lease) give(ctx context.Context, upgrade string) {
	leases := l.Kube.CoordinationV1().Leases(l.Namespace)
	cur, err := leases.Get(ctx, leaseName(upgrade), metav1.GetOptions{})
	if err != nil || ptr.Deref(cur.Spec.HolderIdentity, "") != l.Holder {
		return
	}
	_ = leases.Delete(ctx, cur.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &cur.ResourceVersion}})
}

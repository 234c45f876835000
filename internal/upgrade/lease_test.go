package upgrade

import (
	"context"
	"errors"
	"os"
	"testing"
	"time"

	kubefake "k8s.io/client-go/kubernetes/fake"
)

// TestLeaseOneEngineAtATime pins the second half of #9 defect 10: a second
// engine is refused while the first holds the lease, and takes over once
// the first stopped renewing (killed) for the lease's duration.
func TestLeaseOneEngineAtATime(t *testing.T) {
	kube := kubefake.NewClientset()
	now := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	clock := func() time.Time { return now }
	a := Lease{Kube: kube, Namespace: "istio-system", Holder: "engine-a", Duration: 15 * time.Second, Now: clock}
	b := a
	b.Holder = "engine-b"
	ctx := context.Background()

	if err := a.take(ctx, "up"); err != nil {
		t.Fatalf("a: %v", err)
	}
	var held *HeldError
	if err := b.take(ctx, "up"); !errors.As(err, &held) || held.Holder != "engine-a" {
		t.Fatalf("b while a holds it: err = %v, want HeldError naming engine-a", err)
	}
	now = now.Add(10 * time.Second)
	if err := a.take(ctx, "up"); err != nil { // renewal
		t.Fatalf("a renews: %v", err)
	}
	now = now.Add(14 * time.Second)
	if err := b.take(ctx, "up"); !errors.As(err, &held) {
		t.Fatalf("b 14 s after a's renewal: err = %v, want held", err)
	}
	now = now.Add(2 * time.Second) // a was killed: 16 s without renewal
	if err := b.take(ctx, "up"); err != nil {
		t.Fatalf("b after a's lease expired: %v", err)
	}
	if err := a.take(ctx, "up"); !errors.As(err, &held) || held.Holder != "engine-b" {
		t.Fatalf("a after b took over: err = %v, want HeldError naming engine-b", err)
	}
	b.give(ctx, "up")
	if err := a.take(ctx, "up"); err != nil {
		t.Fatalf("a after b released: %v", err)
	}
}

func TestLeaseAcquireRelease(t *testing.T) {
	kube := kubefake.NewClientset()
	l := Lease{Kube: kube, Namespace: "istio-system", Holder: "engine-a", Duration: 3 * time.Second}
	ctx, release, err := l.Acquire(context.Background(), "up")
	if err != nil {
		t.Fatal(err)
	}
	if ctx.Err() != nil {
		t.Fatal("lease context cancelled at once")
	}
	release()
	if ctx.Err() == nil {
		t.Error("lease context still live after release")
	}
	other := l
	other.Holder = "engine-b"
	if err := other.take(context.Background(), "up"); err != nil {
		t.Errorf("lease not given up on release: %v", err)
	}
}

// TestLeaseTakesOverADeadLocalHolder: a CLI killed with -9 on this host does
// not make its rerun wait for the lease to expire.
func TestLeaseTakesOverADeadLocalHolder(t *testing.T) {
	kube := kubefake.NewClientset()
	host, _ := os.Hostname()
	dead := Lease{Kube: kube, Namespace: "istio-system", Holder: host + "/999999999/1", Duration: time.Hour}
	if err := dead.take(context.Background(), "up"); err != nil {
		t.Fatal(err)
	}
	alive := Lease{Kube: kube, Namespace: "istio-system", Holder: LocalHolder(), Duration: time.Hour}
	if err := alive.take(context.Background(), "up"); err == nil {
		t.Fatal("took a live lease without Alive")
	}
	alive.Alive = LocalAlive
	if err := alive.take(context.Background(), "up"); err != nil {
		t.Fatalf("did not take over the dead holder's lease: %v", err)
	}
	if !LocalAlive(LocalHolder()) || !LocalAlive("other-host/1/1") {
		t.Error("LocalAlive calls this process or another host's holder dead")
	}
}

package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"sync"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// memberDriver runs a member's upgrade or rollback in-process with the very
// commands an operator would run against that member (`meshroll upgrade`,
// `meshroll rollback`): the hub drives members that have no controller of
// their own, and the member's MeshUpgrade record is the single-cluster one.
type memberDriver struct{ log io.Writer }

// Upgrade implements fleet.Driver.
func (d memberDriver) Upgrade(ctx context.Context, c fleet.Cluster, fu *v1alpha1.FleetUpgrade) error {
	args, err := upgradeArgs(ctx, c, fu)
	if err != nil {
		return err
	}
	return d.run(ctx, c, args)
}

// upgradeArgs are the member's `meshroll upgrade` arguments. When the
// member's MeshUpgrade exists, its recorded source revision is passed with
// --from: a run killed after its last moves has no proxy left on the old
// revision to infer it from, and the rerun must resume, not refuse.
func upgradeArgs(ctx context.Context, c fleet.Cluster, fu *v1alpha1.FleetUpgrade) ([]string, error) {
	name := fleet.MemberUpgradeName(fu.Name)
	args := []string{"upgrade", "--to", fu.Spec.Version, "--name", name}
	cfg, err := c.RESTConfig()
	if err != nil {
		return nil, err
	}
	dc, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("failed to create dynamic client for cluster %q: %w", c.Name, err)
	}
	mu, err := upgrade.Store{Dynamic: dc}.Get(ctx, name)
	switch {
	case err == nil:
		args = append(args, "--from", mu.Spec.From)
	case !apierrors.IsNotFound(err):
		return nil, fmt.Errorf("failed to read MeshUpgrade %q of cluster %q: %w", name, c.Name, err)
	}
	m := fu.Spec.Member
	if m.Waves != "" {
		args = append(args, "--waves", m.Waves)
	}
	if m.Parallelism > 0 {
		args = append(args, "--parallelism", strconv.Itoa(m.Parallelism))
	}
	if m.Bake.Duration > 0 {
		args = append(args, "--bake", m.Bake.Duration.String())
	}
	if m.RolloutTimeout.Duration > 0 {
		args = append(args, "--rollout-timeout", m.RolloutTimeout.Duration.String())
	}
	if m.Rollback == v1alpha1.RollbackManual {
		args = append(args, "--rollback", "manual")
	}
	if len(m.Gates) > 0 {
		if c.Prometheus == "" {
			return nil, fmt.Errorf("member gates need the member's Prometheus: annotate its Secret %s=<url> (or set prometheus: in the fleet file)", fleet.AnnotationPrometheus)
		}
		for _, g := range m.Gates {
			args = append(args, "--gate", g)
		}
		args = append(args, "--prometheus", c.Prometheus)
	}
	return args, nil
}

// Rollback implements fleet.Driver.
func (d memberDriver) Rollback(ctx context.Context, c fleet.Cluster, name string) error {
	return d.run(ctx, c, []string{"rollback", name})
}

func (d memberDriver) run(ctx context.Context, c fleet.Cluster, args []string) error {
	path, kctx, cleanup, err := c.KubeconfigFile()
	if err != nil {
		return err
	}
	defer cleanup()
	global := []string{}
	if path != "" {
		global = append(global, "--kubeconfig", path)
	}
	if kctx != "" {
		global = append(global, "--context", kctx)
	}
	w := &prefixWriter{w: d.log, prefix: "[" + c.Name + "] "}
	root := NewRoot(w, w)
	root.SetArgs(append(global, args...))
	err = root.ExecuteContext(ctx)
	var exit *ExitError
	if errors.As(err, &exit) && exit.Code == 3 {
		return nil // halted or rolled back: the member's MeshUpgrade says so
	}
	return err
}

// prefixWriter prefixes every line with the member's name; member runs write
// concurrently, so lines are written whole under one lock.
type prefixWriter struct {
	mu     sync.Mutex
	w      io.Writer
	prefix string
	buf    []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.buf = append(p.buf, b...)
	for {
		i := bytes.IndexByte(p.buf, '\n')
		if i < 0 {
			return len(b), nil
		}
		if _, err := fmt.Fprintf(p.w, "%s%s\n", p.prefix, bytes.TrimRight(p.buf[:i], "\r")); err != nil {
			return len(b), err
		}
		p.buf = p.buf[i+1:]
	}
}

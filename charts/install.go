package charts

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"helm.sh/helm/v3/pkg/action"
	"helm.sh/helm/v3/pkg/chart"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/release"
	"helm.sh/helm/v3/pkg/storage/driver"
	"k8s.io/cli-runtime/pkg/genericclioptions"
)

// InstallOptions says where and how the embedded chart is installed.
type InstallOptions struct {
	// Release is the Helm release name (default "meshroll").
	Release string
	// Namespace is the release's namespace (default "meshroll-system"); it is
	// created when missing.
	Namespace string
	// Values override the chart's values.yaml; values.schema.json checks them.
	Values map[string]any
	// DryRun renders the chart without contacting the cluster and changes
	// nothing; the manifest is in the returned release.
	DryRun bool
}

// Defaults of InstallOptions.
const (
	DefaultRelease   = "meshroll"
	DefaultNamespace = "meshroll-system"
)

// Install installs the embedded meshroll chart with the Helm SDK, or upgrades
// the release when it already exists, so the command converges from any
// state and `helm list` / `helm uninstall` see an ordinary release. Helm's
// storage is Secrets in the release namespace, as with the helm CLI.
func Install(ctx context.Context, getter genericclioptions.RESTClientGetter, opts InstallOptions) (*release.Release, error) {
	if opts.Release == "" {
		opts.Release = DefaultRelease
	}
	if opts.Namespace == "" {
		opts.Namespace = DefaultNamespace
	}
	chrt, err := Meshroll()
	if err != nil {
		return nil, err
	}
	cfg := new(action.Configuration)
	if opts.DryRun {
		return render(ctx, cfg, chrt, opts)
	}
	logf := func(format string, v ...any) { slog.Debug(fmt.Sprintf(format, v...)) }
	if err := cfg.Init(getter, opts.Namespace, "secret", logf); err != nil {
		return nil, fmt.Errorf("failed to initialise helm for namespace %q: %w", opts.Namespace, err)
	}
	_, err = action.NewHistory(cfg).Run(opts.Release)
	switch {
	case errors.Is(err, driver.ErrReleaseNotFound):
		in := action.NewInstall(cfg)
		in.ReleaseName, in.Namespace, in.CreateNamespace = opts.Release, opts.Namespace, true
		rel, err := in.RunWithContext(ctx, chrt, opts.Values)
		if err != nil {
			return nil, fmt.Errorf("failed to install release %q: %w", opts.Namespace+"/"+opts.Release, err)
		}
		return rel, nil
	case err != nil:
		return nil, fmt.Errorf("failed to read history of release %q: %w", opts.Namespace+"/"+opts.Release, err)
	}
	up := action.NewUpgrade(cfg)
	up.Namespace = opts.Namespace
	rel, err := up.RunWithContext(ctx, opts.Release, chrt, opts.Values)
	if err != nil {
		return nil, fmt.Errorf("failed to upgrade release %q: %w", opts.Namespace+"/"+opts.Release, err)
	}
	return rel, nil
}

// Render returns the chart's manifest, CRDs first, for values without
// contacting a cluster: what a dry run shows and what tests validate.
func Render(ctx context.Context, opts InstallOptions) (string, error) {
	opts.DryRun = true
	rel, err := Install(ctx, nil, opts)
	if err != nil {
		return "", err
	}
	return rel.Manifest, nil
}

// render is a client-only install: Helm renders (CRDs included) and checks
// the values schema but reaches no API server. The Kubernetes version is the
// oldest the checks assume, so Capabilities-dependent templates stay
// conservative.
func render(ctx context.Context, cfg *action.Configuration, chrt *chart.Chart, opts InstallOptions) (*release.Release, error) {
	in := action.NewInstall(cfg)
	in.ReleaseName, in.Namespace = opts.Release, opts.Namespace
	in.DryRun, in.ClientOnly, in.IncludeCRDs = true, true, true
	in.KubeVersion = &chartutil.KubeVersion{Version: "v1.33.0", Major: "1", Minor: "33"}
	rel, err := in.RunWithContext(ctx, chrt, opts.Values)
	if err != nil {
		return nil, fmt.Errorf("failed to render chart %q: %w", chrt.Name(), err)
	}
	return rel, nil
}

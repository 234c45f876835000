package istio

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"

	"helm.sh/helm/v3/pkg/chart/loader"
	"helm.sh/helm/v3/pkg/chartutil"
	"helm.sh/helm/v3/pkg/engine"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/util/validation"
)

// Component is one of the Helm charts of an Istio release that meshroll
// installs. Its value is the chart's directory under manifests/charts.
type Component string

// The components meshroll renders. Base carries CRDs and cluster-wide
// validation, Istiod is the (revisioned) control plane, Gateway an ingress
// gateway Deployment whose proxy is injected by the revision.
const (
	Base    Component = "base"
	Istiod  Component = "istio-control/istio-discovery"
	Gateway Component = "gateway"
	// Default is the chart of the default revision's cluster-wide objects
	// (istiod-default-validator): what istioctl renders when the default
	// tag moves. meshroll renders it for tags only, never for an install.
	Default Component = "default"
)

// Defaults for RenderOptions; they are the names Istio's own docs use, so a
// meshroll install looks like a hand-made one.
const (
	DefaultGatewayName      = "istio-ingressgateway"
	DefaultGatewayNamespace = "istio-ingress"
	// DefaultHub is where released Istio images live; chart defaults point at
	// test images, so meshroll always sets it.
	DefaultHub = "docker.io/istio"
)

// RenderOptions says what to render. The zero value of every field but
// Version has a sensible default.
type RenderOptions struct {
	// Version is the Istio release, e.g. "1.23.2"; it picks the charts and
	// the image tag.
	Version string
	// Revision is the revision to install; "" means RevisionName(Version),
	// "default" means an install without a revision.
	Revision string
	// Components to render; nil means Base and Istiod.
	Components []Component
	// Namespace is the control plane's namespace; "" means istio-system.
	Namespace string
	// GatewayName and GatewayNamespace name the gateway release; defaults
	// are "istio-ingressgateway" in "istio-ingress".
	GatewayName, GatewayNamespace string
	// Values are user values merged over meshroll's with Helm's semantics
	// (like -f). They go to every chart; top-level keys a chart's schema does
	// not declare are not passed to that chart, so istiod values can be given
	// together with the gateway. Keys both charts know (e.g. "resources" from
	// 1.24 on) reach both: render the gateway on its own to tune it alone.
	Values map[string]any
	// Set holds Helm --set style "key=value" overrides applied after Values.
	Set []string
	// Source finds the charts; nil means ModuleSource{}.
	Source ChartSource
	// Cache, when not nil, serves a render made before with the same
	// charts, options and values instead of running Helm again, and keeps
	// this one for next time (see RenderCache). nil renders every time. The
	// CLI passes NewRenderCache(DefaultRenderCacheDir()) unless told not to;
	// libraries and tests choose for themselves.
	Cache *RenderCache
}

// Render renders the requested components of an Istio release into
// Kubernetes objects, using Helm's Go SDK so no helm binary is needed and the
// output is the same as `helm template`. Objects come back in apply order:
// CRDs first, then Namespaces, then sorted by kind, namespace and name.
// With opts.Cache set, a render made before with the same inputs is served
// from the cache (as deep copies) instead.
func Render(ctx context.Context, opts RenderOptions) ([]*unstructured.Unstructured, error) {
	o, err := opts.normalize()
	if err != nil {
		return nil, err
	}
	user, err := userValues(o.Values, o.Set)
	if err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("failed to render istio %s: %w", o.Version, err)
	}
	if o.Cache == nil {
		return render(ctx, o, user, "")
	}
	key, dir, err := o.Cache.key(ctx, o, user)
	if err != nil {
		return nil, err
	}
	if objs := key.get(); objs != nil {
		return objs, nil
	}
	objs, err := render(ctx, o, user, dir)
	if err != nil {
		return nil, err
	}
	key.put(objs)
	return objs, nil
}

// render runs Helm for each component; dir is the charts directory, or ""
// to ask the source.
func render(ctx context.Context, o RenderOptions, user map[string]any, dir string) ([]*unstructured.Unstructured, error) {
	if dir == "" {
		var err error
		if dir, err = o.Source.ChartsDir(ctx, o.Version); err != nil {
			return nil, err
		}
	}
	// Charts render independently (each gets its own copy of the values),
	// so they render concurrently; results are collected in component order,
	// so output and the error reported stay deterministic.
	type result struct {
		objs []*unstructured.Unstructured
		err  error
	}
	results := make([]result, len(o.Components))
	var wg sync.WaitGroup
	for i, comp := range o.Components {
		wg.Go(func() {
			if err := ctx.Err(); err != nil {
				results[i].err = fmt.Errorf("failed to render component %q: %w", comp, err)
				return
			}
			results[i].objs, results[i].err = renderComponent(dir, comp, o, user)
		})
	}
	wg.Wait()
	set := newObjectSet()
	for i, comp := range o.Components {
		objs, err := results[i].objs, results[i].err
		if err != nil {
			return nil, err
		}
		if err := set.add(objs); err != nil {
			return nil, fmt.Errorf("failed to render component %q of istio %s: %w", comp, o.Version, err)
		}
	}
	return set.sorted(), nil
}

// normalize fills defaults and validates options, so rendering itself never
// has to guess.
func (opts RenderOptions) normalize() (RenderOptions, error) {
	o := opts
	o.Version = strings.TrimPrefix(strings.TrimSpace(o.Version), "v")
	if !versionPattern.MatchString(o.Version) {
		return o, fmt.Errorf("failed to render istio %q: version must look like 1.23.2", opts.Version)
	}
	if o.Revision == "" {
		o.Revision = RevisionName(o.Version)
	}
	if err := ValidateRevision(o.Revision); err != nil {
		return o, fmt.Errorf("failed to render istio %s: %w", o.Version, err)
	}
	if o.Components == nil {
		o.Components = []Component{Base, Istiod}
	}
	var comps []Component
	for _, c := range o.Components {
		switch c {
		case Base, Istiod, Gateway, Default:
		default:
			return o, fmt.Errorf("failed to render component %q: unknown component (known: %q, %q, %q, %q)", c, Base, Istiod, Gateway, Default)
		}
		if !slices.Contains(comps, c) {
			comps = append(comps, c)
		}
	}
	o.Components = comps
	if o.Namespace == "" {
		o.Namespace = SystemNamespace
	}
	if o.GatewayName == "" {
		o.GatewayName = DefaultGatewayName
	}
	if o.GatewayNamespace == "" {
		o.GatewayNamespace = DefaultGatewayNamespace
	}
	for _, ns := range []string{o.Namespace, o.GatewayNamespace} {
		if errs := validation.IsDNS1123Label(ns); len(errs) > 0 {
			return o, fmt.Errorf("failed to render istio %s: invalid namespace %q: %s", o.Version, ns, strings.Join(errs, "; "))
		}
	}
	if errs := validation.IsDNS1123Subdomain(o.GatewayName); len(errs) > 0 {
		return o, fmt.Errorf("failed to render istio %s: invalid gateway name %q: %s", o.Version, o.GatewayName, strings.Join(errs, "; "))
	}
	if o.Source == nil {
		o.Source = ModuleSource{}
	}
	return o, nil
}

// chartRevision is the revision value the charts expect: they spell the
// default revision as "".
func (opts RenderOptions) chartRevision() string {
	if opts.Revision == DefaultRevision {
		return ""
	}
	return opts.Revision
}

// release returns the Helm release name and namespace a component is
// rendered as; they end up in labels, so they follow Istio's docs.
func (opts RenderOptions) release(comp Component) (string, string) {
	switch comp {
	case Base:
		return "istio-base", opts.Namespace
	case Gateway:
		return opts.GatewayName, opts.GatewayNamespace
	case Default:
		// istioctl renders the default chart (as every chart) as release "istio".
		return "istio", opts.Namespace
	default:
		if rev := opts.chartRevision(); rev != "" {
			return "istiod-" + rev, opts.Namespace
		}
		return "istiod", opts.Namespace
	}
}

// renderComponent loads one chart, renders it and parses the result.
func renderComponent(dir string, comp Component, o RenderOptions, user map[string]any) ([]*unstructured.Unstructured, error) {
	chartDir := filepath.Join(dir, filepath.FromSlash(string(comp)))
	if err := checkDir(chartDir); err != nil {
		return nil, fmt.Errorf("failed to find chart %q of istio %s: %w", comp, o.Version, err)
	}
	ch, err := loader.LoadDir(chartDir)
	if err != nil {
		return nil, fmt.Errorf("failed to load chart %q: %w", chartDir, err)
	}
	if ch.Schema, err = fixRootRef(ch.Schema); err != nil {
		return nil, fmt.Errorf("failed to read values schema of chart %q: %w", chartDir, err)
	}
	vals, err := chartValues(ch, comp, o, user)
	if err != nil {
		return nil, err
	}
	name, ns := o.release(comp)
	top, err := chartutil.ToRenderValues(ch, vals,
		chartutil.ReleaseOptions{Name: name, Namespace: ns, Revision: 1, IsInstall: true}, nil)
	if err != nil {
		return nil, fmt.Errorf("failed to prepare values for chart %q of istio %s: %w", comp, o.Version, err)
	}
	rendered, err := engine.Render(ch, top)
	if err != nil {
		return nil, fmt.Errorf("failed to render chart %q of istio %s: %w", comp, o.Version, err)
	}

	var objs []*unstructured.Unstructured
	if comp == Base {
		for _, crd := range ch.CRDObjects() {
			docs, err := ParseManifest(crd.Filename, string(crd.File.Data))
			if err != nil {
				return nil, err
			}
			objs = append(objs, docs...)
		}
	}
	names := make([]string, 0, len(rendered))
	for n := range rendered {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		base := filepath.Base(n)
		if base == "NOTES.txt" || strings.HasPrefix(base, "_") {
			continue
		}
		docs, err := ParseManifest(n, rendered[n])
		if err != nil {
			return nil, err
		}
		objs = append(objs, docs...)
	}
	for _, obj := range objs {
		if obj.GetNamespace() == "" && namespaced(obj) {
			obj.SetNamespace(ns)
		}
	}
	return objs, nil
}

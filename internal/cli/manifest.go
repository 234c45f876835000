package cli

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/manifest"
	mcheck "github.com/meshroll/meshroll/internal/manifest/check"
)

func newManifestCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Render, validate and diff an Istio revision's manifests before anything is applied",
	}
	cmd.AddCommand(newManifestRenderCmd(), newManifestValidateCmd(), newManifestDiffCmd(kube))
	return cmd
}

// renderFlags binds the flags that choose and shape a rendered revision; the
// install commands share them so they apply exactly what render prints.
type renderFlags struct {
	version, revision, chartsDir string
	profile, repo                string
	components                   []string
	values, set                  []string
	gatewayName, gatewayNS       string
	labels, annotations          map[string]string
	patches                      []string
	templateLabels, noCache      bool
}

func (f *renderFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.version, "version", "", "Istio release to render, e.g. 1.24.2 (required)")
	fl.StringVar(&f.profile, "profile", "", "Istio configuration profile (the charts' `profile` value), e.g. default, demo, minimal")
	fl.StringVar(&f.revision, "revision", "", "revision name (default: the version with dashes, e.g. 1-24-2)")
	fl.StringSliceVar(&f.components, "components", []string{"base", "istiod"}, "components to render: base, istiod, gateway")
	fl.StringArrayVarP(&f.values, "values", "f", nil, "Helm values file (repeatable; later files win)")
	fl.StringArrayVar(&f.set, "set", nil, "Helm value override key=value (repeatable)")
	fl.StringVar(&f.repo, "repo", "", "render from this Helm chart repository URL (charts base, istiod, gateway) instead of the istio.io/istio Go module")
	fl.StringVar(&f.chartsDir, "charts", "", "render from this local charts directory (base/, istio-control/, gateway/) instead of the istio.io/istio Go module")
	fl.StringVar(&f.gatewayName, "gateway-name", istio.DefaultGatewayName, "gateway release name")
	fl.StringVar(&f.gatewayNS, "gateway-namespace", istio.DefaultGatewayNamespace, "gateway namespace")
	fl.StringToStringVar(&f.labels, "label", nil, "label stamped on every rendered object, key=value (repeatable)")
	fl.StringToStringVar(&f.annotations, "annotation", nil, "annotation stamped on every rendered object, key=value (repeatable)")
	fl.BoolVar(&f.templateLabels, "template-labels", false, "also stamp --label on pod templates (changes pod identity: restarts pods)")
	fl.BoolVar(&f.noCache, "no-render-cache", false, "render from the charts even when the same render is cached under the user cache dir")
	fl.StringArrayVar(&f.patches, "patch", nil, "patch file: a YAML list of {target, type: json|merge|strategic, patch} (repeatable)")
}

// postProcess loads the patch files and builds the post-processing step.
func (f *renderFlags) postProcess() (manifest.PostProcess, error) {
	pp := manifest.PostProcess{Labels: f.labels, Annotations: f.annotations, TemplateLabels: f.templateLabels}
	for _, path := range f.patches {
		ps, err := manifest.LoadPatches(path)
		if err != nil {
			return pp, err
		}
		pp.Patches = append(pp.Patches, ps...)
	}
	return pp, nil
}

// render runs the whole pipeline: render, then post-process. Install
// commands call the same function, so they apply what render prints.
func (f *renderFlags) render(ctx context.Context) ([]*unstructured.Unstructured, istio.RenderOptions, error) {
	opts, err := f.options()
	if err != nil {
		return nil, opts, err
	}
	pp, err := f.postProcess()
	if err != nil {
		return nil, opts, err
	}
	objs, err := istio.Render(ctx, opts)
	if err != nil {
		return nil, opts, err
	}
	objs, err = pp.Apply(objs)
	return objs, opts, err
}

// options validates the flags and builds render options; every problem is
// reported before anything is rendered.
func (f *renderFlags) options() (istio.RenderOptions, error) {
	if f.version == "" {
		return istio.RenderOptions{}, fmt.Errorf("--version is required: pass an Istio release such as --version 1.24.2")
	}
	if f.chartsDir != "" && f.repo != "" {
		return istio.RenderOptions{}, fmt.Errorf("--charts and --repo both name a chart source: pass one")
	}
	if _, err := istio.LookupRelease(f.version); err != nil && f.chartsDir == "" && f.repo == "" {
		return istio.RenderOptions{}, err
	}
	if f.revision != "" {
		if err := istio.ValidateRevision(f.revision); err != nil {
			return istio.RenderOptions{}, err
		}
	}
	opts := istio.RenderOptions{
		Version: f.version, Revision: f.revision, Set: f.set,
		GatewayName: f.gatewayName, GatewayNamespace: f.gatewayNS,
	}
	for _, c := range f.components {
		comp, err := parseComponent(c)
		if err != nil {
			return istio.RenderOptions{}, err
		}
		opts.Components = append(opts.Components, comp)
	}
	if f.profile != "" {
		opts.Values = map[string]any{"profile": f.profile}
	}
	for _, path := range f.values {
		vals, err := readValues(path)
		if err != nil {
			return istio.RenderOptions{}, err
		}
		opts.Values = mergeValues(opts.Values, vals)
	}
	switch {
	case f.chartsDir != "":
		opts.Source = istio.DirSource{Dir: f.chartsDir}
	case f.repo != "":
		opts.Source = istio.RepoSource{URL: f.repo}
	}
	if !f.noCache {
		// A release's charts never change, so the same render is reused;
		// without a cache dir the cache still works in memory.
		opts.Cache = renderCache()
	}
	return opts, nil
}

// renderCache is the render cache under the user cache dir; without a cache
// dir it still works in memory.
func renderCache() *istio.RenderCache {
	dir, _ := istio.DefaultRenderCacheDir()
	return istio.NewRenderCache(dir)
}

func parseComponent(s string) (istio.Component, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "base":
		return istio.Base, nil
	case "istiod", "pilot", "istio-discovery":
		return istio.Istiod, nil
	case "gateway", "ingress", "ingressgateway":
		return istio.Gateway, nil
	}
	return "", fmt.Errorf("unknown component %q: use base, istiod or gateway", s)
}

func readValues(path string) (map[string]any, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read values file %q: %w", path, err)
	}
	vals := map[string]any{}
	if err := yaml.Unmarshal(b, &vals); err != nil {
		return nil, fmt.Errorf("failed to parse values file %q: %v; it must be a YAML map of Helm values", path, err)
	}
	return vals, nil
}

// mergeValues deep-merges src over dst, as Helm merges repeated -f files.
func mergeValues(dst, src map[string]any) map[string]any {
	if dst == nil {
		dst = map[string]any{}
	}
	for k, v := range src {
		if sm, ok := v.(map[string]any); ok {
			if dm, ok := dst[k].(map[string]any); ok {
				dst[k] = mergeValues(dm, sm)
				continue
			}
		}
		dst[k] = v
	}
	return dst
}

func newManifestRenderCmd() *cobra.Command {
	f := &renderFlags{}
	var out, layout string
	var split bool
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render a revision from Istio's own Helm charts, post-process it and optionally split CRDs from the rest",
		Example: `  meshroll manifest render --version 1.24.2 --components base,istiod,gateway > istio.yaml
  meshroll manifest render --version 1.24.2 --label team=platform --patch patches.yaml --split --layout charts --out ./istio-1.24.2`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if layout != string(manifest.LayoutDirs) && layout != string(manifest.LayoutCharts) {
				return fmt.Errorf("unknown --layout %q: use dirs or charts", layout)
			}
			if split && out == "" {
				return fmt.Errorf("--split writes two outputs: give a directory with --out")
			}
			objs, opts, err := f.render(cmd.Context())
			if err != nil {
				return err
			}
			if out == "" {
				b, err := manifest.Encode(objs)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(b)
				return err
			}
			files, err := manifest.Write(out, objs, split, manifest.Layout(layout), manifest.ChartMeta{Version: opts.Version, AppVersion: opts.Version})
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "wrote %d objects to %d files under %s\n", len(objs), len(files), out)
			return nil
		},
	}
	f.bind(cmd)
	cmd.Flags().StringVar(&out, "out", "", "write to this directory instead of stdout")
	cmd.Flags().BoolVar(&split, "split", false, "split CRDs from everything else (needs --out)")
	cmd.Flags().StringVar(&layout, "layout", string(manifest.LayoutDirs), "with --out: dirs (plain YAML) or charts (Helm charts istio-crd and istio)")
	return cmd
}

func newManifestValidateCmd() *cobra.Command {
	out := &outputFlag{}
	var kubeVersion string
	cmd := &cobra.Command{
		Use:   "validate DIR|FILE|-",
		Short: "Run meshroll's manifest checks (exit 0 clean, 1 warnings, 2 errors)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := out.validate(); err != nil {
				return err
			}
			var in *mcheck.Input
			if args[0] == "-" {
				docs, err := mcheck.Load(cmd.InOrStdin(), "-")
				if err != nil {
					return err
				}
				in = mcheck.NewInput(docs, kubeVersion)
			} else if isRendered(args[0]) {
				// meshroll's own output (possibly Helm charts with escaped
				// templates): read it back the way it was written.
				objs, err := manifest.ReadDir(args[0])
				if err != nil {
					return err
				}
				in = mcheck.FromObjects(objs, kubeVersion)
			} else {
				var err error
				if in, err = mcheck.LoadPath(args[0]); err != nil {
					return err
				}
				in.KubeVersion = kubeVersion
			}
			findings := mcheck.Run(in, mcheck.All())
			code := mcheck.ExitCode(findings)
			view := struct {
				Findings []mcheck.Finding `json:"findings"`
				ExitCode int              `json:"exitCode"`
			}{findings, code}
			if err := out.print(cmd.OutOrStdout(), view, func(w *tabwriter.Writer) error {
				if len(findings) == 0 {
					fmt.Fprintf(w, "%d objects, %d checks: no findings\n", len(in.Objects), len(mcheck.All()))
					return nil
				}
				fmt.Fprintln(w, "CODE\tCHECK\tSEVERITY\tOBJECT\tMESSAGE\tFIX")
				for _, x := range findings {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", x.Code, x.Check, x.Severity, x.Object, x.Message, x.Fix)
				}
				return nil
			}); err != nil {
				return err
			}
			if code != 0 {
				return &ExitError{Code: code}
			}
			return nil
		},
	}
	out.bind(cmd)
	cmd.Flags().StringVar(&kubeVersion, "kube-version", mcheck.DefaultKubeVersion, "target Kubernetes version for API removal checks")
	return cmd
}

// isRendered reports whether path is a directory `manifest render --out` wrote.
func isRendered(path string) bool {
	_, err := os.Stat(filepath.Join(path, manifest.MarkerFile))
	return err == nil
}

package cli

import (
	"fmt"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/internal/istio"
	mcheck "github.com/meshroll/meshroll/internal/manifest/check"
)

func newManifestCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "manifest",
		Short: "Render, validate and diff an Istio revision's manifests before anything is applied",
	}
	cmd.AddCommand(newManifestRenderCmd(), newManifestValidateCmd())
	return cmd
}

// renderFlags binds the flags that choose and shape a rendered revision; the
// install commands share them so they apply exactly what render prints.
type renderFlags struct {
	version, revision, chartsDir string
	components                   []string
	values, set                  []string
	gatewayName, gatewayNS       string
}

func (f *renderFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.version, "version", "", "Istio release to render, e.g. 1.24.2 (required)")
	fl.StringVar(&f.revision, "revision", "", "revision name (default: the version with dashes, e.g. 1-24-2)")
	fl.StringSliceVar(&f.components, "components", []string{"base", "istiod"}, "components to render: base, istiod, gateway")
	fl.StringArrayVarP(&f.values, "values", "f", nil, "Helm values file (repeatable; later files win)")
	fl.StringArrayVar(&f.set, "set", nil, "Helm value override key=value (repeatable)")
	fl.StringVar(&f.chartsDir, "charts", "", "render from this local charts directory (base/, istio-control/, gateway/) instead of the istio.io/istio Go module")
	fl.StringVar(&f.gatewayName, "gateway-name", istio.DefaultGatewayName, "gateway release name")
	fl.StringVar(&f.gatewayNS, "gateway-namespace", istio.DefaultGatewayNamespace, "gateway namespace")
}

// options validates the flags and builds render options; every problem is
// reported before anything is rendered.
func (f *renderFlags) options() (istio.RenderOptions, error) {
	if f.version == "" {
		return istio.RenderOptions{}, fmt.Errorf("--version is required: pass an Istio release such as --version 1.24.2")
	}
	if _, err := istio.LookupRelease(f.version); err != nil && f.chartsDir == "" {
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
	for _, path := range f.values {
		vals, err := readValues(path)
		if err != nil {
			return istio.RenderOptions{}, err
		}
		opts.Values = mergeValues(opts.Values, vals)
	}
	if f.chartsDir != "" {
		opts.Source = istio.DirSource{Dir: f.chartsDir}
	}
	return opts, nil
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
	cmd := &cobra.Command{
		Use:   "render",
		Short: "Render a revision from Istio's own Helm charts",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			opts, err := f.options()
			if err != nil {
				return err
			}
			objs, err := istio.Render(cmd.Context(), opts)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			for _, o := range objs {
				b, err := yaml.Marshal(o.Object)
				if err != nil {
					return fmt.Errorf("failed to encode %s %q: %w", o.GetKind(), o.GetName(), err)
				}
				fmt.Fprintf(out, "---\n%s", b)
			}
			return nil
		},
	}
	f.bind(cmd)
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

package cli

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"
	authv1 "k8s.io/api/authentication/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/vmagent"
)

// vmOnboardFlags bind `vm onboard`.
type vmOnboardFlags struct {
	name, namespace, address, serviceAccount, version, revision string
	artifactURL, publicKeyFile, command, apiServer, out         string
	labels                                                      []string
	tokenTTLHours                                               int64
	dryRun                                                      bool
}

func newVMOnboardCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &vmOnboardFlags{}
	cmd := &cobra.Command{
		Use:   "onboard NAME --address IP --version 1.23.2 --artifact-url TEMPLATE --out DIR",
		Short: "Register a VM (WorkloadEntry, an agent token that may read and annotate only it) and write its agent's files",
		Long: `Creates the VM's WorkloadEntry (assigned the revision of --version), a ServiceAccount
and a Role that may only get and patch that one WorkloadEntry, and writes into --out what
the VM needs: config.json, token, ca.crt, base/ (the revision-independent onboarding
files) and the systemd units meshroll-agent.service and istio.service. Copy them to
/etc/meshroll-agent/ (config, token, ca.crt, base/) and /etc/systemd/system/ on the VM.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			f.name = args[0]
			if err := f.validate(); err != nil {
				return err
			}
			return runVMOnboard(cmd, kube, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.address, "address", "", "the VM's IP address (WorkloadEntry spec.address; required)")
	fl.StringVar(&f.serviceAccount, "service-account", "", "the VM's mesh identity (default: the VM's name)")
	fl.StringSliceVar(&f.labels, "label", nil, "WorkloadEntry labels key=value (e.g. app=billing)")
	fl.StringVar(&f.version, "version", "", "Istio version the VM starts on (required)")
	fl.StringVar(&f.revision, "revision", "", "revision to assign (default: the version's revision name)")
	fl.StringVar(&f.artifactURL, "artifact-url", "", "sidecar artifact URL template with {{.Version}} (required)")
	fl.StringVar(&f.publicKeyFile, "public-key", "", "PEM ed25519 key the artifacts' checksum files are signed with")
	fl.StringVar(&f.command, "command", "usr/local/bin/pilot-agent", "the sidecar's executable inside the artifact")
	fl.StringVar(&f.apiServer, "api-server", "", "API server URL as the VM reaches it (default: the kubeconfig's)")
	fl.Int64Var(&f.tokenTTLHours, "token-ttl-hours", 24*365, "lifetime of the agent's token (the API server may cap it)")
	fl.StringVar(&f.out, "out", "", "directory for the VM's files (required)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the objects and files, create and write nothing")
	return cmd
}

func (f *vmOnboardFlags) validate() error {
	var problems []string
	if errs := validation.IsDNS1123Subdomain(f.name); len(errs) > 0 {
		problems = append(problems, fmt.Sprintf("name %q: %s", f.name, strings.Join(errs, "; ")))
	}
	if f.address == "" {
		problems = append(problems, "--address is required (the VM's IP)")
	}
	if f.version == "" {
		problems = append(problems, "--version is required (the Istio version the VM starts on)")
	}
	if f.out == "" && !f.dryRun {
		problems = append(problems, "--out is required (where to write the VM's files)")
	}
	if _, err := vmagent.ParseURLTemplate(f.artifactURL); err != nil {
		problems = append(problems, "--artifact-url: "+err.Error())
	}
	if f.revision == "" && f.version != "" {
		f.revision = istio.RevisionName(f.version)
	}
	if f.version != "" {
		if err := (vmagent.Assignment{Revision: f.revision, Version: f.version}).Validate(); err != nil {
			problems = append(problems, err.Error())
		}
	}
	if f.serviceAccount == "" {
		f.serviceAccount = f.name
	}
	if len(problems) > 0 {
		return fmt.Errorf("invalid vm onboard: %s", strings.Join(problems, "; "))
	}
	return nil
}

// agentName names the agent's ServiceAccount, Role and RoleBinding.
func (f *vmOnboardFlags) agentName() string { return "meshroll-agent-" + f.name }

func runVMOnboard(cmd *cobra.Command, kube *genericclioptions.ConfigFlags, f *vmOnboardFlags) error {
	ctx := cmd.Context()
	f.namespace = "default"
	if ns, _, err := kube.ToRawKubeConfigLoader().Namespace(); err == nil && ns != "" {
		f.namespace = ns // -n or the context's namespace
	}
	var pubKey string
	if f.publicKeyFile != "" {
		b, err := os.ReadFile(f.publicKeyFile)
		if err != nil {
			return fmt.Errorf("failed to read --public-key %q: %w", f.publicKeyFile, err)
		}
		pubKey = string(b)
	}
	snap, dyn, err := vmClients(cmd, kube)
	if err != nil {
		return err
	}
	if !slices.Contains(installedRevisions(snap), f.revision) {
		return fmt.Errorf("revision %q is not installed (installed: %s): install it first with `meshroll revision install --version %s`",
			f.revision, strings.Join(installedRevisions(snap), ", "), f.version)
	}
	cfg, err := restConfig(kube)
	if err != nil {
		return err
	}
	objs := onboardObjects(f)
	if f.dryRun {
		for _, o := range objs {
			fmt.Fprintf(cmd.OutOrStdout(), "would apply %s %s/%s\n", o.GetKind(), o.GetNamespace(), o.GetName())
		}
		fmt.Fprintf(cmd.OutOrStdout(), "would request a %dh token for ServiceAccount %s/%s and write config.json, token, ca.crt, base/, meshroll-agent.service, istio.service into %s\n",
			f.tokenTTLHours, f.namespace, f.agentName(), dash(f.out))
		return nil
	}
	for _, o := range objs {
		if err := applyUnstructured(ctx, dyn, o); err != nil {
			return err
		}
	}
	kc, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create kubernetes client: %w", err)
	}
	ttl := f.tokenTTLHours * 3600
	tok, err := kc.CoreV1().ServiceAccounts(f.namespace).CreateToken(ctx, f.agentName(),
		&authv1.TokenRequest{Spec: authv1.TokenRequestSpec{ExpirationSeconds: &ttl}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("failed to create token for ServiceAccount %q: %w", f.namespace+"/"+f.agentName(), err)
	}
	rootCert := ""
	if cm, err := kc.CoreV1().ConfigMaps(f.namespace).Get(ctx, "istio-ca-root-cert", metav1.GetOptions{}); err == nil {
		rootCert = cm.Data["root-cert.pem"]
	}
	if err := writeOnboardFiles(f, cfg, tok.Status.Token, rootCert, pubKey); err != nil {
		return err
	}
	fmt.Fprintf(cmd.OutOrStdout(), "onboarded VM %s/%s on %s; its files are in %s\n", f.namespace, f.name, f.revision, f.out)
	return nil
}

// onboardObjects are the WorkloadEntry and the agent's scoped identity: its
// Role grants get and patch on this one WorkloadEntry (resourceNames), so a
// stolen agent token reads and changes nothing else.
func onboardObjects(f *vmOnboardFlags) []*unstructured.Unstructured {
	labels := map[string]any{}
	for _, l := range f.labels {
		k, v, _ := strings.Cut(l, "=")
		labels[k] = v
	}
	we := map[string]any{
		"apiVersion": "networking.istio.io/v1", "kind": "WorkloadEntry",
		"metadata": map[string]any{"name": f.name, "namespace": f.namespace, "annotations": map[string]any{
			vmagent.AnnotationDesiredRevision: f.revision, vmagent.AnnotationDesiredVersion: f.version,
		}},
		"spec": map[string]any{"address": f.address, "serviceAccount": f.serviceAccount, "labels": labels},
	}
	sa := map[string]any{"apiVersion": "v1", "kind": "ServiceAccount", "metadata": map[string]any{"name": f.agentName(), "namespace": f.namespace}}
	role := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
		"metadata": map[string]any{"name": f.agentName(), "namespace": f.namespace},
		"rules": []any{map[string]any{"apiGroups": []any{"networking.istio.io"}, "resources": []any{"workloadentries"},
			"resourceNames": []any{f.name}, "verbs": []any{"get", "patch"}}}}
	binding := map[string]any{"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
		"metadata": map[string]any{"name": f.agentName(), "namespace": f.namespace},
		"roleRef":  map[string]any{"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": f.agentName()},
		"subjects": []any{map[string]any{"kind": "ServiceAccount", "name": f.agentName(), "namespace": f.namespace}}}
	var out []*unstructured.Unstructured
	for _, o := range []map[string]any{we, sa, role, binding} {
		out = append(out, &unstructured.Unstructured{Object: o})
	}
	return out
}

func applyUnstructured(ctx context.Context, dyn dynamic.Interface, o *unstructured.Unstructured) error {
	gvk := o.GroupVersionKind()
	resource := map[string]string{"WorkloadEntry": "workloadentries", "ServiceAccount": "serviceaccounts", "Role": "roles", "RoleBinding": "rolebindings"}[gvk.Kind]
	gvr := schema.GroupVersionResource{Group: gvk.Group, Version: gvk.Version, Resource: resource}
	if gvk.Kind == "WorkloadEntry" {
		gvr = inventory.WorkloadEntryGVR
	}
	_, err := dyn.Resource(gvr).Namespace(o.GetNamespace()).Apply(ctx, o.GetName(), o, metav1.ApplyOptions{FieldManager: "meshroll", Force: true})
	if err != nil {
		return fmt.Errorf("failed to apply %s %q: %w", gvk.Kind, o.GetNamespace()+"/"+o.GetName(), err)
	}
	return nil
}

// writeOnboardFiles writes what the VM needs, paths as on the VM.
func writeOnboardFiles(f *vmOnboardFlags, cfg *rest.Config, token, rootCert, pubKey string) error {
	api := f.apiServer
	if api == "" {
		api = cfg.Host
	}
	agentCfg := vmagent.Config{
		Root: vmagent.DefaultRoot, BaseDir: "/etc/meshroll-agent/base",
		APIServer: api, CAFile: "/etc/meshroll-agent/ca.crt", TokenFile: "/etc/meshroll-agent/token",
		Namespace: f.namespace, Name: f.name, ArtifactURL: f.artifactURL, PublicKey: pubKey,
		Command: f.command, Args: []string{"proxy"}, Service: "systemd", Unit: "istio.service",
		ReadyURL: "http://127.0.0.1:15021/healthz/ready", VersionURL: "http://127.0.0.1:15000/server_info",
	}
	base := vmagent.Base{
		ClusterEnv: map[string]string{
			"ISTIO_INBOUND_PORTS": "*", "ISTIO_NAMESPACE": f.namespace, "ISTIO_SERVICE": f.name + "." + f.namespace,
			"ISTIO_SERVICE_CIDR": "*", "ISTIO_LOCAL_EXCLUDE_PORTS": "22,15090,15021,15020", "SERVICE_ACCOUNT": f.serviceAccount,
			"ISTIO_SVC_IP": f.address,
		},
		ProxyConfig: map[string]any{"proxyMetadata": map[string]string{
			"POD_NAMESPACE": f.namespace, "SERVICE_ACCOUNT": f.serviceAccount, "ISTIO_META_WORKLOAD_NAME": f.name,
		}},
	}
	ca := cfg.CAData
	if len(ca) == 0 && cfg.CAFile != "" {
		b, err := os.ReadFile(cfg.CAFile)
		if err != nil {
			return fmt.Errorf("failed to read the API server CA %q: %w", cfg.CAFile, err)
		}
		ca = b
	}
	files := map[string][]byte{
		"token": []byte(token), "ca.crt": ca,
		"meshroll-agent.service": []byte(vmagent.AgentUnit), "istio.service": []byte(vmagent.SidecarUnit),
		filepath.Join("base", vmagent.RootCertFile): []byte(rootCert),
	}
	for name, v := range map[string]any{"config.json": agentCfg, filepath.Join("base", vmagent.BaseFile): base} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			return fmt.Errorf("failed to encode %s: %w", name, err)
		}
		files[name] = b
	}
	for name, b := range files {
		p := filepath.Join(f.out, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return fmt.Errorf("failed to create %q: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			return fmt.Errorf("failed to write %q: %w", p, err)
		}
	}
	return nil
}

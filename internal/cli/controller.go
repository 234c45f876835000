package cli

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/controller"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/webhook"
)

// controllerFlags bind `meshroll controller`'s flags.
type controllerFlags struct {
	metricsAddr, probeAddr, namespace, identity string
	leaseDuration, renewDeadline, retryPeriod   time.Duration
	chartsDir, repo                             string
	plainHTTP, dryRun                           bool
	// webhookAddr serves the assignment webhook ("0" disables it);
	// webhookURL registers it by URL instead of webhookService.
	webhookAddr, webhookURL, webhookService, webhookCertNS string
	// certValidity, certRenewBefore and caPropagation tune the
	// webhook certificate's rotation by the leader.
	certValidity, certRenewBefore, caPropagation time.Duration
}

func (f *controllerFlags) bind(cmd *cobra.Command) {
	ns := os.Getenv("POD_NAMESPACE")
	if ns == "" {
		ns = "meshroll-system"
	}
	fl := cmd.Flags()
	fl.StringVar(&f.metricsAddr, "metrics-bind-address", ":8080", "serve Prometheus metrics on this address (0 disables)")
	fl.StringVar(&f.probeAddr, "health-probe-bind-address", ":8081", "serve /healthz and /readyz on this address")
	fl.StringVar(&f.namespace, "leader-election-namespace", ns, "namespace of the leader-election Lease (default $POD_NAMESPACE, else meshroll-system)")
	fl.StringVar(&f.identity, "identity", "", "this replica's name in the Leases (default host/pid/start)")
	fl.DurationVar(&f.leaseDuration, "lease-duration", 15*time.Second, "a standby takes over at most this long after the leader stopped renewing")
	fl.DurationVar(&f.renewDeadline, "renew-deadline", 10*time.Second, "the leader gives up leadership when it could not renew for this long")
	fl.DurationVar(&f.retryPeriod, "retry-period", 2*time.Second, "how often replicas try to acquire or renew the Lease")
	fl.StringVar(&f.chartsDir, "charts", "", "render Istio from this local charts directory instead of the istio.io/istio Go module")
	fl.StringVar(&f.repo, "repo", "", "render Istio from this Helm chart repository (https://…, its index.yaml) or OCI registry (oci://host/path) instead of the chart archives built into the binary")
	fl.BoolVar(&f.plainHTTP, "plain-http", false, "talk plain HTTP to the --repo oci:// registry (no TLS)")
	fl.StringVar(&f.webhookAddr, "webhook-bind-address", "0", "serve the revision-assignment webhook on this address, e.g. :9443 (the chart sets it; 0 disables it)")
	fl.StringVar(&f.webhookURL, "webhook-url", "", "register the webhook by this https URL (an API server that reaches the controller directly) instead of --webhook-service")
	fl.StringVar(&f.webhookService, "webhook-service", "", "namespace/name of the Service in front of the webhook (default <leader-election-namespace>/meshroll-webhook, the chart's)")
	fl.StringVar(&f.webhookCertNS, "webhook-cert-namespace", "", "namespace of the webhook's certificate Secret meshroll-webhook-cert (default the leader-election namespace)")
	fl.DurationVar(&f.certValidity, "webhook-cert-validity", webhook.DefaultCertValidity, "lifetime of each webhook serving certificate (and its CA) the leader issues")
	fl.DurationVar(&f.certRenewBefore, "webhook-cert-renew-before", webhook.DefaultRenewBefore, "the leader rotates the webhook certificate this long before it expires")
	fl.DurationVar(&f.caPropagation, "webhook-ca-propagation", webhook.DefaultPropagation, "during a rotation, how long the new CA is trusted (published in the webhook configuration) before the certificate it signs is served: the time every API server needs to see the change")
	fl.BoolVar(&f.dryRun, "dry-run", false, "check the configuration and the permissions the controller needs, print them and exit without reconciling anything")
}

func (f *controllerFlags) validate() error {
	if f.chartsDir != "" && f.repo != "" {
		return fmt.Errorf("--charts and --repo both name a chart source: pass one")
	}
	if f.leaseDuration <= f.renewDeadline || f.renewDeadline <= f.retryPeriod || f.retryPeriod <= 0 {
		return fmt.Errorf("leader election needs --lease-duration (%s) > --renew-deadline (%s) > --retry-period (%s) > 0", f.leaseDuration, f.renewDeadline, f.retryPeriod)
	}
	if f.plainHTTP && !strings.HasPrefix(f.repo, "oci://") {
		return fmt.Errorf("--plain-http applies to an oci:// --repo only (got --repo %q)", f.repo)
	}
	if f.webhookService != "" {
		if ns, name, ok := strings.Cut(f.webhookService, "/"); !ok || ns == "" || name == "" {
			return fmt.Errorf("invalid --webhook-service %q: want namespace/name, e.g. meshroll-system/meshroll-webhook", f.webhookService)
		}
	}
	if f.webhookURL != "" && f.webhookService != "" {
		return fmt.Errorf("--webhook-url and --webhook-service both say where the API server calls the webhook: pass one (--webhook-url when the API server reaches the controller directly, else --webhook-service)")
	}
	if f.webhookURL != "" && !strings.HasPrefix(f.webhookURL, "https://") {
		return fmt.Errorf("invalid --webhook-url %q: the API server calls webhooks over https, e.g. https://127.0.0.1:9443/mutate", f.webhookURL)
	}
	if f.certValidity <= 0 || f.certRenewBefore <= 0 || f.caPropagation <= 0 {
		return fmt.Errorf("--webhook-cert-validity (%s), --webhook-cert-renew-before (%s) and --webhook-ca-propagation (%s) must be positive", f.certValidity, f.certRenewBefore, f.caPropagation)
	}
	if err := f.rotation().Validate(); err != nil {
		return fmt.Errorf("%w: set --webhook-cert-validity > --webhook-cert-renew-before + --webhook-ca-propagation, and --webhook-cert-renew-before > --webhook-ca-propagation", err)
	}
	return nil
}

// rotation is the webhook options' certificate rotation settings.
func (f *controllerFlags) rotation() controller.WebhookOptions {
	return controller.WebhookOptions{CertValidity: f.certValidity, CertRenewBefore: f.certRenewBefore, CAPropagation: f.caPropagation}
}

// source is where the controller renders Istio from: a charts directory or
// a repository when given, else the archives built into the binary (a pod
// has no Go toolchain), with the Go module only for releases the binary
// does not carry.
func (f *controllerFlags) source() istio.ChartSource {
	if f.plainHTTP {
		return istio.OCISource{URL: f.repo, PlainHTTP: true}
	}
	if src := chartSource(f.chartsDir, f.repo); src != nil {
		return src
	}
	return istio.ArchiveSource{FS: charts.IstioArchives(), Fallback: istio.ModuleSource{}}
}

// certNamespace is where the webhook's certificate Secret lives, "" when
// no webhook is served.
func (f *controllerFlags) certNamespace() string {
	if f.webhookAddr == "0" || f.webhookAddr == "" {
		return ""
	}
	if f.webhookCertNS != "" {
		return f.webhookCertNS
	}
	return f.namespace
}

// webhook is the controller's webhook configuration from the flags.
func (f *controllerFlags) webhook() controller.WebhookOptions {
	ns := f.certNamespace()
	if ns == "" {
		return controller.WebhookOptions{}
	}
	o := f.rotation()
	o.Addr, o.URL, o.CertNamespace = f.webhookAddr, f.webhookURL, ns
	if f.webhookURL == "" {
		svc := &webhook.ServiceRef{Namespace: f.namespace, Name: "meshroll-webhook"}
		if f.webhookService != "" {
			svc.Namespace, svc.Name, _ = strings.Cut(f.webhookService, "/")
		}
		o.Service = svc
	}
	return o
}

func newControllerCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	f := &controllerFlags{}
	fc := &fleetControllerFlags{}
	cmd := &cobra.Command{
		Use:   "controller",
		Short: "Reconcile MeshUpgrades in the cluster (run unattended, e.g. from Git): the same steps `meshroll upgrade` runs",
		Long: `controller runs the MeshUpgrade reconciler. A MeshUpgrade applied to the cluster (kubectl apply, Argo CD,
Flux) alone drives the upgrade: the target revision is installed from spec.version when missing, the waves
are planned and recorded in the status, then the engine takes them one step per reconcile (a pause or a
bake is a requeue). Editing spec.paused pauses and resumes; spec.rollbackRequested rolls back. Run two or
more replicas: they elect a leader on a Lease; a standby takes over within --lease-duration and resumes
from the recorded status. Metrics on --metrics-bind-address /metrics, probes on /healthz and /readyz,
JSON logs on stderr with upgrade, wave and workload keys.`,
		Example: `  meshroll controller --leader-election-namespace meshroll-system
  meshroll controller --dry-run   # check the permissions it needs, start nothing`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := f.validate(); err != nil {
				return err
			}
			ctx := cmd.Context()
			cfg, err := restConfig(kube)
			if err != nil {
				return err
			}
			kc, err := kubernetes.NewForConfig(cfg)
			if err != nil {
				return fmt.Errorf("failed to create kubernetes client: %w", err)
			}
			if err := ping(ctx, kc, cfg.Host); err != nil {
				return err
			}
			if _, err := kc.CoreV1().Namespaces().Get(ctx, f.namespace, metav1.GetOptions{}); apierrors.IsNotFound(err) {
				return fmt.Errorf("leader-election namespace %q does not exist: create it (kubectl create namespace %s) or pass --leader-election-namespace", f.namespace, f.namespace)
			}
			if f.dryRun {
				missing, err := controller.Missing(ctx, kc, f.certNamespace())
				if err != nil {
					return err
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "(dry run) leader election: Lease %s/%s, lease %s\n", f.namespace, controller.LeaderElectionID, f.leaseDuration)
				if len(missing) == 0 {
					fmt.Fprintf(w, "(dry run) permissions: all %d rule(s) granted\n", len(controller.Rules))
				}
				for _, m := range missing {
					fmt.Fprintf(w, "(dry run) permission missing: %s\n", m)
				}
				fmt.Fprintf(w, "(dry run) nothing started\n")
				if len(missing) > 0 {
					return fmt.Errorf("%d permission(s) missing; grant them (the meshroll chart's ClusterRole lists them all)", len(missing))
				}
				return nil
			}
			log := logr.FromSlogHandler(slog.NewJSONHandler(cmd.ErrOrStderr(), nil))
			return controller.Run(ctx, cfg, controller.Options{
				MetricsAddr: f.metricsAddr, ProbeAddr: f.probeAddr, Namespace: f.namespace, Identity: f.identity,
				LeaseDuration: f.leaseDuration, RenewDeadline: f.renewDeadline, RetryPeriod: f.retryPeriod,
				Source: f.source(), Cache: renderCache(), Setup: fc.setup(cfg, f.identity, f.leaseDuration, log), Logger: log, Webhook: f.webhook(),
			})
		},
	}
	f.bind(cmd)
	fc.bind(cmd)
	return cmd
}

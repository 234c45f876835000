package controller

import (
	"context"
	"fmt"
	"os"
	"time"

	"github.com/go-logr/logr"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/healthz"
	"sigs.k8s.io/controller-runtime/pkg/log"
	"sigs.k8s.io/controller-runtime/pkg/metrics"
	metricsserver "sigs.k8s.io/controller-runtime/pkg/metrics/server"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// LeaderElectionID names the Lease the controller replicas elect a leader
// on; `meshroll upgrade` looks for it to tell whether a controller runs.
const LeaderElectionID = "meshroll-controller"

// Options configure one controller process.
type Options struct {
	// MetricsAddr serves /metrics ("0" disables); ProbeAddr /healthz and
	// /readyz.
	MetricsAddr, ProbeAddr string
	// Namespace holds the leader-election Lease (and the per-upgrade
	// leases, which live with Istio's revisions in istio-system).
	Namespace string
	// LeaseDuration, RenewDeadline and RetryPeriod tune leader election;
	// a standby takes over at most LeaseDuration after the leader died.
	LeaseDuration, RenewDeadline, RetryPeriod time.Duration
	// Identity names this replica (default: host/pid/start, as the CLI's
	// lease holders).
	Identity string
	// Source and Cache are where Istio's charts render from.
	Source istio.ChartSource
	Cache  *istio.RenderCache
	// Logger is the structured logger (upgrade, wave and workload keys).
	Logger logr.Logger
	// Setup registers more reconcilers with the manager: the hub's
	// FleetUpgrade reconciler, which internal/cli wires because the member
	// driver (`meshroll upgrade` run in-process) lives there.
	Setup []func(ctrl.Manager) error
	// Webhook is the revision-assignment webhook the replicas serve.
	Webhook WebhookOptions
}

// Run starts the manager and blocks until ctx ends or leadership is lost.
func Run(ctx context.Context, cfg *rest.Config, o Options) error {
	if o.Identity == "" {
		o.Identity = upgrade.LocalHolder()
	}
	if o.Namespace == "" {
		o.Namespace = "meshroll-system"
	}
	if o.LeaseDuration == 0 {
		o.LeaseDuration, o.RenewDeadline, o.RetryPeriod = 15*time.Second, 10*time.Second, 2*time.Second
	}
	log.SetLogger(o.Logger)
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return fmt.Errorf("failed to build the scheme: %w", err)
	}
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		return fmt.Errorf("failed to build the scheme: %w", err)
	}
	mgr, err := ctrl.NewManager(cfg, ctrl.Options{
		Scheme:                        scheme,
		Logger:                        o.Logger,
		Metrics:                       metricsserver.Options{BindAddress: o.MetricsAddr},
		HealthProbeBindAddress:        o.ProbeAddr,
		LeaderElection:                true,
		LeaderElectionID:              LeaderElectionID,
		LeaderElectionNamespace:       o.Namespace,
		LeaderElectionReleaseOnCancel: true,
		LeaseDuration:                 &o.LeaseDuration,
		RenewDeadline:                 &o.RenewDeadline,
		RetryPeriod:                   &o.RetryPeriod,
	})
	if err != nil {
		return fmt.Errorf("failed to create the controller manager: %w", err)
	}
	if err := mgr.AddHealthzCheck("healthz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add the health check: %w", err)
	}
	if err := mgr.AddReadyzCheck("readyz", healthz.Ping); err != nil {
		return fmt.Errorf("failed to add the readiness check: %w", err)
	}
	m, err := NewMetrics(metrics.Registry)
	if err != nil {
		return fmt.Errorf("failed to register the metrics: %w", err)
	}
	kube, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the kubernetes client: %w", err)
	}
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the dynamic client: %w", err)
	}
	meta, err := metadata.NewForConfig(cfg)
	if err != nil {
		return fmt.Errorf("failed to create the metadata client: %w", err)
	}
	r := &Reconciler{
		Client: mgr.GetClient(), Clients: controlplane.Clients{Kube: kube, Dynamic: dyn},
		Inventory: inventory.Clients{Kube: kube, Meta: meta}, Store: upgrade.Store{Dynamic: dyn},
		Recorder: mgr.GetEventRecorder("meshroll-controller"), Metrics: m, Identity: o.Identity,
		Source: o.Source, Cache: o.Cache, LeaseDuration: o.LeaseDuration, CertNamespace: o.Webhook.CertNamespace,
	}
	if err := r.SetupWithManager(mgr); err != nil {
		return fmt.Errorf("failed to set up the MeshUpgrade reconciler: %w", err)
	}
	for _, setup := range o.Setup {
		if err := setup(mgr); err != nil {
			return err
		}
	}
	if err := addWebhook(mgr, o.Webhook, kube, o.Logger); err != nil {
		return err
	}
	o.Logger.Info("starting", "identity", o.Identity, "pid", os.Getpid(), "leaseNamespace", o.Namespace)
	return mgr.Start(ctx)
}

package controller

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"time"

	"github.com/go-logr/logr"
	"github.com/prometheus/client_golang/prometheus"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/manager"
	"sigs.k8s.io/controller-runtime/pkg/metrics"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/internal/webhook"
)

// WebhookOptions configure the revision-assignment webhook the controller
// serves: every replica serves it behind the chart's Service, so any ready
// replica can answer (the API server keeps one HTTP/2 connection per
// webhook client, so one replica may carry most calls until that connection
// is replaced; TestWebhookRotatesUnderLoad saw both replicas serve); the
// leader provisions and rotates its certificate and registers it.
type WebhookOptions struct {
	// Addr is the listen address (e.g. ":9443"); "" serves no webhook.
	Addr string
	// URL registers the webhook by URL (an API server that reaches the
	// controller directly, as the local sandbox does); otherwise Service.
	URL string
	// Service is the Service in front of the replicas (the chart's).
	Service *webhook.ServiceRef
	// CertNamespace holds the certificate Secret (WebhookSecret).
	CertNamespace string
	// CertValidity, CertRenewBefore and CAPropagation tune the leader's
	// certificate rotation (webhook.Rotator's Validity, RenewBefore and
	// Propagation; zero takes its defaults: a year, 30 days, 30 s).
	CertValidity, CertRenewBefore, CAPropagation time.Duration
}

// rotator is the leader's certificate rotation with these options.
func (o WebhookOptions) rotator(kube kubernetes.Interface, hosts []string) *webhook.Rotator {
	return &webhook.Rotator{Kube: kube, Namespace: o.CertNamespace, Secret: WebhookSecret, Hosts: hosts,
		Validity: o.CertValidity, RenewBefore: o.CertRenewBefore, Propagation: o.CAPropagation,
		Publish: func(ctx context.Context, ca []byte) error { return webhook.Register(ctx, kube, o.registration(ca)) }}
}

// Validate refuses rotation settings under which a rotation cannot finish
// in time (webhook.Rotator.Validate).
func (o WebhookOptions) Validate() error {
	return o.rotator(nil, nil).Validate()
}

// checkEvery is how often the leader looks at the certificate, and
// reloadEvery how often every replica re-reads it: half the CA propagation
// time (at least a second, at most a minute and 5 s; 15 s and 5 s by
// default), so a staged rotation is promoted at most half a propagation
// late, and short rotation settings (a test's) still leave every replica
// time to serve a promoted certificate before the next rotation drops the
// CA it replaced.
func (o WebhookOptions) checkEvery() time.Duration {
	return min(max(o.propagation()/2, time.Second), time.Minute)
}

func (o WebhookOptions) reloadEvery() time.Duration {
	return min(max(o.propagation()/2, time.Second), 5*time.Second)
}

func (o WebhookOptions) propagation() time.Duration {
	if o.CAPropagation > 0 {
		return o.CAPropagation
	}
	return webhook.DefaultPropagation
}

// hosts are the names the serving certificate carries: the Service's DNS
// names and the URL's host.
func (o WebhookOptions) hosts() ([]string, error) {
	var hosts []string
	if o.Service != nil {
		hosts = append(hosts, o.Service.Name+"."+o.Service.Namespace+".svc", o.Service.Name+"."+o.Service.Namespace+".svc.cluster.local")
	}
	if o.URL != "" {
		u, err := url.Parse(o.URL)
		if err != nil || u.Scheme != "https" || u.Hostname() == "" {
			return nil, fmt.Errorf("invalid webhook URL %q: want https://host:port/path", o.URL)
		}
		hosts = append(hosts, u.Hostname())
	}
	if len(hosts) == 0 {
		return nil, fmt.Errorf("the webhook needs a URL or a Service to be registered with")
	}
	return hosts, nil
}

func (o WebhookOptions) registration(ca []byte) webhook.Registration {
	if o.URL != "" {
		return webhook.Registration{URL: o.URL, CABundle: ca}
	}
	return webhook.Registration{Service: o.Service, CABundle: ca}
}

// cachedLister lists MeshUpgrades from the manager's cache.
type cachedLister struct{ c client.Reader }

func (l cachedLister) List(ctx context.Context) ([]v1alpha1.MeshUpgrade, error) {
	var list v1alpha1.MeshUpgradeList
	if err := l.c.List(ctx, &list); err != nil {
		return nil, fmt.Errorf("failed to list MeshUpgrades: %w", err)
	}
	return list.Items, nil
}

// serveWebhook is the runnable every replica runs, leader or not.
type serveWebhook struct {
	o     WebhookOptions
	kube  kubernetes.Interface
	cache client.Reader
	log   logr.Logger
	table *webhook.Table
	h     *webhook.Handler
}

func newServeWebhook(o WebhookOptions, kube kubernetes.Interface, cache client.Reader, log logr.Logger) *serveWebhook {
	table := webhook.NewTable()
	return &serveWebhook{o: o, kube: kube, cache: cache, log: log, table: table, h: webhook.NewHandler(table, slog.New(logr.ToSlogHandler(log)))}
}

// register exports the handler's counters, so each replica's share of the
// admission calls (and whether it patched them) is visible.
func (s *serveWebhook) register(reg prometheus.Registerer) error {
	for _, c := range []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshroll_webhook_requests_total",
			Help: "Admission calls this replica's revision-assignment webhook answered."},
			func() float64 { return float64(s.h.Stats().Requests) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "meshroll_webhook_patched_total",
			Help: "Admission calls this replica answered with a patch of the pod template's istio.io/rev."},
			func() float64 { return float64(s.h.Stats().Patched) }),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("failed to register the webhook metrics: %w", err)
		}
	}
	return nil
}

// NeedLeaderElection is false: standbys answer admission calls too.
func (s *serveWebhook) NeedLeaderElection() bool { return false }

// Start waits for the leader to provision the certificate (or reads the
// one there), follows the Secret so a rotation reaches this replica without
// a restart, keeps the assignment table in step with the cached
// MeshUpgrades (a second: a status changes at most that often) and serves
// until ctx ends. It never writes the Secret (webhook.AwaitKeeper says why).
func (s *serveWebhook) Start(ctx context.Context) error {
	hosts, err := s.o.hosts()
	if err != nil {
		return err
	}
	keeper, err := webhook.AwaitKeeper(ctx, s.kube, s.o.CertNamespace, WebhookSecret, hosts, time.Second)
	if err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	onErr := func(err error) { s.log.Error(err, "assignment webhook") }
	go keeper.Follow(ctx, s.kube, s.o.CertNamespace, WebhookSecret, s.o.reloadEvery(), onErr)
	table := s.table
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			m, err := upgrade.LoadAssignments(ctx, cachedLister{s.cache}, s.kube)
			if err == nil {
				table.Replace(m)
			} else if ctx.Err() == nil {
				onErr(err)
			}
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return webhook.ServeRotating(ctx, s.o.Addr, keeper, s.h, func(addr string) {
		s.log.Info("assignment webhook serving", "addr", addr)
	})
}

// rotateWebhook is the leader's part: register the webhook with the
// current CA bundle, then renew the certificate before it expires (two
// phases, old and new CA both trusted in between).
func rotateWebhook(o WebhookOptions, kube kubernetes.Interface, log logr.Logger) manager.RunnableFunc {
	return func(ctx context.Context) error {
		hosts, err := o.hosts()
		if err != nil {
			return err
		}
		rot := o.rotator(kube, hosts)
		for {
			s, err := rot.Check(ctx)
			if err == nil {
				if err = rot.Publish(ctx, s.Data[webhook.CACertKey]); err == nil {
					break
				}
			}
			log.Error(err, "assignment webhook registration; retrying")
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(5 * time.Second):
			}
		}
		log.Info("assignment webhook registered", "url", o.URL, "service", o.Service)
		rot.Run(ctx, o.checkEvery(), func(err error) { log.Error(err, "assignment webhook certificate") })
		return nil
	}
}

// addWebhook adds the webhook's runnables to mgr when o.Addr is set.
func addWebhook(mgr manager.Manager, o WebhookOptions, kube kubernetes.Interface, log logr.Logger) error {
	if o.Addr == "" {
		return nil
	}
	if _, _, err := net.SplitHostPort(o.Addr); err != nil {
		return fmt.Errorf("invalid webhook address %q: %w", o.Addr, err)
	}
	if _, err := o.hosts(); err != nil {
		return err
	}
	if err := o.Validate(); err != nil {
		return err
	}
	log = log.WithName("webhook")
	serve := newServeWebhook(o, kube, mgr.GetCache(), log)
	if err := serve.register(metrics.Registry); err != nil {
		return err
	}
	if err := mgr.Add(serve); err != nil {
		return fmt.Errorf("failed to add the assignment webhook: %w", err)
	}
	if err := mgr.Add(rotateWebhook(o, kube, log)); err != nil {
		return fmt.Errorf("failed to add the webhook certificate rotation: %w", err)
	}
	return nil
}

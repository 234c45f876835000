package cli

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/internal/webhook"
)

// webhookSecret holds the assignment webhook's CA and serving certificate.
const webhookSecret = "meshroll-webhook-cert"

func newWebhookCmd(kube *genericclioptions.ConfigFlags) *cobra.Command {
	var listen string
	cmd := &cobra.Command{
		Use:   "webhook",
		Short: "Serve the revision-assignment webhook: owners' deploys keep the revision meshroll assigned",
		Long: `webhook serves the mutating admission webhook that stamps istio.io/rev on the pod template of
every workload a running MeshUpgrade moved by pod label, so a workload owner's next deploy (with the
old revision in its manifest) cannot undo the migration. Only the upgrade named by the workload's
meshroll.io/upgrade label assigns it, only while that upgrade runs (not once it finished, halted or
rolls back), and only to a revision whose injector is installed. It provisions its TLS certificate in the Secret
istio-system/meshroll-webhook-cert, registers itself (failurePolicy Ignore, 2 s timeout, only objects
labelled meshroll.io/upgrade) and follows MeshUpgrades until interrupted; then it unregisters.`,
		Example: `  meshroll webhook --listen 127.0.0.1:9443`,
		Args:    cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			host, _, err := net.SplitHostPort(listen)
			if err != nil || net.ParseIP(host) == nil {
				return fmt.Errorf("invalid --listen %q: want ip:port, e.g. 127.0.0.1:9443", listen)
			}
			c, _, err := executorClients(cmd.Context(), kube)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			done, err := serveAssignmentsOn(ctx, c.Kube, upgrade.Store{Dynamic: c.Dynamic}, listen, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "assignment webhook serving on %s; Ctrl-C to stop\n", listen)
			<-ctx.Done()
			done()
			return nil
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "127.0.0.1:9443", "address to serve on; the API server must reach it (registered as https://<listen>/mutate)")
	return cmd
}

// serveAssignments serves the webhook on a free loopback port for the length
// of a CLI run.
func serveAssignments(ctx context.Context, kube kubernetes.Interface, store upgrade.Store, log io.Writer) (func(), error) {
	return serveAssignmentsOn(ctx, kube, store, "127.0.0.1:0", log)
}

// serveAssignmentsOn provisions the certificate, serves the handler, keeps
// the table in step with MeshUpgrades (re-listed every second: an upgrade's
// status changes at most that often) and registers the webhook by URL. The
// returned func unregisters it and stops serving.
func serveAssignmentsOn(ctx context.Context, kube kubernetes.Interface, store upgrade.Store, listen string, log io.Writer) (func(), error) {
	host, _, _ := net.SplitHostPort(listen)
	cert, ca, err := webhook.EnsureCert(ctx, kube, istio.SystemNamespace, webhookSecret, []string{host}, time.Now())
	if err != nil {
		return nil, err
	}
	table := webhook.NewTable()
	refresh := func(ctx context.Context) error {
		m, err := upgrade.LoadAssignments(ctx, store, kube)
		if err != nil {
			return err
		}
		table.Replace(m)
		return nil
	}
	if err := refresh(ctx); err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	h := webhook.NewHandler(table, slog.New(slog.NewTextHandler(log, &slog.HandlerOptions{Level: slog.LevelWarn})))
	addr := make(chan string, 1)
	served := make(chan error, 1)
	go func() { served <- webhook.Serve(sctx, listen, cert, h, func(a string) { addr <- a }) }()
	var bound string
	select {
	case bound = <-addr:
	case err := <-served:
		cancel()
		return nil, fmt.Errorf("failed to serve the assignment webhook: %w", err)
	}
	if err := webhook.Register(ctx, kube, webhook.Registration{URL: "https://" + bound + webhook.PathMutate, CABundle: ca}); err != nil {
		cancel()
		return nil, err
	}
	go func() {
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-sctx.Done():
				return
			case <-t.C:
				if err := refresh(sctx); err != nil && sctx.Err() == nil {
					fmt.Fprintf(log, "assignment webhook: %v\n", err)
				}
			}
		}
	}()
	return func() {
		uctx, ucancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer ucancel()
		if err := webhook.Unregister(uctx, kube); err != nil {
			fmt.Fprintf(log, "assignment webhook: %v\n", err)
		}
		cancel()
		<-served
	}, nil
}

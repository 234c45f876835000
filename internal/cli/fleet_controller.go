package cli

import (
	"fmt"
	"strings"
	"time"

	"github.com/go-logr/logr"
	"github.com/spf13/cobra"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/fleet"
	"github.com/meshroll/meshroll/internal/upgrade"
)

// fleetControllerFlags bind the FleetUpgrade reconciler's flags of
// `meshroll controller`: in a hub, the controller also runs FleetUpgrades.
type fleetControllerFlags struct {
	namespace string
	off       bool
	poll      time.Duration
}

func (f *fleetControllerFlags) bind(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.namespace, "fleet-members-namespace", fleet.DefaultNamespace, "hub namespace of the fleet's member Secrets (label "+fleet.LabelCluster+"=<name>) and of the FleetUpgrade Leases")
	fl.BoolVar(&f.off, "no-fleet", false, "do not reconcile FleetUpgrades (by default they are reconciled wherever the FleetUpgrade CRD is installed, i.e. in a hub)")
	fl.DurationVar(&f.poll, "fleet-poll", 2*time.Second, "how often a running FleetUpgrade looks at its members again")
}

// setup returns the manager hook that registers the FleetUpgrade
// reconciler. A cluster without the FleetUpgrade CRD (a member, not a hub)
// gets none: watching a kind the API server does not serve would keep the
// whole manager from starting.
func (f *fleetControllerFlags) setup(cfg *rest.Config, identity string, leaseDuration time.Duration, log logr.Logger) []func(ctrl.Manager) error {
	if f.off {
		return nil
	}
	return []func(ctrl.Manager) error{func(mgr ctrl.Manager) error {
		kube, err := kubernetes.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("failed to create the hub's kubernetes client: %w", err)
		}
		served, err := servesFleetUpgrades(kube)
		if err != nil {
			return err
		}
		if !served {
			log.Info("the FleetUpgrade CRD is not installed: FleetUpgrades are not reconciled here (install the chart's CRDs in a hub, then restart)")
			return nil
		}
		dyn, err := dynamic.NewForConfig(cfg)
		if err != nil {
			return fmt.Errorf("failed to create the hub's dynamic client: %w", err)
		}
		if identity == "" {
			identity = upgrade.LocalHolder()
		}
		lines := logLines{log: log.WithName("fleet")}
		r := &fleet.Reconciler{Store: fleet.Store{Dynamic: dyn}, Hub: kube, Namespace: f.namespace,
			Driver: memberDriver{log: lines}, Recorder: mgr.GetEventRecorder("meshroll-fleet"),
			Identity: identity, LeaseDuration: leaseDuration, Poll: f.poll, Log: lines}
		if err := r.SetupWithManager(mgr); err != nil {
			return fmt.Errorf("failed to set up the FleetUpgrade reconciler: %w", err)
		}
		log.Info("reconciling FleetUpgrades", "membersNamespace", f.namespace)
		return nil
	}}
}

// servesFleetUpgrades asks discovery whether the API server serves
// FleetUpgrades.
func servesFleetUpgrades(kube kubernetes.Interface) (bool, error) {
	list, err := kube.Discovery().ServerResourcesForGroupVersion(v1alpha1.GroupVersion.String())
	if err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("failed to discover the %s resources: %w", v1alpha1.GroupVersion, err)
	}
	for _, r := range list.APIResources {
		if r.Name == v1alpha1.FleetUpgradeGVR.Resource {
			return true, nil
		}
	}
	return false, nil
}

// logLines writes each line the fleet engine and its member runs print as
// one structured log entry (the controller logs JSON).
type logLines struct{ log logr.Logger }

func (l logLines) Write(b []byte) (int, error) {
	for _, line := range strings.Split(strings.TrimRight(string(b), "\n"), "\n") {
		if line != "" {
			l.log.Info(line)
		}
	}
	return len(b), nil
}

package chart

import (
	"bytes"
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshroll/meshroll/charts"
	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/dataplane"
	"github.com/meshroll/meshroll/internal/demo"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/internal/permission"
	"github.com/meshroll/meshroll/internal/upgrade"
	"github.com/meshroll/meshroll/sandbox/istiod/istiodtest"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

const (
	fromVersion = "1.23.2"
	toVersion   = "1.24.2"
	fromRev     = "1-23-2"
	toRev       = "1-24-2"
	toImage     = "docker.io/istio/proxyv2:1.24.2"
)

// TestUpgradeAsChartServiceAccount installs the chart with the Helm SDK,
// then runs a whole `meshroll upgrade` as the chart's ServiceAccount: the
// canary install of 1.24.2 (CRDs, istiod's own RBAC, webhooks), a blue/green
// gateway flip, the assignment webhook (its certificate Secret and
// registration), two waves, tag moves and the prune of 1.23.2. Anything the
// ClusterRole lacks fails the run. Then, with one verb removed from a copy of
// the ClusterRole, the engine's call fails with an error that names exactly
// that verb and resource, and nothing is written.
func TestUpgradeAsChartServiceAccount(t *testing.T) {
	admin := sandboxtest.Config(t)
	kube := kubernetes.NewForConfigOrDie(admin)
	dyn := dynamic.NewForConfigOrDie(admin)
	istiodtest.Start(t)

	// The existing mesh, installed by an administrator: 1.23.2 and a few
	// workloads on it.
	if _, err := controlplane.Install(t.Context(), controlplane.Clients{Kube: kube, Dynamic: dyn},
		controlplane.InstallOptions{Render: istio.RenderOptions{Version: fromVersion, Revision: fromRev}}); err != nil {
		t.Fatalf("install %s: %v", fromVersion, err)
	}
	p, err := demo.MigrationPlan(demo.MigrationOptions{Prefix: "rbac", Namespaces: 2, Workloads: 6, Revision: fromRev})
	if err != nil {
		t.Fatal(err)
	}
	if err := demo.Apply(t.Context(), kube, p); err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	if err := demo.WaitReady(wctx, kube, p); err != nil {
		t.Fatal(err)
	}

	// The chart, as `meshroll install-controller` installs it. The CLI serves
	// its own assignment webhook by URL on 127.0.0.1 (no kube-proxy here), so
	// the chart's Service-based registration is off and the certificate
	// Secret lives where the CLI keeps it.
	kc := sandboxtest.Kubeconfig(t)
	getter := genericclioptions.NewConfigFlags(false)
	getter.KubeConfig = &kc
	vals := map[string]any{"webhook": map[string]any{"enabled": false, "certNamespace": istio.SystemNamespace}}
	start := time.Now()
	rel, err := charts.Install(t.Context(), getter, charts.InstallOptions{Values: vals})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("helm install %s/%s revision %d in %s", rel.Namespace, rel.Name, rel.Version, time.Since(start).Round(time.Millisecond))
	if _, err := charts.Install(t.Context(), getter, charts.InstallOptions{Values: vals}); err != nil {
		t.Fatalf("second install (an upgrade of the release): %v", err)
	}

	sa := saUser(releaseNS, chartSA)
	run := func(args ...string) (string, int) {
		var out, errOut bytes.Buffer
		args = append(args, "--kubeconfig", kc, "--as", sa)
		code := cli.Main(context.Background(), args, &out, &errOut)
		return out.String() + errOut.String(), code
	}
	// Sanity: impersonation is really in force (the SA cannot read Secrets
	// outside the one it is granted).
	_, saKube := as(t, sa)
	if _, err := saKube.CoreV1().Secrets("kube-system").List(t.Context(), metav1.ListOptions{}); !apierrors.IsForbidden(err) {
		t.Fatalf("listing kube-system Secrets as %s: %v, want Forbidden", sa, err)
	}

	nss := p.NamespaceNames()
	for _, args := range [][]string{
		{"gateway", "install", "--name", "edge", "--namespace", "rbac-gw", "--revision", fromRev},
		{"gateway", "expose", "--name", "edge", "--namespace", "rbac-gw"},
		{"upgrade", "--to", toVersion, "--from", fromRev, "--name", "rbac",
			"--namespace-only", strings.Join(nss, ","), "--waves", "2,100%", "--parallelism", "4",
			"--assignment-webhook", "--prune"},
	} {
		start := time.Now()
		out, code := run(args...)
		if code != 0 {
			t.Fatalf("meshroll %v as %s: exit %d\n%s", args, sa, code, out)
		}
		t.Logf("meshroll %s %s as the chart's ServiceAccount: %s", args[0], args[1], time.Since(start).Round(time.Millisecond))
	}
	imgs, err := demo.SettledProxyImages(t.Context(), kube, nss, 6, 3*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if imgs[toImage] != 6 || len(imgs) != 1 {
		t.Errorf("proxies after the upgrade: %v, want all 6 on %s", imgs, toImage)
	}
	if _, err := kube.AppsV1().Deployments(istio.SystemNamespace).Get(t.Context(), "istiod-"+fromRev, metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Errorf("istiod-%s after --prune: %v, want it removed", fromRev, err)
	}

	t.Run("one verb removed", func(t *testing.T) {
		missingVerb(t, kube, nss[0])
	})
}

// missingVerb binds copies of the chart's ClusterRole, each without one verb
// the engine needs, to a ServiceAccount of their own, and runs the engine
// call that needs it: the error names the verb and resource
// (permission.From), the process carries on, and nothing changed.
func missingVerb(t *testing.T, kube kubernetes.Interface, ns string) {
	chartRole, err := kube.RbacV1().ClusterRoles().Get(t.Context(), "meshroll", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		group, resource, verb string
		call                  func(ctx context.Context, kc kubernetes.Interface, dyn dynamic.Interface) error
		unchanged             func(t *testing.T)
	}{
		{
			group: "", resource: "namespaces", verb: "patch",
			call: func(ctx context.Context, kc kubernetes.Interface, _ dynamic.Interface) error {
				_, err := (&dataplane.Executor{Kube: kc}).SetNamespaceRev(ctx, ns, fromRev)
				return err
			},
			unchanged: func(t *testing.T) {
				n, err := kube.CoreV1().Namespaces().Get(t.Context(), ns, metav1.GetOptions{})
				if err != nil {
					t.Fatal(err)
				}
				if got := n.Labels[istio.LabelRev]; got == fromRev {
					t.Errorf("namespace %s relabelled to %s without the permission", ns, got)
				}
			},
		},
		{
			group: "admissionregistration.k8s.io", resource: "mutatingwebhookconfigurations", verb: "list",
			call: func(ctx context.Context, kc kubernetes.Interface, dyn dynamic.Interface) error {
				_, err := upgrade.LoadAssignments(ctx, upgrade.Store{Dynamic: dyn}, kc)
				return err
			},
		},
		{
			group: "meshroll.io", resource: "meshupgrades", verb: "list",
			call: func(ctx context.Context, _ kubernetes.Interface, dyn dynamic.Interface) error {
				_, err := upgrade.Store{Dynamic: dyn}.List(ctx)
				return err
			},
		},
	} {
		t.Run(tt.verb+" "+tt.resource, func(t *testing.T) {
			name := "meshroll-without-" + tt.verb + "-" + tt.resource
			reduced := &rbacv1.ClusterRole{ObjectMeta: metav1.ObjectMeta{Name: name}}
			removed := false
			for _, r := range chartRole.Rules {
				r = *r.DeepCopy()
				if slices.Contains(r.APIGroups, tt.group) && slices.Contains(r.Resources, tt.resource) && slices.Contains(r.Verbs, tt.verb) {
					// Split the rule so only this (group, resource) loses the verb.
					others := slices.DeleteFunc(slices.Clone(r.Resources), func(s string) bool { return s == tt.resource })
					if len(others) > 0 {
						reduced.Rules = append(reduced.Rules, rbacv1.PolicyRule{APIGroups: r.APIGroups, Resources: others, Verbs: r.Verbs})
					}
					r.Resources = []string{tt.resource}
					r.Verbs = slices.DeleteFunc(r.Verbs, func(v string) bool { return v == tt.verb })
					removed = true
				}
				reduced.Rules = append(reduced.Rules, r)
			}
			if !removed {
				t.Fatalf("the chart's ClusterRole has no %q on %s in group %q", tt.verb, tt.resource, tt.group)
			}
			if _, err := kube.RbacV1().ClusterRoles().Create(t.Context(), reduced, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			if _, err := kube.RbacV1().ClusterRoleBindings().Create(t.Context(), &rbacv1.ClusterRoleBinding{
				ObjectMeta: metav1.ObjectMeta{Name: name},
				RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: name},
				Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: releaseNS, Name: name}},
			}, metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			sandboxtest.WaitGranted(t, kube, saUser(releaseNS, name), reduced)
			cfg, kc := as(t, saUser(releaseNS, name))
			dyn := dynamic.NewForConfigOrDie(cfg)
			err := tt.call(t.Context(), kc, dyn)
			m, ok := permission.From(err)
			if !ok {
				t.Fatalf("error %v: not an RBAC refusal", err)
			}
			if m.Verb != tt.verb || m.Resource != tt.resource || m.Group != tt.group || m.Namespace != "" {
				t.Errorf("missing permission %+v, want verb %q on %q in group %q, cluster-wide", *m, tt.verb, tt.resource, tt.group)
			}
			msg := permission.Explain(err).Error()
			if !strings.Contains(msg, `missing permission: verb "`+tt.verb+`" on resource "`+tt.resource+`"`) {
				t.Errorf("explained error %q does not name the permission", msg)
			}
			t.Logf("%s", msg)
			if tt.unchanged != nil {
				tt.unchanged(t)
			}
		})
	}
}

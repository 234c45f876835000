package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/cli"
	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// TestRevisionTags sets a tag, injects through it, moves it with a migration
// report, refuses a move beyond skew and invalid requests without changing
// anything, removes it, and points the default tag (and
// istiod-default-validator) at another revision and back.
func TestRevisionTags(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	ctx := t.Context()
	for _, v := range []string{"1.23.2", "1.24.2", "1.25.1"} {
		if _, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: istio.RenderOptions{Version: v}}); err != nil {
			t.Fatalf("install %s: %v", v, err)
		}
	}
	const tag, ns = "prod-canary", "tag-prod-canary"
	webhook := istio.TagWebhookPrefix + tag
	mwcs := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	if err := mwcs.Delete(ctx, webhook, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		t.Fatal(err)
	}
	set := func(opts controlplane.TagOptions) (*controlplane.TagResult, error) {
		t.Helper()
		opts.Snapshot = e.snapshot(t)
		start := time.Now()
		res, err := controlplane.SetTag(ctx, e.controlplane(), opts)
		t.Logf("set tag %s -> %s (overwrite=%t force=%t dry-run=%t) in %s: err=%v", opts.Tag, opts.Revision, opts.Overwrite, opts.Force, opts.DryRun,
			time.Since(start).Round(time.Millisecond), err)
		return res, err
	}
	pointsAt := func(name string) string {
		t.Helper()
		w, err := mwcs.Get(ctx, name, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			return ""
		}
		if err != nil {
			t.Fatal(err)
		}
		return w.Labels[istio.LabelRev]
	}
	wantErr := func(err error, want string) {
		t.Helper()
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to contain %q", err, want)
		}
	}

	t.Run("invalid requests change nothing", func(t *testing.T) {
		_, err := set(controlplane.TagOptions{Tag: "Prod_Canary", Revision: "1-24-2"})
		wantErr(err, "invalid tag name")
		_, err = set(controlplane.TagOptions{Tag: "1-25-1", Revision: "1-24-2"})
		wantErr(err, "a revision of that name is installed")
		_, err = set(controlplane.TagOptions{Tag: tag, Revision: "1-99-0"})
		wantErr(err, `revision "1-99-0" is not installed`)
		if rev := pointsAt(webhook); rev != "" {
			t.Errorf("a refused request created %s (points at %s)", webhook, rev)
		}
	})

	t.Run("set and inject", func(t *testing.T) {
		res, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-24-2"})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan.Previous != "" || len(res.Changes) != 1 || res.Changes[0].Action != controlplane.Created {
			t.Errorf("first set: plan %+v changes %v", res.Plan, res.Changes)
		}
		assertTagClientConfig(t, e, webhook, "istio-sidecar-injector-1-24-2")
		_, err = e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
			Name: ns, Labels: map[string]string{istio.LabelRev: tag}}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			t.Fatal(err)
		}
		if img := createProbe(t, e, ns, "probe-1"); img != "docker.io/istio/proxyv2:1.24.2" {
			t.Errorf("pod in namespace labelled %s=%s got proxy %q, want 1.24.2", istio.LabelRev, tag, img)
		}
		again, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-24-2"})
		if err != nil {
			t.Fatalf("setting the same tag again: %v", err)
		}
		if again.Changes[0].Action != controlplane.Unchanged {
			t.Errorf("setting the same tag again: %v", again.Changes)
		}
	})

	t.Run("move", func(t *testing.T) {
		_, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-25-1"})
		wantErr(err, "--overwrite")
		dry, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-25-1", Overwrite: true, DryRun: true})
		if err != nil {
			t.Fatal(err)
		}
		if dry.Changes[0].Action != controlplane.Configured {
			t.Errorf("dry run changes = %v", dry.Changes)
		}
		if rev := pointsAt(webhook); rev != "1-24-2" {
			t.Errorf("after a dry run the tag points at %q, want 1-24-2", rev)
		}
		res, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-25-1", Overwrite: true})
		if err != nil {
			t.Fatal(err)
		}
		if res.Plan.Previous != "1-24-2" || !slices.Contains(res.Plan.Namespaces, ns) {
			t.Errorf("migration report: %+v", res.Plan)
		}
		var migrated []string
		for _, m := range res.Plan.Workloads {
			migrated = append(migrated, fmt.Sprintf("%s/%s@%s:%s", m.Namespace, m.Name, m.ProxyVersion, m.Skew.Level))
		}
		if !slices.Contains(migrated, ns+"/probe-1@1.24.2:behind") {
			t.Errorf("migrated workloads = %v, want %s/probe-1 on 1.24.2 behind", migrated, ns)
		}
		if rev := pointsAt(webhook); rev != "1-25-1" {
			t.Errorf("tag points at %q, want 1-25-1", rev)
		}
		assertTagClientConfig(t, e, webhook, "istio-sidecar-injector-1-25-1")
		if img := createProbe(t, e, ns, "probe-2"); img != "docker.io/istio/proxyv2:1.25.1" {
			t.Errorf("pod after the move got proxy %q, want 1.25.1", img)
		}
	})

	t.Run("move beyond skew is refused", func(t *testing.T) {
		// probe-2 runs 1.25.1: moving the tag back would put it ahead of its control plane.
		_, err := set(controlplane.TagOptions{Tag: tag, Revision: "1-24-2", Overwrite: true})
		wantErr(err, "probe-2 (1 pod(s), proxy 1.25.1): proxy 1.25.1 is newer than its control plane 1.24.2")
		if rev := pointsAt(webhook); rev != "1-25-1" {
			t.Errorf("refused move changed the tag to %q", rev)
		}
	})

	t.Run("list", func(t *testing.T) {
		var found bool
		for _, ti := range controlplane.ListTags(e.snapshot(t)) {
			if ti.Tag == tag {
				found = true
				if ti.Revision != "1-25-1" || !slices.Equal(ti.Namespaces, []string{ns}) {
					t.Errorf("tag list row = %+v", ti)
				}
			}
		}
		if !found {
			t.Errorf("tag %s not listed", tag)
		}
	})

	t.Run("cli", func(t *testing.T) {
		run := func(args ...string) (string, string, int) {
			var out, errOut bytes.Buffer
			code := cli.Main(ctx, append(args, "--kubeconfig", sandboxtest.Kubeconfig(t)), &out, &errOut)
			return out.String(), errOut.String(), code
		}
		out, errOut, code := run("tag", "list", "-o", "json")
		var rows []controlplane.TagInfo
		if code != 0 || json.Unmarshal([]byte(out), &rows) != nil {
			t.Fatalf("tag list: exit %d, stdout %q, stderr %q", code, out, errOut)
		}
		if !slices.ContainsFunc(rows, func(r controlplane.TagInfo) bool { return r.Tag == tag && r.Revision == "1-25-1" }) {
			t.Errorf("tag list = %+v", rows)
		}
		_, errOut, code = run("tag", "set", tag, "--revision", "1-24-2", "--overwrite")
		if code != 1 || !strings.Contains(errOut, "beyond supported skew") || strings.Count(errOut, "error:") != 1 {
			t.Errorf("refused move: exit %d, stderr %q", code, errOut)
		}
		out, _, code = run("tag", "set", tag, "--revision", "1-25-1", "--dry-run")
		if code != 0 || !strings.Contains(out, "(dry run) MutatingWebhookConfiguration/"+webhook+" unchanged") {
			t.Errorf("dry run: exit %d, stdout %q", code, out)
		}
	})

	t.Run("remove", func(t *testing.T) {
		remove := func(opts controlplane.RemoveTagOptions) (*controlplane.RemoveTagResult, error) {
			opts.Tag, opts.Snapshot = tag, e.snapshot(t)
			return controlplane.RemoveTag(ctx, e.controlplane(), opts)
		}
		_, err := remove(controlplane.RemoveTagOptions{})
		wantErr(err, "namespaces still use it ("+ns+")")
		if _, err := remove(controlplane.RemoveTagOptions{Force: true, DryRun: true}); err != nil {
			t.Fatal(err)
		}
		if pointsAt(webhook) == "" {
			t.Fatal("dry-run removal deleted the tag")
		}
		res, err := remove(controlplane.RemoveTagOptions{Force: true})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(res.Namespaces, []string{ns}) || pointsAt(webhook) != "" {
			t.Errorf("removal: %+v, webhook still points at %q", res, pointsAt(webhook))
		}
		_, err = remove(controlplane.RemoveTagOptions{})
		wantErr(err, "no such tag")
	})

	t.Run("default tag", func(t *testing.T) {
		// moveDefault moves the default tag; earlier tests may have left
		// proxies on the default injector that the move would put beyond
		// skew, and then the move must be refused before it is forced.
		moveDefault := func(rev string) *controlplane.TagResult {
			t.Helper()
			req := controlplane.TagRequest{Tag: istio.DefaultRevision, Revision: rev, Overwrite: true, Force: true}
			p, err := controlplane.PlanTag(e.snapshot(t), req)
			if err != nil {
				t.Fatal(err)
			}
			force := len(p.Unsupported()) > 0
			if force {
				_, err := set(controlplane.TagOptions{Tag: istio.DefaultRevision, Revision: rev, Overwrite: true})
				wantErr(err, "beyond supported skew")
			}
			res, err := set(controlplane.TagOptions{Tag: istio.DefaultRevision, Revision: rev, Overwrite: true, Force: force})
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("default tag %q -> %s migrates %d namespaces, %d workload groups (forced: %t)",
				res.Plan.Previous, res.Plan.Revision, len(res.Plan.Namespaces), len(res.Plan.Workloads), force)
			return res
		}
		legacy := fakeLegacyInjector(t, e)
		moveDefault("1-24-2")
		assertValidator(t, e, "1-24-2")
		if rev := pointsAt(istio.TagWebhookPrefix + istio.DefaultRevision); rev != "1-24-2" {
			t.Errorf("default tag points at %q, want 1-24-2", rev)
		}
		w, err := mwcs.Get(ctx, legacy, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, h := range w.Webhooks {
			if h.NamespaceSelector == nil || h.NamespaceSelector.MatchLabels["istio.io/deactivated"] != "never-match" ||
				h.ObjectSelector == nil || h.ObjectSelector.MatchLabels["istio.io/deactivated"] != "never-match" {
				t.Errorf("legacy injector webhook %s still matches: %v / %v", h.Name, h.NamespaceSelector, h.ObjectSelector)
			}
		}
		if err := mwcs.Delete(ctx, legacy, metav1.DeleteOptions{}); err != nil {
			t.Fatal(err)
		}
		moveDefault("1-23-2")
		assertValidator(t, e, "1-23-2")
	})
}

// createProbe creates a bare pod and returns the proxy image it was given.
func createProbe(t *testing.T, e *env, ns, name string) string {
	t.Helper()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}},
	}
	got, err := e.kube.CoreV1().Pods(ns).Create(t.Context(), pod, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		got, err = e.kube.CoreV1().Pods(ns).Get(t.Context(), name, metav1.GetOptions{})
	}
	if err != nil {
		t.Fatalf("create pod %s/%s: %v", ns, name, err)
	}
	return proxyImageOf(got)
}

// assertTagClientConfig checks that every webhook of the tag reaches the
// injector the revision's own webhook reaches.
func assertTagClientConfig(t *testing.T, e *env, tagWebhook, injector string) {
	t.Helper()
	mwcs := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	tw, err := mwcs.Get(t.Context(), tagWebhook, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	iw, err := mwcs.Get(t.Context(), injector, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := iw.Webhooks[0].ClientConfig
	if len(tw.Webhooks) == 0 {
		t.Fatalf("%s has no webhooks", tagWebhook)
	}
	for _, h := range tw.Webhooks {
		if ptrString(h.ClientConfig.URL) != ptrString(want.URL) || string(h.ClientConfig.CABundle) != string(want.CABundle) {
			t.Errorf("%s webhook %s client config url %q, want %q (from %s)", tagWebhook, h.Name, ptrString(h.ClientConfig.URL), ptrString(want.URL), injector)
		}
	}
}

// assertValidator checks istiod-default-validator points at rev's validator.
func assertValidator(t *testing.T, e *env, rev string) {
	t.Helper()
	vwcs := e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	v, err := vwcs.Get(t.Context(), controlplane.DefaultValidatorName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	src, err := vwcs.Get(t.Context(), "istio-validator-"+rev+"-"+istio.SystemNamespace, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if v.Labels[istio.LabelRev] != rev {
		t.Errorf("%s labelled %s=%q, want %q", v.Name, istio.LabelRev, v.Labels[istio.LabelRev], rev)
	}
	want := src.Webhooks[0].ClientConfig
	for _, h := range v.Webhooks {
		if ptrString(h.ClientConfig.URL) != ptrString(want.URL) || string(h.ClientConfig.CABundle) != string(want.CABundle) {
			t.Errorf("%s webhook %s url %q, want %q", v.Name, h.Name, ptrString(h.ClientConfig.URL), ptrString(want.URL))
		}
	}
}

// fakeLegacyInjector creates a non-revisioned istio-sidecar-injector (a copy
// of 1-23-2's) as a pre-revision install leaves behind.
func fakeLegacyInjector(t *testing.T, e *env) string {
	t.Helper()
	mwcs := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	src, err := mwcs.Get(t.Context(), "istio-sidecar-injector-1-23-2", metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	legacy := &admissionv1.MutatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: istio.InjectorConfigMapPrefix, Labels: map[string]string{istio.LabelRev: istio.DefaultRevision}},
		Webhooks:   src.DeepCopy().Webhooks,
	}
	if _, err := mwcs.Create(t.Context(), legacy, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = mwcs.Delete(context.Background(), legacy.Name, metav1.DeleteOptions{})
	})
	return legacy.Name
}

func ptrString(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

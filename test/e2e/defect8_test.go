package e2e

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	"github.com/meshroll/meshroll/internal/controlplane"
	"github.com/meshroll/meshroll/internal/inventory"
	"github.com/meshroll/meshroll/internal/istio"
)

// rogueInjector is what the sandbox's stand-in injector used to publish
// (ConfigMap kube-public/meshroll-sandbox-injector: url and caBundle), here
// pointing at an attacker's server. Before #9 defect 8 was fixed, meshroll's
// install and tag code rewrote every Istio webhook to that URL and CA.
var rogueInjector = struct{ ns, name, url, ca string }{
	ns: "kube-public", name: "meshroll-sandbox-injector",
	url: "https://rogue.example.com:8443",
	ca:  "-----BEGIN CERTIFICATE-----\nTUlJQnJvZ3Vl\n-----END CERTIFICATE-----\n",
}

// TestDefect8SandboxConfigMapCannotRedirectInjection: anyone able to write a
// ConfigMap in kube-public could redirect sidecar injection, because
// production code read the sandbox's endpoint record and rewrote Istio's
// webhooks to it. With that ConfigMap present, `revision install` and `tag
// set` must leave the webhooks as the chart rendered them: clientConfig names
// the revision's istiod Service (no URL), and the caBundle is istiod's own
// (patched in by the real istiod), never the ConfigMap's.
func TestDefect8SandboxConfigMapCannotRedirectInjection(t *testing.T) {
	e := newEnv(t)
	e.startInjector(t)
	ctx := t.Context()
	const version, rev, tag = "1.24.2", "d8-1-24-2", "d8-tag"
	_, err := e.kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: rogueInjector.ns}}, metav1.CreateOptions{})
	if err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: rogueInjector.ns, Name: rogueInjector.name},
		Data:       map[string]string{"url": rogueInjector.url, "caBundle": rogueInjector.ca},
	}
	_, err = e.kube.CoreV1().ConfigMaps(rogueInjector.ns).Create(ctx, cm, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = e.kube.CoreV1().ConfigMaps(rogueInjector.ns).Update(ctx, cm, metav1.UpdateOptions{})
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.kube.CoreV1().ConfigMaps(rogueInjector.ns).Delete(context.Background(), rogueInjector.name, metav1.DeleteOptions{})
	})

	render := istio.RenderOptions{Version: version, Revision: rev}
	rendered, err := istio.Render(ctx, render)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := controlplane.Install(ctx, e.controlplane(), controlplane.InstallOptions{Render: render}); err != nil {
		t.Fatalf("install %s: %v", rev, err)
	}
	if _, err := controlplane.SetTag(ctx, e.controlplane(), controlplane.TagOptions{Tag: tag, Revision: rev, Version: version, Overwrite: true}); err != nil {
		t.Fatalf("tag set %s --revision %s: %v", tag, rev, err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		read := func() *inventory.Snapshot {
			snap, err := inventory.Read(ctx, inventory.Clients{Kube: e.kube, Meta: e.meta}, time.Now())
			if err != nil {
				t.Errorf("cleanup: read inventory: %v", err)
			}
			return snap
		}
		if _, err := controlplane.RemoveTag(ctx, e.controlplane(), controlplane.RemoveTagOptions{Tag: tag, Snapshot: read()}); err != nil {
			t.Errorf("cleanup: remove tag %s: %v", tag, err)
		}
		if _, err := controlplane.Remove(ctx, e.controlplane(), read(), controlplane.RemoveOptions{Revision: rev}); err != nil {
			t.Errorf("cleanup: remove revision %s: %v", rev, err)
		}
	})

	// What the chart says each webhook of the revision calls.
	wantSvc := map[string]admissionv1.ServiceReference{}
	for _, o := range rendered {
		var hooks []hookConfig
		switch o.GetKind() {
		case "MutatingWebhookConfiguration":
			var w admissionv1.MutatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &w); err != nil {
				t.Fatal(err)
			}
			for _, h := range w.Webhooks {
				hooks = append(hooks, hookConfig{h.Name, h.ClientConfig})
			}
		case "ValidatingWebhookConfiguration":
			var w admissionv1.ValidatingWebhookConfiguration
			if err := runtime.DefaultUnstructuredConverter.FromUnstructured(o.Object, &w); err != nil {
				t.Fatal(err)
			}
			for _, h := range w.Webhooks {
				hooks = append(hooks, hookConfig{h.Name, h.ClientConfig})
			}
		}
		for _, h := range hooks {
			if h.cc.URL != nil || h.cc.Service == nil {
				t.Fatalf("chart of %s renders %s/%s with a URL: the test's premise is wrong", version, o.GetName(), h.name)
			}
			wantSvc[o.GetName()+"/"+h.name] = *h.cc.Service
		}
	}
	injectorName := controlplane.InjectorName(rev)
	if len(wantSvc) == 0 {
		t.Fatal("the chart rendered no webhooks")
	}

	check := func(kind, name string, hooks []hookConfig) {
		t.Helper()
		if len(hooks) == 0 {
			t.Errorf("%s %s has no webhooks", kind, name)
		}
		for _, h := range hooks {
			cc := h.cc
			switch {
			case cc.URL != nil:
				t.Errorf("%s %s webhook %s calls URL %s: redirected (want Service istio-system/istiod-%s)", kind, name, h.name, *cc.URL, rev)
			case cc.Service == nil || cc.Service.Namespace != istio.SystemNamespace || cc.Service.Name != controlplane.IstiodName(rev):
				t.Errorf("%s %s webhook %s calls %+v, want Service istio-system/%s", kind, name, h.name, cc.Service, controlplane.IstiodName(rev))
			}
			if want, ok := wantSvc[name+"/"+h.name]; ok && cc.Service != nil &&
				(want.Name != cc.Service.Name || want.Namespace != cc.Service.Namespace || ptrStr(want.Path) != ptrStr(cc.Service.Path)) {
				t.Errorf("%s %s webhook %s calls %+v, the chart rendered %+v", kind, name, h.name, *cc.Service, want)
			}
			if bytes.Equal(cc.CABundle, []byte(rogueInjector.ca)) {
				t.Errorf("%s %s webhook %s trusts the ConfigMap's CA", kind, name, h.name)
			}
		}
	}
	mwcs := e.kube.AdmissionregistrationV1().MutatingWebhookConfigurations()
	vwcs := e.kube.AdmissionregistrationV1().ValidatingWebhookConfigurations()
	for _, name := range []string{injectorName, istio.TagWebhookPrefix + tag} {
		w, err := mwcs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		var hooks []hookConfig
		for _, h := range w.Webhooks {
			hooks = append(hooks, hookConfig{h.Name, h.ClientConfig})
		}
		check("MutatingWebhookConfiguration", name, hooks)
	}
	validator := fmt.Sprintf("istio-validator-%s-%s", rev, istio.SystemNamespace)
	v, err := vwcs.Get(ctx, validator, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var hooks []hookConfig
	for _, h := range v.Webhooks {
		hooks = append(hooks, hookConfig{h.Name, h.ClientConfig})
	}
	check("ValidatingWebhookConfiguration", validator, hooks)

	// The chart renders no caBundle; the real istiod patches in its own CA,
	// and the tag carries the same one.
	deadline := time.Now().Add(time.Minute)
	for {
		inj, err := mwcs.Get(ctx, injectorName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if len(inj.Webhooks) > 0 && len(inj.Webhooks[0].ClientConfig.CABundle) > 0 {
			t.Logf("istiod patched its CA into %s (%d bytes)", injectorName, len(inj.Webhooks[0].ClientConfig.CABundle))
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("istiod never patched a caBundle into %s", injectorName)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// hookConfig is one webhook's name and client config, of either kind.
type hookConfig struct {
	name string
	cc   admissionv1.WebhookClientConfig
}

func ptrStr(p *string) string {
	if p == nil {
		return ""
	}
	return *p
}

package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	metafake "k8s.io/client-go/metadata/fake"
	k8stesting "k8s.io/client-go/testing"
)

var takenAt = time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)

func TestReadNoIstio(t *testing.T) {
	c := Clients{Kube: kubefake.NewClientset(), Meta: metafake.NewSimpleMetadataClient(metafake.NewTestScheme())}
	_, err := Read(context.Background(), c, takenAt)
	if !errors.Is(err, ErrNoIstio) {
		t.Fatalf("Read() error = %v, want ErrNoIstio", err)
	}
}

func TestRead(t *testing.T) {
	s, err := Read(context.Background(), fixtureClients(), takenAt)
	if err != nil {
		t.Fatalf("Read() error = %v", err)
	}
	if !s.TakenAt.Equal(takenAt) || s.Pods != 11 {
		t.Errorf("TakenAt = %v, Pods = %d; want %v, 11", s.TakenAt, s.Pods, takenAt)
	}
	if s.DefaultRevision != "1-22-1" {
		t.Errorf("DefaultRevision = %q, want 1-22-1", s.DefaultRevision)
	}

	wantRevs := []Revision{
		{Name: "1-22-1", Version: "1.22.1", Image: "docker.io/istio/pilot:1.22.1", Deployment: "istiod-1-22-1", ReadyReplicas: 1, DesiredReplicas: 1,
			InjectorWebhooks: []string{"istio-sidecar-injector-1-22-1"}, ConfigMap: "istio-sidecar-injector-1-22-1", ProxyImage: img122,
			Tags: []string{"default"}, Default: true, Service: "istiod-1-22-1", ServiceExists: true},
		{Name: "1-23-2", Version: "1.23.2", Image: "docker.io/istio/pilot:1.23.2", Deployment: "istiod-1-23-2", ReadyReplicas: 0, DesiredReplicas: 1,
			InjectorWebhooks: []string{"istio-sidecar-injector-1-23-2"}, ConfigMap: "istio-sidecar-injector-1-23-2", ProxyImage: img123,
			Tags: []string{"prod"}, Service: "istiod-1-23-2", ServiceExists: true},
	}
	if diff := cmp.Diff(wantRevs, s.Revisions); diff != "" {
		t.Errorf("Revisions (-want +got):\n%s", diff)
	}
	wantTags := []Tag{
		{Name: "default", Revision: "1-22-1", Webhook: "istio-revision-tag-default"},
		{Name: "prod", Revision: "1-23-2", Webhook: "istio-revision-tag-prod"},
	}
	if diff := cmp.Diff(wantTags, s.Tags); diff != "" {
		t.Errorf("Tags (-want +got):\n%s", diff)
	}

	var hooks []string
	for _, w := range s.Webhooks {
		if !w.ServiceExists {
			hooks = append(hooks, w.Name+" → "+w.Service)
		}
	}
	if diff := cmp.Diff([]string{"istio-revision-tag-prod → istio-system/istiod-gone:443/inject"}, hooks); diff != "" {
		t.Errorf("webhooks with missing service (-want +got):\n%s", diff)
	}
	if len(s.Webhooks) != 4 {
		t.Errorf("Webhooks = %d, want 4 (non-Istio ignored)", len(s.Webhooks))
	}

	nsRev := map[string]string{}
	for _, ns := range s.Namespaces {
		nsRev[ns.Name] = ns.Injection.Revision
	}
	if diff := cmp.Diff(map[string]string{"istio-system": "", "plain": "", "prod": "1-23-2", "shop": "1-22-1"}, nsRev); diff != "" {
		t.Errorf("namespace revisions (-want +got):\n%s", diff)
	}

	type row struct {
		Kind, Namespace, Name string
		Restartable           bool
		TemplateRev           string
		Proxies               []ProxyGroup
	}
	var got []row
	for _, w := range s.Workloads {
		if w.RestartReason == "" {
			t.Errorf("workload %s/%s has no restart reason", w.Kind, w.Name)
		}
		got = append(got, row{w.Kind, w.Namespace, w.Name, w.Restartable, w.TemplateRev, w.Proxies})
	}
	want := []row{
		{"DaemonSet", "plain", "agent", true, "", []ProxyGroup{{Pods: 1}}},
		{"Rollout", "plain", "roll", false, "", []ProxyGroup{{Pods: 1}}},
		{"CronJob", "prod", "report", false, "", []ProxyGroup{{Revision: "1-23-2", Image: img123, Version: "1.23.2", Expected: "1-23-2", Terminated: 1}}},
		{"Deployment", "prod", "api", true, "", []ProxyGroup{{Revision: "1-23-2", Image: img123, Version: "1.23.2", Expected: "1-23-2", Pods: 1}}},
		{"Deployment", "prod", "idle", true, "", nil},
		{"Job", "prod", "once", false, "", []ProxyGroup{{Revision: "1-23-2", Image: img123, Version: "1.23.2", Expected: "1-23-2", Terminated: 1}}},
		{"Deployment", "shop", "web", true, "1-23-2", []ProxyGroup{{Revision: "1-22-1", Image: img122, Version: "1.22.1", Expected: "1-22-1", Pods: 3}}},
		{"Pod", "shop", "optout", false, "", []ProxyGroup{{}}},
		{"StatefulSet", "shop", "cache", true, "", []ProxyGroup{{Expected: "1-22-1", Pods: 1}}},
		{"StatefulSet", "shop", "db", false, "", []ProxyGroup{{Revision: "1-22-1", Image: img122, Version: "1.22.1", Expected: "1-22-1", Pods: 1}}},
	}
	// Pod counts are checked separately for the opted-out pod (its group has Pods: 1).
	want[7].Proxies[0].Pods = 1
	if diff := cmp.Diff(want, got, cmpopts.IgnoreFields(ProxyGroup{}, "ExpectedReason")); diff != "" {
		t.Errorf("Workloads (-want +got):\n%s", diff)
	}
}

func TestSummary(t *testing.T) {
	s, err := Read(context.Background(), fixtureClients(), takenAt)
	if err != nil {
		t.Fatalf("Read() error = %v", err)
	}
	got := s.Summary()
	want := Summary{
		ByRevision: []Count{
			{Key: "", Namespaces: 2, Workloads: 4, Pods: 4},
			{Key: "1-22-1", Namespaces: 1, Workloads: 2, Pods: 4},
			{Key: "1-23-2", Namespaces: 1, Workloads: 3, Pods: 3},
		},
		ByVersion: []Count{
			{Key: "", Namespaces: 2, Workloads: 4, Pods: 4},
			{Key: "1.22.1", Namespaces: 1, Workloads: 2, Pods: 4},
			{Key: "1.23.2", Namespaces: 1, Workloads: 3, Pods: 3},
		},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Summary() (-want +got):\n%s", diff)
	}
}

func TestInjectedRevision(t *testing.T) {
	tests := []struct {
		ann  map[string]string
		want string
	}{
		{map[string]string{"istio.io/rev": "1-23-2"}, "1-23-2"},
		{map[string]string{"sidecar.istio.io/status": `{"revision":"canary","containers":["istio-proxy"]}`}, "canary"},
		{map[string]string{"sidecar.istio.io/status": `not json`}, "default"},
		{nil, "default"},
	}
	for _, tt := range tests {
		if got := injectedRevision(tt.ann); got != tt.want {
			t.Errorf("injectedRevision(%v) = %q, want %q", tt.ann, got, tt.want)
		}
	}
}

func TestReadListError(t *testing.T) {
	c := fixtureClients()
	boom := errors.New("boom")
	c.Kube.(*kubefake.Clientset).PrependReactor("list", "pods", func(k8stesting.Action) (bool, runtime.Object, error) {
		return true, nil, boom
	})
	_, err := Read(context.Background(), c, takenAt)
	if !errors.Is(err, boom) || !strings.Contains(err.Error(), "failed to list pods") {
		t.Fatalf("Read() error = %v, want wrapped boom", err)
	}
}

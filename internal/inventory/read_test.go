package inventory

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/meshroll/meshroll/internal/istio"
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
			ImageSpec: &istio.ImageSpec{Hub: "docker.io/istio", Name: "proxyv2", Tag: "1.22.1"},
			Tags:      []string{"default"}, Default: true, Service: "istiod-1-22-1", ServiceExists: true},
		{Name: "1-23-2", Version: "1.23.2", Image: "docker.io/istio/pilot:1.23.2", Deployment: "istiod-1-23-2", ReadyReplicas: 0, DesiredReplicas: 1,
			InjectorWebhooks: []string{"istio-sidecar-injector-1-23-2"}, ConfigMap: "istio-sidecar-injector-1-23-2", ProxyImage: img123,
			ImageSpec: &istio.ImageSpec{Hub: "docker.io/istio", Name: "proxyv2", Tag: "1.23.2"},
			Tags:      []string{"prod"}, Service: "istiod-1-23-2", ServiceExists: true},
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
	on := func(rev, img string, pods, terminated int) []ProxyGroup {
		return []ProxyGroup{{Revision: rev, Attribution: EvidenceAnnotation, Image: img, WantImage: img, Version: istio.ImageVersion(img),
			Expected: rev, Pods: pods, Terminated: terminated}}
	}
	want := []row{
		{"Deployment", "istio-system", "istiod-1-22-1", true, "", nil},
		{"Deployment", "istio-system", "istiod-1-23-2", true, "", nil},
		{"DaemonSet", "plain", "agent", true, "", []ProxyGroup{{Pods: 1}}},
		{"Rollout", "plain", "roll", false, "", []ProxyGroup{{Pods: 1}}},
		{"CronJob", "prod", "report", false, "", on("1-23-2", img123, 0, 1)},
		{"Deployment", "prod", "api", true, "", on("1-23-2", img123, 1, 0)},
		{"Deployment", "prod", "idle", true, "", nil},
		{"Job", "prod", "once", false, "", on("1-23-2", img123, 0, 1)},
		{"Deployment", "shop", "web", true, "1-23-2", on("1-22-1", img122, 3, 0)},
		{"Pod", "shop", "optout", false, "", []ProxyGroup{{}}},
		{"StatefulSet", "shop", "cache", true, "", []ProxyGroup{{Expected: "1-22-1", Pods: 1}}},
		{"StatefulSet", "shop", "db", false, "", on("1-22-1", img122, 1, 0)},
	}
	// Pod counts are checked separately for the opted-out pod (its group has Pods: 1).
	want[9].Proxies[0].Pods = 1
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

package injector

import (
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"
)

func TestPublishLoadEndpoint(t *testing.T) {
	ctx := t.Context()
	c := fake.NewClientset(&corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: EndpointNamespace}})

	if _, found, err := LoadEndpoint(ctx, c); err != nil || found {
		t.Fatalf("LoadEndpoint() on a cluster without injector = found %v, err %v; want false, nil", found, err)
	}
	want := Endpoint{URL: "https://127.0.0.1:9443", CABundle: []byte("pem-a")}
	if err := Publish(ctx, c, want); err != nil {
		t.Fatalf("Publish() error = %v", err)
	}
	got, found, err := LoadEndpoint(ctx, c)
	if err != nil || !found || got.URL != want.URL || string(got.CABundle) != string(want.CABundle) {
		t.Fatalf("LoadEndpoint() = %+v, %v, %v; want %+v", got, found, err, want)
	}

	// Publishing again (a restart on another port) replaces the record.
	want = Endpoint{URL: "https://127.0.0.1:9555", CABundle: []byte("pem-a")}
	if err := Publish(ctx, c, want); err != nil {
		t.Fatalf("second Publish() error = %v", err)
	}
	if got, _, _ := LoadEndpoint(ctx, c); got.URL != want.URL {
		t.Errorf("after republish URL = %q, want %q", got.URL, want.URL)
	}
}

func TestLoadEndpointIncomplete(t *testing.T) {
	c := fake.NewClientset(&corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: EndpointName, Namespace: EndpointNamespace},
		Data:       map[string]string{"url": "https://127.0.0.1:1"},
	})
	if _, _, err := LoadEndpoint(t.Context(), c); err == nil {
		t.Error("LoadEndpoint() of a record without caBundle: want error")
	}
}

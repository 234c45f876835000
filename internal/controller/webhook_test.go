package controller

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	kubefake "k8s.io/client-go/kubernetes/fake"
	crfake "sigs.k8s.io/controller-runtime/pkg/client/fake"

	"github.com/meshroll/meshroll/api/v1alpha1"
	"github.com/meshroll/meshroll/internal/webhook"
)

// TestWebhookHosts: the serving certificate names the chart Service's DNS
// names and the URL's host; a URL that is not https or no target at all is
// refused before anything is served.
func TestWebhookHosts(t *testing.T) {
	svc := &webhook.ServiceRef{Namespace: "meshroll-system", Name: "meshroll-webhook"}
	for _, tt := range []struct {
		name    string
		o       WebhookOptions
		want    []string
		wantErr string
	}{
		{"service", WebhookOptions{Service: svc}, []string{"meshroll-webhook.meshroll-system.svc", "meshroll-webhook.meshroll-system.svc.cluster.local"}, ""},
		{"url", WebhookOptions{URL: "https://127.0.0.1:9443/mutate"}, []string{"127.0.0.1"}, ""},
		{"plain http", WebhookOptions{URL: "http://127.0.0.1:9443/mutate"}, nil, "invalid webhook URL"},
		{"nothing", WebhookOptions{}, nil, "needs a URL or a Service"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.o.hosts()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("hosts() error = %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tt.want) {
				t.Errorf("hosts() = %v, %v; want %v", got, err, tt.want)
			}
		})
	}
	if reg := (WebhookOptions{URL: "https://127.0.0.1:1/mutate", Service: svc}).registration([]byte("ca")); reg.URL == "" || reg.Service != nil {
		t.Errorf("registration with a URL = %+v, want the URL alone", reg)
	}
}

// TestDefectReplicaReplacedCertInRenewalWindow: a replica starting while
// the stored certificate was inside the 30 days before its expiry issued
// and stored a new certificate (EnsureCert) whose CA the leader never
// published, so admission calls reaching any replica that loaded it failed
// (open) until the next rotation. A starting replica now serves the stored
// certificate and leaves the Secret to the leader.
func TestDefectReplicaReplacedCertInRenewalWindow(t *testing.T) {
	const ns = "meshroll-system"
	kube := kubefake.NewClientset()
	hosts := []string{"127.0.0.1"}
	if _, _, err := webhook.EnsureCert(t.Context(), kube, ns, WebhookSecret, hosts, time.Now().Add(-355*24*time.Hour)); err != nil {
		t.Fatal(err)
	}
	before, err := kube.CoreV1().Secrets(ns).Get(t.Context(), WebhookSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	scheme := runtime.NewScheme()
	if err := v1alpha1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	s := newServeWebhook(WebhookOptions{Addr: addr, URL: "https://" + addr + "/mutate", CertNamespace: ns}, kube,
		crfake.NewClientBuilder().WithScheme(scheme).Build(), logr.Discard())
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- s.Start(ctx) }()
	var served *x509.Certificate
	for end := time.Now().Add(10 * time.Second); served == nil && time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if c, err := tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true}); err == nil {
			served = c.ConnectionState().PeerCertificates[0]
			c.Close()
		}
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if served == nil {
		t.Fatal("the replica never served")
	}
	after, err := kube.CoreV1().Secrets(ns).Get(t.Context(), WebhookSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(after.Data[corev1.TLSCertKey], before.Data[corev1.TLSCertKey]) || !bytes.Equal(after.Data[webhook.CACertKey], before.Data[webhook.CACertKey]) {
		t.Error("a starting replica rewrote the certificate Secret inside its renewal window")
	}
	pair, err := tls.X509KeyPair(before.Data[corev1.TLSCertKey], before.Data[corev1.TLSPrivateKeyKey])
	if err != nil {
		t.Fatal(err)
	}
	if !served.Equal(pair.Leaf) {
		t.Error("the replica serves another certificate than the stored one")
	}
}

// TestWebhookRotationIntervals: the leader's check and the replicas' reload
// follow the CA propagation time, bounded, and rotation settings that
// cannot work are refused.
func TestWebhookRotationIntervals(t *testing.T) {
	def := WebhookOptions{}
	if def.checkEvery() != 15*time.Second || def.reloadEvery() != 5*time.Second {
		t.Errorf("defaults: check every %s, reload every %s; want 15s and 5s", def.checkEvery(), def.reloadEvery())
	}
	short := WebhookOptions{CertValidity: 25 * time.Second, CertRenewBefore: 15 * time.Second, CAPropagation: 2 * time.Second}
	if short.checkEvery() != time.Second || short.reloadEvery() != time.Second {
		t.Errorf("2s propagation: check every %s, reload every %s; want 1s and 1s", short.checkEvery(), short.reloadEvery())
	}
	if err := short.Validate(); err != nil {
		t.Errorf("Validate(%+v) = %v", short, err)
	}
	if err := (WebhookOptions{CertValidity: 10 * 24 * time.Hour}).Validate(); err == nil {
		t.Error("Validate() accepted a validity shorter than the 30-day renewal window")
	}
}

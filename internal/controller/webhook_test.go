package controller

import (
	"slices"
	"strings"
	"testing"

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

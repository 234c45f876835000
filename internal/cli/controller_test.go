package cli

import (
	"strings"
	"testing"

	"github.com/spf13/cobra"
)

// controllerFlagsFrom binds controllerFlags to a bare command and parses
// args, so the flags carry their real defaults.
func controllerFlagsFrom(t *testing.T, args ...string) *controllerFlags {
	t.Helper()
	f := &controllerFlags{}
	cmd := &cobra.Command{Use: "controller"}
	f.bind(cmd)
	if err := cmd.ParseFlags(args); err != nil {
		t.Fatalf("parse %v: %v", args, err)
	}
	return f
}

func TestControllerFlagsDefaultsValid(t *testing.T) {
	if err := controllerFlagsFrom(t).validate(); err != nil {
		t.Fatalf("defaults refused: %v", err)
	}
	f := controllerFlagsFrom(t, "--webhook-bind-address", ":9443", "--webhook-url", "https://127.0.0.1:9443/mutate")
	if err := f.validate(); err != nil {
		t.Fatalf("a URL alone refused: %v", err)
	}
	if o := f.webhook(); o.URL == "" || o.Service != nil {
		t.Fatalf("a URL alone registers URL %q and Service %v, want only the URL", o.URL, o.Service)
	}
}

// Before the fix, --webhook-service given with --webhook-url was dropped
// without a word: the controller registered the URL and the operator's
// Service was silently ignored.
func TestDefectWebhookURLAndServiceBothAccepted(t *testing.T) {
	f := controllerFlagsFrom(t, "--webhook-bind-address", ":9443",
		"--webhook-url", "https://127.0.0.1:9443/mutate", "--webhook-service", "meshroll-system/meshroll-webhook")
	err := f.validate()
	if err == nil {
		t.Fatalf("both --webhook-url and --webhook-service accepted; webhook options %+v", f.webhook())
	}
	for _, want := range []string{"--webhook-url", "--webhook-service", "pass one"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
}

func TestControllerFlagsRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--charts", "/tmp/c", "--repo", "https://example.invalid/charts"}, "pass one"},
		{[]string{"--lease-duration", "5s", "--renew-deadline", "10s"}, "--lease-duration"},
		{[]string{"--plain-http", "--repo", "https://example.invalid/charts"}, "oci://"},
		{[]string{"--webhook-service", "meshroll-webhook"}, "namespace/name"},
		{[]string{"--webhook-url", "http://127.0.0.1:9443/mutate"}, "https"},
		{[]string{"--webhook-cert-validity", "0s"}, "must be positive"},
	} {
		err := controllerFlagsFrom(t, tc.args...).validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: got %v, want an error naming %q", tc.args, err, tc.want)
		}
	}
}

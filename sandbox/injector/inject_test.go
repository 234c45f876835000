package injector

import (
	"strings"
	"testing"
)

func TestCanonicalName(t *testing.T) {
	long := strings.Repeat("a", 62) + "-b"
	tests := []struct{ in, want string }{
		{in: "web", want: "web"},
		{in: "web-", want: "web"},
		{in: long, want: strings.Repeat("a", 62)},
		{in: strings.Repeat("x", 70), want: strings.Repeat("x", 63)},
	}
	for _, tt := range tests {
		if got := canonicalName(tt.in); got != tt.want {
			t.Errorf("canonicalName(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEscapePointer(t *testing.T) {
	tests := []struct{ in, want string }{
		{in: "app", want: "app"},
		{in: "istio.io/rev", want: "istio.io~1rev"},
		{in: "a~b/c", want: "a~0b~1c"},
	}
	for _, tt := range tests {
		if got := escapePointer(tt.in); got != tt.want {
			t.Errorf("escapePointer(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestOptedOut(t *testing.T) {
	for v, want := range map[string]bool{"false": true, "False": true, "n": true, "no": true, "off": true, "": false, "true": false, "yes": false, "maybe": false} {
		if got := optedOut(v); got != want {
			t.Errorf("optedOut(%q) = %v, want %v", v, got, want)
		}
	}
}

package istio

import (
	"strings"
	"testing"
)

func TestReleasesSorted(t *testing.T) {
	rels := Releases()
	if len(rels) < 5 {
		t.Fatalf("Releases() = %d releases, want the embedded table", len(rels))
	}
	for i := 1; i < len(rels); i++ {
		if compareVersions(rels[i-1].Version, rels[i].Version) >= 0 {
			t.Errorf("Releases() not sorted: %s before %s", rels[i-1].Version, rels[i].Version)
		}
	}
	for _, r := range rels {
		if !strings.HasPrefix(r.ModuleVersion, "v0.0.0-") {
			t.Errorf("release %s has module version %q, want a pseudo-version", r.Version, r.ModuleVersion)
		}
	}
}

func TestLookupRelease(t *testing.T) {
	tests := []struct {
		version, wantModule, wantErr string
	}{
		{version: "1.23.2", wantModule: "v0.0.0-20240917190016-da0b3f29e9f9"},
		{version: "v1.29.1", wantModule: "v0.0.0-20260306174214-6991a379e1fc"},
		{version: " 1.24.2 ", wantModule: "v0.0.0-20241214032803-7754674f65d3"},
		{version: "1.23.3", wantErr: `unknown version (known: 1.21.2, 1.21.3,`},
		{version: "", wantErr: `failed to look up istio release ""`},
	}
	for _, tt := range tests {
		t.Run(tt.version, func(t *testing.T) {
			got, err := LookupRelease(tt.version)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("LookupRelease(%q) error = %v, want containing %q", tt.version, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("LookupRelease(%q) error = %v", tt.version, err)
			}
			if got.ModuleVersion != tt.wantModule {
				t.Errorf("LookupRelease(%q) = %q, want %q", tt.version, got.ModuleVersion, tt.wantModule)
			}
		})
	}
}

func TestRevisionName(t *testing.T) {
	tests := map[string]string{
		"1.23.2":        "1-23-2",
		"v1.29.1":       "1-29-1",
		"1.24.0-beta.1": "1-24-0-beta-1",
	}
	for in, want := range tests {
		if got := RevisionName(in); got != want {
			t.Errorf("RevisionName(%q) = %q, want %q", in, got, want)
		}
		if err := ValidateRevision(RevisionName(in)); err != nil {
			t.Errorf("ValidateRevision(RevisionName(%q)) = %v", in, err)
		}
	}
}

func TestValidateRevision(t *testing.T) {
	tests := []struct {
		name, wantErr string
	}{
		{name: "1-23-2"},
		{name: "default"},
		{name: "canary"},
		{name: "a"},
		{name: strings.Repeat("a", 63)},
		{name: "", wantErr: "must not be empty"},
		{name: strings.Repeat("a", 64), wantErr: "at most 63 characters"},
		{name: "1.23.2", wantErr: `(use "1-23-2" for a version)`},
		{name: "Canary", wantErr: "lower case alphanumeric"},
		{name: "-canary", wantErr: "start and end with an alphanumeric"},
		{name: "canary-", wantErr: "start and end with an alphanumeric"},
		{name: "can_ary", wantErr: "lower case alphanumeric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateRevision(tt.name)
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("ValidateRevision(%q) = %v, want nil", tt.name, err)
			case tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("ValidateRevision(%q) = %v, want containing %q", tt.name, err, tt.wantErr)
			}
		})
	}
}

func TestCompareVersions(t *testing.T) {
	tests := []struct {
		a, b string
		want int
	}{
		{"1.9.0", "1.23.2", -1},
		{"1.23.2", "1.23.2", 0},
		{"1.29.1", "1.28.2", 1},
		{"1.24", "1.24.0", -1},
	}
	for _, tt := range tests {
		if got := compareVersions(tt.a, tt.b); got != tt.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}

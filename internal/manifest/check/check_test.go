package check

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// checkCase is one table row of a check's test: a YAML fixture and the
// severities of the findings the check must return for it, in Run's order.
type checkCase struct {
	name        string
	fixture     string
	kubeVersion string
	want        []Severity
}

// runCases runs c over each case's fixture and compares the severities of
// its findings; it also asserts every finding carries the check's identity
// and a fix hint.
func runCases(t *testing.T, c Checker, cases []checkCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			in := parseFixture(t, tc.fixture)
			in.KubeVersion = tc.kubeVersion
			findings := Run(in, []Checker{c})
			got := make([]Severity, 0, len(findings))
			for _, f := range findings {
				got = append(got, f.Severity)
				if f.Code != c.Code() || f.Check != c.Name() || f.Fix == "" || f.Message == "" || f.Object == "" {
					t.Errorf("incomplete finding %+v", f)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("severities (-want +got):\n%s\nfindings: %+v", diff, findings)
			}
		})
	}
}

// parseFixture loads a YAML fixture as the CLI would.
func parseFixture(t *testing.T, fixture string) *Input {
	t.Helper()
	docs, err := Load(strings.NewReader(fixture), "fixture.yaml")
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	return NewInput(docs, "")
}

// none is the want of a passing fixture.
var none = []Severity{}

func TestAllCodesUniqueAndOrdered(t *testing.T) {
	checks := All()
	if len(checks) < 25 {
		t.Errorf("got %d checks, want at least 25", len(checks))
	}
	var codes, names []string
	for _, c := range checks {
		codes = append(codes, c.Code())
		names = append(names, c.Name())
	}
	if !slices.IsSorted(codes) {
		t.Errorf("codes not in order: %v", codes)
	}
	for _, l := range [][]string{codes, names} {
		s := slices.Clone(l)
		slices.Sort(s)
		if len(slices.Compact(s)) != len(l) {
			t.Errorf("duplicates in %v", l)
		}
	}
}

func TestExitCode(t *testing.T) {
	tests := []struct {
		name string
		in   []Severity
		want int
	}{
		{"none", nil, 0},
		{"info", []Severity{Info}, 0},
		{"warning", []Severity{Info, Warning}, 1},
		{"error", []Severity{Error, Warning}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var fs []Finding
			for _, s := range tt.in {
				fs = append(fs, Finding{Severity: s})
			}
			if got := ExitCode(fs); got != tt.want {
				t.Errorf("ExitCode = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestRunDeterministic(t *testing.T) {
	in := parseFixture(t, badEverythingFixture)
	first := Run(in, All())
	if len(first) == 0 {
		t.Fatal("no findings")
	}
	for range 5 {
		if diff := cmp.Diff(first, Run(in, All())); diff != "" {
			t.Fatalf("Run not deterministic:\n%s", diff)
		}
	}
}

func TestLoad(t *testing.T) {
	tests := []struct {
		name     string
		yaml     string
		docs     int
		objects  int
		parseErr int
	}{
		{"single", deploymentWith(goodContainer), 1, 1, 0},
		{"comments and separators", "# header\n---\n---\n" + namespaceFixture("a", "") + "\n---\n# trailing\n", 1, 1, 0},
		{"list", "apiVersion: v1\nkind: List\nitems:\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: a}\n- apiVersion: v1\n  kind: Namespace\n  metadata: {name: b}\n", 1, 2, 0},
		{"bad yaml next to good", "a: [\n---\n" + namespaceFixture("a", ""), 2, 1, 1},
		{"duplicate key", "apiVersion: v1\nkind: Namespace\nkind: Namespace\nmetadata: {name: a}\n", 1, 0, 1},
		{"not an object", "foo: bar\n", 1, 0, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			docs, err := Load(strings.NewReader(tt.yaml), "f.yaml")
			if err != nil {
				t.Fatal(err)
			}
			in := NewInput(docs, "")
			errs := 0
			for _, d := range docs {
				if d.Err != nil {
					errs++
				}
			}
			if len(docs) != tt.docs || len(in.Objects) != tt.objects || errs != tt.parseErr {
				t.Errorf("docs=%d objects=%d errs=%d, want %d %d %d", len(docs), len(in.Objects), errs, tt.docs, tt.objects, tt.parseErr)
			}
		})
	}
}

func TestLoadPath(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("a.yaml", namespaceFixture("a", ""))
	write("sub/b.yml", namespaceFixture("b", ""))
	write("sub/readme.md", "not yaml: [")
	in, err := LoadPath(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(in.Objects) != 2 || in.Objects[0].GetName() != "a" || in.Objects[1].GetName() != "b" {
		t.Errorf("got %d objects", len(in.Objects))
	}
	single, err := LoadPath(filepath.Join(dir, "a.yaml"))
	if err != nil || len(single.Objects) != 1 {
		t.Errorf("single file: %v, %d objects", err, len(single.Objects))
	}
	if _, err := LoadPath(filepath.Join(dir, "missing")); err == nil || !strings.Contains(err.Error(), "failed to open manifests") {
		t.Errorf("missing path: err = %v", err)
	}
	if !bytes.Contains([]byte(in.Raw[0].Position()), []byte("a.yaml#0")) {
		t.Errorf("position = %q", in.Raw[0].Position())
	}
}

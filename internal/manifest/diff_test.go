package manifest

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestDiffGolden(t *testing.T) {
	d := Compute(rendered(t, "1.23.2"), rendered(t, "1.24.2"), DiffOptions{})
	if d.FromRevision != "1-23-2" || d.ToRevision != "1-24-2" {
		t.Fatalf("inferred revisions %q → %q", d.FromRevision, d.ToRevision)
	}
	var buf bytes.Buffer
	if err := d.Text(&buf); err != nil {
		t.Fatal(err)
	}
	golden := filepath.Join("testdata", "diff-1.23.2-1.24.2.golden")
	if *update {
		if err := os.WriteFile(golden, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(golden)
	if err != nil {
		t.Fatalf("%v (run with -update)", err)
	}
	if diff := cmp.Diff(string(want), buf.String()); diff != "" {
		t.Errorf("diff text differs from %s (-want +got):\n%s", golden, diff)
	}
	// The facts a reviewer must see are in it.
	for _, s := range []string{
		"~ Deployment istio-system/istiod-1-23-2 → istiod-1-24-2",
		"spec.template.spec.containers[name=discovery].image: docker.io/istio/pilot:1.23.2 → docker.io/istio/pilot:1.24.2",
		"data.config{templates.sidecar}:",
	} {
		if !strings.Contains(buf.String(), s) {
			t.Errorf("diff text lacks %q", s)
		}
	}
}

func TestDiffIdenticalRendersHaveNoChange(t *testing.T) {
	a, b := rendered(t, "1.23.2"), rendered(t, "1.23.2")
	d := Compute(a, b, DiffOptions{})
	if d.Summary.Changes() != 0 || len(d.Objects) != 0 || d.Summary.Unchanged != len(a) {
		t.Fatalf("summary %+v, objects %+v", d.Summary, d.Objects)
	}
}

func TestDiffOneChangedField(t *testing.T) {
	a, b := rendered(t, "1.23.2"), rendered(t, "1.23.2")
	for _, o := range b {
		if o.GetKind() != "Deployment" || o.GetName() != "istiod-1-23-2" {
			continue
		}
		cs, _, _ := unstructured.NestedSlice(o.Object, "spec", "template", "spec", "containers")
		cs[0].(map[string]any)["image"] = "example.com/pilot:patched"
		if err := unstructured.SetNestedSlice(o.Object, cs, "spec", "template", "spec", "containers"); err != nil {
			t.Fatal(err)
		}
	}
	d := Compute(a, b, DiffOptions{})
	want := []ObjectDiff{{Kind: "Deployment", Namespace: "istio-system", Name: "istiod-1-23-2", Change: ChangeChanged,
		Fields: []FieldChange{{Path: "spec.template.spec.containers[name=discovery].image", From: "docker.io/istio/pilot:1.23.2", To: "example.com/pilot:patched"}}}}
	if diff := cmp.Diff(want, d.Objects); diff != "" {
		t.Fatalf("objects (-want +got):\n%s", diff)
	}
	if d.Summary != (DiffSummary{Changed: 1, Unchanged: len(a) - 1}) {
		t.Fatalf("summary %+v", d.Summary)
	}
}

// u builds an object from YAML.
func u(t *testing.T, y string) *unstructured.Unstructured {
	t.Helper()
	objs, err := parseDocs("test", []byte(y))
	if err != nil || len(objs) != 1 {
		t.Fatalf("parse %q: %v", y, err)
	}
	return objs[0]
}

const istiodTemplate = `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: istiod-@REV@
  namespace: istio-system
  labels: {istio.io/rev: @REV@, app: istiod}
spec:
  template:
    spec:
      containers:
      - name: discovery
        image: docker.io/istio/pilot:@VERSION@
        env:
        - {name: REVISION, value: @REV@}
        - {name: ISTIOD_ADDR, value: istiod-@REV@.istio-system.svc:15012}
`

func istiod(t *testing.T, rev, version string) *unstructured.Unstructured {
	return u(t, strings.NewReplacer("@REV@", rev, "@VERSION@", version).Replace(istiodTemplate))
}

func TestDiffPairsRevisionRenames(t *testing.T) {
	cm := func(rev string) *unstructured.Unstructured {
		return u(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-"+rev+", namespace: istio-system, labels: {istio.io/rev: "+rev+"}}\ndata: {mesh: 'defaultConfig: {discoveryAddress: istiod-"+rev+".istio-system.svc:15012}'}")
	}
	from := []*unstructured.Unstructured{istiod(t, "1-23-2", "1.23.2"), cm("1-23-2")}
	to := []*unstructured.Unstructured{istiod(t, "1-24-2", "1.24.2"), cm("1-24-2")}
	for _, opts := range []DiffOptions{{}, {FromRevision: "1-23-2", ToRevision: "1-24-2"}} {
		d := Compute(from, to, opts)
		want := []ObjectDiff{
			{Kind: "ConfigMap", Namespace: "istio-system", Name: "istio-1-24-2", FromName: "istio-1-23-2", Change: ChangeRenamed},
			{Kind: "Deployment", Namespace: "istio-system", Name: "istiod-1-24-2", FromName: "istiod-1-23-2", Change: ChangeRenamed,
				Fields: []FieldChange{{Path: "spec.template.spec.containers[name=discovery].image", From: "docker.io/istio/pilot:1.23.2", To: "docker.io/istio/pilot:1.24.2"}}},
		}
		if diff := cmp.Diff(want, d.Objects); diff != "" {
			t.Errorf("opts %+v: objects (-want +got):\n%s", opts, diff)
		}
		if d.Summary != (DiffSummary{Renamed: 2}) {
			t.Errorf("opts %+v: summary %+v", opts, d.Summary)
		}
	}
	// Without pairing, the two revisions are different objects.
	d := Compute(from, to, DiffOptions{FromRevision: "x", ToRevision: "x"})
	if d.Summary != (DiffSummary{Added: 2, Removed: 2}) {
		t.Errorf("unpaired summary %+v", d.Summary)
	}
}

func TestRenamer(t *testing.T) {
	r := newRenamer("1-23-2", "1-24-2")
	for in, want := range map[string]string{
		"istiod-1-23-2":                  "istiod-1-24-2",
		"1-23-2":                         "1-24-2",
		"istiod-1-23-2.istio-system.svc": "istiod-1-24-2.istio-system.svc",
		"x-1-23-2-istio-system":          "x-1-24-2-istio-system",
		"11-23-21":                       "11-23-21",
		"a1-23-2":                        "a1-23-2",
		"docker.io/istio/pilot:1.23.2":   "docker.io/istio/pilot:1.23.2",
		"1-23-2 and 1-23-2":              "1-24-2 and 1-24-2",
	} {
		if got := r.str(in); got != want {
			t.Errorf("str(%q) = %q, want %q", in, got, want)
		}
	}
	if newRenamer("default", "1-24-2").active() || newRenamer("1-24-2", "1-24-2").active() {
		t.Error("default or equal revisions must not be renamed")
	}
}

func TestDiffMatchesListsByName(t *testing.T) {
	from := u(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n}
spec:
  template:
    spec:
      containers:
      - {name: a, image: a:1, env: [{name: FOO, value: "1"}, {name: BAR, value: "2"}], ports: [{containerPort: 80}, {containerPort: 81}]}
      - {name: b, image: b:1}
      volumes: [{name: v1, emptyDir: {}}, {name: v2, emptyDir: {}}]
`)
	to := u(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n}
spec:
  template:
    spec:
      containers:
      - {name: b, image: b:1}
      - {name: a, image: a:2, env: [{name: BAZ, value: "0"}, {name: BAR, value: "2"}, {name: FOO, value: "1"}], ports: [{containerPort: 81}, {containerPort: 80, name: http}]}
      volumes: [{name: v2, emptyDir: {}}, {name: v1, emptyDir: {}}]
`)
	d := Compute([]*unstructured.Unstructured{from}, []*unstructured.Unstructured{to}, DiffOptions{})
	want := []FieldChange{
		{Path: "spec.template.spec.containers[name=a].env[name=BAZ]", To: map[string]any{"name": "BAZ", "value": "0"}},
		{Path: "spec.template.spec.containers[name=a].image", From: "a:1", To: "a:2"},
		{Path: "spec.template.spec.containers[name=a].ports[containerPort=80].name", To: "http"},
	}
	if len(d.Objects) != 1 {
		t.Fatalf("objects %+v", d.Objects)
	}
	if diff := cmp.Diff(want, d.Objects[0].Fields); diff != "" {
		t.Fatalf("fields (-want +got):\n%s", diff)
	}
}

func TestDiffAlignsUnkeyedLists(t *testing.T) {
	role := func(rules string) *unstructured.Unstructured {
		return u(t, "apiVersion: rbac.authorization.k8s.io/v1\nkind: ClusterRole\nmetadata: {name: r}\nrules: "+rules)
	}
	from := role(`[{apiGroups: [""], resources: [pods], verbs: [get]}, {apiGroups: [apps], resources: [deployments], verbs: [get]}]`)
	to := role(`[{apiGroups: [""], resources: [pods], verbs: [get]}, {apiGroups: [batch], resources: [jobs], verbs: [get]}, {apiGroups: [apps], resources: [deployments], verbs: [get, list]}]`)
	d := Compute([]*unstructured.Unstructured{from}, []*unstructured.Unstructured{to}, DiffOptions{})
	var paths []string
	for _, f := range d.Objects[0].Fields {
		paths = append(paths, f.Path)
	}
	// One inserted rule, one edited rule: not a cascade of shifted indexes.
	if diff := cmp.Diff([]string{"rules[1]", "rules[2].verbs"}, paths); diff != "" {
		t.Fatalf("paths (-want +got):\n%s", diff)
	}
}

func TestDiffParsesEmbeddedConfig(t *testing.T) {
	cm := func(image, mesh string) *unstructured.Unstructured {
		o := u(t, "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: istio-sidecar-injector, namespace: istio-system}")
		_ = unstructured.SetNestedStringMap(o.Object, map[string]string{
			"values": `{"global":{"proxy":{"image":"` + image + `","logLevel":"warning"},"hub":"docker.io/istio"}}`,
			"mesh":   mesh,
			"text":   "plain " + image,
		}, "data")
		return o
	}
	from := cm("proxyv2", "defaultConfig:\n  concurrency: 2\naccessLogFile: /dev/stdout\n")
	to := cm("proxyv3", "accessLogFile: /dev/stdout\ndefaultConfig:\n  concurrency: 4\n")
	d := Compute([]*unstructured.Unstructured{from}, []*unstructured.Unstructured{to}, DiffOptions{})
	want := []FieldChange{
		{Path: "data.mesh{defaultConfig.concurrency}", From: float64(2), To: float64(4)},
		{Path: "data.text", From: "plain proxyv2", To: "plain proxyv3"},
		{Path: "data.values{global.proxy.image}", From: "proxyv2", To: "proxyv3"},
	}
	if diff := cmp.Diff(want, d.Objects[0].Fields); diff != "" {
		t.Fatalf("fields (-want +got):\n%s", diff)
	}
	d = Compute([]*unstructured.Unstructured{from}, []*unstructured.Unstructured{to}, DiffOptions{IgnorePaths: []string{"data.values{global.proxy}", "data.text"}})
	if len(d.Objects[0].Fields) != 1 {
		t.Fatalf("ignored paths still reported: %+v", d.Objects[0].Fields)
	}
}

func TestDiffSuppressesNoise(t *testing.T) {
	rendered := u(t, `
apiVersion: apps/v1
kind: Deployment
metadata: {name: d, namespace: n, labels: {a: b}}
spec:
  template:
    spec:
      containers: [{name: c, image: i, ports: [{containerPort: 80}]}]
`)
	live := u(t, `
apiVersion: apps/v1
kind: Deployment
metadata:
  name: d
  namespace: n
  labels: {a: b}
  uid: 123
  resourceVersion: "9"
  generation: 3
  creationTimestamp: "2024-01-01T00:00:00Z"
  managedFields: [{manager: meshroll}]
  annotations: {deployment.kubernetes.io/revision: "3"}
spec:
  revisionHistoryLimit: 10
  progressDeadlineSeconds: 600
  template:
    spec:
      dnsPolicy: ClusterFirst
      schedulerName: default-scheduler
      restartPolicy: Always
      terminationGracePeriodSeconds: 30
      securityContext: {}
      containers: [{name: c, image: i, imagePullPolicy: IfNotPresent, terminationMessagePath: /dev/termination-log, terminationMessagePolicy: File, ports: [{containerPort: 80, protocol: TCP}]}]
status: {replicas: 1}
`)
	d := Compute([]*unstructured.Unstructured{rendered}, []*unstructured.Unstructured{live}, DiffOptions{})
	if len(d.Objects) != 0 {
		t.Fatalf("noise reported: %+v", d.Objects)
	}
	// A non-default value is a change.
	_ = unstructured.SetNestedField(live.Object, int64(5), "spec", "revisionHistoryLimit")
	d = Compute([]*unstructured.Unstructured{rendered}, []*unstructured.Unstructured{live}, DiffOptions{})
	if len(d.Objects) != 1 || len(d.Objects[0].Fields) != 1 || d.Objects[0].Fields[0].Path != "spec.revisionHistoryLimit" {
		t.Fatalf("objects %+v", d.Objects)
	}
}

func TestDiffAddedRemoved(t *testing.T) {
	a := u(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: a, namespace: ns1}")
	b := u(t, "apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: b, namespace: ns1}")
	d := Compute([]*unstructured.Unstructured{a}, []*unstructured.Unstructured{b}, DiffOptions{})
	var buf bytes.Buffer
	if err := d.Text(&buf); err != nil {
		t.Fatal(err)
	}
	want := "1 added, 1 removed, 0 changed, 0 renamed, 0 unchanged\n\n- ServiceAccount ns1/a\n\n+ ServiceAccount ns1/b\n"
	if buf.String() != want {
		t.Fatalf("text:\n%s\nwant:\n%s", buf.String(), want)
	}
}

func TestLineDiff(t *testing.T) {
	a := strings.Split("1 2 3 4 5 6 7 8 9", " ")
	b := strings.Split("1 2 3 4 X 6 7 8 9 10", " ")
	got := lineDiff(a, b, 1)
	want := []string{"  4", "- 5", "+ X", "  6", "  …", "  9", "+ 10"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("(-want +got):\n%s", diff)
	}
}

func BenchmarkDiff(b *testing.B) {
	from, to := rendered(b, "1.23.2"), rendered(b, "1.24.2")
	b.ResetTimer()
	for b.Loop() {
		d := Compute(from, to, DiffOptions{})
		if d.Summary.Changes() == 0 {
			b.Fatal("no changes")
		}
	}
}

func TestDiffBothRevisionsInFromSet(t *testing.T) {
	from := []*unstructured.Unstructured{istiod(t, "1-24-2", "1.24.2"), istiod(t, "1-23-2", "1.23.2")}
	to := []*unstructured.Unstructured{istiod(t, "1-24-2", "1.24.2")}
	d := Compute(from, to, DiffOptions{FromRevision: "1-23-2", ToRevision: "1-24-2"})
	if d.Summary != (DiffSummary{Removed: 1, Unchanged: 1}) || d.Objects[0].Name != "istiod-1-23-2" {
		t.Fatalf("summary %+v objects %+v", d.Summary, d.Objects)
	}
}

package vmagent

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestAssignmentValidate(t *testing.T) {
	for _, c := range []struct {
		a   Assignment
		err string
	}{
		{Assignment{Revision: "1-24-2", Version: "1.24.2"}, ""},
		{Assignment{Revision: "canary", Version: "1.24.2"}, ""},
		{Assignment{Revision: "1-24-2", Version: "1.23.2"}, "is release 1.24.2 but the assigned version is 1.23.2"},
		{Assignment{Revision: "default", Version: "1.24.2"}, "is not a revision name"},
		{Assignment{Revision: "Bad_Rev", Version: "1.24.2"}, "is not a revision name"},
		{Assignment{Revision: "x", Version: "1.24"}, "is not a release"},
	} {
		err := c.a.Validate()
		if (c.err == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.err) {
			t.Errorf("%s: err = %v, want %q", c.a, err, c.err)
		}
	}
}

func TestConfigValidateNamesEveryProblem(t *testing.T) {
	err := Config{Root: "rel", APIServer: "::", ArtifactURL: "http://m/{{.Nope}}", Command: "/abs", Service: "upstart", ReadyURL: "x", Retain: 1}.Validate()
	for _, want := range []string{"root", "apiServer", "namespace and name", "artifactURL", "command", "service", "readyURL", "retain"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("err = %v, want it to name %s", err, want)
		}
	}
}

func TestBaseRenderPointsAtRevision(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, RootCertFile), []byte("CERT"), 0o644); err != nil {
		t.Fatal(err)
	}
	b := Base{ClusterEnv: map[string]string{"ISTIO_SERVICE": "vm.vms", "ISTIO_METAJSON_LABELS": `{"app":"vm"}`},
		ProxyConfig: map[string]any{"meshId": "m"}, IngressIP: "10.0.0.9"}
	files, err := b.Render(dir, "1-24-2")
	if err != nil {
		t.Fatal(err)
	}
	env := ParseEnvFile(string(files["cluster.env"]))
	if env["CA_ADDR"] != "istiod-1-24-2.istio-system.svc:15012" || env["ISTIO_METAJSON_LABELS"] != `{"app":"vm"}` {
		t.Errorf("cluster.env = %q", files["cluster.env"])
	}
	if !strings.Contains(string(files["cluster.env"]), `ISTIO_METAJSON_LABELS='{"app":"vm"}'`) {
		t.Errorf("cluster.env does not shell-quote JSON: %q", files["cluster.env"])
	}
	if !strings.Contains(string(files["mesh.yaml"]), `"discoveryAddress": "istiod-1-24-2.istio-system.svc:15012"`) {
		t.Errorf("mesh.yaml = %s", files["mesh.yaml"])
	}
	if string(files["hosts"]) != "10.0.0.9 istiod-1-24-2.istio-system.svc\n" || string(files[RootCertFile]) != "CERT" {
		t.Errorf("hosts = %q, root cert = %q", files["hosts"], files[RootCertFile])
	}
}

func TestParseChecksum(t *testing.T) {
	sum := strings.Repeat("ab", 32)
	for _, c := range []struct{ in, want string }{
		{sum + "  a.tar.gz\n", sum},
		{strings.Repeat("cd", 32) + "  b.tar.gz\n" + sum + " *a.tar.gz\n", sum},
		{sum, sum},
		{"zz  a.tar.gz", ""},
		{sum + "  other.tar.gz", ""},
	} {
		got, err := parseChecksum([]byte(c.in), "a.tar.gz")
		if got != c.want || (c.want == "") != (err != nil) {
			t.Errorf("parseChecksum(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

func TestUnpackRefusesEscapesAndLinks(t *testing.T) {
	for _, h := range []*tar.Header{
		{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "/etc/evil", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "/etc/passwd"},
	} {
		var buf bytes.Buffer
		gz := gzip.NewWriter(&buf)
		tw := tar.NewWriter(gz)
		_ = tw.WriteHeader(h)
		_ = tw.Close()
		_ = gz.Close()
		p := filepath.Join(t.TempDir(), "a.tar.gz")
		if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := unpack(p, t.TempDir(), 1<<20); err == nil || !IsPermanent(err) {
			t.Errorf("%s: err = %v, want a permanent refusal", h.Name, err)
		}
	}
}

func TestDiskErrorIsPermanent(t *testing.T) {
	if err := diskError(&os.PathError{Op: "write", Path: "x", Err: syscall.ENOSPC}); !IsPermanent(err) || !strings.Contains(err.Error(), "free disk space") {
		t.Errorf("ENOSPC: %v", err)
	}
	if err := diskError(errors.New("reset")); IsPermanent(err) {
		t.Errorf("a network error became permanent: %v", err)
	}
}

func TestJournalRoundTripAndPrune(t *testing.T) {
	l := layout{t.TempDir()}
	if err := l.ensure(); err != nil {
		t.Fatal(err)
	}
	j := Journal{Step: StepSwitch, From: Assignment{"1-23-2", "1.23.2", ""}, To: Assignment{"1-24-2", "1.24.2", ""}, Phase: PhaseUpgrading, Transition: time.Unix(5, 0).UTC()}
	if err := WriteJournal(l.journal(), j); err != nil {
		t.Fatal(err)
	}
	if got, err := ReadJournal(l.journal()); err != nil || got != j {
		t.Fatalf("journal = %+v, %v; want %+v", got, err, j)
	}
	var all []Assignment
	for i, v := range []string{"1.20.0", "1.21.0", "1.22.0", "1.23.0", "1.24.0"} {
		a := Assignment{Revision: strings.ReplaceAll(v, ".", "-"), Version: v}
		all = append(all, a)
		if err := os.MkdirAll(l.slot(a), 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.Chtimes(l.slot(a), time.Unix(int64(100+i), 0), time.Unix(int64(100+i), 0))
	}
	if err := os.MkdirAll(filepath.Join(l.versions(), ".tmp-x"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := l.Prune(3, all[0], all[4]); err != nil {
		t.Fatal(err)
	}
	entries, _ := os.ReadDir(l.versions())
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	if want := "1-20-0@1.20.0,1-23-0@1.23.0,1-24-0@1.24.0"; strings.Join(got, ",") != want {
		t.Errorf("after prune: %v, want %s (the two kept and the newest other)", got, want)
	}
}

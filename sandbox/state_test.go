package sandbox

import (
	"path/filepath"
	"testing"

	"github.com/google/go-cmp/cmp"
)

func TestAssignPorts(t *testing.T) {
	ports := map[string]int{PortEtcd: 1234}
	if err := assignPorts(ports); err != nil {
		t.Fatal(err)
	}
	if ports[PortEtcd] != 1234 {
		t.Errorf("recorded port changed to %d", ports[PortEtcd])
	}
	seen := map[int]string{}
	for _, name := range portNames() {
		p := ports[name]
		if p == 0 {
			t.Errorf("no port for %s", name)
		}
		if other, dup := seen[p]; dup {
			t.Errorf("%s and %s share port %d", name, other, p)
		}
		seen[p] = name
	}
}

func TestStateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	empty, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(empty.Processes) != 0 || empty.Kubeconfig != filepath.Join(dir, "kubeconfig") {
		t.Errorf("missing state file loaded as %+v", empty)
	}
	st := &State{Dir: dir, Kubeconfig: KubeconfigPath(dir), Ports: map[string]int{PortAPIServer: 6443}, Nodes: 3}
	st.setProcess(Process{Name: nameEtcd, PID: 10, Argv0: "/bin/etcd", Log: "l"})
	st.setProcess(Process{Name: nameEtcd, PID: 11, Argv0: "/bin/etcd", Log: "l"})
	if err := saveState(st); err != nil {
		t.Fatal(err)
	}
	got, err := loadState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(st, got); diff != "" {
		t.Errorf("state changed in round trip (-want +got):\n%s", diff)
	}
	if got.APIServerURL() != "https://127.0.0.1:6443" {
		t.Errorf("APIServerURL = %q", got.APIServerURL())
	}
}

func TestDefaultDir(t *testing.T) {
	tests := []struct {
		name, xdg, home, want string
	}{
		{"xdg", "/x", "/h", "/x/meshroll/sandbox"},
		{"home", "", "/h", "/h/.local/state/meshroll/sandbox"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("XDG_STATE_HOME", tt.xdg)
			t.Setenv("HOME", tt.home)
			if got := DefaultDir(); got != tt.want {
				t.Errorf("DefaultDir() = %q, want %q", got, tt.want)
			}
		})
	}
}

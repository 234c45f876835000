package sandbox

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"slices"
)

// Port names used as keys of State.Ports.
const (
	PortEtcd      = "etcd"
	PortEtcdPeer  = "etcd-peer"
	PortAPIServer = "kube-apiserver"
	PortKCM       = "kube-controller-manager"
	PortScheduler = "kube-scheduler"
	PortKwok      = "kwok"
	PortRunner    = "injector" // the istiod runner's; named before it replaced the stand-in injector
)

// portNames lists every port a sandbox reserves at its first Up.
func portNames() []string {
	return []string{PortEtcd, PortEtcdPeer, PortAPIServer, PortKCM, PortScheduler, PortKwok, PortRunner}
}

// Env names passed to the istiod runner process (see Options.Runner).
const (
	EnvDir        = "MESHROLL_SANDBOX_DIR"
	EnvRunnerPort = "MESHROLL_ISTIOD_RUNNER_PORT"
)

// What answers Istio's webhooks in a sandbox (State.Istiod).
const (
	// IstiodReal runs a real pilot-discovery, built from Istio's module, for
	// every istiod pod (package sandbox/istiod), bound to the pod's own
	// address: Istio's objects stay exactly as rendered. It needs the pod
	// range routed to lo (CAP_NET_ADMIN). It is the only mode a sandbox that
	// can run pods offers.
	IstiodReal = "real"
	// IstiodNone is the fallback of a host that cannot route the pod range
	// (no CAP_NET_ADMIN, no `ip`), taken only when Options.AllowNoIstiod
	// says so: the cluster runs, pods are kwok's, but nothing answers Istio's
	// webhooks, so an Istio install never becomes ready there.
	// State.IstiodNote says what is missing.
	IstiodNone = "none"
)

// Options configures Up. The zero value starts a three-node sandbox in DefaultDir.
type Options struct {
	// Dir is the state directory; "" means DefaultDir().
	Dir string
	// Nodes is the number of fake kwok nodes; 0 means 3. Up on a running sandbox adds nodes when
	// fewer exist and never removes any.
	Nodes int
	// Out receives progress lines for humans; nil discards them.
	Out io.Writer
	// BinDir holds prebuilt binaries; "" means EnsureBinaries.
	BinDir string
	// Runner is the argv of the istiod runner process (package
	// sandbox/istiod; the CLI's hidden `meshroll sandbox istiod run`),
	// started once the apiserver is ready and stopped first by Down. It gets
	// MESHROLL_SANDBOX_DIR, KUBECONFIG and MESHROLL_INJECTOR_PORT (a free
	// port, also in State.Ports["injector"]) in its environment, and must
	// listen on that port on 127.0.0.1: Up waits for it to accept
	// connections. Empty when the caller runs the runner itself (sandboxtest
	// runs it in the test binary).
	Runner []string
	// APIOnly starts only etcd and kube-apiserver, with no nodes: objects stay
	// exactly as written because no controller, scheduler or kwok acts on
	// them. Benchmarks of reads at scale use it; it is no cluster to roll out on.
	APIOnly bool
	// AllowNoIstiod lets Up start a sandbox with no istiod (IstiodNone) on
	// a host that cannot route the pod range to lo, instead of failing with
	// what is missing. Test packages that never install Istio run there.
	AllowNoIstiod bool
	// PodStartDelay holds every pod but istiod's for a while before kwok
	// makes it Ready (see PodStartDelay); zero starts pods at once. Up
	// restarts kwok when it differs from the running sandbox's.
	PodStartDelay PodStartDelay
}

// State describes a sandbox: where it lives, how to reach it and what runs. It is persisted as
// JSON in the state directory so that a later command finds the processes of an earlier one.
type State struct {
	// Dir is the state directory.
	Dir string `json:"dir"`
	// Kubeconfig is the admin kubeconfig (user in system:masters).
	Kubeconfig string `json:"kubeconfig"`
	// BinDir is where the component binaries were started from.
	BinDir string `json:"binDir"`
	// Ports maps the Port* names to the loopback ports picked at the first Up.
	Ports map[string]int `json:"ports"`
	// Processes are the components (and the istiod runner) in start order.
	Processes []Process `json:"processes"`
	// Nodes is the number of fake nodes requested so far.
	Nodes int `json:"nodes"`
	// NodesReady counts Ready fake nodes; it is filled by Up and Status.
	NodesReady int `json:"nodesReady"`
	// Healthy is true when every recorded process runs and answers its health check.
	Healthy bool `json:"healthy"`
	// Istiod is what answers Istio's webhooks: IstiodReal, or IstiodNone on
	// a host that cannot route the pod range.
	Istiod string `json:"istiod,omitempty"`
	// IstiodNote says why the last Up runs no istiod (no CAP_NET_ADMIN, …);
	// empty otherwise.
	IstiodNote string `json:"istiodNote,omitempty"`
	// PodRange is the range kwok hands pod addresses from; in real mode one
	// of RoutedPodRanges, claimed by this sandbox alone.
	PodRange string `json:"podRange,omitempty"`
	// PodRouted is true while PodRange is routed to lo for this sandbox;
	// Down removes the route and clears it.
	PodRouted bool `json:"podRouted,omitempty"`
	// KwokBlock is the block of PodRange kwok took addresses from at its
	// last start (see nextKwokBlock).
	KwokBlock string `json:"kwokBlock,omitempty"`
	// PodStartDelay is the running kwok's pod start delay
	// (PodStartDelay.String, "" for none).
	PodStartDelay string `json:"podStartDelay,omitempty"`
}

// Process is one started program.
type Process struct {
	// Name is the component name (etcd, kube-apiserver, …, injector).
	Name string `json:"name"`
	// PID is the process id; it leads its own process group.
	PID int `json:"pid"`
	// Argv0 is the program as started; it tells a live component from a recycled pid.
	Argv0 string `json:"argv0"`
	// Log is the file receiving its stdout and stderr.
	Log string `json:"log"`
	// Running is true when the pid is alive and still this program.
	Running bool `json:"running"`
	// Healthy is true when it answered its health check.
	Healthy bool `json:"healthy"`
}

// APIServerURL is the address clients use to reach the sandbox.
func (s *State) APIServerURL() string {
	return fmt.Sprintf("https://127.0.0.1:%d", s.Ports[PortAPIServer])
}

// process returns the recorded process called name, or nil.
func (s *State) process(name string) *Process {
	for i := range s.Processes {
		if s.Processes[i].Name == name {
			return &s.Processes[i]
		}
	}
	return nil
}

// setProcess records p, replacing an earlier process of the same name.
func (s *State) setProcess(p Process) {
	if old := s.process(p.Name); old != nil {
		*old = p
		return
	}
	s.Processes = append(s.Processes, p)
}

// dropDead forgets the process called name when it no longer runs.
func (s *State) dropDead(name string) {
	s.Processes = slices.DeleteFunc(s.Processes, func(p Process) bool {
		return p.Name == name && !processAlive(p.PID, p.Argv0)
	})
}

// DefaultDir is where the CLI keeps its sandbox: $XDG_STATE_HOME/meshroll/sandbox, or
// ~/.local/state/meshroll/sandbox, as state that must survive reboots but is not configuration.
func DefaultDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); d != "" {
		return filepath.Join(d, "meshroll", "sandbox")
	}
	if home, err := os.UserHomeDir(); err == nil {
		return filepath.Join(home, ".local", "state", "meshroll", "sandbox")
	}
	return filepath.Join(os.TempDir(), "meshroll", "sandbox")
}

// KubeconfigPath is the admin kubeconfig of the sandbox in dir ("" = DefaultDir()).
func KubeconfigPath(dir string) string {
	return filepath.Join(resolveDir(dir), "kubeconfig")
}

// resolveDir applies the DefaultDir default and makes dir absolute, because it is handed to
// detached processes and recorded in state.
func resolveDir(dir string) string {
	if dir == "" {
		dir = DefaultDir()
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

// Paths inside a state directory.
func statePath(dir string) string     { return filepath.Join(dir, "state.json") }
func lockPath(dir string) string      { return filepath.Join(dir, "lock") }
func pkiDir(dir string) string        { return filepath.Join(dir, "pki") }
func logPath(dir, name string) string { return filepath.Join(dir, "logs", name+".log") }
func etcdDataDir(dir string) string   { return filepath.Join(dir, "etcd") }
func pkiPath(dir, file string) string { return filepath.Join(pkiDir(dir), file) }

// loadState reads the state file; a missing file yields an empty state, not an error, because a
// sandbox that was never started is simply not running.
func loadState(dir string) (*State, error) {
	st := &State{Dir: dir, Kubeconfig: KubeconfigPath(dir), Ports: map[string]int{}}
	b, err := os.ReadFile(statePath(dir))
	if errors.Is(err, fs.ErrNotExist) {
		return st, nil
	}
	if err != nil {
		return nil, fmt.Errorf("failed to read sandbox state %q: %w", statePath(dir), err)
	}
	if err := json.Unmarshal(b, st); err != nil {
		return nil, fmt.Errorf("failed to parse sandbox state %q: %w", statePath(dir), err)
	}
	st.Dir, st.Kubeconfig = dir, KubeconfigPath(dir)
	if st.Ports == nil {
		st.Ports = map[string]int{}
	}
	return st, nil
}

// saveState writes the state file atomically so a crash never leaves half a file.
func saveState(st *State) error {
	b, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return fmt.Errorf("failed to encode sandbox state %q: %w", st.Dir, err)
	}
	tmp := statePath(st.Dir) + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("failed to write sandbox state %q: %w", tmp, err)
	}
	if err := os.Rename(tmp, statePath(st.Dir)); err != nil {
		return fmt.Errorf("failed to write sandbox state %q: %w", statePath(st.Dir), err)
	}
	return nil
}

// assignPorts picks a free loopback port for every name that has none yet. All listeners are held
// until every port is chosen so the kernel never hands out the same port twice.
func assignPorts(ports map[string]int) error {
	var held []net.Listener
	defer func() {
		for _, l := range held {
			_ = l.Close()
		}
	}()
	for _, name := range portNames() {
		if ports[name] != 0 {
			continue
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return fmt.Errorf("failed to reserve port %q: %w", name, err)
		}
		held = append(held, l)
		ports[name] = l.Addr().(*net.TCPAddr).Port
	}
	return nil
}

// RunnerProcessName is the name State.Processes gives the istiod runner
// process (Options.Runner).
const RunnerProcessName = "istiod-runner"

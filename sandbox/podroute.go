package sandbox

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"
)

// capNetAdmin is CAP_NET_ADMIN's bit in /proc/<pid>/status CapEff.
const capNetAdmin = 12

// errNoRoute is returned when this host cannot route a pod range to lo; the
// caller falls back to a sandbox whose pods are not processes.
var errNoRoute = errors.New("cannot route pod addresses to lo")

// routeSupport says whether this process may add local routes, and if not,
// why, in words a person can act on.
func routeSupport() error {
	if runtime.GOOS != "linux" {
		return fmt.Errorf("%w: local routes are set up for Linux only (this is %s)", errNoRoute, runtime.GOOS)
	}
	ok, err := hasCapability(capNetAdmin)
	if err != nil {
		return fmt.Errorf("%w: %v", errNoRoute, err)
	}
	if !ok {
		return fmt.Errorf("%w: this process lacks CAP_NET_ADMIN (run as root, or grant it with `setcap cap_net_admin+ep`)", errNoRoute)
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("%w: the `ip` command (Debian package iproute2) is not on PATH", errNoRoute)
	}
	return nil
}

// hasCapability reads the effective capability set of this process.
func hasCapability(bit uint) (bool, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return false, fmt.Errorf("failed to read capabilities %q: %w", "/proc/self/status", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "CapEff:")
		if !ok {
			continue
		}
		v, err := strconv.ParseUint(strings.TrimSpace(rest), 16, 64)
		if err != nil {
			return false, fmt.Errorf("failed to parse capabilities %q: %w", rest, err)
		}
		return v&(1<<bit) != 0, nil
	}
	return false, fmt.Errorf("failed to read capabilities %q: no CapEff line", "/proc/self/status")
}

// routeLocal makes every address of cidr bindable on this host (`ip route
// replace local <cidr> dev lo`, idempotent), so processes can serve kwok
// pods on the pods' own addresses and traffic to them never leaves the host.
func routeLocal(ctx context.Context, cidr string) error {
	out, err := exec.CommandContext(ctx, "ip", "route", "replace", "local", cidr, "dev", "lo").CombinedOutput()
	if err != nil {
		return fmt.Errorf("failed to route pod range %q to lo: %w: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// unrouteLocal removes what routeLocal added; a route that is already gone
// is not an error.
func unrouteLocal(ctx context.Context, cidr string) error {
	out, err := exec.CommandContext(ctx, "ip", "route", "del", "local", cidr, "dev", "lo").CombinedOutput()
	if err != nil && !strings.Contains(string(out), "No such process") {
		return fmt.Errorf("failed to remove route of pod range %q: %w: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// HasLocalRoute reports whether cidr is routed to lo right now (`ip route
// show table local`), for tests and `sandbox status`.
func HasLocalRoute(ctx context.Context, cidr string) (bool, error) {
	out, err := exec.CommandContext(ctx, "ip", "route", "show", "table", "local", cidr).CombinedOutput()
	if err != nil {
		return false, fmt.Errorf("failed to list local routes %q: %w: %s", cidr, err, strings.TrimSpace(string(out)))
	}
	return strings.Contains(string(out), "local "+cidr+" dev lo"), nil
}

// claimsDir holds one file per claimed routed range, naming the sandbox
// directory that owns it. Routes live in the kernel until reboot, and so does
// /run (a tmpfs), so the claims never outlive the routes they describe.
func claimsDir() string {
	if fi, err := os.Stat("/run"); err == nil && fi.IsDir() && runtime.GOOS == "linux" {
		return "/run/meshroll/podnet"
	}
	return filepath.Join(os.TempDir(), "meshroll-podnet")
}

// claimFile is the claim of one routed range ("10.244.64.0/19" →
// 10.244.64.0_19).
func claimFile(cidr string) string {
	return filepath.Join(claimsDir(), strings.ReplaceAll(cidr, "/", "_"))
}

// claimRoutedRange gives the sandbox in dir a routed range of its own and
// routes it to lo: prefer, the range it had before (its pods keep their
// addresses across down and up), when no other live sandbox holds it; then
// any free one. A claim whose owner no longer runs (its state lost the range
// or none of its processes lives: it was killed without `sandbox down`) is
// taken over. All of it under one host-wide lock, so two sandboxes starting
// together never pick the same range.
func claimRoutedRange(ctx context.Context, dir, prefer string) (string, error) {
	if err := routeSupport(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(claimsDir(), 0o755); err != nil {
		return "", fmt.Errorf("failed to create claims directory %q: %w", claimsDir(), err)
	}
	unlock, err := lockFile(ctx, filepath.Join(claimsDir(), "lock"))
	if err != nil {
		return "", err
	}
	defer unlock()
	candidates := RoutedPodRanges()
	if prefer != "" {
		candidates = append([]string{prefer}, candidates...)
	}
	for _, cidr := range candidates {
		raw, err := os.ReadFile(claimFile(cidr))
		owner, claimer := parseClaim(raw)
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return "", fmt.Errorf("failed to read claim %q: %w", claimFile(cidr), err)
		case owner != dir && (processAlive(claimer, "") || claimLive(owner, cidr)):
			// The claiming process still runs (its state may not name the
			// range yet: Up saves it after the route), or the sandbox does.
			continue
		}
		if err := os.WriteFile(claimFile(cidr), []byte(dir+"\n"+strconv.Itoa(os.Getpid())), 0o644); err != nil {
			return "", fmt.Errorf("failed to write claim %q: %w", claimFile(cidr), err)
		}
		if err := routeLocal(ctx, cidr); err != nil {
			_ = os.Remove(claimFile(cidr))
			return "", err
		}
		return cidr, nil
	}
	return "", fmt.Errorf("%w: all of %s are held by running sandboxes (see %s)",
		errAllClaimed, strings.Join(RoutedPodRanges(), ", "), claimsDir())
}

// parseClaim reads a claim: the owning sandbox's directory and the pid of
// the process that claimed it (0 in claims written before the pid was).
func parseClaim(raw []byte) (dir string, pid int) {
	dir, rest, _ := strings.Cut(string(raw), "\n")
	pid, _ = strconv.Atoi(strings.TrimSpace(rest))
	return dir, pid
}

// errAllClaimed says every routed range belongs to a running sandbox.
var errAllClaimed = errors.New("failed to claim a pod range")

// claimRoutedRangeWaiting is claimRoutedRange that, while every range is
// held by another running sandbox (other test packages, other people's
// sandboxes on a shared host), waits for one to be released until ctx ends,
// saying so once on out.
func claimRoutedRangeWaiting(out io.Writer) func(ctx context.Context, dir, prefer string) (string, error) {
	return func(ctx context.Context, dir, prefer string) (string, error) {
		said := false
		for {
			cidr, err := claimRoutedRange(ctx, dir, prefer)
			if !errors.Is(err, errAllClaimed) {
				return cidr, err
			}
			if !said {
				fmt.Fprintf(out, "sandbox: %v; waiting for one to be released\n", err)
				said = true
			}
			select {
			case <-ctx.Done():
				return "", fmt.Errorf("%w (waited until %w)", err, ctx.Err())
			case <-time.After(2 * time.Second):
			}
		}
	}
}

// claimLive reports whether the sandbox in dir still holds cidr: its state
// names the range and one of its processes runs.
func claimLive(dir, cidr string) bool {
	st, err := loadState(dir)
	if err != nil || st.PodRange != cidr || !st.PodRouted {
		return false
	}
	for _, p := range st.Processes {
		if processAlive(p.PID, p.Argv0) {
			return true
		}
	}
	return false
}

// releaseRoutedRange removes the route of cidr and the sandbox's claim on
// it, leaving a claim that another sandbox took over alone.
func releaseRoutedRange(ctx context.Context, dir, cidr string) error {
	if err := os.MkdirAll(claimsDir(), 0o755); err != nil {
		return fmt.Errorf("failed to create claims directory %q: %w", claimsDir(), err)
	}
	unlock, err := lockFile(ctx, filepath.Join(claimsDir(), "lock"))
	if err != nil {
		return err
	}
	defer unlock()
	raw, err := os.ReadFile(claimFile(cidr))
	if owner, _ := parseClaim(raw); err == nil && owner != dir {
		return nil // taken over: the route is the new owner's now
	}
	if err := unrouteLocal(ctx, cidr); err != nil {
		return err
	}
	if err := os.Remove(claimFile(cidr)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("failed to remove claim %q: %w", claimFile(cidr), err)
	}
	return nil
}

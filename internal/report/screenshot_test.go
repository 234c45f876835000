//go:build linux

package report

import (
	"bytes"
	"context"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// Window size of the headless browser; the screenshot must have exactly it.
const (
	shotW = 1280
	shotH = 2000
)

// TestHTMLScreenshot opens the report in Debian's chromium and checks the
// page actually paints: the screenshot has the window's size, is far from
// blank, and shows the phase badge's colour and every chart series' colour.
// Set MESHROLL_REPORT_SCREENSHOT=/some/dir to keep the PNGs for a human.
func TestHTMLScreenshot(t *testing.T) {
	if testing.Short() {
		t.Skip("skipping the chromium screenshot under -short (takes a few seconds)")
	}
	browser, err := exec.LookPath("chromium")
	if err != nil {
		t.Skip("chromium not found on PATH; install it with `apt-get install chromium` to run the screenshot test")
	}
	for _, tc := range []struct {
		name  string
		u     *v1alpha1.MeshUpgrade
		want  map[string]string // colour name → #rrggbb that must be painted
		blank int               // minimum number of distinct colours
	}{
		{"succeeded", succeededRun(), map[string]string{
			"phase badge green": "#15803d", "From series": seriesColor(0), "To series": seriesColor(1), "third revision": seriesColor(2),
		}, 200},
		{"rolledback", rolledBackRun(), map[string]string{
			"phase badge red": "#dc2626", "From series": seriesColor(0), "To series": seriesColor(1),
		}, 200},
		{"empty", emptyRun(), map[string]string{"page background": "#f4f6f9"}, 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			img := screenshot(t, browser, tc.u, tc.name)
			if b := img.Bounds(); b.Dx() != shotW || b.Dy() != shotH {
				t.Fatalf("screenshot is %dx%d, want %dx%d", b.Dx(), b.Dy(), shotW, shotH)
			}
			colours := histogram(img)
			if len(colours) < tc.blank {
				t.Errorf("screenshot has only %d distinct colours; the page looks blank", len(colours))
			}
			for what, hex := range tc.want {
				if n := near(colours, hex); n < 100 {
					t.Errorf("%s (%s) painted on %d pixels, want at least 100", what, hex, n)
				}
			}
		})
	}
}

// screenshot renders u to a temporary HTML file and photographs it.
func screenshot(t *testing.T, browser string, u *v1alpha1.MeshUpgrade, name string) image.Image {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, u, fixtureStart().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	return shootPage(t, browser, buf.Bytes(), name)
}

// shootPage photographs one HTML page in headless chromium.
func shootPage(t *testing.T, browser string, html []byte, name string) image.Image {
	t.Helper()
	dir := t.TempDir()
	page := filepath.Join(dir, "report.html")
	shot := filepath.Join(dir, "report.png")
	if err := os.WriteFile(page, html, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, browser, "--headless=new", "--no-sandbox", "--disable-gpu",
		"--hide-scrollbars", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
		"--user-data-dir="+filepath.Join(dir, "profile"),
		"--window-size=1280,2000", "--screenshot="+shot, "file://"+page)
	cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_CONFIG_HOME="+dir, "XDG_CACHE_HOME="+dir)
	// chromium forks helpers; a process group lets the timeout kill them all
	// instead of leaving orphans holding the output pipes open.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	start := time.Now()
	out, err := cmd.CombinedOutput()
	if ctx.Err() != nil {
		t.Fatalf("chromium timed out after %s:\n%s", time.Since(start), out)
	}
	if err != nil {
		t.Fatalf("chromium: %v\n%s", err, out)
	}
	t.Logf("chromium took %s", time.Since(start).Round(time.Millisecond))
	data, err := os.ReadFile(shot)
	if err != nil {
		t.Fatalf("chromium wrote no screenshot: %v\n%s", err, out)
	}
	if keep := os.Getenv("MESHROLL_REPORT_SCREENSHOT"); keep != "" {
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(keep, "report-"+name+".png")
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
		t.Logf("screenshot saved to %s", dst)
	}
	img, err := png.Decode(bytes.NewReader(data))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	return img
}

// histogram counts pixels per 8-bit RGB colour.
func histogram(img image.Image) map[[3]uint8]int {
	h := map[[3]uint8]int{}
	b := img.Bounds()
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			r, g, bl, _ := img.At(x, y).RGBA()
			h[[3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(bl >> 8)}]++
		}
	}
	return h
}

// near counts pixels within a small distance of the #rrggbb colour, which
// tolerates colour management and anti-aliasing rounding in the browser.
func near(h map[[3]uint8]int, hex string) int {
	var want [3]int
	for i := range want {
		v, err := parseHexByte(hex[1+2*i : 3+2*i])
		if err != nil {
			return 0
		}
		want[i] = v
	}
	n := 0
	for c, count := range h {
		d := 0
		for i := range c {
			d = max(d, abs(int(c[i])-want[i]))
		}
		if d <= 6 {
			n += count
		}
	}
	return n
}

// parseHexByte parses two hex digits.
func parseHexByte(s string) (int, error) {
	var v int
	for _, r := range s {
		v <<= 4
		switch {
		case r >= '0' && r <= '9':
			v |= int(r - '0')
		case r >= 'a' && r <= 'f':
			v |= int(r-'a') + 10
		default:
			return 0, strconv.ErrSyntax
		}
	}
	return v, nil
}

// abs is |x|.
func abs(x int) int { return max(x, -x) }

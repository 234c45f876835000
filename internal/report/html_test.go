package report

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/html"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// renderHTML renders u at a fixed time and fails the test on error.
func renderHTML(t *testing.T, u *v1alpha1.MeshUpgrade) string {
	t.Helper()
	var buf bytes.Buffer
	if err := HTML(&buf, u, fixtureStart().Add(time.Hour)); err != nil {
		t.Fatalf("HTML: %v", err)
	}
	return buf.String()
}

// isVoid reports whether tag is an HTML void element, which has no end tag.
func isVoid(tag string) bool {
	switch tag {
	case "area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr":
		return true
	}
	return false
}

// checkBalanced tokenizes doc and fails when an end tag does not close the
// innermost open element or elements stay open. html.Parse would silently
// repair such mistakes, so the tokenizer is what catches a broken template.
func checkBalanced(t *testing.T, doc string) {
	t.Helper()
	z := html.NewTokenizer(strings.NewReader(doc))
	var open []string
	for {
		switch z.Next() {
		case html.ErrorToken:
			if !errors.Is(z.Err(), io.EOF) {
				t.Fatalf("tokenize: %v", z.Err())
			}
			if len(open) > 0 {
				t.Errorf("elements left open at end of document: %v", open)
			}
			return
		case html.StartTagToken:
			name, _ := z.TagName()
			if !isVoid(string(name)) {
				open = append(open, string(name))
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			if len(open) == 0 || open[len(open)-1] != string(name) {
				t.Fatalf("</%s> does not close the innermost open element (open: %v)", name, open)
			}
			open = open[:len(open)-1]
		}
	}
}

// walk calls f for every element node under n.
func walk(n *html.Node, f func(*html.Node)) {
	if n.Type == html.ElementNode {
		f(n)
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		walk(c, f)
	}
}

// attr returns n's attribute key, or "".
func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

// text concatenates the text under n.
func text(n *html.Node) string {
	var b strings.Builder
	var rec func(*html.Node)
	rec = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			rec(c)
		}
	}
	rec(n)
	return b.String()
}

// TestHTMLStructure renders every fixture and checks the page is well
// formed, self-contained, and holds one chart series per revision.
func TestHTMLStructure(t *testing.T) {
	for _, tc := range []struct {
		name      string
		u         *v1alpha1.MeshUpgrade
		revisions []string // chart series, bottom to top; nil means no chart
		phase     string
		sections  map[string]string // section id → text it must contain
	}{
		{
			name: "succeeded", u: succeededRun(), revisions: []string{"1-23-2", "1-24-2", "1-22-1"}, phase: "ok",
			sections: map[string]string{
				"gates":       "checkout-probe",
				"failures":    "No workload failed",
				"waves":       "Deployment search/cart-25",
				"timeline":    "all workloads run 1-24-2",
				"skipped":     "netshoot",
				"label-moves": "prod-stable",
			},
		},
		{
			name: "rolled back", u: rolledBackRun(), revisions: []string{"1-23-2", "1-24-2"}, phase: "bad",
			sections: map[string]string{
				"gates":    `0.042 < 0.01 is false for {destination_workload="checkout-6"}`,
				"failures": "RollbackFailed",
				"timeline": "RollbackStarted",
			},
		},
		{
			name: "empty", u: emptyRun(), phase: "idle",
			sections: map[string]string{
				"revision-mix": "No revision samples recorded yet",
				"gates":        "No gate has run yet",
				"waves":        "frozen when the run starts",
				"timeline":     "Nothing has happened yet",
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out := renderHTML(t, tc.u)
			checkBalanced(t, out)
			for _, s := range []string{"http://", "https://", "url(", "@import", "<script"} {
				if strings.Contains(out, s) {
					t.Errorf("page contains %q; the report must be self-contained and script-free", s)
				}
			}
			doc, err := html.Parse(strings.NewReader(out))
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			var series []string
			var svgs int
			sections := map[string]*html.Node{}
			var phase *html.Node
			walk(doc, func(n *html.Node) {
				switch {
				case n.Data == "svg":
					svgs++
				case n.Data == "path" && attr(n, "class") == "series":
					series = append(series, attr(n, "data-revision"))
				case n.Data == "section":
					sections[attr(n, "id")] = n
				case attr(n, "id") == "phase":
					phase = n
				}
			})
			if !slices.Equal(series, tc.revisions) {
				t.Errorf("chart series = %q, want %q", series, tc.revisions)
			}
			if wantSVG := min(len(tc.revisions), 1); svgs != wantSVG {
				t.Errorf("found %d <svg>, want %d", svgs, wantSVG)
			}
			wantPhase := string(newView(tc.u, time.Time{}).Phase)
			if phase == nil || !strings.Contains(attr(phase, "class"), tc.phase) || text(phase) != wantPhase {
				t.Errorf("phase badge wrong: want class %q and text %q", tc.phase, wantPhase)
			}
			for id, want := range tc.sections {
				s, ok := sections[id]
				if !ok {
					t.Errorf("no section #%s", id)
					continue
				}
				if !strings.Contains(text(s), want) {
					t.Errorf("section #%s lacks %q:\n%s", id, want, text(s))
				}
			}
		})
	}
}

// TestHTMLEscapes checks that markup in cluster-supplied strings reaches the
// reader as text and never as elements, attributes or styles.
func TestHTMLEscapes(t *testing.T) {
	u := hostileRun()
	out := renderHTML(t, u)
	checkBalanced(t, out)
	doc, err := html.Parse(strings.NewReader(out))
	if err != nil {
		t.Fatal(err)
	}
	var styles int
	walk(doc, func(n *html.Node) {
		switch n.Data {
		case "script", "img", "a", "b":
			t.Errorf("hostile input produced a <%s> element", n.Data)
		case "style":
			styles++
		}
		for _, a := range n.Attr {
			if strings.HasPrefix(a.Key, "on") || a.Key == "href" || a.Key == "src" {
				t.Errorf("hostile input produced attribute %s=%q on <%s>", a.Key, a.Val, n.Data)
			}
		}
	})
	if styles != 1 {
		t.Errorf("found %d <style> elements, want only the report's own", styles)
	}
	body := text(doc)
	for _, want := range []string{
		`<script>alert("name")</script>`,
		`evil"><script>alert(1)</script>`,
		`<a href="https://evil.example/">click</a>`,
		"<style>body{display:none}</style>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("hostile string %q not shown as text", want)
		}
	}
	if !strings.Contains(out, `data-revision="&lt;b&gt;rev&lt;/b&gt;"`) {
		t.Errorf("hostile revision name not escaped in the chart attribute")
	}
}

// TestHTMLDuration checks a running upgrade measures its duration against
// the caller's clock and a finished one against its completion time.
func TestHTMLDuration(t *testing.T) {
	running := succeededRun()
	running.Status.Phase = v1alpha1.PhaseMigrating
	running.Status.CompletedAt = nil
	for _, tc := range []struct {
		name string
		u    *v1alpha1.MeshUpgrade
		want string
	}{
		{"finished", succeededRun(), "42m10s"},
		{"running", running, "1h0m0s"},
		{"not started", emptyRun(), "not started"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if out := renderHTML(t, tc.u); !strings.Contains(out, tc.want) {
				t.Errorf("page lacks %q", tc.want)
			}
		})
	}
}

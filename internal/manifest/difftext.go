package manifest

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"

	"sigs.k8s.io/yaml"
)

// inlineWidth is the longest value printed on the path's own line; longer
// values and multi-line strings are printed below it, one line per line.
const inlineWidth = 100

// diffContext is how many unchanged lines surround a change in a multi-line
// string (Istio's injector templates are hundreds of lines).
const diffContext = 2

// Text writes the diff for people: the summary, then one line per object
// that is not unchanged ("+" added, "-" removed, "~" changed or renamed,
// "old → new" for names paired across revisions), each followed by its
// changed fields ("path: from → to"; multi-line strings as a line diff).
func (d Diff) Text(w io.Writer) error {
	bw := bufio.NewWriter(w)
	s := d.Summary
	fmt.Fprintf(bw, "%d added, %d removed, %d changed, %d renamed, %d unchanged\n",
		s.Added, s.Removed, s.Changed, s.Renamed, s.Unchanged)
	if d.FromRevision != "" {
		fmt.Fprintf(bw, "revision %s → %s: objects are paired by name and the revision is not reported as a change\n",
			d.FromRevision, d.ToRevision)
	}
	for _, o := range d.Objects {
		bw.WriteString("\n")
		k := Key{Kind: o.Kind, Namespace: o.Namespace, Name: o.Name}
		switch o.Change {
		case ChangeAdded:
			fmt.Fprintf(bw, "+ %s\n", k)
			continue
		case ChangeRemoved:
			fmt.Fprintf(bw, "- %s\n", k)
			continue
		case ChangeRenamed:
			k.Name = o.FromName
			fmt.Fprintf(bw, "~ %s → %s\n", k, o.Name)
		default:
			fmt.Fprintf(bw, "~ %s\n", k)
		}
		for _, f := range o.Fields {
			writeField(bw, f)
		}
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("failed to write diff: %w", err)
	}
	return nil
}

// writeField writes one field change, inline when both values are short.
func writeField(w *bufio.Writer, f FieldChange) {
	from, fok := inline(f.From)
	to, tok := inline(f.To)
	if fok && tok && len(from)+len(to) <= 2*inlineWidth {
		fmt.Fprintf(w, "    %s: %s → %s\n", f.Path, from, to)
		return
	}
	fmt.Fprintf(w, "    %s:\n", f.Path)
	a, b := lines(f.From), lines(f.To)
	if a == nil || b == nil || !isString(f.From) || !isString(f.To) {
		for _, l := range a {
			fmt.Fprintf(w, "      - %s\n", l)
		}
		for _, l := range b {
			fmt.Fprintf(w, "      + %s\n", l)
		}
		return
	}
	for _, l := range lineDiff(a, b, diffContext) {
		fmt.Fprintf(w, "      %s\n", l)
	}
}

func isString(v any) bool {
	_, ok := v.(string)
	return ok
}

// inline renders a value on one line, or reports that it does not fit.
func inline(v any) (string, bool) {
	var s string
	switch t := v.(type) {
	case nil:
		return "(absent)", true
	case string:
		if strings.Contains(t, "\n") {
			return "", false
		}
		s = t
		if t == "" || strings.TrimSpace(t) != t || strings.Contains(t, " → ") {
			s = strconv.Quote(t)
		}
	case map[string]any, []any:
		b, err := json.Marshal(t)
		if err != nil {
			return "", false
		}
		s = string(b)
	default:
		s = scalarString(t)
	}
	return s, len(s) <= inlineWidth
}

// lines renders a value as lines of YAML (a string as its own lines); nil
// for an absent value.
func lines(v any) []string {
	switch t := v.(type) {
	case nil:
		return nil
	case string:
		return strings.Split(strings.TrimSuffix(t, "\n"), "\n")
	}
	b, err := yaml.Marshal(v)
	if err != nil {
		return []string{fmt.Sprint(v)}
	}
	return strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
}

// lineDiff returns the lines of a minimal diff of a and b ("-", "+" or " "
// prefixed), keeping ctx unchanged lines around each change and "…" for
// the unchanged lines left out. It is a longest-common-subsequence diff:
// quadratic, which is fine for the few hundred lines of an injector template.
func lineDiff(a, b []string, ctx int) []string {
	n, m := len(a), len(b)
	lcs := make([][]int32, n+1)
	for i := range lcs {
		lcs[i] = make([]int32, m+1)
	}
	for i := n - 1; i >= 0; i-- {
		for j := m - 1; j >= 0; j-- {
			if a[i] == b[j] {
				lcs[i][j] = lcs[i+1][j+1] + 1
			} else {
				lcs[i][j] = max(lcs[i+1][j], lcs[i][j+1])
			}
		}
	}
	type op struct {
		sign byte
		text string
	}
	var ops []op
	i, j := 0, 0
	for i < n || j < m {
		switch {
		case i < n && j < m && a[i] == b[j]:
			ops = append(ops, op{' ', a[i]})
			i++
			j++
		case i < n && (j == m || lcs[i+1][j] >= lcs[i][j+1]):
			ops = append(ops, op{'-', a[i]})
			i++
		default:
			ops = append(ops, op{'+', b[j]})
			j++
		}
	}
	keep := make([]bool, len(ops))
	for k, o := range ops {
		if o.sign == ' ' {
			continue
		}
		for c := max(0, k-ctx); c <= min(len(ops)-1, k+ctx); c++ {
			keep[c] = true
		}
	}
	var out []string
	skipped := false
	for k, o := range ops {
		if !keep[k] {
			skipped = true
			continue
		}
		if skipped && len(out) > 0 {
			out = append(out, "  …")
		}
		skipped = false
		out = append(out, string(o.sign)+" "+o.text)
	}
	return out
}

package manifest

import (
	"fmt"
	"strconv"
	"strings"
)

// segType says what a path segment addresses.
type segType int

const (
	segField segType = iota // a map key: .name
	segKey                  // a list item matched by key: [name=discovery]
	segIndex                // a list item matched by position: [3]
	segEmbed                // the content of an embedded YAML/JSON string: {...}
)

// seg is one step of a fieldPath.
type seg struct {
	typ segType
	s   string
}

// fieldPath locates a value inside an object while walking it; it is turned
// into a string only for changes that are recorded.
type fieldPath []seg

// with returns p extended by s without sharing p's backing array.
func (p fieldPath) with(s seg) fieldPath {
	out := make(fieldPath, len(p), len(p)+1)
	copy(out, p)
	return append(out, s)
}

// String renders the path as FieldChange.Path documents.
func (p fieldPath) String() string { return p.render(false) }

// pattern renders the path with every list item as [*], the form server
// defaults and IgnorePaths are written in.
func (p fieldPath) pattern() string { return p.render(true) }

func (p fieldPath) render(wild bool) string {
	var b strings.Builder
	open, start := 0, true
	for _, s := range p {
		switch s.typ {
		case segField:
			if plainKey(s.s) {
				if !start {
					b.WriteByte('.')
				}
				b.WriteString(s.s)
			} else {
				b.WriteString("[" + strconv.Quote(s.s) + "]")
			}
		case segKey, segIndex:
			if wild {
				b.WriteString("[*]")
			} else {
				b.WriteString("[" + s.s + "]")
			}
		case segEmbed:
			b.WriteByte('{')
			open++
			start = true
			continue
		}
		start = false
	}
	b.WriteString(strings.Repeat("}", open))
	return b.String()
}

// plainKey reports whether a map key can be written bare in a path.
func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !alnum(c) && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// underPath reports whether path is prefix or lies below it.
func underPath(path, prefix string) bool {
	path, prefix = strings.TrimRight(path, "}"), strings.TrimRight(prefix, "}")
	if prefix == "" || !strings.HasPrefix(path, prefix) {
		return false
	}
	if len(path) == len(prefix) {
		return true
	}
	return strings.ContainsRune(".[{", rune(path[len(prefix)]))
}

// serverDefault is a value the API server fills in when a manifest leaves
// the field out. Kind "" means any kind; a pattern starting with "*." matches
// at any depth (containers of Deployments, Jobs, CronJobs alike); a nil value
// means any value (server-assigned, like a Service's clusterIP).
type serverDefault struct {
	kind, pattern string
	value         any
}

// serverDefaults is deliberately short: only fields the API server always
// sets to a fixed value (or assigns) and that Istio's charts leave out, so
// that a diff against a set read back from a cluster is not drowned in them.
// A field that has a non-default value on one side is still reported.
func serverDefaults() []serverDefault {
	return []serverDefault{
		{"", "*.containers[*].imagePullPolicy", "IfNotPresent"},
		{"", "*.initContainers[*].imagePullPolicy", "IfNotPresent"},
		{"", "*.containers[*].terminationMessagePath", "/dev/termination-log"},
		{"", "*.initContainers[*].terminationMessagePath", "/dev/termination-log"},
		{"", "*.containers[*].terminationMessagePolicy", "File"},
		{"", "*.initContainers[*].terminationMessagePolicy", "File"},
		{"", "*.ports[*].protocol", "TCP"},
		{"", "*.template.spec.dnsPolicy", "ClusterFirst"},
		{"", "*.template.spec.schedulerName", "default-scheduler"},
		{"", "*.template.spec.restartPolicy", "Always"},
		{"", "*.template.spec.terminationGracePeriodSeconds", int64(30)},
		{"", "*.template.spec.securityContext", map[string]any{}},
		{"", "spec.revisionHistoryLimit", int64(10)},
		{"Deployment", "spec.progressDeadlineSeconds", int64(600)},
		{"Service", "spec.clusterIP", nil},
		{"Service", "spec.clusterIPs", nil},
		{"Service", "spec.sessionAffinity", "None"},
		{"Service", "spec.ipFamilies", nil},
		{"Service", "spec.ipFamilyPolicy", "SingleStack"},
		{"Service", "spec.internalTrafficPolicy", "Cluster"},
	}
}

// isServerDefault reports whether a field present on one side only (a or b
// nil) holds the value the server would have defaulted it to.
func isServerDefault(kind string, p fieldPath, a, b any) bool {
	v := a
	if v == nil {
		v = b
	}
	pat := p.pattern()
	for _, d := range serverDefaults() {
		if d.kind != "" && d.kind != kind {
			continue
		}
		if rest, ok := strings.CutPrefix(d.pattern, "*."); ok {
			if pat != rest && !strings.HasSuffix(pat, "."+rest) {
				continue
			}
		} else if pat != d.pattern {
			continue
		}
		if d.value == nil || equalValue(v, d.value) {
			return true
		}
	}
	return false
}

// scalarString renders a scalar the way it reads in YAML.
func scalarString(v any) string {
	switch t := v.(type) {
	case nil:
		return "null"
	case string:
		return t
	case bool:
		return strconv.FormatBool(t)
	case int64:
		return strconv.FormatInt(t, 10)
	case int:
		return strconv.Itoa(t)
	case float64:
		return strconv.FormatFloat(t, 'g', -1, 64)
	}
	return fmt.Sprint(v)
}

func itoa(i int) string { return strconv.Itoa(i) }

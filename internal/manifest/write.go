package manifest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/meshroll/meshroll/internal/istio"
)

// Layout is how Write arranges split manifests on disk.
type Layout string

// The layouts. Dirs suits GitOps tools and `kubectl apply -f`; Charts is the
// seed's two Helm charts, deployed with the CRD chart first (e.g. helmfile
// `needs:`), because Helm fails on objects whose CRD does not exist yet.
const (
	LayoutDirs   Layout = "dirs"
	LayoutCharts Layout = "charts"
)

// Names of what Write creates.
const (
	// MarkerFile marks a directory as written by meshroll; Write replaces
	// such a directory but refuses any other non-empty one, so a typo in
	// --out cannot wipe someone's work.
	MarkerFile = ".meshroll-manifests"
	// ManifestFile is the single file of an unsplit dirs layout.
	ManifestFile = "manifest.yaml"
	// CRDDir and ResourceDir are the two directories of a split dirs layout.
	CRDDir      = "crds"
	ResourceDir = "resources"
	// DefaultChartName and DefaultCRDChartName name the two charts.
	DefaultChartName    = "istio"
	DefaultCRDChartName = "istio-crd"
)

// ChartMeta fills the Chart.yaml of the charts layout.
type ChartMeta struct {
	// Version is the chart version; meshroll uses the Istio version, so the
	// chart says what it installs. Required for the charts layout.
	Version string
	// AppVersion defaults to Version.
	AppVersion string
	// Description defaults to a sentence naming the chart's content.
	Description string
	// Name and CRDName default to "istio" and "istio-crd".
	Name, CRDName string
}

// Encode writes objects as one multi-document YAML stream, "---" separated,
// with map keys sorted, so the same objects always encode to the same bytes
// and a git diff of two renders shows only real changes.
func Encode(objs []*unstructured.Unstructured) ([]byte, error) {
	var buf bytes.Buffer
	for i, o := range objs {
		b, err := yaml.Marshal(o.Object)
		if err != nil {
			return nil, fmt.Errorf("failed to encode object %s: %w", describe(o), err)
		}
		if i > 0 {
			buf.WriteString("---\n")
		}
		buf.Write(b)
	}
	return buf.Bytes(), nil
}

// Write writes objects under dir and returns the paths of the files written.
//
//   - not split, dirs: dir/manifest.yaml, all objects in order (one file to
//     review and apply; the order is apply order).
//   - not split, charts: one chart, dir/istio/{Chart.yaml,templates/…}.
//   - split, dirs: dir/crds/… and dir/resources/…, one file per object.
//   - split, charts: dir/istio-crd/{Chart.yaml,templates/…} with the CRDs and
//     dir/istio/{Chart.yaml,templates/…} with the rest.
//
// Per-object files are named NNNN-kind[-namespace]-name.yaml; the number
// keeps apply order for tools that apply a directory in file-name order.
// Chart templates escape "{{" (Istio's injector templates are Go templates
// themselves), so `helm template` yields the objects unchanged.
//
// Everything is written to a temporary sibling directory first and renamed
// into place, so a failure leaves dir as it was; an existing dir is replaced
// only if it is empty or carries MarkerFile.
func Write(dir string, objs []*unstructured.Unstructured, split bool, layout Layout, meta ChartMeta) ([]string, error) {
	files, err := layoutFiles(objs, split, layout, meta)
	if err != nil {
		return nil, err
	}
	dir = filepath.Clean(dir)
	existing, err := checkTarget(dir)
	if err != nil {
		return nil, err
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return nil, fmt.Errorf("failed to create directory %q: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".tmp-")
	if err != nil {
		return nil, fmt.Errorf("failed to create temporary directory in %q: %w", parent, err)
	}
	ok := false
	defer func() {
		if !ok {
			_ = os.RemoveAll(tmp)
		}
	}()
	if err := os.Chmod(tmp, 0o755); err != nil {
		return nil, fmt.Errorf("failed to write manifests to %q: %w", dir, err)
	}
	var written []string
	for _, f := range files {
		data, err := f.content()
		if err != nil {
			return nil, fmt.Errorf("failed to write manifests to %q: %w", dir, err)
		}
		p := filepath.Join(tmp, filepath.FromSlash(f.path))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return nil, fmt.Errorf("failed to create directory %q: %w", filepath.Dir(p), err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return nil, fmt.Errorf("failed to write file %q: %w", p, err)
		}
		written = append(written, filepath.Join(dir, filepath.FromSlash(f.path)))
	}
	marker := fmt.Sprintf("written by meshroll: layout=%s split=%t objects=%d\n", layoutOrDefault(layout), split, len(objs))
	if err := os.WriteFile(filepath.Join(tmp, MarkerFile), []byte(marker), 0o644); err != nil {
		return nil, fmt.Errorf("failed to write marker in %q: %w", tmp, err)
	}
	if err := swap(tmp, dir, existing); err != nil {
		return nil, err
	}
	ok = true
	return written, nil
}

// checkTarget reports whether dir exists and refuses it if it holds
// anything meshroll did not write.
func checkTarget(dir string) (bool, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("failed to read output directory %q: %w", dir, err)
	}
	if len(entries) == 0 {
		return true, nil
	}
	if _, err := os.Stat(filepath.Join(dir, MarkerFile)); err != nil {
		return false, fmt.Errorf("failed to write manifests to %q: directory is not empty and was not written by meshroll (no %s)", dir, MarkerFile)
	}
	return true, nil
}

// swap puts tmp in dir's place, moving an existing dir aside first and back
// if the rename fails.
func swap(tmp, dir string, existing bool) error {
	if !existing {
		if err := os.Rename(tmp, dir); err != nil {
			return fmt.Errorf("failed to move manifests into %q: %w", dir, err)
		}
		return nil
	}
	old := tmp + ".old"
	if err := os.Rename(dir, old); err != nil {
		return fmt.Errorf("failed to move previous manifests %q aside: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		_ = os.Rename(old, dir)
		return fmt.Errorf("failed to move manifests into %q: %w", dir, err)
	}
	if err := os.RemoveAll(old); err != nil {
		return fmt.Errorf("failed to remove previous manifests %q: %w", old, err)
	}
	return nil
}

func layoutOrDefault(l Layout) Layout {
	if l == "" {
		return LayoutDirs
	}
	return l
}

// outFile is one file to write; content is computed while writing so that
// a failure part-way exercises the same clean-up as an I/O error.
type outFile struct {
	path    string // slash-separated, relative to the output dir
	content func() ([]byte, error)
}

// layoutFiles decides the files of a layout.
func layoutFiles(objs []*unstructured.Unstructured, split bool, layout Layout, meta ChartMeta) ([]outFile, error) {
	switch layoutOrDefault(layout) {
	case LayoutDirs:
		if !split {
			return []outFile{{path: ManifestFile, content: func() ([]byte, error) { return Encode(objs) }}}, nil
		}
		crds, rest := Split(objs)
		return append(objectFiles(CRDDir, crds, false), objectFiles(ResourceDir, rest, false)...), nil
	case LayoutCharts:
		if meta.Version == "" {
			return nil, fmt.Errorf("failed to write charts: a chart version is required")
		}
		name, crdName := cmpOr(meta.Name, DefaultChartName), cmpOr(meta.CRDName, DefaultCRDChartName)
		if !split {
			return chartFiles(name, objs, meta, "Istio: every object"), nil
		}
		crds, rest := Split(objs)
		return append(chartFiles(crdName, crds, meta, "Istio CustomResourceDefinitions; install before "+name),
			chartFiles(name, rest, meta, "Istio control plane; install after "+crdName)...), nil
	default:
		return nil, fmt.Errorf("failed to write manifests: unknown layout %q (one of %s, %s)", layout, LayoutDirs, LayoutCharts)
	}
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

// objectFiles names one file per object under dir.
func objectFiles(dir string, objs []*unstructured.Unstructured, template bool) []outFile {
	files := make([]outFile, 0, len(objs))
	for i, o := range objs {
		files = append(files, outFile{
			path: dir + "/" + objectFileName(i, o),
			content: func() ([]byte, error) {
				b, err := Encode([]*unstructured.Unstructured{o})
				if err != nil || !template {
					return b, err
				}
				return escapeTemplate(b), nil
			},
		})
	}
	return files
}

// chartFiles lays out one chart.
func chartFiles(name string, objs []*unstructured.Unstructured, meta ChartMeta, desc string) []outFile {
	chart := map[string]any{
		"apiVersion":  "v2",
		"name":        name,
		"version":     meta.Version,
		"appVersion":  cmpOr(meta.AppVersion, meta.Version),
		"description": cmpOr(meta.Description, desc),
		"type":        "application",
	}
	files := []outFile{{path: name + "/Chart.yaml", content: func() ([]byte, error) { return yaml.Marshal(chart) }}}
	return append(files, objectFiles(name+"/templates", objs, true)...)
}

// objectFileName is NNNN-kind[-namespace]-name.yaml, made file-name safe.
func objectFileName(i int, o *unstructured.Unstructured) string {
	parts := []string{fmt.Sprintf("%04d", i+1), strings.ToLower(o.GetKind())}
	if ns := o.GetNamespace(); ns != "" {
		parts = append(parts, ns)
	}
	parts = append(parts, o.GetName())
	name := strings.Map(func(r rune) rune {
		if r < 128 && (alnum(byte(r)) || r == '.' || r == '-' || r == '_') {
			return r
		}
		return '-'
	}, strings.Join(parts, "-"))
	return strings.ToLower(name) + ".yaml"
}

// templateEscape is what "{{" becomes in a chart template: an action that
// prints "{{".
const templateEscape = `{{ "{{" }}`

func escapeTemplate(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte("{{"), []byte(templateEscape))
}

func unescapeTemplate(b []byte) []byte {
	return bytes.ReplaceAll(b, []byte(templateEscape), []byte("{{"))
}

// ReadDir reads objects back from what Write wrote (any layout), or from any
// YAML file or directory of YAML files (read recursively in file-name
// order). Inside a Helm chart (a directory with Chart.yaml) only templates/
// is read and "{{" escapes are undone; hidden files and non-YAML files are
// skipped. CRDs are moved first, keeping the order otherwise, so the result
// is in apply order whatever the layout.
func ReadDir(path string) ([]*unstructured.Unstructured, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("failed to read manifests %q: %w", path, err)
	}
	if !fi.IsDir() {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("failed to read manifests %q: %w", path, err)
		}
		return parseDocs(path, data)
	}
	var objs []*unstructured.Unstructured
	var charts []string
	err = filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p != path && strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return fs.SkipDir
			}
			return nil
		}
		if d.IsDir() {
			if _, err := os.Stat(filepath.Join(p, "Chart.yaml")); err == nil {
				charts = append(charts, p)
			}
			return nil
		}
		ext := strings.ToLower(filepath.Ext(p))
		if ext != ".yaml" && ext != ".yml" {
			return nil
		}
		chart := chartOf(p, charts)
		if chart != "" && (!strings.HasPrefix(p, filepath.Join(chart, "templates")+string(filepath.Separator)) || strings.HasPrefix(d.Name(), "_")) {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		if chart != "" {
			data = unescapeTemplate(data)
		}
		docs, err := parseDocs(p, data)
		if err != nil {
			return err
		}
		objs = append(objs, docs...)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("failed to read manifests %q: %w", path, err)
	}
	crds, rest := Split(objs)
	return append(crds, rest...), nil
}

// chartOf returns the innermost chart directory containing p, or "".
func chartOf(p string, charts []string) string {
	best := ""
	for _, c := range charts {
		if strings.HasPrefix(p, c+string(filepath.Separator)) && len(c) > len(best) {
			best = c
		}
	}
	return best
}

// parseDocs splits a YAML stream into objects, skipping empty documents.
func parseDocs(source string, data []byte) ([]*unstructured.Unstructured, error) {
	return istio.ParseManifest(source, string(data))
}

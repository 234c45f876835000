package check

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	"sigs.k8s.io/yaml"
)

// DefaultKubeVersion is the Kubernetes minor version checks assume when
// Input.KubeVersion is empty: the oldest one meshroll's sandbox and supported
// Istio releases share.
const DefaultKubeVersion = "1.33"

// Document is one YAML document of an input file, kept raw so the YAML
// validity check can report documents that never became objects.
type Document struct {
	// File is the file the document came from ("-" for standard input).
	File string
	// Index is the document's position in its file, from 0.
	Index int
	// Bytes is the document's text.
	Bytes []byte
	// Err is why the document could not be parsed into an object, if it could not.
	Err error
	// objects caches the parse so NewInput does not parse twice.
	objects []*unstructured.Unstructured
}

// Position names the document in findings: "file#index".
func (d Document) Position() string {
	return fmt.Sprintf("%s#%d", d.File, d.Index)
}

// Input is what checks read: the parsed objects, the raw documents they came
// from and the Kubernetes version the manifests target.
type Input struct {
	// Objects are the parsed objects, in input order.
	Objects []*unstructured.Unstructured
	// Raw are the documents, including those that did not parse.
	Raw []Document
	// KubeVersion is the target Kubernetes minor version, e.g. "1.33"; ""
	// means DefaultKubeVersion.
	KubeVersion string
}

// Load splits r into YAML documents named after name. A document that is not
// valid YAML, or not a Kubernetes object, is returned with Err set rather
// than failing the load, so that one bad document does not hide the others'
// findings. Only a read error fails.
func Load(r io.Reader, name string) ([]Document, error) {
	yr := utilyaml.NewYAMLReader(bufio.NewReader(r))
	var docs []Document
	for i := 0; ; i++ {
		b, err := yr.Read()
		if errors.Is(err, io.EOF) {
			return docs, nil
		}
		if err != nil {
			return nil, fmt.Errorf("failed to read manifests %q: %w", name, err)
		}
		if isBlank(b) {
			i--
			continue
		}
		d := Document{File: name, Index: i, Bytes: b}
		d.objects, d.Err = parseDocument(b)
		docs = append(docs, d)
	}
}

// isBlank reports whether a document holds only comments and whitespace.
func isBlank(b []byte) bool {
	for _, line := range bytes.Split(b, []byte("\n")) {
		t := bytes.TrimSpace(line)
		if len(t) > 0 && t[0] != '#' && !bytes.Equal(t, []byte("---")) {
			return false
		}
	}
	return true
}

// parseDocument turns one document into objects: one, or the items of a List.
// Duplicate keys are an error because Kubernetes would silently keep one.
func parseDocument(b []byte) ([]*unstructured.Unstructured, error) {
	var m map[string]any
	if err := yaml.UnmarshalStrict(b, &m); err != nil {
		return nil, err
	}
	if m == nil {
		return nil, nil
	}
	u := &unstructured.Unstructured{Object: m}
	if u.GetAPIVersion() == "" || u.GetKind() == "" {
		return nil, errors.New("document is not a Kubernetes object: apiVersion and kind are required")
	}
	if !u.IsList() {
		return []*unstructured.Unstructured{u}, nil
	}
	l, err := u.ToList()
	if err != nil {
		return nil, err
	}
	out := make([]*unstructured.Unstructured, 0, len(l.Items))
	for i := range l.Items {
		out = append(out, &l.Items[i])
	}
	return out, nil
}

// NewInput builds an Input from documents, parsing those without errors.
func NewInput(docs []Document, kubeVersion string) *Input {
	in := &Input{Raw: docs, KubeVersion: kubeVersion}
	for _, d := range docs {
		if d.Err != nil {
			continue
		}
		objs := d.objects
		if objs == nil {
			var err error
			if objs, err = parseDocument(d.Bytes); err != nil {
				continue
			}
		}
		in.Objects = append(in.Objects, objs...)
	}
	return in
}

// FromObjects builds an Input from already parsed objects, e.g. the output
// of istio.Render, so rendering and validation need no YAML round trip.
func FromObjects(objs []*unstructured.Unstructured, kubeVersion string) *Input {
	return &Input{Objects: objs, KubeVersion: kubeVersion}
}

// LoadPath loads a file, every *.yaml and *.yml under a directory (in
// lexical order), or standard input when path is "-".
func LoadPath(path string) (*Input, error) {
	if path == "-" {
		docs, err := Load(os.Stdin, "-")
		if err != nil {
			return nil, err
		}
		return NewInput(docs, ""), nil
	}
	info, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open manifests %q: %w", path, err)
	}
	files := []string{path}
	if info.IsDir() {
		files = nil
		err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			ext := strings.ToLower(filepath.Ext(p))
			if !d.IsDir() && (ext == ".yaml" || ext == ".yml") {
				files = append(files, p)
			}
			return nil
		})
		if err != nil {
			return nil, fmt.Errorf("failed to walk manifests %q: %w", path, err)
		}
		slices.Sort(files)
	}
	var docs []Document
	for _, f := range files {
		d, err := loadFile(f)
		if err != nil {
			return nil, err
		}
		docs = append(docs, d...)
	}
	return NewInput(docs, ""), nil
}

// loadFile loads one file's documents.
func loadFile(path string) ([]Document, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("failed to open manifests %q: %w", path, err)
	}
	defer f.Close()
	return Load(f, path)
}

package istio

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"sync"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
)

// renderCacheFormat names the layout of cache entries and of their keys;
// change it whenever either changes, so old entries are never misread.
const renderCacheFormat = "meshroll-render/v1"

// RenderCache remembers rendered releases. The charts of an Istio release
// never change, so rendering the same release with the same options and
// values always gives the same objects, yet a Helm render of base, istiod
// and gateway costs a few hundred milliseconds of CPU, most of it spent
// parsing YAML. A hit costs a copy (in memory) or a JSON decode (on disk).
//
// Entries are keyed by a hash of everything the output depends on: the
// charts (the istio.io/istio module version for ModuleSource, the directory
// and the size and modification time of every chart file otherwise), the
// version, revision, components, namespaces, gateway name, the merged user
// values including --set, and the meshroll binary itself (its build and the
// executable's size and modification time), so a new meshroll never reads an
// older one's renders. A cache is safe for concurrent use; Render returns
// deep copies, so callers may modify what they get.
type RenderCache struct {
	dir    string
	binary string

	mu  sync.Mutex
	mem map[string][]*unstructured.Unstructured
}

// NewRenderCache returns a cache that keeps renders in memory for the life of
// the process and, when dir is not empty, also as files in dir, so that the
// next meshroll process finds them. dir is created on first write. Entries
// are written atomically; an entry that does not read back is rendered again
// and replaced. Disk errors never fail a render: the cache only saves time.
func NewRenderCache(dir string) *RenderCache {
	return &RenderCache{dir: dir, binary: binaryIdentity(), mem: map[string][]*unstructured.Unstructured{}}
}

// DefaultRenderCacheDir is where the CLI keeps renders between runs:
// <user cache dir>/meshroll/render (e.g. ~/.cache/meshroll/render on Linux).
func DefaultRenderCacheDir() (string, error) {
	base, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("failed to find user cache directory %q: %w", "meshroll/render", err)
	}
	return filepath.Join(base, "meshroll", "render"), nil
}

// Dir returns the directory entries are written to; "" for a memory-only cache.
func (c *RenderCache) Dir() string { return c.dir }

// renderKey is what an entry's key hashes; it is stored in the entry too, so
// a hash collision or a misplaced file is detected rather than trusted.
type renderKey struct {
	Format           string         `json:"format"`
	Binary           string         `json:"binary"`
	Charts           string         `json:"charts"`
	Version          string         `json:"version"`
	Revision         string         `json:"revision"`
	Components       []Component    `json:"components"`
	Namespace        string         `json:"namespace"`
	GatewayName      string         `json:"gatewayName"`
	GatewayNamespace string         `json:"gatewayNamespace"`
	Values           map[string]any `json:"values"`
}

// cacheEntry is the file format of an entry.
type cacheEntry struct {
	Key     json.RawMessage  `json:"key"`
	Objects []map[string]any `json:"objects"`
}

// errFingerprint marks a failure to fingerprint charts, which only means
// the render cannot be cached: a missing chart is reported by the render.
var errFingerprint = errors.New("failed to fingerprint charts")

// chartsIdentity names the charts a render reads without fetching them when
// it can: a ModuleSource's module version is immutable (go verifies its
// checksum), so naming it avoids starting `go` on a hit. Other sources are
// asked for their directory, whose files are fingerprinted. dir is the
// charts directory when the source had to be asked, "" otherwise.
func chartsIdentity(ctx context.Context, o RenderOptions) (id, dir string, err error) {
	if _, ok := o.Source.(ModuleSource); ok {
		rel, err := LookupRelease(o.Version)
		if err != nil {
			return "", "", err
		}
		return "module " + istioModulePath + "@" + rel.ModuleVersion, "", nil
	}
	dir, err = o.Source.ChartsDir(ctx, o.Version)
	if err != nil {
		return "", "", err
	}
	fp, err := fingerprint(dir, o.Components)
	if err != nil {
		return "", dir, fmt.Errorf("%w: %w", errFingerprint, err)
	}
	return fp, dir, nil
}

// fingerprint describes the chart files of the components under dir by
// path, size and modification time: editing a vendored chart changes it.
func fingerprint(dir string, comps []Component) (string, error) {
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("failed to resolve charts directory %q: %w", dir, err)
	}
	h := sha256.New()
	fmt.Fprintf(h, "dir %s\n", abs)
	for _, comp := range comps {
		root := filepath.Join(abs, filepath.FromSlash(string(comp)))
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			info, err := d.Info()
			if err != nil {
				return err
			}
			fmt.Fprintf(h, "%s %d %d %v\n", p, info.Size(), info.ModTime().UnixNano(), info.Mode())
			return nil
		})
		if err != nil {
			return "", fmt.Errorf("failed to fingerprint chart %q: %w", root, err)
		}
	}
	return "dir " + abs + " " + hex.EncodeToString(h.Sum(nil)), nil
}

// binaryIdentity names the running meshroll build, so renders made by one
// build are not served to another whose rendering may differ.
func binaryIdentity() string {
	var b bytes.Buffer
	if info, ok := debug.ReadBuildInfo(); ok {
		b.WriteString(info.Main.Path + "@" + info.Main.Version)
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" || s.Key == "vcs.modified" {
				b.WriteString(" " + s.Key + "=" + s.Value)
			}
		}
	}
	if exe, err := os.Executable(); err == nil {
		if fi, err := os.Stat(exe); err == nil {
			b.WriteString(" " + exe + " " + strconv.FormatInt(fi.Size(), 10) + " " + strconv.FormatInt(fi.ModTime().UnixNano(), 10))
		}
	}
	return b.String()
}

// cacheKey is one render's place in a cache. Its zero value (no cache)
// misses and stores nothing.
type cacheKey struct {
	cache *RenderCache
	// raw is the encoded renderKey, name its hash.
	raw  []byte
	name string
}

// key computes the key of a normalized render. dir is the charts directory
// when finding the key needed it, so the render does not ask again. Errors
// are those the render itself would fail with; when only the key cannot be
// computed, the render goes ahead uncached.
func (c *RenderCache) key(ctx context.Context, o RenderOptions, user map[string]any) (cacheKey, string, error) {
	charts, dir, err := chartsIdentity(ctx, o)
	if err != nil {
		if dir == "" && !errors.Is(err, errFingerprint) {
			return cacheKey{}, "", err
		}
		return cacheKey{}, dir, nil
	}
	raw, err := json.Marshal(renderKey{
		Format: renderCacheFormat, Binary: c.binary, Charts: charts,
		Version: o.Version, Revision: o.Revision, Components: o.Components,
		Namespace: o.Namespace, GatewayName: o.GatewayName, GatewayNamespace: o.GatewayNamespace,
		Values: user,
	})
	if err != nil {
		return cacheKey{}, dir, nil
	}
	sum := sha256.Sum256(raw)
	return cacheKey{cache: c, raw: raw, name: hex.EncodeToString(sum[:])}, dir, nil
}

// get returns deep copies of the entry's objects, or nil on a miss.
func (k cacheKey) get() []*unstructured.Unstructured {
	if k.cache == nil {
		return nil
	}
	return k.cache.get(k.raw, k.name)
}

// put stores copies of objs under k.
func (k cacheKey) put(objs []*unstructured.Unstructured) {
	if k.cache != nil {
		k.cache.put(k.raw, k.name, objs)
	}
}

// get returns deep copies of the entry's objects, or nil on a miss.
func (c *RenderCache) get(raw []byte, name string) []*unstructured.Unstructured {
	c.mu.Lock()
	objs, ok := c.mem[name]
	c.mu.Unlock()
	if !ok && c.dir != "" {
		objs = c.read(raw, name)
		if objs != nil {
			c.mu.Lock()
			c.mem[name] = objs
			c.mu.Unlock()
		}
	}
	if objs == nil {
		return nil
	}
	return deepCopies(objs)
}

// put stores copies of objs under name, in memory and on disk.
func (c *RenderCache) put(raw []byte, name string, objs []*unstructured.Unstructured) {
	kept := deepCopies(objs)
	c.mu.Lock()
	c.mem[name] = kept
	c.mu.Unlock()
	if c.dir != "" {
		c.write(raw, name, kept)
	}
}

// path is the file of an entry.
func (c *RenderCache) path(name string) string {
	return filepath.Join(c.dir, name+".json")
}

// read loads an entry from disk; a missing, unreadable or corrupt entry,
// or one written for another key, is a miss.
func (c *RenderCache) read(raw []byte, name string) []*unstructured.Unstructured {
	b, err := os.ReadFile(c.path(name))
	if err != nil {
		return nil
	}
	var e cacheEntry
	if err := json.Unmarshal(b, &e); err != nil || !bytes.Equal(e.Key, raw) || len(e.Objects) == 0 {
		return nil
	}
	objs := make([]*unstructured.Unstructured, 0, len(e.Objects))
	for _, m := range e.Objects {
		u := &unstructured.Unstructured{Object: m}
		if u.GetAPIVersion() == "" || u.GetKind() == "" || u.GetName() == "" {
			return nil
		}
		objs = append(objs, u)
	}
	return objs
}

// write stores an entry atomically: a temporary file renamed over the
// entry, so a concurrent reader sees the old entry, the new one or none.
func (c *RenderCache) write(raw []byte, name string, objs []*unstructured.Unstructured) {
	e := cacheEntry{Key: raw, Objects: make([]map[string]any, len(objs))}
	for i, o := range objs {
		e.Objects[i] = o.Object
	}
	b, err := json.Marshal(e)
	if err != nil {
		return
	}
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		return
	}
	tmp, err := os.CreateTemp(c.dir, name+".*.tmp")
	if err != nil {
		return
	}
	_, werr := tmp.Write(b)
	cerr := tmp.Close()
	if err := errors.Join(werr, cerr); err != nil {
		_ = os.Remove(tmp.Name())
		return
	}
	if err := os.Rename(tmp.Name(), c.path(name)); err != nil {
		_ = os.Remove(tmp.Name())
	}
}

// deepCopies returns deep copies of objs.
func deepCopies(objs []*unstructured.Unstructured) []*unstructured.Unstructured {
	out := make([]*unstructured.Unstructured, len(objs))
	for i, o := range objs {
		out[i] = o.DeepCopy()
	}
	return out
}

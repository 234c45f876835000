package manifest

import (
	"context"
	"sync"
	"testing"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// renders caches one render per Istio version for the whole test binary:
// a render costs about a second.
type renderCache struct {
	mu   sync.Mutex
	sets map[string][]*unstructured.Unstructured
}

var renders = &renderCache{sets: map[string][]*unstructured.Unstructured{}}

// rendered returns a deep copy of the real base+istiod+gateway render of
// version (revision derived from the version), so tests may modify it.
func rendered(tb testing.TB, version string) []*unstructured.Unstructured {
	tb.Helper()
	renders.mu.Lock()
	defer renders.mu.Unlock()
	set, ok := renders.sets[version]
	if !ok {
		var err error
		set, err = istio.Render(context.Background(), istio.RenderOptions{
			Version:    version,
			Components: []istio.Component{istio.Base, istio.Istiod, istio.Gateway},
		})
		if err != nil {
			tb.Fatalf("render %s: %v", version, err)
		}
		renders.sets[version] = set
	}
	out := make([]*unstructured.Unstructured, len(set))
	for i, o := range set {
		out[i] = o.DeepCopy()
	}
	return out
}

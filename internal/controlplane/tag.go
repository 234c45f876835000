package controlplane

import (
	"context"
	"fmt"

	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"

	"github.com/meshroll/meshroll/internal/istio"
)

// TagOptions name a revision tag and the revision it points at.
type TagOptions struct {
	Tag      string
	Revision string
	// Version is the Istio release of Revision: its chart renders the tag's
	// webhook, exactly as istioctl does.
	Version string
	DryRun  bool
	Source  istio.ChartSource
}

// SetTag creates or moves the istio-revision-tag-<tag> webhook so that
// namespaces labelled istio.io/rev=<tag> are injected by Revision.
func SetTag(ctx context.Context, c Clients, opts TagOptions) ([]Change, error) {
	if err := istio.ValidateRevision(opts.Tag); err != nil {
		return nil, fmt.Errorf("invalid tag name %q: %w", opts.Tag, err)
	}
	objs, err := istio.Render(ctx, istio.RenderOptions{
		Version:    opts.Version,
		Revision:   opts.Revision,
		Components: []istio.Component{istio.Istiod},
		Values:     map[string]any{"revisionTags": []any{opts.Tag}},
		Source:     opts.Source,
	})
	if err != nil {
		return nil, err
	}
	want := istio.TagWebhookPrefix + opts.Tag
	var keep []*unstructured.Unstructured
	for _, o := range objs {
		if o.GetKind() == "MutatingWebhookConfiguration" && o.GetName() == want {
			keep = append(keep, o)
		}
	}
	if len(keep) == 0 {
		return nil, fmt.Errorf("failed to render tag %q: the %s chart produced no %s webhook", opts.Tag, opts.Version, want)
	}
	if err := adaptToSandbox(ctx, c.Kube, keep); err != nil {
		return nil, err
	}
	return NewApplier(c.Dynamic, c.Kube.Discovery(), opts.DryRun).Apply(ctx, keep)
}

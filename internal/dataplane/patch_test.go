package dataplane

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	appsv1 "k8s.io/api/apps/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

func TestForward(t *testing.T) {
	noPrev := `{"rev":null,"restartedAt":null}`
	tests := []struct {
		name    string
		tpl     Template
		token   string
		setRev  string
		want    map[string]any // nil: no patch
		wantErr string
	}{
		{
			name:   "pod mechanism on an unlabelled template records absent values",
			tpl:    Template{TemplateLabels: map[string]string{"app": "web"}},
			token:  tokenA,
			setRev: "1-24-2",
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenA, AnnotationPrevious: noPrev},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: "1-24-2"},
					"annotations": map[string]any{AnnotationRestartedAt: tokenA},
				}}},
			},
		},
		{
			name: "restart only leaves the template's revision label alone",
			tpl: Template{
				TemplateLabels:      map[string]string{"app": "web", istio.LabelRev: "prod"},
				TemplateAnnotations: map[string]string{AnnotationRestartedAt: ownerStamp},
			},
			token: tokenA,
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":"prod","restartedAt":"` + ownerStamp + `"}`},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"annotations": map[string]any{AnnotationRestartedAt: tokenA},
				}}},
			},
		},
		{
			name:   "an empty revision label is recorded as present",
			tpl:    Template{TemplateLabels: map[string]string{istio.LabelRev: ""}},
			token:  tokenA,
			setRev: "1-24-2",
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":"","restartedAt":null}`},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: "1-24-2"},
					"annotations": map[string]any{AnnotationRestartedAt: tokenA},
				}}},
			},
		},
		{
			name: "already moved with this token: no write",
			tpl: Template{
				Labels:              map[string]string{LabelUpgrade: upgradeName},
				Annotations:         map[string]string{AnnotationToken: tokenA, AnnotationPrevious: noPrev},
				TemplateLabels:      map[string]string{istio.LabelRev: "1-24-2"},
				TemplateAnnotations: map[string]string{AnnotationRestartedAt: tokenA},
			},
			token:  tokenA,
			setRev: "1-24-2",
		},
		{
			name: "a move of this upgrade keeps the values from before the first move",
			tpl: Template{
				Labels:              map[string]string{LabelUpgrade: upgradeName},
				Annotations:         map[string]string{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":"1-23-2","restartedAt":null}`},
				TemplateLabels:      map[string]string{istio.LabelRev: "1-24-2"},
				TemplateAnnotations: map[string]string{AnnotationRestartedAt: tokenA},
			},
			token:  tokenB,
			setRev: "1-24-2",
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenB, AnnotationPrevious: `{"rev":"1-23-2","restartedAt":null}`},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: "1-24-2"},
					"annotations": map[string]any{AnnotationRestartedAt: tokenB},
				}}},
			},
		},
		{
			name: "token on the object but the template restarted since: moves again",
			tpl: Template{
				Labels:              map[string]string{LabelUpgrade: upgradeName},
				Annotations:         map[string]string{AnnotationToken: tokenA, AnnotationPrevious: noPrev},
				TemplateAnnotations: map[string]string{AnnotationRestartedAt: ownerStamp},
			},
			token: tokenA,
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenA, AnnotationPrevious: noPrev},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"annotations": map[string]any{AnnotationRestartedAt: tokenA},
				}}},
			},
		},
		{
			name: "another upgrade's record is kept under the current values, for its own rollback",
			tpl: Template{
				Labels:              map[string]string{LabelUpgrade: "1-22-1-to-1-23-2"},
				Annotations:         map[string]string{AnnotationToken: "old", AnnotationPrevious: `{"rev":"1-22-1","restartedAt":null}`},
				TemplateLabels:      map[string]string{istio.LabelRev: "1-23-2"},
				TemplateAnnotations: map[string]string{AnnotationRestartedAt: "old"},
			},
			token:  tokenA,
			setRev: "1-24-2",
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: upgradeName},
					"annotations": map[string]any{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":"1-23-2","restartedAt":"old","upgrade":"1-22-1-to-1-23-2","token":"old","prior":{"rev":"1-22-1","restartedAt":null}}`},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: "1-24-2"},
					"annotations": map[string]any{AnnotationRestartedAt: tokenA},
				}}},
			},
		},
		{
			name: "unreadable record of this upgrade",
			tpl: Template{
				Labels:      map[string]string{LabelUpgrade: upgradeName},
				Annotations: map[string]string{AnnotationPrevious: "{not json"},
			},
			token:   tokenA,
			wantErr: AnnotationPrevious,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := Forward(tc.tpl, upgradeName, tc.token, tc.setRev)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Forward() error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Forward() error = %v", err)
			}
			if tc.want == nil {
				if patch != nil {
					t.Fatalf("Forward() = %s, want no patch", patch)
				}
				return
			}
			if diff := cmp.Diff(any(tc.want), decodePatch(t, patch)); diff != "" {
				t.Errorf("Forward() patch (-want +got):\n%s", diff)
			}
		})
	}
}

func TestRestore(t *testing.T) {
	tests := []struct {
		name    string
		tpl     Template
		want    map[string]any // nil: no patch
		wantErr string
	}{
		{
			name: "never moved",
			tpl:  Template{TemplateLabels: map[string]string{istio.LabelRev: "1-23-2"}},
		},
		{
			name: "moved by another upgrade",
			tpl: Template{
				Labels:      map[string]string{LabelUpgrade: "other"},
				Annotations: map[string]string{AnnotationPrevious: `{"rev":"1-22-1","restartedAt":null}`},
			},
		},
		{
			name: "marked by this upgrade without a record",
			tpl:  Template{Labels: map[string]string{LabelUpgrade: upgradeName}},
		},
		{
			name: "absent values are removed",
			tpl: Template{
				Labels:      map[string]string{LabelUpgrade: upgradeName},
				Annotations: map[string]string{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":null,"restartedAt":null}`},
			},
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: nil},
					"annotations": map[string]any{AnnotationToken: nil, AnnotationPrevious: nil},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: nil},
					"annotations": map[string]any{AnnotationRestartedAt: nil},
				}}},
			},
		},
		{
			name: "present values are put back",
			tpl: Template{
				Labels:      map[string]string{LabelUpgrade: upgradeName},
				Annotations: map[string]string{AnnotationToken: tokenA, AnnotationPrevious: `{"rev":"prod","restartedAt":"` + ownerStamp + `"}`},
			},
			want: map[string]any{
				"metadata": map[string]any{
					"labels":      map[string]any{LabelUpgrade: nil},
					"annotations": map[string]any{AnnotationToken: nil, AnnotationPrevious: nil},
				},
				"spec": map[string]any{"template": map[string]any{"metadata": map[string]any{
					"labels":      map[string]any{istio.LabelRev: "prod"},
					"annotations": map[string]any{AnnotationRestartedAt: ownerStamp},
				}}},
			},
		},
		{
			name: "unreadable record",
			tpl: Template{
				Labels:      map[string]string{LabelUpgrade: upgradeName},
				Annotations: map[string]string{AnnotationPrevious: `{"rev":`},
			},
			wantErr: AnnotationPrevious,
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			patch, err := Restore(tc.tpl, upgradeName)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Restore() error = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("Restore() error = %v", err)
			}
			if tc.want == nil {
				if patch != nil {
					t.Fatalf("Restore() = %s, want no patch", patch)
				}
				return
			}
			if diff := cmp.Diff(any(tc.want), decodePatch(t, patch)); diff != "" {
				t.Errorf("Restore() patch (-want +got):\n%s", diff)
			}
		})
	}
}

// TestForwardRestoreRoundTrip applies the patches as merge patches and
// checks that a move and its rollback leave the workload as it was, and that
// neither is written twice.
func TestForwardRestoreRoundTrip(t *testing.T) {
	tests := []struct {
		name        string
		labels      map[string]string
		annotations map[string]string
		setRev      string
	}{
		{name: "pod mechanism, no revision label, no restart", labels: map[string]string{"app": "web"}, setRev: "1-24-2"},
		{
			name:        "pod mechanism replacing a revision and a restart",
			labels:      map[string]string{"app": "web", istio.LabelRev: "1-23-2"},
			annotations: map[string]string{AnnotationRestartedAt: ownerStamp, "prometheus.io/scrape": "true"},
			setRev:      "1-24-2",
		},
		{
			name:        "restart only under a tag",
			labels:      map[string]string{"app": "web", istio.LabelRev: "prod"},
			annotations: map[string]string{"prometheus.io/scrape": "true"},
		},
		{name: "restart only, bare template", labels: map[string]string{"app": "web"}},
		{name: "empty revision label survives", labels: map[string]string{"app": "web", istio.LabelRev: ""}, setRev: "1-24-2"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			orig := deployment(tc.labels, tc.annotations)

			fwd, err := Forward(templateOfDeployment(orig), upgradeName, tokenA, tc.setRev)
			if err != nil || fwd == nil {
				t.Fatalf("Forward() = %s, %v; want a patch", fwd, err)
			}
			moved := applyPatch(t, orig, fwd)
			tpl := moved.Spec.Template
			wantRev, hadRev := tc.labels[istio.LabelRev]
			if tc.setRev != "" {
				wantRev, hadRev = tc.setRev, true
			}
			if got, ok := tpl.Labels[istio.LabelRev]; got != wantRev || ok != hadRev {
				t.Errorf("moved template %s = %q (present %v), want %q (present %v)", istio.LabelRev, got, ok, wantRev, hadRev)
			}
			if got := tpl.Annotations[AnnotationRestartedAt]; got != tokenA {
				t.Errorf("moved template %s = %q, want %q", AnnotationRestartedAt, got, tokenA)
			}
			if got := moved.Labels[LabelUpgrade]; got != upgradeName {
				t.Errorf("moved label %s = %q, want %q", LabelUpgrade, got, upgradeName)
			}
			if got := moved.Annotations[AnnotationToken]; got != tokenA {
				t.Errorf("moved annotation %s = %q, want %q", AnnotationToken, got, tokenA)
			}
			if diff := cmp.Diff(orig.Spec.Template.Spec, tpl.Spec); diff != "" {
				t.Errorf("forward changed the pod spec (-want +got):\n%s", diff)
			}

			// A resumed run sees its own token and writes nothing.
			again, err := Forward(templateOfDeployment(moved), upgradeName, tokenA, tc.setRev)
			if err != nil || again != nil {
				t.Fatalf("second Forward() = %s, %v; want no patch", again, err)
			}

			back, err := Restore(templateOfDeployment(moved), upgradeName)
			if err != nil || back == nil {
				t.Fatalf("Restore() = %s, %v; want a patch", back, err)
			}
			restored := applyPatch(t, moved, back)
			assertSameMeta(t, orig, restored)

			none, err := Restore(templateOfDeployment(restored), upgradeName)
			if err != nil || none != nil {
				t.Fatalf("second Restore() = %s, %v; want no patch", none, err)
			}
		})
	}
}

// TestForwardTwiceThenRestore covers a run that went forward again after an
// interrupted rollback: the rollback still restores the template from before
// the first move.
func TestForwardTwiceThenRestore(t *testing.T) {
	orig := deployment(map[string]string{"app": "web", istio.LabelRev: "1-23-2"}, map[string]string{AnnotationRestartedAt: ownerStamp})
	d := orig
	for _, token := range []string{tokenA, tokenB} {
		p, err := Forward(templateOfDeployment(d), upgradeName, token, "1-24-2")
		if err != nil || p == nil {
			t.Fatalf("Forward(%s) = %s, %v; want a patch", token, p, err)
		}
		d = applyPatch(t, d, p)
	}
	if got := d.Spec.Template.Annotations[AnnotationRestartedAt]; got != tokenB {
		t.Fatalf("template %s = %q, want %q", AnnotationRestartedAt, got, tokenB)
	}
	back, err := Restore(templateOfDeployment(d), upgradeName)
	if err != nil {
		t.Fatalf("Restore() error = %v", err)
	}
	assertSameMeta(t, orig, applyPatch(t, d, back))
}

// assertSameMeta compares the object and pod-template labels and
// annotations; a map emptied by the patch equals a missing one.
func assertSameMeta(t *testing.T, want, got *appsv1.Deployment) {
	t.Helper()
	for _, c := range []struct {
		what      string
		want, got map[string]string
	}{
		{"object labels", want.Labels, got.Labels},
		{"object annotations", want.Annotations, got.Annotations},
		{"template labels", want.Spec.Template.Labels, got.Spec.Template.Labels},
		{"template annotations", want.Spec.Template.Annotations, got.Spec.Template.Annotations},
	} {
		if diff := cmp.Diff(c.want, c.got, cmpopts.EquateEmpty()); diff != "" {
			t.Errorf("%s after restore (-original +restored):\n%s", c.what, diff)
		}
	}
}

func TestMovedOver(t *testing.T) {
	a, b := "a", "b"
	ann := func(p Previous) map[string]string {
		raw, err := json.Marshal(p)
		if err != nil {
			t.Fatal(err)
		}
		return map[string]string{AnnotationPrevious: string(raw)}
	}
	for name, tt := range map[string]struct {
		in   map[string]string
		want []string
	}{
		"no annotation":   {nil, nil},
		"first move":      {ann(Previous{}), nil},
		"over two":        {ann(Previous{Upgrade: &b, Prior: &Previous{Upgrade: &a, Prior: &Previous{}}}), []string{"b", "a"}},
		"unreadable JSON": {map[string]string{AnnotationPrevious: "{"}, nil},
	} {
		if got := MovedOver(tt.in); !slices.Equal(got, tt.want) {
			t.Errorf("%s: MovedOver = %q, want %q", name, got, tt.want)
		}
	}
}

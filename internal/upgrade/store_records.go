package upgrade

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/utils/ptr"

	"github.com/meshroll/meshroll/api/v1alpha1"
)

// This file keeps a MeshUpgrade's status within one object's limits. Past
// v1alpha1.RecordInlineLimit entries the workload and skipped lists move to
// MeshUpgradeRecords (RecordSize entries each, owned by the upgrade); the
// MeshUpgrade keeps the summary and a hash per record, so a status write
// sends only the records whose entries changed — in practice the one or two
// holding the workloads in flight. Records are written before the summary:
// a kill in between leaves records newer than the summary, and the record is
// what resume and rollback read, so intent recorded there is never lost.

// maxStatusBytes is the largest summary the store writes; etcd's limit is
// 1.5 MiB, and the API server needs room for metadata and managed fields.
const maxStatusBytes = 1 << 20

// labelRecordOf marks a record with the upgrade it belongs to.
const labelRecordOf = "meshroll.io/upgrade"

// recordName names record i of upgrade name.
func recordName(name string, i int) string { return name + "-r" + strconv.Itoa(i) }

// recordSlices cuts the two lists into records of RecordSize entries.
func recordSlices(st *v1alpha1.MeshUpgradeStatus) [][2]int {
	n := max((len(st.Workloads)+v1alpha1.RecordSize-1)/v1alpha1.RecordSize, (len(st.Skipped)+v1alpha1.RecordSize-1)/v1alpha1.RecordSize)
	out := make([][2]int, n)
	for i := range out {
		out[i] = [2]int{i * v1alpha1.RecordSize, (i + 1) * v1alpha1.RecordSize}
	}
	return out
}

func window[T any](list []T, r [2]int) []T {
	lo, hi := min(r[0], len(list)), min(r[1], len(list))
	return list[lo:hi]
}

// CheckSize refuses, before anything is written, a plan one MeshUpgrade
// cannot hold, with the way out.
func CheckSize(mu *v1alpha1.MeshUpgrade) error {
	if n := len(mu.Status.Workloads) + len(mu.Status.Skipped); n > v1alpha1.MaxPlannedWorkloads {
		return fmt.Errorf("MeshUpgrade %q would plan %d workloads, more than the %d one upgrade may hold: split the selection by namespace (--namespace-only, --exclude-namespace) into several upgrades",
			mu.Name, n, v1alpha1.MaxPlannedWorkloads)
	}
	summary := mu.DeepCopy()
	if len(summary.Status.Workloads)+len(summary.Status.Skipped) > v1alpha1.RecordInlineLimit {
		summary.Status.Workloads, summary.Status.Skipped = nil, nil
		summary.Status.Records = make([]v1alpha1.RecordRef, len(recordSlices(&mu.Status)))
		for i := range summary.Status.Records {
			summary.Status.Records[i] = v1alpha1.RecordRef{Name: recordName(mu.Name, i), Workloads: v1alpha1.RecordSize, Hash: fmt.Sprintf("%064d", 0)}
		}
	}
	b, err := json.Marshal(summary)
	if err != nil {
		return fmt.Errorf("failed to encode MeshUpgrade %q: %w", mu.Name, err)
	}
	if len(b) > maxStatusBytes {
		return fmt.Errorf("MeshUpgrade %q would be %d bytes, more than the %d one object may be: narrow the selection or split it into several upgrades", mu.Name, len(b), maxStatusBytes)
	}
	return nil
}

// splitRecords writes the records whose entries changed and returns mu with
// the lists moved out and status.records pointing at them; small plans are
// returned as they are.
func (s Store) splitRecords(ctx context.Context, mu *v1alpha1.MeshUpgrade) (*v1alpha1.MeshUpgrade, error) {
	st := &mu.Status
	if len(st.Workloads)+len(st.Skipped) <= v1alpha1.RecordInlineLimit && len(st.Records) == 0 {
		return mu, nil
	}
	out := mu.DeepCopy()
	prev := map[string]string{}
	for _, r := range st.Records {
		prev[r.Name] = r.Hash
	}
	refs := make([]v1alpha1.RecordRef, 0, len(st.Records))
	for i, r := range recordSlices(st) {
		rec := v1alpha1.MeshUpgradeRecord{Upgrade: mu.Name, Index: i, Workloads: window(st.Workloads, r), Skipped: window(st.Skipped, r)}
		rec.Name = recordName(mu.Name, i)
		hash, err := recordHash(&rec)
		if err != nil {
			return nil, err
		}
		if prev[rec.Name] != hash {
			if err := s.applyRecord(ctx, mu, &rec); err != nil {
				return nil, err
			}
		}
		refs = append(refs, v1alpha1.RecordRef{Name: rec.Name, Workloads: len(rec.Workloads), Skipped: len(rec.Skipped), Hash: hash})
	}
	out.Status.Workloads, out.Status.Skipped, out.Status.Records = nil, nil, refs
	return out, nil
}

func recordHash(rec *v1alpha1.MeshUpgradeRecord) (string, error) {
	b, err := json.Marshal([2]any{rec.Workloads, rec.Skipped})
	if err != nil {
		return "", fmt.Errorf("failed to encode MeshUpgradeRecord %q: %w", rec.Name, err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

// applyRecord creates or replaces one record with server-side apply, owned
// by its MeshUpgrade (so it is garbage-collected with it).
func (s Store) applyRecord(ctx context.Context, mu *v1alpha1.MeshUpgrade, rec *v1alpha1.MeshUpgradeRecord) error {
	rec.TypeMeta = metav1.TypeMeta{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgradeRecord"}
	rec.Labels = map[string]string{labelRecordOf: mu.Name}
	if mu.UID != "" {
		rec.OwnerReferences = []metav1.OwnerReference{{APIVersion: v1alpha1.GroupVersion.String(), Kind: "MeshUpgrade",
			Name: mu.Name, UID: mu.UID, BlockOwnerDeletion: ptr.To(true)}}
	}
	m, err := runtime.DefaultUnstructuredConverter.ToUnstructured(rec)
	if err != nil {
		return fmt.Errorf("failed to encode MeshUpgradeRecord %q: %w", rec.Name, err)
	}
	delete(m["metadata"].(map[string]any), "creationTimestamp")
	b, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("failed to encode MeshUpgradeRecord %q: %w", rec.Name, err)
	}
	opts := metav1.PatchOptions{FieldManager: "meshroll", Force: ptr.To(true)}
	if _, err := s.Dynamic.Resource(v1alpha1.RecordGroupVersionResource).Patch(ctx, rec.Name, types.ApplyPatchType, b, opts); err != nil {
		return fmt.Errorf("failed to write MeshUpgradeRecord %q: %w", rec.Name, err)
	}
	return nil
}

// joinRecords reads the records status.records names back into the lists.
// A record newer than the summary (written just before a kill) wins: it is
// where intent was recorded first.
func (s Store) joinRecords(ctx context.Context, mu *v1alpha1.MeshUpgrade) error {
	if len(mu.Status.Records) == 0 {
		return nil
	}
	list, err := s.Dynamic.Resource(v1alpha1.RecordGroupVersionResource).List(ctx, metav1.ListOptions{LabelSelector: labelRecordOf + "=" + mu.Name})
	if err != nil {
		return fmt.Errorf("failed to list MeshUpgradeRecords of %q: %w", mu.Name, err)
	}
	byName := map[string]*unstructured.Unstructured{}
	for i := range list.Items {
		byName[list.Items[i].GetName()] = &list.Items[i]
	}
	recs := make([]v1alpha1.MeshUpgradeRecord, 0, len(mu.Status.Records))
	for _, ref := range mu.Status.Records {
		u, ok := byName[ref.Name]
		if !ok {
			return fmt.Errorf("failed to read MeshUpgrade %q: its record %q is missing (%w)", mu.Name, ref.Name,
				apierrors.NewNotFound(v1alpha1.RecordGroupVersionResource.GroupResource(), ref.Name))
		}
		var rec v1alpha1.MeshUpgradeRecord
		if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &rec); err != nil {
			return fmt.Errorf("failed to decode MeshUpgradeRecord %q: %w", ref.Name, err)
		}
		recs = append(recs, rec)
	}
	sort.Slice(recs, func(i, j int) bool { return recs[i].Index < recs[j].Index })
	mu.Status.Workloads, mu.Status.Skipped = nil, nil
	for _, r := range recs {
		mu.Status.Workloads = append(mu.Status.Workloads, r.Workloads...)
		mu.Status.Skipped = append(mu.Status.Skipped, r.Skipped...)
	}
	return nil
}

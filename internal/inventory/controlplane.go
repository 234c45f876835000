package inventory

import (
	"context"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	admissionv1 "k8s.io/api/admissionregistration/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/meshroll/meshroll/internal/istio"
)

const (
	kindMutating   = "MutatingWebhookConfiguration"
	kindValidating = "ValidatingWebhookConfiguration"
	// injectorWebhookSuffix ends the name of every webhook in an Istio
	// injector configuration ("rev.namespace.sidecar-injector.istio.io").
	injectorWebhookSuffix = "sidecar-injector.istio.io"
	// discoveryContainer is the istiod container that carries the release image.
	discoveryContainer = "discovery"
	// meshConfigMap is the mesh config ConfigMap (istio-<rev> for a revision).
	meshConfigMap = "istio"
)

// controlPlane is the raw istio-system read, before it becomes snapshot rows.
type controlPlane struct {
	deployments []appsv1.Deployment
	configMaps  []corev1.ConfigMap
	// meshConfigs are the "mesh" keys of istio[-<rev>] ConfigMaps by name.
	meshConfigs  map[string]string
	proxyConfigs []istio.ProxyConfig
	services     map[string]bool // "ns/name"
	mutating     []admissionv1.MutatingWebhookConfiguration
	validating   []admissionv1.ValidatingWebhookConfiguration
}

// readControlPlane reads the few objects that describe Istio itself. They are
// small and few, so typed unpaged LISTs are fine. The five LISTs do not
// depend on each other and go out at once: one round trip instead of five,
// which is most of a small cluster's status time on a busy API server. On
// failure the error is the one the sequential order would have met first.
func readControlPlane(ctx context.Context, c Clients) (*controlPlane, error) {
	var (
		cp         controlPlane
		deps       *appsv1.DeploymentList
		cms        *corev1.ConfigMapList
		mwcs       *admissionv1.MutatingWebhookConfigurationList
		vwcs       *admissionv1.ValidatingWebhookConfigurationList
		errs       [5]error
		wg         sync.WaitGroup
		parallelly = func(i int, f func() error) {
			wg.Add(1)
			go func() { defer wg.Done(); errs[i] = f() }()
		}
	)
	parallelly(0, func() (err error) {
		deps, err = c.Kube.AppsV1().Deployments(istio.SystemNamespace).List(ctx, metav1.ListOptions{LabelSelector: "app=istiod"})
		if err != nil {
			return fmt.Errorf("failed to list istiod deployments in %q: %w", istio.SystemNamespace, err)
		}
		return nil
	})
	parallelly(1, func() (err error) {
		cms, err = c.Kube.CoreV1().ConfigMaps(istio.SystemNamespace).List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("failed to list configmaps in %q: %w", istio.SystemNamespace, err)
		}
		return nil
	})
	parallelly(2, func() (err error) {
		cp.proxyConfigs, err = readProxyConfigs(ctx, c)
		return err
	})
	parallelly(3, func() (err error) {
		mwcs, err = c.Kube.AdmissionregistrationV1().MutatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", "mutatingwebhookconfigurations", err)
		}
		return nil
	})
	parallelly(4, func() (err error) {
		vwcs, err = c.Kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().List(ctx, metav1.ListOptions{})
		if err != nil {
			return fmt.Errorf("failed to list %s: %w", "validatingwebhookconfigurations", err)
		}
		return nil
	})
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return nil, err
		}
	}
	cp.deployments = deps.Items
	cp.meshConfigs = map[string]string{}
	for _, cm := range cms.Items {
		switch {
		case cm.Name == istio.InjectorConfigMapPrefix || strings.HasPrefix(cm.Name, istio.InjectorConfigMapPrefix+"-"):
			cp.configMaps = append(cp.configMaps, cm)
		case cm.Name == meshConfigMap || strings.HasPrefix(cm.Name, meshConfigMap+"-"):
			if mesh, ok := cm.Data["mesh"]; ok {
				cp.meshConfigs[cm.Name] = mesh
			}
		}
	}
	for _, w := range mwcs.Items {
		if isIstioWebhook(w.ObjectMeta) {
			cp.mutating = append(cp.mutating, w)
		}
	}
	for _, w := range vwcs.Items {
		if isIstioWebhook(w.ObjectMeta) {
			cp.validating = append(cp.validating, w)
		}
	}
	cp.services = map[string]bool{}
	namespaces := map[string]bool{istio.SystemNamespace: true}
	for _, t := range cp.webhookTargets() {
		if ns, _, ok := strings.Cut(t, "/"); ok {
			namespaces[ns] = true
		}
	}
	for ns := range namespaces {
		svcs, err := c.Kube.CoreV1().Services(ns).List(ctx, metav1.ListOptions{})
		if err != nil {
			return nil, fmt.Errorf("failed to list services in %q: %w", ns, err)
		}
		for _, s := range svcs.Items {
			cp.services[s.Namespace+"/"+s.Name] = true
		}
	}
	return &cp, nil
}

// isIstioWebhook keeps Istio's webhook configurations: they carry istio.io/rev
// (injectors, tags, validators) or are the legacy istiod-default-validator.
func isIstioWebhook(m metav1.ObjectMeta) bool {
	_, ok := m.Labels[istio.LabelRev]
	return ok || m.Name == "istiod-default-validator"
}

func (cp *controlPlane) webhookTargets() []string {
	var out []string
	for _, w := range cp.mutating {
		for _, wh := range w.Webhooks {
			out = append(out, target(wh.ClientConfig))
		}
	}
	for _, w := range cp.validating {
		for _, wh := range w.Webhooks {
			out = append(out, target(wh.ClientConfig))
		}
	}
	return out
}

// target renders a webhook's Service as "ns/name:port/path".
func target(cc admissionv1.WebhookClientConfig) string {
	if cc.Service == nil {
		return ""
	}
	port := int32(443)
	if cc.Service.Port != nil {
		port = *cc.Service.Port
	}
	path := ""
	if cc.Service.Path != nil {
		path = *cc.Service.Path
	}
	return cc.Service.Namespace + "/" + cc.Service.Name + ":" + strconv.Itoa(int(port)) + path
}

// serviceKey reduces "ns/name:port/path" to "ns/name".
func serviceKey(t string) string {
	k, _, _ := strings.Cut(t, ":")
	return k
}

// isInjector says whether a mutating configuration is an Istio injector.
func isInjector(w admissionv1.MutatingWebhookConfiguration) bool {
	for _, wh := range w.Webhooks {
		if strings.HasSuffix(wh.Name, injectorWebhookSuffix) {
			return true
		}
	}
	return false
}

// build turns the raw read into revisions, tags and webhooks, and works out
// where the default injector points.
func (cp *controlPlane) build(s *Snapshot) {
	revs := map[string]*Revision{}
	get := func(name string) *Revision {
		if name == "" {
			name = istio.DefaultRevision
		}
		r := revs[name]
		if r == nil {
			svc := "istiod"
			if name != istio.DefaultRevision {
				svc += "-" + name
			}
			r = &Revision{Name: name, Service: svc, ServiceExists: cp.services[istio.SystemNamespace+"/"+svc]}
			revs[name] = r
		}
		return r
	}
	for _, d := range cp.deployments {
		r := get(d.Labels[istio.LabelRev])
		r.Deployment = d.Name
		r.ReadyReplicas = d.Status.ReadyReplicas
		r.DesiredReplicas = 1
		if d.Spec.Replicas != nil {
			r.DesiredReplicas = *d.Spec.Replicas
		}
		for _, ctr := range d.Spec.Template.Spec.Containers {
			if ctr.Name == discoveryContainer || len(d.Spec.Template.Spec.Containers) == 1 {
				r.Image = ctr.Image
				r.Version = istio.ImageVersion(ctr.Image)
			}
		}
	}
	for _, w := range cp.mutating {
		tag, isTag := w.Labels[istio.LabelTag]
		rev := w.Labels[istio.LabelRev]
		if hasAutoWebhook(w) {
			s.EnableNamespacesByDefault = true
		}
		if isTag {
			s.Tags = append(s.Tags, Tag{Name: tag, Revision: rev, Webhook: w.Name, InstallerLabels: installerLabels(w.Labels)})
			continue
		}
		if isInjector(w) {
			r := get(rev)
			r.InjectorWebhooks = append(r.InjectorWebhooks, w.Name)
		}
	}
	for _, cm := range cp.configMaps {
		name := strings.TrimPrefix(strings.TrimPrefix(cm.Name, istio.InjectorConfigMapPrefix), "-")
		if l, ok := cm.Labels[istio.LabelRev]; ok {
			name = l
		}
		r := get(name)
		r.ConfigMap = cm.Name
		mesh := meshConfigMap
		if name != istio.DefaultRevision {
			mesh += "-" + name
		}
		r.ProxyImageType = istio.MeshImageType(cp.meshConfigs[mesh])
		spec, err := istio.ParseImageSpec(cm.Data["values"])
		if err != nil {
			r.ProxyImageError = err.Error()
			continue
		}
		r.ImageSpec = &spec
		r.ProxyImage = spec.Image(r.ProxyImageType)
	}
	sort.Slice(s.Tags, func(i, j int) bool { return s.Tags[i].Name < s.Tags[j].Name })
	for _, t := range s.Tags {
		if r := revs[t.Revision]; r != nil {
			r.Tags = append(r.Tags, t.Name)
		}
		if t.Name == istio.DefaultRevision {
			s.DefaultRevision = t.Revision
		}
	}
	if s.DefaultRevision == "" {
		if r := revs[istio.DefaultRevision]; r != nil && len(r.InjectorWebhooks) > 0 {
			s.DefaultRevision = istio.DefaultRevision
		}
	}
	for _, r := range revs {
		r.Default = r.Name == s.DefaultRevision
		sort.Strings(r.InjectorWebhooks)
		s.Revisions = append(s.Revisions, *r)
	}
	sort.Slice(s.Revisions, func(i, j int) bool { return s.Revisions[i].Name < s.Revisions[j].Name })
	s.Webhooks = cp.webhooks()
	s.ProxyConfigs = cp.proxyConfigs
}

// injectorCreated says when each revision's injection became possible: the
// oldest injector webhook of the revision, or of a tag pointing at it.
func (cp *controlPlane) injectorCreated() map[string]time.Time {
	out := map[string]time.Time{}
	for _, w := range cp.mutating {
		if !isInjector(w) {
			continue
		}
		rev := w.Labels[istio.LabelRev]
		if rev == "" {
			rev = istio.DefaultRevision
		}
		if t, ok := out[rev]; !ok || w.CreationTimestamp.Time.Before(t) {
			out[rev] = w.CreationTimestamp.Time
		}
	}
	return out
}

// hasAutoWebhook detects the enableNamespacesByDefault webhook ("auto." prefix).
func hasAutoWebhook(w admissionv1.MutatingWebhookConfiguration) bool {
	for _, wh := range w.Webhooks {
		if strings.HasPrefix(wh.Name, "auto.") {
			return true
		}
	}
	return false
}

// webhooks reports each configuration once, with its first missing target if
// any (otherwise its first target), so a broken configuration is never hidden.
func (cp *controlPlane) webhooks() []Webhook {
	var out []Webhook
	add := func(kind string, m metav1.ObjectMeta, ccs []admissionv1.WebhookClientConfig) {
		w := Webhook{Kind: kind, Name: m.Name, Revision: m.Labels[istio.LabelRev], Tag: m.Labels[istio.LabelTag], ServiceExists: true}
		for i, cc := range ccs {
			t := target(cc)
			exists := t == "" || cp.services[serviceKey(t)]
			if i == 0 || (!exists && w.ServiceExists) {
				w.Service, w.ServiceExists = t, exists
				if cc.URL != nil {
					w.URL = *cc.URL
				}
			}
		}
		out = append(out, w)
	}
	for _, w := range cp.mutating {
		ccs := make([]admissionv1.WebhookClientConfig, 0, len(w.Webhooks))
		for _, wh := range w.Webhooks {
			ccs = append(ccs, wh.ClientConfig)
		}
		add(kindMutating, w.ObjectMeta, ccs)
	}
	for _, w := range cp.validating {
		ccs := make([]admissionv1.WebhookClientConfig, 0, len(w.Webhooks))
		for _, wh := range w.Webhooks {
			ccs = append(ccs, wh.ClientConfig)
		}
		add(kindValidating, w.ObjectMeta, ccs)
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Kind != out[j].Kind {
			return out[i].Kind < out[j].Kind
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// installerLabels lists a tag webhook's operator.istio.io labels, sorted:
// istioctl drops them from tags (tags are the user's, not part of an
// install), and `istioctl uninstall --purge` deletes whatever carries
// operator.istio.io/component.
func installerLabels(labels map[string]string) []string {
	var out []string
	for k := range labels {
		if strings.Contains(k, "operator.istio.io") {
			out = append(out, k)
		}
	}
	sort.Strings(out)
	return out
}

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	kubectl "k8s.io/kubectl/pkg/cmd"
	cmdutil "k8s.io/kubectl/pkg/cmd/util"

	"github.com/meshroll/meshroll/internal/check"
	"github.com/meshroll/meshroll/internal/istio"
	"github.com/meshroll/meshroll/sandbox/sandboxtest"
)

// applyFixes runs, one at a time, every shape finding's fix that is a
// kubectl command, with kubectl's own code, and checks after each that
// things got better.
func (e *env) applyFixes(t *testing.T) {
	tried := map[string]bool{}
	ran := 0
	for range 30 {
		findings := e.shapeFindings(t)
		var next *check.Finding
		for i, f := range findings {
			if !tried[fixKey(f)] && strings.HasPrefix(f.Fix, "kubectl ") && !strings.Contains(f.Fix, "|") {
				next = &findings[i]
				break
			}
		}
		if next == nil {
			break
		}
		tried[fixKey(*next)] = true
		optOuts := e.optOuts(t)
		worst := worstOn(findings, next.Object)
		t.Logf("fixing %s on %s: %s", next.Code, next.Object, next.Fix)
		runKubectl(t, next.Fix)
		ran++
		e.settleShapes(t)
		after := e.shapeFindings(t)
		for _, f := range after {
			if f.Code == next.Code && f.Object == next.Object && f.Fix == next.Fix {
				t.Errorf("fix %q left %s on %s unchanged: %s", next.Fix, f.Code, f.Object, f.Message)
			}
		}
		if w := worstOn(after, next.Object); rankOf(w) > rankOf(worst) {
			t.Errorf("fix %q made %s worse: %s → %s", next.Fix, next.Object, worst, w)
		}
		for k := range optOuts {
			if !e.optOuts(t)[k] {
				t.Errorf("fix %q removed the opt-out %s", next.Fix, k)
			}
		}
	}
	if ran < 5 {
		t.Errorf("ran %d fixes, want at least 5: the shapes no longer exercise the fixes", ran)
	}
	for _, f := range e.shapeFindings(t) {
		t.Logf("left after fixing: %s %s %s | %s", f.Severity, f.Code, f.Object, f.Fix)
		if strings.Contains(f.Fix, "restart") && strings.HasPrefix(f.Fix, "kubectl ") && tried[fixKey(f)] {
			t.Errorf("%s on %s still suggests the restart that did not help: %s", f.Code, f.Object, f.Fix)
		}
	}
}

func fixKey(f check.Finding) string { return f.Code + "|" + f.Object + "|" + f.Fix }

func rankOf(s check.Severity) int {
	return map[check.Severity]int{"": 0, check.Info: 1, check.Warning: 2, check.Error: 3}[s]
}

func worstOn(findings []check.Finding, object string) check.Severity {
	var worst check.Severity
	for _, f := range findings {
		if f.Object == object && rankOf(f.Severity) > rankOf(worst) {
			worst = f.Severity
		}
	}
	return worst
}

// optOuts lists every opt-out in the shape namespaces: namespaces labelled
// istio-injection=disabled and Deployments whose pods say
// sidecar.istio.io/inject=false.
func (e *env) optOuts(t *testing.T) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	nss, err := e.kube.CoreV1().Namespaces().List(t.Context(), metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range nss.Items {
		if !strings.HasPrefix(ns.Name, "shape-") {
			continue
		}
		if ns.Labels[istio.LabelInjection] == "disabled" {
			out["Namespace/"+ns.Name] = true
		}
		deps, err := e.kube.AppsV1().Deployments(ns.Name).List(t.Context(), metav1.ListOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range deps.Items {
			if d.Spec.Template.Labels[istio.LabelSidecarInject] == "false" {
				out["Deployment/"+ns.Name+"/"+d.Name] = true
			}
		}
	}
	return out
}

// settleShapes waits until every shape Deployment has rolled out and no pod
// is terminating, so the next check sees the fix's result.
func (e *env) settleShapes(t *testing.T) {
	t.Helper()
	err := wait.PollUntilContextTimeout(t.Context(), 250*time.Millisecond, 2*time.Minute, true, func(ctx context.Context) (bool, error) {
		nss, err := e.kube.CoreV1().Namespaces().List(ctx, metav1.ListOptions{})
		if err != nil {
			return false, nil
		}
		for _, ns := range nss.Items {
			if !strings.HasPrefix(ns.Name, "shape-") {
				continue
			}
			deps, err := e.kube.AppsV1().Deployments(ns.Name).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, d := range deps.Items {
				want := *d.Spec.Replicas
				s := d.Status
				if s.ObservedGeneration < d.Generation || s.UpdatedReplicas != want || s.Replicas != want || s.AvailableReplicas != want {
					return false, nil
				}
			}
			pods, err := e.kube.CoreV1().Pods(ns.Name).List(ctx, metav1.ListOptions{})
			if err != nil {
				return false, nil
			}
			for _, p := range pods.Items {
				if p.DeletionTimestamp != nil || p.Status.Phase == corev1.PodPending {
					return false, nil
				}
			}
		}
		return true, nil
	})
	if err != nil {
		t.Fatalf("shapes did not settle: %v", err)
	}
}

// runKubectl runs a fix's command line with kubectl's own command tree,
// in-process, against the sandbox.
func runKubectl(t *testing.T, line string) {
	t.Helper()
	args, err := splitCommand(line)
	if err != nil {
		t.Fatalf("fix %q: %v", line, err)
	}
	var out, errOut bytes.Buffer
	cmdutil.BehaviorOnFatal(func(msg string, code int) { panic(fmt.Sprintf("kubectl exit %d: %s", code, msg)) })
	defer cmdutil.DefaultBehaviorOnFatal()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("fix %q: %v\n%s", line, r, errOut.String())
		}
	}()
	cmd := kubectl.NewKubectlCommand(kubectl.KubectlOptions{Arguments: args,
		IOStreams: genericiooptions.IOStreams{In: strings.NewReader(""), Out: &out, ErrOut: &errOut}})
	cmd.SetArgs(append(args[1:], "--kubeconfig", sandboxtest.Kubeconfig(t)))
	cmd.SetOut(&out)
	cmd.SetErr(&errOut)
	if err := cmd.Execute(); err != nil {
		t.Fatalf("fix %q: %v\n%s", line, err, errOut.String())
	}
	t.Logf("kubectl: %s", strings.TrimSpace(out.String()))
}

// splitCommand splits a one-line shell command into words, honouring single
// quotes (the only quoting meshroll's fixes use); pipes are refused.
func splitCommand(line string) ([]string, error) {
	var words []string
	var cur strings.Builder
	inQuote, inWord := false, false
	for _, r := range line {
		switch {
		case r == '\'':
			inQuote, inWord = !inQuote, true
		case r == ' ' && !inQuote:
			if inWord {
				words = append(words, cur.String())
				cur.Reset()
				inWord = false
			}
		case r == '|' && !inQuote:
			return nil, fmt.Errorf("a pipeline is not one command")
		default:
			cur.WriteRune(r)
			inWord = true
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unbalanced quote")
	}
	if inWord {
		words = append(words, cur.String())
	}
	return words, nil
}

package check

import "strings"

// goodContainer is a container that passes every container-level check.
const goodContainer = `
      - name: app
        image: example.com/app:1.2.3
        ports:
        - containerPort: 8080
        env:
        - name: A
          value: "1"
        readinessProbe:
          httpGet: {path: /ready, port: 8080}
        securityContext:
          runAsNonRoot: true
          runAsUser: 1000
        resources:
          requests: {cpu: 100m, memory: 128Mi}
          limits: {memory: 256Mi}`

// deploymentWith returns a Deployment app/app in namespace apps whose
// containers block is containers (indented for spec.template.spec.containers).
func deploymentWith(containers string) string {
	return deploymentFixture("app", "apps", "2", "", containers)
}

// deploymentFixture builds a Deployment; replicas "" leaves it unset and
// podSpecExtra is inserted into the pod spec (indented 6 spaces).
func deploymentFixture(name, ns, replicas, podSpecExtra, containers string) string {
	r := ""
	if replicas != "" {
		r = "\n  replicas: " + replicas
	}
	return strings.TrimLeft(`
apiVersion: apps/v1
kind: Deployment
metadata:
  name: `+name+`
  namespace: `+ns+`
  labels: {app: `+name+`}
spec:`+r+`
  selector:
    matchLabels: {app: `+name+`}
  template:
    metadata:
      labels: {app: `+name+`, version: v1}
    spec:`+podSpecExtra+`
      containers:`+containers+"\n", "\n")
}

// namespaceFixture builds a Namespace with the given extra labels (flow map body).
func namespaceFixture(name, labels string) string {
	return "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: " + name + "\n  labels: {" + labels + "}\n"
}

// serviceFixture builds a Service selecting app=<selector> with the given ports block.
func serviceFixture(name, ns, selector, ports string) string {
	return "apiVersion: v1\nkind: Service\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\nspec:\n  selector: {app: " + selector + "}\n  ports: " + ports + "\n"
}

// pdbFixture builds a PDB selecting app=<selector> with the given budget line.
func pdbFixture(name, ns, selector, budget string) string {
	return "apiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\nspec:\n  " + budget + "\n  selector:\n    matchLabels: {app: " + selector + "}\n"
}

// hpaFixture builds an HPA for Deployment <target>.
func hpaFixture(name, ns, target, min, max string) string {
	return "apiVersion: autoscaling/v2\nkind: HorizontalPodAutoscaler\nmetadata:\n  name: " + name + "\n  namespace: " + ns +
		"\nspec:\n  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: " + target + "}\n  minReplicas: " + min + "\n  maxReplicas: " + max + "\n"
}

// docs joins documents into one multi-document YAML stream.
func docs(d ...string) string {
	return strings.Join(d, "\n---\n")
}

// badEverythingFixture trips many checks at once, for ordering tests.
var badEverythingFixture = docs(
	deploymentFixture("bad", "apps", "1", "\n      hostNetwork: true", `
      - name: app
        image: app:latest
        env: [{name: A, value: "1"}, {name: A, value: "2"}]
        securityContext: {privileged: true, runAsUser: 0}
        livenessProbe: {exec: {command: [sh, -c, "curl -f localhost"]}}`),
	pdbFixture("bad", "apps", "bad", "maxUnavailable: 0"),
	namespaceFixture("both", "istio-injection: enabled, istio.io/rev: 1-23-2"),
	"apiVersion: policy/v1beta1\nkind: PodDisruptionBudget\nmetadata: {name: old}\nspec: {minAvailable: 1}\n",
)

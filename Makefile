# meshroll — make targets. `make demo` and `make test` are the two commands a
# newcomer runs (see README.md).
GO        ?= go
BIN       := bin
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -X github.com/meshroll/meshroll/internal/cli.version=$(VERSION)
PKGS      := ./...
# Integration tests start real kube-apiservers; give a cold machine time to
# build the sandbox binaries first (sandbox-bin) and the tests room to run.
TESTFLAGS ?= -race -count=1 -timeout 50m

.PHONY: all build demo test test-unit test-e2e bench lint verify generate sandbox-bin clean

all: build

build:
	$(GO) build -trimpath -ldflags "$(LDFLAGS)" -o $(BIN)/meshroll ./cmd/meshroll

demo: build
	$(BIN)/meshroll demo

# sandbox-bin builds (once, cached under the user cache dir) the real
# kube-apiserver, kube-controller-manager, kube-scheduler, etcd and kwok, the
# istioctl releases the parity tests (test/e2e/parity) run beside meshroll, and
# the pilot-discovery (istiod) releases every e2e test runs for real
# (1.23.2 1.24.2 1.25.1 1.26.1; after istioctl, whose dependencies they
# share: ~1 min each then, ~6 cold on idle cores).
sandbox-bin: build
	$(BIN)/meshroll sandbox build --istioctl
	$(BIN)/meshroll sandbox istiod build

test: lint sandbox-bin
	$(GO) test $(TESTFLAGS) $(PKGS)

test-e2e: sandbox-bin
	$(GO) test $(TESTFLAGS) ./test/e2e/...

test-unit:
	$(GO) test -race -short -count=1 $(PKGS)

bench: sandbox-bin
	$(GO) test -run '^$$' -bench . -benchmem -timeout 180m $(PKGS)

lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^sandbox/toolsrc/')); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

# generate rewrites the MeshUpgrade deepcopy code and CRD from api/v1alpha1,
# and copies the CRDs into the Helm chart (charts/chart_test.go checks they match),
# writes the chart's RBAC from internal/controller/rbac.go and packages the Istio
# chart archives the binary embeds (charts/istio; missing ones only).
CONTROLLER_GEN ?= $(GO) run sigs.k8s.io/controller-tools/cmd/controller-gen@v0.20.0
generate:
	$(CONTROLLER_GEN) object paths=./api/... crd:crdVersions=v1 output:crd:artifacts:config=api/v1alpha1/crd
	rm -f charts/meshroll/crds/*.yaml && cp api/v1alpha1/crd/*.yaml charts/meshroll/crds/
	$(GO) run ./internal/controller/rbacgen charts/meshroll
	$(GO) run ./charts/istiogen charts/istio

verify: lint generate
	git diff --exit-code api/ charts/meshroll/crds/ charts/meshroll/templates/
	$(GO) mod tidy
	git diff --exit-code go.mod go.sum

clean:
	rm -rf $(BIN)

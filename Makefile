# slogate — run `make help` for the targets.
GO        ?= go
BIN       ?= bin/slogate
SLOS      ?= examples/slos
FUZZTIME  ?= 30s
PKGS      := ./...
VERSION   ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
LDFLAGS   := -s -w -X main.version=$(VERSION)

.DEFAULT_GOAL := help
.PHONY: help build run test deps vet fmt fmt-check lint bench fuzz golden clean

help: ## list the targets
	@awk 'BEGIN {FS = ":.*## "} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

build: ## build bin/slogate
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags '$(LDFLAGS)' -o $(BIN) ./cmd/slogate

# make run: the living demo (slogate demo: a traffic generator, a real
# Prometheus on a free loopback port with its data in ./data/demo, slogate
# and rollouts it gates; Ctrl-C stops all of it). With
# SLOGATE_PROMETHEUS=URL: slogate serve with the example SLOs against that
# Prometheus instead.
run: build ## the living demo in a browser (UI URL printed); SLOGATE_PROMETHEUS=URL make run uses your Prometheus and the example SLOs
	@if [ -n "$$SLOGATE_PROMETHEUS" ]; then \
	  ./$(BIN) validate $(SLOS) && \
	  echo "slogate: the UI will be at http://127.0.0.1:8080/ (Prometheus $$SLOGATE_PROMETHEUS)" && \
	  exec ./$(BIN) serve --slos $(SLOS) --prometheus "$$SLOGATE_PROMETHEUS"; \
	else \
	  ./scripts/deps.sh prometheus && exec ./$(BIN) demo --dir data/demo; \
	fi

deps: ## install the Debian packages the tests run for real (prometheus, alertmanager, postgresql, chromium) when missing
	@./scripts/deps.sh

# test/peers is a module of its own (Argo Rollouts' and Flagger's client
# code, with their Kubernetes dependencies, stay out of the main module): the
# contract tests of deploy/'s examples against a live slogate.
PEERS     := test/peers

test: deps fmt-check vet ## gofmt check, go vet and every test with the race detector (real Prometheus, Alertmanager, PostgreSQL), then the Argo Rollouts and Flagger contract tests (test/peers)
	$(GO) test -race -timeout 20m -count=1 $(PKGS)
	@echo "== test/helm: the Helm chart rendered by Helm's Go packages (a module of its own)"
	cd test/helm && $(GO) vet ./... && $(GO) test -timeout 10m -count=1 ./...
	@echo "== test/peers: Argo Rollouts' and Flagger's own client code on deploy/'s examples (a module of its own)"
	cd $(PEERS) && $(GO) vet ./... && $(GO) test -timeout 10m -count=1 ./...

vet: ## go vet
	$(GO) vet $(PKGS)

fmt: ## format the code
	gofmt -w $$(git ls-files '*.go')

fmt-check:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

lint: fmt-check vet ## gofmt and go vet (and staticcheck when installed)
	@if command -v staticcheck >/dev/null 2>&1; then staticcheck $(PKGS); fi

# The load benchmarks of cmd/slogate (BenchmarkLoadGateCached, …): a
# loadgen in a second process against slogate on 127.0.0.1, each with a
# same-run baseline. An upper-case letter after "Load" leaves out
# slo's BenchmarkLoad1000Files, which runs with the package benchmarks.
LOADBENCH := ^BenchmarkLoad[A-Z]

bench: deps ## benchmarks: each package's, then the load benchmarks (a loadgen process against slogate on 127.0.0.1, each with a same-run baseline)
	@echo "== package benchmarks"
	$(GO) test -run '^$$' -bench . -skip '$(LOADBENCH)' -benchmem -count=1 -timeout 30m $(PKGS)
	@echo
	@echo "== load benchmarks: figures from a loadgen process over loopback, baselines (bare-*) measured in the same run"
	$(GO) test -run '^$$' -bench '$(LOADBENCH)' -benchtime 1x -count=1 -timeout 20m ./cmd/slogate/

fuzz: ## run every fuzz target for FUZZTIME each (default 30s)
	@set -e; for pkg in $$($(GO) list ./...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; \
	done

# The packages with golden files: those whose tests define the -update flag.
GOLDEN_PKGS = $(shell grep -rl --include='*_test.go' 'flag.Bool."update"' . | xargs -n1 dirname | sort -u)

golden: ## rewrite the golden files under testdata/ (check the diff before committing)
	$(GO) test -count=1 $(GOLDEN_PKGS) -run . -update

clean: ## remove build output
	rm -rf bin

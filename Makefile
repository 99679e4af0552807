# Sluice — every target loops over the Go modules in go.work.
SHELL := /bin/bash
MODULES := $(shell go list -m -f '{{.Dir}}' 2>/dev/null)
GOTEST_FLAGS ?= -race -count=1 -timeout 20m
RUN_DIR := .run

.DEFAULT_GOAL := help

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z0-9_-]+:.*?## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*?## "}; {printf "  \033[36m%-10s\033[0m %s\n", $$1, $$2}'

.PHONY: deps
deps: ## Install what a fresh Debian machine lacks (redis-server)
	@scripts/deps.sh

# Version stamped into every binary (--version, sluice_build_info).
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
BUILDINFO := github.com/sluicegw/sluice/pkg/buildinfo
LDFLAGS := -X $(BUILDINFO).Version=$(VERSION) -X $(BUILDINFO).Commit=$(COMMIT) -X $(BUILDINFO).Date=$(BUILD_DATE)

.PHONY: build
# The product's binaries (*/cmd/...) and the tools beside them
# (gateway/tools/cmd/...: sluice-dev for make run/up, sluice-bench for make bench).
build: ## Build every binary, the services and the dev and bench tools, into bin/ (version stamped from git)
	@mkdir -p bin
	cd gateway && go build -ldflags '$(LDFLAGS)' -o ../bin/ ./cmd/... ./tools/cmd/...
	cd syncer && go build -ldflags '$(LDFLAGS)' -o ../bin/ ./cmd/...
	cd analytics && go build -ldflags '$(LDFLAGS)' -o ../bin/ ./cmd/...

.PHONY: run
run: deps build ## Run a local cluster in the foreground (Ctrl-C stops it)
	@scripts/cluster.sh run

.PHONY: up
up: deps build ## Start the local cluster in the background (logs in .run/)
	@scripts/cluster.sh up

.PHONY: down
down: ## Stop the background cluster
	@scripts/cluster.sh down

.PHONY: test
test: deps ## Run the whole test suite (race detector on) in every module
	@failed=""; for m in $(MODULES); do echo "== $$m"; (cd $$m && go test $(GOTEST_FLAGS) ./...) || failed="$$failed $$m"; done; \
	if [ -n "$$failed" ]; then echo "FAILED in:$$failed"; exit 1; fi

# Coverage per package of every module: each package's own tests (no
# race detector, to keep it quick); profiles and the total in .run/cover/.
.PHONY: cover
cover: deps ## Report test coverage per package in every module (profiles in .run/cover/)
	@mkdir -p $(RUN_DIR)/cover; failed=""; for m in $(MODULES); do n=$$(basename $$m); echo "== $$n"; \
		(cd $$m && set -o pipefail && go test -count=1 -timeout 20m -covermode=atomic -coverprofile=$(CURDIR)/$(RUN_DIR)/cover/$$n.out ./... \
			| awk '/coverage:/ {for (i = 1; i <= NF; i++) if ($$i == "coverage:") printf "  %-70s %s\n", $$2, $$(i+1); next} /no test files/ {printf "  %-70s none\n", $$2; next} /^(FAIL|---)/ {print}') \
			|| failed="$$failed $$n"; \
		go tool cover -func=$(RUN_DIR)/cover/$$n.out 2>/dev/null | tail -1 | sed "s/^total:/  total ($$n):/"; done; \
	if [ -n "$$failed" ]; then echo "FAILED in:$$failed"; exit 1; fi

.PHONY: e2e
e2e: deps ## Run the end-to-end usage pipeline test (real gateway and analytics binaries)
	cd analytics && go test $(GOTEST_FLAGS) -run 'TestUsagePipelineEndToEnd' -v ./e2e/

# SHORT=1 holds each fault a few seconds (CI); without it the suite takes
# several minutes. The table is also written to .run/chaos-report.txt.
.PHONY: chaos
chaos: deps ## Run the chaos suite: real binaries, NATS and Redis clusters, one fault at a time under load (SHORT=1: short)
	rm -f $(RUN_DIR)/chaos-report.txt
	cd analytics && CHAOS_SHORT=$(SHORT) CHAOS_REPORT=$(CURDIR)/$(RUN_DIR)/chaos-report.txt \
		go test -tags chaos -count=1 -timeout $(if $(SHORT),8m,30m) -v -run 'TestChaos' ./chaos/

.PHONY: bench
bench: deps build ## Load-test the gateway against a bare proxy hop and print a report
	@scripts/bench.sh

.PHONY: gobench
gobench: ## Run the Go micro-benchmarks of every module
	@set -e; for m in $(MODULES); do (cd $$m && go test -run '^$$' -bench . -benchmem ./...); done

# staticcheck and deadcode, pinned; run through the Go module proxy (no
# install step).
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
DEADCODE ?= golang.org/x/tools/cmd/deadcode@v0.52.0

# deadcode reports functions that no binary and no test reaches. It looks at
# every module at once, since pkg's functions are called from the other
# modules (one module alone would call them dead), with -test (a helper that
# only tests use counts as used) and the chaos suite's build tag (code only
# that suite calls counts as used). There is no allow-list: what it reports
# is deleted, or used.
.PHONY: lint
lint: ## gofmt, go vet (also the chaos suite's build tag), staticcheck and deadcode over every module, and the Helm chart
	@out=$$(gofmt -l $(MODULES)); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	@set -e; for m in $(MODULES); do (cd $$m && go vet ./... && go vet -tags chaos ./...); done
	@set -e; for m in $(MODULES); do echo "staticcheck $$m"; (cd $$m && go run $(STATICCHECK) ./...); done
	@echo "deadcode"; out=$$(go run $(DEADCODE) -test -tags chaos $(addsuffix /...,$(MODULES))) || exit 1; \
		if [ -n "$$out" ]; then echo "unreachable code (delete it, or use it):"; echo "$$out"; exit 1; fi
	@scripts/helm-check.sh

# Helm runs through the Go module proxy, pinned in the script (HELM_VERSION).
.PHONY: helm
helm: ## Lint the Helm chart and compare its rendered value sets (UPDATE=1 rewrites deployments/helm/rendered)
	@scripts/helm-check.sh $(if $(UPDATE),--update)

.PHONY: tidy
tidy: ## go mod tidy every module
	@set -e; for m in $(MODULES); do (cd $$m && go mod tidy); done

.PHONY: clean
clean: ## Remove built binaries and cluster state
	rm -rf bin $(RUN_DIR)

# sfsync — run `make help` for the targets.
SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

SERVICES := detector sender ticketpoller sfsandbox sfsync
MODULES = $(shell go list -m -f '{{.Dir}}')
PROTOC_GEN_GO_VERSION := v1.36.12
GOBIN_DIR := $(CURDIR)/bin/tools
TEST_FLAGS ?= -race -count=1 -timeout 20m
BENCH_FLAGS ?=
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT ?= $(shell git rev-parse HEAD 2>/dev/null || echo unknown)
BUILD_DATE ?= $(shell date -u +%Y-%m-%dT%H:%M:%SZ)
LDFLAGS := -s -w -X github.com/sfsync/sfsync/pkg/buildinfo.version=$(VERSION) -X github.com/sfsync/sfsync/pkg/buildinfo.commit=$(COMMIT) -X github.com/sfsync/sfsync/pkg/buildinfo.date=$(BUILD_DATE)
RELEASE_PLATFORMS := linux/amd64 linux/arm64

.PHONY: help
help: ## Show this help
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  %-16s %s\n", $$1, $$2}'

.PHONY: build
build: ## Build every service into bin/, stamped with VERSION, COMMIT and BUILD_DATE (--version shows them)
	@mkdir -p bin
	@for s in $(SERVICES); do (cd services/$$s && CGO_ENABLED=0 go build -trimpath -ldflags '$(LDFLAGS)' -o ../../bin/$$s .); done
	@ls bin | grep -v tools | tr '\n' ' '; echo

.PHONY: release
release: ## Static binaries for linux/amd64 and linux/arm64 with SHA256SUMS in dist/ (nothing is published)
	@rm -rf dist && mkdir -p dist
	@for p in $(RELEASE_PLATFORMS); do os=$${p%/*}; arch=$${p#*/}; \
	  for s in $(SERVICES); do \
	    (cd services/$$s && CGO_ENABLED=0 GOOS=$$os GOARCH=$$arch go build -trimpath -ldflags '$(LDFLAGS)' -o ../../dist/$$s-$(VERSION)-$$os-$$arch .) || exit 1; \
	  done; done
	@cd dist && sha256sum * > SHA256SUMS && cat SHA256SUMS
	@echo "dist/: $(VERSION) for $(RELEASE_PLATFORMS); check with: cd dist && sha256sum -c SHA256SUMS"

.PHONY: test
test: ## Run every module's tests with -race against real MySQL and JetStream
	@for m in $(MODULES); do echo "== $$m"; (cd $$m && go test $(TEST_FLAGS) ./...); done

.PHONY: bench
bench: build ## Run every benchmark and the RSS measurement: one summary table, kept in bench/results.md (BENCH_FLAGS=-skip-rss)
	@go run ./pkg/internal/benchreport/cmd/benchreport $(BENCH_FLAGS)

SEED ?= 1
.PHONY: chaos
chaos: build ## Chaos test: every part a process; workers killed, broker and MariaDB restarted, broker store wiped (SEED=1, CHAOS_FLAGS=-orders N ...)
	@$(MAKE) --no-print-directory deps
	@cd pkg && go run ./chaos/cmd/chaos -bin ../bin -seed $(SEED) $(CHAOS_FLAGS)

.PHONY: lint
lint: ## go vet every module and check gofmt
	@for m in $(MODULES); do (cd $$m && go vet ./...); done
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '\.pb\.go$$')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

.PHONY: tidy
tidy: ## go mod tidy every module
	@for m in $(MODULES); do (cd $$m && go mod tidy); done

$(GOBIN_DIR)/protoc-gen-go:
	@mkdir -p $(GOBIN_DIR)
	GOBIN=$(GOBIN_DIR) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)

.PHONY: generate
generate: $(GOBIN_DIR)/protoc-gen-go ## Regenerate the Go code of proto/ (protoc from Debian's protobuf-compiler)
	@command -v protoc >/dev/null || { echo "protoc missing: apt-get install protobuf-compiler libprotobuf-dev"; exit 1; }
	cd proto && PATH=$(GOBIN_DIR):$$PATH protoc -I . -I /usr/include --go_out=. --go_opt=paths=source_relative sfsync/v1/*.proto

.PHONY: generate-check
generate-check: generate ## Fail when the committed generated code is stale
	@git diff --exit-code -- proto || { echo "proto/: generated code is stale; run make generate and commit"; exit 1; }

.PHONY: deps
deps: ## Install what the tests and the demo run on (Debian: mariadb-server, nats-server) when missing
	@need=""; \
	command -v mariadbd >/dev/null 2>&1 || [ -x /usr/sbin/mariadbd ] || command -v mysqld >/dev/null 2>&1 || [ -x /usr/sbin/mysqld ] || need="$$need mariadb-server"; \
	command -v nats-server >/dev/null 2>&1 || need="$$need nats-server"; \
	if [ -n "$$need" ]; then \
	  if [ "$$(id -u)" != 0 ] && ! command -v sudo >/dev/null; then echo "please install:$$need (or set MYSQL_DSN)"; exit 1; fi; \
	  sudo=""; [ "$$(id -u)" = 0 ] || sudo=sudo; \
	  echo "installing:$$need"; \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -qq && \
	  $$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$need; \
	fi

.PHONY: demo
demo: build ## The end-to-end demo: private MariaDB, sandbox and sfsync, a merchant's day (MYSQL_DSN to use your own server)
	@[ -n "$${MYSQL_DSN:-}" ] || $(MAKE) --no-print-directory deps
	./bin/sfsync demo

.PHONY: up
up: ## Build and start the docker-compose stack, and wait until every service is healthy
	docker compose up -d --build --wait --wait-timeout 300

.PHONY: compose-test
compose-test: ## Run docker-compose.yml under podman with local stand-in images, play the merchant's story through it, tear down (Debian, as root)
	@deployments/compose-test/run.sh

.PHONY: down
down: ## Stop the docker-compose stack (its volumes stay: docker compose down -v drops them)
	docker compose down

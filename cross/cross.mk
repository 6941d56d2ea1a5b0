# Cross builds for ARM boxes (aarch64, armv7); included by the top-level Makefile
# (`include cross/cross.mk`). See cross/README.md.
#
#   make cross        static release binary for CROSS_TARGET (default aarch64-unknown-linux-musl)
#   make tiny         size-first static binaries (nightly, std rebuilt) for TINY_TARGETS
#   make size         binary size per target and build
#   make cross-test   unit tests and a set of integration tests for CROSS_TARGET, under qemu-user
#   make rss-aarch64  real VmHWM/VmRSS on an emulated aarch64 kernel
#   make rss-armv7    the same on an emulated 32-bit ARM kernel
#   make long-run     tests/long_run.rs in full, in release: heap and RSS
#   make rss-native   its RSS part only, against the static x86_64 musl binary
#   make speed        instruction count per push, line and scrape (callgrind)
#
# CROSS_TARGET=armv7-unknown-linux-musleabihf selects 32-bit ARM, and
# BUILD=tiny the size-first build (the tests then start the tiny binary).

CROSS_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))

CARGO ?= cargo
CROSS_BIN ?= push-gateway
CROSS_TARGET ?= aarch64-unknown-linux-musl
# release: the stable build; tiny: the size-first build (cross/build-std.sh)
BUILD ?= release
CROSS_RUNNER ?= $(if $(filter arm%,$(CROSS_TARGET)),qemu-arm-static,qemu-aarch64-static)
# Targets rustup serves no std for here: every build of them rebuilds std
# with the pinned nightly (cross/build-std.sh).
STD_TARGETS ?= armv7-unknown-linux-musleabihf arm-unknown-linux-musleabi
# Of those, the ones whose release build `make size` builds and reports (the
# ARMv6 soft-float target is built on request: CROSS_TARGET=arm-unknown-linux-musleabi).
SIZE_STD_TARGETS ?= armv7-unknown-linux-musleabihf
TINY_TARGETS ?= aarch64-unknown-linux-musl armv7-unknown-linux-musleabihf
# Release builds whose size `make size` reports, then the STD_TARGETS'
# release builds and the TINY_TARGETS' tiny builds; the host's own target is
# built without --target (target/release), like a plain `cargo build --release`.
SIZE_TARGETS ?= x86_64-unknown-linux-gnu x86_64-unknown-linux-musl aarch64-unknown-linux-musl
CROSS_TARGET_DIR = $(or $(CARGO_TARGET_DIR),target)
CROSS_HOST := $(shell rustc -vV 2>/dev/null | sed -n 's/^host: //p')

# Checked only when given on the command line: a BUILD in the environment
# (some CI systems set one) means nothing here and selects release.
ifeq ($(origin BUILD),command line)
ifeq ($(filter $(BUILD),release tiny),)
$(error BUILD must be release or tiny, not $(BUILD))
endif
endif

# $(call build_std,TRIPLE,BUILD): non-empty if that build rebuilds std
build_std = $(filter tiny,$(2))$(filter $(1),$(STD_TARGETS))
# $(call xcargo,TRIPLE,BUILD) COMMAND ARGS: cargo for TRIPLE's BUILD, where
# BUILD is release, tiny or test (the test harness, which unwinds).
xcargo = $(if $(call build_std,$(1),$(2)),$(CROSS_DIR)/build-std.sh $(1) $(if $(filter tiny,$(2)),tiny,$(if $(filter test,$(2)),test,release)),CARGO_BUILD_TARGET=$(1) $(CARGO))
# $(call xsetup,TRIPLE,BUILD): cross/setup.sh, with what build-std needs
xsetup = $(CROSS_DIR)/setup.sh $(if $(call build_std,$(1),$(2)),--build-std $(1))
# $(call xbin,TRIPLE,BUILD[,NAME]): where that build puts the binary NAME
xbin = $(CROSS_TARGET_DIR)/$(if $(filter tiny,$(2)),tiny/,$(if $(filter $(1),$(STD_TARGETS)),std/))$(1)/release/$(or $(3),$(CROSS_BIN))

# The runner for the cross target, for cargo and for the integration tests,
# which start the gateway binary through it.
CROSS_RUNNER_ENV = CARGO_TARGET_$(shell echo '$(CROSS_TARGET)' | tr 'a-z-' 'A-Z_')_RUNNER=$(CROSS_RUNNER) \
	PUSH_GATEWAY_TEST_RUNNER=$(CROSS_RUNNER)

cross_out = $(CROSS_TARGET_DIR)/$(if $(filter $(CROSS_HOST),$(1)),,$(1)/)release/$(CROSS_BIN)
# The binary that `make cross-test BUILD=tiny` starts instead of the test build's own.
TEST_BIN_ENV = $(if $(filter tiny,$(BUILD)),PUSH_GATEWAY_TEST_BIN=$(abspath $(call xbin,$(CROSS_TARGET),tiny)))

# The binary whose RSS `make long-run` and `make rss-native` watch.
NATIVE_TARGET ?= x86_64-unknown-linux-musl
LONG_RUN_ENV = PUSH_GATEWAY_LONG_RUN_BIN=$(abspath $(call cross_out,$(NATIVE_TARGET)))

.PHONY: cross-setup cross tiny size cross-test rss-aarch64 rss-armv7 long-run rss-native speed layout

# The builds whose code layout cross/layout/ holds: TRIPLE:BUILD.
LAYOUTS ?= aarch64-unknown-linux-musl:release aarch64-unknown-linux-musl:tiny \
	armv7-unknown-linux-musleabihf:release armv7-unknown-linux-musleabihf:tiny

# Run again after changing the code, the dependencies or a toolchain; the
# files are committed, and a stale one only costs memory.
layout: ## write cross/layout/*.ld: the functions the gateway runs first and together (cross/layout.sh)
	@set -e; for l in $(LAYOUTS); do t=$${l%%:*}; b=$${l#*:}; \
		$(CROSS_DIR)/setup.sh $$([ $$b = tiny ] || case $$t in arm*) true ;; *) false ;; esac && echo --build-std $$t); \
		$(CROSS_DIR)/layout.sh $$t $$b; done

cross-setup: ## install the cross toolchains and tools (cross/setup.sh)
	@$(CROSS_DIR)/setup.sh

cross: ## static binary for CROSS_TARGET (aarch64-unknown-linux-musl; BUILD=tiny: size first)
	@$(call xsetup,$(CROSS_TARGET),$(BUILD))
	$(call xcargo,$(CROSS_TARGET),$(BUILD)) build --release --bin $(CROSS_BIN)
	@echo "$(call xbin,$(CROSS_TARGET),$(BUILD)): $$(stat -c %s $(call xbin,$(CROSS_TARGET),$(BUILD))) bytes"

tiny: ## size-first static binaries for aarch64 and armv7 (pinned nightly, std rebuilt for size)
	@set -e; for t in $(TINY_TARGETS); do $(MAKE) --no-print-directory cross BUILD=tiny CROSS_TARGET=$$t; done

size: cross-setup ## binary size per target and build (release, and tiny)
	@set -e; for t in $(SIZE_TARGETS); do \
		case $$t in $(CROSS_HOST)) flag= ;; *) flag="--target $$t" ;; esac; \
		$(CARGO) build --quiet --release $$flag --bin $(CROSS_BIN); \
	done
	@set -e; $(foreach t,$(SIZE_STD_TARGETS),$(call xsetup,$(t),release); $(call xcargo,$(t),release) build --quiet --release --bin $(CROSS_BIN);)
	@set -e; $(foreach t,$(TINY_TARGETS),$(call xsetup,$(t),tiny); $(call xcargo,$(t),tiny) build --quiet --release --bin $(CROSS_BIN);)
	@printf '%-32s %-8s %10s %9s\n' target build bytes KiB
	@for t in $(SIZE_TARGETS); do \
		case $$t in $(CROSS_HOST)) f=$(CROSS_TARGET_DIR)/release/$(CROSS_BIN) ;; \
			*) f=$(CROSS_TARGET_DIR)/$$t/release/$(CROSS_BIN) ;; esac; \
		echo "$$t release $$(stat -c %s "$$f")"; \
	done | awk '{ printf "%-32s %-8s %10d %9.1f\n", $$1, $$2, $$3, $$3 / 1024 }'
	@{ $(foreach t,$(SIZE_STD_TARGETS),echo "$(t) release $$(stat -c %s $(call xbin,$(t),release))";) \
	   $(foreach t,$(TINY_TARGETS),echo "$(t) tiny $$(stat -c %s $(call xbin,$(t),tiny))";) } | \
		awk '{ printf "%-32s %-8s %10d %9.1f\n", $$1, $$2, $$3, $$3 / 1024 }'

# Under emulation each test runs 5-20x slower, so cross-test runs a
# representative subset: every unit test, and the integration tests of
# each path (stream, HTTP push and its parity rules, compressed bodies,
# the JSON API, scrapes, start-up, service life, persistence: 7 s under
# qemu for the last). The differential suite, the client and Prometheus
# end-to-end tests and the hostile-client floods run natively in `make
# test`, and so do the push modes, whose
# drain test waits on a 300,000-series page. CROSS_TESTS= changes the set.
CROSS_TESTS ?= stream http_push http_framing push_parity compressed api scrape startup lifecycle persistence fuzz_regressions

# With BUILD=tiny the tests are built as usual (the harness needs unwinding)
# and start the tiny binary (PUSH_GATEWAY_TEST_BIN). The unit tests are left
# out then: they are compiled into the test build and never run the binary.
cross-test: ## unit tests and a representative set of integration tests for CROSS_TARGET, under qemu-user (BUILD=tiny: against the tiny binary)
	@$(call xsetup,$(CROSS_TARGET),test)
	$(if $(filter tiny,$(BUILD)),$(MAKE) --no-print-directory cross)
	$(CROSS_RUNNER_ENV) $(TEST_BIN_ENV) $(call xcargo,$(CROSS_TARGET),test) test \
		$(if $(filter tiny,$(BUILD)),,--lib) $(addprefix --test ,$(CROSS_TESTS))

# BUILD=tiny measures the tiny gateway (the workload is the stable build's).
rss-aarch64: cross-setup ## VmHWM/VmRSS on an emulated aarch64 kernel (BUILD=tiny: of the tiny build)
	$(if $(filter tiny,$(BUILD)),$(MAKE) --no-print-directory cross CROSS_TARGET=aarch64-unknown-linux-musl)
	CARGO='$(CARGO)' $(if $(filter tiny,$(BUILD)),GATEWAY_BIN=$(abspath $(call xbin,aarch64-unknown-linux-musl,tiny))) \
		$(CROSS_DIR)/rss.sh

rss-armv7: ## VmHWM/VmRSS on an emulated 32-bit ARM kernel (armmp), of the armv7 build (BUILD=tiny: tiny)
	$(if $(filter tiny,$(BUILD)),$(MAKE) --no-print-directory cross CROSS_TARGET=armv7-unknown-linux-musleabihf)
	CARGO='$(CARGO)' RSS_ARCH=armv7 $(if $(filter tiny,$(BUILD)),GATEWAY_BIN=$(abspath $(call xbin,armv7-unknown-linux-musleabihf,tiny))) \
		$(CROSS_DIR)/rss.sh

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

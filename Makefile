# push-gateway: build, run, test. `make help` lists the targets: each
# target a user runs carries a `## what it does` comment, which help prints.

CARGO ?= cargo
SOCKET ?= /tmp/push-gateway.sock
LISTEN ?= 127.0.0.1:9091

.PHONY: run help test deps lint unit e2e bench fuzz soak build release clean

FUZZ_SECONDS ?= 60

run: ## build (release) and start the gateway: pushes on /tmp/push-gateway.sock, metrics on http://127.0.0.1:9091/metrics (SOCKET=, LISTEN= change them)
	$(CARGO) run --release -- --socket $(SOCKET) --listen $(LISTEN)

# One line per target: `name  what it does`, from the `## ` comments of this
# Makefile and the files it includes, in the order they are written.
help: ## list the targets, one line each
	@awk -F':.*## ' '/^[a-zA-Z0-9_-]+:.*## / { printf "  make %-12s %s\n", $$1, $$2 }' $(MAKEFILE_LIST)

build: ## debug build of the gateway
	$(CARGO) build

release: ## optimised build (target/release/push-gateway)
	$(CARGO) build --release

# Tools the end-to-end tests use: Prometheus, promtool, the Pushgateway,
# curl, socat, the official Go client (apt), the newest Python client in a
# venv at target/e2e-venv and Node's prom-client at target/e2e-node.
# Idempotent and quick when present.
deps: ## install what the tests and examples need (tests/e2e/install.sh; apt, as root or with sudo)
	bash tests/e2e/install.sh

lint: ## cargo fmt --check and clippy with warnings as errors
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

# The unit tests inside the crate only: no integration tests, no gateway
# started, no tools needed.
unit: ## unit tests only (cargo test --lib --bins), quick and tool-free
	$(CARGO) test --lib --bins

e2e: deps ## the end-to-end tests with real clients, Prometheus and the Pushgateway
	$(CARGO) test --test 'e2e_*'

test: deps lint ## install what the tests need, lint, then run every test (unit, integration, doc, README examples)
	$(CARGO) test

# Push and scrape throughput, latency, CPU and peak RSS, side by side with
# the Prometheus Pushgateway (started on a loopback port). A few minutes.
bench: ## throughput, latency, CPU and RSS beside the Prometheus Pushgateway (a few minutes)
	bash examples/bench.sh

# Every fuzz target for FUZZ_SECONDS each (nightly and cargo-fuzz,
# installed when missing). A crash is kept under tests/fuzz/artifacts/.
fuzz: ## every fuzz target for FUZZ_SECONDS each (installs nightly and cargo-fuzz)
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Ten minutes of mixed pushes, scrapes and connection churn against a
# release build, printing RSS every 10 s; fails if it grows after warm-up.
soak: ## ten minutes of mixed load against a release build; fails if RSS grows
	bash examples/soak.sh

clean: ## cargo clean
	$(CARGO) clean

-include cross/cross.mk

# push-gateway: build, run, test.
#   make run    start the gateway with its socket under /tmp (no root needed)
#   make test   install what the tests need, then lint and run every test

CARGO ?= cargo
SOCKET ?= /tmp/push-gateway.sock
LISTEN ?= 127.0.0.1:9091

.PHONY: run test deps lint unit e2e bench fuzz soak build release clean

FUZZ_SECONDS ?= 60

run:
	$(CARGO) run --release -- --socket $(SOCKET) --listen $(LISTEN)

build:
	$(CARGO) build

release:
	$(CARGO) build --release

# Tools the end-to-end tests use: Prometheus, promtool, the Pushgateway,
# curl, socat, the official Go client (apt), the newest Python client in a
# venv at target/e2e-venv and Node's prom-client at target/e2e-node.
# Idempotent and quick when present.
deps:
	bash tests/e2e/install.sh

lint:
	$(CARGO) fmt --check
	$(CARGO) clippy --all-targets -- -D warnings

unit:
	$(CARGO) test

e2e: deps
	$(CARGO) test --test 'e2e_*'

test: deps lint
	$(CARGO) test

# Push and scrape throughput, latency, CPU and peak RSS, side by side with
# the Prometheus Pushgateway (started on a loopback port). A few minutes.
bench:
	bash examples/bench.sh

# Every fuzz target for FUZZ_SECONDS each (nightly and cargo-fuzz,
# installed when missing). A crash is kept under tests/fuzz/artifacts/.
fuzz:
	bash tests/fuzz/run.sh $(FUZZ_SECONDS)

# Ten minutes of mixed pushes, scrapes and connection churn against a
# release build, printing RSS every 10 s; fails if it grows after warm-up.
soak:
	bash examples/soak.sh

clean:
	$(CARGO) clean

-include cross/cross.mk

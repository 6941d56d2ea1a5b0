#!/usr/bin/env bash
# Soak test (not part of CI): mixed push, scrape and connection churn
# against a release build of push-gateway, printing its resident memory
# every 10 s, and failing if it grows after the warm-up.
#
#   examples/soak.sh [SECONDS]     default 600 (10 minutes)
#
# Environment: SOAK_WARMUP (seconds, default 60), SOAK_INTERVAL (seconds
# between RSS samples, default 10), SOAK_TOLERANCE_KB (most VmRSS may exceed
# the warm-up peak, default 16: four pages). What the clients do and check
# is described in examples/soak.rs. Exit status 0 when the soak passes.
set -euo pipefail
cd "$(dirname "$0")/.."

seconds=${1:-600}
cargo build --release --bin push-gateway --example soak
target=$(cargo metadata --format-version 1 --no-deps |
	sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
exec "$target/release/examples/soak" \
	--bin "$target/release/push-gateway" \
	--seconds "$seconds" \
	--warmup "${SOAK_WARMUP:-60}" \
	--interval "${SOAK_INTERVAL:-10}" \
	--tolerance-kb "${SOAK_TOLERANCE_KB:-16}"

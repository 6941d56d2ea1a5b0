#!/usr/bin/env bash
# Speed of the release gateway on its hot paths, as the instruction count per
# operation counted by callgrind: unlike wall time, the count repeats to
# within a few percent on a busy machine, so builds (opt-levels) compare.
#
# Each phase starts a fresh gateway under `valgrind --tool=callgrind`, drives
# it with cross/speed-load.rs, stops it with SIGTERM and reads the total;
# an idle start and stop (for scrapes: start, fill, stop) is subtracted.
# Phases:
#   line (fit)    20,000 stream lines over 60 series: every line rewrites one
#   line (evict)  20,000 stream lines over 400 series: more than the default
#                 10 KiB budget holds, so every line evicts
#   HTTP PUT      5,000 PUTs of 3 lines on one keep-alive connection
#   scrape        500 GET /metrics of a full cache on one keep-alive connection
#
# Environment (all optional):
#   GATEWAY_BIN       binary to measure (default: build the x86_64 musl release)
#   SPEED_TARGET      target to build when GATEWAY_BIN is unset (x86_64-unknown-linux-musl)
#   SPEED_RUNS        runs per phase; the median counts (default 3)
#   CARGO_TARGET_DIR  cargo's target dir (default: target)
set -euo pipefail

say() { printf 'speed: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
TRIPLE=${SPEED_TARGET:-x86_64-unknown-linux-musl}
RUNS=${SPEED_RUNS:-3}
command -v valgrind >/dev/null || die "valgrind not found (Debian: apt-get install valgrind)"

if [ -z "${GATEWAY_BIN:-}" ]; then
    ${CARGO:-cargo} build --release --target "$TRIPLE" --bin push-gateway
fi
GATEWAY=${GATEWAY_BIN:-$TARGET_DIR/$TRIPLE/release/push-gateway}
[ -x "$GATEWAY" ] || die "no gateway binary at $GATEWAY"
LOAD=$TARGET_DIR/speed-load
if [ ! -x "$LOAD" ] || [ cross/speed-load.rs -nt "$LOAD" ]; then
    mkdir -p "$TARGET_DIR"
    rustc -O --edition 2021 cross/speed-load.rs -o "$LOAD"
fi

WORK=$(mktemp -d)
VPID=
cleanup() {
    [ -n "$VPID" ] && kill "$VPID" 2>/dev/null && wait "$VPID" 2>/dev/null
    rm -rf "$WORK"
}
trap cleanup EXIT

# start: the gateway under callgrind on a free port (sets PORT and VPID)
start() {
    local attempt hex i
    for attempt in 1 2 3 4 5; do
        PORT=$((20000 + RANDOM % 20000))
        hex=$(printf '%04X' "$PORT")
        grep -q ":$hex " /proc/net/tcp && continue
        rm -f "$WORK/sock" "$WORK/cg.out"
        valgrind --tool=callgrind --callgrind-out-file="$WORK/cg.out" -q \
            "$GATEWAY" --socket "$WORK/sock" --listen "127.0.0.1:$PORT" 2>"$WORK/log" &
        VPID=$!
        i=0
        while kill -0 "$VPID" 2>/dev/null && [ $i -lt 300 ]; do
            if [ -S "$WORK/sock" ] && grep -q ":$hex 00000000:0000 0A" /proc/net/tcp; then
                return 0
            fi
            i=$((i + 1))
            sleep 0.1
        done
        kill "$VPID" 2>/dev/null || true
        wait "$VPID" 2>/dev/null || true
        VPID=
    done
    cat "$WORK/log" >&2
    die "the gateway did not start"
}

# once PHASE N: the gateway's instruction count for one run of PHASE
once() {
    local phase=$1 n=$2
    start
    case $phase in
    idle) ;;
    filled) "$LOAD" stream "$WORK/sock" 400 400 ;;
    fit) "$LOAD" stream "$WORK/sock" "$n" 60 ;;
    evict) "$LOAD" stream "$WORK/sock" "$n" 400 ;;
    http) "$LOAD" http "$WORK/sock" "$n" ;;
    scrape)
        "$LOAD" stream "$WORK/sock" 400 400
        "$LOAD" scrape "127.0.0.1:$PORT" "$n"
        ;;
    esac
    kill -TERM "$VPID"
    wait "$VPID" || true
    VPID=
    sed -n 's/^summary: *//p; s/^totals: *//p' "$WORK/cg.out" | head -n1
}

median() { sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
measure() { # PHASE N: median over RUNS
    local r
    for r in $(seq 1 "$RUNS"); do once "$1" "$2"; done | median
}

say "$GATEWAY ($(stat -c %s "$GATEWAY") bytes), $RUNS runs per phase"
idle=$(measure idle 0)
filled=$(measure filled 0)
printf '%-14s %12s\n' operation Ir
for p in "fit 20000 line (fit)" "evict 20000 line (evict)" "http 5000 HTTP PUT" "scrape 500 scrape"; do
    set -- $p
    phase=$1 n=$2
    shift 2
    base=$idle
    [ "$phase" = scrape ] && base=$filled
    total=$(measure "$phase" "$n")
    printf '%-14s %12d\n' "$*" $(((total - base) / n))
done

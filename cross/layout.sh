#!/usr/bin/env bash
# Profile-ordered code layout for a cross build: writes
# cross/layout/TRIPLE-BUILD.ld, a linker script naming the functions the
# gateway runs under the `fill` workload (cross/rss.sh's), in the order
# they first run. The builds it is for link with it (.cargo/config.toml,
# cross/build-std.sh): lld places those functions first and together.
#
#   cross/layout.sh TRIPLE release|tiny
#
# Why: a page fault in the binary maps the 64 KiB around it (the kernel's
# fault-around), and the functions that run were spread over nearly every
# page of .text, so all of it was resident. Packed together, what never
# runs (help output, error paths, unused features, std's backtrace
# printer) stays on disk: see cross/README.md, "Code layout".
#
# How: the binary is built with a linker map in target/layout/, run under
# qemu-user with `-d in_asm` (each translated block's address, once) while
# the host's `fill` pushes and scrapes, and each address is mapped to its
# function. A function that matches no pattern (new code, or a file from
# older code) is placed after the listed ones: a stale file costs memory,
# never correctness. Run it again after changes to the code or toolchain.
set -euo pipefail
say() { printf 'cross/layout: %s\n' "$*" >&2; }
[ $# = 2 ] || { say "usage: cross/layout.sh TRIPLE release|tiny"; exit 2; }
triple=$1 build=$2
cd "$(dirname "$0")/.."
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
work=$TARGET_DIR/layout/$triple-$build
mkdir -p "$work"
case $triple in arm*) runner=qemu-arm-static ;; *) runner=qemu-aarch64-static ;; esac
command -v "$runner" >/dev/null || { say "no $runner: run cross/setup.sh"; exit 1; }

# Every build of the target links with the script: until there is one, an
# empty one (the default layout).
script=cross/layout/$triple-$build.ld
[ -e "$script" ] || printf '/* No layout yet: make layout writes it. */\n' >"$script"

# Its own target directory: the map's flag must not make the usual builds
# rebuild. Only link arguments differ, which leave symbol names as they are.
export CARGO_TARGET_DIR=$work/target
mkdir -p "$CARGO_TARGET_DIR"
# What cross/setup.sh fetched for -Zbuild-std builds, from the usual place.
ln -sfn "$TARGET_DIR/cross-crt" "$CARGO_TARGET_DIR/cross-crt"
map=$work/push-gateway.map
case $build in
release)
    case $triple in
    armv7* | arm-*)
        CROSS_EXTRA_RUSTFLAGS="-Clink-arg=-Map=$map -Clink-arg=--no-demangle" cross/build-std.sh "$triple" release build --release --bin push-gateway
        bin=$CARGO_TARGET_DIR/std/$triple/release/push-gateway ;;
    *)
        flags=$(sed -n 's/^rustflags = \[\(.*\)\]$/\1/p' .cargo/config.toml | head -n1 | tr -d '" ' | tr ',' '\037')
        CARGO_ENCODED_RUSTFLAGS="$flags"$'\x1f'"-Clink-arg=-Map=$map"$'\x1f'"-Clink-arg=--no-demangle" cargo build --release --target "$triple" --bin push-gateway
        bin=$CARGO_TARGET_DIR/$triple/release/push-gateway ;;
    esac ;;
tiny)
    CROSS_EXTRA_RUSTFLAGS="-Clink-arg=-Map=$map -Clink-arg=--no-demangle" cross/build-std.sh "$triple" tiny build --release --bin push-gateway
    bin=$CARGO_TARGET_DIR/tiny/$triple/release/push-gateway ;;
*) say "BUILD must be release or tiny, not $build"; exit 2 ;;
esac
cargo build --quiet --release --example fill
fill=${CARGO_TARGET_DIR}/release/examples/fill

sock=$work/pg.sock port=$((20000 + $$ % 20000))
rm -f "$sock" "$work/trace.log"
"$runner" -d in_asm -D "$work/trace.log" "$bin" --socket "$sock" --listen "127.0.0.1:$port" 2>"$work/gateway.log" &
pid=$!
trap 'kill $pid 2>/dev/null || true' EXIT
for _ in $(seq 100); do [ -S "$sock" ] && break; sleep 0.2; done
[ -S "$sock" ] || { say "the gateway did not start:"; cat "$work/gateway.log" >&2; exit 1; }
# Three rounds: what runs depends a little on timing (a read that would
# block, a write taken in part), and the trace keeps every block once.
for _ in 1 2 3; do
    "$fill" --socket "$sock" --scrape "127.0.0.1:$port" --pushers 32 --series 16 --scrapes 100 --http >&2
done
kill -TERM $pid
wait $pid || true
trap - EXIT
python3 cross/layout.py "$map" "$work/trace.log" "$script"

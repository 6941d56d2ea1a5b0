#!/usr/bin/env bash
# Build with the pinned nightly (cross/nightly.sh) and std rebuilt from
# rust-src (-Zbuild-std), for the size-first build and for targets rustup
# serves no std for. cross/setup.sh --build-std TRIPLE fetches what it needs.
#
#   cross/build-std.sh TRIPLE BUILD CARGO-COMMAND [CARGO-ARGS...]
#
# BUILD is one of
#   tiny     size first: std and panic_abort rebuilt with optimize_for_size,
#            -Cpanic=immediate-abort (no panic message or backtrace code);
#            artifacts in $CARGO_TARGET_DIR/tiny/TRIPLE/release/
#   release  std rebuilt as rustup would ship it, same release profile;
#            artifacts in $CARGO_TARGET_DIR/std/TRIPLE/release/
#   test     as release, with the test harness and unwinding (cargo test)
#
# musl's start files, libc.a and libunwind.a come from
# $CARGO_TARGET_DIR/cross-crt/TRIPLE rather than the toolchain's target std
# (see cross/setup.sh), so rustc's own "self-contained" linking is off and
# the same files are passed explicitly, in the order rustc would use.
set -euo pipefail
say() { printf 'cross/build-std: %s\n' "$*" >&2; }
[ $# -ge 3 ] || { say "usage: cross/build-std.sh TRIPLE tiny|release|test CARGO-COMMAND [ARGS...]"; exit 2; }
triple=$1 build=$2
shift 2

cd "$(dirname "$0")/.."
. cross/nightly.sh
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PWD/$TARGET_DIR ;; esac
CRT=$TARGET_DIR/cross-crt/$triple
[ -e "$CRT/.ok" ] || { say "no $CRT: run cross/setup.sh --build-std $triple"; exit 1; }
nightly=$(find_nightly)

flags=(-Clink-self-contained=no "-Lnative=$CRT")
for o in crt1.o crti.o crtbegin.o; do
    [ -e "$CRT/$o" ] && flags+=("-Zpre-link-arg=$CRT/$o")
done
for o in crtend.o crtn.o; do
    [ -e "$CRT/$o" ] && flags+=("-Clink-arg=$CRT/$o")
done
case $build in
tiny)
    std=(-Zbuild-std=std,panic_abort -Zbuild-std-features=optimize_for_size)
    # Nothing unwinds after an immediate abort, so no unwind tables
    # (.eh_frame was 92 KB of the aarch64 binary); and the gateway's own
    # code at "z" like its dependencies (86 KB less code, 2-3x the
    # instructions on the hot paths: see cross/README.md).
    flags+=(-Zunstable-options -Cpanic=immediate-abort -Cforce-unwind-tables=no)
    export CARGO_PROFILE_RELEASE_OPT_LEVEL=z
    dir=tiny
    ;;
release) std=(-Zbuild-std=std,panic_abort) dir=std ;;
test) std=(-Zbuild-std) dir=std ;;
*) say "BUILD must be tiny, release or test, not $build"; exit 2 ;;
esac

# The code layout from a profile (cross/layout.sh), for the builds it
# was made for; a test build has other functions and would gain nothing.
layout=cross/layout/$triple-$build.ld
if [ "$build" != test ] && [ -e "$layout" ]; then
    flags+=("-Clink-arg=-T$PWD/$layout")
fi
# cross/layout.sh adds its linker map this way.
read -r -a extra <<<"${CROSS_EXTRA_RUSTFLAGS:-}"
flags+=("${extra[@]}")
# Separated by 0x1f so that no path is split at a space.
encoded=$(printf '%s\x1f' "${flags[@]}")
export CARGO_ENCODED_RUSTFLAGS=${encoded%$'\x1f'}
unset RUSTFLAGS
cmd=$1
shift
exec rustup run "$nightly" cargo "$cmd" "${std[@]}" --target "$triple" --target-dir "$TARGET_DIR/$dir" "$@"

# The nightly toolchain of the -Zbuild-std builds (`make tiny`, the 32-bit
# ARM targets), pinned to one exact rustc; sourced by cross/setup.sh and
# cross/build-std.sh. The default build stays on stable.
#
# rustup names this nightly nightly-2026-05-20 (built from the 2026-05-19
# commit); an installed `nightly` that is this exact rustc is accepted too.
# Moving the pin: change all three lines together, then rerun
# `make tiny` and `make cross-test BUILD=tiny` and the figures in README.
NIGHTLY_RUSTC='rustc 1.97.0-nightly (e50aa6fba 2026-05-19)'
NIGHTLY_INSTALL=nightly-2026-05-20
NIGHTLY_CANDIDATES="$NIGHTLY_INSTALL nightly-2026-05-19 nightly"

# Prints the rustup name of an installed toolchain whose rustc is the pinned
# one; fails, saying what it found, if there is none.
find_nightly() {
    local tc v found=
    for tc in $NIGHTLY_CANDIDATES; do
        v=$(rustup run "$tc" rustc -V 2>/dev/null) || continue
        [ "$v" = "$NIGHTLY_RUSTC" ] && { echo "$tc"; return 0; }
        found="$found $tc is '$v';"
    done
    printf 'cross: no toolchain is the pinned %s (%s):%s run cross/setup.sh, or change cross/nightly.sh\n' \
        "$NIGHTLY_RUSTC" "$NIGHTLY_CANDIDATES" "${found:- none installed;}" >&2
    return 1
}

#!/usr/bin/env bash
# Install what the cross builds need on Debian (bookworm) x86_64:
#   - rustup targets aarch64-unknown-linux-musl and x86_64-unknown-linux-musl
#     (both link with the toolchain's own linkers: no C cross toolchain needed)
#   - qemu-user-static, to run aarch64 and ARM binaries and tests on the host
#   - cpio, to pack the initramfs for cross/rss.sh
#   - with --build-std TRIPLE... (`make tiny`, the 32-bit ARM targets):
#     the pinned nightly of cross/nightly.sh with rust-src, and for each
#     TRIPLE the C start files, libc.a and libunwind.a that its static
#     binary links, in $CARGO_TARGET_DIR/cross-crt/TRIPLE (see below)
# Idempotent and silent when everything is already there.
# The VM pieces for cross/rss.sh (qemu-system-aarch64, an arm64 kernel,
# busybox) are not installed: that script downloads and caches them itself.
set -euo pipefail

RUST_TARGETS=(aarch64-unknown-linux-musl x86_64-unknown-linux-musl)
APT_PACKAGES=(qemu-user-static cpio)

say() { printf 'cross/setup: %s\n' "$*" >&2; }
die() { say "error: $*"; exit 1; }

BUILD_STD=()
while [ $# -gt 0 ]; do
    case $1 in
    --build-std) shift; while [ $# -gt 0 ] && [ "${1#-}" = "$1" ]; do BUILD_STD+=("$1"); shift; done ;;
    *) die "unknown argument $1 (usage: cross/setup.sh [--build-std TRIPLE...])" ;;
    esac
done

# From the project root, so that rustup acts on the project's toolchain.
cd "$(dirname "$0")/.."

# --- Rust targets
command -v rustup >/dev/null || { say "rustup not found: install Rust with rustup first"; exit 1; }
installed_targets=$(rustup target list --installed)
for t in "${RUST_TARGETS[@]}"; do
    if ! grep -qx "$t" <<<"$installed_targets"; then
        say "rustup target add $t"
        rustup target add "$t" >&2
    fi
done

# --- Debian packages
missing=()
for p in "${APT_PACKAGES[@]}"; do
    [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$p" 2>/dev/null)" = "ii " ] || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    SUDO=
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { say "need root to install: ${missing[*]}"; exit 1; }
        SUDO=sudo
    fi
    apt_get() {
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get -q -o DPkg::Lock::Timeout=600 "$@"
    }
    say "apt-get install ${missing[*]}"
    # Refresh the package lists first unless apt already knows every package.
    for p in "${missing[@]}"; do
        if ! apt-cache show "$p" >/dev/null 2>&1; then
            apt_get update -qq >&2
            break
        fi
    done
    if ! apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null; then
        say "retrying after apt-get update"
        apt_get update -qq >&2
        apt_get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

[ ${#BUILD_STD[@]} -gt 0 ] || exit 0

# --- The pinned nightly, for -Zbuild-std (rust-src is std's source)
. cross/nightly.sh
if ! nightly=$(find_nightly 2>/dev/null); then
    say "rustup toolchain install $NIGHTLY_INSTALL"
    rustup toolchain install "$NIGHTLY_INSTALL" --profile minimal --component rust-src >&2 ||
        say "could not install $NIGHTLY_INSTALL"
    nightly=$(find_nightly) || exit 1
fi
if ! rustup component list --toolchain "$nightly" --installed 2>/dev/null | grep -qx rust-src; then
    say "rustup component add rust-src --toolchain $nightly"
    rustup component add rust-src --toolchain "$nightly" >&2
fi

# --- What each static binary links besides Rust: musl's start files and
# libc.a, and libunwind.a (std's unwinder; the tiny build never unwinds, but
# the test harness does). rustc links them from the target's std
# ("self-contained"), which rustup ships for aarch64 but not for 32-bit ARM,
# and which -Zbuild-std does not build. So they are gathered here, and
# cross/build-std.sh links them with -Clink-self-contained=no:
#   aarch64: the stable toolchain's self-contained files (musl 1.2.5)
#   armv7 (armhf), ARMv6 soft-float (armel): Debian's musl-dev and
#   libgcc-12-dev (for GCC's unwinder) of that architecture, fetched with apt-get download into the build
#   directory through a private apt state: nothing is installed and the
#   host's apt architectures are left alone.
TARGET_DIR=${CARGO_TARGET_DIR:-target}
CRT_ROOT=$TARGET_DIR/cross-crt
mkdir -p "$CRT_ROOT"
CRT_ROOT=$(cd "$CRT_ROOT" && pwd)

. cross/debian-mirror.sh

debian_download() { # ARCH DEST PKG...: .debs of a foreign architecture into DEST
    local arch=$1 dest=$2 state suite
    shift 2
    state=$CRT_ROOT/apt-$arch
    # bookworm whatever the host runs: the package names below are its own
    suite=${CROSS_DEBIAN_SUITE:-bookworm}
    mkdir -p "$state/lists/partial" "$state/archives/partial" "$dest"
    : >"$state/status"
    echo "deb [arch=$arch signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $(host_mirror) $suite main" \
        >"$state/sources.list"
    local opts=(-o Dir::Etc::SourceList="$state/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State="$state" -o Dir::State::Lists="$state/lists" -o Dir::State::status="$state/status"
        -o Dir::Cache="$state" -o Dir::Cache::archives="$state/archives"
        -o APT::Architecture="$arch" -o APT::Architectures::="$arch" -o Acquire::Languages=none
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root)
    say "apt-get download $* ($arch, $suite)"
    apt-get "${opts[@]}" update -qq || die "apt-get update of $suite $arch failed"
    (cd "$dest" && apt-get "${opts[@]}" download -q "$@" >/dev/null) || die "apt-get download $* failed"
    rm -rf "$state" # the indexes are not needed again
}

crt_for() { # TRIPLE: fills $CRT_ROOT/TRIPLE
    local triple=$1 dir=$CRT_ROOT/$1 tmp
    [ -e "$dir/.ok" ] && return
    rm -rf "$dir"
    mkdir -p "$dir"
    case $triple in
    aarch64-unknown-linux-musl | x86_64-unknown-linux-musl)
        cp "$(rustc --print sysroot)/lib/rustlib/$triple/lib/self-contained/"* "$dir/"
        ;;
    armv7-unknown-linux-musleabihf | arm-unknown-linux-musleabi)
        # armhf is ARMv7 hard-float; armel is ARMv5TE soft-float, which
        # ARMv6 runs (see cross/README.md on ARMv6)
        # The unwinder is GCC's (libgcc_eh.a, as for Rust's gnueabi targets):
        # Debian's LLVM libunwind.a calls glibc's __fprintf_chk, and armel
        # has none.
        local arch=armhf abi=musleabihf
        case $triple in arm-*) arch=armel abi=musleabi ;; esac
        tmp=$dir/debs
        debian_download "$arch" "$tmp" musl-dev libgcc-12-dev
        for deb in "$tmp"/*.deb; do dpkg -x "$deb" "$tmp/root"; done
        # libc.a and its empty companions (libdl.a, libpthread.a, ...), which
        # libunwind.a names as dependent libraries.
        cp "$tmp"/root/usr/lib/arm-linux-$abi/{crt1.o,crti.o,crtn.o,*.a} "$dir/"
        cp "$(find "$tmp/root" -name libgcc_eh.a | head -n1)" "$dir/libunwind.a"
        rm -rf "$tmp"
        ;;
    *) die "no start files known for $triple (cross/README.md says which targets build)" ;;
    esac
    [ -e "$dir/crt1.o" ] && [ -e "$dir/libc.a" ] && [ -e "$dir/libunwind.a" ] || die "incomplete $dir"
    touch "$dir/.ok"
}
for t in "${BUILD_STD[@]}"; do crt_for "$t"; done

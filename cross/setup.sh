#!/usr/bin/env bash
# Install what the cross builds need on Debian (bookworm) x86_64:
#   - rustup targets aarch64-unknown-linux-musl and x86_64-unknown-linux-musl
#     (both link with the toolchain's own linkers: no C cross toolchain needed)
#   - qemu-user-static, to run aarch64 binaries and tests on the host
#   - cpio, to pack the initramfs for cross/rss-aarch64.sh
# Idempotent and silent when everything is already there.
# The VM pieces for cross/rss-aarch64.sh (qemu-system-aarch64, an arm64 kernel,
# busybox) are not installed: that script downloads and caches them itself.
set -euo pipefail

RUST_TARGETS=(aarch64-unknown-linux-musl x86_64-unknown-linux-musl)
APT_PACKAGES=(qemu-user-static cpio)

say() { printf 'cross/setup: %s\n' "$*" >&2; }

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

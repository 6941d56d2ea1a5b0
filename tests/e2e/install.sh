#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/e2e_*.rs) need on Debian 12
# (bookworm): Prometheus' own tools to judge our /metrics page, a reference
# Pushgateway, socket/HTTP clients, Go with client_golang, and Python's
# prometheus_client.
#
# Idempotent and quiet: when everything is present it only checks and exits
# (about a second). Run as root (or with sudo available).
#
# Debian's prometheus and prometheus-pushgateway packages start their
# daemons on :9090 / :9091 from postinst (through invoke-rc.d or
# deb-systemd-invoke). The tests start their own Prometheus on a free port,
# but a stray daemon is still unwanted, so service starts are denied during
# the install and the units are left disabled and stopped afterwards.
set -euo pipefail

APT_PACKAGES=(
    prometheus                                  # prometheus, promtool
    prometheus-pushgateway                      # reference pushgateway
    socat
    curl
    netcat-openbsd                              # nc -U
    golang-go
    golang-github-prometheus-client-golang-dev
    systemd                                     # systemd-analyze, systemd-sysusers, systemd-socket-activate
    strace                                      # checks the unit's system call filter
    python3                                     # socket activation test launcher
)
COMMANDS=(prometheus promtool prometheus-pushgateway socat curl nc go systemd-analyze systemd-sysusers systemd-socket-activate strace python3)
SERVICES=(prometheus prometheus-pushgateway)
PY_MODULES=(prometheus_client)

log() { printf 'install.sh: %s\n' "$*" >&2; }

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
    command -v sudo >/dev/null || { log "run as root (no sudo found)"; exit 1; }
    SUDO=(sudo)
fi

# --- apt packages -----------------------------------------------------------
missing_pkgs=()
for p in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing_pkgs+=("$p")
    fi
done

if [ "${#missing_pkgs[@]}" -gt 0 ]; then
    log "installing apt packages: ${missing_pkgs[*]}"
    export DEBIAN_FRONTEND=noninteractive

    # Deny service starts from maintainer scripts while we install, unless
    # the machine already has a policy (Docker-style images ship one).
    policy=/usr/sbin/policy-rc.d
    if [ ! -e "$policy" ]; then
        printf '#!/bin/sh\n# temporary, from tests/e2e/install.sh\nexit 101\n' \
            | "${SUDO[@]}" tee "$policy" >/dev/null
        "${SUDO[@]}" chmod 755 "$policy"
        trap '"${SUDO[@]}" rm -f "$policy"' EXIT
    fi

    "${SUDO[@]}" apt-get update -qq
    "${SUDO[@]}" apt-get install -y -qq --no-install-recommends \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold \
        "${missing_pkgs[@]}" >/dev/null \
        2> >(grep -v 'delaying package configuration' >&2)

    # Leave no packaged daemon running or enabled for the next boot.
    for s in "${SERVICES[@]}"; do
        if [ -d /run/systemd/system ]; then
            "${SUDO[@]}" systemctl disable --now "$s.service" >/dev/null 2>&1 || true
        elif [ -x "/etc/init.d/$s" ]; then
            "${SUDO[@]}" "/etc/init.d/$s" stop >/dev/null 2>&1 || true
            "${SUDO[@]}" update-rc.d "$s" disable >/dev/null 2>&1 || true
        fi
    done
fi

for c in "${COMMANDS[@]}"; do
    command -v "$c" >/dev/null || { log "missing command after install: $c"; exit 1; }
done

# --- Python -----------------------------------------------------------------
PY=${PYTHON:-python3}
missing_mods=()
for m in "${PY_MODULES[@]}"; do
    "$PY" -c "import $m" 2>/dev/null || missing_mods+=("$m")
done
if [ "${#missing_mods[@]}" -gt 0 ]; then
    log "installing Python packages: ${missing_mods[*]}"
    "$PY" -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "${missing_mods[@]}"
    # pyenv keeps shims in sync for console scripts; harmless elsewhere.
    if command -v pyenv >/dev/null; then pyenv rehash >/dev/null 2>&1 || true; fi
    for m in "${missing_mods[@]}"; do
        "$PY" -c "import $m" || { log "Python module $m still missing"; exit 1; }
    done
fi

#!/usr/bin/env bash
# Installs what the end-to-end tests (tests/e2e_*.rs) need on Debian 12
# (bookworm) or 13 (trixie): Prometheus' own tools to judge our /metrics
# page, a reference Pushgateway, VictoriaMetrics (a remote write receiver), socket/HTTP clients, Go with client_golang,
# the newest Python prometheus_client from PyPI in a virtual environment
# under the build directory (never into the system Python, which Debian
# refuses: externally-managed-environment), and Node's prom-client from npm
# in a directory under the build directory.
#
# Idempotent and quiet: when everything is present it only checks and exits
# (about a second). Run as root (or with sudo available). The Python and
# Node packages are installed as the calling user, without sudo.
#
# Where (the tests look in the same places):
#   ${CARGO_TARGET_DIR:-target}/e2e-venv   python3 -m venv, with
#                                           prometheus_client, python-snappy
#   ${CARGO_TARGET_DIR:-target}/e2e-node   npm install prom-client
#
# Debian's prometheus, prometheus-pushgateway and victoria-metrics packages
# start their daemons on :9090 / :9091 / :8428 from postinst (through invoke-rc.d or
# deb-systemd-invoke). The tests start their own Prometheus on a free port,
# but a stray daemon is still unwanted, so service starts are denied during
# the install and the units are left disabled and stopped afterwards.
set -euo pipefail

APT_PACKAGES=(
    prometheus                                  # prometheus, promtool
    prometheus-pushgateway                      # reference pushgateway
    victoria-metrics                            # remote write receiver (tests/remote_write.rs)
    socat
    curl
    openssl                                     # self-signed certificate for the TLS terminator test
    netcat-openbsd                              # nc -U
    golang-go
    golang-github-prometheus-client-golang-dev
    systemd                                     # systemd-analyze, systemd-sysusers, systemd-socket-activate
    strace                                      # checks the unit's system call filter
    python3                                     # socket activation test launcher
    python3-venv                                # python3 -m venv for the client venv
)
COMMANDS=(prometheus promtool prometheus-pushgateway victoria-metrics openssl socat curl nc go systemd-analyze systemd-sysusers systemd-socket-activate strace node npm)
SERVICES=(prometheus prometheus-pushgateway victoria-metrics)
# Python packages (PyPI names) and the modules they provide: the newest
# prometheus_client, and python-snappy for its compression='snappy' (it
# imports `snappy`; python-snappy builds on cramjam's wheels, no compiler).
PY_PACKAGES=(prometheus_client python-snappy)
PY_MODULES=(prometheus_client snappy)
NODE_PACKAGES=(prom-client)

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

# Node and npm: Debian's nodejs and npm unless a node with npm is present
# already (a NodeSource nodejs ships npm and conflicts with Debian's npm).
if ! command -v node >/dev/null || ! command -v npm >/dev/null; then
    missing_pkgs+=(nodejs npm)
fi

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

# --- Python: a virtual environment under the build directory --------------
# Built from the system interpreter, /usr/bin/python3, not whatever python3
# is first on PATH (a pyenv shim, say), so it is what a stock Debian has.
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case "$TARGET_DIR" in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
SYSTEM_PY=/usr/bin/python3
VENV=$TARGET_DIR/e2e-venv
VPY=$VENV/bin/python

venv_ok() {
    local m
    [ -x "$VPY" ] || return 1
    for m in "${PY_MODULES[@]}"; do
        "$VPY" -c "import $m" 2>/dev/null || return 1
    done
}

if ! venv_ok; then
    [ -x "$SYSTEM_PY" ] || { log "$SYSTEM_PY is missing: apt-get install python3"; exit 1; }
    if [ ! -x "$VPY" ] || ! "$VPY" -m pip --version >/dev/null 2>&1; then
        log "creating the Python virtual environment $VENV"
        rm -rf "$VENV"
        "$SYSTEM_PY" -m venv "$VENV" || {
            log "$SYSTEM_PY -m venv failed: apt-get install python3-venv"
            exit 1
        }
    fi
    log "installing the newest ${PY_PACKAGES[*]} into $VENV"
    "$VPY" -m pip install --quiet --disable-pip-version-check --upgrade "${PY_PACKAGES[@]}"
    venv_ok || { log "$VENV still lacks one of: ${PY_MODULES[*]}"; exit 1; }
fi

# --- Node: prom-client under the build directory ----------------------------
NODE_DIR=$TARGET_DIR/e2e-node

node_ok() {
    local p
    for p in "${NODE_PACKAGES[@]}"; do
        (cd "$NODE_DIR" 2>/dev/null && node -e "require('$p')" 2>/dev/null) || return 1
    done
}

if ! node_ok; then
    log "installing the newest ${NODE_PACKAGES[*]} into $NODE_DIR"
    mkdir -p "$NODE_DIR"
    # A package.json of its own, so npm installs here and not into a
    # parent directory's project.
    [ -f "$NODE_DIR/package.json" ] ||
        printf '{"name":"push-gateway-e2e","private":true}\n' >"$NODE_DIR/package.json"
    (cd "$NODE_DIR" && npm install --silent --no-audit --no-fund "${NODE_PACKAGES[@]}")
    node_ok || { log "$NODE_DIR still lacks one of: ${NODE_PACKAGES[*]}"; exit 1; }
fi

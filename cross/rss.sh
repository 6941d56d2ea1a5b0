#!/usr/bin/env bash
# Measure the real resident memory of the static push-gateway on an emulated
# Linux kernel of its own architecture, under the `fill` workload:
#   RSS_ARCH=aarch64 (default): qemu-system-aarch64 -M virt -cpu cortex-a53 -m 128M,
#     Debian's linux-image-cloud-arm64
#   RSS_ARCH=armv7: qemu-system-arm -M virt -cpu cortex-a15 -m 128M, Debian's
#     linux-image-armmp (32-bit ARM, LPAE off), with the armv7 musleabihf build
#
# Prints `VmHWM: N kB` and `VmRSS: N kB` of the gateway process as read from
# /proc/PID/status inside the guest (medians over RSS_RUNS runs), and exits
# non-zero if either is above RSS_LIMIT_KB (default 2048) in any run, if the
# workload failed, or if it did not fill the cache's budget.
#
# Everything the VM needs (qemu-system-aarch64, an arm64 kernel >= 6.2,
# busybox) is downloaded once as Debian packages, unpacked (never installed)
# into $CROSS_CACHE, and reused from there without network on later runs.
#
# Environment (all optional):
#   CARGO_TARGET_DIR  cargo's target dir (default: target)
#   CROSS_CACHE       download/unpack cache (default: $CARGO_TARGET_DIR/cross-cache)
#   RSS_BUILD=0       don't run cargo; use the binaries below as they are
#   RSS_ARCH          aarch64 (default) or armv7
#   GATEWAY_BIN       gateway binary (default: that target's musl release build)
#   FILL_BIN          workload binary (default: that target's musl release `fill` example)
#   GATEWAY_ARGS      default: --socket /tmp/pg.sock --listen 127.0.0.1:9091
#   FILL_ARGS         default: --pushers 32 --series 16 --scrapes 100
#   FILL_HTTP=0       stream pushes only (default 1: odd-numbered pushers push
#                     over HTTP, PUT /metrics/job/fill/instance/N, the others stream)
#   RSS_RUNS          runs in one boot, each with a fresh gateway (default 5);
#                     the figures printed are medians, the limit holds for every run
#   RSS_LIMIT_KB      fail above this (default 2048); RSS_GOAL_KB (default 512)
#   RSS_TIMEOUT       seconds before the VM is killed (default 240)
#   RSS_SMAPS=1       also print, for the first run, each of the gateway's
#                     mappings with its Rss and Anonymous kB (/proc/PID/smaps),
#                     once idle after start-up and once after the workload
#   RSS_FAULT_AROUND  the guest kernel's fault_around_bytes (default 65536:
#                     a page fault in the binary maps up to 16 pages around
#                     it); 4096 shows the pages the gateway itself touches
#   QEMU_SYSTEM_AARCH64, QEMU_SYSTEM_ARM  use this qemu-system-* instead of the cached one
#   CROSS_DEBIAN_MIRROR  Debian mirror for the guest packages
#                        (default: the host's first Debian mirror)
#   CROSS_GUEST_SUITE    suite for the guest kernel and busybox (default: trixie)
set -euo pipefail

RSS_ARCH=${RSS_ARCH:-aarch64}
say() { printf 'rss-%s: %s\n' "$RSS_ARCH" "$*" >&2; }
die() { say "error: $*"; exit 1; }

cd "$(dirname "$0")/.."
PROJECT=$PWD
case $RSS_ARCH in
aarch64)
    TRIPLE=aarch64-unknown-linux-musl GUEST_ARCH=arm64 KERNEL_PKG=linux-image-cloud-arm64
    QEMU_NAME=qemu-system-aarch64 QEMU_CPU=cortex-a53 QEMU_OVERRIDE=${QEMU_SYSTEM_AARCH64:-}
    BUILD_CARGO=(${CARGO:-cargo} build --target "$TRIPLE")
    OUT=$TRIPLE
    ;;
armv7)
    TRIPLE=armv7-unknown-linux-musleabihf GUEST_ARCH=armhf KERNEL_PKG=linux-image-armmp
    QEMU_NAME=qemu-system-arm QEMU_CPU=cortex-a15 QEMU_OVERRIDE=${QEMU_SYSTEM_ARM:-}
    # no rustup std for it: std rebuilt with the pinned nightly
    BUILD_CARGO=(cross/build-std.sh "$TRIPLE" release build)
    OUT=std/$TRIPLE
    ;;
*) die "RSS_ARCH must be aarch64 or armv7, not $RSS_ARCH" ;;
esac
TARGET_DIR=${CARGO_TARGET_DIR:-target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$PROJECT/$TARGET_DIR ;; esac
CACHE=${CROSS_CACHE:-$TARGET_DIR/cross-cache}
mkdir -p "$CACHE"
CACHE=$(cd "$CACHE" && pwd)

GATEWAY=${GATEWAY_BIN:-$TARGET_DIR/$OUT/release/push-gateway}
FILL=${FILL_BIN:-$TARGET_DIR/$OUT/release/examples/fill}
GATEWAY_ARGS=${GATEWAY_ARGS:---socket /tmp/pg.sock --listen 127.0.0.1:9091}
FILL_ARGS=${FILL_ARGS:---pushers 32 --series 16 --scrapes 100}
[ "${FILL_HTTP:-1}" = 1 ] && FILL_ARGS="$FILL_ARGS --http"
RUNS=${RSS_RUNS:-5}
case $RUNS in '' | *[!0-9]* | 0) die "RSS_RUNS must be a positive number" ;; esac
LIMIT_KB=${RSS_LIMIT_KB:-2048}
GOAL_KB=${RSS_GOAL_KB:-512}
TIMEOUT=${RSS_TIMEOUT:-240}
SMAPS=${RSS_SMAPS:-0}
FAULT_AROUND=${RSS_FAULT_AROUND:-}
GUEST_SUITE=${CROSS_GUEST_SUITE:-trixie}

# The socket and TCP address the guest script waits for, taken from GATEWAY_ARGS.
arg_after() { # FLAG WORDS...
    local flag=$1; shift
    while [ $# -gt 1 ]; do [ "$1" = "$flag" ] && { echo "$2"; return; }; shift; done
}
# shellcheck disable=SC2086
SOCK=$(arg_after --socket $GATEWAY_ARGS)
# shellcheck disable=SC2086
LISTEN=$(arg_after --listen $GATEWAY_ARGS)
SOCK=${SOCK:-/tmp/pg.sock}
LISTEN=${LISTEN:-127.0.0.1:9091}

for tool in cpio dpkg-deb apt-get timeout; do
    command -v "$tool" >/dev/null || die "$tool not found (cross/setup.sh installs what is needed)"
done

# ---------------------------------------------------------------- binaries
if [ "${RSS_BUILD:-1}" != 0 ]; then
    build=()
    [ -z "${GATEWAY_BIN:-}" ] && build+=(--bin push-gateway)
    [ -z "${FILL_BIN:-}" ] && build+=(--example fill)
    if [ ${#build[@]} -gt 0 ]; then
        say "${BUILD_CARGO[*]} --release ${build[*]}"
        if [ "$RSS_ARCH" = armv7 ]; then cross/setup.sh --build-std "$TRIPLE"; fi
        "${BUILD_CARGO[@]}" --release "${build[@]}"
    fi
fi
[ -x "$GATEWAY" ] || die "no gateway binary at $GATEWAY"
[ -x "$FILL" ] || die "no workload binary at $FILL"

# ----------------------------------------------------------- VM components
# Host qemu: downloaded from the host's own apt sources (so its libraries match
# the host) and unpacked, not installed: installing qemu-system-arm can clash
# with other installed qemu packages.
QEMU_ROOT=$CACHE/qemu
GUEST_ROOT=$CACHE/guest-$GUEST_ARCH
DEBS=$CACHE/debs
STAMP=$CACHE/vm-assets-$GUEST_ARCH.ok

installed() { [ "$(dpkg-query -W -f='${db:Status-Abbrev}' "$1" 2>/dev/null)" = "ii " ]; }
deps_of() { # first alternative of each Depends/Pre-Depends, names only
    apt-cache show --no-all-versions "$1" 2>/dev/null |
        sed -n 's/^\(Pre-\)\{0,1\}Depends: //p' | tr ',' '\n' |
        sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g' | grep -v '^$' || true
}
host_download() { # PKG...: into $DEBS, refreshing stale apt lists once if needed
    (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null) && return
    [ "$(id -u)" = 0 ] || return 1
    say "apt-get update (host lists look stale)"
    apt-get update -qq
    (cd "$DEBS" && apt-get download -q -o APT::Sandbox::User=root "$@" >/dev/null)
}

fetch_qemu() {
    say "fetching qemu-system-arm and the libraries this host lacks"
    apt-cache show qemu-system-arm >/dev/null 2>&1 || {
        [ "$(id -u)" = 0 ] || die "apt knows no qemu-system-arm: run apt-get update"
        apt-get update -qq
    }
    local todo=qemu-system-arm seen=" " need=() next p
    while [ -n "$todo" ]; do
        next=
        for p in $todo; do
            case $seen in *" $p "*) continue ;; esac
            seen="$seen$p "
            # firmware/data and helpers are not needed for -kernel boots
            case $p in qemu-system-common | qemu-system-data) continue ;; esac
            installed "$p" && continue
            need+=("$p")
            next="$next $(deps_of "$p")"
        done
        todo=$next
    done
    rm -f "$DEBS"/*_amd64.deb "$DEBS"/*_all.deb
    host_download "${need[@]}" || die "apt-get download ${need[*]} failed"
    rm -rf "$QEMU_ROOT"
    local deb
    for deb in "$DEBS"/*_amd64.deb "$DEBS"/*_all.deb; do
        if [ -e "$deb" ]; then dpkg -x "$deb" "$QEMU_ROOT"; fi
    done
    [ -x "$QEMU_ROOT/usr/bin/$QEMU_NAME" ] || die "$QEMU_NAME missing from qemu-system-arm"
}

guest_apt() { # apt-get/apt-cache on a private guest-architecture state dir; the host's apt is untouched
    local tool=$1; shift
    "$tool" -o Dir::Etc::SourceList="$CACHE/apt/sources.list" -o Dir::Etc::SourceParts=/dev/null \
        -o Dir::State="$CACHE/apt" -o Dir::State::Lists="$CACHE/apt/lists" \
        -o Dir::State::status="$CACHE/apt/status" -o Dir::Cache="$CACHE/apt" \
        -o Dir::Cache::archives="$CACHE/apt/archives" \
        -o APT::Architecture=$GUEST_ARCH -o APT::Architectures::=$GUEST_ARCH -o Acquire::Languages=none \
        -o Debug::NoLocking=1 -o APT::Sandbox::User=root "$@"
}

. cross/debian-mirror.sh

fetch_guest() {
    local mirror
    mirror=$(host_mirror)
    say "fetching the $GUEST_ARCH kernel and busybox from $mirror $GUEST_SUITE"
    mkdir -p "$CACHE/apt/lists/partial" "$CACHE/apt/archives/partial"
    : >"$CACHE/apt/status"
    echo "deb [arch=$GUEST_ARCH target=Packages signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $mirror $GUEST_SUITE main" \
        >"$CACHE/apt/sources.list"
    guest_apt apt-get update -qq || die "apt-get update of $GUEST_SUITE $GUEST_ARCH failed"
    local image
    image=$(guest_apt apt-cache show --no-all-versions "$KERNEL_PKG" |
        sed -n 's/^Depends: \(linux-image-[^ ,]*\).*/\1/p' | head -n1)
    [ -n "$image" ] || die "no $KERNEL_PKG in $GUEST_SUITE"
    rm -f "$DEBS"/*_"$GUEST_ARCH".deb
    (cd "$DEBS" && guest_apt apt-get download -q "$image" busybox-static >/dev/null) ||
        die "download of $image busybox-static failed"
    rm -rf "$GUEST_ROOT"
    mkdir -p "$GUEST_ROOT"
    dpkg-deb --fsys-tarfile "$DEBS/${image}"_*_"$GUEST_ARCH".deb | tar -x -C "$GUEST_ROOT" ./boot
    dpkg -x "$DEBS"/busybox-static_*_"$GUEST_ARCH".deb "$GUEST_ROOT"
    rm -rf "$CACHE/apt" # the indexes (20 MB) are not needed again
}

if [ ! -e "$STAMP" ]; then
    mkdir -p "$DEBS"
    if [ -z "$QEMU_OVERRIDE" ] && ! command -v "$QEMU_NAME" >/dev/null && [ ! -x "$QEMU_ROOT/usr/bin/$QEMU_NAME" ]; then
        fetch_qemu
    fi
    fetch_guest
    rm -rf "$DEBS" # unpacked above; later runs need only the unpacked trees
    touch "$STAMP"
fi

if [ -n "$QEMU_OVERRIDE" ]; then
    QEMU=$QEMU_OVERRIDE
elif command -v "$QEMU_NAME" >/dev/null; then
    QEMU=$(command -v "$QEMU_NAME")
else
    QEMU=$QEMU_ROOT/usr/bin/$QEMU_NAME
    [ -x "$QEMU" ] || { rm -f "$STAMP"; die "cache incomplete (no $QEMU); rerun to fetch again"; }
    export LD_LIBRARY_PATH="$QEMU_ROOT/usr/lib/x86_64-linux-gnu:$QEMU_ROOT/lib/x86_64-linux-gnu${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

KERNEL=$(ls "$GUEST_ROOT"/boot/vmlinuz-* 2>/dev/null | head -n1 || true)
BUSYBOX=$(ls "$GUEST_ROOT"/usr/bin/busybox "$GUEST_ROOT"/bin/busybox 2>/dev/null | head -n1 || true)
[ -n "$KERNEL" ] && [ -n "$BUSYBOX" ] || { rm -f "$STAMP"; die "cache incomplete; rerun to fetch again"; }
KVER=${KERNEL##*/vmlinuz-}
# Kernels before 6.2 batch the per-process RSS counters and report a few kB.
IFS=. read -r kmaj kmin _ <<<"$KVER"
[ "$kmaj" -gt 6 ] || { [ "$kmaj" -eq 6 ] && [ "${kmin%%[!0-9]*}" -ge 2 ]; } ||
    die "guest kernel $KVER is older than 6.2: its RSS figures are not exact"

# --------------------------------------------------------------- initramfs
RUN=$(mktemp -d "$CACHE/run.XXXXXX")
QPID=
cleanup() {
    [ -n "$QPID" ] && kill "$QPID" 2>/dev/null && wait "$QPID" 2>/dev/null
    rm -rf "$RUN"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

mkdir -p "$RUN/root"/{bin,sbin,usr/bin,usr/sbin,proc,sys,dev,tmp}
cp "$BUSYBOX" "$RUN/root/bin/busybox"
cp "$GATEWAY" "$RUN/root/bin/push-gateway"
cp "$FILL" "$RUN/root/bin/fill"
PORT=${LISTEN##*:}
PORT_HEX=$(printf '%04X' "$PORT")
cat >"$RUN/root/init" <<EOF
#!/bin/busybox sh
/bin/busybox --install -s
export PATH=/bin:/sbin:/usr/bin:/usr/sbin
mount -t devtmpfs dev /dev
exec </dev/console >/dev/console 2>&1
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t tmpfs tmp /tmp
ip link set lo up
say() { echo "@@pg \$*"; }
status() { grep -E '^(VmHWM|VmRSS|RssAnon|RssFile|RssShmem)' /proc/\$1/status | tr -s ' \t' ' ' | while read -r l; do say "\$2\$l"; done; }
smaps() { awk -v w=\$2 '/^[0-9a-f]+-[0-9a-f]+ /{m=\$1" "\$2" "\$6} /^Rss:/{r=\$2} /^Anonymous:/{print "smaps " w " " m " Rss " r " Anon " \$2}' /proc/\$1/smaps | while read -r l; do say "\$l"; done; }
if [ -n "$FAULT_AROUND" ]; then
    if mount -t debugfs debugfs /sys/kernel/debug && echo $FAULT_AROUND > /sys/kernel/debug/fault_around_bytes; then
        say "fault_around_bytes \$(cat /sys/kernel/debug/fault_around_bytes)"
    else
        say "error: could not set fault_around_bytes to $FAULT_AROUND"
    fi
fi
say kernel \$(uname -r)
run=1
while [ \$run -le $RUNS ]; do
    /bin/push-gateway $GATEWAY_ARGS &
    PID=\$!
    i=0
    until [ -S $SOCK ] && grep -q ':$PORT_HEX 00000000:0000 0A' /proc/net/tcp; do
        i=\$((i + 1))
        if [ \$i -gt 300 ] || [ ! -d /proc/\$PID ]; then say error gateway not listening on $SOCK and $LISTEN; poweroff -f; fi
        sleep 0.1
    done
    status \$PID "r\$run idle-"
    [ "$SMAPS" = 1 ] && [ \$run = 1 ] && smaps \$PID idle
    /bin/fill --socket $SOCK --scrape $LISTEN $FILL_ARGS > /tmp/fill.out 2>&1
    rc=\$?
    while read -r l; do say "r\$run \$l"; done < /tmp/fill.out
    say "r\$run fill-exit \$rc"
    if [ -d /proc/\$PID ]; then status \$PID "r\$run "; else wait \$PID; say error gateway exited with \$?; fi
    [ "$SMAPS" = 1 ] && [ \$run = 1 ] && smaps \$PID after
    # Only after the figures are taken: how full the cache got (self-metrics).
    wget -q -O /tmp/page http://$LISTEN/metrics &&
        grep -E '^push_gateway_(cache_budget_bytes|cache_bytes|series) |^push_gateway_evictions_total[{]reason="budget"[}] ' /tmp/page |
        sed 's/[{]reason="budget"[}]/_budget/' | while read -r l; do say "r\$run metric \$l"; done
    kill \$PID
    wait \$PID
    run=\$((run + 1))
done
say done
poweroff -f
EOF
chmod +x "$RUN/root/init"
(cd "$RUN/root" && find . | cpio -o -H newc --quiet >"$RUN/initramfs.cpio")

# ---------------------------------------------------------------------- VM
LOG=$CACHE/rss-$RSS_ARCH.log
say "booting $KVER on $("$QEMU" --version | head -n1)"
start=$(date +%s)
timeout -k 5 "$TIMEOUT" "$QEMU" -M virt -cpu "$QEMU_CPU" -m 128M -smp 1 \
    -nographic -no-reboot -nic none \
    -kernel "$KERNEL" -initrd "$RUN/initramfs.cpio" \
    -append "console=ttyAMA0 rdinit=/init panic=-1 quiet loglevel=3" \
    </dev/null >"$LOG" 2>&1 &
QPID=$!
set +e
wait "$QPID"
qrc=$?
set -e
QPID=
secs=$(($(date +%s) - start))
[ "$qrc" = 124 ] && say "error: VM timed out after ${TIMEOUT}s"

results=$(tr -d '\r' <"$LOG" | sed -n 's/^@@pg //p')
value() { printf '%s\n' "$results" | sed -n "s/^$1: *\([0-9]*\) kB$/\1/p" | tail -n1; }
metric() { printf '%s\n' "$results" | sed -n "s/^r$1 metric push_gateway_$2 \([0-9.e+]*\)$/\1/p" | tail -n1; }
median() { tr ' ' '\n' | grep . | sort -n | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
if ! printf '%s\n' "$results" | grep -q '^done$'; then
    say "error: no figures from the guest (qemu exit $qrc); last console lines of $LOG:"
    tr -d '\r' <"$LOG" | tail -n 25 >&2
    exit 1
fi

fail=0
hwms='' rsss='' idles=''
if printf '%s\n' "$results" | grep -q '^error'; then
    printf '%s\n' "$results" | grep '^error' | sed "s/^/rss-$RSS_ARCH: /" >&2
    fail=1
fi
for r in $(seq 1 "$RUNS"); do
    hwm=$(value "r$r VmHWM")
    rss=$(value "r$r VmRSS")
    if [ -z "$hwm" ] || [ -z "$rss" ]; then
        say "error: run $r: no VmHWM/VmRSS from the guest"
        fail=1
        continue
    fi
    hwms="$hwms $hwm" rsss="$rsss $rss" idles="$idles $(value "r$r idle-VmRSS")"
    printf '%s\n' "$results" | sed -n "s/^r$r fill: /fill: /p"
    fill_rc=$(printf '%s\n' "$results" | sed -n "s/^r$r fill-exit //p")
    [ "$fill_rc" = 0 ] || { say "error: run $r: the workload failed (exit $fill_rc)"; fail=1; }
    # The initramfs is a tmpfs, so the binary's own pages show as RssShmem here.
    line="run $r: VmHWM $hwm kB, VmRSS $rss kB (idle VmRSS $(value "r$r idle-VmRSS") kB,"
    line="$line RssAnon $(value "r$r RssAnon") kB, RssFile+RssShmem $(($(value "r$r RssFile") + $(value "r$r RssShmem"))) kB)"
    used=$(metric "$r" cache_bytes)
    budget=$(metric "$r" cache_budget_bytes)
    evicted=$(metric "$r" evictions_total_budget)
    if [ -n "$used" ] && [ -n "$budget" ] && [ -n "$evicted" ]; then
        line="$line; cache $used of $budget B, $(metric "$r" series) series, $evicted evicted for room"
        # Evictions for room show that the pushes filled the whole budget.
        [ "${evicted%%.*}" -gt 0 ] || { say "error: run $r: the workload did not fill the cache's budget"; fail=1; }
    else
        line="$line; cache use unknown (no self-metrics on /metrics)"
    fi
    echo "$line"
    for v in "VmHWM:$hwm" "VmRSS:$rss"; do
        if [ "${v#*:}" -gt "$LIMIT_KB" ]; then
            say "error: run $r: ${v%%:*} ${v#*:} kB is above the limit of $LIMIT_KB kB"
            fail=1
        fi
    done
done
[ -n "$hwms" ] || exit 1
if [ "$SMAPS" = 1 ]; then
    echo "run 1 mappings (when, address perms name, Rss and Anonymous kB):"
    printf '%s\n' "$results" | sed -n 's/^smaps /  /p'
fi
HWM=$(echo "$hwms" | median)
RSS=$(echo "$rsss" | median)
echo "guest: Linux $KVER, $QEMU_NAME -M virt -cpu $QEMU_CPU -m 128M, ${secs}s"
printf '%s\n' "$results" | sed -n 's/^fault_around_bytes /guest fault_around_bytes: /p'
echo "gateway: $(stat -c %s "$GATEWAY") bytes, idle VmRSS $(echo "$idles" | median) kB"
echo "workload: fill $FILL_ARGS"
if [ "$RUNS" -gt 1 ]; then echo "medians of $RUNS runs (VmHWM$hwms kB; VmRSS$rsss kB):"; fi
echo "VmHWM: $HWM kB"
echo "VmRSS: $RSS kB"

if [ "$fail" = 0 ]; then
    if [ "$HWM" -le "$GOAL_KB" ]; then
        echo "ok: within the goal of $GOAL_KB kB"
    else
        echo "ok: within the limit of $LIMIT_KB kB (goal $GOAL_KB kB)"
    fi
fi
exit "$fail"

#!/bin/sh
# A tiny stand-in for node_exporter: pushes the host's load averages, memory
# and file system usage into push-gateway every 15 seconds. Needs only a
# POSIX shell, /proc, df, and socat or OpenBSD netcat.
#
#   examples/host-metrics.sh                 push every 15 s until stopped
#   examples/host-metrics.sh --once          push once and exit
#   examples/host-metrics.sh --print --once  print the lines, push nothing
#
# Options:
#   --once           push one round and exit (status 1 if it failed)
#   --interval SECS  seconds between rounds (default 15; keep it well under
#                    the gateway's --ttl, 60 s by default)
#   --mount PATH     file system to report, repeatable (default /)
#   --print          write the lines to standard output instead of pushing
#   --socat, --nc    the client to push with (default: socat if installed)
#
# The socket is $PUSH_GATEWAY_SOCKET (default /run/push-gateway.sock; after
# `make run`, export PUSH_GATEWAY_SOCKET=/tmp/push-gateway.sock);
# $HOST_METRICS_PROC replaces /proc (for tests). The
# metric names are node_exporter's, so its dashboards and alerts work:
#   node_load1, node_load5, node_load15
#   node_memory_<Field>_bytes   from /proc/meminfo (MemTotal, MemFree,
#                               MemAvailable, Buffers, Cached, SwapTotal,
#                               SwapFree)
#   node_filesystem_size_bytes, node_filesystem_free_bytes,
#   node_filesystem_avail_bytes {device, mountpoint}   from df -P
#   node_boot_time_seconds      from /proc/stat
# Do not run it next to a real node_exporter scraped under the same labels.
#
# About 1 KiB of the gateway's cache with one mount. Run it from a systemd
# unit as a user in the push-gateway group, e.g.
#   ExecStart=/usr/local/bin/host-metrics.sh
#   SupplementaryGroups=push-gateway
set -eu

SOCKET=${PUSH_GATEWAY_SOCKET:-/run/push-gateway.sock}
PROC=${HOST_METRICS_PROC:-/proc}

usage() {
    sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
    exit 2
}

die() {
    printf 'host-metrics.sh: %s\n' "$*" >&2
    exit 2
}

once=
print=
interval=15
mounts=
client=
while [ $# -gt 0 ]; do
    case $1 in
        --once) once=1 ;;
        --print) print=1 ;;
        --interval)
            [ $# -ge 2 ] || die "--interval needs a number of seconds"
            interval=$2
            shift
            ;;
        --mount)
            [ $# -ge 2 ] || die "--mount needs a path"
            mounts="$mounts
$2"
            shift
            ;;
        --socat) client=socat ;;
        --nc) client=nc ;;
        -h | --help) usage ;;
        *) printf 'host-metrics.sh: unknown argument %s\n' "$1" >&2; usage ;;
    esac
    shift
done
case $interval in
    '' | *[!0-9]* | 0) die "--interval: $interval is not a positive whole number of seconds" ;;
esac
[ -n "$mounts" ] || mounts=/

if [ -z "$print" ]; then
    if [ -z "$client" ]; then
        if command -v socat >/dev/null 2>&1; then client=socat; else client=nc; fi
    fi
    command -v "$client" >/dev/null 2>&1 ||
        die "$client not found: install socat or netcat-openbsd"
fi

# Escapes a label value (one line): backslash and double quote.
escape() {
    printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g'
}

header() { # NAME TYPE HELP
    printf '# HELP %s %s\n# TYPE %s %s\n' "$1" "$3" "$1" "$2"
}

load_averages() {
    read -r l1 l5 l15 _ < "$PROC/loadavg" || return 0
    header node_load1 gauge '1m load average.'
    printf 'node_load1 %s\n' "$l1"
    header node_load5 gauge '5m load average.'
    printf 'node_load5 %s\n' "$l5"
    header node_load15 gauge '15m load average.'
    printf 'node_load15 %s\n' "$l15"
}

memory() {
    # Lines like `MemTotal:        8052180 kB`.
    while read -r key value unit; do
        field=${key%:}
        case $field in
            MemTotal | MemFree | MemAvailable | Buffers | Cached | SwapTotal | SwapFree) ;;
            *) continue ;;
        esac
        case $value in '' | *[!0-9]*) continue ;; esac
        [ "$unit" = kB ] && value=$((value * 1024))
        name="node_memory_${field}_bytes"
        header "$name" gauge "Memory information field ${field}_bytes."
        printf '%s %s\n' "$name" "$value"
    done < "$PROC/meminfo"
}

filesystems() {
    # df's POSIX output for each mount (one a line, so a path with spaces
    # stays whole): device, 1024-blocks, used, available, capacity, mounted
    # on (the mount point may hold spaces: it takes the rest of the line).
    printf '%s\n' "$mounts" | while IFS= read -r mount; do
        [ -z "$mount" ] || df -P -k "$mount" 2>/dev/null | sed 1d
    done | {
        seen='
'
        while read -r device blocks used avail _ mountpoint; do
            case "$blocks$used$avail" in '' | *[!0-9]*) continue ;; esac
            # Two paths on one file system are reported once.
            case $seen in *"
$mountpoint
"*) continue ;; esac
            seen="$seen$mountpoint
"
            labels="device=\"$(escape "$device")\",mountpoint=\"$(escape "$mountpoint")\""
            printf 'S node_filesystem_size_bytes{%s} %s\n' "$labels" $((blocks * 1024))
            printf 'F node_filesystem_free_bytes{%s} %s\n' "$labels" $(((blocks - used) * 1024))
            printf 'A node_filesystem_avail_bytes{%s} %s\n' "$labels" $((avail * 1024))
        done
    } > "$tmp"
    # One header per family, then its samples.
    if [ -s "$tmp" ]; then
        header node_filesystem_size_bytes gauge 'Filesystem size in bytes.'
        sed -n 's/^S //p' "$tmp"
        header node_filesystem_free_bytes gauge 'Filesystem free space in bytes.'
        sed -n 's/^F //p' "$tmp"
        header node_filesystem_avail_bytes gauge 'Filesystem space available to non-root users in bytes.'
        sed -n 's/^A //p' "$tmp"
    fi
}

boot_time() {
    while read -r key value _; do
        if [ "$key" = btime ]; then
            header node_boot_time_seconds gauge 'Node boot time, in unixtime.'
            printf 'node_boot_time_seconds %s\n' "$value"
            return 0
        fi
    done < "$PROC/stat"
}

collect() {
    load_averages
    memory
    filesystems
    boot_time
}

# Writes standard input to the socket; prints the gateway's replies.
send() {
    case $client in
        socat) socat -t 5 - "UNIX-CONNECT:$SOCKET" ;;
        nc) nc -U -N "$SOCKET" ;;
    esac
}

tmp=$(mktemp "${TMPDIR:-/tmp}/host-metrics.XXXXXX")
trap 'rm -f "$tmp"' EXIT
sleeper=
trap '[ -z "$sleeper" ] || kill "$sleeper" 2>/dev/null; exit 0' INT TERM

# One round: collect and push; status 1 if the push failed or was answered
# with errors (printed on standard error).
round() {
    if [ -n "$print" ]; then
        collect
        return 0
    fi
    status=0
    reply=$(collect | send 2>&1) || status=$?
    if [ -n "$reply" ] || [ "$status" -ne 0 ]; then
        printf 'host-metrics.sh: push to %s failed (%s): %s\n' "$SOCKET" "$client" "$reply" >&2
        return 1
    fi
}

while :; do
    if [ -n "$once" ]; then
        round
        exit
    fi
    # A failed round is reported and retried at the next tick.
    round || :
    # In the background, so that SIGTERM ends the wait at once.
    sleep "$interval" &
    sleeper=$!
    wait "$sleeper" || :
    sleeper=
done

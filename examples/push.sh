#!/bin/sh
# Pushes Prometheus text exposition lines into push-gateway's Unix socket.
#
#   examples/push.sh 'door_open{door="front"} 1'
#   examples/push.sh '# TYPE backup_last_success_seconds gauge' \
#                    "backup_last_success_seconds $(date +%s)"
#   printf 'jobs_done_total{queue="mail"} 42\n' | examples/push.sh --nc
#
# Lines come from the arguments, one per argument, or else from standard
# input. The socket is $PUSH_GATEWAY_SOCKET (default /run/push-gateway.sock;
# after `make run`, export PUSH_GATEWAY_SOCKET=/tmp/push-gateway.sock);
# pushing needs write access to it (membership of its group).
#
# Options:
#   --socat   send with socat (the default when socat is installed)
#   --nc      send with OpenBSD netcat (Debian: netcat-openbsd)
#
# The gateway answers nothing for good lines and `error: line N: REASON` for
# a bad one (which is skipped, the others are kept). Those replies are
# printed on standard error and the exit status is then 1.
#
# The whole thing is one pipe into the socket; by hand it is:
#   printf 'x 1\n' | socat -t 5 - UNIX-CONNECT:/run/push-gateway.sock
#   printf 'x 1\n' | nc -U -N /run/push-gateway.sock
set -eu

SOCKET=${PUSH_GATEWAY_SOCKET:-/run/push-gateway.sock}

usage() {
    sed -n '2,/^set -eu/{/^set -eu/d;s/^# \{0,1\}//;p;}' "$0" >&2
    exit 2
}

client=
while [ $# -gt 0 ]; do
    case $1 in
        --socat) client=socat ;;
        --nc) client=nc ;;
        -h | --help) usage ;;
        --) shift; break ;;
        -*) printf 'push.sh: unknown option %s\n' "$1" >&2; usage ;;
        *) break ;;
    esac
    shift
done
if [ -z "$client" ]; then
    if command -v socat >/dev/null 2>&1; then client=socat; else client=nc; fi
fi
command -v "$client" >/dev/null 2>&1 || {
    printf 'push.sh: %s not found: install socat or netcat-openbsd\n' "$client" >&2
    exit 2
}

# Writes standard input to the socket, then half-closes it and prints what
# the gateway answers until it closes its side.
send() {
    case $client in
        # socat: after end of input, wait up to 5 s for the replies
        # (its default, 0.5 s, may cut them off on a slow box).
        socat) socat -t 5 - "UNIX-CONNECT:$SOCKET" ;;
        # nc: -U Unix socket, -N shut down the writing side at end of input,
        # then read until the gateway closes.
        nc) nc -U -N "$SOCKET" ;;
    esac
}

lines() {
    if [ $# -gt 0 ]; then printf '%s\n' "$@"; else cat; fi
}

# `|| status=$?` keeps set -e from exiting before the replies are shown.
status=0
reply=$(lines "$@" | send) || status=$?
if [ -n "$reply" ]; then
    printf '%s\n' "$reply" >&2
    exit 1
fi
if [ "$status" -ne 0 ]; then
    printf 'push.sh: %s could not push to %s (exit status %s)\n' "$client" "$SOCKET" "$status" >&2
    exit 1
fi

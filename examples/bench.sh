#!/usr/bin/env bash
# Benchmark: push-gateway against the Prometheus Pushgateway on this machine.
#
#   examples/bench.sh            (make bench)
#
# Builds push-gateway and examples/loadgen.rs (release), starts push-gateway
# (push socket in a temporary directory, /metrics on a free loopback port)
# and the Prometheus Pushgateway (a free loopback port, no persistence),
# then runs the same workloads against both, one at a time:
#
#   scrape    GET /metrics of a page filled with 100 series first
#   put10     PUT of 10 series per request   (push-gateway: on its Unix
#   put1000   PUT of 1000 series per request  socket; Pushgateway: TCP)
#   stream    exposition lines streamed into the socket (push-gateway only)
#   flood     never-seen series streamed into a full budget, so that every
#             line evicts, at each of BENCH_FLOOD_BUDGETS (a gateway of its
#             own per budget); then at the last budget, scrapes one after
#             another while BENCH_FLOOD_PUSHERS connections flood, for their
#             latency (push-gateway only)
#
# One core each: both servers run pinned to the same CPU (taskset), one at
# a time, and the load generator runs on the other CPUs, so neither server
# competes with its load and the Pushgateway's Go runtime sizes itself for
# one core, as on the single-core boxes push-gateway is made for.
#
# Each workload runs BENCH_RUNS times; the table shows medians. CPU is
# utime+stime of each server process over each measured window, peak RSS
# its VmHWM at the end. Every process started here is stopped by its PID on
# exit. Loopback only; takes about 1.5 minutes plus the build.
#
# Settings (environment):
#   BENCH_SECONDS=3         measured seconds per run
#   BENCH_WARMUP=0.5        unmeasured seconds before each http/scrape run
#   BENCH_RUNS=3            runs per workload (median reported)
#   BENCH_CONNS=4           connections for put10/put1000/scrape
#   BENCH_STREAM_CONNS=4    connections for stream
#   BENCH_STREAM_SERIES=1000
#   BENCH_CACHE_BYTES=1MiB  push-gateway --cache-bytes (the workloads need
#                           under 1 MiB)
#   BENCH_FLOOD_BUDGETS="10KiB 1MiB 16MiB"
#   BENCH_FLOOD_CONNS=4     connections flooding, for the ingest rows
#   BENCH_FLOOD_PUSHERS=16  connections flooding while one scrapes
#   BENCH_SERVER_CPU=0      the CPU both servers are pinned to; the load
#                           generator gets the others (no pinning with
#                           BENCH_SERVER_CPU=none or on a one-CPU machine)
#   BENCH_TARGET=x86_64-unknown-linux-musl
#                           the gateway's build: the static musl binary, as
#                           deployed (falls back to the host build when the
#                           target is not installed: see cross/setup.sh)
#   BENCH_RESULTS=FILE      also keep every run's key=value line in FILE
#   PUSHGATEWAY=/usr/bin/prometheus-pushgateway
#                           (apt-get install prometheus-pushgateway; if it
#                           is missing, only push-gateway is measured)
#   CARGO=cargo
set -euo pipefail

SECONDS_PER_RUN=${BENCH_SECONDS:-3}
WARMUP=${BENCH_WARMUP:-0.5}
RUNS=${BENCH_RUNS:-3}
CONNS=${BENCH_CONNS:-4}
STREAM_CONNS=${BENCH_STREAM_CONNS:-4}
STREAM_SERIES=${BENCH_STREAM_SERIES:-1000}
CACHE_BYTES=${BENCH_CACHE_BYTES:-1MiB}
BENCH_TARGET=${BENCH_TARGET:-x86_64-unknown-linux-musl}
PUSHGATEWAY=${PUSHGATEWAY:-/usr/bin/prometheus-pushgateway}
CARGO=${CARGO:-cargo}
FILL_SERIES=100
SERVER_CPU=${BENCH_SERVER_CPU:-0}
FLOOD_BUDGETS=${BENCH_FLOOD_BUDGETS:-10KiB 1MiB 16MiB}
FLOOD_CONNS=${BENCH_FLOOD_CONNS:-4}
FLOOD_PUSHERS=${BENCH_FLOOD_PUSHERS:-16}

started_at=$(date +%s)
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

say() { printf '%s\n' "$*" >&2; }

# ---- build -------------------------------------------------------------------
say "building push-gateway and loadgen (release)..."
"$CARGO" build --release --quiet --bin push-gateway --example loadgen
target_dir=$("$CARGO" metadata --format-version 1 --no-deps |
    sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
gateway_bin=$target_dir/release/push-gateway
if rustup target list --installed 2>/dev/null | grep -qx "$BENCH_TARGET" &&
    "$CARGO" build --release --quiet --bin push-gateway --target "$BENCH_TARGET"; then
    gateway_bin=$target_dir/$BENCH_TARGET/release/push-gateway
else
    say "bench: $BENCH_TARGET not installed; measuring the host build"
fi
loadgen=$target_dir/release/examples/loadgen
if [ ! -x "$gateway_bin" ] || [ ! -x "$loadgen" ]; then
    say "bench: built binaries not found under $target_dir/release"
    exit 1
fi

have_pgw=1
if [ ! -x "$PUSHGATEWAY" ]; then
    have_pgw=0
    say "bench: $PUSHGATEWAY not found (apt-get install prometheus-pushgateway); measuring push-gateway only"
fi

# ---- CPUs ----------------------------------------------------------------------
# pin_server / pin_load prefix the commands that start servers / loadgen.
pin_server=()
pin_load=()
cpu_note="not pinned"
cpus=$(nproc)
if [ "$SERVER_CPU" != none ] && [ "$cpus" -ge 2 ] && command -v taskset >/dev/null; then
    others=$(seq 0 $((cpus - 1)) | grep -vx "$SERVER_CPU" | paste -sd, -)
    pin_server=(taskset -c "$SERVER_CPU")
    pin_load=(taskset -c "$others")
    cpu_note="each server pinned to CPU $SERVER_CPU (one core), loadgen on CPU $others"
elif [ "$SERVER_CPU" != none ]; then
    say "bench: cannot pin (needs taskset and 2 CPUs); servers and loadgen share the CPUs"
fi

# ---- processes -----------------------------------------------------------------
tmp=$(mktemp -d "${TMPDIR:-/tmp}/push-gateway-bench.XXXXXX")
pids=()
cleanup() {
    local pid
    for pid in "${pids[@]}"; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -KILL "$pid" 2>/dev/null || true
        wait "$pid" 2>/dev/null || true
    done
    rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

read -r gw_port pgw_port <<<"$("$loadgen" freeport -c 2 | tr '\n' ' ')"
socket=$tmp/push.sock
gw_addr=127.0.0.1:$gw_port
pgw_addr=127.0.0.1:$pgw_port

gw_cmd=("$gateway_bin" --socket "$socket" --listen "$gw_addr" --cache-bytes "$CACHE_BYTES" --ttl 1h)
RUST_LOG=warn "${pin_server[@]}" "${gw_cmd[@]}" >"$tmp/push-gateway.log" 2>&1 &
gw_pid=$!
pids+=("$gw_pid")

pgw_cmd=("$PUSHGATEWAY" "--web.listen-address=$pgw_addr" "--persistence.file=" --log.level=warn)
if [ "$have_pgw" = 1 ]; then
    "${pin_server[@]}" "${pgw_cmd[@]}" >"$tmp/pushgateway.log" 2>&1 &
    pgw_pid=$!
    pids+=("$pgw_pid")
fi

# Waits until a process listens on 127.0.0.1:PORT (and, given, a socket exists).
wait_ready() { # name pid port [socket]
    for _ in $(seq 100); do
        if ! kill -0 "$2" 2>/dev/null; then
            say "bench: $1 exited at start-up:"
            cat "$tmp"/*.log >&2
            exit 1
        fi
        if { [ -z "${4:-}" ] || [ -S "$4" ]; } && (exec 3<>"/dev/tcp/127.0.0.1/$3") 2>/dev/null; then
            return 0
        fi
        sleep 0.1
    done
    say "bench: $1 is not listening on port $3 after 10 s"
    exit 1
}
wait_ready push-gateway "$gw_pid" "$gw_port" "$socket"
[ "$have_pgw" = 1 ] && wait_ready Pushgateway "$pgw_pid" "$pgw_port"

# ---- workloads -------------------------------------------------------------------
results=$tmp/results
: >"$results"
timeout_s=$(awk -v s="$SECONDS_PER_RUN" -v w="$WARMUP" 'BEGIN { printf "%d", s + w + 90 }')

# Runs loadgen once; appends "WORKLOAD SERVER key=value..." to the results.
lg() { # workload server(gw|pgw) loadgen-args...
    local workload=$1 server=$2 pid out
    shift 2
    if [ -n "${lg_pid:-}" ]; then
        pid=$lg_pid
    elif [ "$server" = gw ]; then pid=$gw_pid; else pid=$pgw_pid; fi
    if ! out=$(timeout "$timeout_s" "${pin_load[@]}" "$loadgen" "$@" --pid "$pid" --name "$server"); then
        say "bench: loadgen $* failed:"
        say "$out"
        exit 1
    fi
    printf '%s %s %s\n' "$workload" "$server" "$(printf '%s\n' "$out" | sed -n '/^mode=/p')" >>"$results"
    say "  $(printf '%s\n' "$out" | sed -n '/^mode=/!p')"
}

servers=(gw)
[ "$have_pgw" = 1 ] && servers+=(pgw)
push_to() { # server: sets "to" to how loadgen pushes to it
    if [ "$1" = gw ]; then to=(--socket "$socket"); else to=(--tcp "$pgw_addr"); fi
}
page_addr() { if [ "$1" = gw ]; then echo "$gw_addr"; else echo "$pgw_addr"; fi; }
timing=(--seconds "$SECONDS_PER_RUN")

say "filling each page with $FILL_SERIES series..."
for s in "${servers[@]}"; do
    push_to "$s"
    if ! out=$("${pin_load[@]}" "$loadgen" fill "${to[@]}" --series "$FILL_SERIES"); then
        say "bench: filling $s failed: $out"
        exit 1
    fi
done

say "scrape: $RUNS x ${SECONDS_PER_RUN}s per server"
for _ in $(seq "$RUNS"); do
    for s in "${servers[@]}"; do
        lg scrape "$s" scrape --addr "$(page_addr "$s")" -c "$CONNS" "${timing[@]}" --warmup "$WARMUP"
    done
done
for n in 10 1000; do
    say "put$n: $RUNS x ${SECONDS_PER_RUN}s per server"
    for _ in $(seq "$RUNS"); do
        for s in "${servers[@]}"; do
            push_to "$s"
            lg "put$n" "$s" http "${to[@]}" --series "$n" -c "$CONNS" \
                --scrape "$(page_addr "$s")" "${timing[@]}" --warmup "$WARMUP"
        done
    done
done
say "stream: $RUNS x ${SECONDS_PER_RUN}s (push-gateway only)"
for _ in $(seq "$RUNS"); do
    lg stream gw stream --socket "$socket" --series "$STREAM_SERIES" -c "$STREAM_CONNS" \
        --scrape "$gw_addr" "${timing[@]}"
done

# Floods: a gateway of its own per budget, filled by one unmeasured run.
flood_budgets=()
for budget in $FLOOD_BUDGETS; do flood_budgets+=("$budget"); done
flood_last=${flood_budgets[${#flood_budgets[@]} - 1]}
flood_hwm=""
for budget in "${flood_budgets[@]}"; do
    say "flood at --cache-bytes $budget: $RUNS x ${SECONDS_PER_RUN}s"
    read -r fl_port <<<"$("$loadgen" freeport)"
    fl_socket=$tmp/flood-$budget.sock
    fl_cmd=("$gateway_bin" --socket "$fl_socket" --listen "127.0.0.1:$fl_port" --cache-bytes "$budget" --ttl 1h)
    RUST_LOG=warn "${pin_server[@]}" "${fl_cmd[@]}" >"$tmp/flood-$budget.log" 2>&1 &
    lg_pid=$!
    pids+=("$lg_pid")
    wait_ready "push-gateway --cache-bytes $budget" "$lg_pid" "$fl_port" "$fl_socket"
    fl=(--socket "$fl_socket" --scrape "127.0.0.1:$fl_port")
    if ! out=$("${pin_load[@]}" "$loadgen" flood "${fl[@]}" -c "$FLOOD_CONNS" "${timing[@]}"); then
        say "bench: filling the $budget gateway failed: $out"
        exit 1
    fi
    for _ in $(seq "$RUNS"); do
        lg "flood_$budget" gw flood "${fl[@]}" -c "$FLOOD_CONNS" "${timing[@]}"
    done
    if [ "$budget" = "$flood_last" ]; then
        say "scrape while $FLOOD_PUSHERS connections flood at $budget: $RUNS x ${SECONDS_PER_RUN}s"
        for _ in $(seq "$RUNS"); do
            lg flood_scrape gw flood "${fl[@]}" -c "$FLOOD_PUSHERS" --scrapers 1 "${timing[@]}"
        done
        flood_hwm=$(awk '/^VmHWM:/ { print $2 / 1024 }' "/proc/$lg_pid/status" 2>/dev/null || true)
    fi
    kill -TERM "$lg_pid" 2>/dev/null || true
    wait "$lg_pid" 2>/dev/null || true
    lg_pid=""
done

hwm() { awk '/^VmHWM:/ { print $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true; }
rss() { awk '/^VmRSS:/ { print $2 / 1024 }' "/proc/$1/status" 2>/dev/null || true; }
# What the gateway's resident pages are at the end: the binary's (file) and
# its own (anonymous: cache, rendered page, buffers).
rollup() { awk -v k="$2:" '$1 == k { print $2 }' "/proc/$1/smaps_rollup" 2>/dev/null || true; }
gw_file_kb=$(( $(rollup "$gw_pid" Rss) - $(rollup "$gw_pid" Anonymous) ))
gw_anon_kb=$(rollup "$gw_pid" Anonymous)
gw_cache_used=$(
    exec 3<>"/dev/tcp/127.0.0.1/$gw_port" &&
        printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 &&
        awk '$1 == "push_gateway_cache_bytes" { print $2 }' <&3
) || gw_cache_used="?"
gw_hwm=$(hwm "$gw_pid")
gw_rss=$(rss "$gw_pid")
pgw_hwm=""
pgw_rss=""
if [ "$have_pgw" = 1 ]; then
    pgw_hwm=$(hwm "$pgw_pid")
    pgw_rss=$(rss "$pgw_pid")
fi
[ -n "${BENCH_RESULTS:-}" ] && cp "$results" "$BENCH_RESULTS"

# ---- the table -------------------------------------------------------------------
# Median of FIELD over the runs of WORKLOAD against SERVER ("" if none).
med() { # workload server field
    awk -v w="$1" -v s="$2" -v f="$3" '
        $1 == w && $2 == s {
            for (i = 3; i <= NF; i++) {
                eq = index($i, "=")
                if (substr($i, 1, eq - 1) == f) print substr($i, eq + 1)
            }
        }' "$results" | sort -g | awk '
        { v[NR] = $1 }
        END {
            if (NR == 0) print ""
            else if (NR % 2) print v[(NR + 1) / 2]
            else print (v[NR / 2] + v[NR / 2 + 1]) / 2
        }'
}

# A number for people: DIGITS decimals, or k/M from 10^4/10^6 up.
num() { # value digits
    awk -v v="$1" -v d="$2" 'BEGIN {
        if (v == "") { print "-"; exit }
        if (v >= 1e6) printf "%.2f M\n", v / 1e6
        else if (v >= 1e4) printf "%.1f k\n", v / 1e3
        else printf ("%." d "f\n", v)
    }'
}

# push-gateway / Pushgateway, as "12.3x" or "1/4.5".
ratio() { # a b
    awk -v a="$1" -v b="$2" 'BEGIN {
        if (a == "" || b == "" || a + 0 == 0 || b + 0 == 0) { print "-"; exit }
        r = a / b
        if (r >= 100) printf "%.0fx\n", r
        else if (r >= 1) printf "%.1fx\n", r
        else if (r >= 0.01) printf "1/%.1f\n", 1 / r
        else printf "1/%.0f\n", 1 / r
    }'
}

line() { printf '%-44s %13s %13s %9s %10s\n' "$@"; }
row() { # label gw pgw digits goal
    line "$1" "$(num "$2" "$4")" "$(num "$3" "$4")" "$(ratio "$2" "$3")" "${5:-}"
}
# A figure measured by loadgen, divided by DIVISOR (default 1).
fig() { # label workload field digits [goal] [divisor]
    local g p=""
    g=$(scale "$(med "$2" gw "$3")" "${6:-1}")
    [ "$have_pgw" = 1 ] && p=$(scale "$(med "$2" pgw "$3")" "${6:-1}")
    row "$1" "$g" "$p" "$4" "${5:-}"
}
scale() { awk -v v="$1" -v d="$2" 'BEGIN { if (v == "") print ""; else print v / d }'; }
section() { printf '%s\n' "$*"; }

cpu_model=$(awk -F': *' '/^model name/ { print $2; exit }' /proc/cpuinfo)
pgw_version=""
[ "$have_pgw" = 1 ] && pgw_version=$("$PUSHGATEWAY" --version 2>&1 | awk 'NR == 1 { print $3 }')
ended_at=$(date +%s)

echo
echo "machine: ${cpu_model:-unknown CPU}, $(nproc) cores, Linux $(uname -r), load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "CPUs: $cpu_note"
echo "servers:"
echo "  push-gateway: RUST_LOG=warn ${gw_cmd[*]}"
[ "$have_pgw" = 1 ] && echo "  Pushgateway ${pgw_version}: ${pgw_cmd[*]}"
echo "load ($RUNS runs each, ${SECONDS_PER_RUN}s measured, ${WARMUP}s warm-up for http/scrape; push-gateway pushes go to its Unix socket, Pushgateway pushes over TCP):"
echo "  loadgen fill  (--socket SOCK | --tcp ADDR) --series $FILL_SERIES"
echo "  loadgen scrape --addr ADDR -c $CONNS --seconds $SECONDS_PER_RUN --warmup $WARMUP"
echo "  loadgen http  (--socket SOCK | --tcp ADDR) --series 10|1000 -c $CONNS --scrape ADDR --seconds $SECONDS_PER_RUN --warmup $WARMUP"
echo "  loadgen stream --socket SOCK --series $STREAM_SERIES -c $STREAM_CONNS --scrape ADDR --seconds $SECONDS_PER_RUN"
echo "  loadgen flood --socket SOCK --scrape ADDR -c $FLOOD_CONNS --seconds $SECONDS_PER_RUN   (a gateway per budget: --cache-bytes B --ttl 1h; one unmeasured run first fills it)"
echo "  loadgen flood --socket SOCK --scrape ADDR -c $FLOOD_PUSHERS --scrapers 1 --seconds $SECONDS_PER_RUN   (at $flood_last)"
echo "  (loadgen = $loadgen; every run also gets --pid SERVER_PID)"
echo
line "median of $RUNS runs" "push-gateway" "Pushgateway" "ratio" "goal"
line "" "" "${pgw_version:-(missing)}" "gw/PGW" ""
section "stream ingest, $STREAM_CONNS conns x $STREAM_SERIES series (checked by a final scrape)"
fig "  samples/s applied" stream samples_per_s 0 ">= 5 M"
fig "  MiB/s" stream bytes_per_s 1 "" 1048576
fig "  server CPU s per M samples" stream server_cpu_s_per_m_samples 3
fig "  server CPU (cores)" stream server_cores 2
fig "  loadgen CPU (cores)" stream client_cores 2
for n in 10 1000; do
    section "PUT $n series/request, $CONNS keep-alive conns"
    fig "  requests/s" "put$n" requests_per_s 0 ">= 25x"
    fig "  samples/s" "put$n" samples_per_s 0
    fig "  p50 latency (us)" "put$n" p50_us 0
    fig "  p99 latency (us)" "put$n" p99_us 0
    fig "  server CPU s per M samples" "put$n" server_cpu_s_per_m_samples 3
    fig "  server CPU (cores)" "put$n" server_cores 2
    fig "  loadgen CPU (cores)" "put$n" client_cores 2
done
section "scrape of the filled page ($FILL_SERIES series + each server's own), $CONNS keep-alive conns"
fig "  scrapes/s" scrape scrapes_per_s 0 ">= 20x"
fig "  p50 latency (us)" scrape p50_us 0
fig "  p99 latency (us)" scrape p99_us 0
fig "  server CPU us per scrape" scrape server_cpu_us_per_scrape 1
fig "  page bytes" scrape page_bytes 0
fig "  page samples" scrape page_samples 0
fig "  server CPU (cores)" scrape server_cores 2
fig "  loadgen CPU (cores)" scrape client_cores 2
section "new-series flood at a full budget, every line evicts, $FLOOD_CONNS conns"
for budget in "${flood_budgets[@]}"; do
    fig "  lines/s applied, --cache-bytes $budget" "flood_$budget" samples_per_s 0 "2x of 1st"
done
section "scrapes while $FLOOD_PUSHERS conns flood new series, --cache-bytes $flood_last"
fig "  scrape p50 latency (ms)" flood_scrape scrape_p50_us 1 "" 1000
fig "  scrape p99 latency (ms)" flood_scrape scrape_p99_us 1 "< 100" 1000
fig "  scrapes" flood_scrape scrapes 0
fig "  lines/s applied meanwhile" flood_scrape samples_per_s 0
row "  peak RSS of that gateway (MiB)" "$flood_hwm" "" 1
section "memory"
row "  peak RSS, VmHWM (MiB)" "$gw_hwm" "$pgw_hwm" 1 "<= 1/20"
row "  RSS at the end (MiB)" "$gw_rss" "$pgw_rss" 1
printf '  (push-gateway at the end: %s kB of its binary, %s kB of its own: the cache (--cache-bytes %s, %s bytes in use), the last page rendered, buffers)\n' \
    "$gw_file_kb" "$gw_anon_kb" "$CACHE_BYTES" "$gw_cache_used"
if [ "$have_pgw" = 1 ]; then
    best=$(med put1000 pgw samples_per_s)
    echo
    echo "stream ingest is $(ratio "$(med stream gw samples_per_s)" "$best") the Pushgateway's fastest push (PUT of 1000 series: $(num "$best" 0) samples/s)."
fi
echo "ratio = push-gateway / Pushgateway: above 1 is better for rates; below 1 is better for latency, CPU and memory."
echo "bench took $((ended_at - started_at)) s (build included)."

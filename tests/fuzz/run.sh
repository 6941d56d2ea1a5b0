#!/usr/bin/env bash
# Runs every fuzz target of push-gateway for a bounded time.
#
#   tests/fuzz/run.sh [SECONDS]        each target for SECONDS (default 60)
#
# Environment:
#   FUZZ_TARGETS="a b"      run only these targets (default: all of them)
#   FUZZ_SANITIZER=none     build without AddressSanitizer (about twice as
#                           fast; the gateway itself has no unsafe code)
#   PUSH_GATEWAY_FUZZ_LENIENT=1
#                           tolerate the known, reported defects listed in
#                           tests/fuzz_regressions.rs, to look past them
#
# Installs cargo-fuzz (crates.io) when it is missing; needs the nightly
# toolchain (`rustup toolchain install nightly`). Builds the targets with
# optimizations, debug assertions and overflow checks, then runs each one
# on a scratch copy of its seed corpus (tests/fuzz/corpus/TARGET): new
# corpus entries stay in a temporary directory, so the repository is left
# as it was. Only a crash is kept: the input and its minimized form are
# copied to tests/fuzz/artifacts/TARGET/ (ignored by git), the minimized
# input and the panic message are printed, and the script exits 1.
set -euo pipefail

seconds=${1:-60}
case $seconds in
'' | *[!0-9]*)
	echo "usage: $0 [SECONDS]" >&2
	exit 2
	;;
esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
cd "$root"

targets=${FUZZ_TARGETS:-"exposition_line protobuf http_request cache_ops decompress snapshot"}
sanitizer=${FUZZ_SANITIZER:-address}

if ! rustup run nightly rustc --version >/dev/null 2>&1; then
	echo "fuzzing needs the nightly toolchain: rustup toolchain install nightly" >&2
	exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
	echo "installing cargo-fuzz" >&2
	cargo install cargo-fuzz --locked
fi

echo "building fuzz targets (sanitizer: $sanitizer)" >&2
cargo +nightly fuzz build --fuzz-dir tests/fuzz -s "$sanitizer" >&2
bin_dir=tests/fuzz/target/x86_64-unknown-linux-gnu/release

work=$(mktemp -d "${TMPDIR:-/tmp}/push-gateway-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

status=0
summary=""
for target in $targets; do
	bin=$bin_dir/$target
	seeds=tests/fuzz/corpus/$target
	if [[ ! -x $bin ]]; then
		echo "no such fuzz target: $target" >&2
		exit 2
	fi
	mkdir -p "$work/$target/corpus" "$work/$target/artifacts"
	log=$work/$target/log
	echo "== $target: ${seconds}s" >&2
	set +e
	"$bin" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
		-rss_limit_mb=1024 -malloc_limit_mb=512 \
		-artifact_prefix="$work/$target/artifacts/" \
		"$work/$target/corpus" "$seeds" >"$log" 2>&1
	rc=$?
	set -e
	execs=$(awk '/^stat::number_of_executed_units:/ { print $2 }' "$log")
	rate=$(awk '/^stat::average_exec_per_sec:/ { print $2 }' "$log")
	corpus=$(find "$work/$target/corpus" "$seeds" -type f | wc -l)
	crash=$(find "$work/$target/artifacts" -type f | head -n 1)
	if [[ $rc -eq 0 && -z $crash ]]; then
		result=ok
	else
		status=1
		result="FAILED (exit $rc)"
		keep=tests/fuzz/artifacts/$target
		mkdir -p "$keep"
		echo "--- $target failed; last lines of its log:" >&2
		grep -v '^#[0-9]' "$log" | grep -v '^    #' | tail -n 25 >&2
		if [[ -n $crash ]]; then
			name=$(basename "$crash")
			cp "$crash" "$keep/$name"
			min=$keep/$name.min
			"$bin" -minimize_crash=1 -max_total_time=30 -runs=20000 \
				-exact_artifact_path="$min" "$crash" >"$work/$target/minimize.log" 2>&1 || true
			[[ -f $min ]] || cp "$crash" "$min"
			echo "--- crash input: $keep/$name; minimized: $min" >&2
			echo "--- minimized input, escaped:" >&2
			python3 -c 'import sys; print(repr(open(sys.argv[1], "rb").read()))' "$min" >&2 ||
				od -c "$min" | head -n 20 >&2
			echo "--- reproduce: $bin $min" >&2
			"$bin" "$min" 2>&1 | grep -m 3 -E "panicked at|^thread '" -A 3 >&2 || true
		fi
	fi
	summary+=$(printf '%-16s %12s execs %8s/s %6s corpus files  %s' \
		"$target" "${execs:-?}" "${rate:-?}" "$corpus" "$result")$'\n'
done

echo
echo "fuzzing, ${seconds}s per target:"
printf '%s' "$summary"
exit $status

//! The load generator (examples/loadgen.rs) and the benchmark built on it
//! (examples/bench.sh, `make bench`), run for real:
//!
//! - `loadgen_reports_what_the_gateway_applied`: every mode against the
//!   real gateway exits 0 with `errors=0`, a positive rate and, for
//!   `stream` and `http`, `verified=yes:N` for every series; the page then
//!   holds the values loadgen's counts imply (values count up from 10^9
//!   per round or request, so the last value of each connection follows
//!   from how many samples or requests it reported).
//! - `loadgen_floods_a_full_budget_and_scrapes_meanwhile`: `flood` writes
//!   never-seen series into a full budget (every line evicts) while a
//!   scraper scrapes; clean, each connection's last series on the page,
//!   scrape latencies reported, and the gateway counts budget evictions.
//! - `loadgen_fails_when_the_check_does_not_hold`: a budget too small for
//!   the pushes gives exit status 1 and the reason (413 for `http`, a
//!   failed final check for `stream`), so the checks above are not vacuous.
//! - `make_bench_runs_end_to_end_and_prints_the_table`: examples/bench.sh
//!   with tiny settings builds, measures both servers, prints every row of
//!   its table with numbers, and leaves none of its processes running.
//!
//! Tools: `rustc` (loadgen is std only and built straight from its source,
//! as `cargo test` does not build examples), and for the bench `bash`,
//! `cargo` and the Prometheus Pushgateway (`prometheus-pushgateway`, from
//! tests/e2e/install.sh); a missing one fails the test, it never skips.
//! No assertion is about speed: rates only have to be above zero.

mod common;
use common::tools::*;
use common::*;

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Every sample value loadgen writes has ten digits, counting up from here
/// (VALUE_BASE in examples/loadgen.rs).
const VALUE_BASE: u64 = 1_000_000_000;

/// Bound for one loadgen run: half a second of load, one scrape to check,
/// and its own 30 s I/O timeout if the gateway stopped answering.
const LOADGEN_LIMIT: Duration = Duration::from_secs(60);

/// Bound for the whole bench: two release builds (the host's and, when
/// installed, the musl one) from scratch, then a few seconds of load.
const BENCH_LIMIT: Duration = Duration::from_secs(600);

fn example(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
}

/// Runs `cmd` at most `limit`; its output.
fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    run_in_group(cmd, limit).1
}

/// Runs `cmd` in a process group of its own, at most `limit`: the group's
/// id (the child's pid) and the output. On time-out the whole group gets
/// SIGTERM (bench.sh stops what it started on it), then SIGKILL, and the
/// test fails with what was printed so far.
fn run_in_group(cmd: &mut Command, limit: Duration) -> (u32, Output) {
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0)
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {cmd:?}: {e}"));
    let pgid = child.id();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    if let Ok(out) = rx.recv_timeout(limit) {
        return (pgid, out.unwrap());
    }
    let signal_group = |signal: &str| {
        let _ = Command::new("kill")
            .args([signal, "--", &format!("-{pgid}")])
            .status();
    };
    signal_group("-TERM");
    let out = rx.recv_timeout(Duration::from_secs(10)).ok();
    signal_group("-KILL");
    let out = out.or_else(|| rx.recv_timeout(Duration::from_secs(5)).ok());
    panic!(
        "{cmd:?} ran longer than {limit:?}\n{}",
        out.and_then(Result::ok)
            .map(|o| describe(&o))
            .unwrap_or_default()
    );
}

// ---------------------------------------------------------------------------
// examples/loadgen.rs

/// Compiles examples/loadgen.rs with `rustc -O` (optimised, as bench.sh
/// runs it) into a private directory; the directory keeps the binary alive.
fn build_loadgen() -> (TempDir, PathBuf) {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let dir = TempDir::new("loadgen");
    let bin = dir.path().join("loadgen");
    let out = run_bounded(
        Command::new(&rustc)
            .args(["-O", "--edition", "2024", "--crate-name", "loadgen", "-o"])
            .arg(&bin)
            .arg(example("loadgen.rs")),
        scaled(Duration::from_secs(120)),
    );
    assert!(
        out.status.success(),
        "rustc examples/loadgen.rs: {}",
        describe(&out)
    );
    (dir, bin)
}

/// One loadgen run: its output, and the `key=value` pairs of its `mode=`
/// line (the test fails when there is none).
struct Run {
    out: Output,
    fields: BTreeMap<String, String>,
}

impl Run {
    fn field(&self, key: &str) -> &str {
        self.fields
            .get(key)
            .unwrap_or_else(|| panic!("no {key}= in loadgen's output: {}", describe(&self.out)))
    }

    fn number(&self, key: &str) -> f64 {
        let v = self.field(key);
        v.parse()
            .unwrap_or_else(|_| panic!("{key}={v} is not a number: {}", describe(&self.out)))
    }

    /// Exit 0, `errors=0` and a rate above zero under `rate`.
    fn assert_clean(&self, rate: &str) {
        assert!(self.out.status.success(), "{}", describe(&self.out));
        assert_eq!(self.field("errors"), "0", "{}", describe(&self.out));
        assert!(self.number(rate) > 0.0, "{}", describe(&self.out));
    }
}

/// Runs `loadgen MODE FLAGS... ADDRESSES...`: the mode and its numeric
/// flags as one string, the socket and addresses apart (paths may hold
/// spaces).
fn loadgen(bin: &Path, mode_and_flags: &str, addresses: &[&str]) -> Run {
    let args: Vec<&str> = mode_and_flags
        .split_whitespace()
        .chain(addresses.iter().copied())
        .collect();
    let out = run_bounded(Command::new(bin).args(&args), scaled(LOADGEN_LIMIT));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find(|l| l.starts_with("mode="))
        .unwrap_or_else(|| panic!("loadgen {args:?}: no mode= line: {}", describe(&out)));
    let fields = line
        .split_whitespace()
        .filter_map(|kv| kv.split_once('='))
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    Run { out, fields }
}

/// The samples of metric `name` on `page`: (labels, value).
fn samples(page: &str, name: &str) -> Vec<(BTreeMap<String, String>, String)> {
    let prefix = format!("{name}{{");
    page.lines()
        .filter_map(|l| {
            let (labels, value) = l.strip_prefix(&prefix)?.rsplit_once("} ")?;
            // loadgen's label values hold no `,`, `"` or `=`.
            let labels = labels
                .split(',')
                .filter_map(|p| {
                    let (k, v) = p.split_once('=')?;
                    Some((k.to_string(), v.trim_matches('"').to_string()))
                })
                .collect();
            Some((labels, value.to_string()))
        })
        .collect()
}

/// Checks that the page holds exactly `conns × per_conn` samples of
/// `metric`, grouped by label `conn_label`, each connection's all equal to
/// one loadgen value, and returns how many rounds (stream) or requests
/// (http) those values account for: the sum over connections of
/// `value - VALUE_BASE + 1`.
fn rounds_on_page(
    page: &str,
    metric: &str,
    conn_label: &str,
    conns: usize,
    per_conn: usize,
) -> u64 {
    let mut by_conn: BTreeMap<usize, (usize, Option<u64>)> = BTreeMap::new();
    for (labels, value) in samples(page, metric) {
        let conn: usize = labels[conn_label].parse().unwrap();
        let value: u64 = value
            .parse()
            .unwrap_or_else(|_| panic!("{metric} {labels:?} holds {value}"));
        let entry = by_conn.entry(conn).or_default();
        entry.0 += 1;
        // Every series of a connection is written in each round (stream)
        // or request (http), so they all end on that connection's last value.
        assert_eq!(
            *entry.1.get_or_insert(value),
            value,
            "{metric} of {conn_label}={conn} differ"
        );
    }
    assert_eq!(
        by_conn.keys().copied().collect::<Vec<_>>(),
        (0..conns).collect::<Vec<_>>(),
        "{metric}: one group per connection:\n{page}"
    );
    by_conn
        .iter()
        .map(|(conn, (n, value))| {
            assert_eq!(*n, per_conn, "{metric} series of {conn_label}={conn}");
            let value = value.unwrap();
            assert!(value >= VALUE_BASE, "{metric}: {value} was never written");
            value - VALUE_BASE + 1
        })
        .sum()
}

/// The stream run's series hold the last values it wrote: its 200 series
/// over 2 connections, 100 each, and `samples` = rounds × 100.
fn check_stream(page: &str, run: &Run) {
    let rounds = rounds_on_page(page, "loadgen_stream", "conn", 2, 100);
    assert_eq!(
        rounds * 100,
        run.number("samples") as u64,
        "stream's samples against the values on the page"
    );
}

/// The http run's groups hold the last values it pushed: `series` per
/// connection (instance), one request per value.
fn check_http(page: &str, run: &Run, series: usize) {
    let requests = rounds_on_page(page, "loadgen_http", "instance", 2, series);
    assert_eq!(requests, run.number("requests") as u64);
    assert_eq!(
        requests * series as u64,
        run.number("samples") as u64,
        "http's samples are its requests times its series"
    );
    for (labels, _) in samples(page, "loadgen_http") {
        assert_eq!(labels["job"], "loadgen", "{labels:?}");
    }
}

/// fill pushes `loadgen_fill{series="I"} I` to job `loadgen_fill`.
fn check_fill(page: &str) {
    let mut fill = samples(page, "loadgen_fill");
    fill.sort_by_key(|(l, _)| l["series"].parse::<usize>().unwrap());
    assert_eq!(fill.len(), 100, "{page}");
    for (i, (labels, value)) in fill.iter().enumerate() {
        assert_eq!(labels["series"], i.to_string());
        assert_eq!(labels["job"], "loadgen_fill");
        assert_eq!(*value, i.to_string(), "{labels:?}");
    }
}

#[test]
fn loadgen_reports_what_the_gateway_applied() {
    let (_dir, bin) = build_loadgen();
    // Room for every series below (about 150 KB of page); an hour's TTL so
    // nothing expires between a run and the checks after it.
    let gw = Gateway::start(&["--cache-bytes", "1MiB", "--ttl", "1h"]);
    let socket = gw.socket.to_str().unwrap();
    let addr = gw.addr.to_string();

    let fill = loadgen(&bin, "fill --series 100", &["--socket", socket]);
    assert!(fill.out.status.success(), "{}", describe(&fill.out));
    assert_eq!(fill.field("errors"), "0");
    assert_eq!(fill.field("status"), "200");
    check_fill(&gw.scrape());

    let stream = loadgen(
        &bin,
        "stream --series 200 -c 2 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    stream.assert_clean("samples_per_s");
    assert_eq!(stream.field("verified"), "yes:200");
    check_stream(&gw.scrape(), &stream);

    // Each connection PUTs to its own group (instance = connection), so
    // the page holds series × connections.
    let http10 = loadgen(
        &bin,
        "http --series 10 -c 2 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    http10.assert_clean("requests_per_s");
    assert!(http10.number("samples_per_s") > 0.0);
    assert_eq!(http10.field("verified"), "yes:20");
    // Checked now: the next run's PUTs replace these groups.
    check_http(&gw.scrape(), &http10, 10);

    let http1000 = loadgen(
        &bin,
        "http --series 1000 -c 2 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    http1000.assert_clean("requests_per_s");
    assert!(http1000.number("samples_per_s") > 0.0);
    assert_eq!(http1000.field("verified"), "yes:2000");

    let scrape = loadgen(&bin, "scrape -c 2 --seconds 0.5", &["--addr", &addr]);
    scrape.assert_clean("scrapes_per_s");

    // Scrapes change nothing, so the page now is the one loadgen measured,
    // and it still holds every run's last values.
    let page = gw.scrape();
    let sample_lines = page
        .lines()
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .count();
    assert_eq!(scrape.number("page_samples") as usize, sample_lines);
    assert_eq!(scrape.number("page_bytes") as usize, page.len());
    check_fill(&page);
    check_stream(&page, &stream);
    check_http(&page, &http1000, 1000);
}

#[test]
fn loadgen_floods_a_full_budget_and_scrapes_meanwhile() {
    let (_dir, bin) = build_loadgen();
    // With its own metrics, for the evictions counted.
    let gw = Gateway::start_full(&["--cache-bytes", "10KiB", "--ttl", "1h"]);
    let socket = gw.socket.to_str().unwrap();
    let addr = gw.addr.to_string();
    let flood = loadgen(
        &bin,
        "flood -c 2 --scrapers 1 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    flood.assert_clean("samples_per_s");
    assert!(
        flood.field("verified").starts_with("yes:"),
        "{}",
        describe(&flood.out)
    );
    assert!(flood.number("scrapes") >= 1.0, "{}", describe(&flood.out));
    assert!(flood.number("scrape_p99_us") > 0.0);
    let page = gw.scrape();
    let evicted: f64 = page
        .lines()
        .find_map(|l| l.strip_prefix("push_gateway_evictions_total{reason=\"budget\"} "))
        .unwrap_or_else(|| panic!("no budget evictions on the page:\n{page}"))
        .parse()
        .unwrap();
    // 10 KiB holds about a hundred of these series: nearly every line evicted.
    assert!(
        evicted + 200.0 >= flood.number("samples"),
        "{evicted} evicted of {} lines",
        flood.number("samples")
    );
}

#[test]
fn loadgen_fails_when_the_check_does_not_hold() {
    let (_dir, bin) = build_loadgen();
    // 10 KiB holds neither a PUT of 1000 series (about 33 KB) nor 200
    // stream series; set here so a new default does not change the test.
    let gw = Gateway::start(&["--cache-bytes", "10KiB"]);
    let socket = gw.socket.to_str().unwrap();
    let addr = gw.addr.to_string();

    // Every PUT is refused: status 1 (not 2, a usage error) and why.
    let http = loadgen(
        &bin,
        "http --series 1000 -c 2 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    assert_eq!(http.out.status.code(), Some(1), "{}", describe(&http.out));
    assert!(http.number("errors") >= 1.0, "{}", describe(&http.out));
    assert!(
        String::from_utf8_lossy(&http.out.stdout).contains("answered 413"),
        "{}",
        describe(&http.out)
    );
    assert!(samples(&gw.scrape(), "loadgen_http").is_empty());

    // The stream's lines are all taken, but the cache evicts most series
    // before the final scrape, which then cannot find their last values.
    let stream = loadgen(
        &bin,
        "stream --series 200 -c 2 --seconds 0.5",
        &["--socket", socket, "--scrape", &addr],
    );
    assert_eq!(
        stream.out.status.code(),
        Some(1),
        "{}",
        describe(&stream.out)
    );
    assert_eq!(stream.field("verified"), "no", "{}", describe(&stream.out));
    assert!(
        String::from_utf8_lossy(&stream.out.stdout).contains("check failed"),
        "{}",
        describe(&stream.out)
    );
}

// ---------------------------------------------------------------------------
// examples/bench.sh

/// Every process as (pid, process group, command line with spaces).
fn processes() -> Vec<(u32, u32, String)> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Some(pid) = entry.file_name().to_str().and_then(|p| p.parse().ok()) else {
            continue;
        };
        // Fields after the `(comm)`: state, ppid, pgrp.
        let Some(pgrp) = std::fs::read_to_string(entry.path().join("stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')?
                    .1
                    .split_whitespace()
                    .nth(2)?
                    .parse()
                    .ok()
            })
        else {
            continue;
        };
        let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        all.push((pid, pgrp, cmdline));
    }
    all
}

/// The cells of the table row whose label starts with `label`, cut at the
/// right edges of the header's right-aligned columns: (push-gateway,
/// Pushgateway, ratio). One entry per matching row.
fn rows(table: &str, label: &str) -> Vec<(String, String, String)> {
    let header = table
        .lines()
        .find(|l| l.starts_with("median of"))
        .unwrap_or_else(|| panic!("no header line:\n{table}"));
    let edge = |title: &str| header.find(title).unwrap() + title.len();
    let (gw_end, pgw_end, ratio_end) = (edge("push-gateway"), edge("Pushgateway"), edge("ratio"));
    table
        .lines()
        .filter(|l| l.trim_start().starts_with(label))
        .map(|l| {
            let l = format!("{l:ratio_end$}");
            let from = l.find(label).unwrap() + label.len();
            (
                l[from..gw_end].trim().to_string(),
                l[gw_end..pgw_end].trim().to_string(),
                l[pgw_end..ratio_end].trim().to_string(),
            )
        })
        .collect()
}

/// A number as the table prints it: `123`, `0.4`, `45.6 k`, `1.23 M`.
fn is_positive_number(cell: &str) -> bool {
    let number = cell
        .strip_suffix(" k")
        .or(cell.strip_suffix(" M"))
        .unwrap_or(cell);
    number.parse::<f64>().is_ok_and(|n| n > 0.0)
}

/// A ratio as the table prints it: `12.3x`, `150x`, `1/4.5`.
fn is_ratio(cell: &str) -> bool {
    cell.strip_suffix('x')
        .or(cell.strip_prefix("1/"))
        .is_some_and(is_positive_number)
}

#[test]
fn make_bench_runs_end_to_end_and_prints_the_table() {
    let bash = require_tool("bash");
    let pushgateway = require_tool("prometheus-pushgateway");
    let results_dir = TempDir::new("bench-results");
    let results = results_dir.path().join("results");
    // A target dir of its own: the outer cargo holds the lock on its own
    // while tests run. Kept under cargo's tmp dir, so later runs rebuild
    // only what changed and `cargo clean` removes it.
    let target_dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-target");
    let (pgid, out) = run_in_group(
        Command::new(&bash)
            .arg(example("bench.sh"))
            .env("BENCH_SECONDS", "0.3")
            .env("BENCH_WARMUP", "0")
            .env("BENCH_RUNS", "1")
            .env("BENCH_CONNS", "2")
            .env("BENCH_STREAM_CONNS", "2")
            .env("BENCH_STREAM_SERIES", "100")
            .env("BENCH_FLOOD_CONNS", "2")
            .env("BENCH_FLOOD_PUSHERS", "4")
            .env("BENCH_RESULTS", &results)
            .env("PUSHGATEWAY", &pushgateway)
            .env("CARGO_TARGET_DIR", &target_dir),
        scaled(BENCH_LIMIT),
    );
    if !out.status.success() {
        // Whatever it left must not outlive the test.
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        panic!("bench.sh: {}", describe(&out));
    }
    let table = String::from_utf8_lossy(&out.stdout);

    // Nothing it started is left: no process in its group, none naming its
    // temporary directory or the Pushgateway's address (both printed in
    // the table's header), and the directory itself is gone.
    let arg_after = |line_start: &str, flag: &str| -> String {
        let line = table
            .lines()
            .find(|l| l.trim_start().starts_with(line_start))
            .unwrap_or_else(|| panic!("no `{line_start}` line:\n{table}"));
        let rest = &line[line
            .find(flag)
            .unwrap_or_else(|| panic!("no {flag} in {line}"))
            + flag.len()..];
        rest.split_whitespace().next().unwrap().to_string()
    };
    let socket = PathBuf::from(arg_after("push-gateway:", "--socket "));
    let tmp = socket.parent().unwrap().to_str().unwrap().to_string();
    assert!(
        tmp.contains("/push-gateway-bench."),
        "socket {} not in the bench's own directory",
        socket.display()
    );
    assert!(!Path::new(&tmp).exists(), "{tmp} left behind");
    let pgw_listen = format!(
        "--web.listen-address={}",
        arg_after("Pushgateway", "--web.listen-address=")
    );
    let left: Vec<_> = processes()
        .into_iter()
        .filter(|(_, group, cmdline)| {
            *group == pgid || cmdline.contains(&tmp) || cmdline.contains(&pgw_listen)
        })
        .collect();
    if !left.is_empty() {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{pgid}")])
            .status();
        panic!("bench.sh left processes running: {left:?}");
    }

    // Every run's own line: clean, and checked where loadgen checks.
    let lines = std::fs::read_to_string(&results).unwrap();
    assert_eq!(
        lines.lines().count(),
        11,
        "scrape, put10, put1000 on both servers, stream on one, flood at \
         three budgets and flood with scrapes on one:\n{lines}"
    );
    for line in lines.lines() {
        assert!(line.contains(" errors=0 "), "{line}");
        if !line.starts_with("scrape ") {
            assert!(line.contains(" verified=yes:"), "{line}");
        }
    }

    for (label, count, both) in [
        ("samples/s applied", 1, false),
        ("requests/s", 2, true),
        ("scrapes/s", 1, true),
        ("lines/s applied, --cache-bytes 10KiB", 1, false),
        ("lines/s applied, --cache-bytes 1MiB", 1, false),
        ("lines/s applied, --cache-bytes 16MiB", 1, false),
        ("scrape p99 latency (ms)", 1, false),
        ("lines/s applied meanwhile", 1, false),
        ("peak RSS, VmHWM (MiB)", 1, true),
    ] {
        let found = rows(&table, label);
        assert_eq!(found.len(), count, "rows `{label}`:\n{table}");
        for (gw, pgw, ratio) in found {
            assert!(
                is_positive_number(&gw),
                "`{label}` push-gateway `{gw}`:\n{table}"
            );
            if both {
                assert!(
                    is_positive_number(&pgw),
                    "`{label}` Pushgateway `{pgw}`:\n{table}"
                );
                assert!(is_ratio(&ratio), "`{label}` ratio `{ratio}`:\n{table}");
            }
        }
    }
}

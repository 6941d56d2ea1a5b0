//! The official client libraries side by side with the Prometheus
//! Pushgateway (Debian's `prometheus-pushgateway`, started by the test on
//! a free loopback port with persistence off): each client run builds one registry and pushes
//! it to push-gateway through the socat bridge, then to the Pushgateway;
//! after every step both pages are parsed into (family, type, help, series,
//! labels, value) by tests/common/page.rs and must be equal, with both
//! gateways' own metrics left out, push times masked to "zero"/"set", and
//! the values (for a few runtime families, the label sets) of the clients'
//! process and runtime metrics masked, since they change between the two
//! collections.
//! - `python_client_pages_match_the_pushgateway`: the newest
//!   `prometheus_client` from PyPI: Counter, Gauge, Histogram with the
//!   default buckets and with its own, Summary, Info, Enum, the process,
//!   platform and gc collectors; `push_to_gateway`, `pushadd_to_gateway`,
//!   `delete_from_gateway`.
//! - `python_client_gzip_pages_match_the_pushgateway` and
//!   `python_client_snappy_pages_match_the_pushgateway`: the same with
//!   `compression='gzip'` (to both) and `compression='snappy'` (framed, to
//!   push-gateway; Debian's Pushgateway 1.5.1 cannot decode it, so it gets
//!   the same registry uncompressed).
//! - `node_client_pages_match_the_pushgateway` and
//!   `node_client_gzip_pages_match_the_pushgateway`: Node's `prom-client`
//!   from npm, its `Pushgateway` class (`push`, `pushAdd`, `delete`; a
//!   chunked body) with `collectDefaultMetrics`, a counter, a gauge, a
//!   histogram with the default buckets and a summary; then `push` with
//!   `Content-Encoding: gzip`.
//! - `go_client_text_pages_match_the_pushgateway` and
//!   `go_client_protobuf_pages_match_the_pushgateway`: client_golang as
//!   text (`Format(expfmt.FmtText)`) and as delimited protobuf: every metric type, default and exponential buckets (`1e-05`),
//!   the Go and process collectors, Push/Add/Delete.
//! - `page_comparison_sees_what_prometheus_would_store_differently`: the
//!   comparison itself fails on a changed `le` spelling, value, help, type,
//!   label, a missing or repeated series, a failed push, and ignores label
//!   order, number spelling, push times and the gateways' own metrics.
//!
//! The tools come from `tests/e2e/install.sh` (see tests/e2e_clients.rs);
//! a missing one fails the test with a message naming that script.

mod common;
use common::clients::*;
use common::page::{Mask, differences, normalise};
use common::pushgateway::Pushgateway;
use common::tools::*;
use common::*;

use std::process::Command;
use std::time::{Duration, Instant};

/// push-gateway behind its bridge, and the Pushgateway, both empty.
struct Pair {
    gw: Gateway,
    bridge: Bridge,
    pgw: Pushgateway,
}

impl Pair {
    /// The gateway with its own metrics on the page (the comparison must
    /// leave them out, as a user's scrape has them) and a cache large
    /// enough for a client's default metrics.
    fn start() -> Pair {
        let gw = Gateway::start_full(&["--cache-bytes", "1MiB"]);
        let bridge = Bridge::start(&gw.socket);
        let pgw = Pushgateway::start();
        Pair { gw, bridge, pgw }
    }

    /// Both pages, normalised, must be equal after `step`. The Pushgateway
    /// applies a DELETE after answering 202, so the pages are compared
    /// again for a while before the difference fails the test.
    fn assert_same_pages(&self, step: &str, mask: &dyn Fn(&str) -> Mask) {
        let deadline = Instant::now() + WAIT;
        loop {
            let ours = self.gw.scrape();
            let theirs = self.pgw.scrape();
            let a = normalise(&ours, mask)
                .unwrap_or_else(|e| panic!("after {step}: push-gateway's page: {e}\n{ours}"));
            let b = normalise(&theirs, mask)
                .unwrap_or_else(|e| panic!("after {step}: the Pushgateway's page: {e}\n{theirs}"));
            let diffs = differences("push-gateway", &a, "Pushgateway", &b);
            if diffs.is_empty() {
                assert!(
                    !a.is_empty() || step.contains("delete"),
                    "after {step}: both pages are empty of pushed series:\n{ours}"
                );
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "after {step}: the pages differ in {} series (masked values shown as such):\n{}\n\
                     --- push-gateway page:\n{ours}\n--- Pushgateway page:\n{theirs}",
                    diffs.len(),
                    diffs.join("\n")
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

/// Families of the default collectors of Python's client whose values
/// change between two collections: process CPU time, memory, open files,
/// and the garbage collector's counts.
fn python_mask(family: &str) -> Mask {
    if family.starts_with("process_") || family.starts_with("python_gc_") {
        Mask::Value
    } else {
        Mask::Nothing
    }
}

/// Runs `py_pusher.py STEP` against both gateways: push-gateway with
/// `ours` (a compression, or none), the Pushgateway with `theirs`.
fn py_both(pair: &Pair, step: &str, ours: Option<&str>, theirs: Option<&str>) {
    let spec = |c: Option<&str>, addr: String| match c {
        Some(c) => format!("{c}@{addr}"),
        None => addr,
    };
    let mut cmd = Command::new(client_python());
    cmd.arg(clients_dir().join("py_pusher.py"))
        .arg(step)
        .arg(spec(ours, pair.bridge.addr()))
        .arg(spec(theirs, pair.pgw.addr.to_string()));
    run_client(cmd, &format!("py_pusher.py {step}"));
}

/// The newest prometheus_client: every metric type (Info and Enum
/// included, a histogram with the default buckets, which the client writes
/// `le="1.0"`), its default collectors, PUT, POST and DELETE; plain text.
#[test]
fn python_client_pages_match_the_pushgateway() {
    let pair = Pair::start();
    py_both(&pair, "every", None, None);
    pair.assert_same_pages("push_to_gateway of every type", &python_mask);
    py_both(&pair, "everyadd", None, None);
    pair.assert_same_pages("pushadd_to_gateway", &python_mask);
    py_both(&pair, "push", None, None);
    pair.assert_same_pages("push_to_gateway of a second group", &python_mask);
    py_both(&pair, "everydel", None, None);
    pair.assert_same_pages("delete_from_gateway", &python_mask);
}

/// `push_to_gateway(..., compression='gzip')` to both, then a POST with
/// gzip over it.
#[test]
fn python_client_gzip_pages_match_the_pushgateway() {
    let pair = Pair::start();
    py_both(&pair, "every", Some("gzip"), Some("gzip"));
    pair.assert_same_pages("push_to_gateway with gzip", &python_mask);
    py_both(&pair, "everyadd", Some("gzip"), Some("gzip"));
    pair.assert_same_pages("pushadd_to_gateway with gzip", &python_mask);
}

/// `push_to_gateway(..., compression='snappy')` (framed snappy, through
/// python-snappy) to push-gateway. Debian's Pushgateway 1.5.1 cannot
/// decode snappy (it answers 400), so its page comes from the same
/// registry pushed uncompressed: the decoded body must store the same.
#[test]
fn python_client_snappy_pages_match_the_pushgateway() {
    let pair = Pair::start();
    py_both(&pair, "every", Some("snappy"), None);
    pair.assert_same_pages("push_to_gateway with snappy", &python_mask);
    py_both(&pair, "everyadd", Some("snappy"), None);
    pair.assert_same_pages("pushadd_to_gateway with snappy", &python_mask);
}

/// Families of prom-client's `collectDefaultMetrics` whose values change
/// between two collections; the active handles', requests' and resources'
/// label sets change too (the first push's socket is still open during the
/// second), and so do the GC histogram's (a kind of collection first seen
/// between the two), so only their type and help are compared. The script
/// forces a collection before the first push, so the GC family is on both.
fn node_mask(family: &str) -> Mask {
    if family.starts_with("nodejs_active_") && !family.ends_with("_total")
        || family == "nodejs_gc_duration_seconds"
    {
        Mask::Labels
    } else if family.starts_with("process_") || family.starts_with("nodejs_") {
        Mask::Value
    } else {
        Mask::Nothing
    }
}

/// Runs `node_pusher.js STEP` against both gateways.
fn node_both(pair: &Pair, step: &str) {
    let node = require_tool("node");
    let mut cmd = Command::new(node);
    cmd.arg("--expose-gc")
        .arg(clients_dir().join("node_pusher.js"))
        .arg(step)
        .arg(pair.bridge.addr())
        .arg(pair.pgw.addr.to_string())
        .env("NODE_PATH", client_node_modules());
    run_client(cmd, &format!("node_pusher.js {step}"));
}

/// Node's prom-client `Pushgateway` class: push() with
/// `collectDefaultMetrics`, a counter, a gauge, a histogram with the
/// default buckets and a summary; pushAdd(); delete(). Node's http client
/// sends the body chunked.
#[test]
fn node_client_pages_match_the_pushgateway() {
    let pair = Pair::start();
    node_both(&pair, "push");
    pair.assert_same_pages("push()", &node_mask);
    node_both(&pair, "pushadd");
    pair.assert_same_pages("pushAdd()", &node_mask);
    node_both(&pair, "delete");
    pair.assert_same_pages("delete()", &node_mask);
}

/// prom-client with `headers: {'Content-Encoding': 'gzip'}`: it gzips the
/// body itself.
#[test]
fn node_client_gzip_pages_match_the_pushgateway() {
    let pair = Pair::start();
    node_both(&pair, "gzip");
    pair.assert_same_pages("push() with gzip", &node_mask);
}

/// The Go runtime's and process collectors' values change between two
/// collections; their label sets do not.
fn go_mask(family: &str) -> Mask {
    if family.starts_with("go_") && !family.starts_with("go_e2e_") || family.starts_with("process_")
    {
        Mask::Value
    } else {
        Mask::Nothing
    }
}

/// Runs `go_pusher -format FORMAT STEP` against both gateways.
fn go_both(go: &GoPusher, pair: &Pair, format: &str, step: &str) {
    let mut cmd = go.command();
    cmd.arg("-format")
        .arg(format)
        .arg(step)
        .arg(pair.bridge.addr())
        .arg(pair.pgw.addr.to_string());
    run_client(cmd, &format!("go_pusher -format {format} {step}"));
}

/// Every step of `go_pusher` in `format`, compared after each.
fn go_steps(format: &str) {
    let go = GoPusher::build();
    let pair = Pair::start();
    for step in [
        "every", "everyadd", "push", "add", "replace", "everydel", "delete",
    ] {
        go_both(&go, &pair, format, step);
        pair.assert_same_pages(&format!("{step} as {format}"), &go_mask);
    }
}

/// client_golang's push package as text (`Format(expfmt.FmtText)`): every
/// metric type, a histogram with the default buckets and one whose bounds
/// Go writes with exponents (`le="1e-05"`), the runtime and process
/// collectors; Push(), Add(), Delete(), and the first group's steps too.
#[test]
fn go_client_text_pages_match_the_pushgateway() {
    go_steps("text");
}

/// The same in the client's default format, delimited protobuf, where the
/// bounds are doubles push-gateway must write as the Pushgateway does.
#[test]
fn go_client_protobuf_pages_match_the_pushgateway() {
    go_steps("protobuf");
}

/// The comparison itself: it sees what Prometheus would store differently
/// and nothing else, so the tests above fail when push-gateway diverges.
#[test]
fn page_comparison_sees_what_prometheus_would_store_differently() {
    let base = "# HELP h Latency.\n# TYPE h histogram\n\
        h_bucket{job=\"j\",le=\"1\"} 2\nh_bucket{job=\"j\",le=\"+Inf\"} 3\n\
        h_sum{job=\"j\"} 4.5\nh_count{job=\"j\"} 3\n\
        # HELP g A gauge.\n# TYPE g gauge\ng{job=\"j\",a=\"x\"} 1000000\n\
        # HELP push_time_seconds T.\n# TYPE push_time_seconds gauge\n\
        push_time_seconds{job=\"j\"} 1796159670.5\n";
    let norm = |page: &str| {
        normalise(page, &|f: &str| {
            if f == "m" { Mask::Value } else { Mask::Nothing }
        })
        .unwrap()
    };
    let same = |a: &str, b: &str| differences("a", &norm(a), "b", &norm(b)).is_empty();
    // The same series, spelt differently: label order, number spelling,
    // the push time, the gateways' own metrics.
    let respelt = base
        .replace("g{job=\"j\",a=\"x\"} 1000000", "g{a=\"x\",job=\"j\"} 1e+06")
        .replace("4.5", "4.50")
        .replace("1796159670.5", "1.7961596711e+09")
        + "# HELP go_goroutines G.\n# TYPE go_goroutines gauge\ngo_goroutines 8\n\
           push_gateway_cache_bytes 10\n";
    assert!(
        same(base, &respelt),
        "{:?}",
        differences("a", &norm(base), "b", &norm(&respelt))
    );
    // What Prometheus would store differently.
    for (what, changed) in [
        ("le spelt 1.0", base.replace("le=\"1\"", "le=\"1.0\"")),
        (
            "a value",
            base.replace("h_sum{job=\"j\"} 4.5", "h_sum{job=\"j\"} 4.25"),
        ),
        ("a help text", base.replace("A gauge.", "A gauge. ")),
        ("a type", base.replace("TYPE g gauge", "TYPE g untyped")),
        ("a label value", base.replace("a=\"x\"", "a=\"y\"")),
        (
            "a missing series",
            base.replace("h_count{job=\"j\"} 3\n", ""),
        ),
        (
            "a repeated series",
            base.to_string() + "g{job=\"j\",a=\"x\"} 1000000\n",
        ),
        (
            "a failed push",
            base.to_string() + "push_failure_time_seconds{job=\"j\"} 1796159670\n",
        ),
        (
            "a pushed go_ metric",
            base.to_string() + "go_goroutines{job=\"j\"} 8\n",
        ),
    ] {
        assert!(
            !same(base, &changed),
            "the comparison misses {what}:\n{changed}"
        );
    }
    // A masked family: its value is not compared, its labels are.
    let masked = "# TYPE m gauge\nm{job=\"j\",k=\"1\"} 5\n";
    assert!(same(masked, &masked.replace(" 5", " 6")));
    assert!(!same(masked, &masked.replace("k=\"1\"", "k=\"2\"")));
}

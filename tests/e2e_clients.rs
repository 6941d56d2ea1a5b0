//! End-to-end tests with the official Prometheus client libraries and
//! server, pushing over HTTP to the real `push-gateway` binary; nothing is
//! mocked. The clients speak TCP, so a `socat` bridge forwards a loopback
//! port to the gateway's push socket, as users of these clients do.
//!
//! - `python_client_push_pushadd_delete`: Python's `prometheus_client`
//!   (`tests/e2e/clients/py_pusher.py`, text format) pushes a gauge, a
//!   counter, a histogram and a summary with `push_to_gateway` (PUT),
//!   `pushadd_to_gateway` (POST) and `delete_from_gateway` (DELETE), for a
//!   job name the client sends as `job@base64/...` and a grouping key with
//!   `instance` and a value with a space. After each step the scraped page
//!   must hold the right values and labels: grouping labels override the
//!   body's, a group without `instance` gets `instance=""` while a sample's
//!   own `instance` stays, PUT replaces the group, POST merges, DELETE
//!   removes it, and `push_time_seconds` is set for the group.
//! - `go_client_protobuf_push_add_delete`: Go's `client_golang` `push`
//!   package (`tests/e2e/clients/go_pusher`, built with Debian's Go and
//!   library) pushes in its default delimited protobuf format with
//!   `Push()` (PUT), `Add()` (POST) and `Delete()` (which requires 202); a
//!   grouping value and a sample label value hold `"` and `\`. The page must
//!   hold the counter, gauge, histogram buckets (in order, `+Inf` last),
//!   `_sum`, `_count` and summary quantiles, and pass `promtool check
//!   metrics`.
//! - `prometheus_honors_pushed_labels_and_sees_the_group_expire`: a real
//!   Prometheus scrapes the gateway every second with `honor_labels: true`;
//!   a group pushed with job="batch", instance="nightly" is queried back
//!   with those labels (not the scrape config's), and after the gateway's
//!   `--ttl` it leaves the page and goes stale in Prometheus.
//! - `promtool_accepts_a_page_of_pushed_groups`: a page holding several
//!   pushed groups, one with a refused push (so a non-zero
//!   `push_failure_time_seconds`), passes `promtool check metrics`.
//!
//!
//! tests/e2e_clients_parity.rs has the same clients side by side with the
//! Prometheus Pushgateway.
//!
//! The tools come from `tests/e2e/install.sh`: Debian's `prometheus`,
//! `prometheus-pushgateway`, `socat`, `golang-go`,
//! `golang-github-prometheus-client-golang-dev` and `nodejs`; the newest
//! `prometheus_client` and `python-snappy` in a virtual environment at
//! `target/e2e-venv` (made with `/usr/bin/python3`, so a stock Debian's
//! system Python is never changed), and `prom-client` in
//! `target/e2e-node`. A missing tool fails the test with a message naming
//! that script; it never skips.

mod common;
use common::clients::*;
use common::tools::*;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------
// The clients

/// Runs `py_pusher.py <bridge> <step>`; fails the test (printing the
/// client's output and the page) unless it exits 0.
fn py_push(python: &Path, bridge: &Bridge, gw: &Gateway, step: &str) {
    let mut cmd = Command::new(python);
    cmd.arg(clients_dir().join("py_pusher.py"))
        .arg(step)
        .arg(bridge.addr());
    let out = run_bounded(cmd, LONG_WAIT, &format!("py_pusher.py {step}"));
    assert!(
        out.status.success(),
        "py_pusher.py {step} failed ({}):\n{}{}\n--- page:\n{}",
        out.status,
        out.stdout,
        out.stderr,
        gw.scrape()
    );
}

// ---------------------------------------------------------------------------
// Reading the page

type Labels = BTreeMap<String, String>;

/// One sample line of the page, label values unescaped.
#[derive(Debug)]
struct Sample {
    name: String,
    labels: Labels,
    value: f64,
}

/// Parses `name{label="value",...} value`; `None` for comments and blank or
/// malformed lines (promtool judges the syntax).
fn parse_sample(line: &str) -> Option<Sample> {
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let end = line.find(['{', ' '])?;
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = Labels::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            r = r.trim_start_matches([',', ' ']);
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=')?;
            let lname = r[..eq].trim().to_string();
            r = r[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let closing = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            };
            r = &r[closing + 1..];
            labels.insert(lname, value);
        }
    }
    let value = rest.trim().split(' ').next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        v => v.parse().ok()?,
    };
    Some(Sample {
        name,
        labels,
        value,
    })
}

fn samples(page: &str) -> Vec<Sample> {
    page.lines().filter_map(parse_sample).collect()
}

/// A label set from `group` plus `extra`.
fn lset(group: &[(&str, &str)], extra: &[(&str, &str)]) -> Labels {
    group
        .iter()
        .chain(extra)
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// `name{labels}` in exposition syntax, for messages.
fn show(name: &str, labels: &Labels) -> String {
    let inner: Vec<String> = labels
        .iter()
        .map(|(k, v)| {
            let v = v
                .replace('\\', "\\\\")
                .replace('"', "\\\"")
                .replace('\n', "\\n");
            format!("{k}=\"{v}\"")
        })
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

/// The value of the series `name` with exactly `labels`, in any label order.
fn get(page: &str, name: &str, labels: &Labels) -> Option<f64> {
    samples(page)
        .into_iter()
        .find(|s| s.name == name && &s.labels == labels)
        .map(|s| s.value)
}

fn close(a: f64, b: f64) -> bool {
    a == b || (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

/// Asserts that the series `name{labels}` is on the page with value `want`.
fn expect(page: &str, name: &str, labels: &Labels, want: f64, step: &str) {
    let series = show(name, labels);
    match get(page, name, labels) {
        Some(got) => assert!(
            close(got, want),
            "after {step}: {series} is {got}, expected {want}; page:\n{page}"
        ),
        None => {
            panic!("after {step}: {series} is not on the page (expected {want}); page:\n{page}")
        }
    }
}

/// Asserts that the page declares `# TYPE family kind`.
fn expect_type(page: &str, family: &str, kind: &str, step: &str) {
    assert!(
        page.lines().any(|l| l == format!("# TYPE {family} {kind}")),
        "after {step}: no `# TYPE {family} {kind}` on the page:\n{page}"
    );
}

/// The samples of `family_bucket` (or `family` with `quantile`) whose labels
/// other than `bound` (`le` or `quantile`) are `group`, in page order:
/// (bound, value).
fn bounded_series(page: &str, name: &str, bound: &str, group: &Labels) -> Vec<(f64, f64)> {
    samples(page)
        .into_iter()
        .filter(|s| s.name == name)
        .filter_map(|mut s| {
            let b = s.labels.remove(bound)?;
            (&s.labels == group).then(|| {
                let b = if b == "+Inf" {
                    f64::INFINITY
                } else {
                    b.parse().unwrap_or(f64::NAN)
                };
                (b, s.value)
            })
        })
        .collect()
}

/// Asserts the bucket (or quantile) samples are exactly `want`, in
/// ascending order of their bound, compared by number (`le="2"` and
/// `le="2.0"` are the same bound).
fn expect_bounded(
    page: &str,
    name: &str,
    bound: &str,
    group: &Labels,
    want: &[(f64, f64)],
    step: &str,
) {
    let got = bounded_series(page, name, bound, group);
    let same = got.len() == want.len()
        && got
            .iter()
            .zip(want)
            .all(|(g, w)| g.0 == w.0 && close(g.1, w.1));
    assert!(
        same,
        "after {step}: {} with {bound} = value: expected {want:?} in this order, got {got:?}; page:\n{page}",
        show(name, group)
    );
}

/// The metric names of the samples whose `label` is `value`.
fn names_with(page: &str, label: &str, value: &str) -> BTreeSet<String> {
    samples(page)
        .into_iter()
        .filter(|s| s.labels.get(label).map(String::as_str) == Some(value))
        .map(|s| s.name)
        .collect()
}

/// Asserts the group's `push_time_seconds` lies in `[from, to]` (Unix
/// seconds) and its `push_failure_time_seconds` is 0; returns the push time.
fn expect_push_time(page: &str, group: &Labels, from: f64, to: f64, step: &str) -> f64 {
    let t = get(page, "push_time_seconds", group).unwrap_or_else(|| {
        panic!(
            "after {step}: no {} on the page:\n{page}",
            show("push_time_seconds", group)
        )
    });
    assert!(
        t >= from - 1.0 && t <= to + 1.0,
        "after {step}: {} = {t}, expected the push's time, between {from} and {to}; page:\n{page}",
        show("push_time_seconds", group)
    );
    expect(page, "push_failure_time_seconds", group, 0.0, step);
    t
}

/// Runs `promtool check metrics` on `page`: (exit code, output).
fn promtool_check_metrics(page: &str) -> (Option<i32>, String) {
    let promtool = require_tool("promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", promtool.display()));
    let mut stdin = child.stdin.take().unwrap();
    let input = page.to_string();
    let writer = std::thread::spawn(move || {
        let _ = stdin.write_all(input.as_bytes());
    });
    let deadline = Instant::now() + LONG_WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promtool check metrics still running after {LONG_WAIT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    writer.join().unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

fn expect_promtool_ok(page: &str, what: &str) {
    let (code, out) = promtool_check_metrics(page);
    assert_eq!(
        code,
        Some(0),
        "promtool check metrics failed on {what}.\n--- promtool:\n{out}\n--- page:\n{page}"
    );
}

// ---------------------------------------------------------------------------
// Python client

/// The main group `py_pusher.py` pushes to.
const PY_GROUP: &[(&str, &str)] = &[
    ("job", "backup/nightly"),
    ("instance", "db1:9100"),
    ("shard", "eu 7"),
];
/// Its second group: no `instance` in the grouping key.
const PY_OTHER: &[(&str, &str)] = &[("job", "py-simple"), ("instance", ""), ("zone", "a")];

#[test]
fn python_client_push_pushadd_delete() {
    let python = client_python();
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let bridge = Bridge::start(&gw.socket);
    let g = lset(PY_GROUP, &[]);

    // PUT (push_to_gateway): every type, as the client writes them.
    let before = unix_now();
    py_push(&python, &bridge, &gw, "push");
    let after = unix_now();
    let page = gw.scrape();
    let step = "push_to_gateway";
    // The grouping key's shard="eu 7" replaces the body's shard="from-body".
    expect(
        &page,
        "py_queue_depth",
        &lset(PY_GROUP, &[("queue", "mail")]),
        17.0,
        step,
    );
    assert!(
        !page.contains("from-body"),
        "after {step}: the body's shard label should be overridden by the grouping key:\n{page}"
    );
    expect_type(&page, "py_queue_depth", "gauge", step);
    expect(
        &page,
        "py_jobs_total",
        &lset(PY_GROUP, &[("kind", "full")]),
        3.0,
        step,
    );
    expect_type(&page, "py_jobs_total", "counter", step);
    expect_type(&page, "py_job_seconds", "histogram", step);
    expect_bounded(
        &page,
        "py_job_seconds_bucket",
        "le",
        &g,
        &[(0.5, 1.0), (2.0, 3.0), (8.0, 4.0), (f64::INFINITY, 5.0)],
        step,
    );
    expect(&page, "py_job_seconds_sum", &g, 70.25, step);
    expect(&page, "py_job_seconds_count", &g, 5.0, step);
    expect_type(&page, "py_payload_bytes", "summary", step);
    expect(&page, "py_payload_bytes_sum", &g, 350.0, step);
    expect(&page, "py_payload_bytes_count", &g, 2.0, step);
    let pushed = expect_push_time(&page, &g, before, after, step);

    // POST (pushadd_to_gateway): the families in the body are replaced,
    // the others kept.
    let before = unix_now();
    py_push(&python, &bridge, &gw, "pushadd");
    let after = unix_now();
    let page = gw.scrape();
    let step = "pushadd_to_gateway";
    expect(
        &page,
        "py_queue_depth",
        &lset(PY_GROUP, &[("queue", "mail")]),
        5.0,
        step,
    );
    expect(&page, "py_last_success_unixtime", &g, 1700000000.0, step);
    expect(
        &page,
        "py_jobs_total",
        &lset(PY_GROUP, &[("kind", "full")]),
        3.0,
        step,
    );
    expect(&page, "py_job_seconds_count", &g, 5.0, step);
    expect(&page, "py_payload_bytes_sum", &g, 350.0, step);
    let added = expect_push_time(&page, &g, before, after, step);
    assert!(
        added >= pushed,
        "after {step}: push_time_seconds went back from {pushed} to {added}"
    );

    // A second group, without instance in its grouping key.
    py_push(&python, &bridge, &gw, "other");
    let page = gw.scrape();
    let step = "push_to_gateway of job py-simple";
    expect(
        &page,
        "py_temperature_celsius",
        &lset(PY_OTHER, &[("instance", "own"), ("sensor", "cpu")]),
        48.5,
        step,
    );
    expect(&page, "py_up", &lset(PY_OTHER, &[]), 1.0, step);
    assert!(
        get(&page, "push_time_seconds", &lset(PY_OTHER, &[])).is_some(),
        "after {step}: no push_time_seconds for the group with instance=\"\":\n{page}"
    );
    expect(
        &page,
        "py_jobs_total",
        &lset(PY_GROUP, &[("kind", "full")]),
        3.0,
        step,
    );

    // PUT again: the whole group is replaced.
    py_push(&python, &bridge, &gw, "replace");
    let page = gw.scrape();
    let step = "push_to_gateway (replace)";
    let want: BTreeSet<String> = [
        "push_failure_time_seconds",
        "push_time_seconds",
        "py_last_success_unixtime",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        names_with(&page, "job", "backup/nightly"),
        want,
        "after {step}: the group should hold only the last PUT's metrics; page:\n{page}"
    );
    expect(&page, "py_last_success_unixtime", &g, 1700000000.0, step);
    expect(&page, "py_up", &lset(PY_OTHER, &[]), 1.0, step);

    // DELETE (delete_from_gateway): the group goes, the other stays.
    py_push(&python, &bridge, &gw, "delete");
    let page = gw.scrape();
    let step = "delete_from_gateway";
    assert!(
        names_with(&page, "job", "backup/nightly").is_empty(),
        "after {step}: the group job=\"backup/nightly\" should be gone, push times included:\n{page}"
    );
    expect(&page, "py_up", &lset(PY_OTHER, &[]), 1.0, step);
    expect(
        &page,
        "py_temperature_celsius",
        &lset(PY_OTHER, &[("instance", "own"), ("sensor", "cpu")]),
        48.5,
        step,
    );
}

// ---------------------------------------------------------------------------
// Go client

/// The group `go_pusher` pushes to; `site` needs escaping on the page.
const GO_GROUP: &[(&str, &str)] = &[
    ("job", "go-batch"),
    ("instance", "edge-1"),
    ("site", r#"rack"7"\east"#),
];
const GO_PATH_LABEL: (&str, &str) = ("path", r#"C:\dir\"x""#);

#[test]
fn go_client_protobuf_push_add_delete() {
    let go = GoPusher::build();
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let bridge = Bridge::start(&gw.socket);
    let g = lset(GO_GROUP, &[]);
    let counter = lset(GO_GROUP, &[GO_PATH_LABEL]);

    // Push(): PUT, delimited protobuf.
    let before = unix_now();
    go.run(&bridge, &gw, "push");
    let after = unix_now();
    let page = gw.scrape();
    let step = "Push()";
    expect(&page, "go_e2e_requests_total", &counter, 7.0, step);
    expect_type(&page, "go_e2e_requests_total", "counter", step);
    assert!(
        page.contains("# HELP go_e2e_requests_total Requests handled, by path.\n"),
        "after {step}: HELP text lost:\n{page}"
    );
    // The escapes as the text format writes them.
    assert!(
        page.contains(r#"path="C:\\dir\\\"x\"""#) && page.contains(r#"site="rack\"7\"\\east""#),
        "after {step}: label values not escaped as the text format requires:\n{page}"
    );
    expect(&page, "go_e2e_temperature_celsius", &g, 21.5, step);
    expect_type(&page, "go_e2e_temperature_celsius", "gauge", step);
    expect_type(&page, "go_e2e_latency_seconds", "histogram", step);
    expect_bounded(
        &page,
        "go_e2e_latency_seconds_bucket",
        "le",
        &g,
        &[(0.1, 1.0), (1.0, 3.0), (10.0, 4.0), (f64::INFINITY, 5.0)],
        step,
    );
    expect(&page, "go_e2e_latency_seconds_sum", &g, 56.05, step);
    expect(&page, "go_e2e_latency_seconds_count", &g, 5.0, step);
    expect_type(&page, "go_e2e_rpc_seconds", "summary", step);
    expect_bounded(
        &page,
        "go_e2e_rpc_seconds",
        "quantile",
        &g,
        &[(0.5, 0.25), (0.9, 0.25), (0.99, 0.25)],
        step,
    );
    expect(&page, "go_e2e_rpc_seconds_sum", &g, 1.0, step);
    expect(&page, "go_e2e_rpc_seconds_count", &g, 4.0, step);
    let pushed = expect_push_time(&page, &g, before, after, step);
    expect_promtool_ok(&page, "the page after the Go client's protobuf push");

    // Add(): POST of the gauge only; the other families stay.
    go.run(&bridge, &gw, "add");
    let page = gw.scrape();
    let step = "Add()";
    expect(&page, "go_e2e_temperature_celsius", &g, 22.75, step);
    expect(&page, "go_e2e_requests_total", &counter, 7.0, step);
    expect(&page, "go_e2e_latency_seconds_count", &g, 5.0, step);
    expect(&page, "go_e2e_rpc_seconds_count", &g, 4.0, step);
    let added = get(&page, "push_time_seconds", &g).unwrap_or(f64::NAN);
    assert!(
        added >= pushed,
        "after {step}: push_time_seconds should move on from {pushed}, is {added}:\n{page}"
    );

    // Push() of the counter only: the group is replaced.
    go.run(&bridge, &gw, "replace");
    let page = gw.scrape();
    let step = "Push() (replace)";
    expect(&page, "go_e2e_requests_total", &counter, 9.0, step);
    let want: BTreeSet<String> = [
        "go_e2e_requests_total",
        "push_failure_time_seconds",
        "push_time_seconds",
    ]
    .map(String::from)
    .into();
    assert_eq!(
        names_with(&page, "job", "go-batch"),
        want,
        "after {step}: the group should hold only the last PUT's metrics; page:\n{page}"
    );

    // Delete(): the client fails unless the answer is 202.
    go.run(&bridge, &gw, "delete");
    let page = gw.scrape();
    assert!(
        names_with(&page, "job", "go-batch").is_empty(),
        "after Delete(): the group should be gone:\n{page}"
    );
}

// ---------------------------------------------------------------------------
// Prometheus server (as in tests/e2e_prometheus.rs)

/// Whether an instant-query answer holds a result with value `v`.
fn has_value(answer: &str, v: &str) -> bool {
    answer.contains(r#""status":"success""#) && answer.contains(&format!(r#","{v}"]"#))
}

/// Whether an instant-query answer is a success with no series.
fn is_empty_result(answer: &str) -> bool {
    answer.contains(r#""status":"success""#) && answer.contains(r#""result":[]"#)
}

#[test]
fn prometheus_honors_pushed_labels_and_sees_the_group_expire() {
    require_tool("prometheus");
    let python = client_python();
    const TTL: Duration = Duration::from_secs(3);
    let gw = Gateway::start(&["--ttl", "3s"]);
    let bridge = Bridge::start(&gw.socket);
    let prom = Prometheus::start(gw.addr);

    // Keep the group fresh until Prometheus has scraped it: the first
    // scrape may come later than one TTL after Prometheus starts.
    let answer = prom.query_until(
        &gw,
        "batch_records_processed",
        "batch_records_processed = 1234 in Prometheus",
        || py_push(&python, &bridge, &gw, "batch"),
        |a| has_value(a, "1234"),
    );
    assert!(
        answer.contains(r#""job":"batch""#) && answer.contains(r#""instance":"nightly""#),
        "honor_labels: the pushed job/instance labels should win:\n{answer}"
    );
    assert!(
        !answer.contains(r#""job":"push-gateway""#)
            && answer
                .matches(r#""__name__":"batch_records_processed""#)
                .count()
                == 1,
        "expected exactly one series, with the pushed labels only:\n{answer}"
    );
    let push_time = prom.query(r#"push_time_seconds{job="batch",instance="nightly"}"#);
    assert!(
        push_time.contains(r#""__name__":"push_time_seconds""#),
        "the group's push_time_seconds should reach Prometheus too:\n{push_time}"
    );

    // Stop pushing: the group stays for the TTL after its last push (the
    // gateway's own push_time_seconds), then leaves the page.
    let page = gw.scrape();
    let group = lset(&[("job", "batch"), ("instance", "nightly")], &[]);
    let last_push = get(&page, "push_time_seconds", &group).unwrap_or_else(|| {
        panic!("the group expired before the first look at the page (ttl {TTL:?}):\n{page}")
    });
    let ttl = TTL.as_secs_f64();
    let gone_after = loop {
        let page = gw.scrape();
        let now = unix_now();
        if !page.contains("job=\"batch\"") {
            break now - last_push;
        }
        assert!(
            now - last_push < ttl + 5.0,
            "group job=\"batch\" still on the page {:.3} s after its last push (ttl {TTL:?}):\n{page}",
            now - last_push
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // 0.1 s for the gateway's wall and monotonic clocks to disagree.
    assert!(
        gone_after >= ttl - 0.1,
        "group expired {gone_after:.3} s after its last push, before the ttl of {TTL:?}"
    );

    // Prometheus sees the series go stale.
    prom.query_until(
        &gw,
        "batch_records_processed",
        "batch_records_processed to go stale in Prometheus",
        || {},
        is_empty_result,
    );
    prom.query_until(
        &gw,
        r#"push_time_seconds{job="batch"}"#,
        "push_time_seconds of the expired group to go stale in Prometheus",
        || {},
        is_empty_result,
    );
}

// ---------------------------------------------------------------------------
// promtool

#[test]
fn promtool_accepts_a_page_of_pushed_groups() {
    require_tool("promtool");
    let python = client_python();
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let bridge = Bridge::start(&gw.socket);
    for step in ["push", "pushadd", "other", "batch"] {
        py_push(&python, &bridge, &gw, step);
    }
    // A summary named like the main group's gauge: refused with 400 (the
    // script fails otherwise), which stamps the failure time.
    let before = unix_now();
    py_push(&python, &bridge, &gw, "conflict");
    let page = gw.scrape();
    let other = lset(PY_OTHER, &[]);
    let failed = get(&page, "push_failure_time_seconds", &other).unwrap_or(f64::NAN);
    assert!(
        failed >= before - 1.0,
        "a refused push should set {} to its time (>= {before}), got {failed}:\n{page}",
        show("push_failure_time_seconds", &other)
    );
    expect(&page, "py_up", &other, 1.0, "the refused push");
    for group in [
        lset(PY_GROUP, &[]),
        other,
        lset(&[("job", "batch"), ("instance", "nightly")], &[]),
    ] {
        assert!(
            get(&page, "push_time_seconds", &group).is_some(),
            "no {} on the page:\n{page}",
            show("push_time_seconds", &group)
        );
    }
    expect_promtool_ok(&page, "a page of pushed groups");
}

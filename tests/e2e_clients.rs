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
//! Side by side with the Prometheus Pushgateway (Debian's
//! `prometheus-pushgateway`, started by the test on a free loopback port
//! with persistence off): each client run builds one registry and pushes
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
//! - `go_client_text_and_protobuf_pages_match_the_pushgateway`:
//!   client_golang as text (`Format(expfmt.FmtText)`) and as delimited
//!   protobuf: every metric type, default and exponential buckets (`1e-05`),
//!   the Go and process collectors, Push/Add/Delete.
//! - `page_comparison_sees_what_prometheus_would_store_differently`: the
//!   comparison itself fails on a changed `le` spelling, value, help, type,
//!   label, a missing or repeated series, a failed push, and ignores label
//!   order, number spelling, push times and the gateways' own metrics.
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
use common::page::{Mask, differences, normalise};
use common::pushgateway::Pushgateway;
use common::tools::*;
use common::*;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// Upper bound for any wait: a client run, Prometheus, a condition.
const LONG_WAIT: Duration = Duration::from_secs(30);

/// Upper bound for the one Go build per test run: a cold build compiles
/// client_golang and its protobuf dependencies (about 10 s on an idle core).
const GO_BUILD_WAIT: Duration = Duration::from_secs(120);

const INSTALL_HINT: &str = "run tests/e2e/install.sh to install the end-to-end test tools";

// ---------------------------------------------------------------------------
// Tools and processes

/// Where the client programs live.
fn clients_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/clients")
}

/// What a finished process printed.
struct Output {
    status: ExitStatus,
    stdout: String,
    stderr: String,
}

/// Runs `cmd` to completion, killing it and failing the test after `limit`.
fn run_bounded(mut cmd: Command, limit: Duration, what: &str) -> Output {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}: {INSTALL_HINT}"));
    let drain = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            if let Some(mut r) = r {
                let _ = r.read_to_end(&mut buf);
            }
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let stdout = drain(child.stdout.take().map(|s| Box::new(s) as _));
    let stderr = drain(child.stderr.take().map(|s| Box::new(s) as _));
    let deadline = Instant::now() + limit;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "{what}: still running after {limit:?}, killed\n--- stdout:\n{}\n--- stderr:\n{}",
                stdout.join().unwrap(),
                stderr.join().unwrap()
            );
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    Output {
        status,
        stdout: stdout.join().unwrap(),
        stderr: stderr.join().unwrap(),
    }
}

/// Seconds since the Unix epoch.
fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
}

// ---------------------------------------------------------------------------
// socat bridge: loopback TCP port -> the gateway's push socket

/// `socat TCP-LISTEN:<port>,bind=127.0.0.1,fork,reuseaddr UNIX-CONNECT:<socket>`,
/// killed on drop.
struct Bridge {
    child: Child,
    port: u16,
}

impl Bridge {
    /// Starts socat on a free port and waits until it accepts connections.
    fn start(socket: &Path) -> Bridge {
        let socat = require_tool("socat");
        // The free port may be taken between the probe and socat's bind:
        // then socat exits at once and another port is tried.
        for _ in 0..3 {
            let port = free_port();
            let child = Command::new(&socat)
                .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
                .arg(format!("UNIX-CONNECT:{}", socket.display()))
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("spawn {}: {e}", socat.display()));
            let mut bridge = Bridge { child, port };
            let deadline = Instant::now() + WAIT;
            loop {
                if let Ok(Some(_)) = bridge.child.try_wait() {
                    break; // exited: try another port
                }
                if TcpStream::connect(("127.0.0.1", port)).is_ok() {
                    return bridge;
                }
                assert!(
                    Instant::now() < deadline,
                    "socat did not accept on 127.0.0.1:{port} within {WAIT:?}"
                );
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        panic!("socat could not listen on a free loopback port (3 tries)");
    }

    /// `HOST:PORT` for the clients.
    fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }
}

impl Drop for Bridge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
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

/// The Go client program, built once for the test that uses it.
struct GoPusher {
    dir: TempDir,
}

impl GoPusher {
    /// Builds `tests/e2e/clients/go_pusher` in GOPATH mode against Debian's
    /// packaged client_golang (`/usr/share/gocode`).
    fn build() -> GoPusher {
        let go = require_tool("go");
        let gopath = Path::new("/usr/share/gocode");
        let push_pkg = gopath.join("src/github.com/prometheus/client_golang/prometheus/push");
        assert!(
            push_pkg.join("push.go").is_file(),
            "{} is missing (Debian package golang-github-prometheus-client-golang-dev): {INSTALL_HINT}",
            push_pkg.display()
        );
        let dir = TempDir::new("go-pusher");
        let mut cmd = Command::new(&go);
        cmd.current_dir(clients_dir().join("go_pusher"))
            .args(["build", "-o"])
            .arg(dir.path().join("go_pusher"))
            .arg(".")
            .env("GO111MODULE", "off")
            .env("GOPATH", gopath)
            .env("GOFLAGS", "")
            .env("CGO_ENABLED", "0");
        let out = run_bounded(cmd, GO_BUILD_WAIT, "go build go_pusher");
        assert!(
            out.status.success(),
            "go build of tests/e2e/clients/go_pusher failed ({}):\n{}{}",
            out.status,
            out.stdout,
            out.stderr
        );
        GoPusher { dir }
    }

    /// The built program, to add arguments to.
    fn command(&self) -> Command {
        Command::new(self.dir.path().join("go_pusher"))
    }

    /// Runs `go_pusher <step> <bridge>` (protobuf); fails the test unless
    /// it exits 0.
    fn run(&self, bridge: &Bridge, gw: &Gateway, step: &str) {
        let mut cmd = self.command();
        cmd.arg(step).arg(bridge.addr());
        let out = run_bounded(cmd, LONG_WAIT, &format!("go_pusher {step}"));
        assert!(
            out.status.success(),
            "go_pusher {step} failed ({}):\n{}{}\n--- page:\n{}",
            out.status,
            out.stdout,
            out.stderr,
            gw.scrape()
        );
    }
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

// ---------------------------------------------------------------------------
// Side by side with the Prometheus Pushgateway
//
// Each client run builds one registry and pushes it to push-gateway (through
// the socat bridge) and then to the Pushgateway; after each step both pages
// are normalised (tests/common/page.rs) and must be equal.

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

/// Runs a client to completion; fails the test (with its output) unless it
/// exits 0.
fn run_client(cmd: Command, what: &str) {
    let out = run_bounded(cmd, LONG_WAIT, what);
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        out.stdout,
        out.stderr
    );
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
/// second), and the GC histogram is filled asynchronously after each
/// collection, so only its type and help are compared.
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
    cmd.arg(clients_dir().join("node_pusher.js"))
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

/// client_golang's push package in both its formats: every metric type, a
/// histogram with the default buckets and one whose bounds Go writes with
/// exponents (`le="1e-05"`), the runtime and process collectors; Push(),
/// Add(), Delete(), and the first group's steps too.
#[test]
fn go_client_text_and_protobuf_pages_match_the_pushgateway() {
    let go = GoPusher::build();
    for format in ["text", "protobuf"] {
        let pair = Pair::start();
        for step in [
            "every", "everyadd", "push", "add", "replace", "everydel", "delete",
        ] {
            go_both(&go, &pair, format, step);
            pair.assert_same_pages(&format!("{step} as {format}"), &go_mask);
        }
    }
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

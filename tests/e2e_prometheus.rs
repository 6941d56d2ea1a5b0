//! End-to-end tests against Prometheus' own tools, with the real
//! `push-gateway` binary and nothing mocked:
//!
//! - `promtool_accepts_page`: a realistic mix of counters, gauges,
//!   histograms and summaries (escaped label values and HELP text, NaN and
//!   ±Inf) goes in over the Unix socket; the scraped page must pass
//!   `promtool check metrics` (parser and linter) and still hold every series.
//! - `prometheus_scrapes_and_ttl_expires`: a real Prometheus server scrapes
//!   the gateway with `honor_labels: true`; the pushed sample shows up in its
//!   query API with the pushed `job`/`instance` labels, the target is healthy,
//!   and once pushing stops the series leaves the gateway's page after the
//!   TTL while scrapes keep succeeding.
//! - `prometheus_scrapes_with_the_credential_and_a_thief_gets_401`: two
//!   gateways in drain mode with `--scrape-auth-file`, one a bearer token
//!   and one `user:password`; Prometheus scrapes them with
//!   `authorization: {credentials_file: ...}` and `basic_auth` and gets
//!   every sample pushed once, while a third job without the credential is
//!   down with a 401 and takes nothing.
//!
//! The tools come from Debian's `prometheus` package: `tests/e2e/install.sh`
//! installs them. A missing tool fails the test, it never skips.

mod common;
use common::tools::*;
use common::*;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

// ---------------------------------------------------------------------------
// promtool

/// A mix like a real edge box pushes: every metric type, several label sets,
/// escapes in label values and HELP text, special float values.
const MIXED_PUSH: &str = r#"# HELP e2e_requests_total Requests handled, by path.\nA backslash: \\ and a "quote".
# TYPE e2e_requests_total counter
e2e_requests_total{path="/a",code="200"} 1027
e2e_requests_total{path="C:\\dir\\file",code="500"} 3
e2e_requests_total{path="say \"hi\"\nbye",code="404"} 0
# HELP e2e_temperature_celsius Board temperature.
# TYPE e2e_temperature_celsius gauge
e2e_temperature_celsius{sensor="cpu"} 47.5
e2e_temperature_celsius{sensor="broken"} NaN
e2e_temperature_celsius{sensor="hot"} +Inf
e2e_temperature_celsius{sensor="cold"} -Inf
# HELP e2e_request_duration_seconds Request latency.
# TYPE e2e_request_duration_seconds histogram
e2e_request_duration_seconds_bucket{path="/a",le="0.05"} 24054
e2e_request_duration_seconds_bucket{path="/a",le="0.1"} 33444
e2e_request_duration_seconds_bucket{path="/a",le="0.5"} 129389
e2e_request_duration_seconds_bucket{path="/a",le="+Inf"} 144320
e2e_request_duration_seconds_sum{path="/a"} 53423.5
e2e_request_duration_seconds_count{path="/a"} 144320
e2e_request_duration_seconds_bucket{path="/b",le="0.05"} 2
e2e_request_duration_seconds_bucket{path="/b",le="0.1"} 5
e2e_request_duration_seconds_bucket{path="/b",le="0.5"} 9
e2e_request_duration_seconds_bucket{path="/b",le="+Inf"} 10
e2e_request_duration_seconds_sum{path="/b"} 1.25
e2e_request_duration_seconds_count{path="/b"} 10
# HELP e2e_rpc_duration_seconds RPC latency.
# TYPE e2e_rpc_duration_seconds summary
e2e_rpc_duration_seconds{service="db",quantile="0.5"} 0.0042
e2e_rpc_duration_seconds{service="db",quantile="0.9"} 0.011
e2e_rpc_duration_seconds{service="db",quantile="0.99"} 0.076
e2e_rpc_duration_seconds_sum{service="db"} 17.5
e2e_rpc_duration_seconds_count{service="db"} 2693
e2e_rpc_duration_seconds{service="cache",quantile="0.5"} NaN
e2e_rpc_duration_seconds{service="cache",quantile="0.9"} NaN
e2e_rpc_duration_seconds{service="cache",quantile="0.99"} NaN
e2e_rpc_duration_seconds_sum{service="cache"} 0
e2e_rpc_duration_seconds_count{service="cache"} 0
"#;

/// (family, type, number of sample lines) pushed in `MIXED_PUSH`.
const MIXED_FAMILIES: &[(&str, &str, usize)] = &[
    ("e2e_requests_total", "counter", 3),
    ("e2e_temperature_celsius", "gauge", 4),
    ("e2e_request_duration_seconds", "histogram", 12),
    ("e2e_rpc_duration_seconds", "summary", 10),
];

/// Runs `promtool check metrics` on `page` (stdin): (exit code, output).
fn promtool_check_metrics(page: &str) -> (Option<i32>, String) {
    let promtool = require_tool("promtool");
    let mut child = Command::new(&promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {}: {e}", promtool.display()));
    child
        .stdin
        .take()
        .unwrap()
        .write_all(page.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), text)
}

/// Sample lines of `family` in `page`: the bare name, or the name followed
/// by `_bucket`/`_sum`/`_count`, then `{` or a space.
fn sample_lines<'a>(page: &'a str, family: &str) -> Vec<&'a str> {
    page.lines()
        .filter(|l| {
            let Some(rest) = l.strip_prefix(family) else {
                return false;
            };
            let rest = ["_bucket", "_sum", "_count"]
                .iter()
                .find_map(|s| rest.strip_prefix(s))
                .unwrap_or(rest);
            rest.starts_with('{') || rest.starts_with(' ')
        })
        .collect()
}

#[test]
fn promtool_accepts_page() {
    require_tool("promtool");
    // The input itself is clean, so a complaint below is about our output.
    let (code, out) = promtool_check_metrics(MIXED_PUSH);
    assert_eq!(
        code,
        Some(0),
        "promtool rejects the test's own input:\n{out}"
    );

    // A budget far above the ~2 KiB page, so nothing is evicted.
    let gw = Gateway::start_full(&["--ttl", "60s", "--cache-bytes", "1MiB"]);
    let reply = gw.push(MIXED_PUSH);
    assert_eq!(reply, "", "gateway rejected valid input");
    let page = gw.scrape_until("all pushed families", |p| {
        MIXED_FAMILIES
            .iter()
            .all(|(name, _, n)| sample_lines(p, name).len() >= *n)
    });

    let (code, out) = promtool_check_metrics(&page);
    assert_eq!(
        code,
        Some(0),
        "promtool check metrics failed on the gateway's page.\n--- promtool:\n{out}\n--- page:\n{page}"
    );

    for (name, kind, n) in MIXED_FAMILIES {
        assert!(
            page.lines().any(|l| l == format!("# TYPE {name} {kind}")),
            "page lacks `# TYPE {name} {kind}`:\n{page}"
        );
        assert!(
            page.lines()
                .any(|l| l.starts_with(&format!("# HELP {name} "))),
            "page lacks HELP for {name}:\n{page}"
        );
        let got = sample_lines(&page, name).len();
        assert_eq!(
            got, *n,
            "{name}: {got} sample lines on the page, pushed {n}:\n{page}"
        );
    }
    // Escapes survive the round trip unchanged.
    for needle in [
        r#"# HELP e2e_requests_total Requests handled, by path.\nA backslash: \\ and a "quote"."#,
        r#"path="C:\\dir\\file""#,
        r#"path="say \"hi\"\nbye""#,
    ] {
        assert!(page.contains(needle), "page lacks `{needle}`:\n{page}");
    }
}

// ---------------------------------------------------------------------------
// Prometheus server

/// Whether an instant-query answer holds a result with value `v`.
fn has_value(answer: &str, v: &str) -> bool {
    answer.contains(r#""status":"success""#) && answer.contains(&format!(r#","{v}"]"#))
}

/// Whether an instant-query answer is a success with no series.
fn is_empty_result(answer: &str) -> bool {
    answer.contains(r#""status":"success""#) && answer.contains(r#""result":[]"#)
}

#[test]
fn prometheus_scrapes_and_ttl_expires() {
    require_tool("prometheus");
    const TTL: Duration = Duration::from_secs(3);
    const LINE: &str = "e2e_value{job=\"edge\",instance=\"box1\"} 42\n";

    let gw = Gateway::start(&["--ttl", "3s"]);
    let prom = Prometheus::start(gw.addr);
    let up = "up{job=\"push-gateway\"}";

    // Keep the series fresh until Prometheus has scraped it: the first
    // scrape may come later than one TTL after Prometheus starts.
    let mut last_push = Instant::now();
    let answer = prom.query_until(
        &gw,
        "e2e_value",
        "e2e_value = 42 in Prometheus",
        || {
            assert_eq!(gw.push(LINE), "", "gateway rejected {LINE:?}");
            last_push = Instant::now();
        },
        |a| has_value(a, "42"),
    );
    assert!(
        answer.contains(r#""job":"edge""#) && answer.contains(r#""instance":"box1""#),
        "honor_labels: the pushed job/instance labels should win:\n{answer}"
    );
    assert!(
        answer.matches(r#""__name__":"e2e_value""#).count() == 1,
        "expected exactly one e2e_value series:\n{answer}"
    );

    let targets = prom.api("targets?state=active");
    assert!(
        targets.contains(&format!(r#""scrapeUrl":"http://{}/metrics""#, gw.addr))
            && targets.contains(r#""health":"up""#)
            && targets.contains(r#""lastError":"""#),
        "target should be up with no lastError:\n{targets}"
    );
    prom.query_until(&gw, up, "up == 1", || {}, |a| has_value(a, "1"));

    // Stop pushing: the series stays for the TTL after the last write, then
    // leaves the page.
    let page = gw.scrape();
    assert!(
        page.contains("e2e_value{"),
        "series gone before the TTL:\n{page}"
    );
    let deadline = last_push + TTL + Duration::from_secs(5);
    let gone_after = loop {
        let page = gw.scrape();
        if !page.contains("e2e_value") {
            break last_push.elapsed();
        }
        assert!(
            Instant::now() < deadline,
            "e2e_value still on the page {:?} after the last push (ttl {TTL:?}):\n{page}",
            last_push.elapsed()
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    // `last_push` is taken after the gateway has read the line, so the
    // series may go slightly before a full TTL measured from here.
    assert!(
        gone_after + Duration::from_millis(300) >= TTL,
        "series expired after {gone_after:?}, before the ttl of {TTL:?}"
    );

    // Prometheus sees the series go stale, while scrapes of the (now
    // empty) page keep succeeding.
    prom.query_until(
        &gw,
        "e2e_value",
        "e2e_value to go stale in Prometheus",
        || {},
        is_empty_result,
    );
    std::thread::sleep(Duration::from_secs(2));
    let up_min = prom.query(&format!("min_over_time({up}[10s])"));
    assert!(
        has_value(&up_min, "1"),
        "up dropped below 1 during the last 10 s:\n{up_min}"
    );
    let targets = prom.api("targets?state=active");
    assert!(
        targets.contains(r#""health":"up""#) && targets.contains(r#""lastError":"""#),
        "target unhealthy after the series expired:\n{targets}\n{}",
        prom.log()
    );
}

// ---------------------------------------------------------------------------
// Prometheus with the scrape credential

#[test]
fn prometheus_scrapes_with_the_credential_and_a_thief_gets_401() {
    require_tool("prometheus");
    let secrets = TempDir::new("e2e-auth");
    let write = |name: &str, text: &str| {
        let p = secrets.path().join(name);
        std::fs::write(&p, text).unwrap();
        p.to_str().unwrap().to_string()
    };
    // The same token file serves both sides; for basic auth the gateway's
    // file holds user:password and Prometheus' password_file the password.
    let token = write("token", "e2e-T0ken.with~chars/+=\n");
    let basic = write("basic", "prometheus:pass word\n");
    let password = write("password", "pass word\n");
    let bearer_gw = Gateway::start(&["--drain-on-scrape", "--scrape-auth-file", &token]);
    let basic_gw = Gateway::start(&["--drain-on-scrape", "--scrape-auth-file", &basic]);
    let prom = Prometheus::start_with_scrape_configs(&format!(
        "  - job_name: bearer\n    honor_labels: true\n    \
         authorization:\n      credentials_file: {token}\n    \
         static_configs:\n      - targets: ['{bearer}']\n\
         \x20 - job_name: basic\n    honor_labels: true\n    \
         basic_auth:\n      username: prometheus\n      password_file: {password}\n    \
         static_configs:\n      - targets: ['{basic}']\n\
         \x20 - job_name: thief\n    honor_labels: true\n    \
         static_configs:\n      - targets: ['{bearer}']\n",
        bearer = bearer_gw.addr,
        basic = basic_gw.addr,
    ));
    // Pushed once each: in drain mode, a thief that could scrape would
    // take them away from the authorized jobs for good.
    assert_eq!(bearer_gw.push("e2e_auth{via=\"bearer\"} 7\n"), "");
    assert_eq!(basic_gw.push("e2e_auth{via=\"basic\"} 8\n"), "");
    for (via, value, gw) in [("bearer", "7", &bearer_gw), ("basic", "8", &basic_gw)] {
        prom.query_until(
            gw,
            &format!("max_over_time(e2e_auth{{via=\"{via}\"}}[1h])"),
            &format!("the {via} sample in Prometheus"),
            || {},
            |a| has_value(a, value),
        );
        prom.query_until(
            gw,
            &format!("up{{job=\"{via}\"}}"),
            &format!("the {via} job up"),
            || {},
            |a| has_value(a, "1"),
        );
    }
    prom.query_until(
        &bearer_gw,
        "up{job=\"thief\"}",
        "the job without the credential down",
        || {},
        |a| has_value(a, "0"),
    );
    let targets = prom.api("targets?state=active");
    assert!(
        targets.contains("401"),
        "the thief's target should show the 401:\n{targets}"
    );
    // Everything was drained by the authorized scrapes, nothing is left
    // for anyone (the local socket needs no credential).
    for gw in [&bearer_gw, &basic_gw] {
        let mut s = gw.connect();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut reply = String::new();
        std::io::Read::read_to_string(&mut s, &mut reply).unwrap();
        assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
        assert!(!reply.contains("e2e_auth"), "not drained:\n{reply}");
    }
}

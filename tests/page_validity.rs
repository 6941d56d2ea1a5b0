//! The page stays valid whatever is pushed: seeded pseudo-random pushes
//! (stream lines and HTTP PUT/POST bodies, every type, family names that
//! collide such as `x_count` next to a histogram `x`, reserved label and
//! metric names, odd bounds and values) against the real binary, with
//! every page checked by `promtool check metrics` (its lint warnings
//! aside: a parse error fails) and by the test's own reading of the format
//! (one TYPE per family, no series twice, no `__` label names), and the
//! page scraped by a real Prometheus after every batch (target up, no
//! scrape error, the batch's marker series ingested).
//!
//! `PAGE_VALIDITY_SEED` picks another sequence; a failure prints the seed
//! and the pushes that led to it.

mod common;

use std::collections::HashSet;
use std::io::{Read, Write};
use std::os::unix::net::UnixStream;
use std::process::{Command, Stdio};

use common::tools::{Prometheus, require_tool};
use common::{Gateway, WAIT};

/// Pushes per run, and how many between two Prometheus checks: bounded so
/// that the test runs in well under a minute.
const PUSHES: usize = 48;
const BATCH: usize = 8;

/// xorshift64*: a small seeded generator, enough to vary the pushes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len())]
    }
    fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }
}

/// Family names (several colliding with histogram `x` or summary `y`) and
/// the type each usually gets, so that pushes of different groups agree
/// often enough to be accepted.
const FAMILIES: &[(&str, &str)] = &[
    ("x", "histogram"),
    ("x_count", "gauge"),
    ("x_sum", "untyped"),
    ("x_bucket", "counter"),
    ("x_total", "counter"),
    ("y", "summary"),
    ("y_sum", "gauge"),
    ("y_count", "counter"),
    ("z", "histogram"),
    ("w", "gauge"),
];
const TYPES: &[&str] = &["counter", "gauge", "histogram", "summary", "untyped"];
const LABELS: &[&str] = &["a", "b", "le", "quantile", "job", "instance", "_c"];
/// Names, labels and values that must be refused, used now and then so
/// that most pushes are accepted and build up the page.
const RESERVED_LABELS: &[&str] = &["__name__", "__x"];
const LABEL_VALUES: &[&str] = &[
    "1", "1.0", "0.5", "+Inf", "+inf", "NaN", "x", "", "1e-05", "0.00001", "-0", "a\\\"b",
];
const VALUES: &[&str] = &["1", "0", "-1", "0.5", "NaN", "+Inf", "-Inf", "2.5e-3"];
const BAD_VALUES: &[&str] = &["1e309", "-NaN", "7 123", "x"];

/// A body of a few families, each maybe with HELP and TYPE, and samples
/// of its name and of the names a histogram or summary owns.
fn body(rng: &mut Rng) -> String {
    let mut out = String::new();
    for _ in 0..1 + rng.below(4) {
        let (family, usual) = FAMILIES[rng.below(FAMILIES.len())];
        let family = if rng.chance(3) {
            rng.pick(&["push_time_seconds", "push_gateway_x"])
        } else {
            family
        };
        if rng.chance(30) {
            out.push_str(&format!("# HELP {family} help text  \n"));
        }
        if rng.chance(80) {
            let kind = if rng.chance(15) {
                rng.pick(TYPES)
            } else {
                usual
            };
            out.push_str(&format!("# TYPE {family} {kind}\n"));
        }
        for _ in 0..1 + rng.below(5) {
            let suffix = rng.pick(&["", "", "_bucket", "_sum", "_count"]);
            out.push_str(family);
            out.push_str(suffix);
            let mut used = Vec::new();
            let labels: Vec<String> = (0..rng.below(4))
                .filter_map(|_| {
                    let name = if rng.chance(4) {
                        rng.pick(RESERVED_LABELS)
                    } else {
                        rng.pick(LABELS)
                    };
                    if used.contains(&name) {
                        return None;
                    }
                    used.push(name);
                    Some(format!("{name}=\"{}\"", rng.pick(LABEL_VALUES)))
                })
                .collect();
            if !labels.is_empty() {
                out.push_str(&format!("{{{}}}", labels.join(",")));
            }
            let value = if rng.chance(4) {
                rng.pick(BAD_VALUES)
            } else {
                rng.pick(VALUES)
            };
            out.push_str(&format!(" {value}\n"));
        }
        if rng.chance(5) {
            out.push_str(&format!("# HELP {family} again\n"));
        }
    }
    out
}

/// A raw HTTP request on the push socket; returns the status and body.
fn http_push(gw: &Gateway, method: &str, path: &str, body: &str) -> (u16, String) {
    let mut s = UnixStream::connect(&gw.socket).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .unwrap();
    let mut reply = String::new();
    let _ = s.read_to_string(&mut reply);
    let (status, _, body) = common::split_response(&reply);
    (status, body)
}

/// `promtool check metrics` on `page`: `Err` with its output on a parse
/// error (exit status 1, "error while linting"); lint problems (status 3)
/// are not this test's business.
fn promtool_parses(page: &str) -> Result<(), String> {
    let mut child = Command::new(require_tool("promtool"))
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
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
    match out.status.code() {
        Some(0 | 3) if !text.contains("error while linting") => Ok(()),
        code => Err(format!("promtool exit {code:?}:\n{text}")),
    }
}

/// What Prometheus would also refuse or mangle, read from the page: a
/// family typed twice, a series twice, a label name starting with `__`.
fn page_problems(page: &str) -> Result<(), String> {
    let mut typed = HashSet::new();
    let mut series = HashSet::new();
    for line in page.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let name = rest.split(' ').next().unwrap_or("");
            if !typed.insert(name.to_string()) {
                return Err(format!("family {name} typed twice"));
            }
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let key = line.rsplit_once(' ').map_or(line, |(k, _)| k);
        if key.contains("{__") || key.contains(",__") {
            return Err(format!("reserved label name in {line:?}"));
        }
        if !series.insert(key.to_string()) {
            return Err(format!("series {key} twice"));
        }
    }
    Ok(())
}

#[test]
fn the_page_stays_valid_whatever_is_pushed() {
    require_tool("promtool");
    let seed: u64 = std::env::var("PAGE_VALIDITY_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_2026);
    let gw = Gateway::start_full(&["--cache-bytes", "64KiB", "--ttl", "10m"]);
    let prom = Prometheus::start(gw.addr);
    let mut rng = Rng(seed | 1);
    let mut history: Vec<String> = Vec::new();
    let mut statuses = [0usize; 2];
    for i in 0..PUSHES {
        let body = body(&mut rng);
        let step = if rng.chance(35) {
            let reply = gw.push(&body);
            format!("stream:\n{body}--- reply:\n{reply}")
        } else {
            let method = rng.pick(&["PUT", "PUT", "POST"]);
            let path = format!(
                "/metrics/job/{}{}",
                rng.pick(&["a", "b", "c"]),
                rng.pick(&["", "/instance/i"])
            );
            let (status, reply) = http_push(&gw, method, &path, &body);
            statuses[usize::from(status == 200)] += 1;
            format!("{method} {path} -> {status} {reply}\n{body}")
        };
        history.push(step);
        let page = gw.scrape();
        let fail = |why: String| {
            let tail = &history[history.len().saturating_sub(6)..];
            panic!(
                "seed {seed}, push {i}: {why}\n--- last pushes:\n{}\n--- page:\n{page}",
                tail.join("\n")
            )
        };
        if let Err(e) = promtool_parses(&page).and_then(|()| page_problems(&page)) {
            fail(e);
        }
        if (i + 1) % BATCH == 0 {
            // A marker only this batch wrote: once Prometheus has it, it
            // ingested a page with everything above.
            let batch = (i + 1) / BATCH;
            gw.push(&format!("page_validity_batch {batch}\n"));
            prom.query_until(
                &gw,
                "page_validity_batch",
                &format!("batch {batch} ingested (seed {seed})"),
                || {},
                |answer| answer.contains(&format!("\"{batch}\"]")),
            );
            let targets = prom.api("targets?state=active");
            if !(targets.contains(r#""health":"up""#) && targets.contains(r#""lastError":"""#)) {
                fail(format!("Prometheus' scrape failed:\n{targets}"));
            }
        }
    }
    // The pushes were not all refused, nor all accepted.
    assert!(
        statuses[0] > 0 && statuses[1] > 0,
        "seed {seed}: refused, accepted: {statuses:?}\n{}",
        history.join("\n")
    );
}

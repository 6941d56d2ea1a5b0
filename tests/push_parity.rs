//! What pushed metrics mean, as the Prometheus Pushgateway decides it,
//! over the real socket: reserved label names refused on every path and
//! counted, one form of `le` and `quantile` whatever the client, histograms
//! completed, conflicts refused with where they are. Each case was tried
//! against the Pushgateway 1.5 first.

mod common;

use std::io::{Read, Write};
use std::os::unix::net::UnixStream;

use common::protobuf::{bytes_field, delimited, varint};
use common::*;

const PROTOBUF: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// One HTTP request on the push socket: (status, body).
fn request(
    gw: &Gateway,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
) -> (u16, String) {
    let mut s = UnixStream::connect(&gw.socket).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let head = format!(
        "{method} {path} HTTP/1.1\r\nHost: t\r\nConnection: close\r\nContent-Type: {content_type}\r\n\
         Content-Length: {}\r\n\r\n",
        body.len()
    );
    s.write_all(head.as_bytes()).unwrap();
    s.write_all(body).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let (status, _, body) = split_response(&String::from_utf8_lossy(&reply));
    (status, body)
}

fn put(gw: &Gateway, path: &str, body: &str) -> (u16, String) {
    request(gw, "PUT", path, "text/plain", body.as_bytes())
}

fn double_field(out: &mut Vec<u8>, field: u64, v: f64) {
    varint(out, field << 3 | 1);
    out.extend_from_slice(&v.to_bits().to_le_bytes());
}

fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
    varint(out, field << 3);
    varint(out, v);
}

/// A histogram family `h` as the Go client encodes it: buckets with their
/// upper bounds as doubles, no `+Inf` bucket.
fn histogram_protobuf(bounds: &[(f64, u64)], count: u64, sum: f64) -> Vec<u8> {
    let mut hist = Vec::new();
    varint_field(&mut hist, 1, count);
    double_field(&mut hist, 2, sum);
    for &(bound, cumulative) in bounds {
        let mut b = Vec::new();
        varint_field(&mut b, 1, cumulative);
        double_field(&mut b, 2, bound);
        bytes_field(&mut hist, 3, &b);
    }
    let mut metric = Vec::new();
    bytes_field(&mut metric, 7, &hist);
    let mut family = Vec::new();
    bytes_field(&mut family, 1, b"h");
    varint_field(&mut family, 3, 4);
    bytes_field(&mut family, 4, &metric);
    delimited(&family)
}

/// The samples of `page` whose line starts with `prefix`, without the
/// grouping labels `instance="",job="<job>",` so pushes of several jobs
/// compare.
fn series_of(page: &str, prefix: &str, job: &str) -> Vec<String> {
    let labels = format!("instance=\"\",job=\"{job}\"");
    let mut out: Vec<String> = page
        .lines()
        .filter(|l| l.starts_with(prefix) && l.contains(&labels))
        .map(|l| l.replace(&format!("{labels},"), "").replace(&labels, ""))
        .collect();
    out.sort();
    out
}

fn counter(page: &str, series: &str) -> u64 {
    value_of(page, series).map_or(0, |v| v.parse().unwrap())
}

/// Regression: a sample with a `__name__` label was accepted, and
/// Prometheus then rejected the whole page (`label name "__name__" is not
/// unique: invalid sample`), so every job's metrics were lost.
#[test]
fn a_name_label_is_refused_on_every_path_and_counted() {
    let gw = Gateway::start_full(&[]);
    let (code, body) = put(&gw, "/metrics/job/j", "x{__name__=\"y\"} 1\n");
    assert_eq!(code, 400, "{body}");
    assert!(body.contains("reserved for Prometheus"), "{body}");
    let (code, _) = put(&gw, "/metrics/job/j", "x{__meta=\"y\"} 1\n");
    assert_eq!(code, 400);
    let mut label = Vec::new();
    bytes_field(&mut label, 1, b"__name__");
    bytes_field(&mut label, 2, b"y");
    let mut value = Vec::new();
    double_field(&mut value, 1, 1.0);
    let mut metric = Vec::new();
    bytes_field(&mut metric, 1, &label);
    bytes_field(&mut metric, 2, &value);
    let mut family = Vec::new();
    bytes_field(&mut family, 1, b"x");
    varint_field(&mut family, 3, 1);
    bytes_field(&mut family, 4, &metric);
    let (code, body) = request(&gw, "PUT", "/metrics/job/j", PROTOBUF, &delimited(&family));
    assert_eq!(code, 400, "{body}");
    let reply = gw.push("x{__name__=\"y\"} 1\nok 1\n");
    assert!(
        reply.starts_with("error: line 1: label names starting with __"),
        "{reply}"
    );
    let page = gw.scrape_until("the good line", |p| p.contains("\nok 1\n"));
    assert!(!page.contains("__"), "{page}");
    assert_eq!(
        counter(
            &page,
            "push_gateway_pushes_rejected_total{reason=\"reserved\"}"
        ),
        3,
        "{page}"
    );
    assert_eq!(
        counter(
            &page,
            "push_gateway_lines_rejected_total{reason=\"reserved\"}"
        ),
        1
    );
}

/// Regression: Python's `le="1.0"`, Go's protobuf `1e-05` and the
/// Pushgateway's `le="1"` were different series in Prometheus.
#[test]
fn one_histogram_from_python_go_text_and_go_protobuf_is_one_set_of_series() {
    let gw = Gateway::start(&[]);
    // prometheus_client (Python) writes floats with repr().
    let python = "# TYPE h histogram\nh_bucket{le=\"1e-05\"} 1.0\nh_bucket{le=\"1.0\"} 2.0\n\
                  h_bucket{le=\"+Inf\"} 3.0\nh_count 3.0\nh_sum 1.5\n";
    let go_text = "# TYPE h histogram\nh_bucket{le=\"1e-05\"} 1\nh_bucket{le=\"1\"} 2\n\
                   h_bucket{le=\"+Inf\"} 3\nh_sum 1.5\nh_count 3\n";
    assert_eq!(put(&gw, "/metrics/job/python", python).0, 200);
    assert_eq!(put(&gw, "/metrics/job/text", go_text).0, 200);
    let body = histogram_protobuf(&[(0.00001, 1), (1.0, 2)], 3, 1.5);
    let (code, reply) = request(&gw, "PUT", "/metrics/job/proto", PROTOBUF, &body);
    assert_eq!(code, 200, "{reply}");
    let page = gw.scrape();
    let want = [
        "h_bucket{le=\"+Inf\"} 3",
        "h_bucket{le=\"1\"} 2",
        "h_bucket{le=\"1e-05\"} 1",
        "h_count{} 3",
        "h_sum{} 1.5",
    ];
    for job in ["python", "text", "proto"] {
        assert_eq!(series_of(&page, "h_", job), want, "{job}: {page}");
    }
}

/// As the Pushgateway: a histogram without `+Inf` gets it from `_count`
/// (0 without one), and `_sum` and `_count` at 0 when missing.
#[test]
fn a_histogram_gets_its_inf_bucket_sum_and_count() {
    let gw = Gateway::start(&[]);
    let (code, _) = put(
        &gw,
        "/metrics/job/j",
        "# TYPE h histogram\nh_bucket{le=\"0.5\"} 1\nh_count 4\n\
         # TYPE g histogram\ng_bucket{le=\"0.5\"} 1\n",
    );
    assert_eq!(code, 200);
    let page = gw.scrape();
    assert_eq!(
        series_of(&page, "h_", "j"),
        [
            "h_bucket{le=\"+Inf\"} 4",
            "h_bucket{le=\"0.5\"} 1",
            "h_count{} 4",
            "h_sum{} 0"
        ]
    );
    assert_eq!(
        series_of(&page, "g_", "j"),
        [
            "g_bucket{le=\"+Inf\"} 0",
            "g_bucket{le=\"0.5\"} 1",
            "g_count{} 0",
            "g_sum{} 0"
        ]
    );
}

/// Regression: `foo_count` as a gauge next to a histogram `foo`, a series
/// twice in one body and an untyped push of another group's counter were
/// all accepted; Prometheus or promtool refuse such pages.
#[test]
fn conflicts_are_refused_and_say_where_they_are() {
    let gw = Gateway::start_full(&[]);
    let hist = "# TYPE foo histogram\nfoo_bucket{le=\"1\"} 1\nfoo_sum 1\nfoo_count 1\n";
    let (code, body) = put(
        &gw,
        "/metrics/job/a",
        &format!("# TYPE foo_count gauge\nfoo_count{{x=\"1\"}} 1\n{hist}"),
    );
    assert_eq!(code, 400);
    assert!(body.contains("another family of this push"), "{body}");
    assert_eq!(put(&gw, "/metrics/job/a", hist).0, 200);
    let (code, body) = put(&gw, "/metrics/job/b", "foo_count 1\n");
    assert_eq!(code, 400);
    assert!(body.contains("another group or stream"), "{body}");
    let (code, body) = put(
        &gw,
        "/metrics/job/b",
        "m{a=\"1\",b=\"2\"} 1\nm{b=\"2\",a=\"1\"} 2\n",
    );
    assert_eq!(code, 400);
    assert!(
        body.starts_with("line 2: the same series as line 1"),
        "{body}"
    );
    assert_eq!(put(&gw, "/metrics/job/a", "# TYPE c counter\nc 1\n").0, 200);
    let (code, body) = put(&gw, "/metrics/job/b", "c 1\n");
    assert_eq!(code, 400);
    assert!(
        body.contains("another TYPE in another group or stream"),
        "{body}"
    );
    // Only its own group holds it: a PUT may change the type.
    assert_eq!(put(&gw, "/metrics/job/a", "# TYPE c gauge\nc 2\n").0, 200);
    let page = gw.scrape();
    assert!(page.contains("# TYPE c gauge\n"), "{page}");
    for (reason, n) in [("type_conflict", 3), ("duplicate", 1)] {
        let series = format!("push_gateway_pushes_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(counter(&page, &series), n, "{series}");
    }
}

/// Regression: `1e309` was stored as +Inf and `-NaN` as NaN; the
/// Pushgateway refuses both.
#[test]
fn values_out_of_range_and_signed_nan_are_refused() {
    let gw = Gateway::start_full(&[]);
    for value in ["1e309", "-1e309", "-NaN", "+NaN"] {
        let (code, body) = put(&gw, "/metrics/job/j", &format!("x {value}\n"));
        assert_eq!(code, 400, "{value}: {body}");
    }
    for value in ["NaN", "+Inf", "-Infinity", "1e-400"] {
        let (code, body) = put(&gw, "/metrics/job/j", &format!("x {value}\n"));
        assert_eq!(code, 200, "{value}: {body}");
    }
    let page = gw.scrape();
    assert_eq!(
        counter(
            &page,
            "push_gateway_pushes_rejected_total{reason=\"value\"}"
        ),
        4
    );
}

/// The Pushgateway reads a body as protobuf only with
/// `proto=io.prometheus.client.MetricFamily` and `encoding=delimited`.
#[test]
fn another_proto_is_read_as_text() {
    let gw = Gateway::start(&[]);
    let ct = "application/vnd.google.protobuf; proto=other.Message; encoding=delimited";
    let (code, body) = request(&gw, "PUT", "/metrics/job/j", ct, b"x 1\n");
    assert_eq!(code, 200, "{body}");
    assert_eq!(
        value_of(&gw.scrape(), "x{instance=\"\",job=\"j\"}").as_deref(),
        Some("1")
    );
}

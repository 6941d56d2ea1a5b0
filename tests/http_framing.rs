//! HTTP/1.1 framing on the push socket, checked against the Prometheus
//! Pushgateway itself: the same raw requests go to push-gateway's socket
//! and to a real `prometheus-pushgateway` on a loopback port, and the
//! status classes must agree except where README documents a difference.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;

use common::pushgateway::Pushgateway;
use common::*;

/// Writes `raw`, half-closes, and reads the reply until EOF.
fn exchange(mut s: impl Read + Write, raw: &[u8], shut: impl FnOnce(&mut dyn Write)) -> String {
    let _ = s.write_all(raw);
    shut(&mut s);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn on_socket(gw: &Gateway, raw: &[u8]) -> String {
    let s = gw.connect();
    let half = s.try_clone().unwrap();
    exchange(s, raw, |_| {
        let _ = half.shutdown(std::net::Shutdown::Write);
    })
}

fn on_pushgateway(pg: &Pushgateway, raw: &[u8]) -> String {
    let s = TcpStream::connect(pg.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let half = s.try_clone().unwrap();
    exchange(s, raw, |_| {
        let _ = half.shutdown(std::net::Shutdown::Write);
    })
}

fn status(reply: &str) -> u16 {
    split_response(reply).0
}

const BODY: &str = "m 1\n";

fn put(target: &str, headers: &str) -> String {
    format!("PUT {target} HTTP/1.1\r\nHost: x\r\n{headers}Content-Length: 4\r\n\r\n{BODY}",)
}

fn chunked(size_line: &str) -> String {
    format!(
        "PUT /metrics/job/c HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n{size_line}\r\n{BODY}\r\n0\r\n\r\n"
    )
}

/// (what, request, push-gateway's status, the Pushgateway's status class
/// when it differs on purpose).
fn cases() -> Vec<(&'static str, String, u16, Option<u16>)> {
    vec![
        ("plain push", put("/metrics/job/a", ""), 200, None),
        (
            "lower-case method",
            "put /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            405,
            None,
        ),
        (
            "unknown method",
            "FOO /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            405,
            None,
        ),
        (
            "absolute-form target",
            put("http://gateway:9091/metrics/job/abs", ""),
            200,
            None,
        ),
        (
            "HTTP/1.1 without Host",
            "PUT /metrics/job/a HTTP/1.1\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            400,
            None,
        ),
        (
            "HTTP/1.0 without Host",
            "PUT /metrics/job/h10 HTTP/1.0\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            200,
            None,
        ),
        (
            "two Host headers",
            "GET /-/healthy HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n".into(),
            400,
            None,
        ),
        (
            "Transfer-Encoding gzip",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n".into(),
            501,
            None,
        ),
        (
            "Transfer-Encoding identity",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: identity\r\n\r\n".into(),
            501,
            None,
        ),
        (
            "Content-Length with a sign",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nm 1\n".into(),
            400,
            None,
        ),
        (
            "Content-Length in hex",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: 0x4\r\n\r\nm 1\n".into(),
            400,
            None,
        ),
        (
            "Content-Length list",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: 4,4\r\n\r\nm 1\n".into(),
            400,
            None,
        ),
        (
            "Content-Length with spaces around",
            "PUT /metrics/job/cl HTTP/1.1\r\nHost: x\r\nContent-Length:  4 \r\n\r\nm 1\n".into(),
            200,
            None,
        ),
        ("chunk size", chunked("4"), 200, None),
        ("chunk size with an extension", chunked("4;a=b"), 200, None),
        // The Pushgateway (Go's net/http) takes a body it cannot read as
        // empty: it answers 200 and empties the group. push-gateway
        // refuses such a push (README, "Differences").
        (
            "chunk size with BWS and an extension",
            chunked("4 ;a=\"b c\""),
            200,
            Some(2),
        ),
        ("chunk size in 0x hex", chunked("0x4"), 400, Some(2)),
        ("chunk size with a sign", chunked("+4"), 400, Some(2)),
        ("chunk size after a space", chunked(" 4"), 400, Some(2)),
        (
            "percent-encoded label name",
            put("/metrics/job/a/l%61bel/v", ""),
            200,
            None,
        ),
        (
            "chunk data ended by a bare LF",
            "PUT /metrics/job/lf HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n4\nm 1\n\n0\n\n"
                .into(),
            200,
            None,
        ),
        (
            "an unknown expectation",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nExpect: something\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            417,
            None,
        ),
        // The Pushgateway takes what came of a body cut short (200);
        // push-gateway refuses the push, but answers it.
        (
            "a body cut short",
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: 40\r\n\r\nm 1\n".into(),
            400,
            Some(2),
        ),
        (
            "HTTP/2.0",
            "PUT /metrics/job/a HTTP/2.0\r\nHost: x\r\nContent-Length: 4\r\n\r\nm 1\n".into(),
            505,
            None,
        ),
    ]
}

#[test]
fn framing_matches_the_pushgateway() {
    let gw = Gateway::start(&[]);
    let pg = Pushgateway::start();
    for (what, raw, want, pushgateway_class) in cases() {
        let ours = on_socket(&gw, raw.as_bytes());
        assert_eq!(status(&ours), want, "{what}: {raw:?} answered {ours:?}");
        let theirs = on_pushgateway(&pg, raw.as_bytes());
        let class = pushgateway_class.unwrap_or(want / 100);
        assert_eq!(
            status(&theirs) / 100,
            class,
            "{what}: the Pushgateway answered {theirs:?}"
        );
    }
    let page = gw.scrape();
    for series in [
        "m{instance=\"\",job=\"abs\"} 1",
        "m{instance=\"\",job=\"h10\"} 1",
        "m{instance=\"\",job=\"cl\"} 1",
        "m{instance=\"\",job=\"lf\"} 1",
        "m{instance=\"\",job=\"a\",label=\"v\"} 1",
    ] {
        assert!(page.contains(series), "{series} missing:\n{page}");
    }
}

#[test]
fn stream_lines_stay_the_line_protocol() {
    let gw = Gateway::start(&[]);
    for lines in [
        "metric_name 1\n",
        "metric{a=\"b\"} 1\n",
        "# /usr/bin/job wrote these\nfrom_a_comment 1\n",
        "GET 1\n",
    ] {
        let reply = gw.push(lines);
        assert_eq!(reply, "", "{lines:?} answered {reply:?}");
    }
    let page = gw.scrape();
    for series in [
        "metric_name 1",
        "metric{a=\"b\"} 1",
        "from_a_comment 1",
        "GET 1",
    ] {
        assert!(page.contains(series), "{series} missing:\n{page}");
    }
}

#[test]
fn a_lower_case_request_line_gets_an_http_answer_not_a_line_error() {
    let gw = Gateway::start(&[]);
    let reply = on_socket(&gw, b"get /metrics HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(reply.starts_with("HTTP/1.1 405 "), "{reply:?}");
    assert!(reply.contains("Allow: GET, HEAD\r\n"), "{reply:?}");
}

#[test]
fn an_absolute_form_scrape_works_on_the_tcp_port() {
    let gw = Gateway::start(&[]);
    gw.push("abs_scrape 1\n");
    let (status, _, body) = http_request(
        gw.addr,
        "GET http://localhost:9091/metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(body.contains("abs_scrape 1"), "{body}");
}

#[test]
fn pushes_refused_while_reading_the_head_are_counted() {
    let gw = Gateway::start_full(&[]);
    let big = format!(
        "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(9000)
    );
    for (raw, want) in [
        (big.as_str(), 431),
        (
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nContent-Length: +4\r\n\r\nm 1\n",
            400,
        ),
        (
            "PUT /metrics/job/a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
            501,
        ),
        (
            "PUT /metrics/job/a HTTP/1.1\r\nContent-Length: 4\r\n\r\nm 1\n",
            400,
        ),
        ("FOO /metrics/job/a HTTP/1.1\r\nHost: x\r\n\r\n", 405),
        (&chunked("0x4"), 400),
    ] {
        let reply = on_socket(&gw, raw.as_bytes());
        assert_eq!(status(&reply), want, "{raw:?}: {reply:?}");
    }
    let page = gw.scrape();
    for (reason, want) in [("too_large", "1"), ("http", "5")] {
        let series = format!("push_gateway_pushes_rejected_total{{reason=\"{reason}\"}}");
        assert_eq!(value_of(&page, &series).as_deref(), Some(want), "{page}");
    }
}

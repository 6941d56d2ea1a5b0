//! The scrape side over real TCP: /metrics headers, HEAD, keep-alive,
//! Connection: close, the other paths, the read-only port, limits.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::*;

/// Reads exactly one response (head and `Content-Length` body) from `s`.
fn read_response(s: &mut TcpStream, head_only: bool) -> (String, String) {
    let mut buf = Vec::new();
    let mut byte = [0u8; 1];
    while !buf.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "connection closed mid-head");
        buf.push(byte[0]);
    }
    let head = String::from_utf8(buf).unwrap();
    let len: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("Content-Length")
        .trim()
        .parse()
        .unwrap();
    let mut body = vec![0u8; if head_only { 0 } else { len }];
    s.read_exact(&mut body).unwrap();
    (head, String::from_utf8(body).unwrap())
}

#[test]
fn metrics_headers_and_body() {
    let gw = Gateway::start(&[]);
    gw.push("hdr_test 1\n");
    let (status, head, body) = gw.get("/metrics");
    assert_eq!(status, 200);
    assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
    assert!(
        head.contains("\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\r\nContent-Length: {}", body.len())),
        "{head}"
    );
    assert!(head.contains("\r\nConnection: close"), "{head}");
    assert_eq!(body, "# TYPE hdr_test untyped\nhdr_test 1\n");
}

#[test]
fn keep_alive_serves_several_requests_and_head_has_no_body() {
    let gw = Gateway::start(&[]);
    gw.push("ka 1\n");
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    for _ in 0..3 {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        let (head, body) = read_response(&mut s, false);
        assert!(!head.contains("Connection: close"), "{head}");
        assert_eq!(body, "# TYPE ka untyped\nka 1\n");
    }
    s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s, true);
    assert!(head.contains("Content-Length: 23"), "{head}");
    // Pipelined: two requests in one write, answered in order.
    s.write_all(
        b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\n\r\nGET /-/ready HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .unwrap();
    let (h1, b1) = read_response(&mut s, false);
    let (h2, b2) = read_response(&mut s, false);
    assert!(h1.starts_with("HTTP/1.1 200") && h2.starts_with("HTTP/1.1 200"));
    assert_eq!((b1.as_str(), b2.as_str()), ("OK\n", "OK\n"));
    assert!(h2.contains("Connection: close"));
    let mut rest = Vec::new();
    assert_eq!(
        s.read_to_end(&mut rest).unwrap(),
        0,
        "closed after Connection: close"
    );
}

#[test]
fn http_1_0_closes_after_the_response() {
    let gw = Gateway::start(&[]);
    let (status, head, _) = http_request(gw.addr, "GET /metrics HTTP/1.0\r\n\r\n");
    assert_eq!(status, 200);
    assert!(head.contains("Connection: close"));
}

#[test]
fn index_health_unknown_paths_and_methods() {
    let gw = Gateway::start(&[]);
    let (status, head, body) = gw.get("/");
    assert_eq!(status, 200);
    assert!(head.contains("text/html"));
    assert!(body.contains("href=\"/metrics\""), "{body}");
    assert_eq!(gw.get("/-/healthy").0, 200);
    assert_eq!(gw.get("/-/ready").0, 200);
    let (status, _, body) = gw.get("/nope");
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    for method in ["POST", "PUT", "DELETE", "PATCH"] {
        let (status, head, body) = http_request(
            gw.addr,
            &format!(
                "{method} /metrics HTTP/1.1\r\nHost: t\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
            ),
        );
        assert_eq!(status, 405, "{method}");
        assert!(head.contains("\r\nAllow: GET, HEAD"), "{head}");
        assert!(body.contains("read-only"), "{body}");
    }
}

#[test]
fn the_tcp_port_never_accepts_pushes() {
    let gw = Gateway::start(&[]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    s.write_all(b"tcp_push 1\n\n").unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    assert!(String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 400"));
    let body = "tcp_push 1\n";
    let (status, _, _) = http_request(
        gw.addr,
        &format!(
            "PUT /metrics/job/x HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ),
    );
    assert_eq!(status, 405);
    assert!(!gw.scrape().contains("tcp_push"));
}

#[test]
fn oversized_and_malformed_requests_get_an_error_and_a_close() {
    let gw = Gateway::start(&[]);
    let big = format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Big: {}\r\n\r\n",
        "a".repeat(10_000)
    );
    let (status, head, body) = http_request(gw.addr, &big);
    assert_eq!(status, 431, "{head}");
    assert!(body.contains("too large"), "{body}");
    // As the Pushgateway answers an HTTP version it does not speak.
    let (status, _, _) = http_request(gw.addr, "GET /metrics HTTP/3.0\r\n\r\n");
    assert_eq!(status, 505);
    // The gateway still serves others.
    assert_eq!(gw.get("/metrics").0, 200);
}

#[test]
fn a_scraper_that_disconnects_mid_response_harms_no_one() {
    let gw = Gateway::start(&["--cache-bytes", "1MiB"]);
    let lines: String = (0..5000)
        .map(|i| format!("big_page{{n=\"{i}\"}} {i}\n"))
        .collect();
    gw.push(&lines);
    for _ in 0..20 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 100];
        let _ = s.read(&mut first);
        drop(s);
    }
    let page = gw.scrape();
    assert_eq!(
        page.lines().filter(|l| l.starts_with("big_page{")).count(),
        5000
    );
}

#[test]
fn a_slow_request_is_cut_off_after_the_request_timeout() {
    let gw = Gateway::start(&[]);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(b"GET /metr").unwrap();
    let mut reply = String::new();
    let started = std::time::Instant::now();
    let _ = s.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(gw.get("/metrics").0, 200);
}

#[test]
fn connections_past_the_limit_are_refused_and_others_keep_being_served() {
    let gw = Gateway::start(&["--max-scrape-connections", "4"]);
    // The harness's readiness probes have closed; hold all four slots with
    // connections in the middle of a request that keep moving bytes (busy:
    // never closed for a newcomer).
    std::thread::sleep(Duration::from_millis(200));
    let mut held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Hold: ")
                .unwrap();
            s
        })
        .collect();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut pokes: Vec<TcpStream> = held.iter().map(|s| s.try_clone().unwrap()).collect();
    let stopped = stop.clone();
    let poker = std::thread::spawn(move || {
        while !stopped.load(std::sync::atomic::Ordering::Relaxed) {
            for s in &mut pokes {
                s.write_all(b"a").unwrap();
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    });
    // Refused (after a moment in the backlog), its request never read.
    let mut refused = TcpStream::connect(gw.addr).unwrap();
    refused.set_read_timeout(Some(WAIT)).unwrap();
    let mut reply = String::new();
    refused.read_to_string(&mut reply).unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    poker.join().unwrap();
    let (status, _, body) = split_response(&reply);
    assert_eq!(status, 503);
    assert!(body.contains("--max-scrape-connections"), "{body}");
    // Pushers have a budget of their own.
    assert_eq!(gw.push("not_refused 1\n"), "");
    // A held connection is still served.
    held[0].set_read_timeout(Some(WAIT)).unwrap();
    held[0].write_all(b"\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    held[0].read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    held.clear();
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(gw.get("/metrics").0, 200);
}

#[test]
fn metrics_on_the_push_socket_serve_the_same_page() {
    let gw = Gateway::start(&[]);
    gw.push("local_scrape 5\n");
    let mut s = gw.connect();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    let (status, _, body) = split_response(&reply);
    assert_eq!(status, 200);
    assert_eq!(body, gw.scrape());
}

#[test]
fn a_slow_reader_gets_the_page_then_the_gateways_own_metrics() {
    let gw = Gateway::start_full(&["--cache-bytes", "4MiB"]);
    let series = 20_000;
    let lines: String = (0..series)
        .map(|i| format!("slow_page{{n=\"{i:05}\",pad=\"padding-padding-padding\"}} {i}\n"))
        .collect();
    gw.push(&lines);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut bodies = Vec::new();
    for _ in 0..2 {
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
            .unwrap();
        // More than the socket buffers hold: the gateway sends the rest as
        // room frees while we read.
        std::thread::sleep(Duration::from_millis(300));
        let (head, body) = read_response(&mut s, false);
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        bodies.push(body);
    }
    let mut pages = Vec::new();
    for body in &bodies {
        let own = body.find("# HELP push_gateway_").expect("own metrics");
        let (page, tail) = body.split_at(own);
        assert_eq!(
            page.lines().filter(|l| l.starts_with("slow_page{")).count(),
            series
        );
        assert!(!page.contains("push_gateway_"));
        assert!(
            tail.lines()
                .all(|l| l.starts_with("push_gateway_") || l.starts_with("# ")),
            "{tail}"
        );
        assert!(tail.contains(&format!("\npush_gateway_series {series}\n")));
        assert!(tail.ends_with("\npush_gateway_snapshot_writes_total 0\n"));
        pages.push(page);
    }
    assert_eq!(pages[0], pages[1]);
    let scrapes = |b: &str| value_of(b, "push_gateway_scrapes_total");
    assert_eq!(scrapes(&bodies[0]).as_deref(), Some("1"));
    assert_eq!(scrapes(&bodies[1]).as_deref(), Some("2"));
    // HEAD: the same length (one more scrape, same digits), no body.
    s.write_all(b"HEAD /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let (head, _) = read_response(&mut s, true);
    assert!(
        head.contains(&format!("\r\nContent-Length: {}\r\n", bodies[1].len())),
        "{head}"
    );
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(
        rest.starts_with("HTTP/1.1 200") && rest.ends_with("\r\n\r\nOK\n"),
        "{rest}"
    );
}

//! Push modes of other gateways, against the real binary with real curl:
//! per-push TTL, drain-on-scrape, counter aggregation, delete by name and
//! wipe.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::*;

fn url(path: &str) -> String {
    format!("http://localhost{path}")
}

fn send(gw: &Gateway, method: &str, path: &str, headers: &[&str], body: &str) -> (u16, String) {
    let mut args = vec!["-X", method, "--data-binary", "@-"];
    for h in headers {
        args.push("-H");
        args.push(h);
    }
    let target = url(path);
    args.push(&target);
    curl(gw, &args, Some(body))
}

#[test]
fn push_ttl_header_sets_the_group_ttl_within_the_maximum() {
    let gw = Gateway::start(&["--ttl", "60s", "--max-ttl", "1h"]);
    let (code, _) = send(
        &gw,
        "PUT",
        "/metrics/job/short",
        &["Push-TTL: 1s"],
        "brief 1\n",
    );
    assert_eq!(code, 200);
    assert_eq!(
        send(&gw, "PUT", "/metrics/job/long", &[], "lasting 1\n").0,
        200
    );
    let started = Instant::now();
    let page = gw.scrape_until("the 1s group to expire", |p| !p.contains("brief{"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        page.contains("lasting{instance=\"\",job=\"long\"} 1"),
        "{page}"
    );
    // A bare number is refused too: the unit is not guessed. The refusal
    // names the limit in force, so the pusher knows what it may ask for.
    for bad in [
        "Push-TTL: 2h",
        "Push-TTL: soon",
        "Push-TTL: 0s",
        "Push-TTL: 60",
    ] {
        let (code, body) = send(&gw, "PUT", "/metrics/job/bad", &[bad], "x 1\n");
        assert_eq!(code, 400, "{bad}");
        assert!(body.contains("--max-ttl 1h"), "{body}");
    }
}

#[test]
fn a_ttl_line_sets_the_ttl_of_the_stream_lines_after_it() {
    let gw = Gateway::start(&["--ttl", "60s"]);
    let reply = gw.push("stays 1\n# TTL 1s\ngoes 1\n# TTL forever\n");
    assert!(reply.starts_with("error: line 4: invalid TTL"), "{reply}");
    let page = gw.scrape_until("the 1s series to expire", |p| !p.contains("goes "));
    assert!(page.contains("stays 1"), "{page}");
}

#[test]
fn drain_on_scrape_delivers_each_sample_once() {
    let gw = Gateway::start(&["--drain-on-scrape"]);
    gw.push("once_total 5\n");
    assert_eq!(
        send(&gw, "PUT", "/metrics/job/batch", &[], "result 1\n").0,
        200
    );
    let first = gw.scrape();
    assert!(first.contains("once_total 5"), "{first}");
    assert!(
        first.contains("result{instance=\"\",job=\"batch\"} 1"),
        "{first}"
    );
    let second = gw.scrape();
    assert!(!second.contains("once_total"), "{second}");
    assert!(!second.contains("result{"), "{second}");
    // A new write is delivered again.
    gw.push("once_total 6\n");
    assert!(gw.scrape().contains("once_total 6"));
    // HEAD sends no page, so it drains nothing.
    gw.push("kept_total 1\n");
    let (status, _, _) = http_request(
        gw.addr,
        "HEAD /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(gw.scrape().contains("kept_total 1"));
}

#[test]
fn a_push_drain_header_drains_only_that_group() {
    let gw = Gateway::start(&[]);
    let (code, _) = send(
        &gw,
        "PUT",
        "/metrics/job/drained",
        &["Push-Drain: true"],
        "d 1\n",
    );
    assert_eq!(code, 200);
    assert_eq!(send(&gw, "PUT", "/metrics/job/kept", &[], "k 1\n").0, 200);
    assert!(gw.scrape().contains("d{instance=\"\",job=\"drained\"} 1"));
    let page = gw.scrape();
    assert!(!page.contains("d{instance"), "{page}");
    assert!(page.contains("k{instance=\"\",job=\"kept\"} 1"), "{page}");
    // The drained group goes with its last series: no push times are left
    // for a group that holds nothing (the kept group keeps its own).
    assert!(!page.contains("job=\"drained\""), "{page}");
    assert!(
        page.contains("push_time_seconds{instance=\"\",job=\"kept\"}"),
        "{page}"
    );
}

/// Requests the page and drops the connection after a few bytes, with
/// most of the page unread.
fn failed_scrape(gw: &Gateway) {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut first = [0u8; 64];
    s.read_exact(&mut first).unwrap();
    drop(s);
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn an_incomplete_scrape_does_not_drain_up_to_three_attempts() {
    let gw = Gateway::start_full(&["--drain-on-scrape", "--cache-bytes", "64MiB"]);
    // A page of several MiB, far more than socket buffers hold.
    let mut s = gw.connect();
    let mut batch = String::new();
    for i in 0..300_000 {
        batch.push_str(&format!(
            "drain_me{{n=\"{i:06}\",pad=\"xxxxxxxxxxxxxxxx\"}} {i}\n"
        ));
    }
    s.write_all(batch.as_bytes()).unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "");
    failed_scrape(&gw);
    let (status, _, page) = http_request(
        gw.addr,
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200);
    assert!(
        page.contains("drain_me{n=\"000000\""),
        "undelivered series were drained"
    );
    // That complete scrape delivered them: now they are gone.
    assert!(!gw.scrape().contains("drain_me{"));
    // Three failed deliveries drop a series.
    gw.push("stubborn 1\n");
    let mut filler = gw.connect();
    filler
        .write_all(batch.replace("drain_me", "filler").as_bytes())
        .unwrap();
    filler.shutdown(std::net::Shutdown::Write).unwrap();
    let _ = filler.read_to_string(&mut reply);
    for _ in 0..3 {
        failed_scrape(&gw);
    }
    let page = gw.scrape();
    assert!(
        !page.contains("stubborn 1"),
        "kept after three failed deliveries"
    );
    let dropped: f64 = value_of(
        &page,
        "push_gateway_evictions_total{reason=\"drain_failed\"}",
    )
    .unwrap()
    .parse()
    .unwrap();
    assert!(dropped >= 300_001.0, "{dropped}");
}

#[test]
fn patch_adds_counters_replaces_gauges_and_adds_histograms_bucket_wise() {
    let gw = Gateway::start(&[]);
    let body = "# TYPE jobs_total counter\njobs_total 2\n\
                # TYPE temp gauge\ntemp 20\n\
                # TYPE lat_seconds histogram\n\
                lat_seconds_bucket{le=\"1\"} 1\nlat_seconds_bucket{le=\"+Inf\"} 2\n\
                lat_seconds_sum 3.5\nlat_seconds_count 2\n\
                plain 1\n";
    for _ in 0..3 {
        assert_eq!(send(&gw, "PATCH", "/metrics/job/agg", &[], body).0, 200);
    }
    let page = gw.scrape();
    for (series, want) in [
        ("jobs_total{instance=\"\",job=\"agg\"}", "6"),
        ("temp{instance=\"\",job=\"agg\"}", "20"),
        (
            "lat_seconds_bucket{instance=\"\",job=\"agg\",le=\"1\"}",
            "3",
        ),
        (
            "lat_seconds_bucket{instance=\"\",job=\"agg\",le=\"+Inf\"}",
            "6",
        ),
        ("lat_seconds_sum{instance=\"\",job=\"agg\"}", "10.5"),
        ("lat_seconds_count{instance=\"\",job=\"agg\"}", "6"),
        ("plain{instance=\"\",job=\"agg\"}", "3"),
    ] {
        assert_eq!(
            value_of(&page, series).as_deref(),
            Some(want),
            "{series}\n{page}"
        );
    }
}

#[test]
fn the_counter_shortcut_counts_without_a_client_library() {
    let gw = Gateway::start(&[]);
    let target = url("/counter/jobs_done_total?result=ok&queue=mail%20out");
    for _ in 0..3 {
        assert_eq!(curl(&gw, &["-X", "PATCH", &target], None).0, 200);
    }
    assert_eq!(
        curl(&gw, &["-X", "PATCH", "--data-binary", "2.5", &target], None).0,
        200
    );
    let page = gw.scrape();
    assert!(page.contains("# TYPE jobs_done_total counter\n"), "{page}");
    assert_eq!(
        value_of(&page, "jobs_done_total{queue=\"mail out\",result=\"ok\"}").as_deref(),
        Some("5.5"),
        "{page}"
    );
    for (body, path) in [
        ("-1", "/counter/jobs_done_total"),
        ("many", "/counter/jobs_done_total"),
        ("", "/counter/bad-name"),
        ("", "/counter/x?1bad=label"),
    ] {
        let (code, text) = curl(
            &gw,
            &["-X", "PATCH", "--data-binary", body, &url(path)],
            None,
        );
        assert_eq!(code, 400, "{path} {body}: {text}");
    }
    // Gauges are not counters.
    gw.push("# TYPE level gauge\nlevel 3\n");
    assert_eq!(
        curl(&gw, &["-X", "PATCH", &url("/counter/level")], None).0,
        400
    );
    // The scrape port stays read-only.
    let (status, _, _) = http_request(
        gw.addr,
        "PATCH /counter/jobs_done_total HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
}

#[test]
fn delete_by_name_across_groups_and_wipe() {
    let gw = Gateway::start(&[]);
    assert_eq!(
        send(
            &gw,
            "PUT",
            "/metrics/job/a",
            &[],
            "gone{zone=\"x\"} 1\nstay 1\n"
        )
        .0,
        200
    );
    assert_eq!(
        send(&gw, "PUT", "/metrics/job/b", &[], "gone{zone=\"y\"} 2\n").0,
        200
    );
    gw.push("gone{zone=\"x\",src=\"stream\"} 3\n");
    let (code, _) = curl(
        &gw,
        &["-X", "DELETE", &url("/metrics/name/gone?zone=x")],
        None,
    );
    assert_eq!(code, 202);
    let page = gw.scrape();
    assert!(!page.contains("zone=\"x\""), "{page}");
    assert!(
        page.contains("gone{instance=\"\",job=\"b\",zone=\"y\"} 2"),
        "{page}"
    );
    assert_eq!(
        curl(&gw, &["-X", "DELETE", &url("/metrics/name/gone")], None).0,
        202
    );
    let page = gw.scrape();
    assert!(!page.contains("gone{"), "{page}");
    assert!(page.contains("stay{instance=\"\",job=\"a\"} 1"), "{page}");
    assert_eq!(
        curl(&gw, &["-X", "GET", &url("/metrics/name/stay")], None).0,
        405
    );
    assert_eq!(
        curl(&gw, &["-X", "PUT", &url("/api/v1/admin/wipe")], None).0,
        202
    );
    assert_eq!(gw.scrape(), "");
    // Wipe is not served on the read-only port.
    let (status, _, _) = http_request(
        gw.addr,
        "PUT /api/v1/admin/wipe HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 405);
}

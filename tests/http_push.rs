//! Pushgateway-compatible HTTP pushes on the push socket, driven by the
//! real curl (`curl --unix-socket`), as migrating users' jobs do.

mod common;

use std::io::{Read, Write};
use std::process::Command;
use std::time::{Duration, Instant};

use common::*;

fn put(gw: &Gateway, path: &str, body: &str) -> (u16, String) {
    let url = format!("http://localhost{path}");
    curl(gw, &["-X", "PUT", "--data-binary", "@-", &url], Some(body))
}

fn post(gw: &Gateway, path: &str, body: &str) -> (u16, String) {
    let url = format!("http://localhost{path}");
    curl(gw, &["--data-binary", "@-", &url], Some(body))
}

#[test]
fn the_pushgateway_readme_examples_work_unchanged() {
    let gw = Gateway::start(&[]);
    let (code, _) = post(&gw, "/metrics/job/some_job", "some_metric 3.14\n");
    assert_eq!(code, 200);
    let (code, body) = post(
        &gw,
        "/metrics/job/some_job/instance/some_instance",
        "# TYPE some_metric untyped\nsome_metric{label=\"val1\"} 42\n\
         # TYPE another_metric gauge\n# HELP another_metric Just an example.\nanother_metric 2398.283\n",
    );
    assert_eq!(code, 200, "{body}");
    let page = gw.scrape();
    assert_eq!(
        value_of(&page, "some_metric{instance=\"\",job=\"some_job\"}").as_deref(),
        Some("3.14")
    );
    assert_eq!(
        value_of(
            &page,
            "some_metric{instance=\"some_instance\",job=\"some_job\",label=\"val1\"}"
        )
        .as_deref(),
        Some("42")
    );
    assert!(
        page.contains("# HELP another_metric Just an example.\n# TYPE another_metric gauge\n"),
        "{page}"
    );
    let url = "http://localhost/metrics/job/some_job/instance/some_instance";
    assert_eq!(curl(&gw, &["-X", "DELETE", url], None).0, 202);
    let page = gw.scrape();
    assert!(!page.contains("some_instance"), "{page}");
    assert!(
        page.contains("some_metric{instance=\"\",job=\"some_job\"} 3.14"),
        "{page}"
    );
}

#[test]
fn put_replaces_the_group_and_post_only_the_named_families() {
    let gw = Gateway::start(&[]);
    let path = "/metrics/job/backup/host/db1";
    assert_eq!(put(&gw, path, "rows 10\nduration_seconds 2.5\n").0, 200);
    assert_eq!(post(&gw, path, "rows 11\n").0, 200);
    let page = gw.scrape();
    assert!(
        page.contains("rows{host=\"db1\",instance=\"\",job=\"backup\"} 11\n"),
        "{page}"
    );
    assert!(
        page.contains("duration_seconds{host=\"db1\",instance=\"\",job=\"backup\"} 2.5\n"),
        "{page}"
    );
    assert_eq!(put(&gw, path, "rows 12\n").0, 200);
    let page = gw.scrape();
    assert!(
        page.contains("rows{host=\"db1\",instance=\"\",job=\"backup\"} 12\n"),
        "{page}"
    );
    assert!(!page.contains("duration_seconds{"), "{page}");
    // An empty PUT keeps the group and its push time, without metrics.
    assert_eq!(put(&gw, path, "").0, 200);
    let page = gw.scrape();
    assert!(!page.contains("rows{"), "{page}");
    assert!(
        page.contains("push_time_seconds{host=\"db1\",instance=\"\",job=\"backup\"}"),
        "{page}"
    );
}

#[test]
fn grouping_labels_override_the_body_and_instance_defaults_to_empty() {
    let gw = Gateway::start(&[]);
    let body = "m{job=\"ignored\",zone=\"a\"} 1\nn{instance=\"own\"} 2\n";
    assert_eq!(put(&gw, "/metrics/job/j", body).0, 200);
    let page = gw.scrape();
    assert!(
        page.contains("m{instance=\"\",job=\"j\",zone=\"a\"} 1\n"),
        "{page}"
    );
    assert!(page.contains("n{instance=\"own\",job=\"j\"} 2\n"), "{page}");
}

#[test]
fn base64_and_percent_encoded_paths() {
    let gw = Gateway::start(&[]);
    // "/var/tmp" in URL-safe base64, with and without padding; `=` is "".
    assert_eq!(
        put(&gw, "/metrics/job@base64/L3Zhci90bXA", "b64 1\n").0,
        200
    );
    assert_eq!(
        put(&gw, "/metrics/job/j/dir@base64/L3Zhci90bXA=", "b64 2\n").0,
        200
    );
    assert_eq!(put(&gw, "/metrics/job/j/empty@base64/=", "b64 3\n").0, 200);
    assert_eq!(put(&gw, "/metrics/job/a%20b/q/x%2Fy%22z", "pct 4\n").0, 200);
    let page = gw.scrape();
    for want in [
        "b64{instance=\"\",job=\"/var/tmp\"} 1",
        "b64{dir=\"/var/tmp\",instance=\"\",job=\"j\"} 2",
        "b64{empty=\"\",instance=\"\",job=\"j\"} 3",
        "pct{instance=\"\",job=\"a b\",q=\"x/y\\\"z\"} 4",
    ] {
        assert!(page.contains(want), "{want} missing from\n{page}");
    }
}

#[test]
fn push_times_are_unix_seconds_and_failures_are_recorded() {
    let gw = Gateway::start(&[]);
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64();
    assert_eq!(put(&gw, "/metrics/job/t", "ok_metric 1\n").0, 200);
    let page = gw.scrape();
    let pushed: f64 = value_of(&page, "push_time_seconds{instance=\"\",job=\"t\"}")
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        pushed >= before - 1.0 && pushed < before + 60.0,
        "{pushed} vs {before}"
    );
    assert_eq!(
        value_of(&page, "push_failure_time_seconds{instance=\"\",job=\"t\"}").as_deref(),
        Some("0")
    );
    // A body that does not parse is recorded nowhere, as the Pushgateway
    // does; one that parses and fails a check is.
    let (code, body) = put(&gw, "/metrics/job/t", "ok_metric 2\nbroken{ 3\n");
    assert_eq!(code, 400);
    assert!(body.starts_with("line 2: "), "{body}");
    assert_eq!(
        value_of(
            &gw.scrape(),
            "push_failure_time_seconds{instance=\"\",job=\"t\"}"
        )
        .as_deref(),
        Some("0")
    );
    let (code, body) = put(
        &gw,
        "/metrics/job/t",
        "ok_metric 2\nstamped 3 1700000000000\n",
    );
    assert_eq!(code, 400);
    assert!(body.starts_with("line 2: timestamps"), "{body}");
    let page = gw.scrape();
    let failed: f64 = value_of(&page, "push_failure_time_seconds{instance=\"\",job=\"t\"}")
        .unwrap()
        .parse()
        .unwrap();
    assert!(failed >= pushed, "{page}");
    // All or nothing: the first line of the failed push did not land.
    assert_eq!(
        value_of(&page, "ok_metric{instance=\"\",job=\"t\"}").as_deref(),
        Some("1")
    );
}

#[test]
fn chunked_bodies_from_curl_upload() {
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let body: String = (0..300)
        .map(|i| format!("chunky{{n=\"{i}\"}} {i}\n"))
        .collect();
    let (code, out) = curl(
        &gw,
        &["-T", "-", "http://localhost/metrics/job/chunked"],
        Some(&body),
    );
    assert_eq!(code, 200, "{out}");
    let page = gw.scrape();
    assert_eq!(page.matches("chunky{").count(), 300);
}

#[test]
fn expect_100_continue_is_answered_at_once() {
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let body: String = (0..200)
        .map(|i| format!("expect{{n=\"{i}\"}} {i}\n"))
        .collect();
    let started = Instant::now();
    // curl would wait this long for the interim 100 before sending anyway.
    let (code, _) = curl(
        &gw,
        &[
            "--expect100-timeout",
            "20",
            "-H",
            "Expect: 100-continue",
            "--data-binary",
            "@-",
            "http://localhost/metrics/job/expect",
        ],
        Some(&body),
    );
    assert_eq!(code, 200);
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "curl waited for 100 Continue"
    );
    assert_eq!(gw.scrape().matches("expect{").count(), 200);
}

#[test]
fn keep_alive_carries_several_requests_on_one_connection() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    for i in 0..3 {
        let body = format!("ka_metric {i}\n");
        write!(
            s,
            "PUT /metrics/job/ka HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .unwrap();
        let mut head = [0u8; 200];
        let n = s.read(&mut head).unwrap();
        let head = String::from_utf8_lossy(&head[..n]);
        assert!(head.starts_with("HTTP/1.1 200 OK\r\n"), "{head}");
        assert!(head.ends_with("Content-Length: 0\r\n\r\n"), "{head}");
    }
    s.write_all(b"DELETE /metrics/job/ka HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut rest = String::new();
    s.read_to_string(&mut rest).unwrap();
    assert!(rest.starts_with("HTTP/1.1 202 Accepted\r\n"), "{rest}");
    // curl's own connection reuse over two URLs.
    let out = Command::new("curl")
        .args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{num_connects} ",
            "--unix-socket",
        ])
        .arg(&gw.socket)
        .args(["http://localhost/metrics", "http://localhost/metrics"])
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "1 0 ");
}

#[test]
fn every_error_status_says_what_to_do() {
    let gw = Gateway::start(&["--max-body-bytes", "2KiB"]);
    let big_header = "X-Big: aaaaaaaaaaaaaaaa".repeat(600);
    let cases: Vec<(Vec<&str>, Option<String>, u16, &str)> = vec![
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/e",
            ],
            Some("bad line\n".into()),
            400,
            "line 1: invalid value",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/e",
            ],
            Some("ts 1 1700000000\n".into()),
            400,
            "timestamps are not accepted",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/e",
            ],
            Some("push_gateway_x 1\n".into()),
            400,
            "the gateway's own",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/",
            ],
            Some("x 1\n".into()),
            400,
            "job name is empty",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/e/odd",
            ],
            Some("x 1\n".into()),
            400,
            "pairs",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/nowhere",
            ],
            Some("x 1\n".into()),
            404,
            "not found",
        ),
        (
            vec!["-X", "GET", "http://localhost/metrics/job/e"],
            None,
            405,
            "PUT, POST or PATCH",
        ),
        (
            vec![
                "-X",
                "PUT",
                "--data-binary",
                "@-",
                "http://localhost/metrics/job/e",
            ],
            Some("x 1\n".repeat(1000)),
            413,
            "--max-body-bytes",
        ),
        (
            vec!["-H", &big_header, "http://localhost/metrics"],
            None,
            431,
            "too large",
        ),
    ];
    for (args, body, want, says) in cases {
        let (code, text) = curl(&gw, &args, body.as_deref());
        assert_eq!(code, want, "{args:?}: {text}");
        assert!(text.contains(says), "{want}: {text}");
    }
    // An encoding the gateway does not decode gets a clear refusal, not
    // a parse error.
    let (code, text) = curl(
        &gw,
        &[
            "-X",
            "PUT",
            "-H",
            "Content-Encoding: br",
            "--data-binary",
            "@-",
            "http://localhost/metrics/job/gz",
        ],
        Some("\u{1f}\u{8b}compressed"),
    );
    assert_eq!(code, 415, "{text}");
    assert!(text.contains("gzip, snappy (framed) or identity"), "{text}");
    // A type that disagrees with another group's.
    assert_eq!(
        put(&gw, "/metrics/job/a", "# TYPE typed counter\ntyped 1\n").0,
        200
    );
    let (code, text) = put(&gw, "/metrics/job/b", "# TYPE typed gauge\ntyped 1\n");
    assert_eq!(code, 400);
    assert!(text.contains("another TYPE"), "{text}");
    // The gateway keeps serving.
    assert!(gw.scrape().contains("typed{instance=\"\",job=\"a\"} 1"));
}

#[test]
fn a_group_expires_as_a_whole_after_the_ttl() {
    let gw = Gateway::start(&["--ttl", "1500ms"]);
    assert_eq!(put(&gw, "/metrics/job/ttl", "first 1\nsecond 2\n").0, 200);
    std::thread::sleep(Duration::from_millis(800));
    // A POST of one family renews the whole group.
    assert_eq!(post(&gw, "/metrics/job/ttl", "first 3\n").0, 200);
    std::thread::sleep(Duration::from_millis(1000));
    let page = gw.scrape();
    assert!(
        page.contains("second{instance=\"\",job=\"ttl\"} 2"),
        "{page}"
    );
    gw.scrape_until("the group to expire", |p| !p.contains("job=\"ttl\""));
}

#[test]
fn pushed_groups_share_the_budget_with_streamed_series() {
    let gw = Gateway::start(&["--cache-bytes", "4KiB"]);
    assert_eq!(put(&gw, "/metrics/job/old", "old_metric 1\n").0, 200);
    for i in 0..100 {
        gw.push(&format!("stream_flood{{n=\"{i}\"}} {i}\n"));
    }
    let page = gw.scrape();
    assert!(
        !page.contains("job=\"old\""),
        "the least recently pushed group is evicted:\n{page}"
    );
    assert!(page.contains("stream_flood{n=\"99\"} 99"), "{page}");
}

#[test]
fn the_socat_bridge_forwards_pushes_byte_for_byte() {
    let gw = Gateway::start(&[]);
    let port = free_port();
    let mut bridge = Command::new("socat")
        .arg(format!("TCP-LISTEN:{port},bind=127.0.0.1,fork,reuseaddr"))
        .arg(format!("UNIX-CONNECT:{}", gw.socket.display()))
        .spawn()
        .expect(
            "socat is needed for this test: run tests/e2e/install.sh (or apt-get install socat)",
        );
    let deadline = Instant::now() + WAIT;
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "socat did not start");
        std::thread::sleep(Duration::from_millis(20));
    }
    let out = Command::new("curl")
        .args(["-s", "-w", "%{http_code}", "--data-binary", "bridged 7\n"])
        .arg(format!("http://127.0.0.1:{port}/metrics/job/bridge"))
        .output()
        .unwrap();
    let _ = bridge.kill();
    let _ = bridge.wait();
    assert_eq!(String::from_utf8_lossy(&out.stdout), "200");
    assert!(
        gw.scrape()
            .contains("bridged{instance=\"\",job=\"bridge\"} 7")
    );
}

//! The line stream protocol against the real binary: values, TTL,
//! eviction, error replies, split lines, concurrency.

mod common;

use std::io::{Read, Write};
use std::time::Duration;

use common::*;

#[test]
fn pushed_values_are_served() {
    let gw = Gateway::start(&[]);
    let reply = gw.push(
        "# HELP temp_celsius Room temperature.\n\
         # TYPE temp_celsius gauge\n\
         temp_celsius{room=\"kitchen\"} 21.5\n\
         temp_celsius{room=\"hall\"} -3.5e-7\n\
         jobs_done_total{result=\"ok\"} 7\n",
    );
    assert_eq!(reply, "");
    let page = gw.scrape();
    assert_eq!(
        page,
        "# TYPE jobs_done_total untyped\n\
         jobs_done_total{result=\"ok\"} 7\n\
         # HELP temp_celsius Room temperature.\n\
         # TYPE temp_celsius gauge\n\
         temp_celsius{room=\"hall\"} -3.5e-7\n\
         temp_celsius{room=\"kitchen\"} 21.5\n"
    );
}

#[test]
fn a_write_replaces_the_value_and_label_order_does_not_matter() {
    let gw = Gateway::start(&[]);
    gw.push("m{a=\"1\",b=\"2\"} 1\n");
    gw.push("m{b=\"2\",a=\"1\"} 2\n");
    let page = gw.scrape();
    assert_eq!(value_of(&page, "m{a=\"1\",b=\"2\"}").as_deref(), Some("2"));
    assert_eq!(page.matches("m{").count(), 1, "{page}");
}

#[test]
fn special_values_and_escapes_round_trip() {
    let gw = Gateway::start(&[]);
    gw.push(
        "v{k=\"NaN\"} NaN\nv{k=\"inf\"} +Inf\nv{k=\"ninf\"} -Inf\n\
         v{k=\"esc\",p=\"a\\\\b\\\"c\\nd\"} 1\n",
    );
    let page = gw.scrape();
    assert_eq!(value_of(&page, "v{k=\"NaN\"}").as_deref(), Some("NaN"));
    assert_eq!(value_of(&page, "v{k=\"inf\"}").as_deref(), Some("+Inf"));
    assert_eq!(value_of(&page, "v{k=\"ninf\"}").as_deref(), Some("-Inf"));
    assert_eq!(
        value_of(&page, "v{k=\"esc\",p=\"a\\\\b\\\"c\\nd\"}").as_deref(),
        Some("1")
    );
}

#[test]
fn series_expire_after_the_ttl_since_their_last_write() {
    let gw = Gateway::start(&["--ttl", "1500ms"]);
    gw.push("short_lived 1\nrefreshed 1\n");
    std::thread::sleep(Duration::from_millis(800));
    gw.push("refreshed 2\n");
    // `short_lived` goes 1.5 s after its write; `refreshed` lives on.
    let page = gw.scrape_until("short_lived to expire", |p| !p.contains("short_lived"));
    assert_eq!(value_of(&page, "refreshed").as_deref(), Some("2"));
    gw.scrape_until("refreshed to expire", |p| p.is_empty());
}

#[test]
fn the_least_recently_written_series_is_evicted_when_the_budget_is_full() {
    let gw = Gateway::start(&["--cache-bytes", "2KiB"]);
    // Each series costs about 80 bytes of a 2 KiB budget: 100 cannot fit.
    for i in 0..100 {
        gw.push(&format!("evict_me{{n=\"{i:03}\"}} {i}\n"));
    }
    let page = gw.scrape();
    let kept: Vec<_> = page
        .lines()
        .filter(|l| l.starts_with("evict_me{"))
        .collect();
    assert!(kept.len() > 5 && kept.len() < 100, "{page}");
    // The survivors are exactly the newest ones.
    let first_kept = 100 - kept.len();
    for (i, line) in kept.iter().enumerate() {
        assert_eq!(
            *line,
            format!("evict_me{{n=\"{:03}\"}} {}", first_kept + i, first_kept + i)
        );
    }
}

#[test]
fn bad_lines_are_answered_and_skipped_and_the_stream_goes_on() {
    let gw = Gateway::start(&[]);
    let reply = gw.push(
        "good_one 1\n\
         bad-name 2\n\
         with_ts 3 1700000000000\n\
         no_value\n\
         good_two 2\n",
    );
    assert_eq!(
        reply,
        "error: line 2: invalid metric name: use [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. jobs_done_total 3\n\
         error: line 3: timestamps are not accepted: the sample time is the scrape time; drop the timestamp\n\
         error: line 4: invalid value: use a number such as 1, -3.5e-7, NaN, +Inf or -Inf\n"
    );
    let page = gw.scrape();
    assert!(
        page.contains("good_one 1\n") && page.contains("good_two 2\n"),
        "{page}"
    );
    assert!(!page.contains("with_ts"), "{page}");
}

#[test]
fn invalid_utf8_and_nul_bytes_are_rejected() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    s.write_all(b"u{l=\"\xff\xfe\"} 1\nn\0ul 1\nafter 1\n")
        .unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert!(reply.starts_with("error: line 1: invalid UTF-8"), "{reply}");
    assert!(
        reply.contains("error: line 2: invalid metric name"),
        "{reply}"
    );
    assert_eq!(value_of(&gw.scrape(), "after").as_deref(), Some("1"));
}

#[test]
fn an_over_long_line_is_skipped_up_to_its_newline() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    s.write_all(b"before 1\nhuge{l=\"").unwrap();
    // 1 MiB of one line, in pieces, never buffered whole.
    let piece = vec![b'x'; 64 * 1024];
    for _ in 0..16 {
        s.write_all(&piece).unwrap();
    }
    s.write_all(b"\"} 1\nafter 2\n").unwrap();
    s.shutdown(std::net::Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(
        reply,
        "error: line 2: line too long: the limit is 4096 bytes; split the series or shorten its labels\n"
    );
    let page = gw.scrape();
    assert!(
        page.contains("before 1\n") && page.contains("after 2\n"),
        "{page}"
    );
    assert!(!page.contains("huge"), "{page}");
}

#[test]
fn a_line_split_across_writes_is_reassembled() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    let text = b"# TYPE split_total counter\nsplit_total{part=\"a b\"} 42\n";
    for byte in text {
        s.write_all(std::slice::from_ref(byte)).unwrap();
        s.flush().unwrap();
        std::thread::sleep(Duration::from_millis(2));
    }
    let page = gw.scrape_until("the split line", |p| p.contains("split_total{"));
    assert!(
        page.contains("# TYPE split_total counter\nsplit_total{part=\"a b\"} 42\n"),
        "{page}"
    );
}

#[test]
fn a_last_line_without_newline_is_applied_at_eof() {
    let gw = Gateway::start(&[]);
    assert_eq!(gw.push("first 1\nlast_line 9"), "");
    assert_eq!(value_of(&gw.scrape(), "last_line").as_deref(), Some("9"));
}

#[test]
fn a_pusher_that_disconnects_mid_line_loses_only_that_line() {
    let gw = Gateway::start(&[]);
    {
        let mut s = gw.connect();
        s.write_all(b"whole 1\npartial{a=\"").unwrap();
    }
    gw.push("other 2\n");
    let page = gw.scrape_until("both pushes", |p| p.contains("other 2"));
    assert!(page.contains("whole 1\n"), "{page}");
    assert!(!page.contains("partial"), "{page}");
}

#[test]
fn a_long_lived_stream_applies_each_line_as_it_arrives() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    for i in 0..5 {
        s.write_all(format!("ticks {i}\n").as_bytes()).unwrap();
        let want = i.to_string();
        gw.scrape_until("the latest tick", |p| {
            value_of(p, "ticks").as_deref() == Some(&want)
        });
    }
}

#[test]
fn sixteen_concurrent_pushers_with_scrapes_in_the_middle() {
    let gw = Gateway::start(&["--cache-bytes", "1MiB"]);
    let addr = gw.addr;
    let scraper = std::thread::spawn(move || {
        for _ in 0..50 {
            let (status, _, body) = http_request(
                addr,
                "GET /metrics HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
            );
            assert_eq!(status, 200);
            // Every page is complete lines of valid samples.
            assert!(body.is_empty() || body.ends_with('\n'));
        }
    });
    let socket = gw.socket.clone();
    let pushers: Vec<_> = (0..16)
        .map(|p| {
            let socket = socket.clone();
            std::thread::spawn(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                for round in 0..200 {
                    let mut batch = String::new();
                    for n in 0..10 {
                        batch.push_str(&format!("conc{{pusher=\"{p}\",n=\"{n}\"}} {round}\n"));
                    }
                    s.write_all(batch.as_bytes()).unwrap();
                }
                s.shutdown(std::net::Shutdown::Write).unwrap();
                let mut reply = String::new();
                s.read_to_string(&mut reply).unwrap();
                assert_eq!(reply, "");
            })
        })
        .collect();
    for p in pushers {
        p.join().unwrap();
    }
    scraper.join().unwrap();
    let page = gw.scrape();
    for p in 0..16 {
        for n in 0..10 {
            let series = format!("conc{{n=\"{n}\",pusher=\"{p}\"}}");
            assert_eq!(value_of(&page, &series).as_deref(), Some("199"), "{series}");
        }
    }
}

/// Regression: a pusher writing faster than the gateway reads kept the one
/// thread busy, and scrapes waited (or starved) until it paused.
#[test]
fn regression_a_flooding_pusher_does_not_starve_scrapes() {
    let gw = Gateway::start(&["--cache-bytes", "1MiB"]);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flooders: Vec<_> = (0..2)
        .map(|p| {
            let (socket, stop) = (gw.socket.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut s = std::os::unix::net::UnixStream::connect(&socket).unwrap();
                let batch: String = (0..1000)
                    .map(|n| format!("flood{{p=\"{p}\",n=\"{n}\"}} {n}\n"))
                    .collect();
                while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                    if s.write_all(batch.as_bytes()).is_err() {
                        break;
                    }
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(300));
    for _ in 0..20 {
        let started = std::time::Instant::now();
        let (status, _, _) = http_request(
            gw.addr,
            "GET /-/healthy HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        );
        assert_eq!(status, 200);
        assert!(
            started.elapsed() < scaled(Duration::from_secs(5)),
            "a scrape waited {:?} behind a flooding pusher",
            started.elapsed()
        );
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for f in flooders {
        f.join().unwrap();
    }
}

//! Hostile clients against the real binary. Each test abuses the gateway
//! one way, then checks that another client is still answered correctly
//! and that the process's resident memory (`VmRSS`) stayed bounded.
//!
//! * connection churn: 10,000 connect/disconnect cycles on each listener;
//! * busy connections at a full budget: new ones refused and counted,
//!   held ones still served, a freed slot taken again;
//! * connection budgets (`budgets.rs`): reconnecting idle attackers on the
//!   TCP port (64 and 1,000 connections) while local pushes and scrapes
//!   all succeed; keep-alive holders closed idle longest first; half-line
//!   streams; a slow first line and a slow body timed out; what scrapers
//!   that never read pin in kernel send buffers;
//! * a slow client trickling one header byte per second, on both
//!   listeners: cut off after `REQUEST_TIMEOUT`;
//! * a pusher that sends megabytes of bad lines and never reads its error
//!   replies; pipelined requests from a client that never reads;
//! * 100 MB without a newline, invalid UTF-8, NUL bytes, pushers that hang
//!   up mid-line or mid-body, scrapers that hang up mid-response or never
//!   read;
//! * a cardinality flood: the budget holds, the least recently written
//!   series go first, evictions are counted, the page stays valid
//!   (`promtool check metrics` when installed, and `fuzz/check.rs`);
//! * security: the TCP port never changes anything; the push socket
//!   appears with its final mode; a symlink, a non-socket file or a live
//!   socket at `--socket` is refused and left as it was.
//! * open port and faults: the thief in drain mode gets 401 and takes
//!   nothing (`--scrape-auth-file`, bearer and basic); accept errors past
//!   the fd limit are logged rate-limited and the gateway recovers; a
//!   stopped instance with a full backlog does not hang the next one.
//!
//! The flood runs 100,000 series here; the full 1,000,000 is `#[ignore]`d
//! (about a minute in a debug build):
//! `cargo test --release --test hostile -- --ignored a_cardinality_flood_of_a_million`.

#[path = "hostile/budgets.rs"]
mod budgets;
#[path = "fuzz/check.rs"]
mod check;
mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, TcpStream};
use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use common::protobuf::histogram_body;
use common::*;
use push_gateway::limits::{REQUEST_TIMEOUT, worst_case_heap_bytes};

// ------------------------------------------------------------- helpers

/// Most the gateway's `VmRSS` may grow during one abuse, in KiB.
const RSS_GROWTH_MAX_KIB: u64 = 3 * 1024;

/// `VmRSS` of the gateway in KiB; `None` under a cross runner (where /proc
/// shows the emulator).
fn rss_kib(gw: &Gateway) -> Option<u64> {
    if std::env::var_os("PUSH_GATEWAY_TEST_RUNNER").is_some_and(|r| !r.is_empty()) {
        return None;
    }
    let status = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Asserts that `VmRSS` grew by at most `max_kib` since `before`.
fn assert_rss_bounded(gw: &Gateway, before: Option<u64>, max_kib: u64, what: &str) {
    let (Some(before), Some(after)) = (before, rss_kib(gw)) else {
        return;
    };
    eprintln!("{what}: VmRSS {before} kB before, {after} kB after");
    assert!(
        after <= before + max_kib,
        "{what}: VmRSS grew from {before} kB to {after} kB (allowed: +{max_kib} kB)"
    );
}

/// The numeric value of `series` on `page`.
fn metric(page: &str, series: &str) -> f64 {
    value_of(page, series)
        .unwrap_or_else(|| panic!("{series} missing from the page:\n{page}"))
        .parse()
        .unwrap()
}

/// Scrapes from a fresh TCP client and checks the page is valid.
fn scrape_valid(gw: &Gateway) -> String {
    let page = gw.scrape();
    check::assert_valid_page(page.as_bytes());
    page
}

/// Sends a raw HTTP request on the push socket; (status, whole reply).
fn unix_http(gw: &Gateway, raw: &[u8]) -> (u16, String) {
    let mut s = gw.connect();
    s.write_all(raw).unwrap();
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    let text = String::from_utf8_lossy(&reply).into_owned();
    (split_response(&text).0, text)
}

/// Sends raw bytes to the TCP port and reads the reply until the gateway
/// closes (or stops answering).
fn tcp_raw(gw: &Gateway, raw: &[u8]) -> String {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let _ = s.write_all(raw);
    let mut reply = Vec::new();
    let _ = s.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

/// Runs `promtool check metrics` on `page` if promtool is installed:
/// exit 0 (clean) or 3 (lint remarks only) pass, anything else fails.
fn promtool_accepts(page: &str) {
    let Ok(mut child) = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
    else {
        eprintln!("promtool not installed: page checked by fuzz/check.rs only");
        return;
    };
    let mut stdin = child.stdin.take().unwrap();
    let text = page.to_string();
    let writer = thread::spawn(move || {
        let _ = stdin.write_all(text.as_bytes());
    });
    let out = child.wait_with_output().unwrap();
    writer.join().unwrap();
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "promtool check metrics failed ({:?}): {}",
        out.status.code(),
        said.lines().take(5).collect::<Vec<_>>().join("\n")
    );
}

/// Waits for the harness's readiness probes to be closed by the gateway.
fn settle() {
    thread::sleep(Duration::from_millis(200));
}

// ------------------------------------------------------ connection churn

#[test]
fn ten_thousand_connect_disconnect_cycles_on_each_listener() {
    let gw = Gateway::start_full(&[]);
    gw.push("survivor 1\n");
    let before = rss_kib(&gw);
    let started = Instant::now();
    // One thread per listener; some connections leave a few bytes behind
    // (half a line, half a request).
    let socket = gw.socket.clone();
    let unix = thread::spawn(move || {
        for i in 0..10_000 {
            let mut u = UnixStream::connect(&socket).unwrap();
            if i % 100 == 0 {
                let _ = u.write_all(b"half_a_li");
            }
        }
    });
    let addr = gw.addr;
    let tcp = thread::spawn(move || {
        for i in 0..10_000 {
            let mut t = TcpStream::connect(addr).unwrap();
            if i % 100 == 0 {
                let _ = t.write_all(b"GET /met");
            }
        }
    });
    unix.join().unwrap();
    tcp.join().unwrap();
    eprintln!("20,000 connect/disconnect cycles: {:?}", started.elapsed());
    settle();
    let page = gw.scrape_until("the churned connections to be closed", |p| {
        value_of(p, "push_gateway_connections_open").as_deref() == Some("1")
    });
    check::assert_valid_page(page.as_bytes());
    assert_eq!(value_of(&page, "survivor").as_deref(), Some("1"));
    let accepted = metric(&page, "push_gateway_connections_accepted_total");
    let refused = metric(&page, "push_gateway_connections_refused_total");
    eprintln!("accepted {accepted}, refused {refused}");
    assert!(
        accepted + refused >= 20_000.0,
        "{accepted} + {refused} < 20000"
    );
    assert_eq!(gw.push("after_churn 1\n"), "");
    assert_eq!(value_of(&gw.scrape(), "after_churn").as_deref(), Some("1"));
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "connection churn");
}

/// Regression: a connection that had already sent everything and hung up
/// kept its slot until the end of the event batch it was accepted in, and
/// the accept loop kept accepting (and refusing) while the backlog
/// refilled: 172 of 300 one-line pushes, one after another, were refused.
#[test]
fn one_pusher_after_another_is_never_refused() {
    let gw = Gateway::start_full(&["--max-connections", "8", "--cache-bytes", "64KiB"]);
    for i in 0..300 {
        let mut s = UnixStream::connect(&gw.socket).unwrap();
        let _ = s.write_all(format!("one_after_another{{n=\"{i}\"}} 1\n").as_bytes());
    }
    // Let the backlog drain before scraping (with the defect, a scrape
    // arriving in the same batch is refused too).
    thread::sleep(Duration::from_secs(1));
    let page = gw.scrape_until("every push to be applied or refused", |p| {
        let applied = p.matches("\none_after_another{").count() as f64;
        applied
            + value_of(p, "push_gateway_connections_refused_total")
                .map_or(0.0, |v| v.parse::<f64>().unwrap())
            >= 300.0
    });
    assert_eq!(metric(&page, "push_gateway_connections_refused_total"), 0.0);
    assert_eq!(page.matches("\none_after_another{").count(), 300);
}

/// Regression: a TCP connection that sent nothing got the 300 s idle
/// timeout instead of `REQUEST_TIMEOUT` from the connect.
#[test]
fn silent_tcp_connections_cannot_lock_pushers_out() {
    let gw = Gateway::start(&["--max-connections", "4"]);
    settle();
    let mut silent: Vec<TcpStream> = (0..4)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    thread::sleep(REQUEST_TIMEOUT + Duration::from_secs(2));
    for s in &mut silent {
        s.set_read_timeout(Some(Duration::from_secs(1))).unwrap();
        let mut reply = Vec::new();
        let closed = s.read_to_end(&mut reply).is_ok();
        assert!(
            closed,
            "a silent connection is still open after {REQUEST_TIMEOUT:?}"
        );
    }
    assert_eq!(gw.push("not_locked_out 1\n"), "");
}

/// Busy connections (each in the middle of its first request) that keep
/// moving bytes are never closed for a newcomer: at a full budget the
/// newcomer waits a moment in the backlog, then is refused and counted.
#[test]
fn busy_connections_at_the_limit_then_new_ones_are_refused_and_counted() {
    let gw = Gateway::start_full(&[
        "--max-push-connections",
        "4",
        "--max-scrape-connections",
        "4",
    ]);
    gw.push("held_value 1\n");
    settle();
    let before = rss_kib(&gw);
    let mut tcp_held: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Hold: ")
                .unwrap();
            s
        })
        .collect();
    let mut unix_held: Vec<UnixStream> = (0..4)
        .map(|_| {
            let mut s = gw.connect();
            s.write_all(b"PUT /metrics/job/held HTTP/1.1\r\nHost: localhost\r\nX-Hold: ")
                .unwrap();
            s
        })
        .collect();
    // One header byte on each every 200 ms, while the newcomers try.
    let mut pokes: Vec<Box<dyn Write + Send>> = Vec::new();
    for s in &tcp_held {
        pokes.push(Box::new(s.try_clone().unwrap()));
    }
    for s in &unix_held {
        pokes.push(Box::new(s.try_clone().unwrap()));
    }
    let poking = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(true));
    let still = poking.clone();
    let poker = thread::spawn(move || {
        while still.load(std::sync::atomic::Ordering::Relaxed) {
            for s in &mut pokes {
                s.write_all(b"a").unwrap();
            }
            thread::sleep(Duration::from_millis(200));
        }
    });
    let addr = gw.addr;
    let tcp_tries: Vec<_> = (0..5)
        .map(|_| {
            thread::spawn(move || {
                let mut s = TcpStream::connect(addr).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                reply
            })
        })
        .collect();
    let socket = gw.socket.clone();
    let unix_tries: Vec<_> = (0..3)
        .map(|_| {
            let socket = socket.clone();
            thread::spawn(move || {
                let mut s = UnixStream::connect(socket).unwrap();
                s.set_read_timeout(Some(WAIT)).unwrap();
                let mut reply = String::new();
                let _ = s.read_to_string(&mut reply);
                reply
            })
        })
        .collect();
    for t in tcp_tries {
        let reply = t.join().unwrap();
        let (status, _, body) = split_response(&reply);
        assert_eq!(status, 503, "{reply}");
        assert!(body.contains("--max-scrape-connections"), "{body}");
    }
    for t in unix_tries {
        let reply = t.join().unwrap();
        assert!(
            reply.starts_with("error: too many push connections"),
            "{reply}"
        );
    }
    poking.store(false, std::sync::atomic::Ordering::Relaxed);
    poker.join().unwrap();
    // Held connections are still served: a scrape on a held TCP one (which
    // also sees the refusals counted), a push on a held socket one.
    unix_held[0]
        .write_all(b"\r\nContent-Length: 12\r\n\r\nheld_push 2\n")
        .unwrap();
    let held = &mut tcp_held[0];
    held.set_read_timeout(Some(WAIT)).unwrap();
    held.write_all(b"\r\nConnection: close\r\n\r\n").unwrap();
    let mut reply = String::new();
    held.read_to_string(&mut reply).unwrap();
    let (status, _, page) = split_response(&reply);
    assert_eq!(status, 200, "{reply}");
    check::assert_valid_page(page.as_bytes());
    assert_eq!(metric(&page, "push_gateway_connections_refused_total"), 8.0);
    assert_eq!(metric(&page, "push_gateway_connections_open"), 8.0);
    // Once one closes, a new client is served.
    tcp_held.remove(0);
    settle();
    let page = gw.scrape_until("the pushed value from a held connection", |p| {
        p.lines()
            .any(|l| l.starts_with("held_push{") && l.ends_with(" 2"))
    });
    check::assert_valid_page(page.as_bytes());
    drop(unix_held);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "busy connections");
}

// ---------------------------------------------------------- slow clients

#[test]
fn a_client_trickling_one_header_byte_per_second_is_cut_off_after_the_request_timeout() {
    let gw = Gateway::start(&[]);
    gw.push("still_here 1\n");
    let before = rss_kib(&gw);
    let timeout = REQUEST_TIMEOUT;
    let tcp = TcpStream::connect(gw.addr).unwrap();
    let unix = gw.connect();
    let started = Instant::now();
    // One byte per second of a head that never ends. On the push socket the
    // first bytes go at once: the request timer starts when they tell HTTP
    // from the line protocol.
    let trickler = |name: &'static str,
                    burst: usize,
                    mut w: Box<dyn Write + Send>,
                    mut r: Box<dyn Read + Send>| {
        thread::spawn(move || {
            let head = b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
            let writer = thread::spawn(move || {
                if w.write_all(&head[..burst]).is_err() {
                    return 0;
                }
                for (i, b) in head.iter().enumerate().skip(burst) {
                    if w.write_all(&[*b]).is_err() {
                        return i;
                    }
                    thread::sleep(Duration::from_secs(1));
                }
                head.len()
            });
            let mut reply = Vec::new();
            let _ = r.read_to_end(&mut reply);
            let closed = started.elapsed();
            let sent = writer.join().unwrap();
            (
                name,
                String::from_utf8_lossy(&reply).into_owned(),
                closed,
                sent,
            )
        })
    };
    let tcp_r = tcp.try_clone().unwrap();
    tcp_r.set_read_timeout(Some(timeout * 3)).unwrap();
    let unix_r = unix.try_clone().unwrap();
    unix_r.set_read_timeout(Some(timeout * 3)).unwrap();
    let a = trickler("tcp", 1, Box::new(tcp), Box::new(tcp_r));
    let b = trickler("socket", 5, Box::new(unix), Box::new(unix_r));
    // While they trickle, others are served at once.
    thread::sleep(Duration::from_secs(2));
    for _ in 0..3 {
        let t = Instant::now();
        assert_eq!(value_of(&gw.scrape(), "still_here").as_deref(), Some("1"));
        assert!(
            t.elapsed() < scaled(Duration::from_secs(1)),
            "{:?}",
            t.elapsed()
        );
        thread::sleep(Duration::from_secs(1));
    }
    for h in [a, b] {
        let (name, reply, closed, sent) = h.join().unwrap();
        eprintln!("{name}: closed after {closed:?}, {sent} bytes sent");
        assert!(reply.starts_with("HTTP/1.1 408"), "{name}: {reply:?}");
        assert!(
            closed >= timeout - Duration::from_millis(500)
                && closed <= timeout + Duration::from_secs(3),
            "{name}: closed after {closed:?}, the request timeout is {timeout:?}"
        );
    }
    scrape_valid(&gw);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "slow clients");
}

// ------------------------------------------------------ unread replies

#[test]
fn a_pusher_of_megabytes_of_bad_lines_that_never_reads_its_replies() {
    let gw = Gateway::start_full(&[]);
    let before = rss_kib(&gw);
    let line = b"bad line: no value here, just words words words words words\n";
    let lines = (8 << 20) / line.len();
    let mut s = gw.connect();
    let writer = thread::spawn(move || {
        let chunk: Vec<u8> = line.repeat(1000);
        let started = Instant::now();
        for _ in 0..lines / 1000 {
            s.write_all(&chunk).unwrap();
        }
        s.write_all(b"after_bad_lines 1\n").unwrap();
        // Keep the connection open without reading a byte of the replies.
        (s, started.elapsed())
    });
    // Others are served while it floods.
    let mut scrapes = 0;
    while !writer.is_finished() {
        let t = Instant::now();
        scrape_valid(&gw);
        assert!(
            t.elapsed() < scaled(Duration::from_secs(5)),
            "a scrape took {:?}",
            t.elapsed()
        );
        scrapes += 1;
        thread::sleep(Duration::from_millis(100));
    }
    let (held, took) = writer.join().unwrap();
    eprintln!(
        "{} MB of bad lines written in {took:?}; {scrapes} scrapes meanwhile",
        8
    );
    let sent = (lines / 1000 * 1000) as f64;
    let page = gw.scrape_until("every bad line to be counted", |p| {
        value_of(p, "push_gateway_lines_rejected_total{reason=\"value\"}")
            .is_some_and(|v| v.parse::<f64>().unwrap() >= sent)
    });
    assert_eq!(value_of(&page, "after_bad_lines").as_deref(), Some("1"));
    assert!(metric(&page, "push_gateway_replies_dropped_bytes_total") > 1e6);
    check::assert_valid_page(page.as_bytes());
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "unread error replies");
    drop(held);
}

#[test]
fn pipelined_requests_from_a_client_that_never_reads() {
    let gw = Gateway::start(&["--cache-bytes", "64KiB"]);
    let lines: String = (0..600).map(|i| format!("p{{n=\"{i}\"}} {i}\n")).collect();
    gw.push(&lines);
    let before = rss_kib(&gw);
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_write_timeout(Some(Duration::from_secs(2))).unwrap();
    let requests = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n".repeat(1000);
    let mut written = 0usize;
    let started = Instant::now();
    while written < 200 << 20 && started.elapsed() < Duration::from_secs(10) {
        match s.write(&requests) {
            Ok(n) => written += n,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
            Err(e) => panic!("{e}"),
        }
    }
    eprintln!("{written} bytes of pipelined requests accepted before the gateway stopped reading");
    assert!(
        written < 200 << 20,
        "the gateway kept reading requests it cannot answer"
    );
    let page = scrape_valid(&gw);
    assert_eq!(value_of(&page, "p{n=\"599\"}").as_deref(), Some("599"));
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "pipelined requests");
}

// ------------------------------------------------------------ bad bytes

#[test]
fn a_hundred_megabytes_without_a_newline() {
    let gw = Gateway::start(&[]);
    let before = rss_kib(&gw);
    // On the push socket: skipped up to its newline, never buffered.
    let mut s = gw.connect();
    s.write_all(b"no_newline{l=\"").unwrap();
    let blob = vec![b'x'; 1 << 20];
    let started = Instant::now();
    for _ in 0..100 {
        s.write_all(&blob).unwrap();
    }
    s.write_all(b"\"} 1\nafter_blob 1\n").unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.read_to_string(&mut reply).unwrap();
    eprintln!("100 MB line on the socket: {:?}", started.elapsed());
    assert_eq!(reply.lines().count(), 1, "{reply}");
    assert!(reply.starts_with("error: line 1: line too long"), "{reply}");
    assert_eq!(value_of(&gw.scrape(), "after_blob").as_deref(), Some("1"));
    // On the TCP port: a request head that never ends gets 431 and a close.
    let mut t = TcpStream::connect(gw.addr).unwrap();
    t.set_read_timeout(Some(WAIT)).unwrap();
    let mut w = t.try_clone().unwrap();
    let writer = thread::spawn(move || {
        let blob = vec![b'y'; 1 << 20];
        let _ = w.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nX-Long: ");
        let mut sent = 0;
        for _ in 0..100 {
            if w.write_all(&blob).is_err() {
                break;
            }
            sent += blob.len();
        }
        sent
    });
    let mut reply = Vec::new();
    let _ = t.read_to_end(&mut reply);
    let sent = writer.join().unwrap();
    let reply = String::from_utf8_lossy(&reply);
    eprintln!("endless head on TCP: {sent} bytes taken before the close");
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    scrape_valid(&gw);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "100 MB without a newline");
}

#[test]
fn invalid_utf8_and_nul_bytes_on_every_path() {
    let gw = Gateway::start(&[]);
    let before = rss_kib(&gw);
    let reply = gw.push(
        "\u{0}\n\
         nul_name\u{0} 1\n\
         good_1 1\n",
    );
    assert_eq!(reply.lines().count(), 2, "{reply}");
    let mut s = gw.connect();
    s.write_all(b"bad_utf8{l=\"\xff\xfe\"} 1\n\xc3\x28 2\nlabel_\xe2\x82 3\ngood_2 2\n")
        .unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).unwrap();
    let reply = String::from_utf8_lossy(&reply);
    assert_eq!(reply.matches("invalid UTF-8").count(), 3, "{reply}");
    // HTTP on the socket: bad bytes in the path, the headers, the body.
    let (status, _) = unix_http(
        &gw,
        b"PUT /metrics/job/\xff HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 400);
    let (status, _) = unix_http(
        &gw,
        b"PUT /metrics/job/%FF HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n\r\n",
    );
    assert_eq!(status, 400);
    let (status, _) = unix_http(
        &gw,
        b"PUT /metrics/job/a\x00b HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status, 400);
    let body = b"ok 1\nbad\xff 2\n";
    let mut raw = format!(
        "PUT /metrics/job/utf8 HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(body);
    let (status, reply) = unix_http(&gw, &raw);
    assert_eq!(status, 400, "{reply}");
    // On TCP: NUL and bad bytes in the request line.
    for raw in [
        &b"GET /metrics\x00 HTTP/1.1\r\nHost: localhost\r\n\r\n"[..],
        b"GET /\xff\xfe HTTP/1.1\r\nHost: localhost\r\n\r\n",
        b"\x00\x00\x00\x00\r\n\r\n",
    ] {
        let reply = tcp_raw(&gw, raw);
        assert!(reply.starts_with("HTTP/1.1 4"), "{reply:?}");
    }
    let page = scrape_valid(&gw);
    assert_eq!(value_of(&page, "good_1").as_deref(), Some("1"));
    assert_eq!(value_of(&page, "good_2").as_deref(), Some("2"));
    assert!(
        !page.contains("utf8") && !page.contains("nul_name"),
        "{page}"
    );
    promtool_accepts(&page);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "bad bytes");
}

#[test]
fn pushers_that_hang_up_mid_line_or_mid_body_change_nothing_else() {
    // Room for every short-lived connection: the gateway may still be
    // closing earlier ones when the next arrive.
    let gw = Gateway::start(&["--max-push-connections", "1024"]);
    let before = rss_kib(&gw);
    for _ in 0..50 {
        let mut s = gw.connect();
        s.write_all(b"whole_line{a=\"b\"} 1\nhalf_line{a=\"")
            .unwrap();
        drop(s);
        // HTTP pushes cut short: the group must not appear.
        let mut s = gw.connect();
        s.write_all(b"PUT /metrics/job/cut HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\ncut_short 1\n")
            .unwrap();
        drop(s);
        let mut s = gw.connect();
        s.write_all(
            b"POST /metrics/job/cut HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n10\r\ncut_sh",
        )
        .unwrap();
        drop(s);
        let mut s = gw.connect();
        s.write_all(b"PUT /metrics/jo").unwrap();
        drop(s);
    }
    // Let the backlog of hung-up connections drain first (see
    // `one_pusher_after_another_is_never_refused`).
    settle();
    let page = gw.scrape_until("the whole line", |p| p.contains("whole_line"));
    check::assert_valid_page(page.as_bytes());
    assert!(!page.contains("half_line"), "{page}");
    assert!(!page.contains("cut"), "{page}");
    assert_eq!(gw.push("after_cuts 1\n"), "");
    assert!(gw.scrape().contains("after_cuts 1\n"));
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "hang-ups mid-line");
}

#[test]
fn scrapers_that_hang_up_mid_response_or_never_read() {
    // Pages larger than what the kernel buffers for a client that does not
    // read, so that the gateway itself holds the rest.
    let cache = 1024 * 1024;
    let max_connections = 16;
    let gw = Gateway::start(&[
        "--cache-bytes",
        "1MiB",
        "--max-push-connections",
        "16",
        "--max-scrape-connections",
        "16",
    ]);
    let lines: String = (0..9000)
        .map(|i| format!("big_page{{n=\"{i:05}\",pad=\"padding-padding\"}} {i}\n"))
        .collect();
    gw.push(&lines);
    gw.push("changing 0\n");
    let held = gw
        .scrape()
        .lines()
        .filter(|l| l.starts_with("big_page{"))
        .count();
    assert!(held > 5000, "{held}");
    let before = rss_kib(&gw);
    // Hang up after the first bytes, with the rest unread (a reset).
    for _ in 0..100 {
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        let mut first = [0u8; 100];
        let _ = s.read(&mut first);
    }
    // Never read: each holds a page of its own (the page changes between
    // requests), bounded by the documented worst case.
    let mut silent = Vec::new();
    for i in 0..12 {
        gw.push(&format!("changing {i}\n"));
        let mut s = TcpStream::connect(gw.addr).unwrap();
        s.write_all(b"GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n")
            .unwrap();
        silent.push(s);
    }
    settle();
    let page = scrape_valid(&gw);
    assert_eq!(
        page.lines().filter(|l| l.starts_with("big_page{")).count(),
        held
    );
    let worst = worst_case_heap_bytes(cache, max_connections, max_connections, cache);
    let worst_kib = (worst / 1024) as u64;
    assert_rss_bounded(&gw, before, worst_kib, "scrapers that never read");
    drop(silent);
    settle();
    assert_eq!(
        value_of(&scrape_valid(&gw), "changing").as_deref(),
        Some("11")
    );
}

// ---------------------------------------------------- cardinality flood

fn cardinality_flood(series: usize) {
    let budget = 16 * 1024;
    let gw = Gateway::start_full(&["--cache-bytes", "16KiB", "--ttl", "1h"]);
    let before = rss_kib(&gw);
    let started = Instant::now();
    let mut s = gw.connect();
    let mut chunk = String::with_capacity(1 << 20);
    for i in 0..series {
        chunk.push_str(&format!("flood{{n=\"{i:07}\"}} {i}\n"));
        if chunk.len() > (1 << 20) - 64 {
            s.write_all(chunk.as_bytes()).unwrap();
            chunk.clear();
        }
    }
    s.write_all(chunk.as_bytes()).unwrap();
    s.shutdown(Shutdown::Write).unwrap();
    let mut reply = String::new();
    s.set_read_timeout(Some(Duration::from_secs(600))).unwrap();
    s.read_to_string(&mut reply).unwrap();
    assert_eq!(reply, "", "no line of the flood is refused");
    eprintln!("{series} unique series streamed in {:?}", started.elapsed());

    let page = scrape_valid(&gw);
    let used = metric(&page, "push_gateway_cache_bytes");
    assert!(
        used <= budget as f64,
        "cache bytes {used} over the budget {budget}"
    );
    assert_eq!(
        metric(&page, "push_gateway_cache_budget_bytes"),
        budget as f64
    );
    let held: Vec<usize> = page
        .lines()
        .filter_map(|l| l.strip_prefix("flood{n=\""))
        .map(|l| l[..7].parse().unwrap())
        .collect();
    let k = held.len();
    assert!(k > 50, "only {k} series held in a 16 KiB budget");
    assert_eq!(metric(&page, "push_gateway_series"), k as f64);
    // Exactly the most recently written survive.
    let mut sorted = held.clone();
    sorted.sort_unstable();
    let want: Vec<usize> = (series - k..series).collect();
    assert_eq!(sorted, want, "not the {k} most recently written series");
    assert_eq!(
        metric(&page, "push_gateway_evictions_total{reason=\"budget\"}"),
        (series - k) as f64
    );
    assert_eq!(
        metric(&page, "push_gateway_evictions_total{reason=\"ttl\"}"),
        0.0
    );
    promtool_accepts(&page);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "cardinality flood");
}

#[test]
fn a_cardinality_flood_of_100k_series_keeps_the_budget_and_the_newest() {
    cardinality_flood(100_000);
}

#[test]
#[ignore = "about a minute in a debug build: cargo test --release --test hostile -- --ignored a_cardinality_flood_of_a_million"]
fn a_cardinality_flood_of_a_million_series_keeps_the_budget_and_the_newest() {
    cardinality_flood(1_000_000);
}

// -------------------------------------------------------------- security

#[test]
fn the_tcp_port_never_changes_anything() {
    let gw = Gateway::start(&[]);
    gw.push("# TYPE kept gauge\nkept 1\n");
    let body = "# TYPE pushed counter\npushed_total 5\n";
    let (status, reply) = unix_http(
        &gw,
        format!(
            "PUT /metrics/job/a/instance/i HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .as_bytes(),
    );
    assert_eq!(status, 200, "{reply}");
    let page = scrape_valid(&gw);
    assert!(
        page.contains("pushed_total{instance=\"i\",job=\"a\"} 5"),
        "{page}"
    );

    let evil = "kept 666\nevil 1\n";
    let with_body = |method: &str, path: &str| {
        format!(
            "{method} {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{evil}",
            evil.len()
        )
    };
    let mut attempts: Vec<String> = Vec::new();
    for method in ["PUT", "POST", "DELETE", "PATCH"] {
        for path in [
            "/metrics/job/a/instance/i",
            "/metrics/job/a",
            "/metrics/job/evil",
            "/metrics/job@base64/YQ/instance/i",
            "/metrics",
            "/",
            "/metrics/name/kept",
            "/counter/kept",
            "/api/v1/admin/wipe",
            "http://localhost/metrics/job/a/instance/i",
        ] {
            attempts.push(with_body(method, path));
            attempts.push(format!(
                "{method} {path} HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{evil}\r\n0\r\n\r\n",
                evil.len()
            ));
        }
    }
    attempts.push(evil.to_string());
    attempts.push("# TYPE kept counter\nkept 666\n\n".to_string());
    // A read, then a write on the same keep-alive connection.
    attempts.push(format!(
        "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n{}",
        with_body("PUT", "/metrics/job/a/instance/i")
    ));
    for raw in &attempts {
        let reply = tcp_raw(&gw, raw.as_bytes());
        let ok = reply.matches("HTTP/1.1 2").count();
        assert!(
            reply.contains("HTTP/1.1 4") && ok == usize::from(raw.starts_with("GET")),
            "{raw:?} on TCP answered {reply:?}"
        );
    }
    assert_eq!(
        scrape_valid(&gw),
        page,
        "a request on the TCP port changed the page"
    );
}

/// Starts the gateway on `socket` with `args`, not waiting for it.
fn spawn_on(socket: &Path, args: &[&str]) -> (Child, std::net::SocketAddr) {
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let child = gateway_command()
        .arg("--socket")
        .arg(socket)
        .arg("--listen")
        .arg(addr.to_string())
        .args(args)
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    (child, addr)
}

#[test]
fn the_push_socket_appears_with_its_final_mode() {
    for (round, (mode, want)) in [("0600", 0o600), ("0660", 0o660), ("0640", 0o640)]
        .into_iter()
        .cycle()
        .take(9)
        .enumerate()
    {
        let dir = TempDir::new("mode");
        let socket = dir.path().join("push.sock");
        if round % 3 == 2 {
            // A stale socket left by a crash, wide open: replaced, never
            // reused with its old mode.
            drop(UnixListener::bind(&socket).unwrap());
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o777)).unwrap();
        }
        let stale = std::fs::symlink_metadata(&socket).ok().map(|m| m.ino());
        let (mut child, _) = spawn_on(&socket, &["--socket-mode", mode]);
        let deadline = Instant::now() + WAIT;
        let mut seen = 0;
        loop {
            assert!(Instant::now() < deadline, "the socket never appeared");
            // Every entry that exists at any moment of start-up: the final
            // socket with its final mode, the stale one, or a private
            // staging directory.
            for entry in std::fs::read_dir(dir.path()).unwrap().flatten() {
                let Ok(meta) = std::fs::symlink_metadata(entry.path()) else {
                    continue;
                };
                let perm = meta.permissions().mode() & 0o7777;
                if meta.file_type().is_socket() && Some(meta.ino()) == stale {
                    continue;
                }
                if meta.is_dir() {
                    assert_eq!(perm, 0o700, "staging dir {:?} mode {perm:o}", entry.path());
                    continue;
                }
                assert!(
                    meta.file_type().is_socket(),
                    "{:?} is not a socket",
                    entry.path()
                );
                assert_eq!(entry.path(), socket, "a socket at an unexpected path");
                assert_eq!(perm, want, "socket seen with mode {perm:o}, want {want:o}");
                seen += 1;
            }
            if seen > 0 && UnixStream::connect(&socket).is_ok() {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Puts something at a path.
type MakePath<'a> = Box<dyn Fn(&Path) + 'a>;

#[test]
fn a_socket_path_that_is_a_symlink_a_file_or_a_live_socket_is_refused_and_left_alone() {
    let dir = TempDir::new("refuse");
    let target = dir.path().join("target-file");
    std::fs::write(&target, "precious\n").unwrap();
    let cases: Vec<(&str, MakePath)> = vec![
        (
            "symlink to a file",
            Box::new(|p: &Path| {
                std::os::unix::fs::symlink(dir.path().join("target-file"), p).unwrap()
            }),
        ),
        (
            "dangling symlink",
            Box::new(|p: &Path| std::os::unix::fs::symlink(dir.path().join("nowhere"), p).unwrap()),
        ),
        (
            "symlink to a stale socket",
            Box::new(|p: &Path| {
                let stale = dir.path().join("stale.sock");
                let _ = std::fs::remove_file(&stale);
                drop(UnixListener::bind(&stale).unwrap());
                std::os::unix::fs::symlink(&stale, p).unwrap()
            }),
        ),
        (
            "regular file",
            Box::new(|p: &Path| std::fs::write(p, "not a socket\n").unwrap()),
        ),
        (
            "directory",
            Box::new(|p: &Path| std::fs::create_dir(p).unwrap()),
        ),
    ];
    for (i, (what, make)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("case{i}.sock"));
        make(&path);
        let before = std::fs::symlink_metadata(&path).unwrap();
        let link = std::fs::read_link(&path).ok();
        let (child, _) = spawn_on(&path, &[]);
        let out = wait_exit(child);
        assert_eq!(out.status.code(), Some(1), "{what}: {out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("not a socket"), "{what}: {stderr}");
        let after = std::fs::symlink_metadata(&path).unwrap();
        assert_eq!(
            (before.ino(), before.mode()),
            (after.ino(), after.mode()),
            "{what}"
        );
        assert_eq!(std::fs::read_link(&path).ok(), link, "{what}");
    }
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "precious\n");
    assert!(
        !dir.path().join("nowhere").exists(),
        "the dangling symlink's target was created"
    );
    // A FIFO, when mkfifo is there.
    let fifo = dir.path().join("fifo.sock");
    if Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .is_ok_and(|s| s.success())
    {
        let out = wait_exit(spawn_on(&fifo, &[]).0);
        assert_eq!(out.status.code(), Some(1), "fifo: {out:?}");
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
    }
    // A live socket is never stolen, and its owner keeps serving.
    let gw = Gateway::start(&[]);
    let out = wait_exit(spawn_on(&gw.socket, &[]).0);
    assert_eq!(out.status.code(), Some(1), "live socket: {out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("in use"));
    assert_eq!(gw.push("still_mine 1\n"), "");
    assert!(gw.scrape().contains("still_mine 1\n"));
}

/// Waits (bounded) for a gateway that must fail at start-up.
fn wait_exit(mut child: Child) -> std::process::Output {
    let deadline = Instant::now() + WAIT;
    while child.try_wait().unwrap().is_none() {
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the gateway kept running; it should have refused to start");
        }
        thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

// ------------------------------------------------------- protobuf pushes

/// A 10 KB protobuf push, the largest the default `--max-body-bytes` lets
/// in, of one histogram with a long label and thousands of buckets: once
/// decoded to 12.5 MB of text before its limit was checked, kept by the
/// push scratch buffer (see `protobuf_histogram_buckets_times_labels_blow_
/// past_the_decode_limit` in tests/fuzz_regressions.rs).
#[test]
fn a_small_protobuf_push_cannot_inflate_memory() {
    let gw = Gateway::start(&[]);
    let before = rss_kib(&gw);
    let body = histogram_body(5000, 2500);
    assert!(body.len() <= 10 * 1024);
    let mut raw = format!(
        "PUT /metrics/job/inflate HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/vnd.google.protobuf; \
         proto=io.prometheus.client.MetricFamily; encoding=delimited\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let (status, reply) = unix_http(&gw, &raw);
    assert_eq!(status, 400, "{reply}");
    scrape_valid(&gw);
    assert_rss_bounded(&gw, before, RSS_GROWTH_MAX_KIB, "a 10 KB protobuf push");
}

// ---- open port and faults ----

/// Sends `signal` (e.g. "STOP") to the gateway.
fn signal(gw: &Gateway, signal: &str) {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(gw.child.id().to_string())
        .status()
        .unwrap();
    assert!(status.success(), "kill -{signal}");
}

/// Regression: the check whether another instance holds the socket was a
/// blocking connect, so a stopped first instance (SIGSTOP) whose backlog
/// had filled hung the second one for ever instead of refusing it.
#[test]
fn a_stopped_instance_with_a_full_backlog_does_not_hang_the_next() {
    // The backlog is `net.core.somaxconn` (4096 by default) connections,
    // each a descriptor here: raise this process's soft limit if it is
    // lower (best effort; the hard limit stays).
    let _ = Command::new("prlimit")
        .arg(format!("--pid={}", std::process::id()))
        .arg("--nofile=16384:")
        .stderr(Stdio::null())
        .status();
    let gw = Gateway::start(&[]);
    signal(&gw, "STOP");
    // Fill the stopped gateway's backlog until the kernel says "try again".
    let mut held = Vec::new();
    let full = loop {
        match mio::net::UnixStream::connect(&gw.socket) {
            Ok(s) => held.push(s),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break true,
            Err(e) => panic!(
                "connect {} failed: {e}; this test needs more open files than \
                 net.core.somaxconn (ulimit -n)",
                held.len()
            ),
        }
        if held.len() > 70_000 {
            break false;
        }
    };
    assert!(full, "the backlog never filled");
    let out = wait_exit(spawn_on(&gw.socket, &[]).0);
    signal(&gw, "CONT");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("in use"), "{stderr}");
    // The first instance resumes, works through the abandoned backlog and
    // serves as before.
    drop(held);
    let deadline = Instant::now() + WAIT;
    while !gw.push("still_first 1\n").is_empty() {
        assert!(
            Instant::now() < deadline,
            "the first instance never recovered"
        );
        thread::sleep(Duration::from_millis(50));
    }
    assert!(gw.scrape().contains("still_first 1\n"));
}

/// Starts the gateway with at most `nofile` open files (through `sh`'s
/// `ulimit -n`), its log at `info` into `log`; waits until it answers.
fn start_with_fd_limit(nofile: u32, log: &Path) -> Gateway {
    let dir = TempDir::new("nofile");
    let socket = dir.path().join("push.sock");
    let addr: std::net::SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
    let gateway = gateway_command();
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!("ulimit -n {nofile} && exec \"$0\" \"$@\""))
        .arg(gateway.get_program())
        .args(gateway.get_args())
        .arg("--no-self-metrics")
        .arg("--socket")
        .arg(&socket)
        .args(["--listen", &addr.to_string()])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + WAIT;
    while UnixStream::connect(&socket).is_err() || TcpStream::connect(addr).is_err() {
        assert!(child.try_wait().unwrap().is_none(), "exited at start-up");
        assert!(Instant::now() < deadline, "did not start");
        thread::sleep(Duration::from_millis(20));
    }
    Gateway {
        child,
        socket,
        addr,
        dir,
    }
}

/// Regression: with its file descriptors used up (EMFILE), the gateway
/// logged a warning at every accept retry, ten a second for as long as the
/// connections stayed; now at most `WARN_BURST` per `WARN_WINDOW`, and it
/// accepts again once connections close.
#[test]
fn accept_errors_past_the_fd_limit_are_logged_rate_limited_and_it_recovers() {
    use push_gateway::limits::{ACCEPT_RETRY, WARN_BURST, WARN_WINDOW};
    let logs = TempDir::new("emfile-log");
    let log = logs.path().join("stderr.log");
    let gw = start_with_fd_limit(24, &log);
    settle();
    // Far more connections than descriptors: the kernel completes them and
    // the gateway cannot accept the rest.
    let held: Vec<TcpStream> = (0..64)
        .map(|_| TcpStream::connect(gw.addr).unwrap())
        .collect();
    let warnings = |text: &str| text.matches("accept failed").count();
    let deadline = Instant::now() + WAIT;
    while warnings(&std::fs::read_to_string(&log).unwrap()) == 0 {
        assert!(Instant::now() < deadline, "no accept error was logged");
        thread::sleep(Duration::from_millis(20));
    }
    // Long enough for five times more retries than the burst allows, and
    // shorter than a window, so it spans at most two (and shorter than the
    // request timeout, which would free descriptors).
    let hold = ACCEPT_RETRY * (5 * WARN_BURST);
    assert!(hold < WARN_WINDOW && hold < REQUEST_TIMEOUT);
    thread::sleep(hold);
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(
        warnings(&text) <= 2 * WARN_BURST as usize,
        "{} accept warnings in {hold:?}; at most {WARN_BURST} per {WARN_WINDOW:?}:\n{text}",
        warnings(&text)
    );
    assert!(text.contains("Too many open files"), "{text}");
    drop(held);
    // Once the connections close, accepting works again.
    let deadline = Instant::now() + WAIT;
    while !gw.push("after_emfile 1\n").is_empty() {
        assert!(Instant::now() < deadline, "pushes never worked again");
        thread::sleep(Duration::from_millis(50));
    }
    assert!(scrape_valid(&gw).contains("after_emfile 1\n"));
}

/// Sends `requests` one after another on one keep-alive TCP connection and
/// reads the responses: (status, head, body) each.
fn tcp_exchange(gw: &Gateway, requests: &[String]) -> Vec<(u16, String, String)> {
    let mut s = TcpStream::connect(gw.addr).unwrap();
    s.set_read_timeout(Some(WAIT)).unwrap();
    let mut answers = Vec::new();
    let mut buf = Vec::new();
    for req in requests {
        s.write_all(req.as_bytes()).unwrap();
        // Read one response: a head, then Content-Length bytes.
        let (head_len, length) = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map_or(0, |v| v.trim().parse().unwrap());
                break (end + 4, length);
            }
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed before a response to {req:?}");
            buf.extend_from_slice(&chunk[..n]);
        };
        let head_only = req.starts_with("HEAD ");
        let want = head_len + if head_only { 0 } else { length };
        while buf.len() < want {
            let mut chunk = [0u8; 4096];
            let n = s.read(&mut chunk).unwrap();
            assert!(n > 0, "closed inside a response to {req:?}");
            buf.extend_from_slice(&chunk[..n]);
        }
        let text = String::from_utf8_lossy(&buf[..want]).into_owned();
        answers.push(split_response(&text));
        buf.drain(..want);
    }
    answers
}

/// A request for `path` on the TCP port with `headers` (each ending in
/// CRLF), kept alive.
fn get_with(method: &str, path: &str, headers: &str) -> String {
    format!("{method} {path} HTTP/1.1\r\nHost: t\r\n{headers}\r\n")
}

/// Regression ("the thief in drain mode"): with `--drain-on-scrape`,
/// anyone who reached the TCP port took the samples away from Prometheus
/// by scraping first. With `--scrape-auth-file`, a scrape without the
/// credential gets 401 and takes nothing; health checks stay open; the
/// authenticated scrape gets (and drains) every sample; local scrapes on
/// the socket need no credential.
#[test]
fn the_thief_in_drain_mode_gets_401_and_takes_nothing() {
    let secrets = TempDir::new("thief");
    let token_file = secrets.path().join("token");
    std::fs::write(&token_file, "s3cr3t-token\n").unwrap();
    let gw = Gateway::start(&[
        "--drain-on-scrape",
        "--scrape-auth-file",
        token_file.to_str().unwrap(),
    ]);
    assert_eq!(gw.push("loot{n=\"1\"} 1\nloot{n=\"2\"} 2\n"), "");

    let thief = [
        get_with("GET", "/metrics", ""),
        get_with("GET", "/metrics", "Authorization: Bearer s3cr3t-tokem\r\n"),
        get_with("GET", "/metrics", "Authorization: Bearer s3cr3t-toke\r\n"),
        get_with("GET", "/metrics", "Authorization: Bearer s3cr3t-token-\r\n"),
        get_with(
            "GET",
            "/metrics",
            "Authorization: Basic czNjcjN0LXRva2Vu\r\n",
        ),
        get_with("GET", "/metrics", "Authorization: s3cr3t-token\r\n"),
        get_with("HEAD", "/metrics", ""),
        get_with("GET", "/metrics?drain=1", ""),
        get_with("GET", "/", ""),
        get_with("GET", "/nowhere", ""),
        get_with("PUT", "/metrics/job/x", "Content-Length: 0\r\n"),
    ];
    for (req, (status, head, body)) in thief.iter().zip(tcp_exchange(&gw, &thief)) {
        assert_eq!(status, 401, "{req:?} got:\n{head}\n\n{body}");
        assert!(
            head.contains("\r\nWWW-Authenticate: Bearer realm=\"push-gateway\""),
            "{req:?}: {head}"
        );
        assert!(!body.contains("loot"), "{req:?} leaked the page: {body}");
    }
    // Health checks need no credential.
    for path in ["/-/healthy", "/-/ready"] {
        let (status, _, body) = gw.get(path);
        assert_eq!((status, body.as_str()), (200, "OK\n"), "{path}");
    }
    // Nothing was taken: the scraper with the credential gets every sample,
    // once.
    let owner = get_with("GET", "/metrics", "Authorization: Bearer s3cr3t-token\r\n");
    let answers = tcp_exchange(&gw, &[owner.clone(), owner]);
    let (status, _, page) = &answers[0];
    assert_eq!(*status, 200);
    assert!(
        page.contains("loot{n=\"1\"} 1\n") && page.contains("loot{n=\"2\"} 2\n"),
        "the thief took samples:\n{page}"
    );
    assert_eq!(answers[1].0, 200);
    assert!(
        !answers[1].2.contains("loot"),
        "not drained: {}",
        answers[1].2
    );
    // curl, as a client would send it.
    assert_eq!(gw.push("loot{n=\"3\"} 3\n"), "");
    let curl_tcp = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-o", "-", "-w", "\n%{http_code}"])
            .args(args)
            .arg(format!("http://{}/metrics", gw.addr))
            .output()
            .expect("curl: run tests/e2e/install.sh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stolen = curl_tcp(&[]);
    assert!(
        stolen.ends_with("\n401") && !stolen.contains("loot"),
        "{stolen}"
    );
    let got = curl_tcp(&["--oauth2-bearer", "s3cr3t-token"]);
    assert!(
        got.ends_with("\n200") && got.contains("loot{n=\"3\"} 3\n"),
        "{got}"
    );
    // A local scrape on the socket needs no credential, and drains.
    assert_eq!(gw.push("loot{n=\"4\"} 4\n"), "");
    let (status, reply) = unix_http(
        &gw,
        b"GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n",
    );
    assert_eq!(status, 200, "{reply}");
    assert!(reply.contains("loot{n=\"4\"} 4\n"), "{reply}");
    let (_, reply) = unix_http(
        &gw,
        b"GET /metrics HTTP/1.1\r\nHost: l\r\nConnection: close\r\n\r\n",
    );
    assert!(!reply.contains("loot"), "{reply}");
}

/// The same with basic auth: `user:password` in the file, sent by curl
/// `-u`; a wrong password or user is a 401 with a Basic challenge.
#[test]
fn basic_auth_scrapers_with_the_wrong_password_take_nothing() {
    let secrets = TempDir::new("basic");
    let file = secrets.path().join("basic");
    std::fs::write(&file, "prom:se cret:x\n").unwrap();
    let gw = Gateway::start(&[
        "--drain-on-scrape",
        "--scrape-auth-file",
        file.to_str().unwrap(),
    ]);
    assert_eq!(gw.push("loot 1\n"), "");
    let curl_tcp = |args: &[&str]| {
        let out = Command::new("curl")
            .args(["-s", "-D", "-", "-o", "-"])
            .args(args)
            .arg(format!("http://{}/metrics", gw.addr))
            .output()
            .expect("curl: run tests/e2e/install.sh");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    for wrong in [
        vec![],
        vec!["-u", "prom:se cret"],
        vec!["-u", "prom:se cret:y"],
        vec!["-u", "Prom:se cret:x"],
        vec!["--oauth2-bearer", "prom:se cret:x"],
    ] {
        let reply = curl_tcp(&wrong);
        assert!(reply.starts_with("HTTP/1.1 401 "), "{wrong:?}: {reply}");
        assert!(
            reply.contains("WWW-Authenticate: Basic realm=\"push-gateway\""),
            "{wrong:?}: {reply}"
        );
        assert!(!reply.contains("loot"), "{wrong:?}: {reply}");
    }
    let reply = curl_tcp(&["-u", "prom:se cret:x"]);
    assert!(reply.starts_with("HTTP/1.1 200 "), "{reply}");
    assert!(reply.contains("\nloot 1\n"), "{reply}");
    let reply = curl_tcp(&["-H", "Authorization: Basic cHJvbTpzZSBjcmV0Ong="]);
    assert!(
        reply.starts_with("HTTP/1.1 200 ") && !reply.contains("loot"),
        "{reply}"
    );
}

// ---- floods ----

/// Several pushers flood never-seen series into a 16 MiB budget (so that,
/// once it is full, every line evicts) while a scraper scrapes over and
/// over. Every scrape must come back 200 with a whole page within a
/// generous bound (when each new series compacted the whole cache, they
/// took 12-18 s in a release build), the pushes must keep being applied,
/// and the gateway's memory must stay within the budget plus the page and
/// buffers.
#[test]
fn a_flood_at_16_mib_leaves_scrapes_answered_in_time() {
    const PUSHERS: usize = 4;
    // Enough to fill the budget (about 190,000 of these series) before
    // the scraper starts.
    const PREFILL_PER_PUSHER: u64 = 60_000;
    // Generous for a debug build on a loaded machine; without amortised
    // eviction a debug build took minutes.
    const SCRAPE_MAX: Duration = Duration::from_secs(5);
    let budget = 16 << 20;
    let gw = Gateway::start(&["--cache-bytes", "16MiB", "--ttl", "1h"]);
    let flood_for = scaled(Duration::from_secs(8));
    let stop = std::sync::atomic::AtomicBool::new(false);
    // Pushers that have written their share of the fill.
    let filled = std::sync::atomic::AtomicUsize::new(0);
    let (written, scrapes) = thread::scope(|scope| {
        let pushers: Vec<_> = (0..PUSHERS)
            .map(|p| {
                let (gw, stop, filled) = (&gw, &stop, &filled);
                scope.spawn(move || {
                    let mut s = UnixStream::connect(&gw.socket).unwrap();
                    s.set_write_timeout(Some(scaled(Duration::from_secs(30))))
                        .unwrap();
                    let mut next = 0u64;
                    let mut buf = String::new();
                    let mut waited = false;
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        if !waited && next >= PREFILL_PER_PUSHER {
                            filled.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            waited = true;
                        }
                        buf.clear();
                        for _ in 0..500 {
                            buf.push_str(&format!("flood{{p=\"{p}\",i=\"{next:010}\"}} 1\n"));
                            next += 1;
                        }
                        s.write_all(buf.as_bytes()).unwrap();
                    }
                    // The gateway closes once every line is applied, and
                    // answers only bad lines.
                    s.shutdown(Shutdown::Write).unwrap();
                    s.set_read_timeout(Some(scaled(Duration::from_secs(60))))
                        .unwrap();
                    let mut reply = String::new();
                    s.read_to_string(&mut reply).unwrap();
                    assert_eq!(reply, "", "pusher {p}");
                    next
                })
            })
            .collect();
        let scraper = scope.spawn(|| {
            // Filling takes seconds in a debug build; when each new series
            // compacted the cache, it did not end in minutes.
            let fill_start = Instant::now();
            while filled.load(std::sync::atomic::Ordering::Relaxed) < PUSHERS {
                if fill_start.elapsed() > scaled(Duration::from_secs(90)) {
                    stop.store(true, std::sync::atomic::Ordering::Relaxed);
                    panic!("writing 240,000 new series into 16 MiB took over 90 s");
                }
                thread::sleep(Duration::from_millis(50));
            }
            // The first page sorts every series: that is not the flood's
            // cost, which is what the bound is for.
            assert_eq!(gw.get("/metrics").0, 200);
            let start = Instant::now();
            let mut worst = Duration::ZERO;
            let mut scrapes = 0;
            while start.elapsed() < flood_for {
                let t = Instant::now();
                let (status, _, page) = gw.get("/metrics");
                let took = t.elapsed();
                assert_eq!(status, 200);
                assert!(page.is_empty() || page.ends_with('\n'), "a cut page");
                assert!(
                    took <= scaled(SCRAPE_MAX),
                    "scrape {scrapes} took {took:?} during the flood ({} bytes)",
                    page.len()
                );
                worst = worst.max(took);
                scrapes += 1;
            }
            eprintln!("{scrapes} scrapes during the flood, slowest {worst:?}");
            scrapes
        });
        let scrapes = scraper.join().unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let written: Vec<u64> = pushers.into_iter().map(|h| h.join().unwrap()).collect();
        (written, scrapes)
    });
    assert!(scrapes >= 3, "only {scrapes} scrapes");
    // Pushes kept being applied: more series were written than the budget
    // holds (so it was full and evicting), and each pusher's last series,
    // written last, is there.
    let page = gw.scrape();
    let held = page.lines().filter(|l| l.starts_with("flood{")).count() as u64;
    let total: u64 = written.iter().sum();
    eprintln!("{total} series written, {held} held");
    assert!(
        total > held,
        "the budget never filled: {total} written, {held} held"
    );
    for (p, n) in written.iter().enumerate() {
        let last = format!("flood{{i=\"{:010}\",p=\"{p}\"}} 1\n", n - 1);
        assert!(page.contains(&last), "pusher {p}'s last series is missing");
    }
    check::assert_valid_page(page.as_bytes());
    // Memory stays the budget, the page (at most twice the budget, about a
    // third of it here) and fixed buffers: no growth with the flood.
    if let Some(rss) = rss_kib(&gw) {
        let bound_kib = (budget + budget + 16 * 1024 * 1024) as u64 / 1024;
        eprintln!("VmRSS {rss} kB after the flood (bound {bound_kib} kB)");
        assert!(rss <= bound_kib, "VmRSS {rss} kB > {bound_kib} kB");
    }
}

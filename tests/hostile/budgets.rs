//! Connection budgets against hostile clients, part of `tests/hostile.rs`.
//!
//! * Reconnecting idle attackers on the TCP port (64 and 1,000
//!   connections that each send `GET /-/healthy`, stay quiet, and reconnect
//!   as soon as they are cut) while local stream and HTTP pushes and
//!   scrapes must all succeed.
//! * Keep-alive holders: the one idle longest is closed for a newcomer,
//!   a busy one never.
//! * Half-line streams filling the push budget: a new pusher still gets
//!   in, and the half lines are timed out.
//! * A slow first line is timed out like a request head, a slow body by
//!   its own timeout; a stream pusher writing whole lines rarely stays.
//! * Scrapers that never read pin at most their send buffers (`ss`).

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use mio::{Events, Interest, Poll, Token};
use push_gateway::limits::{
    BODY_TIMEOUT, EVICT_BUSY_AFTER, PARTIAL_LINE_TIMEOUT, SCRAPE_CONNECTIONS_DEFAULT,
    SCRAPE_SEND_BUFFER_BYTES,
};

use super::*;

// ------------------------------------------------------------- helpers

const HEALTHY: &[u8] = b"GET /-/healthy HTTP/1.1\r\nHost: attacker\r\n\r\n";

/// What the attacker saw.
#[derive(Debug, Default)]
struct Seen {
    connects: u64,
    failed_connects: u64,
    answered: u64,
    refused: u64,
    cut: u64,
}

/// `n` TCP connections, driven by one thread with its own `mio::Poll`:
/// each sends `GET /-/healthy` once, then stays quiet; when the gateway
/// closes it, it connects again at once.
struct IdleAttack {
    stop: Arc<AtomicBool>,
    answered: Arc<AtomicU64>,
    thread: thread::JoinHandle<Seen>,
}

impl IdleAttack {
    fn start(addr: SocketAddr, n: usize) -> IdleAttack {
        let stop = Arc::new(AtomicBool::new(false));
        let answered = Arc::new(AtomicU64::new(0));
        let (s, a) = (stop.clone(), answered.clone());
        let thread = thread::spawn(move || attack(addr, n, &s, &a));
        IdleAttack {
            stop,
            answered,
            thread,
        }
    }

    fn answered(&self) -> u64 {
        self.answered.load(Ordering::Relaxed)
    }

    fn stop(self) -> Seen {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

struct Attacker {
    stream: Option<mio::net::TcpStream>,
    sent: bool,
    answered: bool,
}

fn attack(addr: SocketAddr, n: usize, stop: &AtomicBool, answered: &AtomicU64) -> Seen {
    let mut poll = Poll::new().unwrap();
    let mut events = Events::with_capacity(1024);
    let mut conns: Vec<Attacker> = (0..n)
        .map(|_| Attacker {
            stream: None,
            sent: false,
            answered: false,
        })
        .collect();
    let mut retry: Vec<usize> = (0..n).collect();
    let mut seen = Seen::default();
    let mut buf = [0u8; 4096];
    while !stop.load(Ordering::Relaxed) {
        for i in std::mem::take(&mut retry) {
            match mio::net::TcpStream::connect(addr) {
                Ok(mut s) => {
                    poll.registry()
                        .register(&mut s, Token(i), Interest::READABLE | Interest::WRITABLE)
                        .unwrap();
                    conns[i] = Attacker {
                        stream: Some(s),
                        sent: false,
                        answered: false,
                    };
                    seen.connects += 1;
                }
                Err(_) => {
                    seen.failed_connects += 1;
                    retry.push(i);
                }
            }
        }
        let timeout = Duration::from_millis(if retry.is_empty() { 50 } else { 5 });
        match poll.poll(&mut events, Some(timeout)) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            other => other.unwrap(),
        }
        for event in events.iter() {
            let i = event.token().0;
            let c = &mut conns[i];
            let Some(s) = c.stream.as_mut() else {
                continue;
            };
            let mut cut = false;
            if event.is_writable() && !c.sent {
                match s.write(HEALTHY) {
                    Ok(n) if n == HEALTHY.len() => c.sent = true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                    _ => cut = true,
                }
            }
            while !cut && event.is_readable() {
                match s.read(&mut buf) {
                    Ok(0) => cut = true,
                    Ok(k) => {
                        if !std::mem::replace(&mut c.answered, true) {
                            if buf[..k].starts_with(b"HTTP/1.1 200") {
                                seen.answered += 1;
                                answered.fetch_add(1, Ordering::Relaxed);
                            } else {
                                seen.refused += 1;
                            }
                        }
                    }
                    Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                    Err(e) if e.kind() == ErrorKind::Interrupted => {}
                    Err(_) => cut = true,
                }
            }
            if cut {
                let _ = poll.registry().deregister(s);
                c.stream = None;
                seen.cut += 1;
                retry.push(i);
            }
        }
    }
    seen
}

/// The soft limit of open files of this process (the gateway inherits it).
fn open_files_limit() -> Option<usize> {
    let limits = std::fs::read_to_string("/proc/self/limits").ok()?;
    let line = limits.lines().find(|l| l.starts_with("Max open files"))?;
    line.split_whitespace().nth(3)?.parse().ok()
}

/// Sends `GET path` on a keep-alive connection and reads one response:
/// (status, body).
fn keep_alive_get(s: &mut TcpStream, path: &str) -> (u16, String) {
    s.write_all(format!("GET {path} HTTP/1.1\r\nHost: t\r\n\r\n").as_bytes())
        .unwrap();
    read_response(s)
}

/// Reads one response framed by `Content-Length`.
fn read_response(s: &mut TcpStream) -> (u16, String) {
    let mut got = Vec::new();
    let mut byte = [0u8; 1];
    while !got.ends_with(b"\r\n\r\n") {
        assert_eq!(s.read(&mut byte).unwrap(), 1, "closed mid-head: {got:?}");
        got.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&got).into_owned();
    let length: usize = head
        .lines()
        .find_map(|l| {
            l.to_ascii_lowercase()
                .strip_prefix("content-length:")
                .map(|v| v.trim().parse().unwrap())
        })
        .unwrap_or(0);
    let mut body = vec![0u8; length];
    s.read_exact(&mut body).unwrap();
    (
        split_response(&head).0,
        String::from_utf8_lossy(&body).into_owned(),
    )
}

/// Whether the gateway closed `s` (EOF or reset) within `WAIT`.
fn closed_by_gateway(s: &mut impl Read) -> bool {
    let mut rest = Vec::new();
    match s.read_to_end(&mut rest) {
        Ok(_) => true,
        Err(e) => e.kind() == ErrorKind::ConnectionReset,
    }
}

/// Whether `s` is still open with nothing to read.
fn still_open(s: &TcpStream) -> bool {
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    let open = matches!(
        (&*s).read(&mut byte),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    );
    s.set_read_timeout(Some(WAIT)).unwrap();
    open
}

// -------------------------------------------------- reconnecting attackers

/// The attack that found the shared budget: idle keep-alive connections
/// on the TCP port, renewed as soon as they are cut. With the gateway's
/// default budgets every local push and every scrape must get through.
fn reconnecting_idle_attackers(wanted: usize) {
    // The test holds one descriptor per attacker; keep room for the rest.
    let n = match open_files_limit() {
        Some(limit) if limit < wanted + 256 => {
            let n = limit.saturating_sub(256).max(64);
            eprintln!(
                "open files limited to {limit}: attacking with {n} connections, not {wanted}"
            );
            n
        }
        _ => wanted,
    };
    let gw = Gateway::start_full(&[]);
    gw.push("before_attack 1\n");
    settle();
    let before = rss_kib(&gw);
    let attack = IdleAttack::start(gw.addr, n);
    // Until the attackers hold every scrape slot they can get.
    let target = n.min(64) as u64;
    let deadline = Instant::now() + scaled(Duration::from_secs(20));
    while attack.answered() < target {
        assert!(
            Instant::now() < deadline,
            "the attackers got only {} answers",
            attack.answered()
        );
        thread::sleep(Duration::from_millis(20));
    }
    for i in 0..20 {
        let line = format!("attack_stream{{i=\"{i}\"}} {i}\n");
        assert_eq!(gw.push(&line), "", "stream push {i} during the attack");
        let body = format!("attack_http {i}\n");
        let raw = format!(
            "PUT /metrics/job/attack/i/{i} HTTP/1.1\r\nHost: l\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, reply) = unix_http(&gw, raw.as_bytes());
        assert_eq!(status, 200, "HTTP push {i} during the attack: {reply}");
        let (status, _, page) = gw.get("/metrics");
        assert_eq!(status, 200, "scrape {i} during the attack: {page}");
        assert!(page.contains(&line), "scrape {i}: {line:?} missing");
    }
    let seen = attack.stop();
    eprintln!("{n} reconnecting idle attackers: {seen:?}");
    assert!(seen.cut > 0, "the attackers were never cut: {seen:?}");
    let page = scrape_valid(&gw);
    for i in 0..20 {
        assert!(
            page.contains(&format!(
                "attack_http{{i=\"{i}\",instance=\"\",job=\"attack\"}} {i}\n"
            )),
            "{page}"
        );
    }
    let evicted = "push_gateway_connections_closed_total{listener=\"scrape\",reason=\"evicted\"}";
    assert!(metric(&page, evicted) > 0.0);
    let pushers = "push_gateway_connections_closed_total{listener=\"push\",reason=\"evicted\"}";
    assert_eq!(metric(&page, pushers), 0.0);
    assert_rss_bounded(
        &gw,
        before,
        RSS_GROWTH_MAX_KIB,
        "reconnecting idle attackers",
    );
}

#[test]
fn sixty_four_reconnecting_idle_attackers_lock_out_no_pusher_and_no_scraper() {
    reconnecting_idle_attackers(64);
}

#[test]
fn a_thousand_reconnecting_idle_attackers_lock_out_no_pusher_and_no_scraper() {
    reconnecting_idle_attackers(1000);
}

// ------------------------------------------------------- keep-alive holders

#[test]
fn keep_alive_holders_are_closed_idle_longest_first_and_a_busy_one_never() {
    let gw = Gateway::start_full(&["--max-scrape-connections", "4"]);
    settle();
    let mut holders: Vec<TcpStream> = (0..4)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.set_read_timeout(Some(WAIT)).unwrap();
            assert_eq!(keep_alive_get(&mut s, "/-/healthy").0, 200);
            s
        })
        .collect();
    // The oldest starts a request: busy, so never closed for a newcomer.
    holders[0].write_all(b"GET /-/hea").unwrap();
    thread::sleep(Duration::from_millis(50));
    // The budget is full: a newcomer is admitted by closing the holder idle
    // longest among those at rest.
    let mut first = TcpStream::connect(gw.addr).unwrap();
    first.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(keep_alive_get(&mut first, "/-/healthy").0, 200);
    assert!(
        closed_by_gateway(&mut holders[1]),
        "holder 1 was not closed"
    );
    // The busy one finishes its request on its own connection.
    holders[0]
        .write_all(b"lthy HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    assert_eq!(read_response(&mut holders[0]).0, 200);
    // At rest now, idle longest first: holder 2, 3, the newcomer, holder 0.
    let mut second = TcpStream::connect(gw.addr).unwrap();
    second.set_read_timeout(Some(WAIT)).unwrap();
    assert_eq!(keep_alive_get(&mut second, "/-/healthy").0, 200);
    assert!(
        closed_by_gateway(&mut holders[2]),
        "holder 2 was not closed"
    );
    for (what, s) in [("holder 0", &holders[0]), ("holder 3", &holders[3])] {
        assert!(still_open(s), "{what} was closed");
    }
    assert!(still_open(&first), "the first newcomer was closed");
    let (status, page) = keep_alive_get(&mut holders[3], "/metrics");
    assert_eq!(status, 200);
    let evicted = "push_gateway_connections_closed_total{listener=\"scrape\",reason=\"evicted\"}";
    assert_eq!(metric(&page, evicted), 2.0);
    assert_eq!(metric(&page, "push_gateway_connections_refused_total"), 0.0);
}

// --------------------------------------------------------- half-line streams

#[test]
fn half_line_streams_cannot_hold_the_push_budget() {
    let gw = Gateway::start_full(&[]);
    settle();
    // The default push budget, each connection half a line and then silent.
    let mut halves: Vec<UnixStream> = (0..64)
        .map(|i| {
            let mut s = gw.connect();
            s.write_all(format!("half_line{{n=\"{i}\"}} ").as_bytes())
                .unwrap();
            s
        })
        .collect();
    let started = Instant::now();
    // Busy, but once they have moved no byte for a while the one idle
    // longest makes room for a newcomer.
    thread::sleep(EVICT_BUSY_AFTER + Duration::from_millis(500));
    assert_eq!(gw.push("newcomer 1\n"), "");
    let mut reply = String::new();
    let _ = halves[0].read_to_string(&mut reply);
    assert!(
        reply.starts_with("error: connection closed to admit another"),
        "{reply:?}"
    );
    // The rest are closed once a partial line has waited too long.
    for (i, s) in halves.iter_mut().enumerate().skip(1) {
        s.set_read_timeout(Some(PARTIAL_LINE_TIMEOUT + WAIT))
            .unwrap();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        assert!(
            reply.starts_with("error: line 1: no newline within"),
            "half line {i}: {reply:?}"
        );
    }
    let took = started.elapsed();
    assert!(
        took >= PARTIAL_LINE_TIMEOUT - Duration::from_millis(500),
        "closed after {took:?}"
    );
    let page = scrape_valid(&gw);
    assert_eq!(value_of(&page, "newcomer").as_deref(), Some("1"));
    assert!(!page.contains("half_line"), "{page}");
    let closed = |reason: &str| {
        metric(
            &page,
            &format!(
                "push_gateway_connections_closed_total{{listener=\"push\",reason=\"{reason}\"}}"
            ),
        )
    };
    assert_eq!((closed("evicted"), closed("timeout")), (1.0, 63.0));
}

#[test]
fn a_stream_pusher_that_writes_whole_lines_rarely_keeps_its_connection() {
    let gw = Gateway::start(&[]);
    let mut s = gw.connect();
    s.write_all(b"rare_writer 1\n").unwrap();
    thread::sleep(PARTIAL_LINE_TIMEOUT.max(REQUEST_TIMEOUT) + Duration::from_secs(2));
    s.write_all(b"rare_writer 2\n").unwrap();
    gw.scrape_until("the second line", |p| {
        value_of(p, "rare_writer").as_deref() == Some("2")
    });
    s.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    let open = matches!(
        s.read(&mut byte),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    );
    assert!(open, "the quiet stream connection was closed");
}

// ---------------------------------------------------- slow lines and bodies

#[test]
fn a_slow_first_line_gets_the_head_timeout_and_a_slow_body_its_own() {
    let gw = Gateway::start_full(&[]);
    // Capitals only: neither a stream line nor HTTP yet.
    let mut first = gw.connect();
    first.write_all(b"PUT").unwrap();
    let started = Instant::now();
    let mut body = gw.connect();
    body.write_all(b"PUT /metrics/job/slow_body HTTP/1.1\r\nHost: l\r\nContent-Length: 64\r\n\r\n")
        .unwrap();
    let head_sent = Instant::now();
    // One byte of the body a second: longer than the head's timeout,
    // longer than the body's too.
    let stop = Arc::new(AtomicBool::new(false));
    let mut w = body.try_clone().unwrap();
    let stopped = stop.clone();
    let writer = thread::spawn(move || {
        for _ in 0..64 {
            if stopped.load(Ordering::Relaxed) || w.write_all(b"x").is_err() {
                return;
            }
            thread::sleep(Duration::from_secs(1));
        }
    });
    first
        .set_read_timeout(Some(REQUEST_TIMEOUT + WAIT))
        .unwrap();
    let mut reply = String::new();
    let _ = first.read_to_string(&mut reply);
    let took = started.elapsed();
    assert!(
        reply.starts_with("error: the first line was not complete within 10 s"),
        "{reply:?} after {took:?}"
    );
    assert!(
        took >= REQUEST_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );
    // Past the head's timeout, the body is still being read.
    let past_head = REQUEST_TIMEOUT + Duration::from_secs(3);
    thread::sleep(past_head.saturating_sub(head_sent.elapsed()));
    body.set_read_timeout(Some(Duration::from_millis(100)))
        .unwrap();
    let mut byte = [0u8; 1];
    let unanswered = matches!(
        body.read(&mut byte),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut)
    );
    assert!(unanswered, "the body was cut by the head's timeout");
    body.set_read_timeout(Some(BODY_TIMEOUT + WAIT)).unwrap();
    let mut reply = String::new();
    let _ = body.read_to_string(&mut reply);
    let took = head_sent.elapsed();
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert!(
        reply.starts_with("HTTP/1.1 408"),
        "{reply:?} after {took:?}"
    );
    assert!(reply.contains("whole body within 30 s"), "{reply:?}");
    assert!(
        took >= BODY_TIMEOUT - Duration::from_millis(500),
        "{took:?}"
    );
    let page = scrape_valid(&gw);
    assert!(!page.contains("slow_body"), "{page}");
    let timeouts = "push_gateway_connections_closed_total{listener=\"push\",reason=\"timeout\"}";
    assert_eq!(metric(&page, timeouts), 2.0);
}

// ------------------------------------------------------ unread send buffers

/// The sum of `Send-Q` of the gateway's established connections on its TCP
/// port, from `ss`; `None` when `ss` cannot run.
fn send_queued(gw: &Gateway) -> Option<u64> {
    let out = Command::new("ss")
        .args(["-tnH", "state", "established"])
        .arg(format!("( sport = :{} )", gw.addr.port()))
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    Some(
        text.lines()
            .filter_map(|l| l.split_whitespace().nth(1)?.parse::<u64>().ok())
            .sum(),
    )
}

#[test]
fn scrapers_that_never_read_pin_at_most_their_send_buffers() {
    let gw = Gateway::start(&["--cache-bytes", "4MiB"]);
    if send_queued(&gw).is_none() {
        eprintln!("ss (iproute2) cannot run here: send buffers not measured");
        return;
    }
    let lines: String = (0..20_000)
        .map(|i| format!("unread_page{{n=\"{i:05}\",pad=\"padding-padding-padding\"}} {i}\n"))
        .collect();
    gw.push(&lines);
    let page_bytes = gw.scrape().len();
    assert!(page_bytes > 1 << 20, "{page_bytes}");
    // As many as the scrape budget, none reading a byte of the page.
    let silent: Vec<TcpStream> = (0..SCRAPE_CONNECTIONS_DEFAULT)
        .map(|_| {
            let mut s = TcpStream::connect(gw.addr).unwrap();
            s.write_all(b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n")
                .unwrap();
            s
        })
        .collect();
    // Until the kernel has taken all it will.
    let mut queued = 0;
    for _ in 0..25 {
        thread::sleep(Duration::from_millis(200));
        let now = send_queued(&gw).unwrap();
        if now == queued && now > 0 {
            break;
        }
        queued = now;
    }
    let per_conn = queued / silent.len() as u64;
    eprintln!(
        "{} scrapers that never read a {page_bytes}-byte page: {queued} bytes queued in the gateway's send buffers ({per_conn} each; SO_SNDBUF {SCRAPE_SEND_BUFFER_BYTES})",
        silent.len()
    );
    // Linux doubles SO_SNDBUF and counts its bookkeeping in it: allow
    // twice that again.
    let bound = (silent.len() * 4 * SCRAPE_SEND_BUFFER_BYTES) as u64;
    assert!(queued <= bound, "{queued} bytes queued, bound {bound}");
    // The budget is full of stalled responses: once they have moved no
    // byte for a while, a scraper is admitted in place of one of them.
    thread::sleep(EVICT_BUSY_AFTER + Duration::from_millis(500));
    let page = scrape_valid(&gw);
    assert!(page.contains("unread_page{n=\"19999\""));
    drop(silent);
}

//! Soak test: mixed push, scrape and connection churn against a running
//! push-gateway for a long time, watching its resident memory.
//!
//! ```text
//! soak --bin PATH [--seconds 600] [--warmup 60] [--interval 10] [--tolerance-kb 16]
//! ```
//!
//! Starts the gateway at `--bin` on a private socket and a free loopback
//! port (`--cache-bytes 64KiB --ttl 5s`, so that series expire and the
//! budget evicts all the time), then runs, until time is up:
//!
//! * a long-lived stream pusher cycling through 3,000 series;
//! * short-lived pushers: connect, a few lines (one of them bad), read the
//!   error reply, close;
//! * an HTTP pusher on the socket: keep-alive `PUT`/`POST`/`DELETE` to 20
//!   groups, one malformed body in ten;
//! * scrapers on the TCP port: keep-alive `GET /metrics`, some hanging up
//!   mid-response, some on the push socket;
//! * connection churn on both listeners.
//!
//! Every `--interval` seconds it prints the gateway's `VmRSS` and what the
//! clients did. The largest `VmRSS` seen during `--warmup` is the baseline;
//! the soak fails if `VmRSS` ever exceeds it by more than `--tolerance-kb`
//! afterwards, if a client sees a wrong answer (a status it did not expect,
//! an invalid page), or if the gateway exits. Connections refused at a
//! full connection budget are counted and printed, not failures. Exit
//! status 0 on success, 1 on failure, 2 on bad usage. `examples/soak.sh` builds and runs it
//! against a release build. Uses std and the gateway's own parser only.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::{Command, ExitCode, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use push_gateway::exposition::parse_line;

const IO_TIMEOUT: Duration = Duration::from_secs(30);

struct Options {
    bin: PathBuf,
    seconds: u64,
    warmup: u64,
    interval: u64,
    tolerance_kb: u64,
}

fn parse_args() -> Result<Options, String> {
    let mut o = Options {
        bin: PathBuf::from("target/release/push-gateway"),
        seconds: 600,
        warmup: 60,
        interval: 10,
        tolerance_kb: 16,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let mut value = || args.next().ok_or(format!("{flag} needs a value"));
        let number = |v: String| {
            v.parse::<u64>()
                .map_err(|_| format!("{v:?} is not a number"))
        };
        match flag.as_str() {
            "--bin" => o.bin = PathBuf::from(value()?),
            "--seconds" => o.seconds = number(value()?)?,
            "--warmup" => o.warmup = number(value()?)?,
            "--interval" => o.interval = number(value()?)?.max(1),
            "--tolerance-kb" => o.tolerance_kb = number(value()?)?,
            _ => return Err(format!("unknown argument {flag:?}")),
        }
    }
    if o.warmup >= o.seconds {
        return Err("--warmup must be shorter than --seconds".into());
    }
    Ok(o)
}

/// What the clients did, and what went wrong.
#[derive(Default)]
struct Counters {
    lines: AtomicU64,
    short_pushes: AtomicU64,
    http_pushes: AtomicU64,
    scrapes: AtomicU64,
    churn: AtomicU64,
    /// Connections refused at a full connection budget (503, or an error line).
    refused: AtomicU64,
    failures: AtomicU64,
}

struct Shared {
    socket: PathBuf,
    addr: SocketAddr,
    stop: AtomicBool,
    counters: Counters,
}

impl Shared {
    fn running(&self) -> bool {
        !self.stop.load(Ordering::Relaxed)
    }

    fn fail(&self, what: &str) {
        self.counters.failures.fetch_add(1, Ordering::Relaxed);
        eprintln!("soak: FAIL: {what}");
    }

    fn refused(&self) {
        self.counters.refused.fetch_add(1, Ordering::Relaxed);
    }

    fn unix(&self) -> io::Result<UnixStream> {
        let s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    }

    fn tcp(&self) -> io::Result<TcpStream> {
        let s = TcpStream::connect(self.addr)?;
        s.set_read_timeout(Some(IO_TIMEOUT))?;
        s.set_write_timeout(Some(IO_TIMEOUT))?;
        Ok(s)
    }
}

fn rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
}

/// Reads one HTTP response with a `Content-Length` body: (status, body).
fn read_response(s: &mut impl Read, buf: &mut Vec<u8>) -> io::Result<(u16, Vec<u8>)> {
    let mut chunk = [0u8; 16 * 1024];
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).into_owned();
            let status = head
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .unwrap_or(0);
            let start = end + 4;
            while buf.len() < start + length {
                let n = s.read(&mut chunk)?;
                if n == 0 {
                    return Err(io::ErrorKind::UnexpectedEof.into());
                }
                buf.extend_from_slice(&chunk[..n]);
            }
            let body = buf[start..start + length].to_vec();
            buf.drain(..start + length);
            return Ok((status, body));
        }
        let n = s.read(&mut chunk)?;
        if n == 0 {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
}

/// Whether every line of a page parses.
fn page_is_valid(page: &[u8]) -> bool {
    page.is_empty()
        || (page.ends_with(b"\n")
            && page[..page.len() - 1]
                .split(|&b| b == b'\n')
                .all(|l| parse_line(l).is_ok()))
}

fn stream_pusher(sh: &Shared) {
    let mut round = 0u64;
    while sh.running() {
        let Ok(mut s) = sh.unix() else {
            sh.fail("stream pusher could not connect");
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        // A connection lives for a few hundred batches, then reconnects.
        let mut write_failed = false;
        for _ in 0..300 {
            if !sh.running() {
                break;
            }
            round += 1;
            let mut batch = String::from(
                "# HELP soak_stream Streamed by the soak.\n# TYPE soak_stream gauge\n",
            );
            for i in 0..100 {
                let series = (round * 100 + i) % 3000;
                batch.push_str(&format!("soak_stream{{series=\"{series}\"}} {round}\n"));
            }
            if s.write_all(batch.as_bytes()).is_err() {
                write_failed = true;
                break;
            }
            sh.counters.lines.fetch_add(102, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(2));
        }
        let _ = s.shutdown(Shutdown::Write);
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        if reply.contains("too many connections") {
            sh.refused();
        } else if write_failed {
            sh.fail("stream pusher: write failed");
        } else if !reply.is_empty() {
            sh.fail(&format!(
                "stream pusher got replies for good lines: {reply:?}"
            ));
        }
    }
}

fn short_pusher(sh: &Shared) {
    let mut n = 0u64;
    while sh.running() {
        n += 1;
        let Ok(mut s) = sh.unix() else {
            sh.fail("short pusher could not connect");
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        let text = format!(
            "soak_short{{n=\"{}\"}} {n}\nthis line is bad\nsoak_short_total {n}\n",
            n % 500
        );
        let ok = s.write_all(text.as_bytes()).is_ok() && s.shutdown(Shutdown::Write).is_ok();
        let mut reply = String::new();
        let _ = s.read_to_string(&mut reply);
        if !ok || !reply.starts_with("error: line 2: ") || reply.lines().count() != 1 {
            if reply.contains("too many connections") {
                sh.refused();
            } else {
                sh.fail(&format!("short pusher: unexpected reply {reply:?}"));
            }
        }
        sh.counters.short_pushes.fetch_add(1, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(3));
    }
}

fn http_pusher(sh: &Shared) {
    let mut n = 0u64;
    'outer: while sh.running() {
        let Ok(mut s) = sh.unix() else {
            sh.fail("HTTP pusher could not connect");
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        let mut buf = Vec::new();
        for _ in 0..200 {
            if !sh.running() {
                break 'outer;
            }
            n += 1;
            let group = n % 20;
            let (method, body, want) = match n % 10 {
                0 => ("PUT", "soak_http 1 2 3\n".to_string(), 400),
                1 => ("DELETE", String::new(), 202),
                2..=4 => ("POST", format!("soak_http_posted {n}\n"), 200),
                _ => (
                    "PUT",
                    format!(
                        "# TYPE soak_http gauge\nsoak_http{{k=\"a\"}} {n}\nsoak_http{{k=\"b\"}} {n}\n\
                         # TYPE soak_http_seconds summary\nsoak_http_seconds_sum {n}\nsoak_http_seconds_count 1\n"
                    ),
                    200,
                ),
            };
            let request = format!(
                "{method} /metrics/job/soak/instance/{group} HTTP/1.1\r\nHost: soak\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            );
            if s.write_all(request.as_bytes()).is_err() {
                sh.fail("HTTP pusher: write failed");
                break;
            }
            match read_response(&mut s, &mut buf) {
                Ok((status, _)) if status == want => {}
                Ok((status, body)) => {
                    sh.fail(&format!(
                        "HTTP {method}: status {status}, want {want}: {}",
                        String::from_utf8_lossy(&body)
                    ));
                    break;
                }
                Err(_) if buf.windows(20).any(|w| w == b"too many connections") => {
                    sh.refused();
                    break;
                }
                Err(e) => {
                    sh.fail(&format!("HTTP {method}: {e}"));
                    break;
                }
            }
            sh.counters.http_pushes.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(5));
        }
    }
}

fn scraper(sh: &Shared) {
    let mut n = 0u64;
    while sh.running() {
        let Ok(mut s) = sh.tcp() else {
            sh.fail("scraper could not connect");
            thread::sleep(Duration::from_secs(1));
            continue;
        };
        let mut buf = Vec::new();
        for _ in 0..20 {
            if !sh.running() {
                return;
            }
            n += 1;
            if s.write_all(b"GET /metrics HTTP/1.1\r\nHost: soak\r\n\r\n")
                .is_err()
            {
                sh.fail("scraper: write failed");
                break;
            }
            if n.is_multiple_of(17) {
                // Hang up mid-response.
                let mut first = [0u8; 64];
                let _ = s.read(&mut first);
                break;
            }
            match read_response(&mut s, &mut buf) {
                Ok((200, page)) if page_is_valid(&page) => {}
                Ok((200, _)) => sh.fail("scraper: invalid page"),
                Ok((503, _)) => {
                    sh.refused();
                    break;
                }
                Ok((status, _)) => sh.fail(&format!("scraper: status {status}")),
                Err(e) => {
                    sh.fail(&format!("scraper: {e}"));
                    break;
                }
            }
            sh.counters.scrapes.fetch_add(1, Ordering::Relaxed);
            thread::sleep(Duration::from_millis(20));
        }
        // And now and then a local scrape on the push socket.
        if n.is_multiple_of(5)
            && let Ok(mut u) = sh.unix()
        {
            let mut buf = Vec::new();
            let _ = u.write_all(
                b"GET /metrics HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            );
            match read_response(&mut u, &mut buf) {
                Ok((200, page)) if page_is_valid(&page) => {}
                Err(_) if buf.windows(20).any(|w| w == b"too many connections") => sh.refused(),
                other => sh.fail(&format!("local scrape: {:?}", other.map(|r| r.0))),
            }
        }
    }
}

fn churner(sh: &Shared) {
    // At most about 250 TCP connections a second, so that the client's
    // TIME_WAIT sockets never run out of ephemeral ports.
    while sh.running() {
        for i in 0..10 {
            drop(sh.unix());
            if i % 2 == 0 {
                drop(sh.tcp());
            }
        }
        sh.counters.churn.fetch_add(15, Ordering::Relaxed);
        thread::sleep(Duration::from_millis(20));
    }
}

/// A client loop, run until the soak stops.
type Worker = fn(&Shared);

fn free_addr() -> SocketAddr {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free loopback port")
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "{e}\nusage: soak --bin PATH [--seconds 600] [--warmup 60] [--interval 10] [--tolerance-kb 16]"
            );
            return ExitCode::from(2);
        }
    };
    let dir = std::env::temp_dir().join(format!("push-gateway-soak-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a temporary directory");
    let socket = dir.join("push.sock");
    let addr = free_addr();
    let mut child = match Command::new(&o.bin)
        .arg("--socket")
        .arg(&socket)
        .args(["--listen", &addr.to_string()])
        .args(["--cache-bytes", "64KiB", "--ttl", "5s"])
        .env("RUST_LOG", "error")
        .stdin(Stdio::null())
        .spawn()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("cannot start {}: {e}", o.bin.display());
            return ExitCode::from(2);
        }
    };
    let pid = child.id();
    let ready_by = Instant::now() + Duration::from_secs(10);
    while UnixStream::connect(&socket).is_err() || TcpStream::connect(addr).is_err() {
        if Instant::now() > ready_by || child.try_wait().ok().flatten().is_some() {
            eprintln!("the gateway did not start");
            let _ = child.kill();
            return ExitCode::FAILURE;
        }
        thread::sleep(Duration::from_millis(20));
    }

    let shared = Arc::new(Shared {
        socket,
        addr,
        stop: AtomicBool::new(false),
        counters: Counters::default(),
    });
    let workers: [(&str, Worker); 6] = [
        ("stream", stream_pusher),
        ("short", short_pusher),
        ("http", http_pusher),
        ("scrape", scraper),
        ("scrape", scraper),
        ("churn", churner),
    ];
    let handles: Vec<_> = workers
        .into_iter()
        .map(|(name, work)| {
            let sh = Arc::clone(&shared);
            thread::Builder::new()
                .name(name.into())
                .spawn(move || work(&sh))
                .expect("a worker thread")
        })
        .collect();

    println!(
        "soak: {}s against {} (pid {pid}), warm-up {}s, RSS sampled every {}s, tolerance {} kB",
        o.seconds,
        o.bin.display(),
        o.warmup,
        o.interval,
        o.tolerance_kb
    );
    let started = Instant::now();
    let mut baseline = 0u64;
    let mut peak_after = 0u64;
    let mut grew = None;
    let mut exited = false;
    let c = &shared.counters;
    while started.elapsed() < Duration::from_secs(o.seconds) {
        thread::sleep(Duration::from_secs(o.interval));
        if child.try_wait().ok().flatten().is_some() {
            exited = true;
            break;
        }
        let t = started.elapsed().as_secs();
        let rss = rss_kb(pid).unwrap_or(0);
        let phase = if t <= o.warmup {
            baseline = baseline.max(rss);
            "warm-up"
        } else {
            peak_after = peak_after.max(rss);
            if rss > baseline + o.tolerance_kb && grew.is_none() {
                grew = Some((t, rss));
            }
            "steady"
        };
        println!(
            "t={t:>5}s rss={rss} kB ({phase}) lines={} short={} http={} scrapes={} churn={} refused={} failures={}",
            c.lines.load(Ordering::Relaxed),
            c.short_pushes.load(Ordering::Relaxed),
            c.http_pushes.load(Ordering::Relaxed),
            c.scrapes.load(Ordering::Relaxed),
            c.churn.load(Ordering::Relaxed),
            c.refused.load(Ordering::Relaxed),
            c.failures.load(Ordering::Relaxed),
        );
    }
    shared.stop.store(true, Ordering::Relaxed);
    for h in handles {
        let _ = h.join();
    }
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&dir);

    let failures = c.failures.load(Ordering::Relaxed);
    let mut ok = true;
    if exited {
        println!("FAIL: the gateway exited during the soak");
        ok = false;
    }
    if let Some((t, rss)) = grew {
        println!(
            "FAIL: VmRSS {rss} kB at t={t}s exceeds the warm-up peak {baseline} kB by more than {} kB",
            o.tolerance_kb
        );
        ok = false;
    }
    if failures > 0 {
        println!("FAIL: {failures} client checks failed (see above)");
        ok = false;
    }
    println!(
        "soak {}: warm-up peak {baseline} kB, peak after warm-up {peak_after} kB",
        if ok { "passed" } else { "FAILED" }
    );
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}

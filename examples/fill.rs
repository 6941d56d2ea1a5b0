//! Workload for memory measurements: fill the gateway's cache with many
//! concurrent pushers, then scrape it repeatedly.
//!
//! ```text
//! fill --socket PATH --scrape ADDR [--pushers 32] [--series 16] [--scrapes 100] [--http]
//! ```
//!
//! * Each pusher pushes `--series` lines `fill_metric_total{pusher="P",series="S"} V`.
//!   Without `--http` every pusher writes its lines to a plain stream connection on
//!   the Unix socket and closes it. With `--http` every odd-numbered pusher sends
//!   them instead as `PUT /metrics/job/fill/instance/P` (HTTP/1.1, on the same
//!   Unix socket) and expects `HTTP/1.1 200`.
//! * All pushers start together (one thread each), alongside a scraper thread that
//!   sends `GET /metrics` to ADDR over TCP `--scrapes` times, reads each reply to
//!   EOF and expects status 200.
//!
//! Prints a one-line summary; exits 1 if any push or scrape failed, 2 on bad usage.
//! Uses std only, so it builds for every target the gateway builds for.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

const IO_TIMEOUT: Duration = Duration::from_secs(20);

struct Args {
    socket: String,
    scrape: String,
    pushers: usize,
    series: usize,
    scrapes: usize,
    http: bool,
}

fn usage() -> &'static str {
    "usage: fill --socket PATH --scrape ADDR [--pushers N] [--series N] [--scrapes N] [--http]"
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        socket: String::new(),
        scrape: String::new(),
        pushers: 32,
        series: 16,
        scrapes: 100,
        http: false,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = |name: &str| it.next().ok_or_else(|| format!("{name} needs a value"));
        let number = |name: &str, v: String| {
            v.parse::<usize>()
                .map_err(|_| format!("{name}: not a number: {v}"))
        };
        match flag.as_str() {
            "--socket" => args.socket = value("--socket")?,
            "--scrape" => args.scrape = value("--scrape")?,
            "--pushers" => args.pushers = number("--pushers", value("--pushers")?)?,
            "--series" => args.series = number("--series", value("--series")?)?,
            "--scrapes" => args.scrapes = number("--scrapes", value("--scrapes")?)?,
            "--http" => args.http = true,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    if args.socket.is_empty() || args.scrape.is_empty() {
        return Err("--socket and --scrape are required".into());
    }
    Ok(args)
}

/// The exposition lines one pusher sends.
fn body(pusher: usize, series: usize) -> String {
    let mut s = String::with_capacity(series * 48);
    for i in 0..series {
        let value = pusher * 1000 + i;
        s.push_str(&format!(
            "fill_metric_total{{pusher=\"{pusher}\",series=\"{i}\"}} {value}\n"
        ));
    }
    s
}

/// Reads until EOF; a timeout after some bytes arrived also ends the reply
/// (for a server that keeps the connection open despite `Connection: close`).
fn read_reply(stream: &mut impl Read) -> Result<Vec<u8>, String> {
    let mut reply = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return Ok(reply),
            Ok(n) => reply.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) if !reply.is_empty() && is_timeout(&e) => return Ok(reply),
            Err(e) => return Err(format!("read: {e}")),
        }
    }
}

fn is_timeout(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
    )
}

fn status_ok(reply: &[u8]) -> bool {
    reply.starts_with(b"HTTP/1.1 200") || reply.starts_with(b"HTTP/1.0 200")
}

fn status_line(reply: &[u8]) -> String {
    let end = reply
        .iter()
        .position(|&b| b == b'\r' || b == b'\n')
        .unwrap_or(reply.len().min(60));
    String::from_utf8_lossy(&reply[..end]).into_owned()
}

fn push_stream(socket: &str, body: &str) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {socket}: {e}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
    s.write_all(body.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    Ok(())
}

fn push_http(socket: &str, pusher: usize, body: &str) -> Result<(), String> {
    let mut s = UnixStream::connect(socket).map_err(|e| format!("connect {socket}: {e}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
    let request = format!(
        "PUT /metrics/job/fill/instance/{pusher} HTTP/1.1\r\nHost: x\r\n\
         Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    );
    s.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let reply = read_reply(&mut s)?;
    if status_ok(&reply) {
        Ok(())
    } else {
        Err(format!("PUT answered {:?}", status_line(&reply)))
    }
}

/// One scrape; returns the reply body.
fn scrape(addr: &str) -> Result<Vec<u8>, String> {
    let mut s = TcpStream::connect(addr).map_err(|e| format!("connect {addr}: {e}"))?;
    s.set_write_timeout(Some(IO_TIMEOUT)).ok();
    s.set_read_timeout(Some(IO_TIMEOUT)).ok();
    s.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let reply = read_reply(&mut s)?;
    if !status_ok(&reply) {
        return Err(format!("GET answered {:?}", status_line(&reply)));
    }
    let start = reply
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .map_or(reply.len(), |p| p + 4);
    Ok(reply[start..].to_vec())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("fill: {e}");
            }
            eprintln!("{}", usage());
            return ExitCode::from(2);
        }
    };
    let started = Instant::now();
    let barrier = Arc::new(Barrier::new(args.pushers + 1));

    let mut pushers = Vec::with_capacity(args.pushers);
    for p in 0..args.pushers {
        let socket = args.socket.clone();
        let barrier = Arc::clone(&barrier);
        let http = args.http && p % 2 == 1;
        let lines = body(p, args.series);
        let spawned = thread::Builder::new()
            .name(format!("pusher-{p}"))
            .stack_size(64 * 1024)
            .spawn(move || {
                barrier.wait();
                let result = if http {
                    push_http(&socket, p, &lines)
                } else {
                    push_stream(&socket, &lines)
                };
                (http, lines.len(), result)
            });
        match spawned {
            Ok(handle) => pushers.push(handle),
            Err(e) => {
                eprintln!("fill: cannot start pusher {p}: {e}");
                return ExitCode::from(1);
            }
        }
    }

    let scraper = {
        let addr = args.scrape.clone();
        let scrapes = args.scrapes;
        let barrier = Arc::clone(&barrier);
        thread::spawn(move || {
            barrier.wait();
            let (mut ok, mut bytes, mut last, mut errors) =
                (0usize, 0usize, Vec::new(), Vec::new());
            for _ in 0..scrapes {
                match scrape(&addr) {
                    Ok(body) => {
                        ok += 1;
                        bytes += body.len();
                        last = body;
                    }
                    Err(e) => errors.push(e),
                }
            }
            (ok, bytes, last, errors)
        })
    };

    let (mut stream_ok, mut http_ok, mut pushed_bytes, mut failures) = (0, 0, 0, 0);
    for handle in pushers {
        match handle.join() {
            Ok((http, len, Ok(()))) => {
                pushed_bytes += len;
                if http { http_ok += 1 } else { stream_ok += 1 }
            }
            Ok((_, _, Err(e))) => {
                failures += 1;
                if failures <= 3 {
                    eprintln!("fill: push failed: {e}");
                }
            }
            Err(_) => failures += 1,
        }
    }
    let (scrapes_ok, scraped_bytes, last, scrape_errors) = match scraper.join() {
        Ok(r) => r,
        Err(_) => (0, 0, Vec::new(), vec!["scraper panicked".to_string()]),
    };
    if failures > 3 {
        eprintln!("fill: ... {} pushes failed in all", failures);
    }
    for e in scrape_errors.iter().take(3) {
        eprintln!("fill: scrape failed: {e}");
    }
    if scrape_errors.len() > 3 {
        eprintln!("fill: ... {} scrapes failed in all", scrape_errors.len());
    }
    failures += scrape_errors.len();

    // One more scrape after all pushes are in, to report what the cache holds.
    let (final_series, final_bytes) = match scrape(&args.scrape) {
        Ok(body) => {
            let n = body
                .split(|&b| b == b'\n')
                .filter(|l| l.starts_with(b"fill_metric_total"))
                .count();
            (n, body.len())
        }
        Err(e) => {
            eprintln!("fill: final scrape failed: {e}");
            failures += 1;
            (0, last.len())
        }
    };

    println!(
        "fill: pushers {} (stream ok {stream_ok}, http ok {http_ok}) pushed {pushed_bytes} B; \
         scrapes ok {scrapes_ok}/{} ({scraped_bytes} B); cache now {final_series} fill series, \
         {final_bytes} B; failures {failures}; {} ms",
        args.pushers,
        args.scrapes,
        started.elapsed().as_millis()
    );
    if failures == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

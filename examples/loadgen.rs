//! Load generator: drives push-gateway (or, for comparison, the Prometheus
//! Pushgateway) over real sockets for a bounded time and reports what the
//! server accepted.
//!
//! ```text
//! loadgen stream --socket PATH --scrape ADDR [-c 4] [--series 1000]
//! loadgen http   (--socket PATH | --tcp ADDR) [--series 10] [-c 4] [--scrape ADDR]
//! loadgen scrape (--addr ADDR | --socket PATH) [-c 4]
//! loadgen fill   (--socket PATH | --tcp ADDR) [--series 100]
//! loadgen flood  --socket PATH --scrape ADDR [-c 4] [--scrapers 0]
//! loadgen freeport [-c 1]
//!
//! common: [--seconds 5] [--warmup 0] [--pid PID] [--name TEXT] [--job loadgen]
//! ```
//!
//! * `stream`: `-c` connections on the push socket write exposition lines
//!   as fast as the gateway takes them, over `--series` distinct series
//!   `loadgen_stream{conn="C",series="I"}` (series `I` belongs to connection
//!   `I % C`). Every round writes every series of a connection with a new
//!   value. When time is up each connection shuts down its writing side and
//!   waits for the gateway to close it, which the gateway does only after
//!   applying every line; then a scrape of `--scrape` must show, for every
//!   series, the last value written. Rates count from the start to the last
//!   close, so they are samples *applied*, not bytes queued in the kernel.
//! * `http`: `-c` keep-alive connections each `PUT` a body of `--series`
//!   lines `loadgen_http{series="I"}` to `/metrics/job/<JOB>/instance/<C>`,
//!   one request in flight per connection, each expecting `200`. With
//!   `--scrape`, the page must then hold the last pushed values.
//! * `scrape`: `-c` keep-alive connections `GET /metrics`, each reply
//!   checked for status 200 and read to the end of its body
//!   (`Content-Length` or chunked).
//! * `fill`: one `PUT` of `--series` series to `/metrics/job/loadgen_fill`,
//!   e.g. to give `scrape` a page of a known size.
//! * `flood`: `-c` connections on the push socket write never-seen series
//!   `loadgen_flood{run="R",conn="C",i="N"} 1` (R differs per run, N
//!   counts up, ten digits, so every key is new and all are one size), as
//!   fast as the gateway takes them: at a full budget each line evicts.
//!   Rates count lines applied, as for `stream`. With `--scrapers S`, S
//!   more connections `GET /metrics` from `--scrape` one after another
//!   while the flood runs; every reply must be 200 with a page ending in a
//!   newline, and the scrape latencies are reported (`scrape_p99_us`).
//!   At the end a scrape must show the last series of at least one
//!   connection (`verified=yes:N`: N connections' last series are there).
//! * `freeport`: prints `-c` free TCP ports on 127.0.0.1 (one per line).
//!
//! With `--pid`, the server's CPU time (utime + stime from `/proc/PID/stat`)
//! over the measured window and its memory (`VmRSS`, `VmHWM`) are reported
//! too. `--warmup S` runs `http`/`scrape` for S seconds before measuring.
//!
//! Output: one machine-readable line of `key=value` pairs starting with
//! `mode=`, then one line for people. Exit status 1 if any request failed
//! or a check did not hold, 2 on bad usage.
//!
//! Hot loops reuse one request buffer and one read buffer per connection;
//! latencies go into a fixed log-linear histogram (about 1.6% resolution).
//! Uses std only.

use std::fmt::Write as _;
use std::io::{self, Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, Instant};

const USAGE: &str = "usage:
  loadgen stream --socket PATH --scrape ADDR [-c N] [--series N]
  loadgen http   (--socket PATH | --tcp ADDR) [--series N] [-c N] [--scrape ADDR]
  loadgen scrape (--addr ADDR | --socket PATH) [-c N]
  loadgen fill   (--socket PATH | --tcp ADDR) [--series N]
  loadgen flood  --socket PATH --scrape ADDR [-c N] [--scrapers N]
  loadgen freeport [-c N]
common: [--seconds S] [--warmup S] [--pid PID] [--name TEXT] [--job NAME]";

/// Every sample value has ten digits, so that a value is rewritten in place
/// without moving the bytes around it.
const VALUE_BASE: u64 = 1_000_000_000;
const VALUE_DIGITS: usize = 10;
/// A stream connection writes about this much per `write`.
const STREAM_WRITE_BYTES: usize = 64 * 1024;
/// Read buffer of one HTTP connection (heads and body pieces).
const READ_BUF_BYTES: usize = 64 * 1024;
/// No single socket operation may block longer than this.
const IO_TIMEOUT: Duration = Duration::from_secs(30);
/// `/proc/PID/stat` times are in USER_HZ ticks, 100 on Linux.
const CLOCK_TICKS_PER_SECOND: f64 = 100.0;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Mode {
    Stream,
    Http,
    Scrape,
    Fill,
    Flood,
    FreePort,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Stream => "stream",
            Mode::Http => "http",
            Mode::Scrape => "scrape",
            Mode::Fill => "fill",
            Mode::Flood => "flood",
            Mode::FreePort => "freeport",
        }
    }
}

/// Where requests go.
#[derive(Clone, Debug)]
enum Target {
    Unix(String),
    Tcp(String),
}

impl Target {
    fn connect(&self) -> io::Result<Conn> {
        let conn = match self {
            Target::Unix(path) => Conn::Unix(UnixStream::connect(path)?),
            Target::Tcp(addr) => {
                let s = TcpStream::connect(addr.as_str())?;
                s.set_nodelay(true)?;
                Conn::Tcp(s)
            }
        };
        conn.set_timeouts()?;
        Ok(conn)
    }

    fn describe(&self) -> String {
        match self {
            Target::Unix(path) => format!("unix:{path}"),
            Target::Tcp(addr) => format!("tcp:{addr}"),
        }
    }
}

enum Conn {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Conn {
    fn set_timeouts(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))
            }
            Conn::Tcp(s) => {
                s.set_read_timeout(Some(IO_TIMEOUT))?;
                s.set_write_timeout(Some(IO_TIMEOUT))
            }
        }
    }

    fn shutdown_write(&self) -> io::Result<()> {
        match self {
            Conn::Unix(s) => s.shutdown(Shutdown::Write),
            Conn::Tcp(s) => s.shutdown(Shutdown::Write),
        }
    }
}

impl Read for Conn {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.read(buf),
            Conn::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Conn {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Conn::Unix(s) => s.write(buf),
            Conn::Tcp(s) => s.write(buf),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

struct Opts {
    mode: Mode,
    target: Option<Target>,
    scrape: Option<String>,
    conns: usize,
    series: usize,
    seconds: f64,
    warmup: f64,
    pid: Option<u32>,
    name: String,
    job: String,
    scrapers: usize,
}

fn parse_args() -> Result<Opts, String> {
    let mut it = std::env::args().skip(1);
    let mode = match it.next().as_deref() {
        Some("stream") => Mode::Stream,
        Some("http") => Mode::Http,
        Some("scrape") => Mode::Scrape,
        Some("fill") => Mode::Fill,
        Some("flood") => Mode::Flood,
        Some("freeport") => Mode::FreePort,
        Some("-h" | "--help") | None => return Err(String::new()),
        Some(other) => return Err(format!("unknown mode: {other}")),
    };
    let mut o = Opts {
        mode,
        target: None,
        scrape: None,
        conns: if mode == Mode::FreePort || mode == Mode::Fill {
            1
        } else {
            4
        },
        series: match mode {
            Mode::Stream => 1000,
            Mode::Fill => 100,
            _ => 10,
        },
        seconds: 5.0,
        warmup: 0.0,
        pid: None,
        name: String::new(),
        job: "loadgen".into(),
        scrapers: 0,
    };
    let mut socket = None;
    let mut tcp = None;
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| -> Result<f64, String> {
            v.parse::<f64>()
                .ok()
                .filter(|n| n.is_finite() && *n >= 0.0)
                .ok_or_else(|| format!("{flag}: not a non-negative number: {v}"))
        };
        match flag.as_str() {
            "--socket" => socket = Some(value()?),
            "--tcp" | "--addr" => tcp = Some(value()?),
            "--scrape" => o.scrape = Some(value()?),
            "-c" | "--connections" => o.conns = number(value()?)? as usize,
            "--series" => o.series = number(value()?)? as usize,
            "--seconds" => o.seconds = number(value()?)?,
            "--warmup" => o.warmup = number(value()?)?,
            "--pid" => o.pid = Some(number(value()?)? as u32),
            "--name" => o.name = value()?,
            "--job" => o.job = value()?,
            "--scrapers" => o.scrapers = number(value()?)? as usize,
            "-h" | "--help" => return Err(String::new()),
            other => return Err(format!("unknown argument: {other}")),
        }
    }
    o.target = match (socket, tcp) {
        (Some(_), Some(_)) => return Err("give one of --socket and --tcp/--addr".into()),
        (Some(p), None) => Some(Target::Unix(p)),
        (None, Some(a)) => Some(Target::Tcp(a)),
        (None, None) => None,
    };
    if o.conns == 0 {
        return Err("-c must be at least 1".into());
    }
    match mode {
        Mode::FreePort => {}
        _ if o.target.is_none() => return Err(format!("{} needs a target", mode.name())),
        Mode::Stream => {
            if !matches!(o.target, Some(Target::Unix(_))) {
                return Err("stream needs --socket".into());
            }
            if o.scrape.is_none() {
                return Err("stream needs --scrape ADDR to check what was applied".into());
            }
            if o.series < o.conns {
                return Err("stream needs --series >= -c".into());
            }
        }
        Mode::Flood if !matches!(o.target, Some(Target::Unix(_))) || o.scrape.is_none() => {
            return Err("flood needs --socket and --scrape ADDR".into());
        }
        Mode::Http | Mode::Fill if o.series == 0 => return Err("--series must be >= 1".into()),
        _ => {}
    }
    if o.seconds <= 0.0 {
        return Err("--seconds must be > 0".into());
    }
    Ok(o)
}

// ---- latency histogram ------------------------------------------------------

/// Log-linear histogram of nanoseconds: exact below 128, then 64 buckets
/// per power of two.
struct Hist {
    counts: Vec<u64>,
    total: u64,
    max_ns: u64,
}

impl Hist {
    const BUCKETS: usize = 128 + 58 * 64;

    fn new() -> Hist {
        Hist {
            counts: vec![0; Self::BUCKETS],
            total: 0,
            max_ns: 0,
        }
    }

    fn index(ns: u64) -> usize {
        if ns < 128 {
            return ns as usize;
        }
        let msb = 63 - ns.leading_zeros() as usize;
        let shift = msb - 6;
        (128 + (shift - 1) * 64 + ((ns >> shift) as usize - 64)).min(Self::BUCKETS - 1)
    }

    /// The middle of a bucket.
    fn value(index: usize) -> u64 {
        if index < 128 {
            return index as u64;
        }
        let shift = (index - 128) / 64 + 1;
        let m = ((index - 128) % 64 + 64) as u64;
        (m << shift) + (1u64 << shift) / 2
    }

    fn record(&mut self, d: Duration) {
        let ns = u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
        self.counts[Self::index(ns)] += 1;
        self.total += 1;
        self.max_ns = self.max_ns.max(ns);
    }

    fn merge(&mut self, other: &Hist) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max_ns = self.max_ns.max(other.max_ns);
    }

    /// The `q` quantile in microseconds (0 when empty).
    fn quantile_us(&self, q: f64) -> f64 {
        if self.total == 0 {
            return 0.0;
        }
        let rank = ((q * self.total as f64).ceil() as u64).clamp(1, self.total);
        let mut seen = 0;
        for (i, &c) in self.counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return Self::value(i) as f64 / 1000.0;
            }
        }
        0.0
    }
}

// ---- what one connection did ------------------------------------------------

struct Tally {
    /// Requests (http, scrape) or writes (stream) counted.
    ops: u64,
    samples: u64,
    /// Request bytes sent (push modes) or body bytes received (scrape).
    bytes: u64,
    errors: u64,
    first_error: Option<String>,
    hist: Hist,
    /// The last value written to this connection's series.
    last_value: u64,
    /// When this connection finished (stream: when the gateway closed it).
    end: Option<Instant>,
}

impl Tally {
    fn new() -> Tally {
        Tally {
            ops: 0,
            samples: 0,
            bytes: 0,
            errors: 0,
            first_error: None,
            hist: Hist::new(),
            last_value: 0,
            end: None,
        }
    }

    fn fail(&mut self, e: String) {
        self.errors += 1;
        if self.first_error.is_none() {
            self.first_error = Some(e);
        }
    }
}

/// Ten ASCII digits of `v` (which must be below 10^10).
fn ten_digits(mut v: u64) -> [u8; VALUE_DIGITS] {
    let mut d = [b'0'; VALUE_DIGITS];
    for slot in d.iter_mut().rev() {
        *slot = b'0' + (v % 10) as u8;
        v /= 10;
    }
    d
}

fn set_value(buf: &mut [u8], slots: &[usize], value: u64) {
    let digits = ten_digits(value);
    for &at in slots {
        buf[at..at + VALUE_DIGITS].copy_from_slice(&digits);
    }
}

// ---- HTTP responses ---------------------------------------------------------

/// Reads HTTP responses from one connection into one reused buffer.
struct Reader {
    buf: Vec<u8>,
    start: usize,
    end: usize,
}

struct Response {
    status: u16,
    body_bytes: u64,
    close: bool,
}

enum Framing {
    Length(u64),
    Chunked,
    UntilClose,
}

impl Reader {
    fn new() -> Reader {
        Reader {
            buf: vec![0; READ_BUF_BYTES],
            start: 0,
            end: 0,
        }
    }

    /// Reads more bytes after those buffered, moving them to the front
    /// first if the buffer is full. `Ok(false)` at EOF.
    fn fill(&mut self, conn: &mut Conn) -> Result<bool, String> {
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        } else if self.end == self.buf.len() {
            if self.start == 0 {
                return Err("response line or head larger than the read buffer".into());
            }
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        loop {
            match conn.read(&mut self.buf[self.end..]) {
                Ok(0) => return Ok(false),
                Ok(n) => {
                    self.end += n;
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(format!("read: {e}")),
            }
        }
    }

    /// Makes sure a line ending in `\r\n` is buffered; returns its end
    /// (the index of its `\r`).
    fn line(&mut self, conn: &mut Conn) -> Result<usize, String> {
        let mut from = self.start;
        loop {
            if let Some(p) = find(&self.buf[from..self.end], b"\r\n") {
                return Ok(from + p);
            }
            let scanned = self.end.saturating_sub(1).max(self.start) - self.start;
            if !self.fill(conn)? {
                return Err("connection closed inside a response".into());
            }
            from = self.start + scanned;
        }
    }

    /// Consumes `n` body bytes, copying them to `sink` if given.
    fn body(
        &mut self,
        conn: &mut Conn,
        mut n: u64,
        sink: &mut Option<&mut Vec<u8>>,
    ) -> Result<(), String> {
        while n > 0 {
            if self.start == self.end && !self.fill(conn)? {
                return Err(format!("connection closed with {n} body bytes unread"));
            }
            let take = (self.end - self.start).min(usize::try_from(n).unwrap_or(usize::MAX));
            if let Some(s) = sink.as_deref_mut() {
                s.extend_from_slice(&self.buf[self.start..self.start + take]);
            }
            self.start += take;
            n -= take as u64;
        }
        Ok(())
    }

    /// Reads one whole response; its body goes to `sink` if given.
    fn response(
        &mut self,
        conn: &mut Conn,
        mut sink: Option<&mut Vec<u8>>,
    ) -> Result<Response, String> {
        // The head.
        let head_end = loop {
            if let Some(p) = find(&self.buf[self.start..self.end], b"\r\n\r\n") {
                break self.start + p;
            }
            if !self.fill(conn)? {
                return Err(if self.start == self.end {
                    "connection closed before a response".into()
                } else {
                    "connection closed inside a response head".into()
                });
            }
        };
        let head = &self.buf[self.start..head_end];
        let mut lines = head.split(|&b| b == b'\n');
        let status_line = lines.next().unwrap_or_default();
        let status = status_line
            .get(9..12)
            .filter(|_| status_line.starts_with(b"HTTP/1."))
            .and_then(|s| std::str::from_utf8(s).ok())
            .and_then(|s| s.parse::<u16>().ok())
            .ok_or_else(|| {
                format!(
                    "not an HTTP response: {:?}",
                    String::from_utf8_lossy(&status_line[..status_line.len().min(60)])
                )
            })?;
        let mut framing = Framing::UntilClose;
        let mut close = status_line.starts_with(b"HTTP/1.0");
        for line in lines {
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            let Some(colon) = line.iter().position(|&b| b == b':') else {
                continue;
            };
            let (name, value) = (&line[..colon], trim(&line[colon + 1..]));
            if name.eq_ignore_ascii_case(b"content-length") {
                let n = std::str::from_utf8(value)
                    .ok()
                    .and_then(|v| v.parse().ok())
                    .ok_or("bad Content-Length")?;
                framing = Framing::Length(n);
            } else if name.eq_ignore_ascii_case(b"transfer-encoding")
                && value.eq_ignore_ascii_case(b"chunked")
            {
                framing = Framing::Chunked;
            } else if name.eq_ignore_ascii_case(b"connection") {
                close = value.eq_ignore_ascii_case(b"close");
            }
        }
        self.start = head_end + 4;
        if status == 100 {
            return self.response(conn, sink);
        }
        if status == 204 || status == 304 {
            framing = Framing::Length(0);
        }
        let body_bytes = match framing {
            Framing::Length(n) => {
                self.body(conn, n, &mut sink)?;
                n
            }
            Framing::Chunked => {
                let mut total = 0;
                loop {
                    let end = self.line(conn)?;
                    let size_text = &self.buf[self.start..end];
                    let size_text = size_text.split(|&b| b == b';').next().unwrap_or_default();
                    let size = std::str::from_utf8(trim(size_text))
                        .ok()
                        .and_then(|s| u64::from_str_radix(s, 16).ok())
                        .ok_or("bad chunk size")?;
                    self.start = end + 2;
                    if size == 0 {
                        // Trailers, up to an empty line.
                        loop {
                            let end = self.line(conn)?;
                            let empty = end == self.start;
                            self.start = end + 2;
                            if empty {
                                break;
                            }
                        }
                        break;
                    }
                    self.body(conn, size, &mut sink)?;
                    let end = self.line(conn)?;
                    if end != self.start {
                        return Err("chunk data longer than its size".into());
                    }
                    self.start = end + 2;
                    total += size;
                }
                total
            }
            Framing::UntilClose => {
                let mut total = 0;
                loop {
                    let n = (self.end - self.start) as u64;
                    self.body(conn, n, &mut sink)?;
                    total += n;
                    if !self.fill(conn)? {
                        break;
                    }
                }
                close = true;
                total
            }
        };
        Ok(Response {
            status,
            body_bytes,
            close,
        })
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

fn trim(mut s: &[u8]) -> &[u8] {
    while let [b' ' | b'\t', rest @ ..] = s {
        s = rest;
    }
    while let [rest @ .., b' ' | b'\t'] = s {
        s = rest;
    }
    s
}

/// One `GET /metrics` on its own connection; the page body.
fn fetch_page(addr: &str) -> Result<Vec<u8>, String> {
    let target = if addr.starts_with('/') {
        Target::Unix(addr.to_string())
    } else {
        Target::Tcp(addr.to_string())
    };
    let mut conn = target
        .connect()
        .map_err(|e| format!("connect {}: {e}", target.describe()))?;
    conn.write_all(b"GET /metrics HTTP/1.1\r\nHost: loadgen\r\nConnection: close\r\n\r\n")
        .map_err(|e| format!("write: {e}"))?;
    let mut page = Vec::new();
    let r = Reader::new().response(&mut conn, Some(&mut page))?;
    if r.status != 200 {
        return Err(format!("GET /metrics answered {}", r.status));
    }
    Ok(page)
}

/// Sample lines of `metric` on a page: (value of label `a`, value of label
/// `b`, sample value).
fn page_samples<'p>(
    page: &'p [u8],
    metric: &str,
    a: &str,
    b: &str,
) -> impl Iterator<Item = (Option<&'p [u8]>, Option<&'p [u8]>, f64)> {
    let prefix = format!("{metric}{{");
    page.split(|&c| c == b'\n').filter_map(move |line| {
        let rest = line.strip_prefix(prefix.as_bytes())?;
        let close = rest.iter().rposition(|&c| c == b'}')?;
        let (labels, value) = (&rest[..close], trim(&rest[close + 1..]));
        let value: f64 = std::str::from_utf8(value).ok()?.parse().ok()?;
        let mut found = (None, None);
        for pair in labels.split(|&c| c == b',') {
            let eq = pair.iter().position(|&c| c == b'=')?;
            let v = pair[eq + 1..].strip_prefix(b"\"")?.strip_suffix(b"\"")?;
            let name = trim(&pair[..eq]);
            if name == a.as_bytes() {
                found.0 = Some(v);
            } else if name == b.as_bytes() {
                found.1 = Some(v);
            }
        }
        Some((found.0, found.1, value))
    })
}

fn parse_index(v: Option<&[u8]>) -> Option<usize> {
    std::str::from_utf8(v?).ok()?.parse().ok()
}

/// Checks the page at `addr`: every sample of `metric` whose labels
/// `conn_label` and `series` name a series `expect` knows must hold the
/// value it says, and all `total` of them must be there. Returns how many
/// held, or why not.
fn verify_page(
    addr: &str,
    metric: &str,
    conn_label: &str,
    total: usize,
    expect: impl Fn(usize, usize) -> Option<u64>,
) -> Result<usize, String> {
    let page = fetch_page(addr)?;
    let (mut good, mut wrong) = (0, None);
    for (conn, s, value) in page_samples(&page, metric, conn_label, "series") {
        let (Some(c), Some(i)) = (parse_index(conn), parse_index(s)) else {
            continue;
        };
        let Some(want) = expect(c, i) else {
            continue;
        };
        if value == want as f64 {
            good += 1;
        } else if wrong.is_none() {
            wrong = Some(format!(
                "{metric}{{{conn_label}=\"{c}\",series=\"{i}\"}} holds {value}, last written {want}"
            ));
        }
    }
    if good == total {
        Ok(good)
    } else {
        Err(wrong.unwrap_or_else(|| {
            format!("only {good} of {total} {metric} series on the page hold their last value")
        }))
    }
}

// ---- /proc ------------------------------------------------------------------

/// utime + stime of a process (all its threads, dead ones included).
fn cpu_seconds(pid: &str) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    // Fields 14 and 15 of stat(5); `after` starts at field 3.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / CLOCK_TICKS_PER_SECOND)
}

/// A `kB` field of `/proc/PID/status`, e.g. `VmHWM`.
fn status_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status.lines().find_map(|l| {
        l.strip_prefix(field)?
            .strip_prefix(':')?
            .trim()
            .strip_suffix("kB")?
            .trim()
            .parse()
            .ok()
    })
}

/// CPU of the server (if `--pid`) and of this process, at one moment.
struct CpuMark {
    server: Option<f64>,
    client: Option<f64>,
}

impl CpuMark {
    fn now(pid: Option<u32>) -> CpuMark {
        CpuMark {
            server: pid.and_then(|p| cpu_seconds(&p.to_string())),
            client: cpu_seconds("self"),
        }
    }
}

// ---- the workloads ----------------------------------------------------------

/// A stream connection: writes rounds of its series until `deadline`, then
/// half-closes and waits for the gateway to close after applying them all.
fn stream_conn(mut conn: Conn, id: usize, conns: usize, series: usize, deadline: Instant) -> Tally {
    let mut t = Tally::new();
    // One round: every series this connection owns.
    let mut round = Vec::new();
    let mut round_slots = Vec::new();
    for i in (id..series).step_by(conns) {
        round.extend_from_slice(
            format!("loadgen_stream{{conn=\"{id}\",series=\"{i}\"}} ").as_bytes(),
        );
        round_slots.push(round.len());
        round.extend_from_slice(&[b'0'; VALUE_DIGITS]);
        round.push(b'\n');
    }
    let per_round = round_slots.len();
    // As many rounds as make one write of about STREAM_WRITE_BYTES.
    let rounds = STREAM_WRITE_BYTES.div_ceil(round.len()).max(1);
    let mut buf = Vec::with_capacity(rounds * round.len());
    let mut slots = Vec::with_capacity(rounds * per_round);
    for r in 0..rounds {
        let base = r * round.len();
        buf.extend_from_slice(&round);
        slots.extend(round_slots.iter().map(|s| base + s));
    }
    let mut next_value = VALUE_BASE;
    loop {
        for r in 0..rounds {
            set_value(
                &mut buf,
                &slots[r * per_round..(r + 1) * per_round],
                next_value,
            );
            next_value += 1;
        }
        if let Err(e) = conn.write_all(&buf) {
            t.fail(format!("write: {e}"));
            return t;
        }
        t.ops += 1;
        t.bytes += buf.len() as u64;
        t.samples += slots.len() as u64;
        t.last_value = next_value - 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    await_close(&mut conn, &mut t);
    t
}

/// Half-closes a push connection and waits for the gateway to close it,
/// which it does once every line is applied; anything it answers is an
/// error. Sets `t.end`.
fn await_close(conn: &mut Conn, t: &mut Tally) {
    if let Err(e) = conn.shutdown_write() {
        t.fail(format!("shutdown: {e}"));
        return;
    }
    // The gateway answers only bad lines; it closes once all are applied.
    let mut reply = [0u8; 512];
    let mut replied = 0;
    loop {
        match conn.read(&mut reply[replied..]) {
            Ok(0) => break,
            Ok(n) => {
                replied = (replied + n).min(reply.len() - 1);
                if replied == reply.len() - 1 {
                    replied = 0;
                }
                t.errors += 1;
                if t.first_error.is_none() {
                    let text = String::from_utf8_lossy(&reply[..n]);
                    t.first_error = Some(format!("gateway replied {:?}", text.trim_end()));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                t.fail(format!("waiting for the gateway to close: {e}"));
                break;
            }
        }
    }
    t.end = Some(Instant::now());
}

/// A push request whose sample values are rewritten in place.
struct PushRequest {
    bytes: Vec<u8>,
    slots: Vec<usize>,
}

fn push_request(
    target: &Target,
    job: &str,
    instance: &str,
    metric: &str,
    series: usize,
) -> PushRequest {
    let mut body = Vec::new();
    let mut body_slots = Vec::with_capacity(series);
    for i in 0..series {
        body.extend_from_slice(format!("{metric}{{series=\"{i}\"}} ").as_bytes());
        body_slots.push(body.len());
        body.extend_from_slice(&[b'0'; VALUE_DIGITS]);
        body.push(b'\n');
    }
    let host = match target {
        Target::Tcp(addr) => addr.as_str(),
        Target::Unix(_) => "localhost",
    };
    let mut bytes = format!(
        "PUT /metrics/job/{job}/instance/{instance} HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    let head = bytes.len();
    bytes.extend_from_slice(&body);
    PushRequest {
        bytes,
        slots: body_slots.into_iter().map(|s| s + head).collect(),
    }
}

/// One request/response exchange; `Err` for a failure or an unexpected
/// status.
fn exchange(
    conn: &mut Conn,
    reader: &mut Reader,
    request: &[u8],
    want_status: u16,
) -> Result<Response, String> {
    conn.write_all(request).map_err(|e| format!("write: {e}"))?;
    let r = reader.response(conn, None)?;
    if r.status != want_status {
        return Err(format!("answered {} (expected {want_status})", r.status));
    }
    if r.close {
        return Err("server closed the keep-alive connection".into());
    }
    Ok(r)
}

/// An HTTP connection: pushes (`push` is `Some`) or scrapes until
/// `deadline`, recording requests that start after `measure_from`.
fn http_conn(
    mut conn: Conn,
    mut push: Option<PushRequest>,
    series: usize,
    measure_from: Instant,
    deadline: Instant,
) -> Tally {
    const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: loadgen\r\n\r\n";
    let mut t = Tally::new();
    let mut reader = Reader::new();
    let mut next_value = VALUE_BASE;
    loop {
        let started = Instant::now();
        if started >= deadline {
            break;
        }
        let result = match &mut push {
            Some(p) => {
                set_value(&mut p.bytes, &p.slots, next_value);
                exchange(&mut conn, &mut reader, &p.bytes, 200)
            }
            None => exchange(&mut conn, &mut reader, SCRAPE, 200),
        };
        let done = Instant::now();
        match result {
            Ok(r) => {
                if push.is_some() {
                    t.last_value = next_value;
                    next_value += 1;
                }
                if started >= measure_from {
                    t.hist.record(done - started);
                    t.ops += 1;
                    match &push {
                        Some(p) => {
                            t.samples += series as u64;
                            t.bytes += p.bytes.len() as u64;
                        }
                        None => t.bytes += r.body_bytes,
                    }
                }
            }
            Err(e) => {
                t.fail(e);
                break;
            }
        }
    }
    t.end = Some(Instant::now());
    t
}

/// Totals of a run, and what to print.
struct Report {
    fields: String,
    human: String,
    ok: bool,
}

fn kv(out: &mut String, key: &str, value: impl std::fmt::Display) {
    let _ = write!(out, " {key}={value}");
}

fn run(o: &Opts) -> Result<Report, String> {
    let target = o.target.clone().ok_or("no target")?;
    let mut conns = Vec::with_capacity(o.conns);
    for _ in 0..o.conns {
        conns.push(
            target
                .connect()
                .map_err(|e| format!("connect {}: {e}", target.describe()))?,
        );
    }
    let page_info = if o.mode == Mode::Scrape {
        // What is being scraped, outside the measurement.
        let addr = match &target {
            Target::Unix(p) | Target::Tcp(p) => p.as_str(),
        };
        let page = fetch_page(addr)?;
        let samples = page
            .split(|&b| b == b'\n')
            .filter(|l| !l.is_empty() && !l.starts_with(b"#"))
            .count();
        Some((page.len(), samples))
    } else {
        None
    };

    let warmup = if o.mode == Mode::Stream {
        0.0
    } else {
        o.warmup
    };
    let begin = Instant::now();
    let measure_from = begin + Duration::from_secs_f64(warmup);
    let deadline = measure_from + Duration::from_secs_f64(o.seconds);
    let (tallies, cpu0, cpu1) = thread::scope(|scope| {
        let mut handles = Vec::with_capacity(o.conns);
        for (id, conn) in conns.into_iter().enumerate() {
            let (conns, series) = (o.conns, o.series);
            let push = (o.mode == Mode::Http)
                .then(|| push_request(&target, &o.job, &id.to_string(), "loadgen_http", series));
            let mode = o.mode;
            handles.push(scope.spawn(move || match mode {
                Mode::Stream => stream_conn(conn, id, conns, series, deadline),
                _ => http_conn(conn, push, series, measure_from, deadline),
            }));
        }
        if let Some(wait) = measure_from.checked_duration_since(Instant::now()) {
            thread::sleep(wait);
        }
        let cpu0 = CpuMark::now(o.pid);
        let tallies: Vec<Tally> = handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or_else(|_| {
                    let mut t = Tally::new();
                    t.fail("connection thread panicked".into());
                    t
                })
            })
            .collect();
        let cpu1 = CpuMark::now(o.pid);
        (tallies, cpu0, cpu1)
    });

    let end = tallies
        .iter()
        .filter_map(|t| t.end)
        .max()
        .unwrap_or_else(Instant::now);
    let elapsed = end.duration_since(measure_from).as_secs_f64().max(1e-9);
    let mut hist = Hist::new();
    let (mut ops, mut samples, mut bytes, mut errors) = (0, 0, 0, 0);
    let mut first_error = None;
    for t in &tallies {
        hist.merge(&t.hist);
        ops += t.ops;
        samples += t.samples;
        bytes += t.bytes;
        errors += t.errors;
        if first_error.is_none() {
            first_error.clone_from(&t.first_error);
        }
    }

    // Check what the gateway holds.
    let mut verified = "skipped".to_string();
    let expected: Vec<u64> = tallies.iter().map(|t| t.last_value).collect();
    let check = match (o.mode, &o.scrape) {
        // Series i belongs to connection i % c.
        (Mode::Stream, Some(addr)) => Some(verify_page(
            addr,
            "loadgen_stream",
            "conn",
            o.series,
            |c, i| (i < o.series && i % o.conns == c).then(|| expected[c]),
        )),
        // Every connection pushes all series to its own group.
        (Mode::Http, Some(addr)) if errors == 0 => Some(verify_page(
            addr,
            "loadgen_http",
            "instance",
            o.series * o.conns,
            |c, i| (c < o.conns && i < o.series).then(|| expected[c]),
        )),
        _ => None,
    };
    match check {
        Some(Ok(n)) => verified = format!("yes:{n}"),
        Some(Err(e)) => {
            verified = "no".into();
            errors += 1;
            if first_error.is_none() {
                first_error = Some(format!("check failed: {e}"));
            }
        }
        None => {}
    }

    let server_cpu = match (cpu0.server, cpu1.server) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    let client_cpu = match (cpu0.client, cpu1.client) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };

    let mut f = String::new();
    let _ = write!(f, "mode={}", o.mode.name());
    if !o.name.is_empty() {
        kv(&mut f, "name", &o.name);
    }
    kv(&mut f, "target", target.describe());
    kv(&mut f, "c", o.conns);
    if o.mode != Mode::Scrape {
        kv(&mut f, "series", o.series);
    }
    kv(&mut f, "seconds", format!("{elapsed:.3}"));
    let per_s = |n: u64| n as f64 / elapsed;
    match o.mode {
        Mode::Stream => {
            kv(&mut f, "writes", ops);
            kv(&mut f, "samples", samples);
            kv(&mut f, "bytes", bytes);
            kv(&mut f, "samples_per_s", format!("{:.0}", per_s(samples)));
            kv(&mut f, "bytes_per_s", format!("{:.0}", per_s(bytes)));
        }
        Mode::Http => {
            kv(&mut f, "requests", ops);
            kv(&mut f, "samples", samples);
            kv(&mut f, "requests_per_s", format!("{:.1}", per_s(ops)));
            kv(&mut f, "samples_per_s", format!("{:.0}", per_s(samples)));
            kv(&mut f, "bytes_per_s", format!("{:.0}", per_s(bytes)));
        }
        _ => {
            kv(&mut f, "scrapes", ops);
            kv(&mut f, "scrapes_per_s", format!("{:.1}", per_s(ops)));
            kv(&mut f, "body_bytes_per_s", format!("{:.0}", per_s(bytes)));
            if let Some((page_bytes, page_samples)) = page_info {
                kv(&mut f, "page_bytes", page_bytes);
                kv(&mut f, "page_samples", page_samples);
            }
        }
    }
    let (p50, p99) = (hist.quantile_us(0.5), hist.quantile_us(0.99));
    if o.mode != Mode::Stream {
        kv(&mut f, "p50_us", format!("{p50:.1}"));
        kv(&mut f, "p99_us", format!("{p99:.1}"));
        kv(&mut f, "p999_us", format!("{:.1}", hist.quantile_us(0.999)));
        kv(
            &mut f,
            "max_us",
            format!("{:.1}", hist.max_ns as f64 / 1000.0),
        );
    }
    kv(&mut f, "errors", errors);
    kv(&mut f, "verified", &verified);
    if let Some(cpu) = server_cpu {
        kv(&mut f, "server_cpu_s", format!("{cpu:.2}"));
        kv(&mut f, "server_cores", format!("{:.2}", cpu / elapsed));
        if samples > 0 {
            kv(
                &mut f,
                "server_cpu_s_per_m_samples",
                format!("{:.4}", cpu / samples as f64 * 1e6),
            );
        }
        if o.mode == Mode::Scrape && ops > 0 {
            kv(
                &mut f,
                "server_cpu_us_per_scrape",
                format!("{:.1}", cpu / ops as f64 * 1e6),
            );
        }
    }
    if let Some(pid) = o.pid {
        if let Some(kib) = status_kib(pid, "VmRSS") {
            kv(&mut f, "server_rss_kib", kib);
        }
        if let Some(kib) = status_kib(pid, "VmHWM") {
            kv(&mut f, "server_hwm_kib", kib);
        }
    }
    if let Some(cpu) = client_cpu {
        kv(&mut f, "client_cores", format!("{:.2}", cpu / elapsed));
    }

    let mut h = String::new();
    let who = if o.name.is_empty() {
        target.describe()
    } else {
        format!("{} ({})", o.name, target.describe())
    };
    match o.mode {
        Mode::Stream => {
            let _ = write!(
                h,
                "stream: {} conns, {} series -> {who}: {:.2} M samples/s applied, {:.1} MiB/s, {} samples in {elapsed:.2} s",
                o.conns,
                o.series,
                per_s(samples) / 1e6,
                per_s(bytes) / (1024.0 * 1024.0),
                samples
            );
        }
        Mode::Http => {
            let _ = write!(
                h,
                "http: {} conns, PUT of {} series -> {who}: {:.0} req/s, {:.0} samples/s, p50 {p50:.0} us, p99 {p99:.0} us",
                o.conns,
                o.series,
                per_s(ops),
                per_s(samples)
            );
        }
        _ => {
            let _ = write!(
                h,
                "scrape: {} conns -> {who}: {:.0} scrapes/s, p50 {p50:.0} us, p99 {p99:.0} us",
                o.conns,
                per_s(ops)
            );
            if let Some((b, s)) = page_info {
                let _ = write!(h, ", page {b} B / {s} samples");
            }
        }
    }
    if let Some(cpu) = server_cpu {
        let _ = write!(h, "; server {:.2} cores", cpu / elapsed);
    }
    let _ = write!(h, "; check {verified}");
    if errors > 0 {
        let _ = write!(
            h,
            "; {errors} errors, first: {}",
            first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(Report {
        fields: f,
        human: h,
        ok: errors == 0 && ops > 0,
    })
}

// ---- flood ------------------------------------------------------------------

/// A flood connection: writes never-seen series until `deadline`, then
/// waits for the gateway to apply them all. `last_value` is the number of
/// its last series.
fn flood_conn(mut conn: Conn, run: &str, id: usize, deadline: Instant) -> Tally {
    let mut t = Tally::new();
    let line = format!(
        "loadgen_flood{{run=\"{run}\",conn=\"{id}\",i=\"{}\"}} 1\n",
        "0".repeat(VALUE_DIGITS)
    );
    let digits_at = line.len() - VALUE_DIGITS - "\"} 1\n".len();
    let per_write = (STREAM_WRITE_BYTES / line.len()).max(1);
    let mut buf = line.repeat(per_write).into_bytes();
    let mut next: u64 = 0;
    loop {
        for k in 0..per_write {
            let at = k * line.len() + digits_at;
            buf[at..at + VALUE_DIGITS].copy_from_slice(&ten_digits(next));
            next += 1;
        }
        if let Err(e) = conn.write_all(&buf) {
            t.fail(format!("write: {e}"));
            return t;
        }
        t.ops += 1;
        t.bytes += buf.len() as u64;
        t.samples += per_write as u64;
        t.last_value = next - 1;
        if Instant::now() >= deadline {
            break;
        }
    }
    await_close(&mut conn, &mut t);
    t
}

/// Scrapes `addr` on one keep-alive connection, one request after another,
/// until `stop`; each reply must be 200 with a page ending in a newline.
fn scrape_until(addr: &str, stop: &std::sync::atomic::AtomicBool) -> Tally {
    const SCRAPE: &[u8] = b"GET /metrics HTTP/1.1\r\nHost: loadgen\r\n\r\n";
    let mut t = Tally::new();
    let mut conn = match Target::Tcp(addr.to_string()).connect() {
        Ok(c) => c,
        Err(e) => {
            t.fail(format!("connect {addr}: {e}"));
            return t;
        }
    };
    let mut reader = Reader::new();
    let mut page = Vec::new();
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        page.clear();
        let started = Instant::now();
        let result = conn
            .write_all(SCRAPE)
            .map_err(|e| format!("write: {e}"))
            .and_then(|()| reader.response(&mut conn, Some(&mut page)));
        match result {
            Ok(r) if r.status == 200 && page.ends_with(b"\n") && !r.close => {
                t.hist.record(started.elapsed());
                t.ops += 1;
                t.bytes += r.body_bytes;
            }
            Ok(r) => {
                t.fail(format!(
                    "scrape answered {} with {} bytes{}",
                    r.status,
                    page.len(),
                    if r.close { ", closing" } else { "" }
                ));
                break;
            }
            Err(e) => {
                t.fail(format!("scrape: {e}"));
                break;
            }
        }
    }
    t.end = Some(Instant::now());
    t
}

fn flood(o: &Opts) -> Result<Report, String> {
    let target = o.target.clone().ok_or("no target")?;
    let scrape = o.scrape.clone().ok_or("no --scrape")?;
    let run_id = format!(
        "{}_{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis())
    );
    let mut conns = Vec::with_capacity(o.conns);
    for _ in 0..o.conns {
        conns.push(
            target
                .connect()
                .map_err(|e| format!("connect {}: {e}", target.describe()))?,
        );
    }
    let stop = std::sync::atomic::AtomicBool::new(false);
    let begin = Instant::now();
    let deadline = begin + Duration::from_secs_f64(o.seconds);
    let (pushers, scrapers, cpu0, cpu1) = thread::scope(|scope| {
        let cpu0 = CpuMark::now(o.pid);
        let pushers: Vec<_> = conns
            .into_iter()
            .enumerate()
            .map(|(id, conn)| {
                let run_id = &run_id;
                scope.spawn(move || flood_conn(conn, run_id, id, deadline))
            })
            .collect();
        let scrapers: Vec<_> = (0..o.scrapers)
            .map(|_| scope.spawn(|| scrape_until(&scrape, &stop)))
            .collect();
        let join = |h: thread::ScopedJoinHandle<'_, Tally>| {
            h.join().unwrap_or_else(|_| {
                let mut t = Tally::new();
                t.fail("connection thread panicked".into());
                t
            })
        };
        let pushers: Vec<Tally> = pushers.into_iter().map(join).collect();
        let cpu1 = CpuMark::now(o.pid);
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        let scrapers: Vec<Tally> = scrapers.into_iter().map(join).collect();
        (pushers, scrapers, cpu0, cpu1)
    });
    let end = pushers
        .iter()
        .filter_map(|t| t.end)
        .max()
        .unwrap_or_else(Instant::now);
    let elapsed = end.duration_since(begin).as_secs_f64().max(1e-9);
    let mut hist = Hist::new();
    let (mut samples, mut bytes, mut scrapes, mut errors) = (0, 0, 0, 0);
    let mut first_error = None;
    for t in pushers.iter().chain(&scrapers) {
        hist.merge(&t.hist);
        errors += t.errors;
        if first_error.is_none() {
            first_error.clone_from(&t.first_error);
        }
    }
    for t in &pushers {
        samples += t.samples;
        bytes += t.bytes;
    }
    for t in &scrapers {
        scrapes += t.ops;
    }
    // The series written last of all is the last of some connection, and
    // no budget evicts it: at least one connection's last series must be
    // there (with a budget of a few series, only that one may be).
    let verified = match fetch_page(&scrape) {
        Ok(page) => {
            let text = String::from_utf8_lossy(&page);
            let found = pushers
                .iter()
                .enumerate()
                .filter(|(id, t)| {
                    let key = format!(
                        "loadgen_flood{{conn=\"{id}\",i=\"{}\",run=\"{run_id}\"}} 1\n",
                        String::from_utf8_lossy(&ten_digits(t.last_value))
                    );
                    t.samples > 0 && text.contains(&key)
                })
                .count();
            if found > 0 {
                format!("yes:{found}")
            } else {
                errors += 1;
                first_error.get_or_insert(
                    "check failed: no connection's last series is on the page".into(),
                );
                "no".into()
            }
        }
        Err(e) => {
            errors += 1;
            first_error.get_or_insert(format!("check failed: {e}"));
            "no".into()
        }
    };
    let per_s = |n: u64| n as f64 / elapsed;
    let mut f = String::new();
    let _ = write!(f, "mode=flood");
    if !o.name.is_empty() {
        kv(&mut f, "name", &o.name);
    }
    kv(&mut f, "target", target.describe());
    kv(&mut f, "c", o.conns);
    kv(&mut f, "scrapers", o.scrapers);
    kv(&mut f, "seconds", format!("{elapsed:.3}"));
    kv(&mut f, "samples", samples);
    kv(&mut f, "samples_per_s", format!("{:.0}", per_s(samples)));
    kv(&mut f, "bytes_per_s", format!("{:.0}", per_s(bytes)));
    let (p50, p99) = (hist.quantile_us(0.5), hist.quantile_us(0.99));
    if o.scrapers > 0 {
        kv(&mut f, "scrapes", scrapes);
        kv(&mut f, "scrape_p50_us", format!("{p50:.1}"));
        kv(&mut f, "scrape_p99_us", format!("{p99:.1}"));
        kv(
            &mut f,
            "scrape_max_us",
            format!("{:.1}", hist.max_ns as f64 / 1000.0),
        );
    }
    kv(&mut f, "errors", errors);
    kv(&mut f, "verified", &verified);
    if let (Some(a), Some(b)) = (cpu0.server, cpu1.server) {
        kv(&mut f, "server_cores", format!("{:.2}", (b - a) / elapsed));
    }
    if let Some(pid) = o.pid {
        if let Some(kib) = status_kib(pid, "VmRSS") {
            kv(&mut f, "server_rss_kib", kib);
        }
        if let Some(kib) = status_kib(pid, "VmHWM") {
            kv(&mut f, "server_hwm_kib", kib);
        }
    }
    let mut h = format!(
        "flood: {} conns of new series -> {}: {:.2} M lines/s applied",
        o.conns,
        target.describe(),
        per_s(samples) / 1e6
    );
    if o.scrapers > 0 {
        let _ = write!(
            h,
            "; {scrapes} scrapes meanwhile, p50 {:.1} ms, p99 {:.1} ms",
            p50 / 1e3,
            p99 / 1e3
        );
    }
    let _ = write!(h, "; check {verified}");
    if errors > 0 {
        let _ = write!(
            h,
            "; {errors} errors, first: {}",
            first_error.as_deref().unwrap_or("?")
        );
    }
    Ok(Report {
        fields: f,
        human: h,
        ok: errors == 0 && samples > 0 && (o.scrapers == 0 || scrapes > 0),
    })
}

fn fill(o: &Opts) -> Result<Report, String> {
    let target = o.target.clone().ok_or("no target")?;
    let mut conn = target
        .connect()
        .map_err(|e| format!("connect {}: {e}", target.describe()))?;
    let mut body = String::new();
    for i in 0..o.series {
        let _ = writeln!(body, "loadgen_fill{{series=\"{i}\"}} {i}");
    }
    let host = match &target {
        Target::Tcp(a) => a.as_str(),
        Target::Unix(_) => "localhost",
    };
    let request = format!(
        "PUT /metrics/job/{}_fill HTTP/1.1\r\nHost: {host}\r\n\
         Content-Type: text/plain; version=0.0.4\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        o.job,
        body.len()
    );
    conn.write_all(request.as_bytes())
        .map_err(|e| format!("write: {e}"))?;
    let mut reply = Vec::new();
    let r = Reader::new().response(&mut conn, Some(&mut reply))?;
    let ok = r.status == 200;
    let mut fields = format!("mode=fill target={} series={}", target.describe(), o.series);
    kv(&mut fields, "status", r.status);
    kv(&mut fields, "errors", u8::from(!ok));
    let human = if ok {
        format!("fill: {} series pushed to {}", o.series, target.describe())
    } else {
        format!(
            "fill: {} answered {}: {}",
            target.describe(),
            r.status,
            String::from_utf8_lossy(&reply).trim_end()
        )
    };
    Ok(Report { fields, human, ok })
}

fn free_ports(n: usize) -> Result<(), String> {
    // Hold every listener until all are bound, so the ports differ.
    let listeners: Vec<TcpListener> = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0").map_err(|e| format!("bind: {e}")))
        .collect::<Result<_, _>>()?;
    let mut out = io::stdout().lock();
    for l in &listeners {
        let port = l.local_addr().map_err(|e| e.to_string())?.port();
        writeln!(out, "{port}").map_err(|e| format!("stdout: {e}"))?;
    }
    Ok(())
}

fn main() -> ExitCode {
    let o = match parse_args() {
        Ok(o) => o,
        Err(e) => {
            if !e.is_empty() {
                eprintln!("loadgen: {e}");
            }
            eprintln!("{USAGE}");
            return ExitCode::from(2);
        }
    };
    let report = match o.mode {
        Mode::FreePort => {
            return match free_ports(o.conns) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("loadgen: {e}");
                    ExitCode::from(1)
                }
            };
        }
        Mode::Fill => fill(&o),
        Mode::Flood => flood(&o),
        _ => run(&o),
    };
    match report {
        Ok(r) => {
            // A closed stdout (e.g. `| head -1`) is not a failure of the run.
            let _ = writeln!(io::stdout().lock(), "{}\n{}", r.fields, r.human);
            if r.ok {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            }
        }
        Err(e) => {
            eprintln!("loadgen: {} failed: {e}", o.mode.name());
            ExitCode::from(1)
        }
    }
}

//! Remote write: every `--remote-write-interval`, the series of the cache
//! (and the gateway's own metrics) go to a Prometheus remote write 1.0
//! receiver as one snappy-compressed `WriteRequest` ([`encode`]), from the
//! event loop's thread: a non-blocking connect, then one HTTP/1.1 request
//! at a time on a connection kept alive between them.
//!
//! # The state machine
//! * At each interval the loop asks [`RemoteWrite::needs_state`]; when no
//!   request is in flight it hands over the page ([`RemoteWrite::build`]),
//!   which replaces whatever request was waiting for a retry: the cache
//!   is the latest state, not a log, so nothing queues. A request still in
//!   flight at the interval finishes (or times out) first; then the newer
//!   state goes at once.
//! * 2xx: delivered. 5xx, 429, a refused or reset connection, a malformed
//!   response or no answer within the timeout (the interval, at most
//!   [`REMOTE_WRITE_TIMEOUT`]): the same body is sent again after a capped
//!   exponential backoff with jitter ([`backoff_ms`]), or after
//!   `Retry-After` if that is longer. Other statuses (4xx): the request is
//!   dropped, logged at a limited rate and counted.
//! * Staleness: a request ends with a staleness marker for every series of
//!   the last delivered request that it does not hold (series that left
//!   the cache by TTL, delete, drain or eviction since).
//! * A kept-alive connection the receiver closed meanwhile fails on its
//!   first write or read: the request is sent again at once on a new
//!   connection, without a backoff.
//! * Host names are not looked up: the URL holds an IP address
//!   ([`settings::parse_url`]). The system resolver blocks (for its
//!   `timeout` × `attempts` of /etc/resolv.conf when a server is away),
//!   which would hold up pushes and scrapes, and it is a quarter of the
//!   code remote write would add to a static binary. A receiver known by
//!   name is reached through a local forwarder, as HTTPS is.
//!
//! # Memory
//! The last delivered request (its body and 12 bytes per series), the one
//! being sent (at most twice the body bound: the live series and the
//! staleness markers), its snappy form, a request head, the response head
//! ([`REMOTE_WRITE_RESPONSE_MAX_BYTES`]) and the self-metrics text; all
//! reused, bounded by [`crate::limits::remote_write_heap_bytes`].

pub mod encode;
pub mod settings;

use std::io::{self, Read, Write};

use mio::net::TcpStream;
use mio::{Interest, Registry, Token};

use crate::limits::{
    REMOTE_WRITE_BACKOFF_MAX, REMOTE_WRITE_BACKOFF_MIN, REMOTE_WRITE_RESPONSE_MAX_BYTES,
    REMOTE_WRITE_RETRY_AFTER_MAX, REMOTE_WRITE_TIMEOUT, remote_write_body_max_bytes,
};
use crate::warn_limit::WarnLimit;
use encode::Request;
pub use settings::Settings;

/// Why a request failed, as the `reason` label of
/// `push_gateway_remote_write_failures_total`, in the order of [`Failure`].
pub const FAILURES: [&str; 8] = [
    "connect",
    "timeout",
    "io",
    "response",
    "server_error",
    "throttled",
    "rejected",
    "too_large",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// Resolving or connecting failed.
    Connect = 0,
    /// No whole response within the timeout.
    Timeout,
    /// The connection failed or closed while the request was under way.
    Io,
    /// The answer was not HTTP/1.x, or its head too large.
    Response,
    /// 5xx: retried.
    ServerError,
    /// 429: retried.
    Throttled,
    /// Another status (4xx): dropped.
    Rejected,
    /// Series left out: the body reached its bound.
    TooLarge,
}

/// Counters of the client, shown as `push_gateway_remote_write_*`.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Requests the receiver accepted (2xx).
    pub requests: u64,
    /// Samples in them, staleness markers included.
    pub samples: u64,
    /// Bytes written to the receiver, heads and bodies, retries included.
    pub bytes: u64,
    /// Requests sent again after a failure.
    pub retries: u64,
    pub failures: [u64; FAILURES.len()],
    /// Unix time of the last accepted request, in seconds; 0 before it.
    pub last_success: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// No request under way (a kept-alive connection may be open).
    Idle,
    Connecting,
    Sending,
    Awaiting,
}

/// What the response head said.
#[derive(Debug, Clone, Copy)]
struct Head {
    status: u16,
    len: usize,
    /// Body bytes to read; `None`: until the connection closes (or a
    /// chunked body, which is not read: the connection is closed).
    body: Option<usize>,
    close: bool,
    retry_after_ms: Option<u64>,
}

pub struct RemoteWrite {
    settings: Settings,
    token: Token,
    stream: Option<TcpStream>,
    phase: Phase,
    /// The request under way went on a kept-alive connection.
    reused: bool,
    /// When the next state is due.
    next_send: u64,
    /// The interval came while a request was in flight.
    due: bool,
    /// A built request waits to be delivered.
    pending: bool,
    /// Sends of the pending request (retries are the ones after the first).
    sends: u32,
    /// Failures in a row, for the backoff.
    attempt: u32,
    retry_at: u64,
    /// When the request in flight times out.
    timeout_at: u64,
    head: Vec<u8>,
    written: usize,
    response: Vec<u8>,
    response_total: usize,
    parsed: Option<Head>,
    building: Request,
    last: Request,
    compressed: Vec<u8>,
    snappy: snap::raw::Encoder,
    text: Vec<u8>,
    limit: usize,
    rng: u64,
    warn: WarnLimit,
    pub stats: Stats,
}

/// The delay before retry `attempt` (1 for the first): the backoff doubles
/// from [`REMOTE_WRITE_BACKOFF_MIN`] up to [`REMOTE_WRITE_BACKOFF_MAX`], of
/// which a random half is waited (so that boxes that failed together do
/// not retry together); a `Retry-After` that is longer wins, up to
/// [`REMOTE_WRITE_RETRY_AFTER_MAX`].
pub fn backoff_ms(attempt: u32, retry_after_ms: Option<u64>, random: u64) -> u64 {
    let min = REMOTE_WRITE_BACKOFF_MIN.as_millis() as u64;
    let max = REMOTE_WRITE_BACKOFF_MAX.as_millis() as u64;
    let full = min
        .saturating_mul(1 << attempt.saturating_sub(1).min(20))
        .min(max);
    let jittered = full / 2 + random % (full / 2 + 1);
    let asked = retry_after_ms.map_or(0, |r| {
        r.min(REMOTE_WRITE_RETRY_AFTER_MAX.as_millis() as u64)
    });
    jittered.max(asked)
}

impl RemoteWrite {
    /// A client for `settings`, its first request one interval after `now`.
    pub fn new(settings: Settings, cache_bytes: usize, token: Token, now: u64) -> RemoteWrite {
        let limit = remote_write_body_max_bytes(cache_bytes, settings.label_bytes());
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            ^ u64::from(std::process::id()) << 32;
        RemoteWrite {
            next_send: now + settings.interval.as_millis() as u64,
            settings,
            token,
            stream: None,
            phase: Phase::Idle,
            reused: false,
            due: false,
            pending: false,
            sends: 0,
            attempt: 0,
            retry_at: 0,
            timeout_at: 0,
            head: Vec::new(),
            written: 0,
            response: Vec::with_capacity(REMOTE_WRITE_RESPONSE_MAX_BYTES),
            response_total: 0,
            parsed: None,
            building: Request::default(),
            last: Request::default(),
            compressed: Vec::new(),
            snappy: snap::raw::Encoder::new(),
            text: Vec::new(),
            limit,
            rng: seed | 1,
            warn: WarnLimit::about("remote write"),
            stats: Stats::default(),
        }
    }

    fn in_flight(&self) -> bool {
        self.phase != Phase::Idle
    }

    /// The earliest time the client must run without an event.
    pub fn deadline(&self) -> u64 {
        let mut t = self.next_send;
        if self.in_flight() {
            t = t.min(self.timeout_at);
        } else if self.pending {
            t = t.min(self.retry_at);
        }
        t
    }

    /// Whether the loop should hand over the current state ([`Self::build`])
    /// now: the interval has come and no request is in flight.
    pub fn needs_state(&mut self, now: u64) -> bool {
        if now >= self.next_send {
            let interval = self.settings.interval.as_millis() as u64;
            // Keep the cadence; skip intervals the loop slept through.
            self.next_send += interval * ((now - self.next_send) / interval + 1);
            self.due = true;
        }
        self.due && !self.in_flight()
    }

    /// Builds the request from the page and what `tail` writes (the
    /// gateway's own metrics), at `unix_ms`; it replaces any request
    /// waiting for a retry.
    pub fn build(&mut self, page: &[u8], tail: impl FnOnce(&mut Vec<u8>), unix_ms: i64, now: u64) {
        self.due = false;
        self.text.clear();
        tail(&mut self.text);
        let r = &mut self.building;
        r.clear();
        r.add_page(page, &self.settings.labels, unix_ms, self.limit);
        r.add_page(&self.text, &self.settings.labels, unix_ms, self.limit);
        r.finish();
        r.add_stale(&self.last, unix_ms, 2 * self.limit);
        if r.skipped > 0 {
            self.stats.failures[Failure::TooLarge as usize] += 1;
            if self.warn.allow(now) {
                log::warn!(
                    "remote write: left {} series out of the request, over its bound of {} bytes (it grows with --cache-bytes and the --remote-write-label bytes)",
                    r.skipped,
                    self.limit
                );
            }
        }
        self.compressed
            .resize(snap::raw::max_compress_len(r.body.len()), 0);
        match self.snappy.compress(&r.body, &mut self.compressed) {
            Ok(n) => self.compressed.truncate(n),
            Err(_) => {
                // Only for bodies over 4 GiB, which the bound rules out.
                log::warn!("remote write: cannot compress the request");
                self.pending = false;
                return;
            }
        }
        self.write_head();
        self.pending = true;
        self.sends = 0;
    }

    fn write_head(&mut self) {
        let t = &self.settings.target;
        self.head.clear();
        let _ = write!(
            self.head,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: push-gateway/{}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\nX-Prometheus-Remote-Write-Version: 0.1.0\r\nContent-Length: {}\r\n",
            t.path,
            t.authority,
            env!("CARGO_PKG_VERSION"),
            self.compressed.len()
        );
        if let Some(auth) = &self.settings.auth {
            self.head.extend_from_slice(b"Authorization: ");
            auth.write_authorization(&mut self.head);
            self.head.extend_from_slice(b"\r\n");
        }
        self.head.extend_from_slice(b"\r\n");
    }

    /// Times out the request in flight, or starts the pending one once
    /// its backoff has passed.
    pub fn poll(&mut self, registry: &Registry, now: u64) {
        if self.in_flight() && now >= self.timeout_at {
            self.fail(Failure::Timeout, None, registry, now);
        }
        if self.pending && !self.in_flight() && now >= self.retry_at {
            if self.sends > 0 {
                self.stats.retries += 1;
            }
            self.sends += 1;
            let timeout = self.settings.interval.min(REMOTE_WRITE_TIMEOUT);
            self.timeout_at = now + timeout.as_millis() as u64;
            self.start(registry, now);
        }
    }

    fn start(&mut self, registry: &Registry, now: u64) {
        self.written = 0;
        self.response.clear();
        self.response_total = 0;
        self.parsed = None;
        if let Some(stream) = self.stream.as_mut() {
            self.reused = true;
            self.phase = Phase::Sending;
            let _ =
                registry.reregister(stream, self.token, Interest::READABLE | Interest::WRITABLE);
            return self.ready(registry, now);
        }
        self.reused = false;
        if let Err(e) = self.connect(registry) {
            self.fail_with(Failure::Connect, &e.to_string(), None, registry, now);
        }
    }

    fn connect(&mut self, registry: &Registry) -> io::Result<()> {
        let addr = self.settings.target.addr;
        let mut stream = TcpStream::connect(addr)?;
        registry.register(
            &mut stream,
            self.token,
            Interest::READABLE | Interest::WRITABLE,
        )?;
        let _ = stream.set_nodelay(true);
        self.stream = Some(stream);
        self.phase = Phase::Connecting;
        Ok(())
    }

    /// Handles a readiness event of the connection.
    pub fn ready(&mut self, registry: &Registry, now: u64) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        match self.phase {
            Phase::Idle => {
                // The receiver closed the kept-alive connection (or sent
                // what nobody asked for): close it too.
                let mut byte = [0u8; 64];
                match stream.read(&mut byte) {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    _ => self.close(registry),
                }
            }
            Phase::Connecting => {
                match stream.take_error() {
                    Ok(None) => {}
                    Ok(Some(e)) | Err(e) => {
                        return self.fail_with(
                            Failure::Connect,
                            &e.to_string(),
                            None,
                            registry,
                            now,
                        );
                    }
                }
                match stream.peer_addr() {
                    Ok(_) => {
                        self.phase = Phase::Sending;
                        self.ready(registry, now);
                    }
                    Err(e) if e.kind() == io::ErrorKind::NotConnected => {}
                    Err(e) => self.fail_with(Failure::Connect, &e.to_string(), None, registry, now),
                }
            }
            Phase::Sending => self.send(registry, now),
            Phase::Awaiting => self.receive(registry, now),
        }
    }

    fn send(&mut self, registry: &Registry, now: u64) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let total = self.head.len() + self.compressed.len();
        while self.written < total {
            let rest = if self.written < self.head.len() {
                &self.head[self.written..]
            } else {
                &self.compressed[self.written - self.head.len()..]
            };
            match stream.write(rest) {
                Ok(0) => return self.fail(Failure::Io, None, registry, now),
                Ok(n) => {
                    self.written += n;
                    self.stats.bytes += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail_with(Failure::Io, &e.to_string(), None, registry, now),
            }
        }
        self.phase = Phase::Awaiting;
        if registry
            .reregister(stream, self.token, Interest::READABLE)
            .is_err()
        {
            return self.fail(Failure::Io, None, registry, now);
        }
        // The answer may be there already (a quick receiver on loopback).
        self.receive(registry, now);
    }

    fn receive(&mut self, registry: &Registry, now: u64) {
        let Some(stream) = self.stream.as_mut() else {
            return;
        };
        let mut discard = [0u8; 1024];
        loop {
            let room = REMOTE_WRITE_RESPONSE_MAX_BYTES - self.response.len();
            let read = if room > 0 {
                let len = self.response.len();
                self.response.resize(len + room, 0);
                let r = stream.read(&mut self.response[len..]);
                self.response.truncate(len + *r.as_ref().unwrap_or(&0));
                r
            } else {
                stream.read(&mut discard)
            };
            match read {
                Ok(0) => {
                    return match self.parsed {
                        Some(head) if head.body.is_none() => self.complete(head, registry, now),
                        _ => self.fail_with(
                            Failure::Io,
                            "the receiver closed the connection before its answer",
                            None,
                            registry,
                            now,
                        ),
                    };
                }
                Ok(n) => self.response_total += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return self.fail_with(Failure::Io, &e.to_string(), None, registry, now),
            }
            if self.parsed.is_none() {
                match parse_head(&self.response) {
                    Ok(Some(head)) => self.parsed = Some(head),
                    Ok(None) if self.response.len() < REMOTE_WRITE_RESPONSE_MAX_BYTES => {}
                    Ok(None) => {
                        return self.fail_with(
                            Failure::Response,
                            "response head too large",
                            None,
                            registry,
                            now,
                        );
                    }
                    Err(why) => return self.fail_with(Failure::Response, why, None, registry, now),
                }
            }
            if let Some(head) = self.parsed {
                match head.body {
                    Some(body) if self.response_total >= head.len + body => {
                        return self.complete(head, registry, now);
                    }
                    None if head.close => {} // read until it closes
                    None => return self.complete(head, registry, now),
                    _ => {}
                }
            }
        }
    }

    /// The receiver answered `head`.
    fn complete(&mut self, head: Head, registry: &Registry, now: u64) {
        if head.close || head.body.is_none() {
            self.close(registry);
        } else {
            self.phase = Phase::Idle;
        }
        match head.status {
            200..=299 => {
                self.stats.requests += 1;
                self.stats.samples += self.building.samples();
                self.stats.last_success = unix_seconds();
                self.delivered();
            }
            429 => self.fail_with(
                Failure::Throttled,
                "429",
                head.retry_after_ms,
                registry,
                now,
            ),
            500..=599 => self.fail_with(
                Failure::ServerError,
                &head.status.to_string(),
                head.retry_after_ms,
                registry,
                now,
            ),
            status => {
                self.stats.failures[Failure::Rejected as usize] += 1;
                if self.warn.allow(now) {
                    let body = self.response.get(head.len..).unwrap_or_default();
                    let body = String::from_utf8_lossy(&body[..body.len().min(256)]);
                    log::warn!(
                        "remote write: {}{} answered {status}, not retried (dropped {} samples): {}",
                        self.settings.target.authority,
                        self.settings.target.path,
                        self.building.samples(),
                        body.trim()
                    );
                }
                // The receiver has seen it: the next markers are against it.
                self.delivered();
            }
        }
    }

    fn delivered(&mut self) {
        std::mem::swap(&mut self.building, &mut self.last);
        self.pending = false;
        self.attempt = 0;
        self.retry_at = 0;
    }

    fn fail(&mut self, why: Failure, retry_after_ms: Option<u64>, registry: &Registry, now: u64) {
        self.fail_with(why, FAILURES[why as usize], retry_after_ms, registry, now);
    }

    /// Counts `why`, closes the connection and schedules a retry.
    fn fail_with(
        &mut self,
        why: Failure,
        detail: &str,
        retry_after_ms: Option<u64>,
        registry: &Registry,
        now: u64,
    ) {
        let stale_connection = self.reused && self.response_total == 0 && why == Failure::Io;
        self.close(registry);
        if stale_connection {
            // The receiver had closed the kept-alive connection: a new one.
            self.reused = false;
            return self.start(registry, now);
        }
        self.stats.failures[why as usize] += 1;
        self.attempt += 1;
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let delay = backoff_ms(self.attempt, retry_after_ms, self.rng);
        self.retry_at = now + delay;
        if self.warn.allow(now) {
            log::warn!(
                "remote write to {}{} failed ({}: {detail}); retrying in {delay} ms, or with the newer state at the next interval",
                self.settings.target.authority,
                self.settings.target.path,
                FAILURES[why as usize],
            );
        }
    }

    fn close(&mut self, registry: &Registry) {
        if let Some(mut stream) = self.stream.take() {
            let _ = registry.deregister(&mut stream);
        }
        self.phase = Phase::Idle;
    }
}

fn unix_seconds() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

const NOT_HTTP: &str = "the answer is not HTTP/1.x";

/// A response head, if complete. Read by hand: only the status and four
/// headers matter, and httparse's response parser would add kilobytes.
fn parse_head(buf: &[u8]) -> Result<Option<Head>, &'static str> {
    let n = buf.len().min(7);
    if buf[..n] != b"HTTP/1."[..n] {
        return Err(NOT_HTTP);
    }
    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
        return Ok(None);
    };
    let mut lines = buf[..end].split(|&b| b == b'\n');
    // "HTTP/1.1 204 No Content"
    let status_line = lines.next().unwrap_or_default();
    let status = match status_line.get(7..12) {
        Some([minor @ (b'0' | b'1'), b' ', code @ ..]) if code.iter().all(u8::is_ascii_digit) => {
            let code = code.iter().fold(0u16, |n, d| n * 10 + u16::from(d - b'0'));
            (code, *minor == b'0')
        }
        _ => return Err(NOT_HTTP),
    };
    let mut head = Head {
        status: status.0,
        len: end + 4,
        body: None,
        close: status.1,
        retry_after_ms: None,
    };
    let mut chunked = false;
    for line in lines {
        let Some(colon) = line.iter().position(|&b| b == b':') else {
            return Err(NOT_HTTP);
        };
        let name = &line[..colon];
        let value = std::str::from_utf8(&line[colon + 1..]).unwrap_or("").trim();
        if name.eq_ignore_ascii_case(b"content-length") {
            head.body = Some(
                value
                    .parse()
                    .map_err(|_| "a Content-Length that is no number")?,
            );
        } else if name.eq_ignore_ascii_case(b"connection") {
            head.close |= value.eq_ignore_ascii_case("close");
        } else if name.eq_ignore_ascii_case(b"transfer-encoding") {
            chunked = true;
        } else if name.eq_ignore_ascii_case(b"retry-after") {
            // Seconds; an HTTP date is left to the backoff.
            head.retry_after_ms = value.parse::<u64>().ok().map(|s| s.saturating_mul(1000));
        }
    }
    let status = head.status;
    if matches!(status, 100..=199 | 204 | 304) {
        head.body = Some(0);
    } else if chunked {
        // Not read: the status is all that matters, the connection goes.
        head.body = None;
        head.close = false;
    } else if head.body.is_none() {
        // Delimited by the end of the connection.
        head.close = true;
    }
    Ok(Some(head))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_up_to_its_cap_with_jitter_and_honours_retry_after() {
        let min = REMOTE_WRITE_BACKOFF_MIN.as_millis() as u64;
        let max = REMOTE_WRITE_BACKOFF_MAX.as_millis() as u64;
        assert_eq!(backoff_ms(1, None, 0), min / 2);
        assert_eq!(backoff_ms(1, None, min / 2), min);
        assert_eq!(
            backoff_ms(2, None, u64::MAX - 1),
            2 * min / 2 + (u64::MAX - 1) % (min + 1)
        );
        for attempt in [30, 64, u32::MAX] {
            let d = backoff_ms(attempt, None, 12345);
            assert!((max / 2..=max).contains(&d), "{attempt}: {d}");
        }
        assert_eq!(backoff_ms(1, Some(7000), 0), 7000);
        let cap = REMOTE_WRITE_RETRY_AFTER_MAX.as_millis() as u64;
        assert_eq!(backoff_ms(1, Some(u64::MAX), 0), cap);
    }

    /// A budget full of the smallest series and of groups, with the longest
    /// self-metrics, encodes within the documented body bound.
    #[test]
    fn a_full_cache_encodes_within_the_bound() {
        use crate::cache::{Cache, Family};
        use crate::exposition::MetricType;
        let budget = 8192;
        for groups in [false, true] {
            let mut cache = Cache::new(budget);
            let f = Family {
                name: "a",
                kind: MetricType::Gauge,
                help: None,
            };
            for i in 0..1000 {
                let key = format!("a{{b=\"{i}\"}}");
                if groups {
                    let labels = format!("j=\"{i}\"");
                    if let Ok(g) = cache.group_open(labels.as_bytes(), 0, 1000) {
                        cache.group_close(g, 0, 1000, 1.0);
                    }
                } else {
                    let _ = cache.set(&f, key.as_bytes(), 1.5, 0, 1000);
                }
            }
            let page = crate::render::Renderer::new(&cache).page(&cache);
            let labels = vec![("box".to_string(), "edge-17".to_string())];
            let bound = remote_write_body_max_bytes(
                budget,
                labels.iter().map(|(n, v)| n.len() + v.len() + 12).sum(),
            );
            let mut r = Request::default();
            r.add_page(&page, &labels, 1_700_000_000_000, usize::MAX);
            let mut text = Vec::new();
            let stats = crate::self_metrics::Stats {
                remote_write: Some(Stats::default()),
                ..Default::default()
            };
            crate::self_metrics::write(&mut text, &stats, &cache);
            r.add_page(&text, &labels, 1_700_000_000_000, usize::MAX);
            assert!(
                r.samples() > 100 && r.body.len() <= bound,
                "{} > {bound}",
                r.body.len()
            );
        }
        // README's figure for the default budget.
        assert_eq!(
            crate::limits::remote_write_heap_bytes(10 * 1024, 0),
            924_617
        );
    }

    #[test]
    fn response_heads() {
        let h = parse_head(b"HTTP/1.1 204 No Content\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.body, h.close), (204, Some(0), false));
        let h = parse_head(b"HTTP/1.1 400 Bad\r\nContent-Length: 5\r\n\r\nhello")
            .unwrap()
            .unwrap();
        assert_eq!((h.status, h.body, h.len), (400, Some(5), 39));
        let h = parse_head(
            b"HTTP/1.1 503 x\r\nRetry-After: 3\r\nConnection: close\r\nContent-Length: 0\r\n\r\n",
        )
        .unwrap()
        .unwrap();
        assert_eq!(
            (h.status, h.retry_after_ms, h.close),
            (503, Some(3000), true)
        );
        let h = parse_head(b"HTTP/1.0 200 OK\r\n\r\n").unwrap().unwrap();
        assert_eq!((h.body, h.close), (None, true));
        let h = parse_head(b"HTTP/1.1 500 x\r\nTransfer-Encoding: chunked\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(h.body, None);
        assert_eq!(
            parse_head(b"HTTP/1.1 200 OK\r\nContent-")
                .unwrap()
                .map(|h| h.status),
            None
        );
        assert!(parse_head(b"SSH-2.0-OpenSSH\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/2 200\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 2x0 OK\r\n\r\n").is_err());
        assert!(parse_head(b"HTTP/1.1 200 OK\r\nno colon\r\n\r\n").is_err());
        assert_eq!(parse_head(b"HTT").unwrap().map(|h| h.status), None);
        // Header names in any case, values trimmed.
        let h = parse_head(b"HTTP/1.1 429 x\r\nretry-AFTER:  7 \r\ncontent-length:0\r\n\r\n")
            .unwrap()
            .unwrap();
        assert_eq!(
            (h.status, h.retry_after_ms, h.body),
            (429, Some(7000), Some(0))
        );
    }
}

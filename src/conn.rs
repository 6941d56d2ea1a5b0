//! Per-connection state machines: readiness in, bytes processed, output
//! queued, "keep or close" out. No socket is ever blocked on.
//!
//! * A push-socket connection starts in [`State::Detect`]: its first bytes
//!   say whether it speaks HTTP (`PUT /...`) or the line stream protocol.
//! * [`StreamState`]: newline-terminated exposition lines, each applied as
//!   soon as it is complete; a line split across reads is carried over; an
//!   over-long line is skipped up to its newline without being buffered.
//!   Errors are answered `error: line N: REASON\n`, best effort: replies
//!   the client does not read are dropped past [`REPLY_MAX_BYTES`].
//! * [`HttpState`]: HTTP/1.1 requests with keep-alive, one response in
//!   flight at a time; bytes are not read while a response waits to be
//!   sent, which bounds what a pipelining client can make us hold. What a
//!   request means and its answer are [`crate::routes`]'s.
//!
//! # Memory
//! Per connection: a request buffer of [`REQUEST_HEAD_MAX_BYTES`] (HTTP), a
//! carry buffer sized to the partial line (64 bytes up to
//! [`LINE_MAX_BYTES`]) and a HELP context of at most one line (stream),
//! queued replies of at most [`REPLY_MAX_BYTES`]. The
//! page and the gateway's own metrics after it are shared with the
//! renderer, not copied: a connection holds them only while it sends them.

use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::auth::ScrapeAuth;
use crate::cache::Cache;
use crate::decompress::{DecodeError, Decoder};
use crate::exposition::{self, Line, LineError};
use crate::http::{self, BodyFraming, Chunked, Encoding};
use crate::ingest::{self, IngestError, StreamContext};
use crate::limits::{
    BODY_TIMEOUT, IDLE_TIMEOUT, LINE_MAX_BYTES, LINGER, PARTIAL_LINE_TIMEOUT, REPLY_MAX_BYTES,
    REQUEST_HEAD_MAX_BYTES, REQUEST_TIMEOUT, STREAM_READ_BYTES, STREAM_READ_BYTES_WHILE_SENDING,
    TURN_LINES, TURN_READS, TURN_RECORDS_MOVED, TURN_STEPS, WRITE_TIMEOUT,
};
use crate::push;
use crate::render::Renderer;
use crate::routes::{self, PushHead, Routed};
use crate::self_metrics::Stats;
use crate::warn_limit::WarnLimit;

/// What a connection step may use besides its own state.
pub struct Ctx<'a> {
    pub cache: &'a mut Cache,
    pub renderer: &'a mut Renderer,
    /// The JSON API's documents.
    pub api: &'a mut crate::api::Api,
    /// Scratch for series keys.
    pub key: &'a mut Vec<u8>,
    /// Milliseconds on the gateway's monotonic clock.
    pub now: u64,
    /// Seconds since the Unix epoch, for `push_time_seconds`.
    pub unix_now: f64,
    /// `--ttl`, `--max-ttl` and `--drain-on-scrape`.
    pub stream: ingest::StreamOptions,
    /// Identifies the next page that holds drain-on-scrape series.
    pub next_page: &'a mut u32,
    /// `--max-body-bytes`.
    pub max_body: usize,
    pub push: &'a mut push::Scratch,
    pub stats: &'a mut Stats,
    /// Whether pages end with the gateway's own metrics.
    pub self_metrics: bool,
    pub warn: &'a mut WarnLimit,
    /// `--scrape-auth-file`: what TCP requests must present.
    pub scrape_auth: Option<&'a ScrapeAuth>,
}

/// Whether the event loop keeps the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Keep,
    /// More work is waiting (bytes already readable): resume this
    /// connection after the others had their turn.
    Yield,
    Close,
}

/// The two kinds of socket a connection can be.
pub enum Socket {
    Unix(mio::net::UnixStream),
    Tcp(mio::net::TcpStream),
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }
    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write_vectored(bufs),
            Socket::Tcp(s) => s.write_vectored(bufs),
        }
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Socket {
    fn source(&mut self) -> &mut dyn Source {
        match self {
            Socket::Unix(s) => s,
            Socket::Tcp(s) => s,
        }
    }
}

/// Output waiting to be written: a head (or stream replies), a page and a
/// tail (the gateway's own metrics), sent in that order.
#[derive(Default)]
pub struct Outbox {
    pub(crate) bytes: Vec<u8>,
    pub(crate) page: Option<Rc<Vec<u8>>>,
    /// Shared like the page, not copied: a copy per connection stayed in
    /// each connection's buffer as spare room after the scrape.
    pub(crate) tail: Option<Rc<Vec<u8>>>,
    /// Bytes written of head, page and tail taken as one sequence.
    sent: usize,
    /// The page being sent holds drain-on-scrape series under this id.
    pub(crate) drain_page: u32,
    /// A drain page that has just been sent whole.
    delivered: u32,
    /// Bytes written since the connection opened: tells the event loop
    /// that the connection moved bytes (a response being taken is activity).
    written: u64,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.sent == self.bytes.len() && self.page.is_none() && self.tail.is_none()
    }

    /// Writes until done or `WouldBlock`; `Ok(true)` when all is sent.
    fn flush(&mut self, socket: &mut impl Write) -> io::Result<bool> {
        loop {
            let head = &self.bytes[..];
            let page = self.page.as_deref().map_or(&[][..], |p| &p[..]);
            let tail = self.tail.as_deref().map_or(&[][..], |t| &t[..]);
            let mut unsent = [IoSlice::new(&[]); 3];
            let mut count = 0;
            let mut skip = self.sent;
            for part in [head, page, tail] {
                if skip >= part.len() {
                    skip -= part.len();
                } else {
                    unsent[count] = IoSlice::new(&part[skip..]);
                    count += 1;
                    skip = 0;
                }
            }
            if count == 0 {
                // A drain page counts only once the scraper has had all of
                // the response, tail included.
                if self.drain_page != 0 {
                    self.delivered = std::mem::take(&mut self.drain_page);
                }
                self.bytes.clear();
                self.page = None;
                self.tail = None;
                self.sent = 0;
                return Ok(true);
            }
            match socket.write_vectored(&unsent[..count]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    self.written += n as u64;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

/// The smallest carry buffer a stream connection allocates.
const CARRY_MIN_BYTES: usize = 64;

pub struct StreamState {
    carry: Vec<u8>,
    /// Inside an over-long line: skip bytes until its newline.
    discarding: bool,
    line_no: u64,
    ctx: StreamContext,
}

pub struct HttpState {
    buf: Vec<u8>,
    len: usize,
    /// Close once the queued response is sent.
    close_after: bool,
    /// Response sent and our side shut down: discarding what the client
    /// still sends until its EOF, so that closing with unread bytes does
    /// not reset the connection before the client reads our answer.
    lingering: bool,
    /// When the first byte of the request being read arrived.
    request_started: Option<u64>,
    /// The path of the push being read, kept past its head.
    path: String,
    pending: Option<PendingPush>,
    /// The body of the push being read, at most `--max-body-bytes`
    /// (decoded, for a compressed body).
    body: Vec<u8>,
    /// A compressed body's bytes between de-chunking and decoding: at most
    /// one read of the request buffer.
    raw: Vec<u8>,
}

pub enum State {
    /// A push connection whose first bytes do not yet tell stream from
    /// HTTP; they are kept here until they do.
    Detect {
        head: [u8; DETECT_BYTES],
        have: usize,
        /// When the first byte arrived: the first line, like an HTTP
        /// request head, must be complete within [`REQUEST_TIMEOUT`].
        started: u64,
    },
    Stream(StreamState),
    Http(HttpState),
}

/// A new HTTP connection's request buffer; it grows to
/// [`REQUEST_HEAD_MAX_BYTES`] only for a request that needs it.
const REQUEST_BUF_START_BYTES: usize = 1024;

/// Enough bytes to tell an HTTP method and target from exposition text.
const DETECT_BYTES: usize = http::DETECT_MAX_BYTES;

pub struct Conn {
    pub socket: Socket,
    /// Accepted on the push socket: may push. The TCP port is read-only.
    may_push: bool,
    pub state: State,
    out: Outbox,
    /// Whether WRITABLE is in the registered interest.
    writable: bool,
    /// Last time a byte was received or a request was done: the write and
    /// idle timeouts run from here.
    last_progress: u64,
    /// Last time bytes moved in either direction: how the event loop orders
    /// connections by idleness (see [`Conn::last_active`]).
    last_active: u64,
    /// The event loop's turn in which this connection last ran.
    pub last_turn: u64,
    /// Whether it waits in the event loop's list of yielded connections.
    pub queued: bool,
    /// Whether the event loop gives it a write between pushers' steps: a
    /// response is part way out and the client took the last write.
    pub pumped: bool,
}

impl Conn {
    pub fn push(socket: mio::net::UnixStream, now: u64) -> Conn {
        Conn::new(
            Socket::Unix(socket),
            true,
            State::Detect {
                head: [0; DETECT_BYTES],
                have: 0,
                started: now,
            },
            now,
        )
    }

    pub fn scrape(socket: mio::net::TcpStream, now: u64) -> Conn {
        // Anyone on the network can connect: the request timeout runs from
        // the connect, so silent connections cannot hold slots for long.
        let mut http = HttpState::new();
        http.request_started = Some(now);
        Conn::new(Socket::Tcp(socket), false, State::Http(http), now)
    }

    fn new(socket: Socket, may_push: bool, state: State, now: u64) -> Conn {
        Conn {
            socket,
            may_push,
            state,
            out: Outbox::default(),
            writable: false,
            last_progress: now,
            last_active: now,
            last_turn: 0,
            queued: false,
            pumped: false,
        }
    }

    pub fn register(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        registry.register(self.socket.source(), token, Interest::READABLE)
    }

    pub fn deregister(&mut self, registry: &Registry) {
        let _ = registry.deregister(self.socket.source());
    }

    /// Brings the registered interest in line with pending output.
    pub fn update_interest(&mut self, registry: &Registry, token: Token) -> io::Result<()> {
        let want = !self.out.is_empty();
        if want != self.writable {
            let interest = if want {
                Interest::READABLE | Interest::WRITABLE
            } else {
                Interest::READABLE
            };
            registry.reregister(self.socket.source(), token, interest)?;
            self.writable = want;
        }
        Ok(())
    }

    /// The drain-on-scrape page this connection did not finish sending.
    pub fn undelivered_page(&self) -> Option<u32> {
        (self.out.drain_page != 0).then_some(self.out.drain_page)
    }

    /// Whether no response is waiting to be sent (so shutting down loses
    /// nothing of this connection's).
    pub fn nothing_to_send(&self) -> bool {
        self.out.is_empty()
    }

    /// Bytes written to the client since the connection opened.
    pub fn bytes_written(&self) -> u64 {
        self.out.written
    }

    /// Accepted on the push socket (else on the scrape port): which
    /// connection budget it counts against.
    pub fn is_push(&self) -> bool {
        self.may_push
    }

    /// The last time a byte moved either way: the event loop closes the
    /// connection idle longest to admit a newcomer at a full budget.
    pub fn last_active(&self) -> u64 {
        self.last_active
    }

    /// Whether nothing is half done: no partial request, body or line, no
    /// response waiting to be sent, and the first request or line done.
    /// Closing such a connection to admit another loses nothing in flight:
    /// a keep-alive connection between requests (or lingering after its
    /// last response), a stream between lines. A fresh connection is not at
    /// rest: its client is about to send its first request or line.
    /// Error replies a stream pusher has not read do not count: they are
    /// dropped when they do not fit, anyway.
    pub fn at_rest(&self) -> bool {
        match &self.state {
            State::Detect { .. } => false,
            State::Stream(s) => s.carry.is_empty() && !s.discarding,
            State::Http(h) => {
                self.out.is_empty()
                    && (h.lingering
                        || (h.len == 0 && h.pending.is_none() && h.request_started.is_none()))
            }
        }
    }

    /// When this connection must be closed if nothing happens, if ever.
    pub fn deadline(&self) -> Option<u64> {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        if let State::Stream(s) = &self.state {
            // Stream pushers may stay quiet between lines for as long as
            // they like, not in the middle of one.
            let line = (!s.carry.is_empty() || s.discarding)
                .then(|| self.last_progress + ms(PARTIAL_LINE_TIMEOUT));
            let write = (!self.out.is_empty()).then(|| self.last_progress + ms(WRITE_TIMEOUT));
            return line.into_iter().chain(write).min();
        }
        if !self.out.is_empty() {
            return Some(self.last_progress + ms(WRITE_TIMEOUT));
        }
        match &self.state {
            State::Stream(_) => None,
            State::Detect { have: 0, .. } => Some(self.last_progress + ms(IDLE_TIMEOUT)),
            State::Detect { started, .. } => Some(started + ms(REQUEST_TIMEOUT)),
            State::Http(h) if h.lingering => Some(self.last_progress + ms(LINGER)),
            State::Http(h) => match (&h.pending, h.request_started) {
                (Some(p), _) => Some(p.head_done + ms(BODY_TIMEOUT)),
                (None, Some(t)) => Some(t + ms(REQUEST_TIMEOUT)),
                (None, None) => Some(self.last_progress + ms(IDLE_TIMEOUT)),
            },
        }
    }

    /// Tells a client over its connection budget why it is dropped, best
    /// effort (one non-blocking write), before the caller drops it.
    pub fn refuse(&mut self) {
        let why = match self.socket {
            Socket::Unix(_) => {
                "too many push connections in use (--max-push-connections), none idle; try again later\n"
            }
            Socket::Tcp(_) => {
                "too many scrape connections in use (--max-scrape-connections), none idle; try again later\n"
            }
        };
        let mut msg = Vec::with_capacity(256);
        match self.socket {
            Socket::Unix(_) => msg.extend_from_slice(b"error: "),
            Socket::Tcp(_) => {
                http::write_head(
                    &mut msg,
                    503,
                    "text/plain; charset=utf-8",
                    why.len(),
                    false,
                    None,
                );
            }
        }
        msg.extend_from_slice(why.as_bytes());
        let _ = self.socket.write(&msg);
    }

    /// Closed to admit a newcomer at a full budget. A stream pusher is told
    /// why, best effort; an HTTP client gets nothing (a keep-alive connection
    /// may be closed between requests, and nothing else is ever evicted
    /// before [`crate::limits::EVICT_BUSY_AFTER`] without a byte).
    pub fn evict(&mut self) {
        if matches!(self.state, State::Stream(_) | State::Detect { .. }) && self.out.is_empty() {
            let why = b"error: connection closed to admit another: it was idle longest and all --max-push-connections are in use\n";
            let _ = self.socket.write(why);
        }
    }

    /// The deadline passed: answer 408 to a half-sent request or an
    /// error to a half-sent line, best effort, before the event loop closes
    /// the connection. Returns whether this is a timeout to count (rather
    /// than the normal end of a lingering close).
    pub fn time_out(&mut self) -> bool {
        let secs = |d: std::time::Duration| d.as_secs();
        let why = match &self.state {
            _ if !self.out.is_empty() => return true,
            State::Http(h) if h.lingering => return false,
            State::Http(h) if h.pending.is_some() => format!(
                "request timeout: send the whole body within {} s of the request head\n",
                secs(BODY_TIMEOUT)
            ),
            State::Http(h) if h.request_started.is_some() => format!(
                "request timeout: send the whole request head within {} s\n",
                secs(REQUEST_TIMEOUT)
            ),
            State::Stream(s) if !s.carry.is_empty() || s.discarding => format!(
                "error: line {}: no newline within {} s of the last byte; connection closed\n",
                s.line_no + 1,
                secs(PARTIAL_LINE_TIMEOUT)
            ),
            State::Detect { have, .. } if *have > 0 => format!(
                "error: the first line was not complete within {} s; connection closed\n",
                secs(REQUEST_TIMEOUT)
            ),
            _ => return true,
        };
        if let State::Http(_) = self.state {
            http::write_head(
                &mut self.out.bytes,
                408,
                "text/plain",
                why.len(),
                false,
                None,
            );
        }
        self.out.bytes.extend_from_slice(why.as_bytes());
        let _ = self.out.flush(&mut self.socket);
        true
    }

    /// Handles readiness: sends what is pending, reads and processes until
    /// the socket would block. `chunk` is the shared read buffer: stream
    /// bytes are applied straight from it.
    pub fn ready(&mut self, ctx: &mut Ctx, chunk: &mut [u8]) -> Step {
        let (received, written) = (self.last_progress, self.out.written);
        let step = match self.state {
            State::Detect { .. } => self.detect(ctx, chunk),
            State::Stream(_) => self.stream_ready(ctx, chunk),
            State::Http(_) => self.http_ready(ctx),
        };
        if self.last_progress != received || self.out.written != written {
            self.last_active = ctx.now;
        }
        step
    }

    fn detect(&mut self, ctx: &mut Ctx, chunk: &mut [u8]) -> Step {
        let State::Detect {
            head,
            have,
            started,
        } = &mut self.state
        else {
            return Step::Close;
        };
        // Read no more than a few bytes, so that if this is HTTP all of them
        // fit the request buffer.
        let eof = loop {
            match self.socket.read(&mut head[*have..]) {
                Ok(0) => break true,
                Ok(n) => {
                    if *have == 0 {
                        *started = ctx.now;
                    }
                    *have += n;
                    self.last_progress = ctx.now;
                    match http::looks_like_http(&head[..*have]) {
                        None if *have < DETECT_BYTES => continue,
                        _ => break false,
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Keep,
                Err(_) => return Step::Close,
            }
        };
        let (head, have, started) = (*head, *have, *started);
        if http::looks_like_http(&head[..have]) == Some(true) {
            let mut h = HttpState::new();
            h.buf[..have].copy_from_slice(&head[..have]);
            h.len = have;
            h.request_started = Some(started);
            self.state = State::Http(h);
            return if eof {
                Step::Close
            } else {
                self.http_ready(ctx)
            };
        }
        let mut s = StreamState::new();
        s.feed(&head[..have], &mut self.out, ctx);
        if eof {
            s.finish(&mut self.out, ctx);
            let _ = self.out.flush(&mut self.socket);
            return Step::Close;
        }
        self.state = State::Stream(s);
        self.stream_ready(ctx, chunk)
    }

    // ---- stream protocol --------------------------------------------------

    fn stream_ready(&mut self, ctx: &mut Ctx, chunk: &mut [u8]) -> Step {
        let State::Stream(s) = &mut self.state else {
            return Step::Close;
        };
        let mut reads = 0;
        // The turn is bounded by work too: lines applied and records the
        // cache moved for them (see limits.rs).
        let (lines_from, moved_from) = (s.line_no, ctx.cache.stats.records_moved);
        // While a page is being sent, it goes out a send buffer per turn:
        // pushers take one small read per turn then, so that it does not
        // wait for all of them many times over.
        let (reads_max, read_bytes) = if ctx.renderer.page_in_flight() {
            (1, STREAM_READ_BYTES_WHILE_SENDING)
        } else {
            (TURN_READS, STREAM_READ_BYTES)
        };
        let step = loop {
            if reads == reads_max
                || s.line_no - lines_from >= TURN_LINES
                || ctx.cache.stats.records_moved - moved_from >= TURN_RECORDS_MOVED
            {
                break Step::Yield;
            }
            reads += 1;
            let want = read_bytes.min(chunk.len());
            match self.socket.read(&mut chunk[..want]) {
                Ok(0) => {
                    s.finish(&mut self.out, ctx);
                    let _ = self.out.flush(&mut self.socket);
                    break Step::Close;
                }
                Ok(n) => {
                    self.last_progress = ctx.now;
                    s.feed(&chunk[..n], &mut self.out, ctx);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break Step::Keep,
                Err(_) => break Step::Close,
            }
        };
        if step != Step::Close && self.out.flush(&mut self.socket).is_err() {
            // The client stopped reading for good; its pushes still count,
            // and the next read will see its EOF or error.
            self.out = Outbox::default();
        }
        step
    }

    // ---- HTTP -------------------------------------------------------------

    fn http_ready(&mut self, ctx: &mut Ctx) -> Step {
        for _ in 0..TURN_STEPS {
            match self.out.flush(&mut self.socket) {
                Ok(true) => {}
                Ok(false) => return Step::Keep,
                Err(_) => return Step::Close,
            }
            let delivered = std::mem::take(&mut self.out.delivered);
            if delivered != 0 {
                ctx.cache.drain_delivered(delivered);
            }
            let State::Http(h) = &mut self.state else {
                return Step::Close;
            };
            if h.close_after {
                return self.linger(ctx.now);
            }
            let progress = if h.pending.is_some() {
                h.body_step(&mut self.out, ctx)
            } else {
                h.head_step(&mut self.out, self.may_push, ctx)
            };
            match progress {
                Progress::Done => {
                    self.last_progress = ctx.now;
                }
                Progress::NeedBytes => match self.socket.read(h.spare()) {
                    Ok(0) => {
                        // A push whose body ends early still gets an
                        // answer (the client may have only shut its side).
                        if h.pending.take().is_some() {
                            ctx.stats.push_rejected("http");
                            let msg = "request body cut short: send as many bytes as Content-Length says, or the last chunk";
                            routes::fail(&mut self.out, 400, msg);
                            let _ = self.out.flush(&mut self.socket);
                        }
                        return Step::Close;
                    }
                    Ok(n) => {
                        if h.len == 0 && h.pending.is_none() {
                            h.request_started = Some(ctx.now);
                        }
                        h.len += n;
                        self.last_progress = ctx.now;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Keep,
                    Err(_) => return Step::Close,
                },
            }
        }
        Step::Yield
    }
}

/// Whether an HTTP step finished something or needs more bytes.
enum Progress {
    Done,
    NeedBytes,
}

/// A push request whose body is being read.
struct PendingPush {
    head: PushHead,
    /// Decodes a compressed body into `HttpState::body`.
    decoder: Option<Decoder>,
    /// Where the query starts in `HttpState::path`.
    query_at: usize,
    body: BodyRead,
    /// When the head was complete: [`BODY_TIMEOUT`] runs from here.
    head_done: u64,
}

enum BodyRead {
    Length(u64),
    Chunked(Chunked),
}

impl HttpState {
    /// Drops `n` bytes from the front of the request buffer.
    fn consume(&mut self, n: usize) {
        self.buf.copy_within(n..self.len, 0);
        self.len -= n;
    }

    /// Parses a request head and answers it, or starts reading its body.
    fn head_step(&mut self, out: &mut Outbox, may_push: bool, ctx: &mut Ctx) -> Progress {
        let req = match http::parse_request(&self.buf[..self.len]) {
            Ok(Some(req)) => req,
            Ok(None) => return Progress::NeedBytes,
            Err(e) => {
                // The push socket is for pushes: a request refused before
                // its path is known counts as a refused push.
                if may_push {
                    ctx.stats.push_rejected(e.reason());
                }
                self.fail(out, e.status(), &e.to_string());
                return Progress::Done;
            }
        };
        let head_len = req.head_len;
        let head = match routes::route(out, &req, may_push, ctx) {
            Routed::Push(head) => head,
            Routed::Answered { close } => {
                self.consume(head_len);
                self.request_started = (self.len > 0).then_some(ctx.now);
                self.close_after = close;
                return Progress::Done;
            }
        };
        self.path.clear();
        self.path.push_str(req.path);
        let query_at = self.path.len();
        self.path.push_str(req.query);
        let body = match req.body {
            BodyFraming::None => BodyRead::Length(0),
            BodyFraming::Length(n) if n > ctx.max_body as u64 => {
                ctx.stats.push_rejected("too_large");
                let e = http::HttpError::BodyTooLarge;
                self.fail(out, e.status(), &e.to_string());
                return Progress::Done;
            }
            BodyFraming::Length(n) => BodyRead::Length(n),
            BodyFraming::Chunked => BodyRead::Chunked(Chunked::Size),
        };
        if req.expect_continue && req.body != BodyFraming::None && self.len == head_len {
            out.bytes.extend_from_slice(http::CONTINUE);
        }
        let decoder = match head.encoding {
            Encoding::Identity => None,
            Encoding::Gzip => Some(Decoder::gzip()),
            Encoding::Snappy => Some(Decoder::snappy()),
        };
        self.pending = Some(PendingPush {
            head,
            decoder,
            query_at,
            body,
            head_done: ctx.now,
        });
        self.body.clear();
        self.consume(head_len);
        Progress::Done
    }

    /// Moves buffered body bytes into the body; runs the push when whole.
    fn body_step(&mut self, out: &mut Outbox, ctx: &mut Ctx) -> Progress {
        let Some(pending) = &mut self.pending else {
            return Progress::Done;
        };
        // A compressed body is de-chunked into `raw`, then decoded into
        // the body; a plain one goes straight to the body.
        let sink = if pending.decoder.is_some() {
            &mut self.raw
        } else {
            &mut self.body
        };
        let (used, complete) = match &mut pending.body {
            BodyRead::Length(left) => {
                let n = self.len.min(usize::try_from(*left).unwrap_or(usize::MAX));
                sink.extend_from_slice(&self.buf[..n]);
                *left -= n as u64;
                (n, *left == 0)
            }
            BodyRead::Chunked(state) => {
                match http::decode_chunked(state, &self.buf[..self.len], sink, ctx.max_body) {
                    Ok(n) => (n, *state == Chunked::Done),
                    Err(e) => {
                        let reason = if e.status() == 413 {
                            "too_large"
                        } else {
                            "http"
                        };
                        return self.refuse_body(out, ctx, reason, e.status(), &e.to_string());
                    }
                }
            }
        };
        if let Some(decoder) = &mut pending.decoder {
            let decoded = decoder
                .feed(&self.raw, &mut self.body, ctx.max_body)
                .and_then(|()| if complete { decoder.finish() } else { Ok(()) });
            self.raw.clear();
            if let Err(e) = decoded {
                let (reason, status) = match e {
                    DecodeError::TooLarge => ("too_large", 413),
                    DecodeError::Corrupt(_) => ("encoding", 400),
                };
                return self.refuse_body(out, ctx, reason, status, &e.to_string());
            }
        }
        self.consume(used);
        if !complete {
            return Progress::NeedBytes;
        }
        let Some(p) = self.pending.take() else {
            return Progress::Done;
        };
        let (path, query) = self.path.split_at(p.query_at);
        routes::finish_push(out, ctx, &p.head, path, query, &self.body);
        self.close_after = !p.head.keep_alive;
        self.request_started = (self.len > 0).then_some(ctx.now);
        Progress::Done
    }

    /// Refuses the push whose body is being read, and closes after it.
    fn refuse_body(
        &mut self,
        out: &mut Outbox,
        ctx: &mut Ctx,
        reason: &str,
        status: u16,
        message: &str,
    ) -> Progress {
        self.pending = None;
        self.raw = Vec::new();
        ctx.stats.push_rejected(reason);
        self.fail(out, status, message);
        Progress::Done
    }

    /// Answers an error and closes after it.
    fn fail(&mut self, out: &mut Outbox, status: u16, message: &str) {
        routes::fail(out, status, message);
        self.close_after = true;
        self.len = 0;
    }
}

impl Conn {
    /// After a final response: shut our side, then read and discard until
    /// the client closes or [`LINGER`] passes.
    fn linger(&mut self, now: u64) -> Step {
        let State::Http(h) = &mut self.state else {
            return Step::Close;
        };
        if !h.lingering {
            h.lingering = true;
            self.last_progress = now;
            let shut = match &self.socket {
                Socket::Unix(s) => s.shutdown(std::net::Shutdown::Write),
                Socket::Tcp(s) => s.shutdown(std::net::Shutdown::Write),
            };
            if shut.is_err() {
                return Step::Close;
            }
        }
        loop {
            match self.socket.read(&mut h.buf) {
                Ok(0) => return Step::Close,
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Keep,
                Err(_) => return Step::Close,
            }
        }
    }
}

impl HttpState {
    /// Free space to read into, growing the buffer (up to the head limit)
    /// when it is full: most requests are a few hundred bytes.
    fn spare(&mut self) -> &mut [u8] {
        if self.len == self.buf.len() && self.buf.len() < REQUEST_HEAD_MAX_BYTES {
            let grown = (self.buf.len() * 2).min(REQUEST_HEAD_MAX_BYTES);
            self.buf.resize(grown, 0);
        }
        &mut self.buf[self.len..]
    }

    fn new() -> HttpState {
        HttpState {
            buf: vec![0; REQUEST_BUF_START_BYTES],
            len: 0,
            close_after: false,
            lingering: false,
            path: String::new(),
            pending: None,
            body: Vec::new(),
            raw: Vec::new(),
            request_started: None,
        }
    }
}

impl StreamState {
    fn new() -> StreamState {
        StreamState {
            carry: Vec::new(),
            discarding: false,
            line_no: 0,
            ctx: StreamContext::default(),
        }
    }

    /// Applies every complete line of `data`, carrying a partial last line.
    fn feed(&mut self, data: &[u8], out: &mut Outbox, ctx: &mut Ctx) {
        // The complete lines of the chunk are checked as UTF-8 in one pass
        // (a newline never splits a character), several times cheaper than
        // line by line; if that fails, each line is checked on its own so
        // that the error names the line.
        let complete = memchr::memrchr(b'\n', data).map_or(0, |at| at + 1);
        let text = std::str::from_utf8(&data[..complete]).ok();
        let mut rest = data;
        while let Some(pos) = memchr::memchr(b'\n', rest) {
            let piece = &rest[..pos];
            let start = data.len() - rest.len();
            rest = &rest[pos + 1..];
            self.line_no += 1;
            if self.discarding {
                self.discarding = false;
                self.reject(IngestError::Line(LineError::TooLong), out, ctx);
            } else if self.carry.is_empty() {
                let parsed = match text {
                    Some(text) => exposition::parse_text(&text[start..start + pos]),
                    None => exposition::parse_line(piece),
                };
                self.apply(parsed, out, ctx);
            } else if self.carry.len() + piece.len() > LINE_MAX_BYTES {
                self.carry.clear();
                self.reject(IngestError::Line(LineError::TooLong), out, ctx);
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(piece);
                self.apply(exposition::parse_line(&line), out, ctx);
                line.clear();
                self.carry = line;
            }
        }
        if self.discarding {
            return;
        }
        if self.carry.len() + rest.len() > LINE_MAX_BYTES {
            self.carry.clear();
            self.discarding = true;
        } else {
            // Room for the partial line only, in powers of two up to
            // LINE_MAX_BYTES: most carried pieces are a few dozen bytes,
            // and a connection that reserved a whole line each held 4 KiB
            // while it waited for its newline.
            let need = self.carry.len() + rest.len();
            if need > self.carry.capacity() {
                let room = need
                    .next_power_of_two()
                    .clamp(CARRY_MIN_BYTES, LINE_MAX_BYTES);
                self.carry.reserve_exact(room - self.carry.len());
            }
            self.carry.extend_from_slice(rest);
        }
    }

    /// At EOF: a last line without a newline still counts.
    fn finish(&mut self, out: &mut Outbox, ctx: &mut Ctx) {
        if self.discarding {
            self.line_no += 1;
            self.reject(IngestError::Line(LineError::TooLong), out, ctx);
        } else if !self.carry.is_empty() {
            self.line_no += 1;
            let line = std::mem::take(&mut self.carry);
            self.apply(exposition::parse_line(&line), out, ctx);
        }
    }

    fn apply(&mut self, parsed: Result<Line, LineError>, out: &mut Outbox, ctx: &mut Ctx) {
        let applied = parsed.map_err(IngestError::from).and_then(|line| {
            ingest::apply_parsed(
                ctx.cache,
                &mut self.ctx,
                line,
                ctx.now,
                &ctx.stream,
                ctx.key,
            )
        });
        match applied {
            Ok(()) => ctx.stats.lines_accepted += 1,
            Err(e) => self.reject(e, out, ctx),
        }
    }

    fn reject(&mut self, e: IngestError, out: &mut Outbox, ctx: &mut Ctx) {
        ctx.stats.line_rejected(e.reason());
        if ctx.warn.allow(ctx.now) {
            log::warn!("push rejected: line {}: {e}", self.line_no);
        }
        let mut msg = [0u8; 256];
        let mut cursor = io::Cursor::new(&mut msg[..]);
        let _ = writeln!(cursor, "error: line {}: {e}", self.line_no);
        let len = cursor.position() as usize;
        if out.bytes.len() + len <= REPLY_MAX_BYTES {
            out.bytes.extend_from_slice(&msg[..len]);
        } else {
            ctx.stats.reply_bytes_dropped += len as u64;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A peer that takes what its plan says, one step per write: `Some(n)`
    /// takes up to `n` bytes (across slices), `None` would block. Past the
    /// plan it takes everything.
    struct Peer {
        got: Vec<u8>,
        plan: std::vec::IntoIter<Option<usize>>,
        interrupt_next: bool,
    }

    impl Peer {
        fn new(plan: Vec<Option<usize>>) -> Peer {
            Peer {
                got: Vec::new(),
                plan: plan.into_iter(),
                interrupt_next: false,
            }
        }
    }

    impl Write for Peer {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.write_vectored(&[IoSlice::new(buf)])
        }
        fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
            assert!(bufs.iter().all(|b| !b.is_empty()), "empty slice written");
            if std::mem::take(&mut self.interrupt_next) {
                return Err(io::ErrorKind::Interrupted.into());
            }
            let mut room = match self.plan.next() {
                Some(None) => return Err(io::ErrorKind::WouldBlock.into()),
                Some(Some(n)) => n,
                None => usize::MAX,
            };
            let before = self.got.len();
            for b in bufs {
                let n = room.min(b.len());
                self.got.extend_from_slice(&b[..n]);
                room -= n;
            }
            Ok(self.got.len() - before)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    /// A page response queued as `respond` queues it.
    fn queued(head: &[u8], page: Option<&[u8]>, tail: &[u8]) -> Outbox {
        let mut out = Outbox::default();
        out.bytes.extend_from_slice(head);
        out.tail = Some(Rc::new(tail.to_vec()));
        out.page = page.map(|p| Rc::new(p.to_vec()));
        out.drain_page = 5;
        out
    }

    /// Flushes until done, checking that nothing counts as delivered early.
    fn flush_all(out: &mut Outbox, peer: &mut Peer) {
        for _ in 0..100 {
            match out.flush(peer) {
                Ok(true) => return,
                Ok(false) => {
                    assert_eq!(out.delivered, 0, "delivered before the end");
                    assert!(!out.is_empty());
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("never finished");
    }

    #[test]
    fn every_split_of_head_page_and_tail_arrives_whole_and_in_order() {
        // Head, page (none for HEAD), tail.
        type Response<'a> = (&'a [u8], Option<&'a [u8]>, &'a [u8]);
        let cases: [Response; 5] = [
            (b"HEAD\r\n", Some(b"page\n"), b"tail\n"),
            (b"HEAD\r\n", Some(b""), b"tail\n"),
            (b"HEAD\r\n", Some(b"page\n"), b""),
            (b"HEAD\r\n", Some(b""), b""),
            (b"HEAD\r\n", None, b""),
        ];
        for (head, page, tail) in cases {
            let whole = [head, page.unwrap_or_default(), tail].concat();
            for first in 0..=whole.len() {
                for second in first..=whole.len() {
                    // Ok(0) would mean a dead peer: only non-empty writes.
                    let plan = [first, second - first, 1]
                        .into_iter()
                        .filter(|&n| n > 0)
                        .flat_map(|n| [Some(n), None])
                        .collect();
                    let mut out = queued(head, page, tail);
                    let mut peer = Peer::new(plan);
                    peer.interrupt_next = second % 2 == 0;
                    flush_all(&mut out, &mut peer);
                    let at = format!("{whole:?} split at {first}, {second}");
                    assert_eq!(peer.got, whole, "{at}");
                    assert_eq!(out.delivered, 5, "{at}");
                    assert!(out.is_empty() && out.bytes.is_empty() && out.tail.is_none());
                }
            }
        }
    }

    #[test]
    fn a_trickling_peer_gets_everything_and_the_outbox_is_reused() {
        let mut out = queued(b"head ", Some(b"the page "), b"the tail");
        for step in 1..=4 {
            let mut peer = Peer::new(vec![Some(step); 64]);
            flush_all(&mut out, &mut peer);
            assert_eq!(peer.got, b"head the page the tail");
            // The next response of a keep-alive connection, no tail.
            out.bytes.extend_from_slice(b"head ");
            out.page = Some(Rc::new(b"the page ".to_vec()));
            let mut peer = Peer::new(vec![Some(step); 64]);
            flush_all(&mut out, &mut peer);
            assert_eq!(peer.got, b"head the page ");
            out = queued(b"head ", Some(b"the page "), b"the tail");
        }
    }

    #[test]
    fn stream_replies_queued_while_sending_go_out_after_the_rest() {
        let mut out = Outbox::default();
        out.bytes.extend_from_slice(b"error: line 1\n");
        let mut peer = Peer::new(vec![Some(3), None]);
        assert!(!out.flush(&mut peer).unwrap());
        out.bytes.extend_from_slice(b"error: line 2\n");
        flush_all(&mut out, &mut peer);
        assert_eq!(peer.got, b"error: line 1\nerror: line 2\n");
        assert_eq!(out.delivered, 0);
    }

    #[test]
    fn a_peer_that_stops_taking_bytes_fails_the_page() {
        let mut out = queued(b"head", Some(b"page"), b"tail");
        let mut peer = Peer::new(vec![Some(6), Some(0)]);
        let e = out.flush(&mut peer).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::WriteZero);
        assert_eq!((out.delivered, out.drain_page), (0, 5));
        assert!(!out.is_empty());
    }
}

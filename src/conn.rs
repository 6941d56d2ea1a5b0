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
//!   sent, which bounds what a pipelining client can make us hold.
//!
//! # Memory
//! Per connection: a request buffer of [`REQUEST_HEAD_MAX_BYTES`] (HTTP), a
//! carry buffer of at most [`LINE_MAX_BYTES`] and a HELP context of at most
//! one line (stream), queued replies of at most [`REPLY_MAX_BYTES`]. Pages
//! are shared with the renderer, not copied.

use std::io::{self, IoSlice, Read, Write};
use std::rc::Rc;

use mio::event::Source;
use mio::{Interest, Registry, Token};

use crate::cache::Cache;
use crate::http::{self, BodyFraming, Method, Request};
use crate::ingest::{self, IngestError, StreamContext};
use crate::limits::{
    IDLE_TIMEOUT, LINE_MAX_BYTES, LINGER, REPLY_MAX_BYTES, REQUEST_HEAD_MAX_BYTES, REQUEST_TIMEOUT,
    WRITE_TIMEOUT,
};
use crate::render::Renderer;
use crate::warn_limit::WarnLimit;

/// What a connection step may use besides its own state.
pub struct Ctx<'a> {
    pub cache: &'a mut Cache,
    pub renderer: &'a mut Renderer,
    /// Scratch for series keys.
    pub key: &'a mut Vec<u8>,
    /// Milliseconds on the gateway's monotonic clock.
    pub now: u64,
    pub ttl_ms: u64,
    pub warn: &'a mut WarnLimit,
}

/// Whether the event loop keeps the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    Keep,
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

/// Output waiting to be written: a head (or stream replies) and a page.
#[derive(Default)]
struct Outbox {
    bytes: Vec<u8>,
    bytes_sent: usize,
    page: Option<Rc<Vec<u8>>>,
    page_sent: usize,
}

impl Outbox {
    fn is_empty(&self) -> bool {
        self.bytes_sent == self.bytes.len() && self.page.is_none()
    }

    /// Writes until done or `WouldBlock`; `Ok(true)` when all is sent.
    fn flush(&mut self, socket: &mut Socket) -> io::Result<bool> {
        loop {
            let head = &self.bytes[self.bytes_sent..];
            let page = self
                .page
                .as_deref()
                .map_or(&[][..], |p| &p[self.page_sent..]);
            if head.is_empty() && page.is_empty() {
                self.bytes.clear();
                self.bytes_sent = 0;
                self.page = None;
                self.page_sent = 0;
                return Ok(true);
            }
            match socket.write_vectored(&[IoSlice::new(head), IoSlice::new(page)]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    let from_head = n.min(head.len());
                    self.bytes_sent += from_head;
                    self.page_sent += n - from_head;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            }
        }
    }
}

pub struct StreamState {
    carry: Vec<u8>,
    /// Inside an over-long line: skip bytes until its newline.
    discarding: bool,
    line_no: u64,
    ctx: StreamContext,
    /// Replies dropped because the client did not read earlier ones.
    pub dropped_replies: u64,
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
}

pub enum State {
    /// A push connection whose first bytes do not yet tell stream from
    /// HTTP; they are kept here until they do.
    Detect {
        head: [u8; DETECT_BYTES],
        have: usize,
    },
    Stream(StreamState),
    Http(HttpState),
}

/// A new HTTP connection's request buffer; it grows to
/// [`REQUEST_HEAD_MAX_BYTES`] only for a request that needs it.
const REQUEST_BUF_START_BYTES: usize = 1024;

/// Enough bytes to tell an HTTP method and target from exposition text.
const DETECT_BYTES: usize = 16;

pub struct Conn {
    pub socket: Socket,
    /// Accepted on the push socket: may push. The TCP port is read-only.
    may_push: bool,
    pub state: State,
    out: Outbox,
    /// Whether WRITABLE is in the registered interest.
    writable: bool,
    /// Last time bytes moved in either direction.
    last_progress: u64,
}

impl Conn {
    pub fn push(socket: mio::net::UnixStream, now: u64) -> Conn {
        Conn::new(
            Socket::Unix(socket),
            true,
            State::Detect {
                head: [0; DETECT_BYTES],
                have: 0,
            },
            now,
        )
    }

    pub fn scrape(socket: mio::net::TcpStream, now: u64) -> Conn {
        Conn::new(
            Socket::Tcp(socket),
            false,
            State::Http(HttpState::new()),
            now,
        )
    }

    fn new(socket: Socket, may_push: bool, state: State, now: u64) -> Conn {
        Conn {
            socket,
            may_push,
            state,
            out: Outbox::default(),
            writable: false,
            last_progress: now,
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

    /// When this connection must be closed if nothing happens, if ever.
    pub fn deadline(&self) -> Option<u64> {
        let ms = |d: std::time::Duration| d.as_millis() as u64;
        if !self.out.is_empty() {
            return Some(self.last_progress + ms(WRITE_TIMEOUT));
        }
        match &self.state {
            // Stream pushers may stay quiet for as long as they like.
            State::Stream(_) => None,
            State::Detect { .. } => Some(self.last_progress + ms(IDLE_TIMEOUT)),
            State::Http(h) if h.lingering => Some(self.last_progress + ms(LINGER)),
            State::Http(h) => match h.request_started {
                Some(t) => Some(t + ms(REQUEST_TIMEOUT)),
                None => Some(self.last_progress + ms(IDLE_TIMEOUT)),
            },
        }
    }

    /// Tells a client over `--max-connections` why it is dropped, best
    /// effort (one non-blocking write), before the caller drops it.
    pub fn refuse(&mut self) {
        const WHY: &str = "too many connections (--max-connections); try again later\n";
        let mut msg = Vec::with_capacity(160);
        match self.socket {
            Socket::Unix(_) => msg.extend_from_slice(b"error: "),
            Socket::Tcp(_) => {
                http::write_head(
                    &mut msg,
                    503,
                    "text/plain; charset=utf-8",
                    WHY.len(),
                    false,
                    None,
                );
            }
        }
        msg.extend_from_slice(WHY.as_bytes());
        let _ = self.socket.write(&msg);
    }

    /// The deadline passed: answer 408 to a half-sent request, best
    /// effort, before the event loop closes the connection.
    pub fn time_out(&mut self) {
        if let State::Http(h) = &self.state
            && h.request_started.is_some()
            && self.out.is_empty()
        {
            let body = "request timeout: send the whole request head within 10 s\n";
            http::write_head(
                &mut self.out.bytes,
                408,
                "text/plain",
                body.len(),
                false,
                None,
            );
            self.out.bytes.extend_from_slice(body.as_bytes());
            let _ = self.out.flush(&mut self.socket);
        }
    }

    /// Handles readiness: sends what is pending, reads and processes until
    /// the socket would block. `chunk` is the shared read buffer: stream
    /// bytes are applied straight from it.
    pub fn ready(&mut self, ctx: &mut Ctx, chunk: &mut [u8]) -> Step {
        match self.state {
            State::Detect { .. } => self.detect(ctx, chunk),
            State::Stream(_) => self.stream_ready(ctx, chunk),
            State::Http(_) => self.http_ready(ctx),
        }
    }

    fn detect(&mut self, ctx: &mut Ctx, chunk: &mut [u8]) -> Step {
        let State::Detect { head, have } = &mut self.state else {
            return Step::Close;
        };
        // Read no more than a few bytes, so that if this is HTTP all of them
        // fit the request buffer.
        let eof = loop {
            match self.socket.read(&mut head[*have..]) {
                Ok(0) => break true,
                Ok(n) => {
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
        let (head, have) = (*head, *have);
        if http::looks_like_http(&head[..have]) == Some(true) {
            let mut h = HttpState::new();
            h.buf[..have].copy_from_slice(&head[..have]);
            h.len = have;
            h.request_started = Some(ctx.now);
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
        let step = loop {
            match self.socket.read(chunk) {
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
        if step == Step::Keep && self.out.flush(&mut self.socket).is_err() {
            // The client stopped reading for good; its pushes still count,
            // and the next read will see its EOF or error.
            self.out = Outbox::default();
        }
        step
    }

    // ---- HTTP -------------------------------------------------------------

    fn http_ready(&mut self, ctx: &mut Ctx) -> Step {
        loop {
            match self.out.flush(&mut self.socket) {
                Ok(true) => {}
                Ok(false) => return Step::Keep,
                Err(_) => return Step::Close,
            }
            let State::Http(h) = &mut self.state else {
                return Step::Close;
            };
            if h.close_after {
                return self.linger(ctx.now);
            }
            let parsed = http::parse_request(&h.buf[..h.len]);
            match parsed {
                Ok(Some(req)) => {
                    let consumed = req.head_len;
                    let keep_alive = req.keep_alive && req.body == BodyFraming::None;
                    let (status, page_or_body, allow) = route(&req, self.may_push);
                    respond(
                        &mut self.out,
                        &req,
                        status,
                        page_or_body,
                        allow,
                        keep_alive,
                        ctx,
                    );
                    let h = match &mut self.state {
                        State::Http(h) => h,
                        _ => return Step::Close,
                    };
                    h.buf.copy_within(consumed..h.len, 0);
                    h.len -= consumed;
                    h.request_started = (h.len > 0).then_some(ctx.now);
                    h.close_after = !keep_alive;
                    self.last_progress = ctx.now;
                }
                Ok(None) => match self.socket.read(h.spare()) {
                    Ok(0) => return Step::Close,
                    Ok(n) => {
                        if h.len == 0 {
                            h.request_started = Some(ctx.now);
                        }
                        h.len += n;
                        self.last_progress = ctx.now;
                    }
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Step::Keep,
                    Err(_) => return Step::Close,
                },
                Err(e) => {
                    let body = format!("{e}\n");
                    http::write_head(
                        &mut self.out.bytes,
                        e.status(),
                        "text/plain; charset=utf-8",
                        body.len(),
                        false,
                        None,
                    );
                    self.out.bytes.extend_from_slice(body.as_bytes());
                    h.close_after = true;
                    h.len = 0;
                }
            }
        }
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

/// What to answer: a status and a body, static or the page.
enum Body {
    Text(&'static str),
    Page,
}

const INDEX_HTML: &str = "<!doctype html>\n<html><head><title>push-gateway</title></head>\
<body><h1>push-gateway</h1><p><a href=\"/metrics\">Metrics</a></p></body></html>\n";

const READ_ONLY: &str =
    "method not allowed: this port is read-only (GET and HEAD); push through the Unix socket\n";

fn route(req: &Request, may_push: bool) -> (u16, Body, Option<&'static str>) {
    let read_only = matches!(req.method, Method::Get | Method::Head);
    if !may_push && req.path.starts_with("/metrics/") {
        return (405, Body::Text(READ_ONLY), Some("GET, HEAD"));
    }
    let page = match req.path {
        "/metrics" => Body::Page,
        "/" => Body::Text(INDEX_HTML),
        "/-/healthy" | "/-/ready" => Body::Text("OK\n"),
        _ => {
            return (
                404,
                Body::Text("not found: the metrics are at /metrics\n"),
                None,
            );
        }
    };
    if read_only {
        return (200, page, None);
    }
    let text = if may_push {
        "method not allowed: this path answers GET and HEAD\n"
    } else {
        READ_ONLY
    };
    (405, Body::Text(text), Some("GET, HEAD"))
}

fn respond(
    out: &mut Outbox,
    req: &Request,
    status: u16,
    body: Body,
    allow: Option<&str>,
    keep_alive: bool,
    ctx: &mut Ctx,
) {
    let head_only = req.method == Method::Head;
    match body {
        Body::Page => {
            let page = ctx.renderer.render(ctx.cache, |_| {});
            http::write_head(
                &mut out.bytes,
                status,
                http::METRICS_CONTENT_TYPE,
                page.len(),
                keep_alive,
                allow,
            );
            if !head_only {
                out.page = Some(page);
            }
        }
        Body::Text(text) => {
            let ctype = if text.starts_with('<') {
                "text/html; charset=utf-8"
            } else {
                "text/plain; charset=utf-8"
            };
            http::write_head(&mut out.bytes, status, ctype, text.len(), keep_alive, allow);
            if !head_only {
                out.bytes.extend_from_slice(text.as_bytes());
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
            dropped_replies: 0,
        }
    }

    /// Applies every complete line of `data`, carrying a partial last line.
    fn feed(&mut self, data: &[u8], out: &mut Outbox, ctx: &mut Ctx) {
        let mut rest = data;
        while let Some(pos) = rest.iter().position(|&b| b == b'\n') {
            let piece = &rest[..pos];
            rest = &rest[pos + 1..];
            self.line_no += 1;
            if self.discarding {
                self.discarding = false;
                self.reject(
                    IngestError::Line(crate::exposition::LineError::TooLong),
                    out,
                    ctx,
                );
            } else if self.carry.is_empty() {
                self.apply(piece, out, ctx);
            } else if self.carry.len() + piece.len() > LINE_MAX_BYTES {
                self.carry.clear();
                self.reject(
                    IngestError::Line(crate::exposition::LineError::TooLong),
                    out,
                    ctx,
                );
            } else {
                let mut line = std::mem::take(&mut self.carry);
                line.extend_from_slice(piece);
                self.apply(&line, out, ctx);
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
            if self.carry.capacity() == 0 {
                self.carry.reserve_exact(LINE_MAX_BYTES);
            }
            self.carry.extend_from_slice(rest);
        }
    }

    /// At EOF: a last line without a newline still counts.
    fn finish(&mut self, out: &mut Outbox, ctx: &mut Ctx) {
        if self.discarding {
            self.line_no += 1;
            self.reject(
                IngestError::Line(crate::exposition::LineError::TooLong),
                out,
                ctx,
            );
        } else if !self.carry.is_empty() {
            self.line_no += 1;
            let line = std::mem::take(&mut self.carry);
            self.apply(&line, out, ctx);
        }
    }

    fn apply(&mut self, line: &[u8], out: &mut Outbox, ctx: &mut Ctx) {
        if let Err(e) =
            ingest::apply_line(ctx.cache, &mut self.ctx, line, ctx.now, ctx.ttl_ms, ctx.key)
        {
            self.reject(e, out, ctx);
        }
    }

    fn reject(&mut self, e: IngestError, out: &mut Outbox, ctx: &mut Ctx) {
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
            self.dropped_replies += 1;
        }
    }
}

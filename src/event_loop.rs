//! The one `mio::Poll`: the push listener, the scrape listener and every
//! connection, dispatched by token on a single thread.
//!
//! Each turn: poll with a timeout that ends at the next thing to do (a
//! series expiring, a connection timing out, an accept retry), so an idle
//! gateway sleeps; expire series; hand each event to its listener or
//! connection, which returns keep or close; close the connections that
//! asked, after the batch, so a token is never reused within one batch.
//!
//! # Memory
//! The cache (`--cache-bytes`), the renderer's page and order, a shared
//! read chunk of [`READ_CHUNK_BYTES`], and a slab of `--max-connections`
//! connections, each bounded as [`crate::conn`] documents.

use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Registry, Token};

use crate::cache::Cache;
use crate::config::Config;
use crate::conn::{Conn, Ctx, Step};
use crate::ingest;
use crate::limits::{ACCEPT_RETRY, READ_CHUNK_BYTES};
use crate::push;
use crate::render::Renderer;
use crate::slab::Slab;
use crate::warn_limit::WarnLimit;

pub const PUSH_LISTENER: Token = Token(usize::MAX - 1);
pub const SCRAPE_LISTENER: Token = Token(usize::MAX - 2);

/// Everything the loop owns besides the poll and the listeners.
struct Server {
    cache: Cache,
    renderer: Renderer,
    conns: Slab<Conn>,
    /// Connections to close after the current batch of events.
    closing: Vec<usize>,
    chunk: Vec<u8>,
    key: Vec<u8>,
    warn: WarnLimit,
    push: push::Scratch,
    ttl_ms: u64,
    max_body: usize,
    start: Instant,
    /// Accepting paused after an error (e.g. EMFILE) until this time.
    accept_paused_until: Option<u64>,
    refused: u64,
}

/// Serves pushes on `push` and scrapes on `scrape` until a fatal poll
/// error. Tests call this with their own listeners.
///
/// # Errors
/// Only failures of the poll itself; a connection's errors close that
/// connection.
pub fn run(mut push: UnixListener, mut scrape: TcpListener, config: &Config) -> io::Result<()> {
    let mut poll = Poll::new()?;
    poll.registry()
        .register(&mut push, PUSH_LISTENER, Interest::READABLE)?;
    poll.registry()
        .register(&mut scrape, SCRAPE_LISTENER, Interest::READABLE)?;
    let cache = Cache::new(config.cache_bytes);
    let mut server = Server {
        renderer: Renderer::new(&cache),
        cache,
        conns: Slab::with_capacity(config.max_connections),
        closing: Vec::with_capacity(config.max_connections),
        chunk: vec![0; READ_CHUNK_BYTES],
        key: ingest::key_buffer(),
        warn: WarnLimit::default(),
        push: push::Scratch::default(),
        ttl_ms: config.ttl.as_millis() as u64,
        max_body: config.max_body_bytes,
        start: Instant::now(),
        accept_paused_until: None,
        refused: 0,
    };
    let mut events = Events::with_capacity(256);
    loop {
        let now = server.now();
        let timeout = server
            .next_wakeup()
            .map(|t| Duration::from_millis(t.saturating_sub(now)));
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = server.now();
        server.cache.expire(now);
        for event in events.iter() {
            match event.token() {
                PUSH_LISTENER => server.accept_pushers(&push, poll.registry(), now),
                SCRAPE_LISTENER => server.accept_scrapers(&scrape, poll.registry(), now),
                Token(key) => server.conn_ready(key, poll.registry(), now),
            }
        }
        if server.accept_paused_until.is_some_and(|t| t <= now) {
            server.accept_paused_until = None;
            server.accept_pushers(&push, poll.registry(), now);
            server.accept_scrapers(&scrape, poll.registry(), now);
        }
        server.time_out(now);
        server.close_finished(poll.registry());
    }
}

/// Wall-clock seconds since the Unix epoch (for push times only; all
/// timing uses the monotonic clock).
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

impl Server {
    fn now(&self) -> u64 {
        self.start.elapsed().as_millis() as u64
    }

    /// The earliest time something must happen without an event.
    fn next_wakeup(&self) -> Option<u64> {
        let conns = self.conns.iter().filter_map(|(_, c)| c.deadline());
        self.cache
            .next_deadline()
            .into_iter()
            .chain(conns)
            .chain(self.accept_paused_until)
            .min()
    }

    fn accept_pushers(&mut self, listener: &UnixListener, registry: &Registry, now: u64) {
        while self.accept_paused_until.is_none() {
            match listener.accept() {
                Ok((stream, _)) => self.add(Conn::push(stream, now), registry, now),
                Err(e) => {
                    if !self.accept_failed(e, now) {
                        return;
                    }
                }
            }
        }
    }

    fn accept_scrapers(&mut self, listener: &TcpListener, registry: &Registry, now: u64) {
        while self.accept_paused_until.is_none() {
            match listener.accept() {
                Ok((stream, _)) => self.add(Conn::scrape(stream, now), registry, now),
                Err(e) => {
                    if !self.accept_failed(e, now) {
                        return;
                    }
                }
            }
        }
    }

    /// Whether to keep accepting after `e`.
    fn accept_failed(&mut self, e: io::Error, now: u64) -> bool {
        match e.kind() {
            io::ErrorKind::WouldBlock => false,
            io::ErrorKind::Interrupted | io::ErrorKind::ConnectionAborted => true,
            _ => {
                // Out of file descriptors or memory: the listener stays
                // readable, so retry later instead of spinning.
                log::warn!("accept failed: {e}; retrying in {ACCEPT_RETRY:?}");
                self.accept_paused_until = Some(now + ACCEPT_RETRY.as_millis() as u64);
                false
            }
        }
    }

    fn add(&mut self, conn: Conn, registry: &Registry, now: u64) {
        match self.conns.insert(conn) {
            Ok(key) => {
                let conn = self.conns.get_mut(key);
                let registered = conn.map(|c| c.register(registry, Token(key)));
                if !matches!(registered, Some(Ok(()))) {
                    self.closing.push(key);
                    return;
                }
                // Bytes may have arrived before registration: process them
                // now, since edge-triggered readiness reports only new ones.
                self.conn_ready(key, registry, now);
            }
            Err(mut conn) => {
                self.refused += 1;
                if self.warn.allow(now) {
                    log::warn!(
                        "refused a connection: all {} connections in use (--max-connections)",
                        self.conns.len()
                    );
                }
                conn.refuse();
            }
        }
    }

    fn conn_ready(&mut self, key: usize, registry: &Registry, now: u64) {
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        let mut ctx = Ctx {
            cache: &mut self.cache,
            renderer: &mut self.renderer,
            key: &mut self.key,
            now,
            unix_now: unix_now(),
            ttl_ms: self.ttl_ms,
            max_body: self.max_body,
            push: &mut self.push,
            warn: &mut self.warn,
        };
        let step = conn.ready(&mut ctx, &mut self.chunk);
        if step == Step::Close || conn.update_interest(registry, Token(key)).is_err() {
            self.closing.push(key);
        }
    }

    fn time_out(&mut self, now: u64) {
        for key in 0..self.conns.capacity() {
            if let Some(conn) = self.conns.get_mut(key)
                && conn.deadline().is_some_and(|d| d <= now)
            {
                conn.time_out();
                self.closing.push(key);
            }
        }
    }

    fn close_finished(&mut self, registry: &Registry) {
        for key in self.closing.drain(..) {
            if let Some(mut conn) = self.conns.remove(key) {
                conn.deregister(registry);
            }
        }
    }
}

//! The one `mio::Poll`: the push listener, the scrape listener and every
//! connection, dispatched by token on a single thread.
//!
//! Each turn: poll with a timeout that ends at the next thing to do (a
//! series expiring, a connection timing out, an accept retry), so an idle
//! gateway sleeps; expire series; hand each event to its listener, the
//! signal handler or a connection, which returns keep or close; close the
//! connections that asked, after the batch, so a token is never reused
//! within one batch.
//!
//! SIGTERM or SIGINT stops accepting, closes idle connections, gives
//! responses in flight [`SHUTDOWN_GRACE`] to be sent, and returns. SIGHUP
//! (sent by a closing terminal, or by habit to reload) is logged and
//! otherwise ignored: there is nothing to re-read, and its default action
//! would end the process and leave its socket file behind.
//!
//! # Memory
//! The cache (`--cache-bytes`), the renderer's page and order, a shared
//! read chunk of [`READ_CHUNK_BYTES`], and a slab of `--max-connections`
//! connections, each bounded as [`crate::conn`] documents.

use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
pub use signal_hook_mio::v1_0::Signals;

use crate::auth::ScrapeAuth;
use crate::cache::Cache;
use crate::config::Config;
use crate::conn::{Conn, Ctx, Step};
use crate::ingest;
use crate::limits::{ACCEPT_RETRY, READ_CHUNK_BYTES, SHUTDOWN_GRACE, WARN_WINDOW};
use crate::push;
use crate::render::Renderer;
use crate::self_metrics::Stats;
use crate::slab::Slab;
use crate::warn_limit::WarnLimit;

pub const PUSH_LISTENER: Token = Token(usize::MAX - 1);
pub const SCRAPE_LISTENER: Token = Token(usize::MAX - 2);
pub const SIGNALS: Token = Token(usize::MAX - 3);

/// Everything the loop owns besides the poll and the listeners.
struct Server {
    cache: Cache,
    renderer: Renderer,
    conns: Slab<Conn>,
    /// Connections to close after the current batch of events.
    closing: Vec<usize>,
    /// Connections that stopped with work left, to resume next turn.
    resume: Vec<usize>,
    /// The list being resumed this turn.
    resuming: Vec<usize>,
    /// Counts turns of the loop; a connection that already ran this turn
    /// is not resumed in it again.
    turn: u64,
    chunk: Vec<u8>,
    key: Vec<u8>,
    warn: WarnLimit,
    push: push::Scratch,
    stream: ingest::StreamOptions,
    next_page: u32,
    max_body: usize,
    start: Instant,
    /// Accepting paused after an error (e.g. EMFILE) until this time.
    accept_paused_until: Option<u64>,
    /// Accept errors come back every [`ACCEPT_RETRY`] while they last:
    /// logged at the same rate as bad input, not ten times a second.
    accept_warn: WarnLimit,
    stats: Stats,
    self_metrics: bool,
    /// `--scrape-auth-file`.
    scrape_auth: Option<ScrapeAuth>,
    /// Set by a signal: when to give up on responses still in flight.
    shutdown_by: Option<u64>,
    /// Budget evictions already reported in the log, and when.
    budget_evictions_logged: (u64, u64),
}

/// Serves pushes on `push` and scrapes on `scrape` until SIGTERM or
/// SIGINT. Tests call this with their own listeners.
///
/// # Errors
/// Only failures of the poll itself or of signal registration; a
/// connection's errors close that connection.
pub fn run(push: UnixListener, scrape: TcpListener, config: &Config) -> io::Result<()> {
    run_with_signals(push, scrape, config, stop_signals()?)
}

/// The signals the gateway handles: SIGTERM and SIGINT stop it, SIGHUP is
/// logged and ignored. The binary takes them before it creates its
/// sockets, so a signal sent as soon as the socket exists is never lost or
/// fatal.
///
/// # Errors
/// When the handlers cannot be installed.
pub fn stop_signals() -> io::Result<Signals> {
    Signals::new([SIGTERM, SIGINT, SIGHUP])
}

/// [`run`] with signals taken earlier by [`stop_signals`].
///
/// # Errors
/// As [`run`].
pub fn run_with_signals(
    mut push: UnixListener,
    mut scrape: TcpListener,
    config: &Config,
    mut signals: Signals,
) -> io::Result<()> {
    let mut poll = Poll::new()?;
    let registry = poll.registry();
    registry.register(&mut push, PUSH_LISTENER, Interest::READABLE)?;
    registry.register(&mut scrape, SCRAPE_LISTENER, Interest::READABLE)?;
    registry.register(&mut signals, SIGNALS, Interest::READABLE)?;
    let cache = Cache::new(config.cache_bytes);
    let mut server = Server {
        renderer: Renderer::new(&cache),
        cache,
        conns: Slab::with_capacity(config.max_connections),
        closing: Vec::with_capacity(config.max_connections),
        resume: Vec::with_capacity(config.max_connections),
        resuming: Vec::with_capacity(config.max_connections),
        turn: 0,
        chunk: vec![0; READ_CHUNK_BYTES],
        key: ingest::key_buffer(),
        warn: WarnLimit::default(),
        push: push::Scratch::default(),
        stream: ingest::StreamOptions {
            ttl_ms: config.ttl.as_millis() as u64,
            max_ttl_ms: config.max_ttl.as_millis() as u64,
            drain: config.drain_on_scrape,
        },
        next_page: 1,
        max_body: config.max_body_bytes,
        start: Instant::now(),
        accept_paused_until: None,
        accept_warn: WarnLimit::about("accept errors"),
        stats: Stats::default(),
        self_metrics: config.self_metrics,
        scrape_auth: config.scrape_auth.clone(),
        shutdown_by: None,
        budget_evictions_logged: (0, 0),
    };
    let mut events = Events::with_capacity(256);
    loop {
        let now = server.now();
        let timeout = if server.resume.is_empty() {
            server
                .next_wakeup()
                .map(|t| Duration::from_millis(t.saturating_sub(now)))
        } else {
            // Work is waiting: only look for new events.
            Some(Duration::ZERO)
        };
        if let Err(e) = poll.poll(&mut events, timeout) {
            if e.kind() == io::ErrorKind::Interrupted {
                continue;
            }
            return Err(e);
        }
        let now = server.now();
        server.turn += 1;
        server.cache.expire(now);
        for event in events.iter() {
            match event.token() {
                PUSH_LISTENER => server.accept_pushers(&push, poll.registry(), now),
                SCRAPE_LISTENER => server.accept_scrapers(&scrape, poll.registry(), now),
                SIGNALS => {
                    for signal in signals.pending() {
                        if signal == SIGHUP {
                            log::info!(
                                "SIGHUP ignored: push-gateway re-reads nothing; restart it to change flags"
                            );
                        } else if server.shutdown_by.is_none() {
                            log::info!(
                                "received {}: stopping; finishing responses in flight",
                                if signal == SIGINT {
                                    "SIGINT"
                                } else {
                                    "SIGTERM"
                                }
                            );
                            server.shutdown_by = Some(now + SHUTDOWN_GRACE.as_millis() as u64);
                            let _ = poll.registry().deregister(&mut push);
                            let _ = poll.registry().deregister(&mut scrape);
                        }
                    }
                }
                Token(key) => server.conn_ready(key, poll.registry(), now),
            }
        }
        server.resume_yielded(poll.registry(), now);
        if server.shutdown_by.is_none() && server.accept_paused_until.is_some_and(|t| t <= now) {
            server.accept_paused_until = None;
            server.accept_pushers(&push, poll.registry(), now);
            server.accept_scrapers(&scrape, poll.registry(), now);
        }
        server.time_out(now);
        if let Some(by) = server.shutdown_by {
            server.close_idle(now >= by);
        }
        server.close_finished(poll.registry());
        if server.shutdown_by.is_some() && server.conns.is_empty() {
            log::info!("stopped");
            return Ok(());
        }
        server.stats.connections_open = server.conns.len() as u64;
        server.log_budget_pressure(now);
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
            .chain(self.shutdown_by)
            .min()
    }

    /// During shutdown: closes every connection with nothing left to send
    /// (all of them once `give_up`).
    fn close_idle(&mut self, give_up: bool) {
        for key in 0..self.conns.capacity() {
            if self
                .conns
                .get_mut(key)
                .is_some_and(|c| give_up || c.nothing_to_send())
            {
                self.closing.push(key);
            }
        }
    }

    /// Tells the operator, at most once per warning window, that the
    /// budget is too small for what is pushed.
    fn log_budget_pressure(&mut self, now: u64) {
        let (logged, at) = self.budget_evictions_logged;
        let evicted = self.cache.stats.evicted_budget;
        if evicted > logged && now.saturating_sub(at) >= WARN_WINDOW.as_millis() as u64 {
            log::warn!(
                "cache budget full: evicted {} series to make room since the last report; raise --cache-bytes (now {} bytes) or push fewer series",
                evicted - logged,
                self.cache.capacity()
            );
            self.budget_evictions_logged = (evicted, now);
        }
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
                if self.accept_warn.allow(now) {
                    log::warn!(
                        "accept failed: {e}; retrying every {ACCEPT_RETRY:?} (raise the open file limit, LimitNOFILE=, above --max-connections)"
                    );
                }
                self.accept_paused_until = Some(now + ACCEPT_RETRY.as_millis() as u64);
                false
            }
        }
    }

    fn add(&mut self, conn: Conn, registry: &Registry, now: u64) {
        let conn = match self.conns.insert(conn) {
            Err(conn) if !self.closing.is_empty() => {
                // Connections that are done still hold their slots until
                // the end of the batch: free them now rather than refuse.
                // An event still queued for a freed token reaches the new
                // connection as a spurious wake-up, which is harmless.
                self.close_finished(registry);
                self.conns.insert(conn)
            }
            other => other,
        };
        match conn {
            Ok(key) => {
                self.stats.connections_accepted += 1;
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
                self.stats.connections_refused += 1;
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
        conn.last_turn = self.turn;
        let mut ctx = Ctx {
            cache: &mut self.cache,
            renderer: &mut self.renderer,
            key: &mut self.key,
            now,
            unix_now: unix_now(),
            stream: self.stream,
            next_page: &mut self.next_page,
            max_body: self.max_body,
            push: &mut self.push,
            stats: &mut self.stats,
            self_metrics: self.self_metrics,
            warn: &mut self.warn,
            scrape_auth: self.scrape_auth.as_ref(),
        };
        let step = conn.ready(&mut ctx, &mut self.chunk);
        if step == Step::Close || conn.update_interest(registry, Token(key)).is_err() {
            self.closing.push(key);
        } else if step == Step::Yield && !conn.queued {
            conn.queued = true;
            self.resume.push(key);
        }
    }

    /// Gives the connections that yielded last turn their next turn; those
    /// that yield again wait for the turn after.
    fn resume_yielded(&mut self, registry: &Registry, now: u64) {
        std::mem::swap(&mut self.resume, &mut self.resuming);
        for i in 0..self.resuming.len() {
            let key = self.resuming[i];
            let Some(conn) = self.conns.get_mut(key) else {
                continue;
            };
            conn.queued = false;
            if conn.last_turn == self.turn {
                // It already had its turn, from an event: next turn then.
                conn.queued = true;
                self.resume.push(key);
                continue;
            }
            self.conn_ready(key, registry, now);
        }
        self.resuming.clear();
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
                if let Some(page) = conn.undelivered_page() {
                    self.cache.drain_failed(page);
                }
                conn.deregister(registry);
            }
        }
    }
}

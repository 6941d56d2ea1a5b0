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
//! responses in flight [`SHUTDOWN_GRACE`] to be sent, writes the snapshot
//! (with `--persistence-file`, if the cache changed since the last one),
//! and returns. SIGHUP
//! (sent by a closing terminal, or by habit to reload) is logged and
//! otherwise ignored: there is nothing to re-read, and its default action
//! would end the process and leave its socket file behind.
//!
//! # Connection budgets
//! Pushers (the Unix socket) and scrapers (TCP) have budgets of their own,
//! `--max-push-connections` and `--max-scrape-connections`, so no number of
//! TCP connections can keep a local pusher out. When a newcomer finds its
//! budget full, the connection of its kind idle longest is closed to admit
//! it: one at rest if any (see [`Conn::at_rest`]), else one that moved no
//! byte for [`EVICT_BUSY_AFTER`]; only when there is none is the newcomer
//! refused. Holding idle connections therefore keeps nobody out, and a
//! connection that moves bytes is never closed for a newcomer. The slab
//! keeps each kind's connections on two lists (at rest, busy) in order of
//! last activity, so finding the one to close costs O(1); each listener
//! accepts at most [`TURN_ACCEPTS`] per turn.
//!
//! # Pages between pushers
//! A scrape connection's send buffer is small ([`SCRAPE_SEND_BUFFER_BYTES`]),
//! so a large page goes out in many writes. Waiting for the next turn
//! between writes would make a scrape wait for every busy pusher once per
//! send buffer. Instead, a scraper part way through a response whose last
//! write was taken gets another write after each pusher's step in the same
//! turn ([`Server::pump`]): a scraper that reads gets its page at the pace
//! it reads. One whose write is refused waits for its writable event, so a
//! scraper that does not read costs no extra write.
//!
//! # Memory
//! The cache (`--cache-bytes`), the renderer's page and order, a shared
//! read chunk of [`READ_CHUNK_BYTES`], and a slab of `--max-push-connections`
//! plus `--max-scrape-connections` connections, each bounded as
//! [`crate::conn`] documents.

use std::io;
use std::time::{Duration, Instant};

use mio::net::{TcpListener, UnixListener};
use mio::{Events, Interest, Poll, Registry, Token};
use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
pub use signal_hook_mio::v1_0::Signals;

use crate::api::Api;
use crate::auth::ScrapeAuth;
use crate::cache::Cache;
use crate::config::Config;
use crate::conn::{Conn, Ctx, Step};
use crate::ingest;
use crate::limits::{
    ACCEPT_RETRY, ADMIT_WAIT, EVICT_BUSY_AFTER, READ_CHUNK_BYTES, SCRAPE_SEND_BUFFER_BYTES,
    SHUTDOWN_GRACE, TURN_ACCEPTS, WARN_WINDOW,
};
use crate::push;
use crate::remote_write::RemoteWrite;
use crate::render::Renderer;
use crate::self_metrics::{Closed, Stats};
use crate::slab::Slab;
use crate::snapshot::{CLOCK_START_MS, Persistence};
use crate::sockopt;
use crate::warn_limit::WarnLimit;

pub const PUSH_LISTENER: Token = Token(usize::MAX - 1);
pub const SCRAPE_LISTENER: Token = Token(usize::MAX - 2);
pub const SIGNALS: Token = Token(usize::MAX - 3);
pub const REMOTE_WRITE: Token = Token(usize::MAX - 4);

/// The two kinds of connection, each with its own budget; index of
/// [`Server::budgets`].
const PUSH: usize = 0;
const SCRAPE: usize = 1;

/// The slab's lists: per kind, connections at rest and busy ones, each in
/// order of last activity.
const LISTS: usize = 4;

fn kind_of(conn: &Conn) -> usize {
    if conn.is_push() { PUSH } else { SCRAPE }
}

/// The list `conn` belongs on now.
fn list_of(conn: &Conn) -> usize {
    2 * kind_of(conn) + usize::from(!conn.at_rest())
}

/// The flag that sets a kind's budget, for log lines and replies.
const BUDGET_FLAGS: [&str; 2] = ["--max-push-connections", "--max-scrape-connections"];

/// Everything the loop owns besides the poll and the listeners.
struct Server {
    cache: Cache,
    renderer: Renderer,
    api: Api,
    conns: Slab<Conn, LISTS>,
    /// `--max-push-connections` and `--max-scrape-connections`.
    budgets: [usize; 2],
    /// Connections accepted per listener this turn, at most [`TURN_ACCEPTS`].
    accepted: [usize; 2],
    /// A listener stopped at [`TURN_ACCEPTS`] with connections left in its
    /// backlog: accept again next turn (no new event will say so).
    accept_backlog: [bool; 2],
    /// Since when newcomers of a kind wait in the backlog: their budget is
    /// full and no connection can be closed for them (see [`ADMIT_WAIT`]).
    accept_wait: [Option<u64>; 2],
    /// Connections to close after the current batch of events.
    closing: Vec<usize>,
    /// Connections that stopped with work left, to resume next turn.
    resume: Vec<usize>,
    /// The list being resumed this turn.
    resuming: Vec<usize>,
    /// Scrape connections part way through a response whose last write
    /// was taken: they get another write after each pusher's step.
    sending: Vec<usize>,
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
    /// `--persistence-file`, if given.
    persistence: Option<Persistence>,
    /// `--remote-write-url`.
    remote: Option<RemoteWrite>,
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
    // Connections inherit the listener's send buffer: a scraper that does
    // not read pins at most about twice this in the kernel.
    if let Err(e) = sockopt::set_send_buffer(&scrape, SCRAPE_SEND_BUFFER_BYTES) {
        log::warn!(
            "cannot set the scrape connections' send buffer to {SCRAPE_SEND_BUFFER_BYTES} bytes ({e}): the kernel's default applies"
        );
    }
    if let Some(n) = config.legacy_max_connections {
        log::warn!(
            "--max-connections (PUSH_GATEWAY_MAX_CONNECTIONS) is deprecated: it sets both --max-push-connections and --max-scrape-connections to {n} unless they are given; now {} push and {} scrape connections",
            config.max_push_connections,
            config.max_scrape_connections
        );
    }
    let start = Instant::now();
    let mut cache = Cache::new(config.cache_bytes);
    // Restored before the first event: the first scrape sees it all.
    let persistence = config.persistence_file.clone().map(|path| {
        let mut p = Persistence::new(path, config.persistence_interval, CLOCK_START_MS);
        p.restore(&mut cache, CLOCK_START_MS, unix_now_ms());
        p
    });
    let capacity = config.max_push_connections + config.max_scrape_connections;
    let mut server = Server {
        renderer: Renderer::new(&cache),
        api: Api::new(config, unix_now()),
        cache,
        conns: Slab::with_capacity(capacity),
        budgets: [config.max_push_connections, config.max_scrape_connections],
        accepted: [0; 2],
        accept_backlog: [false; 2],
        accept_wait: [None; 2],
        closing: Vec::with_capacity(capacity),
        resume: Vec::with_capacity(capacity),
        resuming: Vec::with_capacity(capacity),
        sending: Vec::with_capacity(config.max_scrape_connections),
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
        start,
        accept_paused_until: None,
        accept_warn: WarnLimit::about("accept errors"),
        stats: Stats::default(),
        self_metrics: config.self_metrics,
        scrape_auth: config.scrape_auth.clone(),
        shutdown_by: None,
        budget_evictions_logged: (0, 0),
        persistence,
        remote: None,
    };
    server.remote = config
        .remote_write
        .clone()
        .map(|s| RemoteWrite::new(s, config.cache_bytes, REMOTE_WRITE, server.now()));
    // Its families are on the page from the first scrape on.
    server.stats.remote_write = server.remote.as_ref().map(|r| r.stats.clone());
    let mut events = Events::with_capacity(256);
    loop {
        let now = server.now();
        let timeout = if server.resume.is_empty() && server.accept_backlog == [false; 2] {
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
        server.accepted = [0; 2];
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
                REMOTE_WRITE => {
                    if let Some(remote) = server.remote.as_mut() {
                        remote.ready(poll.registry(), now);
                    }
                }
                Token(key) => server.conn_ready(key, poll.registry(), now),
            }
        }
        if server.shutdown_by.is_none() {
            server.remote_write(poll.registry(), now);
        }
        server.resume_yielded(poll.registry(), now);
        // Backlogs left at TURN_ACCEPTS, or waiting for a slot: no event
        // says when to go on.
        let backlog = std::mem::take(&mut server.accept_backlog);
        if server.shutdown_by.is_none() {
            if backlog[PUSH] || server.accept_wait[PUSH].is_some() {
                server.accept_pushers(&push, poll.registry(), now);
            }
            if backlog[SCRAPE] || server.accept_wait[SCRAPE].is_some() {
                server.accept_scrapers(&scrape, poll.registry(), now);
            }
        }
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
            server.save_on_stop(now);
            log::info!("stopped");
            return Ok(());
        }
        if let Some(p) = &mut server.persistence {
            p.tick(&server.cache, now, unix_now_ms(), &mut server.stats);
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

/// Wall-clock milliseconds since the Unix epoch: snapshots store TTL
/// deadlines on it, so that a restart keeps what is left of each.
fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Server {
    /// Milliseconds on the monotonic clock, from [`CLOCK_START_MS`] at
    /// start-up.
    fn now(&self) -> u64 {
        CLOCK_START_MS + self.start.elapsed().as_millis() as u64
    }

    /// The last snapshot, once every connection is done: what was pushed
    /// until the stop is kept.
    fn save_on_stop(&mut self, now: u64) {
        let Some(p) = &mut self.persistence else {
            return;
        };
        let started = Instant::now();
        let writes = self.stats.snapshot_writes;
        if p.flush(&self.cache, now, unix_now_ms(), &mut self.stats) {
            let path = p.path().display();
            if self.stats.snapshot_writes > writes {
                log::info!(
                    "saved {} series to {path} in {:?}",
                    self.cache.series_count(),
                    started.elapsed()
                );
            } else {
                log::info!("{path} holds the cache as it is: nothing to write");
            }
        }
    }

    /// The earliest time something must happen without an event.
    fn next_wakeup(&self) -> Option<u64> {
        let conns = self.conns.iter().filter_map(|(_, c)| c.deadline());
        // Newcomers waiting for a slot: until they are refused, or until
        // the busy connection idle longest may be closed for them.
        let admit = [PUSH, SCRAPE].into_iter().filter_map(|kind| {
            let since = self.accept_wait[kind]?;
            let refuse_at = since + ADMIT_WAIT.as_millis() as u64;
            let busy = self
                .conns
                .oldest(2 * kind + 1)
                .and_then(|k| self.conns.get(k));
            let evict_at = busy.map(|c| c.last_active() + EVICT_BUSY_AFTER.as_millis() as u64);
            Some(evict_at.map_or(refuse_at, |t| t.min(refuse_at)))
        });
        self.cache
            .next_deadline()
            .into_iter()
            .chain(conns)
            .chain(admit)
            .chain(self.accept_paused_until)
            .chain(self.shutdown_by)
            .chain(
                self.persistence
                    .as_ref()
                    .and_then(|p| p.wakeup(&self.cache)),
            )
            .chain(self.remote.as_ref().map(RemoteWrite::deadline))
            .min()
    }

    /// Gives remote write its turn: the current state when its interval
    /// has come, then its timers (a timeout, a retry).
    fn remote_write(&mut self, registry: &Registry, now: u64) {
        let Some(remote) = self.remote.as_mut() else {
            return;
        };
        if remote.needs_state(now) {
            let page = self.renderer.page(&self.cache);
            self.stats.remote_write = Some(remote.stats.clone());
            let (stats, cache, own) = (&self.stats, &self.cache, self.self_metrics);
            let tail = |out: &mut Vec<u8>| {
                if own {
                    crate::self_metrics::write(out, stats, cache);
                }
            };
            remote.build(&page, tail, (unix_now() * 1000.0) as i64, now);
        }
        remote.poll(registry, now);
        self.stats.remote_write = Some(remote.stats.clone());
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

    /// Whether to accept one more connection of `kind` now. Not past
    /// [`TURN_ACCEPTS`] this turn (the rest of the backlog goes next turn).
    /// At a full budget with no connection to close for a newcomer, not
    /// for [`ADMIT_WAIT`]: connections just admitted are about to be served
    /// and come to rest, and the newcomers wait in the kernel's backlog, in
    /// order, rather than be refused; past it they are accepted and refused
    /// until the backlog is empty.
    fn may_accept(&mut self, kind: usize, registry: &Registry, now: u64) -> bool {
        if self.accept_paused_until.is_some() {
            return false;
        }
        if self.accepted[kind] == TURN_ACCEPTS {
            self.accept_backlog[kind] = true;
            return false;
        }
        if self.open(kind) >= self.budgets[kind] && !self.closing.is_empty() {
            // Connections that are done still hold their slots until the
            // end of the batch: free them now rather than close another.
            // An event still queued for a freed token reaches the next
            // connection as a spurious wake-up, which is harmless.
            self.close_finished(registry);
        }
        let admit = self.open(kind) < self.budgets[kind] || self.victim(kind, now).is_some();
        match self.accept_wait[kind] {
            _ if admit => self.accept_wait[kind] = None,
            None => {
                self.accept_wait[kind] = Some(now);
                return false;
            }
            Some(since) if now < since + ADMIT_WAIT.as_millis() as u64 => return false,
            // Waited long enough: refuse what is in the backlog.
            Some(_) => {}
        }
        self.accepted[kind] += 1;
        true
    }

    fn accept_pushers(&mut self, listener: &UnixListener, registry: &Registry, now: u64) {
        while self.may_accept(PUSH, registry, now) {
            match listener.accept() {
                Ok((stream, _)) => self.add(Conn::push(stream, now), registry, now),
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        // Nobody waits any more.
                        self.accept_wait[PUSH] = None;
                    }
                    if !self.accept_failed(e, now) {
                        return;
                    }
                }
            }
        }
    }

    fn accept_scrapers(&mut self, listener: &TcpListener, registry: &Registry, now: u64) {
        while self.may_accept(SCRAPE, registry, now) {
            match listener.accept() {
                Ok((stream, _)) => self.add(Conn::scrape(stream, now), registry, now),
                Err(e) => {
                    if e.kind() == io::ErrorKind::WouldBlock {
                        // Nobody waits any more.
                        self.accept_wait[SCRAPE] = None;
                    }
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
                        "accept failed: {e}; retrying every {ACCEPT_RETRY:?} (raise the open file limit, LimitNOFILE=, above --max-push-connections plus --max-scrape-connections)"
                    );
                }
                self.accept_paused_until = Some(now + ACCEPT_RETRY.as_millis() as u64);
                false
            }
        }
    }

    /// Connections of `kind` open now.
    fn open(&self, kind: usize) -> usize {
        self.conns.list_len(2 * kind) + self.conns.list_len(2 * kind + 1)
    }

    /// The connection of `kind` to close for a newcomer: the one at rest
    /// idle longest, else the busy one idle longest if it has moved no byte
    /// for [`EVICT_BUSY_AFTER`].
    fn victim(&self, kind: usize, now: u64) -> Option<usize> {
        if let Some(key) = self.conns.oldest(2 * kind) {
            return Some(key);
        }
        let key = self.conns.oldest(2 * kind + 1)?;
        let idle = now.saturating_sub(self.conns.get(key)?.last_active());
        (idle >= EVICT_BUSY_AFTER.as_millis() as u64).then_some(key)
    }

    /// Admits `conn`, closing another of its kind if its budget is full
    /// (the caller asked [`Server::may_accept`] first), or refuses it.
    fn add(&mut self, conn: Conn, registry: &Registry, now: u64) {
        let kind = kind_of(&conn);
        // Whether the new connection's key is already in the list of
        // yielded connections (left there by the connection it replaces).
        let mut queued = false;
        if self.open(kind) >= self.budgets[kind] {
            match self.victim(kind, now) {
                Some(victim) => queued = self.evict(victim, kind, registry, now),
                None => return self.refuse(conn, kind, now),
            }
        }
        let list = list_of(&conn);
        match self.conns.insert(conn, list) {
            Ok(key) => {
                self.stats.connections_accepted += 1;
                let conn = self.conns.get_mut(key);
                let registered = conn.map(|c| {
                    c.queued = queued;
                    c.register(registry, Token(key))
                });
                if !matches!(registered, Some(Ok(()))) {
                    self.closing.push(key);
                    return;
                }
                // Bytes may have arrived before registration: process them
                // now, since edge-triggered readiness reports only new ones.
                self.conn_ready(key, registry, now);
            }
            // The slab holds both budgets: not reached.
            Err(conn) => self.refuse(conn, kind, now),
        }
    }

    fn refuse(&mut self, mut conn: Conn, kind: usize, now: u64) {
        self.stats.connections_refused += 1;
        if self.warn.allow(now) {
            log::warn!(
                "refused a connection: all {} {} are in use and none has been idle for {EVICT_BUSY_AFTER:?}",
                self.budgets[kind],
                BUDGET_FLAGS[kind],
            );
        }
        conn.refuse();
    }

    /// Closes `key` at once to admit a newcomer of `kind`; returns whether
    /// its key waits in the list of yielded connections.
    fn evict(&mut self, key: usize, kind: usize, registry: &Registry, now: u64) -> bool {
        let Some(mut conn) = self.conns.remove(key) else {
            return false;
        };
        conn.evict();
        self.stats.connection_closed(kind == PUSH, Closed::Evicted);
        if self.warn.allow(now) {
            log::warn!(
                "closed the connection idle longest to admit another: all {} {} are in use",
                self.budgets[kind],
                BUDGET_FLAGS[kind],
            );
        }
        let queued = conn.queued;
        self.finish(conn, registry);
        queued
    }

    fn conn_ready(&mut self, key: usize, registry: &Registry, now: u64) {
        // A page rendered in this step counts this connection too, also
        // when it was accepted in this turn with its request already read.
        self.stats.connections_open = self.conns.len() as u64;
        let Some(conn) = self.conns.get_mut(key) else {
            return;
        };
        conn.last_turn = self.turn;
        let mut ctx = Ctx {
            cache: &mut self.cache,
            renderer: &mut self.renderer,
            api: &mut self.api,
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
        let before = (conn.last_active(), conn.at_rest());
        let written = conn.bytes_written();
        let step = conn.ready(&mut ctx, &mut self.chunk);
        let moved = (conn.last_active(), conn.at_rest()) != before;
        let list = list_of(conn);
        let push = conn.is_push();
        if step == Step::Close || conn.update_interest(registry, Token(key)).is_err() {
            conn.pumped = false;
            self.closing.push(key);
            return;
        } else if step == Step::Yield && !conn.queued {
            conn.queued = true;
            self.resume.push(key);
        }
        // Taken bytes and left some: the client is reading this response.
        conn.pumped = !push && conn.bytes_written() != written && !conn.nothing_to_send();
        if conn.pumped && !self.sending.contains(&key) {
            self.sending.push(key);
        }
        if moved {
            // Last active now, or at rest or busy from now: the back of
            // its list, which stays in order of last activity.
            self.conns.touch(key, list);
        }
        if push && !self.sending.is_empty() {
            self.pump(registry, now);
        }
    }

    /// Gives each scraper in [`Server::sending`] another write; those
    /// whose write is refused, or that are done, leave the list (a refused
    /// one returns with its next writable event). A key whose connection
    /// closed, or went to a newcomer that is not being pumped, leaves too.
    fn pump(&mut self, registry: &Registry, now: u64) {
        let mut i = 0;
        while i < self.sending.len() {
            let key = self.sending[i];
            if self.conns.get(key).is_some_and(|c| c.pumped) {
                self.conn_ready(key, registry, now);
            }
            if self.conns.get(key).is_some_and(|c| c.pumped) {
                i += 1;
            } else {
                self.sending.swap_remove(i);
            }
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
                if conn.time_out() {
                    let push = conn.is_push();
                    self.stats.connection_closed(push, Closed::Timeout);
                }
                self.closing.push(key);
            }
        }
    }

    fn close_finished(&mut self, registry: &Registry) {
        while let Some(key) = self.closing.pop() {
            if let Some(conn) = self.conns.remove(key) {
                self.finish(conn, registry);
            }
        }
    }

    /// What closing a connection takes besides dropping it.
    fn finish(&mut self, mut conn: Conn, registry: &Registry) {
        if let Some(page) = conn.undelivered_page() {
            self.cache.drain_failed(page);
        }
        conn.deregister(registry);
    }
}

//! Every fixed bound of the gateway, in one place.
//!
//! Each constant says what it bounds, its unit, and what happens when a
//! client goes past it. The bounds that operators tune (`--cache-bytes`,
//! `--max-push-connections`, `--max-scrape-connections`, `--ttl`,
//! `--max-body-bytes`) are flags in [`crate::config`]; the rest are fixed
//! here. README's "Limits" table lists the same numbers.
//!
//! Worst-case heap, in bytes, is about
//! `cache_bytes + push_connections × (PUSH_CONNECTION_MAX_BYTES + max_body +
//! page) + scrape_connections × (SCRAPE_CONNECTION_MAX_BYTES + page) +
//! READ_CHUNK_BYTES + push scratch + JSON API documents`, where `page` is the rendered
//! `/metrics` page (at most about `2 × cache_bytes` plus the self-metrics);
//! see [`worst_case_heap_bytes`]. Kernel memory a scraper can pin is
//! bounded by [`SCRAPE_SEND_BUFFER_BYTES`].

use std::time::Duration;

/// Longest exposition line accepted on the stream protocol, newline
/// excluded. Longer lines are discarded up to their newline without being
/// buffered, and answered with an error. Also the most a stream connection
/// buffers for a line split across reads.
pub const LINE_MAX_BYTES: usize = 4096;

/// Most labels on one sample. More is rejected as a bad line.
pub const MAX_LABELS: usize = 32;

/// One read from a stream connection goes into a shared scratch buffer of
/// this size, its largest read; complete lines are applied straight from
/// it, so only a partial last line is copied into the connection's own
/// buffer.
pub const READ_CHUNK_BYTES: usize = STREAM_READ_BYTES;

/// Error replies queued on one stream connection that the client has not
/// read yet. When full, further replies are dropped (never blocking the
/// gateway on a client that does not read).
pub const REPLY_MAX_BYTES: usize = 1024;

/// Largest HTTP request head (request line and headers). Larger gets
/// `431 Request Header Fields Too Large` and the connection is closed.
pub const REQUEST_HEAD_MAX_BYTES: usize = 8 * 1024;

/// Most headers in one HTTP request; more gets 431.
pub const MAX_HEADERS: usize = 32;

/// A client must send a complete HTTP request head within this time of
/// its first byte or, on the TCP port, of connecting; else it gets 408 and
/// the connection is closed. The same bound applies to the first line of
/// a push-socket connection while it does not yet tell stream from HTTP
/// (once it has sent a byte). Bounds slow clients that trickle bytes and
/// silent scrape connections.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A push's body must arrive whole within this time of the end of its
/// head; else 408 and the connection is closed. Separate from
/// [`REQUEST_TIMEOUT`] so that a large body is not cut by the head's clock,
/// and bounded so that a stalled body does not hold its slot.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// A stream connection that stopped in the middle of a line is closed
/// (with an error reply) after this long without a byte. Complete lines
/// leave nothing pending, so a stream pusher that writes whole lines rarely
/// keeps its connection (see [`IDLE_TIMEOUT`]).
pub const PARTIAL_LINE_TIMEOUT: Duration = REQUEST_TIMEOUT;

/// An idle keep-alive HTTP connection, or a push-socket connection that
/// never sent a byte, is closed after this long without one. Stream
/// connections between whole lines have no timeout: a pusher may stay open
/// and quiet for days (and is closed only to admit another at a full
/// budget, see [`EVICT_BUSY_AFTER`]).
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A response must be taken whole by the client within this time of the
/// last byte received from it (for HTTP: of its request); else the
/// connection is closed. Bounds how long a client that reads slowly or not
/// at all pins a page and its send buffer. Longer than Prometheus's
/// default scrape timeout (10 s), so it never cuts a scrape anyone waits for.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// When a connection budget is full, a newcomer is admitted by closing the
/// connection of its kind idle longest: first one at rest (a keep-alive
/// connection between requests, a stream between lines, a response sent
/// whole), else one in the middle of something (a request, body, line or
/// response, or a connection that has not sent its request yet) but only
/// once it has moved no byte for this long. A connection that moved bytes
/// more recently is never closed for a newcomer: then the newcomer is
/// refused.
pub const EVICT_BUSY_AFTER: Duration = Duration::from_secs(2);

/// At a full budget with no connection that may be closed for a
/// newcomer, newcomers are left in the kernel's backlog (not accepted) for
/// up to this long: connections just admitted are about to be served and
/// come to rest, and then a newcomer is admitted in place of one. A burst
/// of connects therefore waits its turn, in order, instead of being
/// refused. Past it, those waiting are accepted and refused (503 on TCP,
/// an error line on the socket).
pub const ADMIT_WAIT: Duration = Duration::from_secs(1);

/// Each listener accepts at most this many connections per turn of the
/// event loop; the rest wait in the kernel's backlog for the next turn,
/// which follows at once. A flood of connects, each closing another
/// connection, cannot starve the connections already open or the other
/// listener.
pub const TURN_ACCEPTS: usize = 64;

/// `SO_SNDBUF` of every scrape connection (set on the TCP listener, whose
/// connections inherit it; Linux doubles it for its bookkeeping). Bounds the
/// kernel memory one scraper that does not read can pin to about twice this,
/// instead of the 4 MiB the kernel's autotuning allows
/// (`net.ipv4.tcp_wmem`); still about 13 MB/s at a 10 ms round trip.
pub const SCRAPE_SEND_BUFFER_BYTES: usize = 64 * 1024;

/// After a final response (an error, or `Connection: close`), the gateway
/// reads and discards what the client still sends for at most this long
/// before closing, so the client gets the response instead of a reset.
pub const LINGER: Duration = Duration::from_secs(2);

/// On SIGTERM or SIGINT, responses still being sent get this long before
/// the gateway exits anyway.
pub const SHUTDOWN_GRACE: Duration = Duration::from_millis(500);

/// An HTTP connection gets at most this many reads or requests per turn of
/// the event loop; then the others are served and it is resumed, so one
/// fast client cannot starve the others.
pub const TURN_STEPS: usize = 16;

/// One read from a stream connection takes at most this much (the size
/// of the shared [`READ_CHUNK_BYTES`] buffer): a turn's lines are bounded
/// by bytes as well as by [`TURN_LINES`], and a small read keeps a turn
/// short when many pushers are busy, so that a scrape (whose page is sent
/// over several turns) waits less for them.
pub const STREAM_READ_BYTES: usize = 16 * 1024;

/// While a scraper is still being sent a page, a stream connection's turn
/// is one read of this much: the page goes out one send buffer per turn,
/// and each turn serves every busy pusher.
pub const STREAM_READ_BYTES_WHILE_SENDING: usize = 4 * 1024;

/// A stream connection gets at most this many reads of
/// [`STREAM_READ_BYTES`] per turn (32 KiB of lines).
pub const TURN_READS: usize = 2;

/// A stream connection's turn also ends after the read that takes it to
/// this many lines. Reads are applied whole, so a turn applies at most
/// `TURN_LINES` plus one read's lines (4 Ki lines of 4 bytes); lines of 32
/// bytes or more reach the byte bound first. Bounds what one pusher, or
/// many flooding ones, hold up a scrape by.
pub const TURN_LINES: u64 = 1024;

/// A stream connection's turn also ends after the read whose lines made
/// the cache move this many records (a compaction: see
/// [`crate::cache::COMPACT_DEAD_DIVISOR`]), so that the pusher that paid
/// for one gives way to the others at once.
pub const TURN_RECORDS_MOVED: u64 = 4096;

/// Warnings about bad input: at most this many per [`WARN_WINDOW`]; the rest
/// are counted and summarised in one line, so a flood cannot fill the log.
pub const WARN_BURST: u32 = 10;

/// The window of [`WARN_BURST`].
pub const WARN_WINDOW: Duration = Duration::from_secs(10);

/// After an accept error such as EMFILE, accepting is retried after this
/// long instead of spinning on a listener that stays readable.
pub const ACCEPT_RETRY: Duration = Duration::from_millis(100);

/// Longest `--socket` path, in bytes: Linux's `sun_path` holds 108, one of
/// them the terminating NUL. A longer path is refused at start-up.
pub const SOCKET_PATH_MAX_BYTES: usize = 107;

/// Longest credential in `--scrape-auth-file`, in bytes; a longer one is
/// refused at start-up. Its header (base64 makes basic auth 4/3 longer)
/// fits well within [`REQUEST_HEAD_MAX_BYTES`].
pub const CREDENTIAL_MAX_BYTES: usize = 1024;

/// Longest `--ttl`, `--max-ttl` and `--persistence-interval`: a year is far
/// beyond any use and keeps every sum of `now + ttl` from overflowing. A
/// snapshot entry with a longer TTL is refused as malformed.
pub const TTL_MAX: Duration = Duration::from_secs(366 * 24 * 3600);

/// A snapshot is written through a buffer of this size and read back
/// through one (`--persistence-file`): one write system call per this many
/// bytes, and the whole of the memory a snapshot takes besides a table of
/// 4 bytes per cache id.
pub const SNAPSHOT_BUFFER_BYTES: usize = 64 * 1024;

/// A snapshot is fsynced and renamed into place this long after it was
/// written (or one `--persistence-interval`, if shorter): meanwhile the
/// kernel writes it back and the loop serves, so the fsync, slow on flash,
/// finds little left to do. A crash in between leaves the previous
/// snapshot.
pub const SNAPSHOT_COMMIT_DELAY: Duration = Duration::from_secs(1);

/// Smallest `--cache-bytes`: the index and a few series must fit.
pub const CACHE_MIN_BYTES: usize = 1024;

/// Largest `--cache-bytes`; offsets inside the cache are 32-bit.
pub const CACHE_MAX_BYTES: usize = 1 << 30;

/// Most `--max-push-connections`, and most `--max-scrape-connections`.
pub const CONNECTIONS_MAX: usize = 65_536;

/// Default `--max-push-connections`: local pushers, stream and HTTP. Each
/// costs at most [`PUSH_CONNECTION_MAX_BYTES`] plus a body; only processes
/// allowed on the socket can use them.
pub const PUSH_CONNECTIONS_DEFAULT: usize = 64;

/// Default `--max-scrape-connections`: Prometheus (one or two servers,
/// one keep-alive connection each) and a few people with curl. Anyone who
/// reaches the port can take one, so each is kept small: it can pin a page
/// on the heap and [`SCRAPE_SEND_BUFFER_BYTES`] in the kernel.
pub const SCRAPE_CONNECTIONS_DEFAULT: usize = 16;

/// Heap one push-socket connection may hold at most besides a body: its
/// line or request buffer, its HELP context and its queued replies (the
/// page it is sending is shared and counted once, in the renderer), and
/// while it reads a compressed push body the decoder's state and one read
/// of raw bytes ([`crate::decompress::DECODER_MAX_BYTES`],
/// [`REQUEST_HEAD_MAX_BYTES`]).
pub const PUSH_CONNECTION_MAX_BYTES: usize = LINE_MAX_BYTES
    + LINE_MAX_BYTES
    + REPLY_MAX_BYTES
    + REQUEST_HEAD_MAX_BYTES
    + crate::decompress::DECODER_MAX_BYTES
    + REQUEST_HEAD_MAX_BYTES;

/// Heap one scrape connection may hold at most besides the page it sends:
/// its request buffer and a short response head or error text. It never
/// buffers a body (the port takes no pushes).
pub const SCRAPE_CONNECTION_MAX_BYTES: usize = REQUEST_HEAD_MAX_BYTES + REPLY_MAX_BYTES;

/// Most bytes the gateway's own metrics (`push_gateway_*`) take on one
/// page, with every counter at its largest. The renderer reserves this once
/// for them and shares the text with scrapers like the page (a new buffer
/// only while a slow scraper still sends the last one). A test checks the
/// bound; past it the buffer would grow once, nothing is cut.
pub const SELF_METRICS_MAX_BYTES: usize = 10 * 1024;

/// Most the renderer reserves at start-up for the page, and for each of
/// its two sort-order vectors. Budgets up to 512 KiB get room for their
/// largest page up front (no allocation on a scrape, ever); larger ones
/// grow these buffers as the pages grow (and keep them), so the address
/// space of a gateway with a large `--cache-bytes` is the budget plus what
/// its pages need, not three times the budget.
pub const RENDER_RESERVE_MAX_BYTES: usize = 1 << 20;

/// `--remote-write-url`: a request with no whole answer within this long
/// of its start (connect, send, response) is given up and retried; the
/// interval, if shorter, bounds it instead, so that the next state is never
/// held up by a receiver that does not answer. Prometheus' own default
/// `remote_timeout`.
pub const REMOTE_WRITE_TIMEOUT: Duration = Duration::from_secs(30);

/// First delay before a failed remote write request is sent again; it
/// doubles with each failure in a row up to [`REMOTE_WRITE_BACKOFF_MAX`],
/// and a random half of it is waited (Prometheus' `min_backoff` is 30 ms:
/// this is longer, for a box on a slow link).
pub const REMOTE_WRITE_BACKOFF_MIN: Duration = Duration::from_millis(250);

/// Cap of the remote write backoff (Prometheus' `max_backoff`).
pub const REMOTE_WRITE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Longest `Retry-After` honoured (a longer one waits this long); the
/// newer state is built meanwhile at every interval and sent after it.
pub const REMOTE_WRITE_RETRY_AFTER_MAX: Duration = Duration::from_secs(300);

/// Most bytes of a remote write response kept: its head must fit (else the
/// request counts as failed, `response`); body bytes past it are read and
/// discarded (only the first 256 are logged, for a 4xx).
pub const REMOTE_WRITE_RESPONSE_MAX_BYTES: usize = 4096;

/// Bound of a remote write request's series with a value (its protobuf
/// body before staleness markers and compression), in bytes per byte of
/// `--cache-bytes`. A sample line costs at most about 2.6 times its
/// key plus 42 bytes in protobuf, and a series holds its key plus 60 bytes
/// of the budget; a pushed group (68 bytes and its labels) makes two lines
/// (`push_time_seconds`, `push_failure_time_seconds`) of at most 87 bytes
/// plus 6.5 times its labels each: 8 covers both with room.
pub const REMOTE_WRITE_BYTES_PER_CACHE_BYTE: usize = 8;

/// The most bytes a remote write request's series with a value take
/// ([`REMOTE_WRITE_BYTES_PER_CACHE_BYTE`] × the budget and the self-metrics,
/// plus the `--remote-write-label`s on every series: `label_bytes` per
/// series, for the most series the budget and the self-metrics make).
/// Series beyond it are left out of the request and counted
/// (`push_gateway_remote_write_failures_total{reason="too_large"}`).
pub fn remote_write_body_max_bytes(cache_bytes: usize, label_bytes: usize) -> usize {
    REMOTE_WRITE_BYTES_PER_CACHE_BYTE * (cache_bytes + SELF_METRICS_MAX_BYTES)
        + remote_write_max_series(cache_bytes) * label_bytes
}

/// The most series one request holds: two per smallest record of the
/// budget (a group's push times) and one per 16 bytes of self-metrics.
fn remote_write_max_series(cache_bytes: usize) -> usize {
    2 * (cache_bytes / crate::cache::MIN_SERIES_BYTES) + SELF_METRICS_MAX_BYTES / 16 + 1
}

/// Worst-case heap of remote write, added to [`worst_case_heap_bytes`]
/// when `--remote-write-url` is set: the last delivered body `B`
/// ([`remote_write_body_max_bytes`]), the one being sent with its staleness
/// markers (`2B`), its snappy form (`2B + 2B/6 + 32`), 12 bytes per series
/// of each, the request head, the response and the self-metrics text. So
/// about `5.4 × B`: 44 × the budget + 470 KiB without labels (924,617
/// bytes for the default 10 KiB). Allocated only as requests need it.
pub fn remote_write_heap_bytes(cache_bytes: usize, label_bytes: usize) -> usize {
    let body = remote_write_body_max_bytes(cache_bytes, label_bytes);
    let head = 512 + 2 * CREDENTIAL_MAX_BYTES;
    body + 2 * body
        + snap::raw::max_compress_len(2 * body)
        + 3 * 12 * remote_write_max_series(cache_bytes)
        + head
        + REMOTE_WRITE_RESPONSE_MAX_BYTES
        + SELF_METRICS_MAX_BYTES
}

/// Worst-case heap of the whole gateway for a configuration, as documented
/// in README. Pages held by slow scrapers (on either listener: the socket
/// serves `/metrics` too) are one per distinct page, and each is bounded by
/// `2 × cache_bytes + 64 KiB` (the 64 KiB also covers the response head and
/// the [`SELF_METRICS_MAX_BYTES`] of the gateway's own metrics sent with
/// it); the renderer's sort scratch is 17 bytes per series the budget
/// could hold; each push connection may hold a body of `max_body_bytes`; the
/// shared push scratch holds a protobuf body's text (at most 8 times the
/// larger of the budget and the body), keys and entries of at most the
/// budget each, and the index of the body's TYPE and HELP names (at most 3
/// times the body: about 30 bytes per name, and such a line has at least
/// 10); the JSON API keeps at most [`crate::api::API_DOCUMENTS`]
/// documents of at most [`crate::api::API_MAX_BYTES_PER_CACHE_BYTE`] × the
/// budget (+ 64 KiB); a snapshot's buffer and its table of 4 bytes per
/// cache id. Remote write adds [`remote_write_heap_bytes`].
pub fn worst_case_heap_bytes(
    cache_bytes: usize,
    push_connections: usize,
    scrape_connections: usize,
    max_body_bytes: usize,
) -> usize {
    let page = 2 * cache_bytes + 64 * 1024;
    let per_push = PUSH_CONNECTION_MAX_BYTES + max_body_bytes + page;
    let per_scrape = SCRAPE_CONNECTION_MAX_BYTES + page;
    let push_scratch =
        8 * cache_bytes.max(max_body_bytes) + 2 * cache_bytes + max_body_bytes + 3 * max_body_bytes;
    // The renderer's order, key hashes, new series and groups (4 bytes
    // each) and a bit per id, for the most series the budget holds.
    let render_scratch = 17 * (cache_bytes / crate::cache::MIN_SERIES_BYTES + 1);
    // The JSON API's documents: shared like pages, at most API_DOCUMENTS.
    let api = crate::api::API_DOCUMENTS
        * (crate::api::API_MAX_BYTES_PER_CACHE_BYTE * cache_bytes + 64 * 1024);
    // A snapshot (--persistence-file): its buffer, and 4 bytes per id the
    // cache can hand out (records are at least 68 bytes with their id).
    let snapshot = SNAPSHOT_BUFFER_BYTES + 4 * (cache_bytes / crate::cache::MIN_SERIES_BYTES + 1);
    cache_bytes
        + push_connections * per_push
        + scrape_connections * per_scrape
        + READ_CHUNK_BYTES
        + push_scratch
        + render_scratch
        + api
        + snapshot
}

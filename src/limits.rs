//! Every fixed bound of the gateway, in one place.
//!
//! Each constant says what it bounds, its unit, and what happens when a
//! client goes past it. The bounds that operators tune (`--cache-bytes`,
//! `--max-connections`, `--ttl`, `--max-body-bytes`) are flags in
//! [`crate::config`]; the rest are fixed here. README's "Limits" table
//! lists the same numbers.
//!
//! Worst-case heap, in bytes, is about
//! `cache_bytes + max_connections × (PER_CONNECTION_MAX_BYTES + max_body +
//! page) + READ_CHUNK_BYTES + push scratch`, where `page` is the rendered
//! `/metrics` page (at most about `2 × cache_bytes` plus the self-metrics);
//! see [`worst_case_heap_bytes`].

use std::time::Duration;

/// Longest exposition line accepted on the stream protocol, newline
/// excluded. Longer lines are discarded up to their newline without being
/// buffered, and answered with an error. Also the most a stream connection
/// buffers for a line split across reads.
pub const LINE_MAX_BYTES: usize = 4096;

/// Most labels on one sample. More is rejected as a bad line.
pub const MAX_LABELS: usize = 32;

/// One read from a socket goes into a shared scratch buffer of this size;
/// complete lines are applied straight from it, so only a partial last line
/// is copied into the connection's own buffer.
pub const READ_CHUNK_BYTES: usize = 64 * 1024;

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
/// its previous response or, on the TCP port, of connecting; else it gets
/// 408 and the connection is closed. Bounds slow clients that trickle bytes
/// and silent connections that would hold slots of `--max-connections`.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// An idle keep-alive HTTP connection, or a stream connection, is closed
/// after this long without a byte received. Stream pushers that stay open
/// for days keep their connection as long as they write at least this often.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// A response that the client does not read is abandoned (connection
/// closed) after this long without progress.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A stream connection gets at most this many reads of
/// [`READ_CHUNK_BYTES`] per turn (128 KiB of lines).
pub const TURN_READS: usize = 2;

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

/// Smallest `--cache-bytes`: the index and a few series must fit.
pub const CACHE_MIN_BYTES: usize = 1024;

/// Largest `--cache-bytes`; offsets inside the cache are 32-bit.
pub const CACHE_MAX_BYTES: usize = 1 << 30;

/// Most `--max-connections`.
pub const CONNECTIONS_MAX: usize = 65_536;

/// Heap one connection may hold at most: its line or request buffer, its
/// HELP context and its queued replies (the page it is sending is shared and
/// counted once, in the renderer).
pub const PER_CONNECTION_MAX_BYTES: usize =
    LINE_MAX_BYTES + LINE_MAX_BYTES + REPLY_MAX_BYTES + REQUEST_HEAD_MAX_BYTES;

/// Most bytes the gateway's own metrics (`push_gateway_*`) take on one
/// page, with every counter at its largest. The renderer reserves this once
/// for them and shares the text with scrapers like the page (a new buffer
/// only while a slow scraper still sends the last one). A test checks the
/// bound; past it the buffer would grow once, nothing is cut.
pub const SELF_METRICS_MAX_BYTES: usize = 8 * 1024;

/// Most the renderer reserves at start-up for the page, and for each of
/// its two sort-order vectors. Budgets up to 512 KiB get room for their
/// largest page up front (no allocation on a scrape, ever); larger ones
/// grow these buffers as the pages grow (and keep them), so the address
/// space of a gateway with a large `--cache-bytes` is the budget plus what
/// its pages need, not three times the budget.
pub const RENDER_RESERVE_MAX_BYTES: usize = 1 << 20;

/// Worst-case heap of the whole gateway for a configuration, as documented
/// in README. Pages held by slow scrapers are one per distinct page, and
/// each is bounded by `2 × cache_bytes + 64 KiB` (the 64 KiB also covers
/// the response head and the [`SELF_METRICS_MAX_BYTES`] of the gateway's
/// own metrics sent with it); each connection may hold a
/// push body of `max_body_bytes`; the shared push scratch holds a protobuf
/// body's text (at most 8 times the larger of the budget and the body),
/// keys and entries of at most the budget each, and the index of the
/// body's TYPE and HELP names (at most 3 times the body: about 30 bytes per
/// name, and such a line has at least 10).
pub fn worst_case_heap_bytes(
    cache_bytes: usize,
    max_connections: usize,
    max_body_bytes: usize,
) -> usize {
    let page = 2 * cache_bytes + 64 * 1024;
    let per_connection = PER_CONNECTION_MAX_BYTES + max_body_bytes + page;
    let push_scratch =
        8 * cache_bytes.max(max_body_bytes) + 2 * cache_bytes + max_body_bytes + 3 * max_body_bytes;
    cache_bytes + max_connections * per_connection + READ_CHUNK_BYTES + push_scratch
}

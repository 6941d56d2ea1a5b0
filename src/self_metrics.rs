//! The gateway's own metrics: counters kept by the event loop and the
//! connections, rendered after the pushed families on `/metrics` (unless
//! `--no-self-metrics`). They are not counted in the cache budget.
//!
//! Every name starts with `push_gateway_`, which pushes may not use, and
//! follows Prometheus conventions (`_total` for counters, `_bytes` for
//! sizes). Memory: a fixed struct of counters; the text around the values
//! is a constant built by the compiler.

use crate::cache::Cache;
use crate::render::write_value;

/// Reasons a streamed line or an HTTP push is rejected, as labels.
pub const REASONS: [&str; 16] = [
    "syntax",
    "too_long",
    "utf8",
    "value",
    "timestamp",
    "comment",
    "too_large",
    "owned",
    "type_conflict",
    "reserved",
    "path",
    "protobuf",
    "http",
    "ttl",
    "duplicate",
    "encoding",
];

fn reason_index(reason: &str) -> usize {
    REASONS.iter().position(|r| *r == reason).unwrap_or(0)
}

/// Why the gateway closed a connection on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// Idle longest at a full budget, closed to admit a newcomer.
    Evicted = 0,
    /// A request, body, line, idle or write timeout passed.
    Timeout = 1,
}

/// Counters of what the gateway did since it started.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    pub lines_accepted: u64,
    pub lines_rejected: [u64; REASONS.len()],
    pub pushes_accepted: u64,
    pub pushes_rejected: [u64; REASONS.len()],
    pub deletes: u64,
    pub scrapes: u64,
    pub connections_accepted: u64,
    pub connections_refused: u64,
    pub connections_open: u64,
    /// Connections closed by the gateway, by listener (push, scrape) and
    /// [`Closed`] reason.
    pub connections_closed: [[u64; 2]; 2],
    pub reply_bytes_dropped: u64,
    /// Snapshots written to `--persistence-file`, and their bytes.
    pub snapshot_writes: u64,
    pub snapshot_bytes: u64,
    /// Snapshots that could not be written.
    pub snapshot_failures: u64,
    /// Remote write's counters, when `--remote-write-url` is set.
    pub remote_write: Option<crate::remote_write::Stats>,
}

impl Stats {
    pub fn line_rejected(&mut self, reason: &str) {
        self.lines_rejected[reason_index(reason)] += 1;
    }

    pub fn push_rejected(&mut self, reason: &str) {
        self.pushes_rejected[reason_index(reason)] += 1;
    }

    /// Counts a connection the gateway closed on its own.
    pub fn connection_closed(&mut self, push: bool, why: Closed) {
        self.connections_closed[usize::from(!push)][why as usize] += 1;
    }
}

/// The lines of a family labelled by reason, in the order of [`REASONS`].
// One sample per line reads better than one argument per line.
#[rustfmt::skip]
macro_rules! by_reason {
    ($name:literal) => {
        concat!(
            $name, "{reason=\"syntax\"} $\n",
            $name, "{reason=\"too_long\"} $\n",
            $name, "{reason=\"utf8\"} $\n",
            $name, "{reason=\"value\"} $\n",
            $name, "{reason=\"timestamp\"} $\n",
            $name, "{reason=\"comment\"} $\n",
            $name, "{reason=\"too_large\"} $\n",
            $name, "{reason=\"owned\"} $\n",
            $name, "{reason=\"type_conflict\"} $\n",
            $name, "{reason=\"reserved\"} $\n",
            $name, "{reason=\"path\"} $\n",
            $name, "{reason=\"protobuf\"} $\n",
            $name, "{reason=\"http\"} $\n",
            $name, "{reason=\"ttl\"} $\n",
            $name, "{reason=\"duplicate\"} $\n",
            $name, "{reason=\"encoding\"} $\n",
        )
    };
}

/// The gateway's own families as one text, with a [`VALUE`] where each
/// value goes, in the order [`write`] puts them. Nearly all of a scrape's
/// bytes are this fixed text, so it is copied in a few pieces rather than
/// assembled from names, HELP texts and labels on every scrape.
const PAGE: &str = concat!(
    "# HELP push_gateway_build_info Build information of the running push-gateway.\n",
    "# TYPE push_gateway_build_info gauge\n",
    "push_gateway_build_info{version=\"",
    env!("CARGO_PKG_VERSION"),
    "\"} 1\n",
    "# HELP push_gateway_cache_budget_bytes The cache budget (--cache-bytes).\n",
    "# TYPE push_gateway_cache_budget_bytes gauge\n",
    "push_gateway_cache_budget_bytes $\n",
    "# HELP push_gateway_cache_bytes Bytes of the cache budget in use.\n",
    "# TYPE push_gateway_cache_bytes gauge\n",
    "push_gateway_cache_bytes $\n",
    "# HELP push_gateway_connections_accepted_total Connections accepted on the push socket and the scrape port.\n",
    "# TYPE push_gateway_connections_accepted_total counter\n",
    "push_gateway_connections_accepted_total $\n",
    "# HELP push_gateway_connections_closed_total Connections the gateway closed, by listener: evicted (idle longest when its budget was full, to admit another), timeout.\n",
    "# TYPE push_gateway_connections_closed_total counter\n",
    "push_gateway_connections_closed_total{listener=\"push\",reason=\"evicted\"} $\n",
    "push_gateway_connections_closed_total{listener=\"push\",reason=\"timeout\"} $\n",
    "push_gateway_connections_closed_total{listener=\"scrape\",reason=\"evicted\"} $\n",
    "push_gateway_connections_closed_total{listener=\"scrape\",reason=\"timeout\"} $\n",
    "# HELP push_gateway_connections_open Connections open now.\n",
    "# TYPE push_gateway_connections_open gauge\n",
    "push_gateway_connections_open $\n",
    "# HELP push_gateway_connections_refused_total Connections refused: their budget was full and no connection of theirs idle enough to close.\n",
    "# TYPE push_gateway_connections_refused_total counter\n",
    "push_gateway_connections_refused_total $\n",
    "# HELP push_gateway_deletes_total Successful HTTP DELETE requests.\n",
    "# TYPE push_gateway_deletes_total counter\n",
    "push_gateway_deletes_total $\n",
    "# HELP push_gateway_evictions_total Series removed by the cache: ttl (expired), budget (evicted to make room), drained (delivered by a scrape in drain-on-scrape mode), drain_failed (undelivered after 3 scrapes).\n",
    "# TYPE push_gateway_evictions_total counter\n",
    "push_gateway_evictions_total{reason=\"budget\"} $\n",
    "push_gateway_evictions_total{reason=\"drain_failed\"} $\n",
    "push_gateway_evictions_total{reason=\"drained\"} $\n",
    "push_gateway_evictions_total{reason=\"ttl\"} $\n",
    "# HELP push_gateway_groups Groups pushed over HTTP held now.\n",
    "# TYPE push_gateway_groups gauge\n",
    "push_gateway_groups $\n",
    "# HELP push_gateway_lines_rejected_total Stream lines rejected, by reason.\n",
    "# TYPE push_gateway_lines_rejected_total counter\n",
    by_reason!("push_gateway_lines_rejected_total"),
    "# HELP push_gateway_lines_total Sample, HELP and TYPE lines accepted on stream connections.\n",
    "# TYPE push_gateway_lines_total counter\n",
    "push_gateway_lines_total $\n",
    "# HELP push_gateway_pushes_rejected_total HTTP pushes rejected, by reason.\n",
    "# TYPE push_gateway_pushes_rejected_total counter\n",
    by_reason!("push_gateway_pushes_rejected_total"),
    "# HELP push_gateway_pushes_total Successful HTTP pushes (PUT and POST).\n",
    "# TYPE push_gateway_pushes_total counter\n",
    "push_gateway_pushes_total $\n",
    "# HELP push_gateway_replies_dropped_bytes_total Error reply bytes dropped because a client did not read them.\n",
    "# TYPE push_gateway_replies_dropped_bytes_total counter\n",
    "push_gateway_replies_dropped_bytes_total $\n",
    "# HELP push_gateway_scrapes_total Pages served on /metrics.\n",
    "# TYPE push_gateway_scrapes_total counter\n",
    "push_gateway_scrapes_total $\n",
    "# HELP push_gateway_series Series held now, streamed and pushed.\n",
    "# TYPE push_gateway_series gauge\n",
    "push_gateway_series $\n",
    "# HELP push_gateway_snapshot_bytes_total Bytes of the snapshots written to --persistence-file.\n",
    "# TYPE push_gateway_snapshot_bytes_total counter\n",
    "push_gateway_snapshot_bytes_total $\n",
    "# HELP push_gateway_snapshot_failures_total Snapshots that could not be written (the previous one stays).\n",
    "# TYPE push_gateway_snapshot_failures_total counter\n",
    "push_gateway_snapshot_failures_total $\n",
    "# HELP push_gateway_snapshot_writes_total Snapshots written to --persistence-file.\n",
    "# TYPE push_gateway_snapshot_writes_total counter\n",
    "push_gateway_snapshot_writes_total $\n",
);

/// Where a value goes in [`PAGE`]. No HELP text may use it: the count of
/// values would change and [`TEMPLATE`] would fail to build.
const VALUE: u8 = b'$';

/// Fifteen unlabelled samples, four closed connection counts, four eviction
/// reasons and two families by reason.
const VALUES: usize = 15 + 4 + 4 + 2 * REASONS.len();

/// [`PAGE`] with every value 0, and where each value is in it. Most
/// counters are 0 (above all the rejection reasons), and a run of them is
/// then copied along with the text around it, in one piece.
const TEMPLATE: ([u8; PAGE.len()], [usize; VALUES]) = with_zeros(PAGE.as_bytes());
const ZEROED: &[u8] = &TEMPLATE.0;
const VALUE_AT: [usize; VALUES] = TEMPLATE.1;

const fn with_zeros<const LEN: usize, const N: usize>(page: &[u8]) -> ([u8; LEN], [usize; N]) {
    let mut text = [0; LEN];
    let mut at = [0; N];
    let mut n = 0;
    let mut i = 0;
    while i < LEN {
        text[i] = page[i];
        if page[i] == VALUE {
            text[i] = b'0';
            at[n] = i;
            n += 1;
        }
        i += 1;
    }
    assert!(n == N, "PAGE has a different number of values");
    (text, at)
}

/// Appends the gateway's own families, sorted by name.
pub fn write(out: &mut Vec<u8>, stats: &Stats, cache: &Cache) {
    let c = &cache.stats;
    let mut t = Template::default();
    let mut put = |out: &mut Vec<u8>, values: &[u64]| t.put(out, values);
    put(
        out,
        &[
            cache.capacity() as u64,
            cache.used() as u64,
            stats.connections_accepted,
        ],
    );
    put(out, stats.connections_closed.as_flattened());
    put(
        out,
        &[
            stats.connections_open,
            stats.connections_refused,
            stats.deletes,
            c.evicted_budget,
            c.drain_failed,
            c.drained,
            c.evicted_ttl,
            cache.group_count() as u64,
        ],
    );
    put(out, &stats.lines_rejected);
    put(out, &[stats.lines_accepted]);
    put(out, &stats.pushes_rejected);
    put(out, &[stats.pushes_accepted]);
    if let Some(remote) = &stats.remote_write {
        // Its families sort between the pushes' and the replies'.
        t.copy_to(out, REPLIES_AT);
        write_remote(out, remote);
    }
    t.put(
        out,
        &[
            stats.reply_bytes_dropped,
            stats.scrapes,
            cache.series_count() as u64,
            stats.snapshot_bytes,
            stats.snapshot_failures,
            stats.snapshot_writes,
        ],
    );
    debug_assert_eq!(t.next, VALUES, "fewer values than PAGE has");
    out.extend_from_slice(&ZEROED[t.copied..]);
}

/// Where [`write`] is in [`ZEROED`]: copied up to `copied`, and the
/// index of the next value.
#[derive(Default)]
struct Template {
    copied: usize,
    next: usize,
}

impl Template {
    /// Appends the text up to each of `values` and the value, copying
    /// runs of zeros with the text.
    fn put(&mut self, out: &mut Vec<u8>, values: &[u64]) {
        for &value in values {
            let at = VALUE_AT[self.next];
            self.next += 1;
            if value != 0 {
                self.copy_to(out, at);
                write_count(out, value);
                self.copied = at + 1;
            }
        }
    }

    fn copy_to(&mut self, out: &mut Vec<u8>, at: usize) {
        out.extend_from_slice(&ZEROED[self.copied..at]);
        self.copied = at;
    }
}

/// Where the replies' family starts in [`PAGE`].
const REPLIES_AT: usize = find(PAGE.as_bytes(), b"# HELP push_gateway_replies_");

const fn find(hay: &[u8], needle: &[u8]) -> usize {
    let mut i = 0;
    'outer: while i + needle.len() <= hay.len() {
        let mut j = 0;
        while j < needle.len() {
            if hay[i + j] != needle[j] {
                i += 1;
                continue 'outer;
            }
            j += 1;
        }
        return i;
    }
    panic!("not in PAGE");
}

/// The remote write families, present only when `--remote-write-url` is
/// set, with a [`VALUE`] where each value goes.
#[rustfmt::skip]
const REMOTE_PAGE: &str = concat!(
    "# HELP push_gateway_remote_write_bytes_total Bytes written to the remote write receiver, request heads and snappy bodies, retries included.\n",
    "# TYPE push_gateway_remote_write_bytes_total counter\n",
    "push_gateway_remote_write_bytes_total $\n",
    "# HELP push_gateway_remote_write_failures_total Remote write requests that failed, by reason: connect, timeout, io, response (not HTTP), server_error (5xx, retried), throttled (429, retried), rejected (other statuses, dropped), too_large (series left out of a request).\n",
    "# TYPE push_gateway_remote_write_failures_total counter\n",
    "push_gateway_remote_write_failures_total{reason=\"connect\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"timeout\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"io\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"response\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"server_error\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"throttled\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"rejected\"} $\n",
    "push_gateway_remote_write_failures_total{reason=\"too_large\"} $\n",
    "# HELP push_gateway_remote_write_last_success_timestamp_seconds Unix time of the last request the receiver accepted (0: none yet).\n",
    "# TYPE push_gateway_remote_write_last_success_timestamp_seconds gauge\n",
    "push_gateway_remote_write_last_success_timestamp_seconds $\n",
    "# HELP push_gateway_remote_write_requests_total Remote write requests the receiver accepted (2xx).\n",
    "# TYPE push_gateway_remote_write_requests_total counter\n",
    "push_gateway_remote_write_requests_total $\n",
    "# HELP push_gateway_remote_write_retries_total Remote write requests sent again after a failure.\n",
    "# TYPE push_gateway_remote_write_retries_total counter\n",
    "push_gateway_remote_write_retries_total $\n",
    "# HELP push_gateway_remote_write_samples_total Samples in the accepted remote write requests, staleness markers included.\n",
    "# TYPE push_gateway_remote_write_samples_total counter\n",
    "push_gateway_remote_write_samples_total $\n",
);

fn write_remote(out: &mut Vec<u8>, r: &crate::remote_write::Stats) {
    let f = &r.failures;
    let values = [
        r.bytes, f[0], f[1], f[2], f[3], f[4], f[5], f[6], f[7], 0, r.requests, r.retries,
        r.samples,
    ];
    for (i, piece) in REMOTE_PAGE.split(VALUE as char).enumerate() {
        if i == 10 {
            write_value(out, r.last_success);
        } else if i > 0 {
            write_count(out, values[i - 1]);
        }
        out.extend_from_slice(piece.as_bytes());
    }
}

/// Writes `n` as every other sample value is written (above 10^15 in float
/// form). Single digits, common for gauges like open connections, skip the
/// float checks and digit buffer of [`write_value`].
fn write_count(out: &mut Vec<u8>, n: u64) {
    if n < 10 {
        out.push(b'0' + n as u8);
    } else {
        write_value(out, n as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::SELF_METRICS_MAX_BYTES;

    #[test]
    fn families_are_sorted_and_well_formed() {
        let cache = Cache::new(4096);
        let mut stats = Stats::default();
        stats.line_rejected("timestamp");
        stats.line_rejected("not-a-reason");
        let mut out = Vec::new();
        write(&mut out, &stats, &cache);
        let page = String::from_utf8(out).unwrap();
        let names: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .map(|l| l.split(' ').next().unwrap())
            .collect();
        let mut sorted = names.clone();
        sorted.sort_unstable();
        assert_eq!(names, sorted);
        assert!(page.contains("push_gateway_lines_rejected_total{reason=\"timestamp\"} 1\n"));
        assert!(page.contains("push_gateway_lines_rejected_total{reason=\"syntax\"} 1\n"));
        assert!(page.contains("push_gateway_cache_budget_bytes 4096\n"));
        for line in page.lines() {
            assert!(
                crate::exposition::parse_line(line.as_bytes()).is_ok(),
                "{line}"
            );
        }
    }

    #[test]
    fn the_largest_counters_fit_the_reserved_bytes() {
        let mut cache = Cache::new(4096);
        let most = Stats {
            lines_accepted: u64::MAX,
            lines_rejected: [u64::MAX; REASONS.len()],
            pushes_accepted: u64::MAX,
            pushes_rejected: [u64::MAX; REASONS.len()],
            deletes: u64::MAX,
            scrapes: u64::MAX,
            connections_accepted: u64::MAX,
            connections_refused: u64::MAX,
            connections_open: u64::MAX,
            connections_closed: [[u64::MAX; 2]; 2],
            reply_bytes_dropped: u64::MAX,
            snapshot_writes: u64::MAX,
            snapshot_bytes: u64::MAX,
            snapshot_failures: u64::MAX,
            remote_write: Some(crate::remote_write::Stats {
                requests: u64::MAX,
                samples: u64::MAX,
                bytes: u64::MAX,
                retries: u64::MAX,
                failures: [u64::MAX; crate::remote_write::FAILURES.len()],
                last_success: 1.7976931348623157e308,
            }),
        };
        cache.stats.evicted_ttl = u64::MAX;
        cache.stats.evicted_budget = u64::MAX;
        cache.stats.drained = u64::MAX;
        cache.stats.drain_failed = u64::MAX;
        let mut out = Vec::new();
        write(&mut out, &most, &cache);
        // The four values read from the cache (budget, bytes, groups,
        // series) are short here; allow each its longest form.
        let longest = "1.8446744073709552e19".len();
        assert!(
            out.len() + 4 * longest <= SELF_METRICS_MAX_BYTES,
            "{}",
            out.len()
        );
    }

    /// Every kind of value in one state: zeros between other values, single
    /// digits, integers up to 10^15 and the float form above it.
    fn mixed() -> (Stats, Cache) {
        let mut stats = Stats {
            lines_accepted: 1_000_000_000_000_000,
            pushes_accepted: 999_999_999_999_999,
            deletes: 3,
            scrapes: u64::MAX,
            connections_accepted: 123_456_789,
            connections_refused: (1 << 53) + 1,
            connections_open: 42,
            connections_closed: [[7, 0], [123_456, 10]],
            reply_bytes_dropped: 12_345_678_901_234_567,
            snapshot_writes: 12,
            snapshot_bytes: 34_567,
            snapshot_failures: 0,
            ..Stats::default()
        };
        for (i, (lines, pushes)) in stats
            .lines_rejected
            .iter_mut()
            .zip(&mut stats.pushes_rejected)
            .enumerate()
        {
            *lines = i as u64 * 7 + 1;
            *pushes = 10u64.pow(i as u32);
        }
        let mut cache = Cache::new(4096);
        cache.stats.evicted_ttl = 5;
        cache.stats.evicted_budget = 1 << 60;
        cache.stats.drained = 10;
        let f = crate::cache::Family {
            name: "a",
            kind: crate::exposition::MetricType::Gauge,
            help: None,
        };
        cache.set(&f, b"a{n=\"1\"}", 1.0, 0, 1000).unwrap();
        cache.set(&f, b"a{n=\"2\"}", 1.0, 0, 1000).unwrap();
        let g = cache.group_open(b"job=\"j\"", 0, 5000).unwrap();
        cache.group_set(g, &f, b"a{job=\"j\"}", 5.0, 0).unwrap();
        cache.group_close(g, 0, 5000, 100.0);
        (stats, cache)
    }

    /// The page as it was written family by family before it became a
    /// template; `USED` and `VERSION` depend on the cache layout and the
    /// crate version.
    const MIXED_PAGE: &str = r#"# HELP push_gateway_build_info Build information of the running push-gateway.
# TYPE push_gateway_build_info gauge
push_gateway_build_info{version="VERSION"} 1
# HELP push_gateway_cache_budget_bytes The cache budget (--cache-bytes).
# TYPE push_gateway_cache_budget_bytes gauge
push_gateway_cache_budget_bytes 4096
# HELP push_gateway_cache_bytes Bytes of the cache budget in use.
# TYPE push_gateway_cache_bytes gauge
push_gateway_cache_bytes USED
# HELP push_gateway_connections_accepted_total Connections accepted on the push socket and the scrape port.
# TYPE push_gateway_connections_accepted_total counter
push_gateway_connections_accepted_total 123456789
# HELP push_gateway_connections_closed_total Connections the gateway closed, by listener: evicted (idle longest when its budget was full, to admit another), timeout.
# TYPE push_gateway_connections_closed_total counter
push_gateway_connections_closed_total{listener="push",reason="evicted"} 7
push_gateway_connections_closed_total{listener="push",reason="timeout"} 0
push_gateway_connections_closed_total{listener="scrape",reason="evicted"} 123456
push_gateway_connections_closed_total{listener="scrape",reason="timeout"} 10
# HELP push_gateway_connections_open Connections open now.
# TYPE push_gateway_connections_open gauge
push_gateway_connections_open 42
# HELP push_gateway_connections_refused_total Connections refused: their budget was full and no connection of theirs idle enough to close.
# TYPE push_gateway_connections_refused_total counter
push_gateway_connections_refused_total 9.007199254740992e15
# HELP push_gateway_deletes_total Successful HTTP DELETE requests.
# TYPE push_gateway_deletes_total counter
push_gateway_deletes_total 3
# HELP push_gateway_evictions_total Series removed by the cache: ttl (expired), budget (evicted to make room), drained (delivered by a scrape in drain-on-scrape mode), drain_failed (undelivered after 3 scrapes).
# TYPE push_gateway_evictions_total counter
push_gateway_evictions_total{reason="budget"} 1.152921504606847e18
push_gateway_evictions_total{reason="drain_failed"} 0
push_gateway_evictions_total{reason="drained"} 10
push_gateway_evictions_total{reason="ttl"} 5
# HELP push_gateway_groups Groups pushed over HTTP held now.
# TYPE push_gateway_groups gauge
push_gateway_groups 1
# HELP push_gateway_lines_rejected_total Stream lines rejected, by reason.
# TYPE push_gateway_lines_rejected_total counter
push_gateway_lines_rejected_total{reason="syntax"} 1
push_gateway_lines_rejected_total{reason="too_long"} 8
push_gateway_lines_rejected_total{reason="utf8"} 15
push_gateway_lines_rejected_total{reason="value"} 22
push_gateway_lines_rejected_total{reason="timestamp"} 29
push_gateway_lines_rejected_total{reason="comment"} 36
push_gateway_lines_rejected_total{reason="too_large"} 43
push_gateway_lines_rejected_total{reason="owned"} 50
push_gateway_lines_rejected_total{reason="type_conflict"} 57
push_gateway_lines_rejected_total{reason="reserved"} 64
push_gateway_lines_rejected_total{reason="path"} 71
push_gateway_lines_rejected_total{reason="protobuf"} 78
push_gateway_lines_rejected_total{reason="http"} 85
push_gateway_lines_rejected_total{reason="ttl"} 92
push_gateway_lines_rejected_total{reason="duplicate"} 99
push_gateway_lines_rejected_total{reason="encoding"} 106
# HELP push_gateway_lines_total Sample, HELP and TYPE lines accepted on stream connections.
# TYPE push_gateway_lines_total counter
push_gateway_lines_total 1e15
# HELP push_gateway_pushes_rejected_total HTTP pushes rejected, by reason.
# TYPE push_gateway_pushes_rejected_total counter
push_gateway_pushes_rejected_total{reason="syntax"} 1
push_gateway_pushes_rejected_total{reason="too_long"} 10
push_gateway_pushes_rejected_total{reason="utf8"} 100
push_gateway_pushes_rejected_total{reason="value"} 1000
push_gateway_pushes_rejected_total{reason="timestamp"} 10000
push_gateway_pushes_rejected_total{reason="comment"} 100000
push_gateway_pushes_rejected_total{reason="too_large"} 1000000
push_gateway_pushes_rejected_total{reason="owned"} 10000000
push_gateway_pushes_rejected_total{reason="type_conflict"} 100000000
push_gateway_pushes_rejected_total{reason="reserved"} 1000000000
push_gateway_pushes_rejected_total{reason="path"} 10000000000
push_gateway_pushes_rejected_total{reason="protobuf"} 100000000000
push_gateway_pushes_rejected_total{reason="http"} 1000000000000
push_gateway_pushes_rejected_total{reason="ttl"} 10000000000000
push_gateway_pushes_rejected_total{reason="duplicate"} 100000000000000
push_gateway_pushes_rejected_total{reason="encoding"} 1e15
# HELP push_gateway_pushes_total Successful HTTP pushes (PUT and POST).
# TYPE push_gateway_pushes_total counter
push_gateway_pushes_total 999999999999999
# HELP push_gateway_replies_dropped_bytes_total Error reply bytes dropped because a client did not read them.
# TYPE push_gateway_replies_dropped_bytes_total counter
push_gateway_replies_dropped_bytes_total 1.2345678901234568e16
# HELP push_gateway_scrapes_total Pages served on /metrics.
# TYPE push_gateway_scrapes_total counter
push_gateway_scrapes_total 1.8446744073709552e19
# HELP push_gateway_series Series held now, streamed and pushed.
# TYPE push_gateway_series gauge
push_gateway_series 3
# HELP push_gateway_snapshot_bytes_total Bytes of the snapshots written to --persistence-file.
# TYPE push_gateway_snapshot_bytes_total counter
push_gateway_snapshot_bytes_total 34567
# HELP push_gateway_snapshot_failures_total Snapshots that could not be written (the previous one stays).
# TYPE push_gateway_snapshot_failures_total counter
push_gateway_snapshot_failures_total 0
# HELP push_gateway_snapshot_writes_total Snapshots written to --persistence-file.
# TYPE push_gateway_snapshot_writes_total counter
push_gateway_snapshot_writes_total 12
"#;

    fn expected(page: &str, cache: &Cache) -> String {
        page.replace("USED", &cache.used().to_string())
            .replace("VERSION", env!("CARGO_PKG_VERSION"))
    }

    #[test]
    fn the_page_is_byte_for_byte_the_same() {
        let (stats, cache) = mixed();
        let mut out = Vec::new();
        write(&mut out, &stats, &cache);
        assert_eq!(String::from_utf8_lossy(&out), expected(MIXED_PAGE, &cache));

        // All zeros: the template alone, but for the budget and its use.
        let cache = Cache::new(4096);
        let zeros: String = MIXED_PAGE
            .lines()
            .map(|line| match line.rsplit_once(' ') {
                Some((sample, _)) if !line.starts_with('#') => match sample {
                    "push_gateway_build_info{version=\"VERSION\"}" => format!("{line}\n"),
                    "push_gateway_cache_budget_bytes" => format!("{sample} 4096\n"),
                    "push_gateway_cache_bytes" => format!("{sample} USED\n"),
                    _ => format!("{sample} 0\n"),
                },
                _ => format!("{line}\n"),
            })
            .collect();
        out.clear();
        write(&mut out, &Stats::default(), &cache);
        assert_eq!(String::from_utf8_lossy(&out), expected(&zeros, &cache));
    }

    /// With remote write on, its families go between the pushes' and the
    /// replies', in order, and the rest of the page is as without it.
    #[test]
    fn remote_write_families() {
        let (mut stats, cache) = mixed();
        stats.remote_write = Some(crate::remote_write::Stats {
            requests: 3,
            samples: 120,
            bytes: 4567,
            retries: 2,
            failures: [1, 2, 0, 0, 5, 6, 7, 0],
            last_success: 1700000000.5,
        });
        let mut out = Vec::new();
        write(&mut out, &stats, &cache);
        let page = String::from_utf8(out).unwrap();
        let remote: String = page
            .lines()
            .filter(|l| l.contains("remote_write"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(
            remote,
            r#"# HELP push_gateway_remote_write_bytes_total Bytes written to the remote write receiver, request heads and snappy bodies, retries included.
# TYPE push_gateway_remote_write_bytes_total counter
push_gateway_remote_write_bytes_total 4567
# HELP push_gateway_remote_write_failures_total Remote write requests that failed, by reason: connect, timeout, io, response (not HTTP), server_error (5xx, retried), throttled (429, retried), rejected (other statuses, dropped), too_large (series left out of a request).
# TYPE push_gateway_remote_write_failures_total counter
push_gateway_remote_write_failures_total{reason="connect"} 1
push_gateway_remote_write_failures_total{reason="timeout"} 2
push_gateway_remote_write_failures_total{reason="io"} 0
push_gateway_remote_write_failures_total{reason="response"} 0
push_gateway_remote_write_failures_total{reason="server_error"} 5
push_gateway_remote_write_failures_total{reason="throttled"} 6
push_gateway_remote_write_failures_total{reason="rejected"} 7
push_gateway_remote_write_failures_total{reason="too_large"} 0
# HELP push_gateway_remote_write_last_success_timestamp_seconds Unix time of the last request the receiver accepted (0: none yet).
# TYPE push_gateway_remote_write_last_success_timestamp_seconds gauge
push_gateway_remote_write_last_success_timestamp_seconds 1700000000.5
# HELP push_gateway_remote_write_requests_total Remote write requests the receiver accepted (2xx).
# TYPE push_gateway_remote_write_requests_total counter
push_gateway_remote_write_requests_total 3
# HELP push_gateway_remote_write_retries_total Remote write requests sent again after a failure.
# TYPE push_gateway_remote_write_retries_total counter
push_gateway_remote_write_retries_total 2
# HELP push_gateway_remote_write_samples_total Samples in the accepted remote write requests, staleness markers included.
# TYPE push_gateway_remote_write_samples_total counter
push_gateway_remote_write_samples_total 120
"#
        );
        let without: String = page
            .lines()
            .filter(|l| !l.contains("remote_write"))
            .map(|l| format!("{l}\n"))
            .collect();
        assert_eq!(without, expected(MIXED_PAGE, &cache));
        let names: Vec<&str> = page
            .lines()
            .filter_map(|l| l.strip_prefix("# TYPE "))
            .collect();
        assert!(names.is_sorted(), "{names:?}");
    }

    #[test]
    fn the_reason_labels_follow_reasons() {
        let mut out = Vec::new();
        write(&mut out, &Stats::default(), &Cache::new(4096));
        let page = String::from_utf8(out).unwrap();
        for family in [
            "push_gateway_lines_rejected_total",
            "push_gateway_pushes_rejected_total",
        ] {
            let labels: Vec<&str> = page
                .lines()
                .filter_map(|l| l.strip_prefix(family)?.strip_prefix("{reason=\""))
                .filter_map(|l| l.split('"').next())
                .collect();
            assert_eq!(labels, REASONS, "{family}");
        }
    }
}

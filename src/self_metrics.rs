//! The gateway's own metrics: counters kept by the event loop and the
//! connections, rendered after the pushed families on `/metrics` (unless
//! `--no-self-metrics`). They are not counted in the cache budget.
//!
//! Every name starts with `push_gateway_`, which pushes may not use, and
//! follows Prometheus conventions (`_total` for counters, `_bytes` for
//! sizes). Memory: a fixed struct of counters.

use crate::cache::Cache;
use crate::exposition::MetricType;
use crate::render::{write_family_header, write_value};

/// Reasons a streamed line or an HTTP push is rejected, as labels.
pub const REASONS: [&str; 14] = [
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
];

fn reason_index(reason: &str) -> usize {
    REASONS.iter().position(|r| *r == reason).unwrap_or(0)
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
    pub reply_bytes_dropped: u64,
}

impl Stats {
    pub fn line_rejected(&mut self, reason: &str) {
        self.lines_rejected[reason_index(reason)] += 1;
    }

    pub fn push_rejected(&mut self, reason: &str) {
        self.pushes_rejected[reason_index(reason)] += 1;
    }
}

fn gauge(out: &mut Vec<u8>, name: &str, help: &str, value: f64) {
    write_family_header(out, name.as_bytes(), help.as_bytes(), MetricType::Gauge);
    sample(out, name, None, value);
}

fn counter(out: &mut Vec<u8>, name: &str, help: &str, value: u64) {
    write_family_header(out, name.as_bytes(), help.as_bytes(), MetricType::Counter);
    sample(out, name, None, value as f64);
}

fn sample(out: &mut Vec<u8>, name: &str, label: Option<(&str, &str)>, value: f64) {
    out.extend_from_slice(name.as_bytes());
    if let Some((l, v)) = label {
        out.push(b'{');
        out.extend_from_slice(l.as_bytes());
        out.extend_from_slice(b"=\"");
        out.extend_from_slice(v.as_bytes());
        out.extend_from_slice(b"\"}");
    }
    out.push(b' ');
    write_value(out, value);
    out.push(b'\n');
}

fn by_reason(out: &mut Vec<u8>, name: &str, help: &str, counts: &[u64]) {
    write_family_header(out, name.as_bytes(), help.as_bytes(), MetricType::Counter);
    for (reason, n) in REASONS.iter().zip(counts) {
        sample(out, name, Some(("reason", reason)), *n as f64);
    }
}

/// Appends the gateway's own families, sorted by name.
pub fn write(out: &mut Vec<u8>, stats: &Stats, cache: &Cache) {
    let c = &cache.stats;
    sample_info(out);
    gauge(
        out,
        "push_gateway_cache_budget_bytes",
        "The cache budget (--cache-bytes).",
        cache.capacity() as f64,
    );
    gauge(
        out,
        "push_gateway_cache_bytes",
        "Bytes of the cache budget in use.",
        cache.used() as f64,
    );
    counter(
        out,
        "push_gateway_connections_accepted_total",
        "Connections accepted on the push socket and the scrape port.",
        stats.connections_accepted,
    );
    gauge(
        out,
        "push_gateway_connections_open",
        "Connections open now.",
        stats.connections_open as f64,
    );
    counter(
        out,
        "push_gateway_connections_refused_total",
        "Connections refused because --max-connections were open.",
        stats.connections_refused,
    );
    counter(
        out,
        "push_gateway_deletes_total",
        "Successful HTTP DELETE requests.",
        stats.deletes,
    );
    write_family_header(
        out,
        b"push_gateway_evictions_total",
        b"Series removed by the cache: ttl (expired), budget (evicted to make room), drained (delivered by a scrape in drain-on-scrape mode), drain_failed (undelivered after 3 scrapes).",
        MetricType::Counter,
    );
    sample(
        out,
        "push_gateway_evictions_total",
        Some(("reason", "budget")),
        c.evicted_budget as f64,
    );
    sample(
        out,
        "push_gateway_evictions_total",
        Some(("reason", "drain_failed")),
        c.drain_failed as f64,
    );
    sample(
        out,
        "push_gateway_evictions_total",
        Some(("reason", "drained")),
        c.drained as f64,
    );
    sample(
        out,
        "push_gateway_evictions_total",
        Some(("reason", "ttl")),
        c.evicted_ttl as f64,
    );
    gauge(
        out,
        "push_gateway_groups",
        "Groups pushed over HTTP held now.",
        cache.group_count() as f64,
    );
    by_reason(
        out,
        "push_gateway_lines_rejected_total",
        "Stream lines rejected, by reason.",
        &stats.lines_rejected,
    );
    counter(
        out,
        "push_gateway_lines_total",
        "Sample, HELP and TYPE lines accepted on stream connections.",
        stats.lines_accepted,
    );
    by_reason(
        out,
        "push_gateway_pushes_rejected_total",
        "HTTP pushes rejected, by reason.",
        &stats.pushes_rejected,
    );
    counter(
        out,
        "push_gateway_pushes_total",
        "Successful HTTP pushes (PUT and POST).",
        stats.pushes_accepted,
    );
    counter(
        out,
        "push_gateway_replies_dropped_bytes_total",
        "Error reply bytes dropped because a client did not read them.",
        stats.reply_bytes_dropped,
    );
    counter(
        out,
        "push_gateway_scrapes_total",
        "Pages served on /metrics.",
        stats.scrapes,
    );
    gauge(
        out,
        "push_gateway_series",
        "Series held now, streamed and pushed.",
        cache.series_count() as f64,
    );
}

fn sample_info(out: &mut Vec<u8>) {
    write_family_header(
        out,
        b"push_gateway_build_info",
        b"Build information of the running push-gateway.",
        MetricType::Gauge,
    );
    sample(
        out,
        "push_gateway_build_info",
        Some(("version", env!("CARGO_PKG_VERSION"))),
        1.0,
    );
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
            reply_bytes_dropped: u64::MAX,
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
}

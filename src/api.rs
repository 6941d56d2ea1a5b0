//! The Pushgateway's JSON API: `GET /api/v1/status` and
//! `GET /api/v1/metrics`, in the Pushgateway's shape
//! (`{"status":"success","data":...}`), on the socket and the TCP port.
//!
//! `/api/v1/metrics` lists one object per pushed group, sorted by its
//! grouping labels: `labels`, `last_push_successful`, and per family its
//! `time_stamp` (the group's last push), `type`, `help` and `metrics`,
//! values as strings in Go's formatting (`fmt.Sprint`), summaries with
//! `quantiles`/`count`/`sum`, histograms with `buckets`/`count`/`sum`, and
//! the group's `push_time_seconds` and `push_failure_time_seconds`. Object
//! keys are sorted as Go's encoder sorts them. Series pushed on the stream
//! protocol belong to no group and are not listed.
//!
//! # Memory
//! The status document is rendered once at start-up (flags are fixed).
//! The metrics document is rendered into one reused buffer, again only
//! when the cache changed, and shared with senders like the page; it is
//! bounded by [`API_MAX_BYTES_PER_CACHE_BYTE`] × `--cache-bytes` (plus
//! 64 KiB): a larger document is refused with a 500 that points to
//! `/metrics`. While a slow reader holds the previous document, a new one
//! is rendered into a fresh buffer; at most [`API_DOCUMENTS`] exist, a
//! request needing one more gets 503.

use std::io::Write as _;
use std::rc::{Rc, Weak};

use crate::cache::Cache;
use crate::config::Config;
use crate::exposition::MetricType;
use crate::render::compare_keys;

/// The metrics document may be this many times `--cache-bytes` (plus
/// 64 KiB). A series costs at least 60 bytes in the cache and a few
/// dozen in JSON; the factor leaves room for groups' own families and for
/// labels and HELP texts repeated in every group that has them.
pub const API_MAX_BYTES_PER_CACHE_BYTE: usize = 8;

/// Metrics documents that may exist at once: the current one and one still
/// being sent to a slow reader.
pub const API_DOCUMENTS: usize = 2;

const PUSH_TIME_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway succeeded.";
const PUSH_FAILURE_HELP: &str =
    "Last Unix time when changing this group in the Pushgateway failed.";

/// Why a metrics document cannot be served now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiError {
    /// Over the bound: 500.
    TooLarge,
    /// Every document buffer is held by a slow reader: 503.
    Busy,
}

pub struct Api {
    status: Rc<Vec<u8>>,
    metrics: Rc<Vec<u8>>,
    previous: Weak<Vec<u8>>,
    /// The cache's (generation, layout) that `metrics` shows.
    shows: Option<(u64, u64)>,
    max_bytes: usize,
    groups: Vec<u32>,
    series: Vec<u32>,
}

impl Api {
    /// `unix_now`: the start time, in seconds since the epoch.
    pub fn new(config: &Config, unix_now: f64) -> Api {
        Api {
            status: Rc::new(status_document(config, unix_now)),
            metrics: Rc::new(Vec::new()),
            previous: Weak::new(),
            shows: None,
            max_bytes: config
                .cache_bytes
                .saturating_mul(API_MAX_BYTES_PER_CACHE_BYTE)
                .saturating_add(64 * 1024),
            groups: Vec::new(),
            series: Vec::new(),
        }
    }

    /// `/api/v1/status`.
    pub fn status(&self) -> Rc<Vec<u8>> {
        Rc::clone(&self.status)
    }

    /// `/api/v1/metrics`, rendered again only if the cache changed.
    ///
    /// # Errors
    /// [`ApiError`] when the document is over its bound or no buffer is free.
    pub fn metrics(&mut self, cache: &Cache) -> Result<Rc<Vec<u8>>, ApiError> {
        let shows = Some((cache.generation(), cache.layout()));
        if self.shows == shows {
            return Ok(Rc::clone(&self.metrics));
        }
        if Rc::get_mut(&mut self.metrics).is_none() {
            if self.previous.upgrade().is_some() {
                return Err(ApiError::Busy);
            }
            self.previous = Rc::downgrade(&self.metrics);
            self.metrics = Rc::new(Vec::new());
        }
        let out = Rc::make_mut(&mut self.metrics);
        out.clear();
        self.shows = None;
        let fits = write_metrics(
            cache,
            &mut self.groups,
            &mut self.series,
            out,
            self.max_bytes,
        );
        if !fits {
            // Keep the capacity bounded too.
            out.clear();
            out.shrink_to(self.max_bytes);
            return Err(ApiError::TooLarge);
        }
        self.shows = shows;
        Ok(Rc::clone(&self.metrics))
    }
}

/// The error document of the Prometheus APIs.
pub fn error_document(error: ApiError) -> &'static str {
    match error {
        ApiError::TooLarge => {
            "{\"status\":\"error\",\"errorType\":\"internal\",\"error\":\"the metrics document is over its bound (8 x --cache-bytes): read /metrics instead\"}"
        }
        ApiError::Busy => {
            "{\"status\":\"error\",\"errorType\":\"unavailable\",\"error\":\"busy sending earlier documents to slow readers: retry shortly\"}"
        }
    }
}

fn status_document(config: &Config, unix_now: f64) -> Vec<u8> {
    let mut out = Vec::with_capacity(1024);
    out.extend_from_slice(b"{\"status\":\"success\",\"data\":{\"build_information\":{");
    out.extend_from_slice(b"\"branch\":\"\",\"buildDate\":\"\",\"buildUser\":\"\",\"goVersion\":\"\",\"revision\":\"\",\"version\":");
    json_string(&mut out, env!("CARGO_PKG_VERSION").as_bytes());
    out.extend_from_slice(b"},\"flags\":{");
    let ms = |d: std::time::Duration| format!("{}ms", d.as_millis());
    let flags: [(&str, String); 11] = [
        ("cache-bytes", config.cache_bytes.to_string()),
        ("drain-on-scrape", config.drain_on_scrape.to_string()),
        ("listen", config.listen.to_string()),
        ("max-body-bytes", config.max_body_bytes.to_string()),
        (
            "max-push-connections",
            config.max_push_connections.to_string(),
        ),
        (
            "max-scrape-connections",
            config.max_scrape_connections.to_string(),
        ),
        ("max-ttl", ms(config.max_ttl)),
        ("self-metrics", config.self_metrics.to_string()),
        ("socket", config.socket.display().to_string()),
        ("socket-mode", format!("{:o}", config.socket_mode)),
        ("ttl", ms(config.ttl)),
    ];
    for (i, (name, value)) in flags.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        json_string(&mut out, name.as_bytes());
        out.push(b':');
        json_string(&mut out, value.as_bytes());
    }
    out.extend_from_slice(b"},\"start_time\":");
    write_time(&mut out, unix_now);
    out.extend_from_slice(b"}}");
    out
}

/// Writes the metrics document; false when it passed `max` bytes.
fn write_metrics(
    cache: &Cache,
    groups: &mut Vec<u32>,
    series: &mut Vec<u32>,
    out: &mut Vec<u8>,
    max: usize,
) -> bool {
    groups.clear();
    cache.group_ids(groups);
    groups.sort_unstable_by(|&a, &b| cache.group(a).labels.cmp(cache.group(b).labels));
    out.extend_from_slice(b"{\"status\":\"success\",\"data\":[");
    for (i, &g) in groups.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        series.clear();
        cache.group_series(g, series);
        series.sort_unstable_by(|&a, &b| {
            let (sa, sb) = (cache.series(a), cache.series(b));
            let (fa, fb) = (cache.family(sa.family), cache.family(sb.family));
            fa.name
                .cmp(fb.name)
                .then_with(|| compare_keys(fa.name, sa.key, sb.key))
        });
        write_group(cache, g, series, out);
        if out.len() > max {
            return false;
        }
    }
    out.extend_from_slice(b"]}");
    out.len() <= max
}

/// One group's object. Its keys are family names plus `labels` and
/// `last_push_successful`, all sorted (Go sorts a map's keys).
fn write_group(cache: &Cache, g: u32, series: &[u32], out: &mut Vec<u8>) {
    let group = cache.group(g);
    let changed = group.push_time.max(group.failure_time);
    let mut extra: [(&[u8], Extra); 4] = [
        (b"labels", Extra::Labels),
        (b"last_push_successful", Extra::Success),
        (
            b"push_failure_time_seconds",
            Extra::Time(group.failure_time, PUSH_FAILURE_HELP),
        ),
        (
            b"push_time_seconds",
            Extra::Time(group.push_time, PUSH_TIME_HELP),
        ),
    ];
    extra.sort_by(|a, b| a.0.cmp(b.0));
    let mut next_extra = 0;
    let mut first = true;
    let mut key = |out: &mut Vec<u8>, name: &[u8]| {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
    };
    let mut put_extra = |out: &mut Vec<u8>,
                         upto: Option<&[u8]>,
                         key: &mut dyn FnMut(&mut Vec<u8>, &[u8])| {
        while next_extra < extra.len() && upto.is_none_or(|name| extra[next_extra].0 < name) {
            let (name, what) = extra[next_extra];
            next_extra += 1;
            key(out, name);
            match what {
                Extra::Labels => {
                    // The grouping key as pushed: the `instance=""` the
                    // cache keeps for a path without one is left out.
                    out.push(b'{');
                    let implicit = Pairs(group.labels).any(|p| p == (&b"instance"[..], &b""[..]));
                    write_label_pairs(out, group.labels, &mut true, |n| {
                        !(implicit && n == b"instance")
                    });
                    out.push(b'}');
                }
                Extra::Success => out.extend_from_slice(if group.failure_time <= group.push_time {
                    b"true"
                } else {
                    b"false"
                }),
                Extra::Time(value, help) => {
                    write_family_head(out, changed, MetricType::Gauge, help.as_bytes());
                    out.extend_from_slice(b"{\"labels\":{");
                    write_group_labels(out, group.labels);
                    out.extend_from_slice(b"},\"value\":\"");
                    write_go_float(out, value);
                    out.extend_from_slice(b"\"}]}");
                }
            }
        }
    };
    out.push(b'{');
    let mut at = 0;
    while at < series.len() {
        let family_id = cache.series(series[at]).family;
        let end = at
            + series[at..]
                .iter()
                .take_while(|&&s| cache.series(s).family == family_id)
                .count();
        let family = cache.family(family_id);
        put_extra(out, Some(family.name), &mut key);
        key(out, family.name);
        write_family_head(out, group.push_time, family.kind, family.help);
        write_family_metrics(cache, family.name, family.kind, &series[at..end], out);
        out.extend_from_slice(b"]}");
        at = end;
    }
    put_extra(out, None, &mut key);
    out.push(b'}');
}

#[derive(Clone, Copy)]
enum Extra {
    Labels,
    Success,
    Time(f64, &'static str),
}

/// `{"time_stamp":…,"type":…,"help":…,"metrics":[` (help left out when
/// empty, as Go's `omitempty` does).
fn write_family_head(out: &mut Vec<u8>, time: f64, kind: MetricType, help: &[u8]) {
    out.extend_from_slice(b"{\"time_stamp\":");
    write_time(out, time);
    out.extend_from_slice(b",\"type\":\"");
    out.extend_from_slice(match kind {
        MetricType::Counter => b"COUNTER",
        MetricType::Gauge => b"GAUGE",
        MetricType::Summary => b"SUMMARY",
        MetricType::Histogram => b"HISTOGRAM",
        _ => b"UNTYPED",
    });
    out.push(b'"');
    if !help.is_empty() {
        out.extend_from_slice(b",\"help\":");
        json_escaped_text(out, help);
    }
    out.extend_from_slice(b",\"metrics\":[");
}

/// The `metrics` entries of one family's series (sorted as on the page:
/// a summary's or histogram's samples of one label set are adjacent).
fn write_family_metrics(
    cache: &Cache,
    name: &[u8],
    kind: MetricType,
    series: &[u32],
    out: &mut Vec<u8>,
) {
    let complex = matches!(kind, MetricType::Summary | MetricType::Histogram);
    let mut i = 0;
    let mut first = true;
    while i < series.len() {
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        let s = cache.series(series[i]);
        let (_, labels) = split_key(s.key);
        if !complex {
            out.extend_from_slice(b"{\"labels\":{");
            write_label_pairs(out, labels, &mut true, |_| true);
            out.extend_from_slice(b"},\"value\":\"");
            write_go_float(out, s.value);
            out.extend_from_slice(b"\"}");
            i += 1;
            continue;
        }
        // One metric: every series with the same labels but `le` /
        // `quantile`.
        let same = |other: &[u8]| {
            Pairs(split_key(other).1)
                .filter(|(n, _)| !is_bound(n))
                .eq(Pairs(labels).filter(|(n, _)| !is_bound(n)))
        };
        let end = i + series[i..]
            .iter()
            .take_while(|&&id| same(cache.series(id).key))
            .count();
        let (mut sum, mut count) = (0.0, 0.0);
        let bounds_key: &[u8] = if kind == MetricType::Histogram {
            b"buckets"
        } else {
            b"quantiles"
        };
        out.push(b'{');
        let mut bounds = Vec::new();
        for &id in &series[i..end] {
            let s = cache.series(id);
            let (sample, labels) = split_key(s.key);
            match sample.strip_prefix(name) {
                Some(b"_sum") => sum = s.value,
                Some(b"_count") => count = s.value,
                _ => {
                    let bound = Pairs(labels)
                        .find(|(n, _)| is_bound(n))
                        .map(|(_, v)| v)
                        .unwrap_or(b"");
                    bounds.push((bound, s.value));
                }
            }
        }
        // Go sorts the map's keys as strings ("+Inf" < "0.1" < "1").
        let mut keyed: Vec<(Vec<u8>, f64)> = bounds
            .iter()
            .map(|(bound, value)| {
                let mut key = Vec::new();
                match std::str::from_utf8(bound).ok().and_then(parse_bound) {
                    Some(b) => write_go_float(&mut key, b),
                    None => key.extend_from_slice(bound),
                }
                (key, *value)
            })
            .collect();
        keyed.sort_by(|a, b| a.0.cmp(&b.0));
        let write_bounds = |out: &mut Vec<u8>| {
            json_string(out, bounds_key);
            out.extend_from_slice(b":{");
            for (j, (key, value)) in keyed.iter().enumerate() {
                if j > 0 {
                    out.push(b',');
                }
                json_escaped_text(out, key);
                out.extend_from_slice(b":\"");
                if kind == MetricType::Histogram {
                    write_go_uint(out, *value);
                } else {
                    write_go_float(out, *value);
                }
                out.push(b'"');
            }
            out.push(b'}');
        };
        let write_count = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"\"count\":\"");
            write_go_uint(out, count);
            out.push(b'"');
        };
        let write_labels = |out: &mut Vec<u8>| {
            out.extend_from_slice(b"\"labels\":{");
            write_label_pairs(out, labels, &mut true, |n| !is_bound(n));
            out.push(b'}');
        };
        // Keys in Go's order: buckets < count < labels < quantiles < sum.
        if kind == MetricType::Histogram {
            write_bounds(out);
            out.push(b',');
            write_count(out);
            out.push(b',');
            write_labels(out);
        } else {
            write_count(out);
            out.push(b',');
            write_labels(out);
            out.push(b',');
            write_bounds(out);
        }
        out.extend_from_slice(b",\"sum\":\"");
        write_go_float(out, sum);
        out.extend_from_slice(b"\"}");
        i = end;
    }
}

fn parse_bound(b: &str) -> Option<f64> {
    match b {
        "+Inf" | "Inf" => Some(f64::INFINITY),
        "-Inf" => Some(f64::NEG_INFINITY),
        _ => b.parse().ok(),
    }
}

fn is_bound(name: &[u8]) -> bool {
    name == b"le" || name == b"quantile"
}

/// A series key's sample name and its label text (without braces).
fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().position(|&b| b == b'{') {
        Some(at) => (
            &key[..at],
            key[at + 1..].strip_suffix(b"}").unwrap_or(&key[at + 1..]),
        ),
        None => (key, b""),
    }
}

/// The `name="value"` pairs of canonical label text, values still escaped.
struct Pairs<'a>(&'a [u8]);

impl<'a> Iterator for Pairs<'a> {
    type Item = (&'a [u8], &'a [u8]);
    fn next(&mut self) -> Option<Self::Item> {
        let text = self.0;
        let eq = text.iter().position(|&b| b == b'=')?;
        let name = &text[..eq];
        let rest = text.get(eq + 2..)?;
        let mut i = 0;
        while i < rest.len() && rest[i] != b'"' {
            i += if rest[i] == b'\\' { 2 } else { 1 };
        }
        let value = rest.get(..i)?;
        self.0 = rest.get(i + 2..).unwrap_or(b"");
        Some((name, value))
    }
}

/// `"name":"value"` for each pair `keep` accepts, sorted by name (the
/// canonical text is sorted already).
fn write_label_pairs(
    out: &mut Vec<u8>,
    labels: &[u8],
    first: &mut bool,
    keep: impl Fn(&[u8]) -> bool,
) {
    for (name, value) in Pairs(labels).filter(|(n, _)| keep(n)) {
        if !std::mem::take(first) {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
        json_escaped_text(out, value);
    }
}

/// A group's labels with `instance` added when missing, as the labels
/// of its push-time series.
fn write_group_labels(out: &mut Vec<u8>, labels: &[u8]) {
    let mut first = true;
    let has_instance = Pairs(labels).any(|(n, _)| n == b"instance");
    let mut instance_done = has_instance;
    for (name, value) in Pairs(labels) {
        if !instance_done && name > &b"instance"[..] {
            write_label_pairs(out, b"instance=\"\"", &mut first, |_| true);
            instance_done = true;
        }
        if !std::mem::take(&mut first) {
            out.push(b',');
        }
        json_string(out, name);
        out.push(b':');
        json_escaped_text(out, value);
    }
    if !instance_done {
        write_label_pairs(out, b"instance=\"\"", &mut first, |_| true);
    }
}

/// A JSON string of raw bytes (names: no escapes needed but quotes).
fn json_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    json_escape_into(out, s);
    out.push(b'"');
}

/// A JSON string of text-format escaped text (`\\`, `\"`, `\n`).
fn json_escaped_text(out: &mut Vec<u8>, escaped: &[u8]) {
    out.push(b'"');
    let mut i = 0;
    let mut start = 0;
    while i < escaped.len() {
        if escaped[i] == b'\\' && i + 1 < escaped.len() {
            json_escape_into(out, &escaped[start..i]);
            let raw = match escaped[i + 1] {
                b'n' => b'\n',
                other => other,
            };
            json_escape_into(out, &[raw]);
            i += 2;
            start = i;
        } else {
            i += 1;
        }
    }
    json_escape_into(out, &escaped[start..]);
    out.push(b'"');
}

/// Escapes as Go's encoder does: quotes, backslashes, control bytes,
/// and `<`, `>`, `&` (HTML-safe).
fn json_escape_into(out: &mut Vec<u8>, s: &[u8]) {
    for &b in s {
        match b {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'<' | b'>' | b'&' | 0..=0x1f => {
                let _ = write!(out, "\\u{b:04x}");
            }
            _ => out.push(b),
        }
    }
}

/// A float as Go's `fmt.Sprint` writes it (`%v`: shortest digits, with
/// an exponent below 1e-4 or from 1e6 on).
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
        return;
    }
    if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        return;
    }
    let sci = format!("{v:e}");
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let exp: i32 = exp.parse().unwrap_or(0);
    // strconv's 'g' with the shortest precision decides at 6 digits.
    if (-4..6).contains(&exp) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(
            out,
            "{mantissa}e{}{:02}",
            if exp < 0 { '-' } else { '+' },
            exp.unsigned_abs()
        );
    }
}

/// A count as Go writes the `uint64` the Pushgateway keeps (fractions cut).
fn write_go_uint(out: &mut Vec<u8>, v: f64) {
    if (0.0..1.8e19).contains(&v) {
        let _ = write!(out, "{}", v as u64);
    } else {
        write_go_float(out, v);
    }
}

/// A Unix time in seconds as Go's `time.Time` JSON: RFC 3339 in UTC with
/// nanoseconds, trailing zeros cut.
fn write_time(out: &mut Vec<u8>, unix: f64) {
    let unix = if unix.is_finite() && unix > 0.0 {
        unix
    } else {
        0.0
    };
    let mut secs = unix.floor() as i64;
    let mut nanos = ((unix - unix.floor()) * 1e9).round() as u32;
    if nanos >= 1_000_000_000 {
        secs += 1;
        nanos -= 1_000_000_000;
    }
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (y, m, d) = civil_from_days(days);
    let _ = write!(
        out,
        "\"{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        rem / 3600,
        rem / 60 % 60,
        rem % 60
    );
    if nanos > 0 {
        let frac = format!("{nanos:09}");
        let _ = write!(out, ".{}", frac.trim_end_matches('0'));
    }
    out.extend_from_slice(b"Z\"");
}

/// Days since 1970-01-01 to (year, month, day), Howard Hinnant's method.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::push::{self, PushMethod};

    fn api_for(cache_bytes: usize) -> (Api, Cache) {
        let mut config = Config::with_defaults("/tmp/x.sock".into());
        config.cache_bytes = cache_bytes;
        (Api::new(&config, 0.0), Cache::new(cache_bytes))
    }

    fn put(cache: &mut Cache, path: &str, body: &str) -> bool {
        let req = push::Request {
            method: PushMethod::Put,
            path,
            query: "",
            protobuf: false,
            ttl_ms: 60_000,
            drain: false,
        };
        let mut scratch = push::Scratch::default();
        push::handle_request(cache, &mut scratch, &req, body.as_bytes(), 0, 1.0).is_ok()
    }

    #[test]
    fn a_cache_full_of_small_groups_fits_the_bound() {
        // The worst realistic ratio: one short series per group, with a
        // HELP text repeated in every group.
        let (mut api, mut cache) = api_for(64 * 1024);
        let help = "h".repeat(200);
        for i in 0.. {
            let body = format!("# HELP m {help}\nm 1\n");
            if !put(&mut cache, &format!("/metrics/job/j{i}"), &body) || cache.remaining() < 512 {
                break;
            }
        }
        assert!(cache.group_count() > 50);
        let doc = api.metrics(&cache).unwrap();
        assert!(
            doc.len() <= 64 * 1024 * API_MAX_BYTES_PER_CACHE_BYTE,
            "{}",
            doc.len()
        );
        // Unchanged cache: the same document, not rendered again.
        assert!(Rc::ptr_eq(&doc, &api.metrics(&cache).unwrap()));
    }

    #[test]
    fn past_the_bound_or_with_every_buffer_held_it_refuses() {
        let (mut api, mut cache) = api_for(16 * 1024);
        assert!(put(&mut cache, "/metrics/job/a", "m 1\n"));
        let held = api.metrics(&cache).unwrap();
        assert!(put(&mut cache, "/metrics/job/b", "m 2\n"));
        let held_too = api.metrics(&cache).unwrap();
        assert!(put(&mut cache, "/metrics/job/c", "m 3\n"));
        assert_eq!(api.metrics(&cache), Err(ApiError::Busy));
        drop(held);
        assert!(api.metrics(&cache).is_ok());
        drop(held_too);
        api.max_bytes = 100;
        assert!(put(&mut cache, "/metrics/job/d", "m 4\n"));
        assert_eq!(api.metrics(&cache), Err(ApiError::TooLarge));
        assert!(api.metrics.capacity() <= 100);
    }

    #[test]
    fn floats_as_go_prints_them() {
        for (v, want) in [
            (1.0, "1"),
            (0.1, "0.1"),
            (-2.5, "-2.5"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (1_796_159_572.005_098_6, "1.7961595720050986e+09"),
            (1e6, "1e+06"),
            (123_456.0, "123456"),
            (1e21, "1e+21"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (0.0, "0"),
        ] {
            let mut out = Vec::new();
            write_go_float(&mut out, v);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{v}");
        }
    }

    #[test]
    fn times_as_go_marshals_them() {
        for (t, want) in [
            (0.0, "\"1970-01-01T00:00:00Z\""),
            (1_796_159_572.5, "\"2026-12-01T21:12:52.5Z\""),
            (951_782_400.0, "\"2000-02-29T00:00:00Z\""),
        ] {
            let mut out = Vec::new();
            write_time(&mut out, t);
            assert_eq!(String::from_utf8(out).unwrap(), want, "{t}");
        }
    }

    #[test]
    fn escaped_label_values_become_json_strings() {
        let mut out = Vec::new();
        json_escaped_text(&mut out, br#"a\"b\\c\nd<"#);
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\"b\\c\nd\u003c""#);
        let pairs: Vec<_> = Pairs(br#"a="x\"y",b="",c="z""#).collect();
        assert_eq!(
            pairs,
            [(&b"a"[..], &br#"x\"y"#[..]), (b"b", b""), (b"c", b"z")]
        );
    }
}

//! Renders the cache as a `/metrics` page in the text exposition format.
//!
//! Each family appears once, sorted by name: its HELP and TYPE, then its
//! samples. Inside a family, samples are grouped by their labels (without
//! `le`/`quantile`), then ordered bucket/sample, `_sum`, `_count`, with
//! buckets and quantiles in numeric order, as client libraries write them.
//! Keys and HELP texts are stored in their escaped form, so rendering copies
//! them as they are.
//!
//! # Memory
//! The page is the cache's part of `/metrics` (the series families, then
//! `push_time_seconds` and `push_failure_time_seconds`). It stays rendered
//! in one buffer and is rendered again only when the cache's generation has
//! moved, so a scrape between two writes copies nothing of it; the
//! gateway's own metrics, which change with every scrape, are rendered
//! apart into the tail for that reason. The page is an `Rc`: a slow scraper
//! keeps sending the page it got while the next scraper gets the same one
//! (no change) or a new buffer (the cache changed while the old one was
//! held; the only case that allocates). The page's buffer is reserved up
//! front for the largest page the budget allows (twice the budget), but at
//! most [`RENDER_RESERVE_MAX_BYTES`]; past that it grows to the largest
//! page rendered and is kept, so a large `--cache-bytes` costs address
//! space only as pushes fill it. The sort order is kept in a scratch vector
//! reserved the same way (for the most series the budget can hold, capped
//! alike), and recomputed only when series are added or removed, and then
//! by merging: the series of the last order that are still there keep
//! their places, and only the new ones are sorted and merged in
//! ([`Renderer::page`]), so a scrape while a flood replaces series costs
//! O(n + k log k) for n series of which k are new, not a sort of all of
//! them. Three more vectors reserved alike serve that merge (each series'
//! key hash, the new series, a bitmap of ids): 9 bytes per series the
//! budget can hold. The tail is reserved for
//! [`SELF_METRICS_MAX_BYTES`] and shared like the page: rendered again for
//! every scrape, in place unless a slow scraper still holds the last one.

use std::cmp::Ordering;
use std::io::Write as _;
use std::rc::Rc;

use crate::bytes;
use crate::cache::Cache;
use crate::exposition::MetricType;
use crate::limits::{RENDER_RESERVE_MAX_BYTES, SELF_METRICS_MAX_BYTES};

pub struct Renderer {
    order: Vec<u32>,
    /// The key hash of each series of `order` when it was placed there.
    hashes: Vec<u32>,
    /// Series new since the last order, being merged in.
    fresh: Vec<u32>,
    /// A bit per id: the series is in the kept part of the order.
    kept: Vec<u64>,
    groups: Vec<u32>,
    order_layout: Option<u64>,
    page: Rc<Vec<u8>>,
    /// The cache's (generation, layout) that `page` shows; `None` until the
    /// first page.
    page_shows: Option<(u64, u64)>,
    tail: Rc<Vec<u8>>,
}

impl Renderer {
    /// Reserves room for the largest page and sort order `cache` can
    /// need, up to [`RENDER_RESERVE_MAX_BYTES`] each; beyond that the
    /// buffers grow with the pages rendered.
    pub fn new(cache: &Cache) -> Renderer {
        let ids = (RENDER_RESERVE_MAX_BYTES / size_of::<u32>()).min(cache.max_series());
        Renderer {
            order: Vec::with_capacity(ids),
            hashes: Vec::with_capacity(ids),
            fresh: Vec::with_capacity(ids),
            kept: Vec::with_capacity(ids.div_ceil(64)),
            groups: Vec::with_capacity(ids),
            order_layout: None,
            page: Rc::new(Vec::with_capacity(
                (cache.capacity() * 2).min(RENDER_RESERVE_MAX_BYTES),
            )),
            page_shows: None,
            tail: Rc::new(Vec::with_capacity(SELF_METRICS_MAX_BYTES)),
        }
    }

    /// Whether a connection still holds the last page (is sending it).
    pub fn page_in_flight(&self) -> bool {
        Rc::strong_count(&self.page) > 1
    }

    /// The series of the last page, in page order.
    pub fn order(&self) -> &[u32] {
        &self.order
    }

    /// The cache's families and push times, rendered again only if the
    /// cache changed since the last call.
    pub fn page(&mut self, cache: &Cache) -> Rc<Vec<u8>> {
        let shows = Some((cache.generation(), cache.layout()));
        if self.page_shows == shows {
            return Rc::clone(&self.page);
        }
        if self.order_layout != Some(cache.layout()) {
            self.reorder(cache);
            self.groups.clear();
            cache.group_ids(&mut self.groups);
            self.groups
                .sort_unstable_by(|&a, &b| cache.group(a).labels.cmp(cache.group(b).labels));
            self.order_layout = Some(cache.layout());
        }
        if Rc::get_mut(&mut self.page).is_none() {
            // A slow scraper still holds the previous page.
            self.page = Rc::new(Vec::with_capacity(self.page.capacity()));
        }
        // The page is not shared now, so this borrows it without a copy.
        let out = Rc::make_mut(&mut self.page);
        out.clear();
        write_page(cache, &self.order, out);
        write_push_times(cache, &self.groups, out);
        self.page_shows = shows;
        Rc::clone(&self.page)
    }

    /// Brings `order` up to date with the cache's series: keeps the series
    /// of the last order that still name the same series (same id and key
    /// hash) in their places, sorts only the others and merges them in.
    /// Kept series are checked to still be in order as they are kept (an
    /// id reused for another series of the same hash would not be), and
    /// one that is not goes with the new ones: the order is exact whatever
    /// happened to the ids. When most series are new, it sorts them all.
    fn reorder(&mut self, cache: &Cache) {
        let less = |a: u32, b: u32| compare_series(cache, a, b) == Ordering::Less;
        self.kept.clear();
        self.kept
            .resize((cache.id_bound() as usize).div_ceil(64), 0);
        let mut n = 0;
        for i in 0..self.order.len() {
            let id = self.order[i];
            if cache.series_hash(id) != Some(self.hashes[i])
                || (n > 0 && !less(self.order[n - 1], id))
            {
                continue;
            }
            self.order[n] = id;
            self.hashes[n] = self.hashes[i];
            self.kept[id as usize / 64] |= 1 << (id % 64);
            n += 1;
        }
        self.order.truncate(n);
        self.fresh.clear();
        cache.series_ids(&mut self.fresh);
        let kept = &self.kept;
        self.fresh
            .retain(|&id| kept[id as usize / 64] & (1 << (id % 64)) == 0);
        if self.fresh.len() >= n {
            self.order.extend_from_slice(&self.fresh);
            self.order
                .sort_unstable_by(|&a, &b| compare_series(cache, a, b));
        } else {
            self.fresh
                .sort_unstable_by(|&a, &b| compare_series(cache, a, b));
            // Merge from the back: the largest new series first, each after
            // the kept ones below it, moving every kept series once. A few
            // new series find their places by binary search (k log n
            // comparisons), many by walking (n + k).
            let k = self.fresh.len();
            let search = k * (usize::BITS - n.leading_zeros()) as usize <= n;
            self.order.resize(n + k, 0);
            let mut end = n;
            for j in (0..k).rev() {
                let id = self.fresh[j];
                let at = if search {
                    self.order[..end].partition_point(|&x| less(x, id))
                } else {
                    let mut at = end;
                    while at > 0 && !less(self.order[at - 1], id) {
                        at -= 1;
                        self.order[at + j + 1] = self.order[at];
                    }
                    at
                };
                if search {
                    self.order.copy_within(at..end, at + j + 1);
                }
                self.order[at + j] = id;
                end = at;
            }
        }
        self.hashes.clear();
        self.hashes.extend(
            self.order
                .iter()
                .map(|&id| cache.series_hash(id).unwrap_or(0)),
        );
    }

    /// What `write` renders (the gateway's own metrics, which go after the
    /// page), in the buffer kept for it.
    pub fn tail(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> Rc<Vec<u8>> {
        if Rc::get_mut(&mut self.tail).is_none() {
            // A slow scraper still sends the last one.
            self.tail = Rc::new(Vec::with_capacity(SELF_METRICS_MAX_BYTES));
        }
        // Not shared now, so this borrows it without a copy.
        let tail = Rc::make_mut(&mut self.tail);
        tail.clear();
        write(tail);
        Rc::clone(&self.tail)
    }

    /// The page with what `extra` renders after it, in one buffer: for
    /// callers that want the whole text (tests, tools). It copies the page
    /// when `extra` writes anything; scrapes send [`Renderer::page`] and
    /// [`Renderer::tail`] one after the other instead.
    pub fn render(&mut self, cache: &Cache, extra: impl FnOnce(&mut Vec<u8>)) -> Rc<Vec<u8>> {
        let page = self.page(cache);
        let tail = self.tail(extra);
        if tail.is_empty() {
            return page;
        }
        let mut whole = Vec::with_capacity(page.len() + tail.len());
        whole.extend_from_slice(&page);
        whole.extend_from_slice(&tail);
        Rc::new(whole)
    }
}

/// Writes all series of `order` (already sorted) as exposition text.
pub fn write_page(cache: &Cache, order: &[u32], out: &mut Vec<u8>) {
    let mut current = u32::MAX;
    for &id in order {
        let s = cache.series(id);
        if s.family != current {
            current = s.family;
            let f = cache.family(current);
            write_family_header(out, f.name, f.help, f.kind);
        }
        out.extend_from_slice(s.key);
        out.push(b' ');
        write_value(out, s.value);
        out.push(b'\n');
    }
}

/// Names of the per-group families the gateway adds, as the Prometheus
/// Pushgateway does; pushes may not use them.
pub const PUSH_TIME: &str = "push_time_seconds";
pub const PUSH_FAILURE_TIME: &str = "push_failure_time_seconds";

/// The `push_time_seconds` and `push_failure_time_seconds` gauges of every
/// pushed group, labelled with its grouping labels.
pub fn write_push_times(cache: &Cache, groups: &[u32], out: &mut Vec<u8>) {
    if groups.is_empty() {
        return;
    }
    // The Pushgateway's own HELP texts, word for word: the two gateways'
    // pages then differ only where they are meant to.
    for (name, help, failure) in [
        (
            PUSH_FAILURE_TIME,
            "Last Unix time when changing this group in the Pushgateway failed.",
            true,
        ),
        (
            PUSH_TIME,
            "Last Unix time when changing this group in the Pushgateway succeeded.",
            false,
        ),
    ] {
        write_family_header(out, name.as_bytes(), help.as_bytes(), MetricType::Gauge);
        for &id in groups {
            let g = cache.group(id);
            out.extend_from_slice(name.as_bytes());
            out.push(b'{');
            out.extend_from_slice(g.labels);
            out.extend_from_slice(b"} ");
            write_value(out, if failure { g.failure_time } else { g.push_time });
            out.push(b'\n');
        }
    }
}

/// `# HELP` (when there is text) and `# TYPE` lines of one family.
pub fn write_family_header(out: &mut Vec<u8>, name: &[u8], help: &[u8], kind: MetricType) {
    if !help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name);
        out.push(b' ');
        out.extend_from_slice(help);
        out.push(b'\n');
    }
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name);
    out.push(b' ');
    out.extend_from_slice(kind.as_str().as_bytes());
    out.push(b'\n');
}

/// Writes a sample value the way Prometheus parses it: integers plainly,
/// `NaN`, `+Inf`, `-Inf`, and other numbers in their shortest exact form.
pub fn write_value(out: &mut Vec<u8>, v: f64) {
    if v.is_nan() {
        out.extend_from_slice(b"NaN");
    } else if v.is_infinite() {
        out.extend_from_slice(if v > 0.0 { b"+Inf" } else { b"-Inf" });
    } else if v.abs() < 1e15 && (v as i64) as f64 == v {
        write_int(out, v as i64);
    } else if (1e-4..1e15).contains(&v.abs()) {
        let _ = write!(out, "{v}");
    } else {
        let _ = write!(out, "{v:e}");
    }
}

fn write_int(out: &mut Vec<u8>, v: i64) {
    let mut buf = [0u8; 20];
    let mut n = v.unsigned_abs();
    let mut i = buf.len();
    loop {
        i -= 1;
        buf[i] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    if v < 0 {
        out.push(b'-');
    }
    out.extend_from_slice(&buf[i..]);
}

fn compare_series(cache: &Cache, a: u32, b: u32) -> Ordering {
    let (sa, sb) = (cache.series(a), cache.series(b));
    if sa.family != sb.family {
        return bytes::cmp(cache.family_name(sa.family), cache.family_name(sb.family));
    }
    compare_keys(cache.family_name(sa.family), sa.key, sb.key)
}

/// Orders two series keys of family `family` as client libraries do.
pub fn compare_keys(family: &[u8], a: &[u8], b: &[u8]) -> Ordering {
    match first_difference(a, b) {
        Some(order) => order,
        None => compare_keys_in_full(family, a, b),
    }
}

/// The order of two keys of one family when the label pair where they
/// first differ decides it: an ordinary label (not `le` or `quantile`) at
/// the same place in both, whose name or value differs. Every pair before
/// it is the same in both, so [`compare_keys_in_full`] would find the same
/// answer at that pair; this gets there without splitting and filtering
/// every pair of both keys (sorting the page is made of these comparisons).
/// `None` when the difference is anywhere else (the metric name, the
/// number of labels, a bound label): the full comparison decides then.
fn first_difference(a: &[u8], b: &[u8]) -> Option<Ordering> {
    let p = bytes::mismatch(a, b);
    // `a[..p] == b[..p]`: a brace before `p` is in both, and so is every
    // pair boundary found before `p`.
    let mut s = position(&a[..p], b'{')? + 1;
    loop {
        let eq = s + position(a.get(s..)?, b'=')?;
        if p <= eq {
            let eq_b = s + position(b.get(s..)?, b'=')?;
            let (name_a, name_b) = (&a[s..eq], &b[s..eq_b]);
            if is_bound_label(name_a) || is_bound_label(name_b) {
                return None;
            }
            return Some(bytes::cmp(name_a, name_b));
        }
        let value = eq + 2;
        let end = value_end(a, value)?;
        if p <= end {
            if is_bound_label(&a[s..eq]) {
                return None;
            }
            let end_b = value_end(b, value)?;
            return Some(bytes::cmp(&a[value..end], &b[value..end_b]));
        }
        // The pair is the same in both; the next one, if both go on.
        if p <= end + 1 || a.get(end + 1) != Some(&b',') {
            return None;
        }
        s = end + 2;
    }
}

/// Where `byte` first is in `s`: a plain loop, as the names and key heads
/// searched here are a few bytes (a `memchr` call costs more).
#[inline(always)]
fn position(s: &[u8], byte: u8) -> Option<usize> {
    s.iter().position(|&c| c == byte)
}

/// Index of the closing quote of the escaped label value starting at
/// `from`.
fn value_end(key: &[u8], from: usize) -> Option<usize> {
    let mut i = from;
    while i < key.len() {
        match key[i] {
            b'\\' => i += 2,
            b'"' => return Some(i),
            _ => i += 1,
        }
    }
    None
}

/// [`compare_keys`], every step: the grouping labels (all but `le` and
/// `quantile`), then `_sum` and `_count` after the buckets or quantiles,
/// the metric name, the bound in numeric order, the whole key.
fn compare_keys_in_full(family: &[u8], a: &[u8], b: &[u8]) -> Ordering {
    let (name_a, labels_a) = split_key(a);
    let (name_b, labels_b) = split_key(b);
    let grouping = |labels| Labels(labels).filter(|(n, _)| !is_bound_label(n));
    grouping(labels_a)
        .cmp(grouping(labels_b))
        .then_with(|| suffix_rank(family, name_a).cmp(&suffix_rank(family, name_b)))
        .then_with(|| name_a.cmp(name_b))
        .then_with(|| bound(labels_a).total_cmp(&bound(labels_b)))
        .then_with(|| a.cmp(b))
}

fn is_bound_label(name: &[u8]) -> bool {
    name == b"le" || name == b"quantile"
}

fn suffix_rank(family: &[u8], name: &[u8]) -> u8 {
    match name.strip_prefix(family) {
        Some(b"_sum") => 1,
        Some(b"_count") => 2,
        _ => 0,
    }
}

/// The numeric `le` or `quantile` of a key, for ordering (absent sorts first).
fn bound(labels: &[u8]) -> f64 {
    Labels(labels)
        .find(|(n, _)| is_bound_label(n))
        .and_then(|(_, v)| std::str::from_utf8(v).ok())
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(f64::NEG_INFINITY)
}

/// Splits `name{labels}` into the name and the text between the braces.
fn split_key(key: &[u8]) -> (&[u8], &[u8]) {
    match key.iter().position(|&c| c == b'{') {
        Some(i) => (&key[..i], &key[i + 1..key.len().saturating_sub(1)]),
        None => (key, &[]),
    }
}

/// Iterates `name="value"` pairs of a canonical label list (values escaped).
struct Labels<'a>(&'a [u8]);

impl<'a> Iterator for Labels<'a> {
    type Item = (&'a [u8], &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let s = self.0;
        let eq = s.iter().position(|&c| c == b'=')?;
        let name = &s[..eq];
        let value_start = eq + 2;
        let mut i = value_start;
        while i < s.len() && s[i] != b'"' {
            i += if s[i] == b'\\' { 2 } else { 1 };
        }
        let value = &s[value_start.min(s.len())..i.min(s.len())];
        self.0 = s.get(i + 2..).unwrap_or(&[]);
        Some((name, value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cache::{DRAIN_ATTEMPTS, Family, Write};

    fn value(v: f64) -> String {
        let mut out = Vec::new();
        write_value(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn values() {
        for (v, s) in [
            (0.0, "0"),
            (-0.0, "0"),
            (42.0, "42"),
            (-7.0, "-7"),
            (1.5, "1.5"),
            (-3.5e-7, "-3.5e-7"),
            (1e21, "1e21"),
            (0.001, "0.001"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (i64::MIN as f64, "-9.223372036854776e18"),
        ] {
            assert_eq!(value(v), s);
        }
        for v in [0.1, 1.0 / 3.0, 123456.789, 9.999e-5, 5e-324, f64::MAX] {
            assert_eq!(value(v).parse::<f64>().unwrap(), v);
        }
    }

    #[test]
    fn families_once_sorted_and_grouped() {
        let mut cache = Cache::new(8192);
        let hist = Family {
            name: "req_seconds",
            kind: MetricType::Histogram,
            help: Some("Request \\\\ latency."),
        };
        let gauge = Family {
            name: "a_temp",
            kind: MetricType::Gauge,
            help: None,
        };
        for key in [
            "req_seconds_count{path=\"/b\"}",
            "req_seconds_bucket{le=\"+Inf\",path=\"/a\"}",
            "req_seconds_sum{path=\"/a\"}",
            "req_seconds_bucket{le=\"10\",path=\"/a\"}",
            "req_seconds_bucket{le=\"2.5\",path=\"/a\"}",
            "req_seconds_count{path=\"/a\"}",
            "req_seconds_bucket{le=\"+Inf\",path=\"/b\"}",
        ] {
            cache.set(&hist, key.as_bytes(), 1.0, 0, 1000).unwrap();
        }
        cache
            .set(&gauge, b"a_temp{room=\"x\\\"y\"}", 21.5, 0, 1000)
            .unwrap();
        let mut r = Renderer::new(&cache);
        let page = r.render(&cache, |out| out.extend_from_slice(b"# tail\n"));
        let expected = "\
# TYPE a_temp gauge
a_temp{room=\"x\\\"y\"} 21.5
# HELP req_seconds Request \\\\ latency.
# TYPE req_seconds histogram
req_seconds_bucket{le=\"2.5\",path=\"/a\"} 1
req_seconds_bucket{le=\"10\",path=\"/a\"} 1
req_seconds_bucket{le=\"+Inf\",path=\"/a\"} 1
req_seconds_sum{path=\"/a\"} 1
req_seconds_count{path=\"/a\"} 1
req_seconds_bucket{le=\"+Inf\",path=\"/b\"} 1
req_seconds_count{path=\"/b\"} 1
# tail
";
        assert_eq!(String::from_utf8_lossy(&page), expected);
    }

    #[test]
    fn a_held_page_is_not_overwritten() {
        let mut cache = Cache::new(4096);
        let f = Family {
            name: "x",
            kind: MetricType::Untyped,
            help: None,
        };
        cache.set(&f, b"x", 1.0, 0, 1000).unwrap();
        let mut r = Renderer::new(&cache);
        let held = r.page(&cache);
        cache.set(&f, b"x", 2.0, 0, 1000).unwrap();
        let fresh = r.page(&cache);
        assert_eq!(&held[..], b"# TYPE x untyped\nx 1\n");
        assert_eq!(&fresh[..], b"# TYPE x untyped\nx 2\n");
        drop(held);
        drop(fresh);
        let again = r.page(&cache);
        assert_eq!(&again[..], b"# TYPE x untyped\nx 2\n");
    }

    fn gauge(name: &str) -> Family<'_> {
        Family {
            name,
            kind: MetricType::Gauge,
            help: None,
        }
    }

    /// A cache with streamed series, a pushed group and a drain series.
    fn filled() -> Cache {
        let mut cache = Cache::new(16 * 1024);
        cache.set(&gauge("a"), b"a{n=\"1\"}", 1.0, 0, 1000).unwrap();
        cache.set(&gauge("a"), b"a{n=\"2\"}", 2.0, 0, 5000).unwrap();
        cache.set(&gauge("b"), b"b", 3.0, 0, 5000).unwrap();
        let drain = Write {
            drain: true,
            ..Write::replace(5000)
        };
        cache.set_with(&gauge("d"), b"d", 4.0, 0, drain).unwrap();
        let g = cache.group_open(b"job=\"j\"", 0, 5000).unwrap();
        cache
            .group_set(g, &gauge("p"), b"p{job=\"j\"}", 5.0, 0)
            .unwrap();
        cache.group_close(g, 0, 5000, 100.0);
        cache
    }

    #[test]
    fn an_unchanged_cache_is_not_rendered_again() {
        let mut cache = filled();
        let mut r = Renderer::new(&cache);
        let first = r.page(&cache);
        // The tail and changes that do not show on the page leave it alone.
        let _ = r.tail(|out| out.extend_from_slice(b"# tail\n"));
        cache.expire(500);
        assert!(cache.mark_scraped(r.order(), 7));
        cache.drain_failed(7);
        let second = r.page(&cache);
        assert!(Rc::ptr_eq(&first, &second));
        assert!(!second.ends_with(b"# tail\n"));
    }

    #[test]
    fn every_change_on_the_page_renders_it_again() {
        type Change = fn(&mut Cache);
        let changes: [(&str, Change); 14] = [
            ("value write", |c| {
                c.set(&gauge("b"), b"b", 9.0, 0, 5000).unwrap()
            }),
            ("new series", |c| {
                c.set(&gauge("c"), b"c", 1.0, 0, 5000).unwrap()
            }),
            ("expiry", |c| c.expire(1000)),
            ("help", |c| {
                let f = Family {
                    help: Some("Now with help."),
                    ..gauge("b")
                };
                c.set(&f, b"b", 3.0, 0, 5000).unwrap();
            }),
            ("type", |c| {
                let f = Family {
                    kind: MetricType::Counter,
                    ..gauge("b")
                };
                c.set(&f, b"b", 3.0, 0, 5000).unwrap();
            }),
            ("push time", |c| {
                let g = c.group_open(b"job=\"j\"", 0, 5000).unwrap();
                c.group_close(g, 0, 5000, 200.0);
            }),
            ("push failure", |c| c.group_failed(b"job=\"j\"", 300.0)),
            ("new group", |c| {
                let g = c.group_open(b"job=\"k\"", 0, 5000).unwrap();
                c.group_close(g, 0, 5000, 200.0);
            }),
            ("group push", |c| {
                let g = c.group_open(b"job=\"j\"", 0, 5000).unwrap();
                c.group_set(g, &gauge("p"), b"p{job=\"j\"}", 6.0, 0)
                    .unwrap();
                c.group_close(g, 0, 5000, 100.0);
            }),
            ("group delete", |c| assert!(c.group_delete(b"job=\"j\""))),
            ("series delete", |c| {
                assert_eq!(c.delete_family("a", |_| true), 2)
            }),
            ("drain delivered", |c| {
                let mut ids = Vec::new();
                c.series_ids(&mut ids);
                assert!(c.mark_scraped(&ids, 3));
                c.drain_delivered(3);
            }),
            ("drain failed", |c| {
                let mut ids = Vec::new();
                c.series_ids(&mut ids);
                for page in 1..=DRAIN_ATTEMPTS {
                    assert!(c.mark_scraped(&ids, u32::from(page)));
                    c.drain_failed(u32::from(page));
                }
            }),
            ("wipe", |c| assert_eq!(c.wipe(), 5)),
        ];
        for (what, change) in changes {
            let mut cache = filled();
            let mut r = Renderer::new(&cache);
            let before = r.page(&cache);
            change(&mut cache);
            let after = r.page(&cache);
            assert!(!Rc::ptr_eq(&before, &after), "{what}: not rendered again");
            let fresh = Renderer::new(&cache).page(&cache);
            assert_eq!(after, fresh, "{what}");
        }
    }

    #[test]
    fn the_short_cut_orders_keys_as_the_full_comparison_does() {
        const NAMES: [&str; 7] = ["a", "a0", "ab", "b", "le", "quantile", "x"];
        const VALUES: [&str; 11] = [
            "", "x", "x!", "x\\\"y", "x\\\\", "1", "10", "+Inf", "0.5", "\u{e9}", "x,y",
        ];
        const METRICS: [&str; 4] = ["m", "m_bucket", "m_sum", "m_count"];
        let mut state = 0x2545_f491_4f6c_dd1du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let keys: Vec<String> = (0..400)
            .map(|_| {
                let mut key = METRICS[next(METRICS.len())].to_string();
                let mut labels = Vec::new();
                for n in NAMES {
                    if next(3) == 0 {
                        labels.push(format!("{n}=\"{}\"", VALUES[next(VALUES.len())]));
                    }
                }
                if !labels.is_empty() {
                    key = format!("{key}{{{}}}", labels.join(","));
                }
                key
            })
            .collect();
        let mut short_cuts = 0;
        for a in &keys {
            for b in &keys {
                let (a, b) = (a.as_bytes(), b.as_bytes());
                short_cuts += usize::from(first_difference(a, b).is_some());
                assert_eq!(
                    compare_keys(b"m", a, b),
                    compare_keys_in_full(b"m", a, b),
                    "{} vs {}",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                );
            }
        }
        assert!(short_cuts > keys.len() * keys.len() / 10, "{short_cuts}");
    }

    #[test]
    fn an_order_kept_across_churn_is_the_order_sorted_afresh() {
        // A small budget, so that new series evict old ones and take their
        // ids; families, histogram buckets and label orders mixed.
        let mut cache = Cache::new(4096);
        let mut r = Renderer::new(&cache);
        let hist = Family {
            name: "h",
            kind: MetricType::Histogram,
            help: None,
        };
        for round in 0..300u64 {
            for i in 0..(round % 7 + 1) {
                let n = round * 7 + i;
                let key = match n % 4 {
                    0 => format!("a{{x=\"{}\"}}", n % 13),
                    1 => format!("h_bucket{{le=\"{}\",p=\"{}\"}}", n % 5, n % 3),
                    2 => format!("h_sum{{p=\"{}\"}}", n % 3),
                    _ => format!("b{}", n % 11),
                };
                let name = key.split(['{', '_']).next().unwrap();
                let f = if name == "h" { hist } else { gauge(name) };
                cache.set(&f, key.as_bytes(), n as f64, round, 50).unwrap();
            }
            if round % 10 == 0 {
                cache.expire(round);
            }
            let page = r.page(&cache);
            let fresh = Renderer::new(&cache).page(&cache);
            assert_eq!(
                String::from_utf8_lossy(&page),
                String::from_utf8_lossy(&fresh),
                "round {round}"
            );
        }
        assert!(cache.stats.evicted_budget > 0);
    }

    #[test]
    fn a_page_nobody_holds_is_rendered_again_in_place() {
        let mut cache = filled();
        let mut r = Renderer::new(&cache);
        let buffer = r.page(&cache).as_ptr();
        cache.set(&gauge("b"), b"b", 9.0, 0, 5000).unwrap();
        let page = r.page(&cache);
        assert_eq!(page.as_ptr(), buffer);
        assert!(page.windows(4).any(|w| w == b"b 9\n"));
    }

    #[test]
    fn the_tail_follows_the_page_in_render() {
        let cache = filled();
        let mut r = Renderer::new(&cache);
        let page = r.page(&cache);
        let whole = r.render(&cache, |out| out.extend_from_slice(b"# tail\n"));
        assert_eq!(&whole[..page.len()], &page[..]);
        assert_eq!(&whole[page.len()..], b"# tail\n");
        assert!(Rc::ptr_eq(&r.render(&cache, |_| {}), &page));
    }
}

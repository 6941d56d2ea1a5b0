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
//! alike), and recomputed only when series are added or removed. The tail
//! is reserved for
//! [`SELF_METRICS_MAX_BYTES`] and shared like the page: rendered again for
//! every scrape, in place unless a slow scraper still holds the last one.

use std::cmp::Ordering;
use std::io::Write as _;
use std::rc::Rc;

use crate::cache::Cache;
use crate::exposition::MetricType;
use crate::limits::{RENDER_RESERVE_MAX_BYTES, SELF_METRICS_MAX_BYTES};

pub struct Renderer {
    order: Vec<u32>,
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
            groups: Vec::with_capacity(ids),
            order_layout: None,
            page: Rc::new(Vec::with_capacity(
                (cache.capacity() * 2).min(RENDER_RESERVE_MAX_BYTES),
            )),
            page_shows: None,
            tail: Rc::new(Vec::with_capacity(SELF_METRICS_MAX_BYTES)),
        }
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
            self.order.clear();
            cache.series_ids(&mut self.order);
            self.order
                .sort_unstable_by(|&a, &b| compare_series(cache, a, b));
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
        return cache
            .family(sa.family)
            .name
            .cmp(cache.family(sb.family).name);
    }
    let family = cache.family(sa.family);
    compare_keys(family.name, sa.key, sb.key)
}

/// Orders two series keys of family `family` as client libraries do.
pub fn compare_keys(family: &[u8], a: &[u8], b: &[u8]) -> Ordering {
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

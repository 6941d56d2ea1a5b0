//! Property tests: what is pushed is what the page shows, and the cache
//! keeps its promises under any sequence of operations.
//!
//! * Render then parse gives the same series: generated families (every
//!   type, HELP texts with escapes), series (labels in any order, with any
//!   whitespace, values with every escape and non-ASCII text) and values
//!   (NaN, infinities, subnormals) are streamed, or PUT as a group, into a
//!   cache; the page must be valid exposition text (`fuzz/check.rs`) and
//!   parse back to exactly the model: each key computed here independently
//!   of the gateway's code, each value, each family's type and HELP.
//! * Values survive `render::write_value` then `exposition::parse_value`.
//! * Budget eviction is least recently written first: after any sequence of
//!   writes the cache holds exactly the most recently written series, and
//!   counts every eviction.
//! * Under random sequences of streamed writes, group pushes and deletes,
//!   time advancing, expiry and scrapes: `check_invariants()`,
//!   `used() <= capacity()`, nothing served past its TTL, every served
//!   value the last one written, the page always valid.
//!
//! Case counts are small enough for a debug build; raise them with
//! `PROPTEST_CASES=N`.

#[path = "fuzz/check.rs"]
mod check;

use std::collections::{BTreeMap, HashMap};

use proptest::prelude::*;
use proptest::sample::select;
use push_gateway::cache::{Cache, Family};
use push_gateway::exposition::{self, Line, MetricType};
use push_gateway::ingest::{self, StreamContext};
use push_gateway::push::{self, PushMethod, Scratch};
use push_gateway::render::{self, PUSH_FAILURE_TIME, PUSH_TIME, Renderer};

use check::{assert_valid_page, same_value};

// ---------------------------------------------------------------- model

/// Escapes a raw label value for the text format, written here from the
/// format's definition rather than taken from the gateway.
fn escape_label(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// Escapes a raw HELP text: backslash and newline only.
fn escape_help(raw: &str) -> String {
    raw.replace('\\', "\\\\").replace('\n', "\\n")
}

/// The canonical key: labels sorted by name, values escaped.
fn canonical_key(name: &str, labels: &[(String, String)]) -> String {
    let mut sorted: Vec<&(String, String)> = labels.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    if sorted.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = sorted
        .iter()
        .map(|(n, v)| format!("{n}=\"{}\"", escape_label(v)))
        .collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn value_text(v: f64) -> String {
    let mut out = Vec::new();
    render::write_value(&mut out, v);
    String::from_utf8(out).unwrap()
}

fn page_of(cache: &Cache) -> Vec<u8> {
    Renderer::new(cache).render(cache, |_| {}).to_vec()
}

// ----------------------------------------------------------- generators

const KINDS: [MetricType; 5] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::Summary,
    MetricType::Untyped,
];

/// Characters label values and HELP texts are made of: the escaped ones,
/// blanks, the format's punctuation, and non-ASCII text.
const TEXT_CHARS: [char; 20] = [
    'a', 'Z', '0', ' ', '\t', '\\', '"', '\n', '\r', '{', '}', ',', '=', '#', 'ü', '€', '😀', '.',
    '-', 'n',
];

fn raw_text(max: usize) -> impl Strategy<Value = String> {
    prop_oneof![
        prop::collection::vec(select(&TEXT_CHARS[..]), 0..max).prop_map(String::from_iter),
        "\\PC{0,8}",
    ]
}

fn value() -> impl Strategy<Value = f64> {
    prop_oneof![
        any::<f64>(),
        Just(f64::NAN),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(5e-324),
        (-1_000_000i64..1_000_000).prop_map(|i| i as f64),
    ]
}

/// Labels with distinct names; never `le` or `quantile` (added per type),
/// nor names starting with `__` (reserved for Prometheus, refused).
fn labels(extra_names: &'static [&'static str]) -> impl Strategy<Value = Vec<(String, String)>> {
    let name = prop_oneof![
        "[a-zA-Z_][a-zA-Z0-9_]{0,6}".prop_filter("bound labels are added per type", |n| {
            n != "le" && n != "quantile" && !n.starts_with("__")
        }),
        select(extra_names).prop_map(str::to_string),
    ];
    prop::collection::btree_map(name, raw_text(10), 0..4)
        .prop_map(|m| m.into_iter().collect::<Vec<_>>())
        .prop_shuffle()
}

/// One series of a family: its labels and values (one per sample the type
/// needs: buckets or quantiles, then sum and count).
#[derive(Debug, Clone)]
struct SeriesSpec {
    labels: Vec<(String, String)>,
    values: Vec<f64>,
    /// Blank runs used around tokens when writing the line.
    blank: &'static str,
    /// Whether values are written as Rust's `Debug` (e.g. `1.0`, `inf`).
    debug_values: bool,
}

#[derive(Debug, Clone)]
struct FamilySpec {
    name: String,
    kind: MetricType,
    help: Option<String>,
    series: Vec<SeriesSpec>,
}

const BOUNDS: [&str; 4] = ["0.005", "0.5", "10", "+Inf"];
const QUANTILES: [&str; 3] = ["0", "0.5", "0.99"];

fn family(index: usize, extra_names: &'static [&'static str]) -> impl Strategy<Value = FamilySpec> {
    let series = (
        labels(extra_names),
        prop::collection::vec(value(), 6),
        select(&[" ", "\t", "  \t "][..]),
        any::<bool>(),
    )
        .prop_map(|(labels, values, blank, debug_values)| SeriesSpec {
            labels,
            values,
            blank,
            debug_values,
        });
    (
        "[a-z:]{0,6}",
        select(&KINDS[..]),
        prop::option::of(raw_text(16)),
        prop::collection::vec(series, 1..4),
    )
        .prop_map(move |(tail, kind, help, series)| FamilySpec {
            // A distinct prefix per family, and a tail without `_`, so that
            // no family's name is another's plus a suffix.
            name: format!("m{index}{tail}"),
            kind,
            help: help.map(|h| h.trim_matches([' ', '\t', '\r']).to_string()),
            series,
        })
}

fn families(extra_names: &'static [&'static str]) -> impl Strategy<Value = Vec<FamilySpec>> {
    (1usize..5).prop_flat_map(move |n| (0..n).map(|i| family(i, extra_names)).collect::<Vec<_>>())
}

/// The sample lines of one series: `(sample name, labels, value)`.
/// A sample line to write: name, labels (raw values), value.
type SampleSpec = (String, Vec<(String, String)>, f64);

fn samples(f: &FamilySpec, s: &SeriesSpec) -> Vec<SampleSpec> {
    let with = |label: &str, v: &str| {
        let mut l = s.labels.clone();
        l.push((label.to_string(), v.to_string()));
        l
    };
    let name = &f.name;
    match f.kind {
        MetricType::Histogram => {
            let mut out: Vec<_> = BOUNDS
                .iter()
                .zip(&s.values)
                .map(|(b, v)| (format!("{name}_bucket"), with("le", b), *v))
                .collect();
            out.push((format!("{name}_sum"), s.labels.clone(), s.values[4]));
            out.push((format!("{name}_count"), s.labels.clone(), s.values[5]));
            out
        }
        MetricType::Summary => {
            let mut out: Vec<_> = QUANTILES
                .iter()
                .zip(&s.values)
                .map(|(q, v)| (name.clone(), with("quantile", q), *v))
                .collect();
            out.push((format!("{name}_sum"), s.labels.clone(), s.values[4]));
            out.push((format!("{name}_count"), s.labels.clone(), s.values[5]));
            out
        }
        _ => vec![(name.clone(), s.labels.clone(), s.values[0])],
    }
}

/// The exposition text of all families: HELP, TYPE, then samples with
/// labels in the generated order and the generated blanks.
fn exposition_text(fams: &[FamilySpec]) -> String {
    let mut text = String::new();
    for f in fams {
        if let Some(help) = &f.help {
            text.push_str(&format!("# HELP {} {}\n", f.name, escape_help(help)));
        }
        text.push_str(&format!("# TYPE {} {}\n", f.name, f.kind.as_str()));
        for s in &f.series {
            let b = s.blank;
            for (name, labels, v) in samples(f, s) {
                let labels: Vec<String> = labels
                    .iter()
                    .map(|(n, v)| format!("{n}{b}={b}\"{}\"", escape_label(v)))
                    .collect();
                let value = if s.debug_values {
                    format!("{v:?}")
                } else {
                    value_text(v)
                };
                if labels.is_empty() {
                    text.push_str(&format!("{name}{b}{value}\n"));
                } else {
                    text.push_str(&format!("{name}{b}{{{}}}{b}{value}\n", labels.join(",")));
                }
            }
        }
    }
    text
}

/// What the page must hold: key -> value, and family -> (type, HELP).
struct Expected {
    series: BTreeMap<String, f64>,
    families: BTreeMap<String, (MetricType, String)>,
}

fn expected(fams: &[FamilySpec], group: &[(String, String)]) -> Expected {
    let mut series = BTreeMap::new();
    let mut families = BTreeMap::new();
    for f in fams {
        let help = f.help.as_deref().map(escape_help).unwrap_or_default();
        families.insert(f.name.clone(), (f.kind, help));
        for s in &f.series {
            for (name, mut labels, v) in samples(f, s) {
                labels.retain(|(n, _)| !group.iter().any(|(g, _)| g == n));
                labels.extend(group.iter().cloned());
                series.insert(canonical_key(&name, &labels), v);
            }
        }
    }
    Expected { series, families }
}

fn compare(page: &check::Page, want: &Expected, skip_family: impl Fn(&str) -> bool) {
    let mut got = BTreeMap::new();
    for s in page.samples.iter().filter(|s| !skip_family(&s.family)) {
        got.insert(s.key.clone(), s.value);
    }
    let missing: Vec<_> = want
        .series
        .keys()
        .filter(|k| !got.contains_key(*k))
        .collect();
    let extra: Vec<_> = got
        .keys()
        .filter(|k| !want.series.contains_key(*k))
        .collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:?}, unexpected {extra:?}"
    );
    for (k, v) in &want.series {
        assert!(same_value(got[k], *v), "{k}: page {} want {v}", got[k]);
    }
    let fams: BTreeMap<String, (MetricType, String)> = page
        .families
        .iter()
        .filter(|(n, _, _)| !skip_family(n))
        .map(|(n, k, h)| (n.clone(), (*k, h.clone())))
        .collect();
    assert_eq!(fams, want.families);
    let names: Vec<&String> = page.families.iter().map(|(n, _, _)| n).collect();
    let cache_names: Vec<&&String> = names.iter().filter(|n| !skip_family(n)).collect();
    let mut sorted = cache_names.clone();
    sorted.sort();
    assert_eq!(cache_names, sorted, "families not sorted by name");
}

// ----------------------------------------------------------- properties

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn streamed_series_render_and_parse_back_the_same(
        fams in families(&["job", "instance", "a"]),
    ) {
        let text = exposition_text(&fams);
        let mut cache = Cache::new(1 << 20);
        let mut ctx = StreamContext::default();
        let mut key = ingest::key_buffer();
        for (i, line) in text.lines().enumerate() {
            let r = ingest::apply_line(&mut cache, &mut ctx, line.as_bytes(), 0, 60_000, &mut key);
            prop_assert!(r.is_ok(), "line {}: {:?}: {:?}", i + 1, line, r);
        }
        cache.check_invariants();
        prop_assert_eq!(cache.stats.evicted_budget, 0);
        let page = page_of(&cache);
        let checked = assert_valid_page(&page);
        compare(&checked, &expected(&fams, &[]), |_| false);
    }

    #[test]
    fn pushed_groups_render_and_parse_back_the_same(
        fams in families(&["job", "instance", "a"]),
        job in raw_text(8).prop_filter("a job name", |j| !j.is_empty()),
        instance in raw_text(8),
    ) {
        // A push may not name one series twice: series whose labels differ
        // only in the grouping labels (which the path sets) are left out.
        let mut fams = fams;
        for f in &mut fams {
            let mut seen = std::collections::HashSet::new();
            f.series.retain(|s| {
                let mut own: Vec<_> = s
                    .labels
                    .iter()
                    .filter(|(n, _)| n != "job" && n != "instance")
                    .cloned()
                    .collect();
                own.sort();
                seen.insert(own)
            });
        }
        let body = exposition_text(&fams);
        let enc = |s: &str| s.bytes().map(|b| format!("%{b:02X}")).collect::<String>();
        let path = format!("/metrics/job/{}/instance/{}", enc(&job), enc(&instance));
        let mut cache = Cache::new(1 << 20);
        let mut scratch = Scratch::default();
        let r = push::handle(
            &mut cache, &mut scratch, PushMethod::Put, &path, body.as_bytes(), false, 0,
            60_000, 1_700_000_000.5,
        );
        prop_assert_eq!(r, Ok(200));
        cache.check_invariants();
        let page = page_of(&cache);
        let checked = assert_valid_page(&page);
        let group = [
            ("instance".to_string(), instance.clone()),
            ("job".to_string(), job.clone()),
        ];
        let is_push_time = |f: &str| f == PUSH_TIME || f == PUSH_FAILURE_TIME;
        compare(&checked, &expected(&fams, &group), is_push_time);
        let times: Vec<_> = checked.samples.iter().filter(|s| is_push_time(&s.family)).collect();
        prop_assert_eq!(times.len(), 2);
        let labels = canonical_key("", &group);
        for t in times {
            prop_assert_eq!(&t.key, &format!("{}{labels}", t.name));
            let want = if t.name == PUSH_TIME { 1_700_000_000.5 } else { 0.0 };
            prop_assert_eq!(t.value, want);
        }
    }

    #[test]
    fn values_survive_write_then_parse(v in value()) {
        let text = value_text(v);
        let back = exposition::parse_value(&text);
        prop_assert!(back.is_ok_and(|b| same_value(b, v) && (v != 0.0 || b == 0.0)),
            "{} written as {:?}, read back as {:?}", v, text, back);
    }

    #[test]
    fn budget_eviction_takes_the_least_recently_written_first(
        budget in 1024usize..3072,
        writes in prop::collection::vec((0usize..40, 0usize..24, -100i32..100), 1..300),
    ) {
        let mut cache = Cache::new(budget);
        let family = Family { name: "lru", kind: MetricType::Gauge, help: None };
        let key_of = |k: usize, pad: usize| format!("lru{{k=\"{k}\",pad=\"{}\"}}", "p".repeat(pad));
        // Each key keeps the padding of its first write (its size).
        let mut pads: HashMap<usize, usize> = HashMap::new();
        let mut recency: Vec<usize> = Vec::new();
        let mut insertions = 0u64;
        for (step, &(k, pad, v)) in writes.iter().enumerate() {
            let pad = *pads.entry(k).or_insert(pad);
            let key = key_of(k, pad);
            if cache.get(key.as_bytes(), 0).is_none() {
                insertions += 1;
            }
            cache.set(&family, key.as_bytes(), f64::from(v), 0, u64::MAX / 2).unwrap();
            cache.check_invariants();
            prop_assert!(cache.used() <= cache.capacity());
            recency.retain(|&r| r != k);
            recency.push(k);
            let held = cache.series_count();
            let (evicted, kept) = recency.split_at(recency.len() - held);
            for &r in kept {
                prop_assert!(cache.get(key_of(r, pads[&r]).as_bytes(), 0).is_some(),
                    "step {step}: {r} was written more recently than an evicted series, yet is gone");
            }
            for &r in evicted {
                prop_assert!(cache.get(key_of(r, pads[&r]).as_bytes(), 0).is_none(),
                    "step {step}: {r} is held though more recent series were evicted");
            }
            prop_assert_eq!(cache.get(key.as_bytes(), 0), Some(f64::from(v)));
            prop_assert_eq!(cache.stats.evicted_budget, insertions - held as u64);
        }
    }
}

// ------------------------------------------------- random operation runs

#[derive(Debug, Clone)]
enum Op {
    /// A streamed sample: series index, value.
    Stream(usize, i32),
    /// A PUT (true) or POST of some series to group `job`.
    Push(bool, usize, Vec<(usize, i32)>),
    Delete(usize),
    Advance(u64),
    Expire,
    Scrape,
}

/// A small pool of series names over a few families and types, so that
/// writes, pushes and types collide.
const SERIES: [&str; 10] = [
    "# TYPE g gauge\ng{l=\"1\"}",
    "# TYPE g gauge\ng{l=\"2\"}",
    "# TYPE c_total counter\nc_total",
    "# TYPE h histogram\nh_bucket{le=\"1\"}",
    "# TYPE h histogram\nh_sum",
    "# TYPE s summary\ns{quantile=\"0.5\"}",
    "# TYPE s summary\ns_count",
    "u{x=\"a\\\"b\"}",
    "u{x=\"\u{fc}\"}",
    "long{pad=\"pppppppppppppppppppppppppppppppppppppppppppppppp\"}",
];
const JOBS: usize = 3;

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..SERIES.len(), -50i32..50).prop_map(|(s, v)| Op::Stream(s, v)),
        2 => (any::<bool>(), 0..JOBS, prop::collection::vec((0..SERIES.len(), -50i32..50), 0..5))
            .prop_map(|(put, job, s)| Op::Push(put, job, s)),
        1 => (0..JOBS).prop_map(Op::Delete),
        2 => (0u64..800).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        2 => Just(Op::Scrape),
    ]
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    Stream(u64),
    Group(usize),
}

struct Run {
    cache: Cache,
    renderer: Renderer,
    ctx: StreamContext,
    scratch: Scratch,
    key: Vec<u8>,
    now: u64,
    ttl: u64,
    series: HashMap<String, (f64, Owner)>,
    groups: HashMap<usize, u64>,
}

/// The lines of a pool entry: its TYPE line (if any) and the sample.
fn lines_of(series: usize, v: i32) -> (Option<&'static str>, String) {
    let entry = SERIES[series];
    match entry.split_once('\n') {
        Some((ty, sample)) => (Some(ty), format!("{sample} {v}")),
        None => (None, format!("{entry} {v}")),
    }
}

fn key_of_line(line: &str, group: Option<&str>) -> String {
    let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
        panic!("{line}");
    };
    let mut key = Vec::new();
    match group {
        Some(job) => ingest::write_key(&s, &[("job", job)], &[("instance", "")], &mut key),
        None => ingest::write_key(&s, &[], &[], &mut key),
    }
    String::from_utf8(key).unwrap()
}

impl Run {
    fn apply(&mut self, op: &Op) {
        match op {
            Op::Stream(s, v) => {
                let (ty, sample) = lines_of(*s, *v);
                let mut ok = true;
                for line in ty.into_iter().chain([sample.as_str()]) {
                    ok = ingest::apply_line(
                        &mut self.cache,
                        &mut self.ctx,
                        line.as_bytes(),
                        self.now,
                        self.ttl,
                        &mut self.key,
                    )
                    .is_ok();
                }
                if ok {
                    let owner = Owner::Stream(self.now + self.ttl);
                    self.series
                        .insert(key_of_line(&sample, None), (f64::from(*v), owner));
                }
            }
            Op::Push(put, job, entries) => {
                let mut body = String::new();
                let mut declared = Vec::new();
                let mut samples = Vec::new();
                for &(s, v) in entries {
                    let (ty, sample) = lines_of(s, v);
                    if let Some(ty) = ty
                        && !declared.contains(&ty)
                    {
                        declared.push(ty);
                        body.push_str(ty);
                        body.push('\n');
                    }
                    body.push_str(&sample);
                    body.push('\n');
                    samples.push((sample, f64::from(v)));
                }
                let path = format!("/metrics/job/j{job}");
                let method = if *put {
                    PushMethod::Put
                } else {
                    PushMethod::Post
                };
                let held = self.holds_group(*job);
                let r = push::handle(
                    &mut self.cache,
                    &mut self.scratch,
                    method,
                    &path,
                    body.as_bytes(),
                    false,
                    self.now,
                    self.ttl,
                    self.now as f64,
                );
                if let Err(e) = &r
                    && e.is_validation(false)
                    && (self.groups.get(job).is_none_or(|&d| d <= self.now) || !held)
                {
                    // Recorded in a new group, as the Pushgateway does
                    // (also when the budget evicted the one there was).
                    self.groups.insert(*job, self.now + self.ttl);
                }
                if r.is_ok() {
                    if *put {
                        self.series.retain(|_, (_, o)| *o != Owner::Group(*job));
                    }
                    self.groups.insert(*job, self.now + self.ttl);
                    let group = format!("instance=\"\",job=\"j{job}\"");
                    // What the push completes, as the Pushgateway serves
                    // it: a histogram's +Inf bucket, _sum and _count, a
                    // summary's _sum and _count (the pool has no _count of
                    // h, no _sum of s).
                    let mut parts = Vec::new();
                    if samples.iter().any(|(l, _)| l.starts_with("h_")) {
                        parts.push(format!("h_bucket{{{group},le=\"+Inf\"}}"));
                        parts.push(format!("h_count{{{group}}}"));
                        if !samples.iter().any(|(l, _)| l.starts_with("h_sum")) {
                            parts.push(format!("h_sum{{{group}}}"));
                        }
                    }
                    if samples
                        .iter()
                        .any(|(l, _)| l.starts_with("s{") || l.starts_with("s_"))
                    {
                        parts.push(format!("s_sum{{{group}}}"));
                        if !samples.iter().any(|(l, _)| l.starts_with("s_count")) {
                            parts.push(format!("s_count{{{group}}}"));
                        }
                    }
                    for key in parts {
                        self.series.insert(key, (0.0, Owner::Group(*job)));
                    }
                    for (sample, v) in samples {
                        let key = key_of_line(&sample, Some(&format!("j{job}")));
                        self.series.insert(key, (v, Owner::Group(*job)));
                    }
                }
            }
            Op::Delete(job) => {
                let path = format!("/metrics/job/j{job}");
                let r = push::handle(
                    &mut self.cache,
                    &mut self.scratch,
                    PushMethod::Delete,
                    &path,
                    b"",
                    false,
                    self.now,
                    self.ttl,
                    0.0,
                );
                assert_eq!(r, Ok(202));
                self.series.retain(|_, (_, o)| *o != Owner::Group(*job));
                self.groups.remove(job);
            }
            Op::Advance(ms) => self.now += ms,
            Op::Expire => self.cache.expire(self.now),
            Op::Scrape => self.scrape(),
        }
        self.cache.check_invariants();
        assert!(self.cache.used() <= self.cache.capacity());
    }

    /// Whether the cache holds group `j{job}` (the budget may have
    /// evicted it while the model still counts it alive).
    fn holds_group(&self, job: usize) -> bool {
        let labels = format!("instance=\"\",job=\"j{job}\"");
        let mut ids = Vec::new();
        self.cache.group_ids(&mut ids);
        ids.iter()
            .any(|&g| self.cache.group(g).labels == labels.as_bytes())
    }

    fn scrape(&mut self) {
        self.cache.expire(self.now);
        let page = self.renderer.render(&self.cache, |_| {}).to_vec();
        assert_eq!(
            page,
            page_of(&self.cache),
            "the renderer's kept order is stale"
        );
        let checked = assert_valid_page(&page);
        for s in &checked.samples {
            if s.family == PUSH_TIME || s.family == PUSH_FAILURE_TIME {
                let job: usize = s.label("job").unwrap()[1..].parse().unwrap();
                let deadline = self.groups.get(&job);
                assert!(
                    deadline.is_some_and(|&d| d > self.now),
                    "group {job} served late"
                );
                continue;
            }
            let Some(&(value, owner)) = self.series.get(&s.key) else {
                panic!("{} served but never written", s.key);
            };
            let deadline = match owner {
                Owner::Stream(d) => Some(d),
                Owner::Group(job) => self.groups.get(&job).copied(),
            };
            assert!(
                deadline.is_some_and(|d| d > self.now),
                "{} ({owner:?}) served at {} past its deadline {deadline:?}",
                s.key,
                self.now
            );
            assert!(
                same_value(s.value, value),
                "{}: {} but last written {value}",
                s.key,
                s.value
            );
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn cache_invariants_hold_under_random_operations(
        budget in 1024usize..4096,
        ttl in 1u64..3000,
        ops in prop::collection::vec(op(), 1..80),
    ) {
        let cache = Cache::new(budget);
        let mut run = Run {
            renderer: Renderer::new(&cache),
            cache,
            ctx: StreamContext::default(),
            scratch: Scratch::default(),
            key: ingest::key_buffer(),
            now: 1,
            ttl,
            series: HashMap::new(),
            groups: HashMap::new(),
        };
        for op in &ops {
            run.apply(op);
        }
        run.scrape();
    }
}

//! Arbitrary sequences of cache operations against a model.
//!
//! Operations: stream lines on two connections (`ingest::apply_line`, each
//! with its own TYPE/HELP context), direct `Cache::set` with a family that
//! owns the name, group pushes (`push::handle` PUT/POST) and deletes,
//! time advancing, `Cache::expire`, and scrapes. Names, labels, types and
//! HELP texts come from small pools so that families, suffixes
//! (`_bucket`, `_sum`, `_count`), owners and type changes collide often.
//!
//! The model remembers, for every series ever written, its last value and
//! who wrote it: a stream (deadline `now + ttl`) or a group (the group's
//! deadline, renewed by each successful push). It may hold series the
//! cache has since dropped (evicted, replaced); it never misses a write.
//! A streamed `_sum` or `_count` of a histogram or summary is stored
//! without its bound (`le`, `quantile`), as the README's stream rules say.
//!
//! Checks after every operation: `check_invariants()`, `used() <=
//! capacity()`. After a successful push: every sample of its body is
//! served with its last value. At each scrape (expire at `now`, then
//! render with a renderer kept across operations, as the gateway does):
//! the page is valid exposition text, equal to a fresh renderer's; every
//! series on it is known to the model, not past its deadline, with the
//! model's value; every group on it (`push_time_seconds`) is live.
//!
//! To see what a crashing input does: `PUSH_GATEWAY_FUZZ_SHOW_OPS=1
//! tests/fuzz/target/x86_64-unknown-linux-gnu/release/cache_ops CRASH_FILE`
//! prints its decoded operations.
#![no_main]

use std::collections::HashMap;
use std::fmt::Write as _;

use arbitrary::Arbitrary;
use libfuzzer_sys::fuzz_target;
use push_gateway::cache::{Cache, Family};
use push_gateway::exposition::{Line, MetricType, Sample, parse_line};
use push_gateway::ingest::{self, StreamContext};
use push_gateway::push::{self, PushMethod, Scratch};
use push_gateway::render::{PUSH_FAILURE_TIME, PUSH_TIME, Renderer};

use fuzz_check::{assert_valid_page, same_value};

const FAMILIES: [&str; 8] = [
    "a",
    "b",
    "c_total",
    "h",
    "s",
    "a_sum",
    "h_bucket",
    "push_time_seconds",
];
const SUFFIXES: [&str; 5] = ["", "_bucket", "_sum", "_count", "_total"];
const KINDS: [MetricType; 5] = [
    MetricType::Counter,
    MetricType::Gauge,
    MetricType::Histogram,
    MetricType::Summary,
    MetricType::Untyped,
];
const LABEL_NAMES: [&str; 6] = ["l", "le", "quantile", "k", "job", "instance"];
const LABEL_VALUES: [&str; 10] = [
    "",
    "1",
    "0.5",
    "+Inf",
    "a b",
    "\\\\",
    "\\\"q\\\"",
    "x\\ny",
    "ünï",
    "not-a-number",
];
const HELPS: [Option<&str>; 5] = [
    None,
    Some(""),
    Some("Help."),
    Some("with \\\\ and \\n escapes"),
    Some("a longer help text that takes some room in the budget of a small cache"),
];
const JOBS: usize = 3;

#[derive(Arbitrary, Debug)]
struct Input {
    budget: u8,
    ttl: u16,
    ops: Vec<Op>,
}

#[derive(Arbitrary, Debug)]
enum Op {
    Stream {
        conn: bool,
        line: LineSpec,
    },
    Set {
        sample: SampleSpec,
        kind: u8,
        help: u8,
    },
    Push {
        put: bool,
        job: u8,
        lines: Vec<LineSpec>,
    },
    Delete {
        job: u8,
    },
    Advance {
        ms: u16,
    },
    Expire,
    Scrape,
}

#[derive(Arbitrary, Debug)]
enum LineSpec {
    Sample(SampleSpec),
    Type { family: u8, kind: u8 },
    Help { family: u8, help: u8 },
}

#[derive(Arbitrary, Debug)]
struct SampleSpec {
    family: u8,
    suffix: u8,
    labels: Vec<(u8, u8)>,
    value: Value,
}

#[derive(Arbitrary, Debug)]
enum Value {
    Int(i16),
    Bits(u64),
    Nan,
    Inf(bool),
}

fn pick<T: Copy>(pool: &[T], i: u8) -> T {
    pool[usize::from(i) % pool.len()]
}

impl Value {
    fn get(&self) -> f64 {
        match *self {
            Value::Int(i) => f64::from(i),
            Value::Bits(b) => f64::from_bits(b),
            Value::Nan => f64::NAN,
            Value::Inf(neg) => {
                if neg {
                    f64::NEG_INFINITY
                } else {
                    f64::INFINITY
                }
            }
        }
    }
}

impl SampleSpec {
    fn name(&self) -> (&'static str, String) {
        let family = pick(&FAMILIES, self.family);
        (family, format!("{family}{}", pick(&SUFFIXES, self.suffix)))
    }

    fn text(&self) -> String {
        self.text_without(None)
    }

    /// The sample line, leaving out label `skip` if given.
    fn text_without(&self, skip: Option<&str>) -> String {
        let (_, mut line) = self.name();
        let labels: Vec<(&str, &str)> = self
            .labels
            .iter()
            .take(6)
            .map(|&(n, v)| (pick(&LABEL_NAMES, n), pick(&LABEL_VALUES, v)))
            .filter(|&(n, _)| Some(n) != skip)
            .collect();
        if !labels.is_empty() {
            line.push('{');
            for (i, (n, v)) in labels.iter().enumerate() {
                if i > 0 {
                    line.push(',');
                }
                let _ = write!(line, "{n}=\"{v}\"");
            }
            line.push('}');
        }
        line.push(' ');
        let mut value = Vec::new();
        push_gateway::render::write_value(&mut value, self.value.get());
        line.push_str(std::str::from_utf8(&value).expect("values are ASCII"));
        line
    }
}

impl LineSpec {
    fn text(&self) -> String {
        match self {
            LineSpec::Sample(s) => s.text(),
            LineSpec::Type { family, kind } => format!(
                "# TYPE {} {}",
                pick(&FAMILIES, *family),
                pick(&KINDS, *kind).as_str()
            ),
            LineSpec::Help { family, help } => format!(
                "# HELP {} {}",
                pick(&FAMILIES, *family),
                pick(&HELPS, *help).unwrap_or("")
            ),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Owner {
    /// A streamed series and its deadline.
    Stream(u64),
    Group(usize),
}

#[derive(Default)]
struct Model {
    series: HashMap<Vec<u8>, (f64, Owner)>,
    groups: HashMap<usize, u64>,
}

fn job_name(job: usize) -> String {
    format!("j{job}")
}

struct State {
    cache: Cache,
    renderer: Renderer,
    ctx: [StreamContext; 2],
    scratch: Scratch,
    key: Vec<u8>,
    model: Model,
    now: u64,
    ttl: u64,
}

impl State {
    fn check(&self) {
        self.cache.check_invariants();
        assert!(self.cache.used() <= self.cache.capacity());
    }

    fn stream(&mut self, conn: bool, line: &LineSpec) {
        let text = line.text();
        let ctx = &mut self.ctx[usize::from(conn)];
        let result = ingest::apply_line(
            &mut self.cache,
            ctx,
            text.as_bytes(),
            self.now,
            self.ttl,
            &mut self.key,
        );
        if result.is_ok()
            && let LineSpec::Sample(spec) = line
            && let Ok(Line::Sample(s)) = parse_line(text.as_bytes())
        {
            let owner = Owner::Stream(self.now + self.ttl);
            for key in self.streamed_keys(spec, &s) {
                self.model.series.insert(key, (s.value, owner));
            }
        }
    }

    /// The key a streamed sample that was accepted is stored under, as the
    /// README's stream rules say: as written, but for a bound on `_sum` or
    /// `_count` (`le` under a histogram, `quantile` under a summary), which
    /// is dropped. Which family the sample joined (the stream's TYPE line
    /// or the cache's family) is read from the cache: the key without the
    /// bound is taken only when it holds the value in such a family. Both,
    /// when both hold the value (a series the stream wrote as it was
    /// written may stand beside it).
    fn streamed_keys(&self, spec: &SampleSpec, s: &Sample) -> Vec<Vec<u8>> {
        let mut key = Vec::new();
        ingest::write_key(s, &[], &[], &mut key);
        let holds = |key: &[u8]| {
            self.cache
                .get(key, self.now)
                .is_some_and(|v| same_value(v, s.value))
        };
        let mut keys = Vec::new();
        let (_, name) = spec.name();
        for (suffix, kind, bound) in [
            ("_sum", MetricType::Histogram, "le"),
            ("_count", MetricType::Histogram, "le"),
            ("_sum", MetricType::Summary, "quantile"),
            ("_count", MetricType::Summary, "quantile"),
        ] {
            let Some(base) = name.strip_suffix(suffix) else {
                continue;
            };
            if !fuzz_check::labels_of(s.labels())
                .iter()
                .any(|&(n, _)| n == bound)
            {
                continue;
            }
            let text = spec.text_without(Some(bound));
            let Ok(Line::Sample(stripped)) = parse_line(text.as_bytes()) else {
                continue;
            };
            let mut short = Vec::new();
            ingest::write_key(&stripped, &[], &[], &mut short);
            let found = self.cache.lookup(&short);
            let in_family = self.cache.series_family(found).is_some_and(|id| {
                let f = self.cache.family(id);
                f.kind == kind && f.name == base.as_bytes()
            });
            if in_family && holds(&short) {
                keys.push(short);
            }
        }
        if keys.is_empty() || holds(&key) {
            assert!(
                holds(&key),
                "streamed {:?} was accepted, but is served under no key it may have",
                spec.text()
            );
            keys.push(key);
        }
        keys
    }

    fn set(&mut self, sample: &SampleSpec, kind: u8, help: u8) {
        let (family, name) = sample.name();
        let kind = pick(&KINDS, kind);
        if !kind.owns(family, &name) || ingest::is_reserved(&name) || ingest::is_reserved(family) {
            return;
        }
        let text = sample.text();
        let Ok(Line::Sample(s)) = parse_line(text.as_bytes()) else {
            return;
        };
        // The cache stores what it is given: keep to what ingest accepts
        // (numeric le on histograms, numeric quantile on summaries).
        let bound = match kind {
            MetricType::Histogram => "le",
            MetricType::Summary => "quantile",
            _ => "",
        };
        if fuzz_check::labels_of(s.labels())
            .iter()
            .any(|&(n, v)| n == bound && !fuzz_check::is_float_label(v))
        {
            return;
        }
        let mut key = Vec::new();
        ingest::write_key(&s, &[], &[], &mut key);
        let family = Family {
            name: family,
            kind,
            help: pick(&HELPS, help),
        };
        if self
            .cache
            .set(&family, &key, s.value, self.now, self.ttl)
            .is_ok()
        {
            let owner = Owner::Stream(self.now + self.ttl);
            self.model.series.insert(key, (s.value, owner));
        }
    }

    fn push(&mut self, put: bool, job: usize, lines: &[LineSpec]) {
        let body: String = lines.iter().take(24).map(|l| l.text() + "\n").collect();
        let path = format!("/metrics/job/{}", job_name(job));
        let method = if put {
            PushMethod::Put
        } else {
            PushMethod::Post
        };
        let result = push::handle(
            &mut self.cache,
            &mut self.scratch,
            method,
            &path,
            body.as_bytes(),
            false,
            self.now,
            self.ttl,
            self.now as f64 / 1000.0,
        );
        if result.is_err() {
            // As the Pushgateway does, a body that parsed but failed its
            // checks is recorded in its group, created for it if new (with
            // `push_time_seconds` 0 and the group's TTL); an existing
            // group keeps its deadline.
            let labels = format!("instance=\"\",job=\"{}\"", job_name(job));
            let live = self.model.groups.get(&job).is_some_and(|&d| d > self.now);
            if !live && self.cache.group_find(labels.as_bytes()).is_some() {
                self.model.groups.insert(job, self.now + self.ttl);
            }
            return;
        }
        if put {
            self.model
                .series
                .retain(|_, (_, owner)| *owner != Owner::Group(job));
        }
        self.model.groups.insert(job, self.now + self.ttl);
        let job_label = job_name(job);
        let mut written: Vec<(Vec<u8>, f64)> = Vec::new();
        for line in body.lines() {
            if let Ok(Line::Sample(s)) = parse_line(line.as_bytes()) {
                let mut key = Vec::new();
                ingest::write_key(&s, &[("job", &job_label)], &[("instance", "")], &mut key);
                written.retain(|(k, _)| *k != key);
                written.push((key.clone(), s.value));
                self.model.series.insert(key, (s.value, Owner::Group(job)));
            }
        }
        // Histograms and summaries are completed as the Pushgateway completes
        // them (+Inf from _count, _sum and _count added, bounds in Go's
        // form, bare samples dropped): the model takes the group's series of
        // such a push from the cache, and checks the rest as written.
        let completed = body.lines().any(|l| {
            l.starts_with("# TYPE ") && (l.ends_with(" histogram") || l.ends_with(" summary"))
        });
        if completed {
            let labels = format!("instance=\"\",job=\"{job_label}\"");
            if let Some(group) = self.cache.group_find(labels.as_bytes()) {
                let mut ids = Vec::new();
                self.cache.group_series(group, &mut ids);
                self.model
                    .series
                    .retain(|_, (_, owner)| *owner != Owner::Group(job));
                for id in ids {
                    let view = self.cache.series(id);
                    self.model
                        .series
                        .insert(view.key.to_vec(), (view.value, Owner::Group(job)));
                }
            }
            return;
        }
        for (key, value) in written {
            let got = self.cache.get(&key, self.now);
            assert!(
                got.is_some_and(|v| same_value(v, value)),
                "after a successful push, {:?} is {got:?}, not {value}\nbody:\n{body}",
                String::from_utf8_lossy(&key)
            );
        }
    }

    fn delete(&mut self, job: usize) {
        let path = format!("/metrics/job/{}", job_name(job));
        let result = push::handle(
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
        if result.is_ok() {
            self.model
                .series
                .retain(|_, (_, owner)| *owner != Owner::Group(job));
            self.model.groups.remove(&job);
        }
    }

    fn scrape(&mut self) {
        self.cache.expire(self.now);
        self.check();
        let page = self.renderer.render(&self.cache, |_| {}).to_vec();
        let fresh = Renderer::new(&self.cache)
            .render(&self.cache, |_| {})
            .to_vec();
        assert_eq!(
            String::from_utf8_lossy(&page),
            String::from_utf8_lossy(&fresh),
            "the renderer's kept order is stale"
        );
        let checked = assert_valid_page(&page);
        let now = self.now;
        for s in &checked.samples {
            if (s.family == PUSH_TIME || s.family == PUSH_FAILURE_TIME)
                && s.kind == MetricType::Gauge
            {
                let job = s.label("job").and_then(|j| j.strip_prefix('j'));
                let job: usize = job.and_then(|j| j.parse().ok()).expect("a group's job");
                let deadline = self.model.groups.get(&job);
                assert!(
                    deadline.is_some_and(|&d| d > now),
                    "group {job} served at {now}, deadline {deadline:?}"
                );
                continue;
            }
            let Some(&(value, owner)) = self.model.series.get(s.key.as_bytes()) else {
                panic!("{} served, never written", s.key);
            };
            let deadline = match owner {
                Owner::Stream(d) => Some(d),
                Owner::Group(job) => self.model.groups.get(&job).copied(),
            };
            assert!(
                deadline.is_some_and(|d| d > now),
                "{} ({owner:?}) served at {now} past its deadline {deadline:?}",
                s.key
            );
            assert!(
                same_value(s.value, value),
                "{} served as {} but last written {value}",
                s.key,
                s.value
            );
        }
    }
}

fuzz_target!(|input: Input| {
    if std::env::var_os("PUSH_GATEWAY_FUZZ_SHOW_OPS").is_some() {
        eprintln!("{input:#?}");
    }
    let budget = 1024 + usize::from(input.budget % 33) * 256;
    let cache = Cache::new(budget);
    let mut state = State {
        renderer: Renderer::new(&cache),
        cache,
        ctx: [StreamContext::default(), StreamContext::default()],
        scratch: Scratch::default(),
        key: ingest::key_buffer(),
        model: Model::default(),
        now: 1,
        ttl: 1 + u64::from(input.ttl % 5000),
    };
    for op in &input.ops {
        match op {
            Op::Stream { conn, line } => state.stream(*conn, line),
            Op::Set { sample, kind, help } => state.set(sample, *kind, *help),
            Op::Push { put, job, lines } => state.push(*put, usize::from(*job) % JOBS, lines),
            Op::Delete { job } => state.delete(usize::from(*job) % JOBS),
            Op::Advance { ms } => state.now += u64::from(*ms),
            Op::Expire => state.cache.expire(state.now),
            Op::Scrape => state.scrape(),
        }
        state.check();
    }
    state.scrape();
});

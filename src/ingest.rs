//! Applies exposition lines to the cache: the meaning of a line in its
//! stream, as opposed to its syntax ([`crate::exposition`]).
//!
//! A stream connection remembers the last `# TYPE` and `# HELP` it sent
//! ([`StreamContext`]); a sample joins the family its TYPE line named
//! (`foo_bucket` joins histogram `foo`), else the family of that name the
//! cache already holds, else a new untyped family. Series keys are written
//! in canonical form (labels sorted by name), so label order does not
//! matter. Memory: the context holds at most one line's worth of HELP text;
//! the key scratch buffer is the caller's.

use std::cmp::Ordering;
use std::fmt;

use crate::bytes;
use crate::cache::{Cache, CacheError, Family, Write};
use crate::exposition::{self, Label, Line, LineError, MetricType, Sample};
use crate::limits::{LINE_MAX_BYTES, MAX_LABELS};
use crate::render::{PUSH_FAILURE_TIME, PUSH_TIME};
use crate::value::{self, GO_FLOAT_MAX_BYTES};

/// Prefix of the gateway's own metrics; pushes may not use it.
pub const RESERVED_PREFIX: &str = "push_gateway_";

/// Why a line was not applied.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestError {
    Line(LineError),
    Cache(CacheError),
    /// The sample's name belongs to a family of another type (`x` when `x`
    /// is a histogram).
    TypeConflict,
    Reserved,
    /// A `# TTL` line with an invalid or too long duration.
    Ttl,
    /// A histogram bucket without a numeric `le`, or a summary quantile
    /// without a numeric `quantile`.
    Bound,
}

impl IngestError {
    /// A short stable name, for logs and the rejected-lines counter.
    pub fn reason(self) -> &'static str {
        match self {
            IngestError::Line(e) => e.reason(),
            IngestError::Cache(CacheError::TooLarge) => "too_large",
            IngestError::Cache(CacheError::Owned) => "owned",
            IngestError::Cache(CacheError::TooManyTtls) | IngestError::Ttl => "ttl",
            IngestError::TypeConflict => "type_conflict",
            IngestError::Bound => "value",
            IngestError::Reserved => "reserved",
        }
    }
}

impl fmt::Display for IngestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            IngestError::Line(e) => e.fmt(f),
            IngestError::Cache(e) => e.fmt(f),
            IngestError::TypeConflict => f.write_str(
                "sample does not fit its family's TYPE (e.g. a bare histogram name), or its family would claim the names of another (foo_count next to a histogram foo): send _bucket, _sum and _count samples, or another name",
            ),
            IngestError::Bound => f.write_str(
                "histogram buckets need a numeric le label and summary quantiles a numeric quantile label, e.g. le=\"0.5\" or le=\"+Inf\"",
            ),
            IngestError::Ttl => f.write_str(
                "invalid TTL: write `# TTL 10m` with ms, s, m or h, at most --max-ttl",
            ),
            IngestError::Reserved => f.write_str(
                "push_time_seconds, push_failure_time_seconds and names starting with push_gateway_ are the gateway's own: choose another name",
            ),
        }
    }
}

impl From<LineError> for IngestError {
    fn from(e: LineError) -> Self {
        IngestError::Line(e)
    }
}

impl From<CacheError> for IngestError {
    fn from(e: CacheError) -> Self {
        IngestError::Cache(e)
    }
}

/// What a stream said before its current line: its last TYPE and HELP.
#[derive(Debug, Default)]
pub struct StreamContext {
    type_name: String,
    type_kind: Option<MetricType>,
    /// Set by a `# TTL` line.
    ttl_ms: Option<u64>,
    help_name: String,
    help_text: String,
}

impl StreamContext {
    /// Remembers a HELP or TYPE line.
    pub fn note(&mut self, line: &Line) {
        match line {
            Line::Help { name, text } => {
                self.help_name.clear();
                self.help_name.push_str(name);
                self.help_text.clear();
                self.help_text.push_str(text);
            }
            Line::Type { name, kind } => {
                self.type_name.clear();
                self.type_name.push_str(name);
                self.type_kind = Some(*kind);
            }
            _ => {}
        }
    }

    /// Whether the last TYPE line declared family `name` of type `kind`.
    pub fn declares(&self, name: &str, kind: MetricType) -> bool {
        self.type_kind == Some(kind) && self.type_name == name
    }

    /// Whether the last TYPE or HELP line may concern a sample `name`.
    fn speaks_of(&self, name: &str) -> bool {
        (self.type_kind.is_some() && name.starts_with(self.type_name.as_str()))
            || (!self.help_name.is_empty() && name.starts_with(self.help_name.as_str()))
    }

    fn help_for(&self, family: &str) -> Option<&str> {
        (self.help_name == family).then_some(self.help_text.as_str())
    }
}

/// Parses and applies one line (without its newline) at time `now`.
///
/// # Errors
/// What was wrong with the line; the cache is unchanged then.
pub fn apply_line(
    cache: &mut Cache,
    ctx: &mut StreamContext,
    line: &[u8],
    now: u64,
    ttl_ms: u64,
    key: &mut Vec<u8>,
) -> Result<(), IngestError> {
    let opts = StreamOptions {
        ttl_ms,
        max_ttl_ms: ttl_ms,
        drain: false,
    };
    apply_line_with(cache, ctx, line, now, &opts, key)
}

/// What a stream's lines get unless the stream says otherwise.
#[derive(Debug, Clone, Copy)]
pub struct StreamOptions {
    /// `--ttl`, until a `# TTL` line.
    pub ttl_ms: u64,
    /// The longest TTL a `# TTL` line may set (`--max-ttl`).
    pub max_ttl_ms: u64,
    /// `--drain-on-scrape`.
    pub drain: bool,
}

/// Like [`apply_line`], with the stream's options.
///
/// # Errors
/// What was wrong with the line; the cache is unchanged then.
pub fn apply_line_with(
    cache: &mut Cache,
    ctx: &mut StreamContext,
    line: &[u8],
    now: u64,
    opts: &StreamOptions,
    key: &mut Vec<u8>,
) -> Result<(), IngestError> {
    apply_parsed(cache, ctx, exposition::parse_line(line)?, now, opts, key)
}

/// Like [`apply_line_with`], for a line the caller parsed (e.g. with
/// [`exposition::parse_text`] after checking many lines as UTF-8 at once).
///
/// # Errors
/// What was wrong with the line; the cache is unchanged then.
pub fn apply_parsed(
    cache: &mut Cache,
    ctx: &mut StreamContext,
    parsed: Line,
    now: u64,
    opts: &StreamOptions,
    key: &mut Vec<u8>,
) -> Result<(), IngestError> {
    ctx.note(&parsed);
    // Matched by reference: a sample is a few hundred bytes, not worth a
    // copy per line.
    match &parsed {
        Line::Sample(sample) => {
            let scratch = key;
            // A key written in canonical form is used as it is.
            let key: &[u8] = match sample.canonical_key() {
                Some(canonical) => canonical.as_bytes(),
                None => {
                    write_key(sample, &[], &[], scratch);
                    scratch
                }
            };
            let w = Write {
                ttl_ms: ctx.ttl_ms.unwrap_or(opts.ttl_ms),
                drain: opts.drain,
                add: false,
            };
            // Most lines rewrite a series the cache holds: when the stream's
            // HELP/TYPE say nothing new of it, its family stands.
            if !ctx.speaks_of(sample.name) && cache.rewrite(key, sample.value, now, w)? {
                return Ok(());
            }
            let family = resolve_family(cache, ctx, sample.name)?;
            let fix = check_bounds(&family, sample)?;
            let key: &[u8] = match fix {
                Bound::Keep => key,
                // A stream has no later line to tell what it meant.
                Bound::Drop => return Err(IngestError::Bound),
                fix => {
                    write_fixed_key(sample, &fix, &[], &[], scratch);
                    scratch
                }
            };
            cache.set_with(&family, key, sample.value, now, w)?;
            Ok(())
        }
        Line::Ttl(text) => {
            ctx.ttl_ms = Some(parse_ttl(text, opts.max_ttl_ms).ok_or(IngestError::Ttl)?);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// A per-push TTL (`Push-TTL` header, `# TTL` line): 1 ms to `max_ms`.
pub fn parse_ttl(text: &str, max_ms: u64) -> Option<u64> {
    let ms = crate::config::parse_duration(text).ok()?.as_millis() as u64;
    (1..=max_ms).contains(&ms).then_some(ms)
}

/// Whether `name` is one of the gateway's own metric names.
pub fn is_reserved(name: &str) -> bool {
    name.starts_with(RESERVED_PREFIX) || name == PUSH_TIME || name == PUSH_FAILURE_TIME
}

/// Which family a sample named `name` belongs to.
pub fn resolve_family<'a>(
    cache: &Cache,
    ctx: &'a StreamContext,
    name: &'a str,
) -> Result<Family<'a>, IngestError> {
    let family = find_family(cache, ctx, name)?;
    // `push_time_seconds_bucket` is no reserved name, but a histogram of
    // that name would be a second `push_time_seconds` family on the page.
    if is_reserved(family.name) {
        return Err(IngestError::Reserved);
    }
    // A new (or newly typed) family may not claim the names of one the
    // cache holds, nor the cache's a name of the new one.
    if cache.family_type(family.name) != Some(family.kind)
        && collides_in_cache(cache, family.name, family.kind)
    {
        return Err(IngestError::TypeConflict);
    }
    Ok(family)
}

/// What a family's type asks of a sample's bound label (`le` of a
/// histogram bucket, `quantile` of a summary quantile), as the
/// Pushgateway's parser reads it.
#[derive(Debug, Clone, Copy)]
pub enum Bound {
    /// The labels stand as written.
    Keep,
    /// The sample carries no value the family can hold: a bucket without
    /// `le` or with `le="NaN"`, a quantile likewise, a bare histogram name.
    /// The Pushgateway drops it (the metric it names still gets `_sum` and
    /// `_count`); a stream refuses it.
    Drop,
    /// Label `i` is a bound on a `_sum` or `_count` sample, where
    /// Prometheus reads none: it is left out of the key.
    Strip(usize),
    /// Label `i` is a number written otherwise than the Pushgateway writes
    /// it (`1.0`, `0.00001`): its value becomes `text[..len]`.
    Rewrite(usize, [u8; GO_FLOAT_MAX_BYTES], u8),
}

impl Bound {
    pub fn changes_key(&self) -> bool {
        matches!(self, Bound::Strip(_) | Bound::Rewrite(..))
    }
}

/// Checks what a family's type asks of a sample's labels: a histogram
/// bucket's `le` and a summary quantile's `quantile` are numbers, or
/// Prometheus rejects the whole page, and are stored in one form.
///
/// Inlined as far as the type: most samples are of other types, and a
/// push checks each.
///
/// # Errors
/// [`IngestError::Bound`] for a bound that is not a number.
#[inline(always)]
pub fn check_bounds(family: &Family, sample: &Sample) -> Result<Bound, IngestError> {
    match family.kind {
        MetricType::Histogram | MetricType::Summary => check_bound_label(family, sample),
        _ => Ok(Bound::Keep),
    }
}

fn check_bound_label(family: &Family, sample: &Sample) -> Result<Bound, IngestError> {
    let suffix = sample.name.get(family.name.len()..).unwrap_or("");
    let (bound, is_bound_sample) = match family.kind {
        MetricType::Histogram => ("le", suffix == "_bucket"),
        MetricType::Summary => ("quantile", suffix.is_empty()),
        _ => return Ok(Bound::Keep),
    };
    if family.kind == MetricType::Histogram && suffix.is_empty() {
        return Ok(Bound::Drop);
    }
    let found = (0..sample.label_count()).find(|&i| sample.label(i).0 == bound);
    let Some(i) = found else {
        return Ok(if is_bound_sample {
            Bound::Drop
        } else {
            Bound::Keep
        });
    };
    if !is_bound_sample {
        return Ok(Bound::Strip(i));
    }
    let text = sample.label(i).1;
    if value::is_go_float(text) {
        return Ok(if text == "NaN" {
            Bound::Drop
        } else {
            Bound::Keep
        });
    }
    let v = exposition::parse_value(text).map_err(|_| IngestError::Bound)?;
    if v.is_nan() {
        return Ok(Bound::Drop);
    }
    let mut out = Vec::with_capacity(GO_FLOAT_MAX_BYTES);
    value::write_go_float(&mut out, v);
    let mut buf = [0u8; GO_FLOAT_MAX_BYTES];
    buf[..out.len()].copy_from_slice(&out);
    Ok(Bound::Rewrite(i, buf, out.len() as u8))
}

/// [`write_key`] for a sample whose bound label `fix` changes.
pub fn write_fixed_key(
    sample: &Sample,
    fix: &Bound,
    overrides: &[Label],
    defaults: &[Label],
    key: &mut Vec<u8>,
) {
    let mut labels: [Label; MAX_LABELS] = [("", ""); MAX_LABELS];
    let mut n = 0;
    let rewritten = match fix {
        Bound::Rewrite(_, text, len) => std::str::from_utf8(&text[..usize::from(*len)]).ok(),
        _ => None,
    };
    for i in 0..sample.label_count() {
        let (name, value) = sample.label(i);
        match fix {
            Bound::Strip(j) if *j == i => continue,
            Bound::Rewrite(j, ..) if *j == i => labels[n] = (name, rewritten.unwrap_or(value)),
            _ => labels[n] = (name, value),
        }
        n += 1;
    }
    write_key_parts(sample.name, &labels[..n], overrides, defaults, key);
}

/// Whether a family `name` of type `kind` and a family `other` of type
/// `other_kind` would claim the same sample names on the page (`foo_count`
/// of histogram `foo` and a gauge `foo_count`): Prometheus and promtool
/// refuse such a page, and the Pushgateway such a push.
pub fn families_collide(name: &str, kind: MetricType, other: &str, other_kind: MetricType) -> bool {
    fn claims(base: &str, kind: MetricType, name: &str) -> bool {
        let Some(suffix) = name.strip_prefix(base) else {
            return false;
        };
        match kind {
            MetricType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count"),
            MetricType::Summary => matches!(suffix, "_sum" | "_count"),
            _ => false,
        }
    }
    name != other && (claims(name, kind, other) || claims(other, other_kind, name))
}

/// The names a family `name` of type `kind` may collide with (see
/// [`families_collide`]), for `visit` to look up; stops at the first for
/// which `visit` says true and returns it.
pub fn find_collision(
    name: &str,
    kind: MetricType,
    mut visit: impl FnMut(&str) -> bool,
) -> Option<String> {
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && visit(base)
        {
            return Some(base.to_string());
        }
    }
    let suffixes: &[&str] = match kind {
        MetricType::Histogram => &["_bucket", "_sum", "_count"],
        MetricType::Summary => &["_sum", "_count"],
        _ => &[],
    };
    let mut other = String::with_capacity(name.len() + 7);
    for suffix in suffixes {
        other.clear();
        other.push_str(name);
        other.push_str(suffix);
        if visit(&other) {
            return Some(other);
        }
    }
    None
}

/// Whether the cache holds a family that a new family `name` of type
/// `kind` would collide with.
pub fn collides_in_cache(cache: &Cache, name: &str, kind: MetricType) -> bool {
    find_collision(name, kind, |other| {
        cache
            .family_type(other)
            .is_some_and(|k| families_collide(name, kind, other, k))
    })
    .is_some()
}

fn find_family<'a>(
    cache: &Cache,
    ctx: &'a StreamContext,
    name: &'a str,
) -> Result<Family<'a>, IngestError> {
    if is_reserved(name) {
        return Err(IngestError::Reserved);
    }
    let family = |family: &'a str, kind| Family {
        name: family,
        kind,
        help: ctx.help_for(family),
    };
    if let Some(kind) = ctx.type_kind
        && kind.owns(&ctx.type_name, name)
    {
        return Ok(family(&ctx.type_name, kind));
    }
    if let Some(kind) = cache.family_type(name) {
        return if kind.owns(name, name) {
            Ok(family(name, kind))
        } else {
            Err(IngestError::TypeConflict)
        };
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(kind) = cache.family_type(base)
            && kind.owns(base, name)
        {
            return Ok(family(base, kind));
        }
    }
    Ok(family(name, MetricType::Untyped))
}

/// Writes the canonical key `name{a="1",b="2"}` of `sample`: labels sorted
/// by name, values escaped as written. `overrides` (already valid labels,
/// such as a push's grouping labels) replace the sample's labels of the
/// same name; `defaults` apply where the sample has no such label.
pub fn write_key(sample: &Sample, overrides: &[Label], defaults: &[Label], key: &mut Vec<u8>) {
    if overrides.is_empty()
        && defaults.is_empty()
        && let Some(canonical) = sample.canonical_key()
    {
        key.clear();
        key.extend_from_slice(canonical.as_bytes());
        return;
    }
    let own = |i: usize| sample.label_bytes(i);
    write_key_from(
        sample.name,
        sample.label_count(),
        own,
        overrides,
        defaults,
        key,
    );
}

/// A push's grouping labels in canonical text (`instance="",job="a"`,
/// sorted by name, values escaped), split once per push so that every
/// sample's key is a merge of two sorted label lists.
pub struct GroupLabels<'a> {
    text: &'a [u8],
    /// Per label: where it starts, where its name ends, where it ends.
    spans: [(usize, usize, usize); GROUP_KEY_LABELS],
    count: usize,
    /// The label that yields to a sample's own label of that name (a
    /// default such as `instance=""`); the others replace the sample's.
    weak: Option<usize>,
}

/// Most labels [`GroupLabels`] holds; a grouping key has fewer.
const GROUP_KEY_LABELS: usize = 32;

impl<'a> GroupLabels<'a> {
    /// Splits canonical `text`; `weak` names its default label, if any.
    /// `None` if the text has more labels than fit.
    pub fn new(text: &'a [u8], weak: Option<&str>) -> Option<GroupLabels<'a>> {
        let mut g = GroupLabels {
            text,
            spans: [(0, 0, 0); GROUP_KEY_LABELS],
            count: 0,
            weak: None,
        };
        let mut at = 0;
        while at < text.len() {
            let name_end = at + memchr::memchr(b'=', &text[at..])?;
            // The value: from the quote after `=` to the next unescaped quote.
            let mut end = name_end + 2;
            while end < text.len() && text[end] != b'"' {
                end += if text[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(text.len());
            if g.count == GROUP_KEY_LABELS {
                return None;
            }
            if weak.is_some_and(|w| bytes::eq(w.as_bytes(), &text[at..name_end])) {
                g.weak = Some(g.count);
            }
            g.spans[g.count] = (at, name_end, end);
            g.count += 1;
            at = end + 1;
        }
        Some(g)
    }
}

/// [`write_key`] for a sample of a push: its labels merged with the
/// group's, written into `buf` from `at` (a push collects its keys one
/// after another); returns where the key ends. `buf` grows when it has not
/// room for the longest key this sample could have; bytes past the key
/// are left as they were, as scratch. Returns `None`, writing nothing, when
/// the sample's labels are not written in canonical form; [`write_key`]
/// handles those.
///
/// Both lists are sorted, so the key is written in runs copied whole
/// (`a="1",b="2"` at once), not label by label. This runs for every
/// sample of a push, so a run also takes along what surrounds it in its
/// text: the line's `name{` before its first label, the comma before a
/// label, the line's `}` after its last one. A key of the sample's labels
/// around the group's is then three copies and one comma, into bytes that
/// `buf` already holds: appending to a `Vec` would call `memcpy` for
/// each, and resizing it zero it each time.
pub fn write_key_grouped(
    sample: &Sample,
    group: &GroupLabels,
    buf: &mut Vec<u8>,
    at: usize,
) -> Option<usize> {
    let line = sample.canonical_key()?.as_bytes();
    // The line and the group's labels, a comma and braces at most.
    let room = at + line.len() + group.text.len() + 3;
    if buf.len() < room {
        buf.resize(room, 0);
    }
    let mut out = KeyOut { buf, at };
    let own_count = sample.label_count();
    if own_count == 0 {
        // The line is the bare name; the group's labels all go.
        out.piece(line);
        if group.count > 0 {
            out.byte(b'{');
            out.piece(group.text);
            out.byte(b'}');
        }
        return Some(out.at);
    }
    // The line's bytes not copied yet (`pending.0 == pending.1`: none): a
    // run of the sample's labels, which a canonical line with labels opens
    // with `name{`.
    let mut pending = (0, sample.name.len() + 1);
    // Whether a label is in the key (copied or pending).
    let mut any = false;
    // The group's next label.
    let mut j = 0;
    for i in 0..own_count {
        let [start, name_end, _, value_end] = sample.label_offsets(i);
        let name = &line[start..name_end];
        // The group's labels that sort before this one go first, with the
        // group's label of the same name unless that is the weak default.
        let first_group = j;
        let (mut keep, mut yields) = (true, false);
        while j < group.count {
            let (gs, ge, _) = group.spans[j];
            match cmp_names(&group.text[gs..ge], name) {
                Ordering::Less => j += 1,
                Ordering::Greater => break,
                Ordering::Equal if group.weak == Some(j) => {
                    yields = true;
                    break;
                }
                Ordering::Equal => {
                    keep = false;
                    j += 1;
                    break;
                }
            }
        }
        if j > first_group {
            out.piece(&line[pending.0..pending.1]);
            pending = (0, 0);
            out.group_run(group, first_group, j, any);
            any = true;
        }
        if yields {
            j += 1;
        }
        if !keep {
            continue;
        }
        let end = value_end + 1;
        if pending.0 < pending.1 {
            // The labels before it in the line are pending: the comma
            // between (or the `{`) is in the line too.
            pending.1 = end;
        } else if i > 0 {
            pending = (start - 1, end);
        } else {
            // Label 0 after the group's: `name{` is copied, and no comma
            // precedes it in the line.
            out.byte(b',');
            pending = (start, end);
        }
        any = true;
    }
    if j < group.count {
        out.piece(&line[pending.0..pending.1]);
        out.group_run(group, j, group.count, any);
        out.byte(b'}');
    } else if pending.0 < pending.1 && pending.1 + 1 == line.len() {
        // The sample's last label ends the line, just before its `}`.
        out.piece(&line[pending.0..]);
    } else {
        out.piece(&line[pending.0..pending.1]);
        out.byte(b'}');
    }
    Some(out.at)
}

/// Where [`write_key_grouped`] writes: bytes already in the buffer.
struct KeyOut<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl KeyOut<'_> {
    // Inlined: a few pieces per key, and as calls they cost a sixth of it.
    #[inline(always)]
    fn piece(&mut self, piece: &[u8]) {
        let end = self.at + piece.len();
        bytes::copy(&mut self.buf[self.at..end], piece);
        self.at = end;
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.at] = b;
        self.at += 1;
    }

    /// The group's labels `from..to`, after a comma when `any` label
    /// precedes them: the group's text has it, but before its first label.
    fn group_run(&mut self, group: &GroupLabels, from: usize, to: usize, any: bool) {
        let (mut start, _, _) = group.spans[from];
        let (_, _, end) = group.spans[to - 1];
        if any {
            if from > 0 {
                start -= 1;
            } else {
                self.byte(b',');
            }
        }
        self.piece(&group.text[start..end]);
    }
}

/// Orders label names; most differ in their first byte, which spares the
/// word-wise comparison.
#[inline]
fn cmp_names(a: &[u8], b: &[u8]) -> Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => bytes::cmp(a, b),
    }
}

/// [`write_key`] for a name and labels that did not come from a line.
pub fn write_key_parts(
    name: &str,
    sample_labels: &[Label],
    overrides: &[Label],
    defaults: &[Label],
    key: &mut Vec<u8>,
) {
    let own = |i: usize| label_bytes(&sample_labels[i]);
    write_key_from(name, sample_labels.len(), own, overrides, defaults, key);
}

/// A label as bytes: name and escaped value.
type LabelBytes<'a> = (&'a [u8], &'a [u8]);

fn label_bytes<'a>((name, value): &Label<'a>) -> LabelBytes<'a> {
    (name.as_bytes(), value.as_bytes())
}

/// Where a label of a key comes from: the sample's own label `i`, override
/// `i` or default `i`. Small, so that the list of a key's labels costs a
/// few hundred bytes of stack to set up, not kilobytes.
#[derive(Clone, Copy)]
enum Pick {
    Own(u8),
    Override(u8),
    Default(u8),
}

/// Most labels a key is built from; more are dropped (a sample has at most
/// [`MAX_LABELS`], and grouping labels are as bounded); indexes fit a `u8`.
const MAX_KEY_LABELS: usize = MAX_LABELS * 2;

fn write_key_from<'a>(
    name: &str,
    own_count: usize,
    own: impl Fn(usize) -> LabelBytes<'a>,
    overrides: &[Label<'a>],
    defaults: &[Label<'a>],
    key: &mut Vec<u8>,
) {
    let label = |p: Pick| match p {
        Pick::Own(i) => own(usize::from(i)),
        Pick::Override(i) => label_bytes(&overrides[usize::from(i)]),
        Pick::Default(i) => label_bytes(&defaults[usize::from(i)]),
    };
    let overridden = |n: &[u8]| overrides.iter().any(|(o, _)| bytes::eq(o.as_bytes(), n));
    let mut picks = [Pick::Own(0); MAX_KEY_LABELS];
    let mut n = 0;
    let mut pick = |p: Pick| {
        if n < picks.len() {
            picks[n] = p;
            n += 1;
        }
    };
    for i in 0..overrides.len().min(MAX_KEY_LABELS) {
        pick(Pick::Override(i as u8));
    }
    for i in 0..own_count.min(MAX_KEY_LABELS) {
        if !overridden(own(i).0) {
            pick(Pick::Own(i as u8));
        }
    }
    for (i, (d, _)) in defaults.iter().enumerate().take(MAX_KEY_LABELS) {
        let d = d.as_bytes();
        if !overridden(d) && !(0..own_count).any(|j| bytes::eq(own(j).0, d)) {
            pick(Pick::Default(i as u8));
        }
    }
    let picks = &mut picks[..n];
    // Insertion sort: label lists are short and often already in order.
    for i in 1..picks.len() {
        let mut j = i;
        while j > 0 && bytes::cmp(label(picks[j - 1]).0, label(picks[j]).0).is_gt() {
            picks.swap(j - 1, j);
            j -= 1;
        }
    }
    key.clear();
    key.extend_from_slice(name.as_bytes());
    if picks.is_empty() {
        return;
    }
    key.push(b'{');
    for (i, &p) in picks.iter().enumerate() {
        let (name, value) = label(p);
        if i > 0 {
            key.push(b',');
        }
        key.extend_from_slice(name);
        key.extend_from_slice(b"=\"");
        key.extend_from_slice(value);
        key.push(b'"');
    }
    key.push(b'}');
}

/// Whether the canonical key `key` has every label of `matchers` (values
/// escaped) with exactly that value.
pub fn key_matches(key: &[u8], matchers: &[Label]) -> bool {
    matchers.iter().all(|(name, value)| {
        let mut pattern = [0u8; 256];
        let needle_len = name.len() + value.len() + 3;
        if needle_len > pattern.len() {
            return false;
        }
        pattern[..name.len()].copy_from_slice(name.as_bytes());
        pattern[name.len()..name.len() + 2].copy_from_slice(b"=\"");
        pattern[name.len() + 2..needle_len - 1].copy_from_slice(value.as_bytes());
        pattern[needle_len - 1] = b'"';
        let needle = &pattern[..needle_len];
        // A label starts after `{` or `,` outside any quoted value.
        key.windows(needle_len).enumerate().any(|(i, w)| {
            w == needle && i > 0 && matches!(key[i - 1], b'{' | b',') && !in_value(key, i)
        })
    })
}

/// Whether byte `at` of a canonical key lies inside a quoted label value.
fn in_value(key: &[u8], at: usize) -> bool {
    let mut inside = false;
    let mut i = 0;
    while i < at {
        match key[i] {
            b'\\' if inside => i += 1,
            b'"' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}

/// A key scratch buffer big enough for any line's key.
pub fn key_buffer() -> Vec<u8> {
    Vec::with_capacity(2 * LINE_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Renderer;

    fn feed(
        cache: &mut Cache,
        ctx: &mut StreamContext,
        text: &str,
    ) -> Vec<Result<(), IngestError>> {
        let mut key = key_buffer();
        text.lines()
            .map(|l| apply_line(cache, ctx, l.as_bytes(), 0, 1000, &mut key))
            .collect()
    }

    fn page(cache: &Cache) -> String {
        let mut r = Renderer::new(cache);
        String::from_utf8(r.render(cache, |_| {}).to_vec()).unwrap()
    }

    #[test]
    fn label_order_does_not_matter() {
        let mut cache = Cache::new(4096);
        let mut ctx = StreamContext::default();
        feed(
            &mut cache,
            &mut ctx,
            "x{b=\"2\",a=\"1\"} 1\nx{a=\"1\", b=\"2\"} 5\n",
        );
        assert_eq!(cache.series_count(), 1);
        assert_eq!(cache.get(b"x{a=\"1\",b=\"2\"}", 0), Some(5.0));
    }

    #[test]
    fn type_and_help_apply_to_their_family() {
        let mut cache = Cache::new(8192);
        let mut ctx = StreamContext::default();
        let results = feed(
            &mut cache,
            &mut ctx,
            "# HELP rpc_seconds RPC latency.\n\
             # TYPE rpc_seconds summary\n\
             rpc_seconds{quantile=\"0.5\"} 0.2\n\
             rpc_seconds_sum 10\n\
             rpc_seconds_count 50\n\
             # TYPE up gauge\n\
             up 1\n\
             rpc_seconds_count 51\n\
             other 3\n",
        );
        assert!(results.iter().all(Result::is_ok), "{results:?}");
        assert_eq!(
            page(&cache),
            "# TYPE other untyped\n\
             other 3\n\
             # HELP rpc_seconds RPC latency.\n\
             # TYPE rpc_seconds summary\n\
             rpc_seconds{quantile=\"0.5\"} 0.2\n\
             rpc_seconds_sum 10\n\
             rpc_seconds_count 51\n\
             # TYPE up gauge\n\
             up 1\n"
        );
    }

    #[test]
    fn later_connections_join_existing_families() {
        let mut cache = Cache::new(8192);
        feed(
            &mut cache,
            &mut StreamContext::default(),
            "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
        );
        let mut fresh = StreamContext::default();
        let r = feed(&mut cache, &mut fresh, "h_sum 3\nh 1\n");
        assert_eq!(r, vec![Ok(()), Err(IngestError::TypeConflict)]);
        assert_eq!(cache.family_count(), 1);
        assert_eq!(cache.series_count(), 2);
    }

    #[test]
    fn rejects_reserved_names_and_bad_lines() {
        let mut cache = Cache::new(4096);
        let r = feed(
            &mut cache,
            &mut StreamContext::default(),
            "push_gateway_cache_bytes 1\nx 1 123\nok 1\n",
        );
        assert_eq!(
            r,
            vec![
                Err(IngestError::Reserved),
                Err(IngestError::Line(LineError::Timestamp)),
                Ok(())
            ]
        );
        assert_eq!(cache.series_count(), 1);
    }

    #[test]
    fn a_key_written_as_is_equals_the_rebuilt_key() {
        for line in [
            "x{a=\"1\",b=\"2\"} 1",
            "x{b=\"2\",a=\"1\"} 1",
            "x{ a=\"1\"} 1",
            "x{a=\"1\",} 1",
            "x {a=\"1\"} 1",
            "x{} 1",
            "x 1",
            "x{a=\"1\", b=\"2\"} 1",
            "x{a = \"1\"} 1",
            "x{a=\"1\" ,b=\"2\"} 1",
            "x{aa=\"1\",a=\"2\"} 1",
            "x{a=\"\\\"}\",b=\"\"} 1",
        ] {
            let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            let mut fast = Vec::new();
            write_key(&s, &[], &[], &mut fast);
            let labels: Vec<Label> = s.labels().collect();
            let mut slow = Vec::new();
            write_key_parts(s.name, &labels, &[], &[], &mut slow);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap(),
                "{line}"
            );
        }
    }

    #[test]
    fn matchers() {
        let key = br#"m{a="1",b="x,c=\"2\"",c="3"}"#;
        assert!(key_matches(key, &[("a", "1"), ("c", "3")]));
        assert!(key_matches(key, &[]));
        assert!(!key_matches(key, &[("a", "2")]));
        assert!(!key_matches(key, &[("c", "\\\"2\\\"")]));
        assert!(key_matches(key, &[("b", "x,c=\\\"2\\\"")]));
    }

    #[test]
    fn ttl_lines_set_the_ttl_of_what_follows() {
        let mut cache = Cache::new(4096);
        let mut ctx = StreamContext::default();
        let opts = StreamOptions {
            ttl_ms: 1000,
            max_ttl_ms: 60_000,
            drain: false,
        };
        let mut key = key_buffer();
        for line in ["a 1", "# TTL 10s", "b 1", "# TTL 2h", "# TTL soon"] {
            let r = apply_line_with(&mut cache, &mut ctx, line.as_bytes(), 0, &opts, &mut key);
            assert_eq!(
                r.is_ok(),
                !line.contains("2h") && !line.contains("soon"),
                "{line}"
            );
        }
        cache.expire(1000);
        assert_eq!(cache.get(b"a", 1000), None);
        assert_eq!(cache.get(b"b", 9999), Some(1.0));
        cache.expire(10_000);
        assert_eq!(cache.series_count(), 0);
    }

    #[test]
    fn overrides_replace_sample_labels() {
        let line = "m{instance=\"a\",z=\"1\"} 1";
        let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
            panic!()
        };
        let mut key = Vec::new();
        write_key(&s, &[("job", "j"), ("instance", "b")], &[], &mut key);
        assert_eq!(key, b"m{instance=\"b\",job=\"j\",z=\"1\"}");
        write_key(&s, &[("job", "j")], &[("instance", "")], &mut key);
        assert_eq!(key, b"m{instance=\"a\",job=\"j\",z=\"1\"}");
        let Ok(Line::Sample(bare)) = exposition::parse_line(b"m 1") else {
            panic!()
        };
        write_key(&bare, &[("job", "j")], &[("instance", "")], &mut key);
        assert_eq!(key, b"m{instance=\"\",job=\"j\"}");
    }

    #[test]
    fn grouped_keys_for_every_overlap_of_label_names() {
        // Every subset of these names on the sample, against every grouping
        // key (with `job`) of them: runs of either side at the start, in
        // the middle and at the end, and names on both sides.
        let names = ["a", "b", "instance", "job", "k", "zz"];
        let mut checked = 0;
        for own in 0..1u32 << names.len() {
            let mut line = String::from("m");
            let picked: Vec<&str> = (0..names.len())
                .filter(|b| own & 1 << b != 0)
                .map(|b| names[b])
                .collect();
            if !picked.is_empty() {
                let labels: Vec<String> = picked.iter().map(|n| format!("{n}=\"o{n}\"")).collect();
                line = format!("m{{{}}}", labels.join(","));
            }
            line.push_str(" 1");
            let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            for grouping in 0..1u32 << names.len() {
                let labels: Vec<Label> = (0..names.len())
                    .filter(|b| grouping & 1 << b != 0 || names[*b] == "job")
                    .map(|b| (names[b], "g"))
                    .collect();
                let has_instance = labels.iter().any(|(n, _)| *n == "instance");
                let mut all = labels.clone();
                if !has_instance {
                    all.push(("instance", ""));
                    all.sort();
                }
                let text: Vec<String> = all.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
                let text = text.join(",");
                let group =
                    GroupLabels::new(text.as_bytes(), (!has_instance).then_some("instance"))
                        .unwrap();
                let mut slow = Vec::new();
                write_key(&s, &labels, &[("instance", "")], &mut slow);
                let mut fast = Vec::new();
                let end = write_key_grouped(&s, &group, &mut fast, 0).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&fast[..end]),
                    String::from_utf8_lossy(&slow),
                    "{line} with {text}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 64 * 64);
    }

    #[test]
    fn grouped_keys_are_the_keys_write_key_builds() {
        let lines = [
            "m 1",
            "m{} 1",
            "m{a=\"1\"} 1",
            "m{instance=\"x\"} 1",
            "m{job=\"mine\",z=\"2\"} 1",
            "m{a=\"1\",instance=\"i\",job=\"q\",zone=\"z\"} 1",
            "m{a=\"\\\",x\\\"\",b=\"\"} 1",
            "m{z=\"1\",a=\"2\"} 1",
            "m{ a=\"1\" } 1",
            "m{le=\"0.5\",series=\"9\"} 1",
            "m{aaa=\"1\",zzzz=\"2\"} 1",
            "m{b=\"1\",instance=\"i\",zzzz=\"x\"} 1",
            "m{job=\"x\"} 1",
            "m{a=\"1\",job=\"x\"} 1",
            "m{job=\"x\",zzzz=\"1\"} 1",
            "m{a=\"1\",b=\"2\",c=\"3\",job=\"x\",k=\"4\",zzzz=\"5\"} 1",
        ];
        let groups: [&[Label]; 7] = [
            &[("job", "j")],
            &[("instance", "b"), ("job", "j")],
            &[("a", "g"), ("job", "j"), ("zone", "\\\",")],
            &[("job", "j"), ("series", "s")],
            &[("job", "j"), ("zzz", "last")],
            &[("b", "g"), ("job", "j"), ("k", "")],
            &[("a", "1"), ("c", "3"), ("job", "j"), ("zzzz", "z")],
        ];
        let defaults: &[Label] = &[("instance", "")];
        let mut merged = 0;
        for labels in groups {
            let mut text = String::new();
            let has_instance = labels.iter().any(|(n, _)| *n == "instance");
            let mut all: Vec<Label> = labels.to_vec();
            if !has_instance {
                all.push(("instance", ""));
            }
            all.sort();
            for (n, v) in &all {
                if !text.is_empty() {
                    text.push(',');
                }
                text.push_str(&format!("{n}=\"{v}\""));
            }
            let weak = (!has_instance).then_some("instance");
            let group = GroupLabels::new(text.as_bytes(), weak).unwrap();
            for line in lines {
                let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                    panic!("{line}")
                };
                let mut slow = Vec::new();
                write_key(&s, labels, defaults, &mut slow);
                // Written after other bytes, into a buffer with scratch.
                let mut fast = b"before".to_vec();
                if let Some(end) = write_key_grouped(&s, &group, &mut fast, 6) {
                    merged += 1;
                    assert_eq!(
                        String::from_utf8_lossy(&fast[6..end]),
                        String::from_utf8_lossy(&slow),
                        "{line} with {text}"
                    );
                    assert_eq!(&fast[..6], b"before");
                } else {
                    assert!(s.canonical_key().is_none(), "{line}");
                    assert_eq!(fast, b"before");
                }
            }
        }
        assert_eq!(merged, 7 * 13, "every canonical line takes the merge");
    }
}

//! Applies exposition lines to the cache: the meaning of a line in its
//! stream, as opposed to its syntax ([`crate::exposition`]).
//!
//! A stream connection remembers the last `# TYPE` and `# HELP` it sent
//! ([`StreamContext`]); a sample joins the family its TYPE line named
//! (`foo_bucket` joins histogram `foo`), else the family of that name the
//! cache already holds, else a new untyped family. Series keys are written
//! in canonical form ([`crate::key`]), so label order does not matter. A
//! family's type decides what its samples' bound labels must be
//! ([`check_bounds`]) and which other families it may not stand next to
//! ([`families_collide`]). Memory: the context holds at most one line's
//! worth of HELP text; the key scratch buffer is the caller's.

use std::fmt;

use crate::cache::{Cache, CacheError, Family, Write};
use crate::exposition::{self, Label, Line, LineError, MetricType, Sample};
use crate::limits::MAX_LABELS;
use crate::render::{PUSH_FAILURE_TIME, PUSH_TIME};
use crate::value::{self, GO_FLOAT_MAX_BYTES};

pub use crate::key::{
    GroupLabels, key_buffer, key_matches, write_key, write_key_grouped, write_key_parts,
};

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
                "histogram buckets need a numeric le label and summary quantiles a numeric quantile label, e.g. le=\"0.5\" or le=\"+Inf\" (an le or quantile on _sum or _count must be a number too, or be left out)",
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
    let text = sample.label(i).1;
    if !is_bound_sample {
        // The Pushgateway reads the bound of every sample of the family as
        // a number and refuses the push when it is none; on `_sum` and
        // `_count` a number is then left out.
        if !value::is_go_float(text) && exposition::parse_value(text).is_err() {
            return Err(IngestError::Bound);
        }
        return Ok(Bound::Strip(i));
    }
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

    /// A numeric bound on `_sum` or `_count` is left out of the key; one
    /// that is not a number refuses the line, as the Pushgateway refuses
    /// the push.
    #[test]
    fn bounds_on_sum_and_count_are_dropped_or_refused() {
        let mut cache = Cache::new(4096);
        let r = feed(
            &mut cache,
            &mut StreamContext::default(),
            "# TYPE s summary\ns_sum{quantile=\"0.5\"} 1\ns_count{quantile=\"\"} 2\n\
             # TYPE h histogram\nh_sum{le=\"x\"} 3\nh_count{le=\"NaN\"} 4\n",
        );
        let bound = Err(IngestError::Bound);
        assert_eq!(r, vec![Ok(()), Ok(()), bound, Ok(()), bound, Ok(())]);
        assert_eq!(cache.get(b"s_sum", 0), Some(1.0));
        assert_eq!(cache.get(b"h_count", 0), Some(4.0));
        assert_eq!(cache.series_count(), 2);
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
}

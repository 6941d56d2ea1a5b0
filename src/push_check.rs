//! Checking a push body before anything changes (the first pass of a
//! push): what the body's lines mean as a group's families and series, by
//! the Prometheus Pushgateway's rules, and whether the cache can take it.
//!
//! * A family's type is what the body's `# TYPE` line says, else untyped,
//!   whatever other groups hold (a PATCH joins the families the cache
//!   holds, as a stream does). A type that differs from the cache's is
//!   refused while another group or a stream holds series of that family;
//!   a family only this group holds may change its type.
//! * Families that would claim each other's sample names (`foo_count`
//!   next to histogram `foo`) are refused, inside the body or against the
//!   cache.
//! * A `# HELP` line applies to its family wherever it stands; a second
//!   one for the same family is refused. A family without one has no HELP,
//!   unless other groups or streams hold it: then it keeps the HELP it has.
//! * `le` and `quantile` are stored in the Pushgateway's form; each
//!   histogram gets its `+Inf` bucket (from `_count`), `_sum` and `_count`,
//!   and each summary its `_sum` and `_count`, at 0 when the body has none,
//!   as the Pushgateway serves them.
//! * A series twice in one body is refused (label order and bound forms
//!   aside).
//!
//! Memory: the [`Scratch`] buffers, reused across requests; the first pass
//! stops as soon as the push could not fit the cache, which bounds them by
//! about the cache budget.

use crate::bytes;
use crate::cache::{self, Cache, CacheError, Family, HEADER_BYTES, ID_BYTES, Lookup};
use crate::exposition::{self, Label, Line, MetricType};
use crate::ingest::{self, Bound, IngestError, StreamContext};
use crate::name_index::{HashKeyed, NameIndex};
use crate::push::{Conflict, MAX_GROUP_LABELS, PushError, PushMethod, Request};
use crate::push_path::Span;

/// Buffers a push reuses from one request to the next.
#[derive(Default)]
pub struct Scratch {
    /// Decoded and escaped path segments.
    pub(crate) path: Vec<u8>,
    /// The canonical grouping key `instance="",job="a"`.
    pub(crate) group: Vec<u8>,
    /// A protobuf body converted to text.
    pub(crate) text: Vec<u8>,
    /// The families the body pushes, with their types.
    pub(crate) families: NameIndex<MetricType>,
    /// The names the body's TYPE lines declare, with their types.
    declared: NameIndex<MetricType>,
    /// The body's HELP lines: each name with its text, a range of the body.
    helps: NameIndex<(u32, u32)>,
    pub(crate) key: Vec<u8>,
    ctx: StreamContext,
    pub(crate) spans: [Span; MAX_GROUP_LABELS],
    /// The checked samples of the push being applied.
    pub(crate) entries: Vec<Entry>,
    /// Their keys, one after another from the start. Its length is the
    /// most any push used: the bytes past the keys of the push under way
    /// are scratch, so writing a key needs no zeroing or `memcpy`.
    pub(crate) keys: Vec<u8>,
    /// Their families, and the families' names and HELP texts.
    pub(crate) fams: Vec<FamilyEntry>,
    pub(crate) fam_text: Vec<u8>,
    /// The histograms and summaries of the body, one per label set, and
    /// their keys without the bound label (`h{a="1",job="j"}`).
    metrics: Vec<Metric>,
    bases: Vec<u8>,
    /// Hash of a base key to its metric; of an entry's key to the entry.
    metric_index: HashKeyed<u32>,
    entry_index: HashKeyed<u32>,
}

/// One checked sample, ready to apply.
pub(crate) struct Entry {
    pub(crate) key: (usize, usize),
    /// The check's lookup, which spares the write a second search.
    pub(crate) found: Lookup,
    pub(crate) value: f64,
    pub(crate) family: usize,
    pub(crate) add: bool,
    /// The series exists in this group and the push leaves its family as
    /// it is: the write may go by id ([`Cache::group_rewrite`]).
    pub(crate) rewrite: bool,
    /// The body line it came from, for errors.
    line: u64,
}

/// A family as the push states it; its text lives in `Scratch::fam_text`.
pub(crate) struct FamilyEntry {
    name: (usize, usize),
    help: Option<(usize, usize)>,
    kind: MetricType,
    /// The cache's record of this family as stated ([`Cache::family_id`]),
    /// looked up once per family rather than per sample.
    cached: Option<u32>,
}

impl FamilyEntry {
    fn store(text: &mut Vec<u8>, f: &Family, cached: Option<u32>) -> FamilyEntry {
        let mut put = |s: &str| {
            let start = text.len();
            text.extend_from_slice(s.as_bytes());
            (start, text.len())
        };
        FamilyEntry {
            name: put(f.name),
            help: f.help.map(put),
            kind: f.kind,
            cached,
        }
    }

    pub(crate) fn family<'a>(&self, text: &'a [u8]) -> Family<'a> {
        let s = |(a, b): (usize, usize)| std::str::from_utf8(&text[a..b]).unwrap_or("");
        Family {
            name: s(self.name),
            kind: self.kind,
            help: self.help.map(s),
        }
    }

    fn is(&self, text: &[u8], f: &Family) -> bool {
        let same = |r: (usize, usize), s: &str| bytes::eq(&text[r.0..r.1], s.as_bytes());
        self.kind == f.kind
            && same(self.name, f.name)
            && match (self.help, f.help) {
                (None, None) => true,
                (Some(r), Some(h)) => same(r, h),
                _ => false,
            }
    }
}

/// A histogram or summary of the body: one label set of one family, and
/// which of its parts the body has.
struct Metric {
    family: usize,
    base: (usize, usize),
    line: u64,
    has_inf: bool,
    has_sum: bool,
    has_count: bool,
    count: f64,
}

/// What the first pass found: the bytes the push needs and the group it
/// changes, if that exists.
pub(crate) struct Checked {
    pub(crate) needed: usize,
    pub(crate) group: Option<u32>,
}

/// Checks the whole body (text) of a push to the group `s.group` with
/// grouping labels `labels`, leaving its series in `s.entries`.
///
/// # Errors
/// [`PushError`] saying what to fix; nothing has changed then.
pub(crate) fn check(
    cache: &Cache,
    s: &mut Scratch,
    req: &Request,
    labels: &[Label],
    body: &[u8],
) -> Result<Checked, PushError> {
    // Taken out while the pass writes the other buffers.
    let group_key = std::mem::take(&mut s.group);
    let checked = check_body(cache, s, &group_key, req, labels, body);
    s.group = group_key;
    checked
}

fn check_body(
    cache: &Cache,
    s: &mut Scratch,
    group_key: &[u8],
    req: &Request,
    labels: &[Label],
    body: &[u8],
) -> Result<Checked, PushError> {
    let method = req.method;
    let defaults: &[Label] = &[("instance", "")];
    s.ctx = StreamContext::default();
    s.families.clear();
    s.declared.clear();
    s.entries.clear();
    s.metrics.clear();
    s.bases.clear();
    s.metric_index.clear();
    s.entry_index.clear();
    // Where the keys of this push end in `s.keys`.
    let mut keys_end = 0;
    s.fams.clear();
    s.fam_text.clear();
    scan_helps(body, &mut s.helps)?;
    let mut needed = 0;
    // The grouping key is canonical already: samples merge with it.
    let weak = (!labels.iter().any(|(n, _)| *n == "instance")).then_some("instance");
    let grouped = ingest::GroupLabels::new(group_key, weak);
    // Found once: this pass does not change the cache.
    let group = cache.group_find(group_key);
    // Histograms and summaries are completed as the Pushgateway serves
    // them; a PATCH adds what it sends and nothing else.
    let complete = method != PushMethod::Patch;
    // The family of the last line when it was a sample (its entry in
    // `s.fams`, its kind and the length of its name, a prefix of the
    // sample name): a following sample of the same name has it too.
    let mut last: Option<(&str, usize, MetricType, usize)> = None;
    let mut line_no = 0;
    let mut lines = exposition::Lines::new(body);
    while let Some(line) = lines.next_line() {
        line_no += 1;
        // Parsed here, where it is used: a parsed line is a few hundred
        // bytes, and handing it on copies it.
        let parsed = exposition::parse(line);
        let fail = |error: IngestError| PushError::Line {
            line: line_no,
            error,
        };
        let sample = match &parsed {
            Ok(Line::Sample(sample)) => sample,
            Ok(other) => {
                if let Line::Type { name, kind } = other {
                    if s.declared.find(name.as_bytes()).is_some() {
                        return Err(PushError::DuplicateType { line: line_no });
                    }
                    if s.families.find(name.as_bytes()).is_some() {
                        return Err(PushError::TypeAfterSamples { line: line_no });
                    }
                    // `# TYPE h_sum gauge` after a histogram `h`: the
                    // Pushgateway's parser takes it for a second TYPE of `h`.
                    if method != PushMethod::Patch && body_family(&s.declared, name).0 != *name {
                        return Err(PushError::DuplicateType { line: line_no });
                    }
                    s.declared.add(name.as_bytes(), *kind);
                    if ingest::is_reserved(name) {
                        return Err(fail(IngestError::Reserved));
                    }
                    // A PATCH adds to the family the cache holds.
                    if method == PushMethod::Patch
                        && cache.family_type(name).is_some_and(|k| k != *kind)
                    {
                        return Err(PushError::TypeConflict {
                            line: line_no,
                            with: Conflict::Other,
                        });
                    }
                }
                s.ctx.note(other);
                last = None;
                continue;
            }
            Err(e) => return Err(fail((*e).into())),
        };
        let (fam, kind, name_len) = match last {
            Some((name, fam, kind, len)) if bytes::eq(name.as_bytes(), sample.name.as_bytes()) => {
                (fam, kind, len)
            }
            _ => {
                let family = if method == PushMethod::Patch {
                    ingest::resolve_family(cache, &s.ctx, sample.name).map_err(fail)?
                } else {
                    let (name, kind) = body_family(&s.declared, sample.name);
                    if ingest::is_reserved(name) {
                        return Err(fail(IngestError::Reserved));
                    }
                    let help = help_of(body, &s.helps, name).unwrap_or("");
                    Family {
                        name,
                        kind,
                        help: push_help(cache, group, name, kind, help),
                    }
                };
                if s.fams.last().is_none_or(|f| !f.is(&s.fam_text, &family)) {
                    if s.families.find(family.name.as_bytes()).is_none() {
                        check_family(cache, s, method, group, &family, line_no)?;
                    }
                    // Only a group that exists can hold series to rewrite.
                    let cached = group.and_then(|_| cache.family_id(&family));
                    needed += add_family(
                        &mut s.families,
                        &mut s.fams,
                        &mut s.fam_text,
                        &family,
                        cached,
                    );
                }
                (s.fams.len() - 1, family.kind, family.name.len())
            }
        };
        last = Some((sample.name, fam, kind, name_len));
        let family_name = &sample.name[..name_len];
        let fix = match kind {
            MetricType::Histogram | MetricType::Summary => {
                let family = Family {
                    name: family_name,
                    kind,
                    help: None,
                };
                ingest::check_bounds(&family, sample).map_err(fail)?
            }
            _ => Bound::Keep,
        };
        let key_start = keys_end;
        let merged = match fix {
            Bound::Keep => grouped
                .as_ref()
                .and_then(|g| ingest::write_key_grouped(sample, g, &mut s.keys, key_start)),
            _ => None,
        };
        keys_end = match merged {
            Some(end) => end,
            None => {
                if fix.changes_key() {
                    ingest::write_fixed_key(sample, &fix, labels, defaults, &mut s.key);
                } else {
                    ingest::write_key(sample, labels, defaults, &mut s.key);
                }
                put_key(&mut s.keys, key_start, &s.key)
            }
        };
        if complete && matches!(kind, MetricType::Histogram | MetricType::Summary) {
            let suffix = &sample.name[name_len..];
            note_metric(
                s,
                fam,
                kind,
                family_name,
                suffix,
                (key_start, keys_end),
                sample.value,
                line_no,
            );
        }
        if let Bound::Drop = fix {
            keys_end = key_start;
            continue;
        }
        let add = method == PushMethod::Patch && adds(kind, family_name, sample.name);
        needed += add_entry(
            cache,
            s,
            group,
            (key_start, keys_end),
            fam,
            sample.value,
            add,
            line_no,
        )?;
        // Stop as soon as the push cannot fit: this also bounds what the
        // scratch buffers hold to about the cache budget.
        if needed > cache.push_room() {
            return Err(PushError::TooLarge);
        }
    }
    complete_metrics(cache, s, group, keys_end, &mut needed)?;
    if method != PushMethod::Patch {
        refuse_duplicates(s)?;
    }
    Ok(Checked { needed, group })
}

/// Copies `key` into `keys` at `at`, growing it if needed; returns where it
/// ends.
fn put_key(keys: &mut Vec<u8>, at: usize, key: &[u8]) -> usize {
    let end = at + key.len();
    if keys.len() < end {
        keys.resize(end, 0);
    }
    keys[at..end].copy_from_slice(key);
    end
}

/// Records the series `key` (a range of `s.keys`) of family entry `fam`;
/// returns the bytes it may need.
#[allow(clippy::too_many_arguments)]
fn add_entry(
    cache: &Cache,
    s: &mut Scratch,
    group: Option<u32>,
    key: (usize, usize),
    fam: usize,
    value: f64,
    add: bool,
    line: u64,
) -> Result<usize, PushError> {
    let bytes = &s.keys[key.0..key.1];
    let found = cache.lookup(bytes);
    if cache.owned_by_other(found, group) {
        return Err(PushError::Line {
            line,
            error: IngestError::Cache(CacheError::Owned),
        });
    }
    // Not owned by another: if it exists, this group holds it.
    let cached = s.fams[fam].cached;
    let exists = cache.series_family(found);
    let rewrite = cached.is_some() && exists == cached;
    // A series this group holds has its id already, counted in
    // `Cache::push_room`; written anew it takes that id again.
    let needed = record_bytes(bytes.len()) - if exists.is_some() { ID_BYTES } else { 0 };
    s.entries.push(Entry {
        key,
        found,
        value,
        family: fam,
        add,
        rewrite,
        line,
    });
    Ok(needed)
}

/// The family a sample of a PUT or POST belongs to, by the body's TYPE
/// lines alone: the declared family of its name, or of the name without
/// `_bucket`, `_sum` or `_count` when that family's type has such samples,
/// else an untyped family of its name.
fn body_family<'a>(declared: &NameIndex<MetricType>, name: &'a str) -> (&'a str, MetricType) {
    if let Some(kind) = declared.get(name.as_bytes()) {
        return (name, kind);
    }
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && let Some(kind) = declared.get(base.as_bytes())
            && kind.owns(base, name)
        {
            return (base, kind);
        }
    }
    (name, MetricType::Untyped)
}

/// The HELP a push gives its family: the body's (none is no HELP), as a
/// group's push replaces its families whole; but a family other groups or
/// streams hold keeps the HELP it has, as the Pushgateway serves the first
/// group's. The walk that tells is made only when the HELP would change.
fn push_help<'a>(
    cache: &Cache,
    group: Option<u32>,
    name: &str,
    kind: MetricType,
    help: &'a str,
) -> Option<&'a str> {
    let stated = Family {
        name,
        kind,
        help: Some(help),
    };
    if cache.family_id(&stated).is_none()
        && cache.family_type(name).is_some()
        && cache.family_held_elsewhere(name, group)
    {
        return None;
    }
    Some(help)
}

/// Checks a family new to this push against the cache and the families
/// the body pushed before it.
fn check_family(
    cache: &Cache,
    s: &Scratch,
    method: PushMethod,
    group: Option<u32>,
    family: &Family,
    line: u64,
) -> Result<(), PushError> {
    let (name, kind) = (family.name, family.kind);
    if method != PushMethod::Patch
        && cache.family_type(name).is_some_and(|k| k != kind)
        && cache.family_held_elsewhere(name, group)
    {
        return Err(PushError::TypeConflict {
            line,
            with: Conflict::Other,
        });
    }
    let in_body = |other: &str| {
        s.families
            .get(other.as_bytes())
            .is_some_and(|k| ingest::families_collide(name, kind, other, k))
    };
    if ingest::find_collision(name, kind, in_body).is_some() {
        return Err(PushError::NameCollision {
            line,
            with: Conflict::Body,
        });
    }
    // The group's own families go with a PUT; a POST keeps those it does
    // not name, so they count as another's.
    let in_cache = |other: &str| {
        cache.family_type(other).is_some_and(|k| {
            ingest::families_collide(name, kind, other, k)
                && (method != PushMethod::Put || cache.family_held_elsewhere(other, group))
        })
    };
    if ingest::find_collision(name, kind, in_cache).is_some() {
        return Err(PushError::NameCollision {
            line,
            with: Conflict::Other,
        });
    }
    Ok(())
}

/// Finds the body's HELP lines (a pass over its `#` bytes, not its lines)
/// so that a HELP applies to its family wherever it stands, as in the
/// Pushgateway; refuses a second HELP for one family. A malformed HELP
/// line is left to the full pass, which names it.
fn scan_helps(body: &[u8], helps: &mut NameIndex<(u32, u32)>) -> Result<(), PushError> {
    helps.clear();
    let offset = |part: &[u8]| part.as_ptr() as usize - body.as_ptr() as usize;
    let mut skip_to = 0;
    for hash in memchr::memchr_iter(b'#', body) {
        if hash < skip_to {
            continue;
        }
        let start = memchr::memrchr(b'\n', &body[..hash]).map_or(0, |n| n + 1);
        let end = memchr::memchr(b'\n', &body[hash..]).map_or(body.len(), |n| hash + n);
        skip_to = end;
        if !body[start..hash].iter().all(|&b| b == b' ' || b == b'\t') {
            continue;
        }
        let Ok(Line::Help { name, text }) = exposition::parse_line(&body[start..end]) else {
            continue;
        };
        let name = name.as_bytes();
        if helps.find(name).is_some() {
            let line = memchr::memchr_iter(b'\n', &body[..start]).count() as u64 + 1;
            return Err(PushError::DuplicateHelp { line });
        }
        // Offsets fit: a body is far below 4 GiB (--max-body-bytes).
        let t = offset(text.as_bytes());
        helps.add(name, (t as u32, (t + text.len()) as u32));
    }
    Ok(())
}

/// The HELP text the body gives family `name`, if any.
fn help_of<'a>(body: &'a [u8], helps: &NameIndex<(u32, u32)>, name: &str) -> Option<&'a str> {
    let (start, end) = helps.get(name.as_bytes())?;
    std::str::from_utf8(&body[start as usize..end as usize]).ok()
}

/// Records a family the body pushes (a new one, or one with other HELP
/// text than the family before); returns the bytes it may need.
fn add_family(
    families: &mut NameIndex<MetricType>,
    fams: &mut Vec<FamilyEntry>,
    fam_text: &mut Vec<u8>,
    family: &Family,
    cached: Option<u32>,
) -> usize {
    let mut needed = 0;
    if families.find(family.name.as_bytes()).is_none() {
        // Counted even when the family exists: making room may evict its
        // last series and the family with it, and a new HELP text moves it
        // (old and new side by side for a time).
        let size = record_bytes(family.name.len() + family.help.map_or(0, str::len));
        needed = if family.help.is_some() {
            2 * size
        } else {
            size
        };
        // A family the cache holds has its id already (as a series does,
        // see `add_entry`).
        if cached.is_some() {
            needed -= ID_BYTES;
        }
        families.add(family.name.as_bytes(), family.kind);
    }
    fams.push(FamilyEntry::store(fam_text, family, cached));
    needed
}

/// Notes a sample of a histogram or summary (its key `key`, a range of
/// `s.keys`) as part of the metric of its label set.
#[allow(clippy::too_many_arguments)]
fn note_metric(
    s: &mut Scratch,
    fam: usize,
    kind: MetricType,
    family: &str,
    suffix: &str,
    key: (usize, usize),
    value: f64,
    line: u64,
) {
    let bound: &[u8] = if kind == MetricType::Histogram {
        b"le"
    } else {
        b"quantile"
    };
    let start = s.bases.len();
    s.bases.extend_from_slice(family.as_bytes());
    let labels = key_labels(&s.keys[key.0..key.1]);
    let mut is_inf = false;
    let mut any = false;
    for ((ns, ne), (vs, ve)) in LabelIter::new(labels) {
        if &labels[ns..ne] == bound {
            is_inf = &labels[vs..ve] == b"+Inf";
            continue;
        }
        s.bases.push(if any { b',' } else { b'{' });
        any = true;
        // The label with its closing quote.
        s.bases.extend_from_slice(&labels[ns..ve + 1]);
    }
    if any {
        s.bases.push(b'}');
    }
    let base = (start, s.bases.len());
    let h = cache::hash(&s.bases[base.0..base.1]);
    let same =
        |m: &Metric, bases: &[u8]| bytes::eq(&bases[m.base.0..m.base.1], &bases[base.0..base.1]);
    let at = match s.metric_index.get(&h) {
        Some(&i) if same(&s.metrics[i as usize], &s.bases) => Some(i as usize),
        // Another base of the same hash: rare, so searched in full.
        Some(_) => s.metrics.iter().position(|m| same(m, &s.bases)),
        None => None,
    };
    let i = match at {
        Some(i) => {
            s.bases.truncate(start);
            i
        }
        None => {
            s.metric_index.entry(h).or_insert(s.metrics.len() as u32);
            s.metrics.push(Metric {
                family: fam,
                base,
                line,
                has_inf: false,
                has_sum: false,
                has_count: false,
                count: 0.0,
            });
            s.metrics.len() - 1
        }
    };
    let m = &mut s.metrics[i];
    match suffix {
        "_bucket" if kind == MetricType::Histogram => m.has_inf |= is_inf,
        "_sum" => m.has_sum = true,
        "_count" => {
            m.has_count = true;
            m.count = value;
        }
        _ => {}
    }
}

/// The labels of canonical key `key`, without braces (empty if none).
fn key_labels(key: &[u8]) -> &[u8] {
    match memchr::memchr(b'{', key) {
        Some(open) if key.len() > open + 1 => &key[open + 1..key.len() - 1],
        _ => &[],
    }
}

/// The labels `name="value"` of a canonical key's label text: each name
/// and value as a range of the text (the value without its quotes).
struct LabelIter<'a> {
    text: &'a [u8],
    at: usize,
}

impl<'a> LabelIter<'a> {
    fn new(text: &'a [u8]) -> LabelIter<'a> {
        LabelIter { text, at: 0 }
    }
}

impl<'a> Iterator for LabelIter<'a> {
    type Item = ((usize, usize), (usize, usize));

    fn next(&mut self) -> Option<Self::Item> {
        let t = self.text;
        if self.at >= t.len() {
            return None;
        }
        let eq = self.at + memchr::memchr(b'=', &t[self.at..])?;
        let name = (self.at, eq);
        let value_start = eq + 2;
        let mut i = value_start;
        while i < t.len() && t[i] != b'"' {
            i += if t[i] == b'\\' { 2 } else { 1 };
        }
        let value_end = i.min(t.len());
        // Past the quote and the comma.
        self.at = value_end + 2;
        Some((name, (value_start, value_end)))
    }
}

/// Adds what the body's histograms and summaries lack, as the Pushgateway
/// serves them: a histogram's `+Inf` bucket (its `_count`, or 0), `_sum`
/// and `_count` (0), a summary's `_sum` and `_count` (0).
fn complete_metrics(
    cache: &Cache,
    s: &mut Scratch,
    group: Option<u32>,
    mut keys_end: usize,
    needed: &mut usize,
) -> Result<(), PushError> {
    for i in 0..s.metrics.len() {
        let m = &s.metrics[i];
        let (fam, line, count) = (m.family, m.line, m.count);
        let histogram = s.fams[fam].kind == MetricType::Histogram;
        let parts = [
            ("_bucket", histogram && !m.has_inf, count),
            ("_sum", !m.has_sum, 0.0),
            ("_count", !m.has_count, 0.0),
        ];
        let base = m.base;
        for (suffix, missing, value) in parts {
            if !missing {
                continue;
            }
            let start = keys_end;
            s.key.clear();
            let base_key = &s.bases[base.0..base.1];
            let name_end = memchr::memchr(b'{', base_key).unwrap_or(base_key.len());
            s.key.extend_from_slice(&base_key[..name_end]);
            s.key.extend_from_slice(suffix.as_bytes());
            let labels = key_labels(base_key);
            if suffix == "_bucket" {
                write_labels_with(&mut s.key, labels, b"le", b"+Inf");
            } else if !labels.is_empty() {
                s.key.push(b'{');
                s.key.extend_from_slice(labels);
                s.key.push(b'}');
            }
            keys_end = put_key(&mut s.keys, start, &s.key);
            *needed += add_entry(cache, s, group, (start, keys_end), fam, value, false, line)?;
            if *needed > cache.push_room() {
                return Err(PushError::TooLarge);
            }
        }
    }
    Ok(())
}

/// Writes `{labels}` with `name="value"` put in its sorted place.
fn write_labels_with(out: &mut Vec<u8>, labels: &[u8], name: &[u8], value: &[u8]) {
    out.push(b'{');
    let mut placed = false;
    let mut first = true;
    let mut put = |out: &mut Vec<u8>, bytes: &[&[u8]]| {
        if !first {
            out.push(b',');
        }
        first = false;
        for b in bytes {
            out.extend_from_slice(b);
        }
    };
    for ((ns, ne), (vs, ve)) in LabelIter::new(labels) {
        let n = &labels[ns..ne];
        if !placed && bytes::cmp(n, name).is_gt() {
            put(out, &[name, b"=\"", value, b"\""]);
            placed = true;
        }
        put(out, &[n, b"=\"", &labels[vs..ve], b"\""]);
    }
    if !placed {
        put(out, &[name, b"=\"", value, b"\""]);
    }
    out.push(b'}');
}

/// Refuses a push that names one series twice.
fn refuse_duplicates(s: &mut Scratch) -> Result<(), PushError> {
    for i in 0..s.entries.len() {
        let (a, b) = s.entries[i].key;
        let key = &s.keys[a..b];
        let h = cache::hash(key);
        let same = |e: &Entry| bytes::eq(&s.keys[e.key.0..e.key.1], key);
        let first = match s.entry_index.get(&h) {
            Some(&j) if same(&s.entries[j as usize]) => Some(j as usize),
            // Another key of the same hash: rare, so searched in full.
            Some(_) => s.entries[..i].iter().position(same),
            None => {
                s.entry_index.insert(h, i as u32);
                None
            }
        };
        if let Some(j) = first {
            return Err(PushError::Duplicate {
                line: s.entries[i].line,
                first: s.entries[j].line,
            });
        }
    }
    Ok(())
}

/// Whether a PATCH adds this sample to the stored value (counters,
/// untyped, histogram parts, summary sum and count) or replaces it (gauges,
/// summary quantiles).
fn adds(kind: MetricType, family: &str, sample: &str) -> bool {
    match kind {
        MetricType::Counter | MetricType::Untyped | MetricType::Histogram => true,
        MetricType::Gauge => false,
        MetricType::Summary => family != sample,
    }
}

/// What a record of `key_len` bytes costs in the cache, id included.
pub(crate) fn record_bytes(key_len: usize) -> usize {
    (HEADER_BYTES + key_len).div_ceil(8) * 8 + ID_BYTES
}

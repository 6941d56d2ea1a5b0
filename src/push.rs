//! The Prometheus Pushgateway's push API, served on the push socket:
//! `PUT`, `POST` and `DELETE` on `/metrics/job/<JOB>{/<LABEL>/<VALUE>}`,
//! plus what other small gateways offer: `PATCH` on the same path adds to
//! counters, `PATCH /counter/<METRIC>?label=value` counts without a client
//! library, `DELETE /metrics/name/<METRIC>?label=value` drops a family
//! across groups, and `PUT /api/v1/admin/wipe` drops everything.
//!
//! * The grouping key comes from the path: percent-decoded, or URL-safe
//!   base64 for a name suffixed `@base64`. Its labels are set on every
//!   sample of the group; a sample without `instance` gets `instance=""`.
//! * `PUT` replaces the whole group, `POST` the families named in the body,
//!   `DELETE` removes the group.
//! * A push is all or nothing: the body is checked completely (syntax,
//!   timestamps, types against other groups, ownership, size) before the
//!   cache changes. A failed push records `push_failure_time_seconds`.
//! * A group lives `--ttl` after its last successful push, as a whole.
//!
//! Memory: the [`Scratch`] buffers, reused across requests and bounded by
//! the body limit.

use std::fmt;

use crate::bytes;
use crate::cache::{Cache, CacheError, Family, HEADER_BYTES, ID_BYTES, Lookup, Write};
use crate::exposition::MetricType;
use crate::exposition::{self, Label, Line};
use crate::ingest::{self, IngestError, StreamContext};
use crate::protobuf::{self, ProtoError};

/// Most labels in a grouping key (`job` included).
pub const MAX_GROUP_LABELS: usize = 16;

/// Buffers a push reuses from one request to the next.
#[derive(Default)]
pub struct Scratch {
    /// Decoded and escaped path segments.
    path: Vec<u8>,
    /// The canonical grouping key `instance="",job="a"`.
    group: Vec<u8>,
    /// A protobuf body converted to text.
    text: Vec<u8>,
    /// Names of the families the body pushes, one per line.
    families: Vec<u8>,
    /// Names the body's TYPE lines declare, one per line.
    declared: Vec<u8>,
    key: Vec<u8>,
    ctx: StreamContext,
    spans: [Span; MAX_GROUP_LABELS],
    /// The checked samples of the push being applied.
    entries: Vec<Entry>,
    /// Their keys, one after another from the start. Its length is the
    /// most any push used: the bytes past the keys of the push under way
    /// are scratch, so writing a key needs no zeroing or `memcpy`.
    keys: Vec<u8>,
    /// Their families, and the families' names and HELP texts.
    fams: Vec<FamilyEntry>,
    fam_text: Vec<u8>,
}

/// One checked sample, ready to apply.
struct Entry {
    key: (usize, usize),
    /// The check's lookup, which spares the write a second search.
    found: Lookup,
    value: f64,
    family: usize,
    add: bool,
    /// The series exists in this group and the push leaves its family as
    /// it is: the write may go by id ([`Cache::group_rewrite`]).
    rewrite: bool,
}

/// A family as the push states it; its text lives in `Scratch::fam_text`.
struct FamilyEntry {
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

    fn family<'a>(&self, text: &'a [u8]) -> Family<'a> {
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

/// What the request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushMethod {
    Put,
    Post,
    Patch,
    Delete,
}

/// One request to the push API, as the HTTP layer read it.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    pub method: PushMethod,
    /// Still percent-encoded.
    pub path: &'a str,
    pub query: &'a str,
    pub protobuf: bool,
    /// The group's (or counter's) TTL: `Push-TTL`, else `--ttl`.
    pub ttl_ms: u64,
    /// Drain on scrape: `Push-Drain: true`, or `--drain-on-scrape`.
    pub drain: bool,
}

/// Why a push was refused; the cache is unchanged then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    Path(&'static str),
    Line {
        line: u64,
        error: IngestError,
    },
    TypeConflict {
        line: u64,
    },
    DuplicateType {
        line: u64,
    },
    TypeAfterSamples {
        line: u64,
    },
    Proto(ProtoError),
    TooLarge,
    /// Another method is needed on this path; the `Allow` list.
    Method(&'static str),
    NotFound,
    /// A counter increment that is not a non-negative number.
    Increment,
    Cache(CacheError),
}

impl PushError {
    pub fn status(&self) -> u16 {
        match self {
            PushError::TooLarge => 413,
            PushError::Method(_) => 405,
            PushError::NotFound => 404,
            _ => 400,
        }
    }

    /// The `Allow` header of a 405.
    pub fn allow(&self) -> Option<&'static str> {
        match self {
            PushError::Method(allow) => Some(allow),
            _ => None,
        }
    }

    /// A short stable name, for logs and the rejected-pushes counter.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Path(_) => "path",
            PushError::Line { error, .. } => error.reason(),
            PushError::TypeConflict { .. }
            | PushError::DuplicateType { .. }
            | PushError::TypeAfterSamples { .. } => "type_conflict",
            PushError::Proto(_) => "protobuf",
            PushError::TooLarge => "too_large",
            PushError::Method(_) | PushError::NotFound | PushError::Increment => "http",
            PushError::Cache(e) => IngestError::Cache(*e).reason(),
        }
    }
}

impl fmt::Display for PushError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PushError::Path(what) => f.write_str(what),
            PushError::Line { line, error } => write!(f, "line {line}: {error}"),
            PushError::TypeConflict { line } => write!(
                f,
                "line {line}: this metric has another TYPE in another group or stream: push it with the same TYPE, or rename it"
            ),
            PushError::DuplicateType { line } => write!(
                f,
                "line {line}: second TYPE line for the same metric: declare each family once"
            ),
            PushError::TypeAfterSamples { line } => write!(
                f,
                "line {line}: TYPE line after samples of the same metric: put TYPE before the samples"
            ),
            PushError::Proto(e) => e.fmt(f),
            PushError::TooLarge => f.write_str(
                "push larger than the cache budget: push fewer or shorter series, or raise --cache-bytes",
            ),
            PushError::Method(allow) => write!(f, "method not allowed: this path takes {allow}"),
            PushError::NotFound => f.write_str(
                "not found: push to /metrics/job/<JOB>{/<LABEL>/<VALUE>} or /counter/<METRIC>",
            ),
            PushError::Increment => f.write_str(
                "invalid counter increment: send an empty body (adds 1) or a non-negative number",
            ),
            PushError::Cache(e) => e.fmt(f),
        }
    }
}

impl From<ProtoError> for PushError {
    fn from(e: ProtoError) -> Self {
        PushError::Proto(e)
    }
}

/// Byte ranges of one grouping label in [`Scratch::path`].
#[derive(Clone, Copy, Default)]
struct Span {
    name: (usize, usize),
    value: (usize, usize),
}

/// Path of the whole-cache wipe.
pub const WIPE_PATH: &str = "/api/v1/admin/wipe";

/// Whether `path` belongs to the push API (served on the socket only).
pub fn is_push_path(path: &str) -> bool {
    path.starts_with("/metrics/job/")
        || path.starts_with("/metrics/job@base64/")
        || path.starts_with("/metrics/name/")
        || path.starts_with("/counter/")
        || path == WIPE_PATH
}

/// Serves one request of the push API. `body` is the whole request body.
///
/// # Errors
/// [`PushError`] saying what to fix; the cache is unchanged except for the
/// group's `push_failure_time_seconds`.
pub fn handle_request(
    cache: &mut Cache,
    s: &mut Scratch,
    req: &Request,
    body: &[u8],
    now: u64,
    unix_now: f64,
) -> Result<u16, PushError> {
    if req.path.starts_with("/metrics/job") {
        return group_request(cache, s, req, body, now, unix_now);
    }
    if let Some(name) = req.path.strip_prefix("/metrics/name/") {
        if req.method != PushMethod::Delete {
            return Err(PushError::Method("DELETE"));
        }
        let name = decode_name(name, &mut s.key)?;
        let n = parse_query(req.query, &mut s.path, &mut s.spans)?;
        let matchers = labels_of(&s.path, &s.spans[..n]);
        cache.delete_family(&name, |key| ingest::key_matches(key, &matchers));
        return Ok(202);
    }
    if let Some(name) = req.path.strip_prefix("/counter/") {
        if !matches!(req.method, PushMethod::Patch | PushMethod::Post) {
            return Err(PushError::Method("PATCH, POST"));
        }
        return count(cache, s, req, name, body, now);
    }
    if req.path == WIPE_PATH {
        if req.method != PushMethod::Put {
            return Err(PushError::Method("PUT"));
        }
        let removed = cache.wipe();
        log::info!("wiped the cache on request: {removed} series removed");
        return Ok(202);
    }
    Err(PushError::NotFound)
}

/// `PATCH /counter/<METRIC>?label=value`: adds the body's number (1 if
/// empty) to a streamed counter, creating it at that value.
fn count(
    cache: &mut Cache,
    s: &mut Scratch,
    req: &Request,
    name: &str,
    body: &[u8],
    now: u64,
) -> Result<u16, PushError> {
    let name = decode_name(name, &mut s.key)?;
    if ingest::is_reserved(&name) {
        return Err(PushError::Line {
            line: 1,
            error: IngestError::Reserved,
        });
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| PushError::Increment)?
        .trim();
    let delta = if text.is_empty() {
        1.0
    } else {
        exposition::parse_value(text).map_err(|_| PushError::Increment)?
    };
    if !(delta >= 0.0 && delta.is_finite()) {
        return Err(PushError::Increment);
    }
    if cache
        .family_type(&name)
        .is_some_and(|k| k != MetricType::Counter)
    {
        return Err(PushError::TypeConflict { line: 1 });
    }
    let n = parse_query(req.query, &mut s.path, &mut s.spans)?;
    let mut labels = labels_of(&s.path, &s.spans[..n]);
    labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
    ingest::write_key_parts(&name, &labels, &[], &[], &mut s.key);
    let family = Family {
        name: &name,
        kind: MetricType::Counter,
        help: None,
    };
    let w = Write {
        ttl_ms: req.ttl_ms,
        drain: req.drain,
        add: true,
    };
    cache
        .set_with(&family, &s.key, delta, now, w)
        .map_err(PushError::Cache)?;
    Ok(200)
}

/// A percent-decoded metric name from a path segment.
fn decode_name(segment: &str, buf: &mut Vec<u8>) -> Result<String, PushError> {
    buf.clear();
    percent_decode(segment, buf, false)?;
    let name =
        std::str::from_utf8(buf).map_err(|_| PushError::Path("the metric name is not UTF-8"))?;
    if !exposition::is_metric_name(name) {
        return Err(PushError::Path(
            "invalid metric name in the path: use [a-zA-Z_:][a-zA-Z0-9_:]*",
        ));
    }
    Ok(name.to_string())
}

/// Decodes `a=1&b=2` into label spans in `buf` (values escaped).
fn parse_query(
    query: &str,
    buf: &mut Vec<u8>,
    spans: &mut [Span; MAX_GROUP_LABELS],
) -> Result<usize, PushError> {
    buf.clear();
    let mut n = 0;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        let name_start = buf.len();
        percent_decode(name, buf, true)?;
        let name_end = buf.len();
        let decoded = std::str::from_utf8(&buf[name_start..name_end]).unwrap_or("");
        if !exposition::is_label_name(decoded) || decoded.starts_with("__") {
            return Err(PushError::Path(
                "invalid label name in the query: use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __",
            ));
        }
        if spans[..n]
            .iter()
            .any(|s| buf[s.name.0..s.name.1] == buf[name_start..name_end])
        {
            return Err(PushError::Path("a label appears twice in the query"));
        }
        if n == MAX_GROUP_LABELS {
            return Err(PushError::Path(
                "too many labels in the query: the limit is 16",
            ));
        }
        let value_start = buf.len();
        decode_value(value, false, true, buf)?;
        spans[n] = Span {
            name: (name_start, name_end),
            value: (value_start, buf.len()),
        };
        n += 1;
    }
    Ok(n)
}

fn labels_of<'a>(buf: &'a [u8], spans: &[Span]) -> Vec<Label<'a>> {
    spans
        .iter()
        .map(|s| (span_str(buf, s.name), span_str(buf, s.value)))
        .collect()
}

/// Serves one push request. `body` is the whole request body.
///
/// # Errors
/// [`PushError`] saying what to fix; the cache is unchanged except for the
/// group's `push_failure_time_seconds`.
#[allow(clippy::too_many_arguments)]
pub fn handle(
    cache: &mut Cache,
    s: &mut Scratch,
    method: PushMethod,
    path: &str,
    body: &[u8],
    is_protobuf: bool,
    now: u64,
    ttl_ms: u64,
    unix_now: f64,
) -> Result<u16, PushError> {
    let req = Request {
        method,
        path,
        query: "",
        protobuf: is_protobuf,
        ttl_ms,
        drain: false,
    };
    handle_request(cache, s, &req, body, now, unix_now)
}

/// PUT, POST, PATCH or DELETE on `/metrics/job/...`.
fn group_request(
    cache: &mut Cache,
    s: &mut Scratch,
    req: &Request,
    body: &[u8],
    now: u64,
    unix_now: f64,
) -> Result<u16, PushError> {
    let (method, path, is_protobuf) = (req.method, req.path, req.protobuf);
    let mut spans = [Span::default(); MAX_GROUP_LABELS];
    let n = parse_path(path, &mut s.path, &mut spans)?;
    let path_buf = std::mem::take(&mut s.path);
    let result = (|| {
        let mut labels: [Label; MAX_GROUP_LABELS] = [("", ""); MAX_GROUP_LABELS];
        for (i, span) in spans[..n].iter().enumerate() {
            labels[i] = (
                span_str(&path_buf, span.name),
                span_str(&path_buf, span.value),
            );
        }
        let labels = &mut labels[..n];
        labels.sort_unstable_by(|a, b| a.0.cmp(b.0));
        write_group_key(labels, &mut s.group);
        if method == PushMethod::Delete {
            cache.group_delete(&s.group);
            return Ok(202);
        }
        let text = if is_protobuf {
            s.text.clear();
            let limit = 8 * cache.capacity().max(body.len());
            protobuf::to_text(body, &mut s.text, limit)?;
            std::mem::take(&mut s.text)
        } else {
            Vec::new()
        };
        let body_text = if is_protobuf { &text[..] } else { body };
        let outcome = push(cache, s, req, labels, body_text, now, unix_now);
        if is_protobuf {
            s.text = text;
        }
        outcome.map(|()| 200)
    })();
    s.path = path_buf;
    if result.is_err() {
        cache.group_failed(&s.group, unix_now);
    }
    result
}

fn span_str(buf: &[u8], (start, end): (usize, usize)) -> &str {
    std::str::from_utf8(&buf[start..end]).unwrap_or("")
}

/// Writes the canonical grouping key: labels sorted, `instance=""` added
/// when the path has no instance.
fn write_group_key(labels: &[Label], out: &mut Vec<u8>) {
    out.clear();
    let has_instance = labels.iter().any(|(n, _)| *n == "instance");
    let mut first = true;
    let mut write = |out: &mut Vec<u8>, (name, value): Label| {
        if !first {
            out.push(b',');
        }
        first = false;
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b"=\"");
        out.extend_from_slice(value.as_bytes());
        out.push(b'"');
    };
    let mut instance_written = has_instance;
    for &l in labels {
        if !instance_written && l.0 > "instance" {
            write(out, ("instance", ""));
            instance_written = true;
        }
        write(out, l);
    }
    if !instance_written {
        write(out, ("instance", ""));
    }
}

/// Decodes `/metrics/job/<JOB>{/<LABEL>/<VALUE>}` into `buf` (names raw,
/// values escaped for the text format) and `spans`; returns the count.
fn parse_path(
    path: &str,
    buf: &mut Vec<u8>,
    spans: &mut [Span; MAX_GROUP_LABELS],
) -> Result<usize, PushError> {
    let rest = path.strip_prefix("/metrics/").ok_or(PushError::Path(
        "push paths are /metrics/job/<JOB>{/<LABEL>/<VALUE>}",
    ))?;
    buf.clear();
    let mut segments = rest.split('/');
    let mut n = 0;
    while let Some(name_seg) = segments.next() {
        if name_seg.is_empty() && n > 0 && segments.clone().next().is_none() {
            break; // a trailing slash
        }
        let value_seg = segments.next().ok_or(PushError::Path(
            "grouping labels come in pairs: /metrics/job/<JOB>/<LABEL>/<VALUE>",
        ))?;
        // Names are percent-decoded too, as the Pushgateway does (it
        // routes on the decoded path), and only then split from `@base64`.
        let name_start = buf.len();
        percent_decode(name_seg, buf, false)?;
        let decoded = std::str::from_utf8(&buf[name_start..]).unwrap_or("");
        let (name_len, base64) = match decoded.strip_suffix("@base64") {
            Some(name) => (name.len(), true),
            None => (decoded.len(), false),
        };
        buf.truncate(name_start + name_len);
        let name = std::str::from_utf8(&buf[name_start..]).unwrap_or("");
        if n == 0 && name != "job" {
            return Err(PushError::Path("push paths start with /metrics/job/<JOB>"));
        }
        if !exposition::is_label_name(name) || name.starts_with("__") {
            return Err(PushError::Path(
                "invalid label name in the path: use [a-zA-Z_][a-zA-Z0-9_]*, not starting with __",
            ));
        }
        if n == MAX_GROUP_LABELS {
            return Err(PushError::Path("too many grouping labels: the limit is 16"));
        }
        let name_end = buf.len();
        if spans[..n]
            .iter()
            .any(|s| buf[s.name.0..s.name.1] == buf[name_start..name_end])
        {
            return Err(PushError::Path(
                "a grouping label appears twice in the path",
            ));
        }
        let value_start = buf.len();
        decode_value(value_seg, base64, false, buf)?;
        let value_end = buf.len();
        if n == 0 && value_start == value_end {
            return Err(PushError::Path(
                "the job name is empty: give one, e.g. /metrics/job/backup",
            ));
        }
        spans[n] = Span {
            name: (name_start, name_end),
            value: (value_start, value_end),
        };
        n += 1;
    }
    if n == 0 {
        return Err(PushError::Path(
            "push paths are /metrics/job/<JOB>{/<LABEL>/<VALUE>}",
        ));
    }
    Ok(n)
}

/// Decodes a path segment (percent-encoding, or base64) and appends it to
/// `out` escaped as a label value.
fn decode_value(
    seg: &str,
    base64: bool,
    plus_is_space: bool,
    out: &mut Vec<u8>,
) -> Result<(), PushError> {
    let start = out.len();
    if base64 {
        decode_base64(seg, out)?;
    } else {
        percent_decode(seg, out, plus_is_space)?;
    }
    let raw_end = out.len();
    let raw = std::str::from_utf8(&out[start..raw_end])
        .map_err(|_| PushError::Path("a path label value is not UTF-8"))?;
    if raw.contains(['\\', '"', '\n']) {
        let raw = raw.to_owned();
        out.truncate(start);
        protobuf::escape_label_value(out, &raw);
    }
    Ok(())
}

/// Percent-decoding; in a query string `+` also stands for a space.
fn percent_decode(seg: &str, out: &mut Vec<u8>, plus_is_space: bool) -> Result<(), PushError> {
    let bytes = seg.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes
                .get(i + 1..i + 3)
                .and_then(|h| std::str::from_utf8(h).ok())
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or(PushError::Path("invalid percent-encoding in the path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(if plus_is_space && bytes[i] == b'+' {
                b' '
            } else {
                bytes[i]
            });
            i += 1;
        }
    }
    Ok(())
}

/// URL-safe base64 (the standard alphabet is accepted too), padding
/// optional; `=` alone is the empty value.
fn decode_base64(seg: &str, out: &mut Vec<u8>) -> Result<(), PushError> {
    let bad = PushError::Path("invalid base64 in the path: use URL-safe base64, e.g. L3Zhci90bXA");
    let mut acc = 0u32;
    let mut bits = 0;
    for c in seg.trim_end_matches('=').bytes() {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            _ => return Err(bad),
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
        }
    }
    if bits >= 6 {
        return Err(bad);
    }
    Ok(())
}

/// Checks the whole body, then applies it.
#[allow(clippy::too_many_arguments)]
fn push(
    cache: &mut Cache,
    s: &mut Scratch,
    req: &Request,
    labels: &[Label],
    body: &[u8],
    now: u64,
    unix_now: f64,
) -> Result<(), PushError> {
    let method = req.method;
    let defaults: &[Label] = &[("instance", "")];
    // Pass 1: everything that could fail.
    s.ctx = StreamContext::default();
    s.families.clear();
    s.declared.clear();
    s.entries.clear();
    // Where the keys of this push end in `s.keys`.
    let mut keys_end = 0;
    s.fams.clear();
    s.fam_text.clear();
    let mut needed = 0;
    // The grouping key is canonical already: samples merge with it.
    let weak = (!labels.iter().any(|(n, _)| *n == "instance")).then_some("instance");
    let grouped = ingest::GroupLabels::new(&s.group, weak);
    // Found once: pass 1 does not change the cache.
    let group = cache.group_find(&s.group);
    // The family of the last line when it was a sample (its kind and the
    // length of its name, a prefix of the sample name): a following sample
    // of the same name, with no TYPE or HELP line between, has it too.
    let mut last: Option<(&str, MetricType, usize)> = None;
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
                    if listed(&s.declared, name) {
                        return Err(PushError::DuplicateType { line: line_no });
                    }
                    if listed(&s.families, name) {
                        return Err(PushError::TypeAfterSamples { line: line_no });
                    }
                    s.declared.extend_from_slice(name.as_bytes());
                    s.declared.push(b'\n');
                    if ingest::is_reserved(name) {
                        return Err(fail(IngestError::Reserved));
                    }
                    if cache.family_type(name).is_some_and(|k| k != *kind) {
                        return Err(PushError::TypeConflict { line: line_no });
                    }
                }
                s.ctx.note(other);
                last = None;
                continue;
            }
            Err(e) => return Err(fail((*e).into())),
        };
        let (kind, name_len) = match last {
            Some((name, kind, len)) if bytes::eq(name.as_bytes(), sample.name.as_bytes()) => {
                let family = Family {
                    name: &sample.name[..len],
                    kind,
                    help: None,
                };
                ingest::check_bounds(&family, sample).map_err(fail)?;
                (kind, len)
            }
            _ => {
                let family = ingest::resolve_family(cache, &s.ctx, sample.name).map_err(fail)?;
                ingest::check_bounds(&family, sample).map_err(fail)?;
                // A family this body declared is only joined under its TYPE line.
                if listed(&s.declared, family.name) && !s.ctx.declares(family.name, family.kind) {
                    return Err(PushError::TypeConflict { line: line_no });
                }
                if s.fams.last().is_none_or(|f| !f.is(&s.fam_text, &family)) {
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
                (family.kind, family.name.len())
            }
        };
        last = Some((sample.name, kind, name_len));
        let key_start = keys_end;
        let merged = grouped
            .as_ref()
            .and_then(|g| ingest::write_key_grouped(sample, g, &mut s.keys, key_start));
        keys_end = match merged {
            Some(end) => end,
            None => {
                ingest::write_key(sample, labels, defaults, &mut s.key);
                let end = key_start + s.key.len();
                if s.keys.len() < end {
                    s.keys.resize(end, 0);
                }
                s.keys[key_start..end].copy_from_slice(&s.key);
                end
            }
        };
        let key = &s.keys[key_start..keys_end];
        let found = cache.lookup(key);
        if cache.owned_by_other(found, group) {
            return Err(fail(IngestError::Cache(CacheError::Owned)));
        }
        let family = s.fams.len() - 1;
        // Not owned by another: if it exists, this group holds it.
        let cached = s.fams[family].cached;
        let rewrite = cached.is_some() && cache.series_family(found) == cached;
        needed += record_bytes(key.len());
        // Stop as soon as the push cannot fit: this also bounds what the
        // scratch buffers below hold to about the cache budget.
        if needed > cache.push_room() {
            return Err(PushError::TooLarge);
        }
        // Pass 2 applies from here, without parsing the body again.
        s.entries.push(Entry {
            key: (key_start, keys_end),
            found,
            value: sample.value,
            family,
            add: method == PushMethod::Patch && adds(kind, &sample.name[..name_len], sample.name),
            rewrite,
        });
    }
    let kept = match (group, method) {
        (Some(g), PushMethod::Post) => {
            cache.group_retained_bytes(g, |f| listed_bytes(&s.families, f))
        }
        (Some(g), PushMethod::Patch) => cache.group_bytes(g),
        _ => 0,
    };
    let group_bytes = record_bytes(s.group.len() + 8);
    if needed + kept + group_bytes > cache.push_room() {
        return Err(PushError::TooLarge);
    }
    // Series pushed again are overwritten in place (the page's order stays
    // valid and nothing moves), when the old ones fit beside the new;
    // otherwise replaced series are removed first.
    let all = group.map_or(0, |g| cache.group_bytes(g));
    let in_place = needed + all + group_bytes <= cache.push_room();

    // Pass 2: apply; nothing above failed, so this fits. What pass 1 found
    // out about series and families holds while the layout stays this.
    let checked_layout = cache.layout();
    let gid = cache
        .group_open(&s.group, now, req.ttl_ms)
        .map_err(|_| PushError::TooLarge)?;
    match (method, in_place) {
        (PushMethod::Patch, _) => {}
        (PushMethod::Put, true) => cache.group_mark_stale(gid, None),
        (PushMethod::Put, false) => {
            cache.group_clear(gid, None);
        }
        (_, true) => {
            for name in s.families.split(|&b| b == b'\n').filter(|n| !n.is_empty()) {
                cache.group_mark_stale(gid, Some(name));
            }
        }
        (_, false) => {
            for name in s.families.split(|&b| b == b'\n').filter(|n| !n.is_empty()) {
                cache.group_clear(gid, Some(name));
            }
        }
    }
    let mut family = None;
    for e in &s.entries {
        let w = Write {
            ttl_ms: req.ttl_ms,
            drain: req.drain,
            add: e.add,
        };
        let key = &s.keys[e.key.0..e.key.1];
        // Most series of a push are pushed again unchanged but for their
        // value: written by id, sparing the general write its searches.
        // Any series or family added or removed, or a family changed (say,
        // `group_clear`, or a new series evicting others), changes the
        // layout; from then on the general write decides.
        if e.rewrite
            && cache.layout() == checked_layout
            && cache.group_rewrite(gid, e.found, key, e.value, now, w)
        {
            continue;
        }
        let family = match family {
            Some((i, f)) if i == e.family => f,
            _ => {
                let f = s.fams[e.family].family(&s.fam_text);
                family = Some((e.family, f));
                f
            }
        };
        if let Err(err) = cache.group_set_with(gid, &family, key, Some(e.found), e.value, now, w) {
            log::error!("push to checked group failed: {err}");
        }
    }
    // What the push replaced but did not write again goes now.
    cache.group_sweep(gid);
    cache.group_close(gid, now, req.ttl_ms, unix_now);
    Ok(())
}

/// Records a family the body pushes (a new one, or one with other HELP
/// text than the family before); returns the bytes it may need.
fn add_family(
    families: &mut Vec<u8>,
    fams: &mut Vec<FamilyEntry>,
    fam_text: &mut Vec<u8>,
    family: &Family,
    cached: Option<u32>,
) -> usize {
    let mut needed = 0;
    if !listed(families, family.name) {
        // Counted even when the family exists: making room may evict its
        // last series and the family with it, and a new HELP text moves it
        // (old and new side by side for a time).
        let size = record_bytes(family.name.len() + family.help.map_or(0, str::len));
        needed = if family.help.is_some() {
            2 * size
        } else {
            size
        };
        families.extend_from_slice(family.name.as_bytes());
        families.push(b'\n');
    }
    fams.push(FamilyEntry::store(fam_text, family, cached));
    needed
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
fn record_bytes(key_len: usize) -> usize {
    (HEADER_BYTES + key_len).div_ceil(8) * 8 + ID_BYTES
}

fn listed(list: &[u8], name: &str) -> bool {
    listed_bytes(list, name.as_bytes())
}

fn listed_bytes(list: &[u8], name: &[u8]) -> bool {
    list.split(|&b| b == b'\n').any(|n| n == name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::render::Renderer;

    fn page(cache: &Cache) -> String {
        let mut r = Renderer::new(cache);
        String::from_utf8(r.render(cache, |_| {}).to_vec()).unwrap()
    }

    fn call(
        cache: &mut Cache,
        method: PushMethod,
        path: &str,
        body: &str,
    ) -> Result<u16, PushError> {
        let mut s = Scratch::default();
        handle(
            cache,
            &mut s,
            method,
            path,
            body.as_bytes(),
            false,
            0,
            1000,
            1700000000.5,
        )
    }

    #[test]
    fn put_replaces_post_merges_delete_removes() {
        let mut c = Cache::new(16 * 1024);
        let path = "/metrics/job/backup/instance/db1";
        call(
            &mut c,
            PushMethod::Put,
            path,
            "# TYPE a gauge\na 1\nb{x=\"1\"} 2\n",
        )
        .unwrap();
        call(&mut c, PushMethod::Post, path, "a 5\n").unwrap();
        let p = page(&c);
        assert!(p.contains("a{instance=\"db1\",job=\"backup\"} 5\n"), "{p}");
        assert!(
            p.contains("b{instance=\"db1\",job=\"backup\",x=\"1\"} 2\n"),
            "{p}"
        );
        assert!(
            p.contains("push_time_seconds{instance=\"db1\",job=\"backup\"} 1700000000.5\n"),
            "{p}"
        );
        call(&mut c, PushMethod::Put, path, "c 3\n").unwrap();
        let p = page(&c);
        assert!(!p.contains("\na{") && !p.contains("\nb{"), "{p}");
        assert_eq!(call(&mut c, PushMethod::Delete, path, ""), Ok(202));
        assert_eq!(page(&c), "");
        c.check_invariants();
    }

    #[test]
    fn grouping_labels_override_and_instance_defaults_to_empty() {
        let mut c = Cache::new(16 * 1024);
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/j",
            "m{job=\"other\"} 1\nn{instance=\"mine\"} 2\n",
        )
        .unwrap();
        let p = page(&c);
        assert!(p.contains("m{instance=\"\",job=\"j\"} 1\n"), "{p}");
        assert!(p.contains("n{instance=\"mine\",job=\"j\"} 2\n"), "{p}");
    }

    #[test]
    fn paths() {
        let mut c = Cache::new(16 * 1024);
        for (path, labels) in [
            ("/metrics/job/a%20b", "instance=\"\",job=\"a b\""),
            (
                "/metrics/job@base64/L3Zhci90bXA",
                "instance=\"\",job=\"/var/tmp\"",
            ),
            (
                "/metrics/job@base64/L3Zhci90bXA=",
                "instance=\"\",job=\"/var/tmp\"",
            ),
            (
                "/metrics/job/j/path@base64/=",
                "instance=\"\",job=\"j\",path=\"\"",
            ),
            (
                "/metrics/job/j/q/a%22b",
                "instance=\"\",job=\"j\",q=\"a\\\"b\"",
            ),
            ("/metrics/job/j/instance/i/", "instance=\"i\",job=\"j\""),
            // Label names are percent-decoded too, `@base64` after that.
            (
                "/metrics/job/j/l%61bel/v",
                "instance=\"\",job=\"j\",label=\"v\"",
            ),
            (
                "/metrics/job/j/p%40base64/dg",
                "instance=\"\",job=\"j\",p=\"v\"",
            ),
        ] {
            call(&mut c, PushMethod::Put, path, "x 1\n").unwrap();
            assert!(
                c.group_find(labels.as_bytes()).is_some(),
                "{path}: {}",
                page(&c)
            );
            call(&mut c, PushMethod::Delete, path, "").unwrap();
        }
        for path in [
            "/metrics/job/",
            "/metrics/job@base64/=",
            "/metrics/jobs/x",
            "/metrics/job/x/lonely",
            "/metrics/job/x/bad-name/v",
            "/metrics/job/x/job/y",
            "/metrics/job/x/__meta/y",
            "/metrics/job/x/%5F_meta/y",
            "/metrics/job/x/a%2Db/y",
            "/metrics/job/%zz",
            "/metrics/job@base64/!!",
        ] {
            let e = call(&mut c, PushMethod::Put, path, "x 1\n").unwrap_err();
            assert_eq!(e.status(), 400, "{path}");
        }
    }

    #[test]
    fn a_bad_push_changes_nothing_but_the_failure_time() {
        let mut c = Cache::new(16 * 1024);
        let path = "/metrics/job/j";
        call(&mut c, PushMethod::Put, path, "keep 1\n").unwrap();
        let before = page(&c);
        for (body, want) in [
            ("new 1\nbad line\n", "line 2: invalid value"),
            ("new 1\nts 1 123\n", "line 2: timestamps are not accepted"),
            ("push_time_seconds 1\n", "line 1: push_time_seconds"),
            ("# TYPE t gauge\n# TYPE t counter\n", "line 2: second TYPE"),
        ] {
            let e = call(&mut c, PushMethod::Put, path, body).unwrap_err();
            assert!(e.to_string().starts_with(want), "{e}");
        }
        let after = page(&c);
        assert_eq!(
            after.replace(
                "push_failure_time_seconds{instance=\"\",job=\"j\"} 1700000000.5",
                "push_failure_time_seconds{instance=\"\",job=\"j\"} 0"
            ),
            before
        );
    }

    #[test]
    fn types_must_agree_across_groups_and_series_have_one_owner() {
        let mut c = Cache::new(16 * 1024);
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/a",
            "# TYPE m counter\nm 1\n",
        )
        .unwrap();
        let e = call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/b",
            "# TYPE m gauge\nm 1\n",
        )
        .unwrap_err();
        assert_eq!(e, PushError::TypeConflict { line: 1 });
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/b",
            "# TYPE m counter\nm 2\n",
        )
        .unwrap();
        // A stream may not overwrite a pushed series.
        let mut key = Vec::new();
        let r = ingest::apply_line(
            &mut c,
            &mut StreamContext::default(),
            b"m{instance=\"\",job=\"a\"} 9",
            0,
            1000,
            &mut key,
        );
        assert_eq!(r, Err(IngestError::Cache(CacheError::Owned)));
        // Nor may a group push a series a stream owns.
        ingest::apply_line(
            &mut c,
            &mut StreamContext::default(),
            b"s{instance=\"\",job=\"c\"} 1",
            0,
            1000,
            &mut key,
        )
        .unwrap();
        let e = call(&mut c, PushMethod::Put, "/metrics/job/c", "s 2\n").unwrap_err();
        assert_eq!(e.status(), 400);
    }

    #[test]
    fn pushing_the_same_series_again_overwrites_them_in_place() {
        let mut c = Cache::new(16 * 1024);
        let body = "a 1\nb{x=\"1\"} 2\nc 3\n";
        call(&mut c, PushMethod::Put, "/metrics/job/j", body).unwrap();
        let layout = c.layout();
        let again = "a 7\nb{x=\"1\"} 7\nc 7\n";
        call(&mut c, PushMethod::Put, "/metrics/job/j", again).unwrap();
        assert_eq!(c.layout(), layout, "no series added or removed");
        assert_eq!(c.get(b"a{instance=\"\",job=\"j\"}", 0), Some(7.0));
        call(&mut c, PushMethod::Put, "/metrics/job/j", "a 8\n").unwrap();
        assert_eq!(c.series_count(), 1, "what the PUT did not repeat is gone");
        c.check_invariants();
    }

    #[test]
    fn series_pushed_again_keep_every_rule_of_the_general_write() {
        let mut c = Cache::new(16 * 1024);
        let path = "/metrics/job/j";
        let help = |c: &Cache| {
            let p = page(c);
            p.lines()
                .find(|l| l.starts_with("# HELP a "))
                .map(str::to_string)
        };
        call(
            &mut c,
            PushMethod::Put,
            path,
            "# HELP a y\na{l=\"1\"} 1\na{l=\"2\"} 2\n",
        )
        .unwrap();
        // The HELP changes back and forth within one push: the last wins,
        // also for a series whose family was unchanged when checked.
        let body = "# HELP a x\na{l=\"1\"} 3\n# HELP a y\na{l=\"2\"} 4\n";
        call(&mut c, PushMethod::Put, path, body).unwrap();
        assert_eq!(help(&c).as_deref(), Some("# HELP a y"));
        assert_eq!(c.get(b"a{instance=\"\",job=\"j\",l=\"2\"}", 0), Some(4.0));
        let body = "# HELP a y\na{l=\"1\"} 5\n# HELP a x\na{l=\"2\"} 6\n";
        call(&mut c, PushMethod::Put, path, body).unwrap();
        assert_eq!(help(&c).as_deref(), Some("# HELP a x"));
        // PATCH adds to counters in place, and a series pushed twice in a
        // body takes both writes.
        call(
            &mut c,
            PushMethod::Put,
            path,
            "# TYPE n counter\nn 1\ng 1\n",
        )
        .unwrap();
        call(
            &mut c,
            PushMethod::Patch,
            path,
            "# TYPE n counter\nn 2\nn 3\ng 5\n",
        )
        .unwrap();
        assert_eq!(c.get(b"n{instance=\"\",job=\"j\"}", 0), Some(6.0));
        assert_eq!(c.get(b"g{instance=\"\",job=\"j\"}", 0), Some(6.0));
        // A new TYPE replaces the family and its series.
        call(&mut c, PushMethod::Put, path, "# TYPE n gauge\nn 7\n").unwrap_err();
        call(&mut c, PushMethod::Delete, path, "").unwrap();
        call(&mut c, PushMethod::Put, path, "# TYPE n gauge\nn 7\n").unwrap();
        assert_eq!(c.family_type("n"), Some(MetricType::Gauge));
        c.check_invariants();
    }

    #[test]
    fn an_empty_put_keeps_the_group() {
        let mut c = Cache::new(16 * 1024);
        call(&mut c, PushMethod::Put, "/metrics/job/j", "x 1\n").unwrap();
        call(&mut c, PushMethod::Put, "/metrics/job/j", "").unwrap();
        let p = page(&c);
        assert!(!p.contains("\nx{"), "{p}");
        assert!(
            p.contains("push_time_seconds{instance=\"\",job=\"j\"}"),
            "{p}"
        );
    }

    #[test]
    fn a_push_larger_than_the_budget_is_refused() {
        let mut c = Cache::new(2048);
        let body: String = (0..100).map(|i| format!("big{{n=\"{i}\"}} 1\n")).collect();
        let e = call(&mut c, PushMethod::Put, "/metrics/job/j", &body).unwrap_err();
        assert_eq!(e.status(), 413);
        assert_eq!(c.series_count(), 0);
    }

    #[test]
    fn groups_expire_as_a_whole() {
        let mut c = Cache::new(16 * 1024);
        let mut s = Scratch::default();
        handle(
            &mut c,
            &mut s,
            PushMethod::Put,
            "/metrics/job/j",
            b"a 1\nb 2\n",
            false,
            0,
            1000,
            1.0,
        )
        .unwrap();
        handle(
            &mut c,
            &mut s,
            PushMethod::Post,
            "/metrics/job/j",
            b"a 3\n",
            false,
            900,
            1000,
            2.0,
        )
        .unwrap();
        c.expire(1500);
        assert_eq!(c.series_count(), 2, "b lives on with its group");
        c.expire(1900);
        assert_eq!(
            (c.series_count(), c.group_count(), c.family_count()),
            (0, 0, 0)
        );
        c.check_invariants();
    }
}

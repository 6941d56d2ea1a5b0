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

use crate::cache::{Cache, CacheError, Family, Write};
use crate::exposition::MetricType;
use crate::exposition::{self, Label, LineError};
use crate::ingest::{self, IngestError};
use crate::protobuf::{self, ProtoError};
pub use crate::push_check::Scratch;
use crate::push_check::{self, Checked, record_bytes};
use crate::push_path::{
    Span, decode_name, labels_of, parse_path, parse_query, span_str, write_group_key,
};

/// Most labels in a grouping key (`job` included).
pub const MAX_GROUP_LABELS: usize = 16;

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

/// Where the other side of a conflict is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another family of the same push.
    Body,
    /// Another group or a stream.
    Other,
}

/// Why a push was refused; the cache is unchanged then.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    Path(&'static str),
    Line {
        line: u64,
        error: IngestError,
    },
    /// A family's type differs from what the body or another pusher says.
    TypeConflict {
        line: u64,
        with: Conflict,
    },
    /// A family that would claim another's sample names (`foo_count` next
    /// to histogram `foo`).
    NameCollision {
        line: u64,
        with: Conflict,
    },
    /// The same series twice in one body.
    Duplicate {
        line: u64,
        first: u64,
    },
    DuplicateHelp {
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

    /// Whether the body parsed and failed the Pushgateway's consistency
    /// checks (where the Pushgateway records the failure even in a new
    /// group), rather than failing to parse. A protobuf body that decoded
    /// has parsed: what its text then fails is a check.
    pub fn is_validation(&self, protobuf: bool) -> bool {
        match self {
            PushError::Line { .. } if protobuf => true,
            PushError::Line { error, .. } => matches!(
                error,
                IngestError::Line(LineError::Timestamp | LineError::ReservedLabel)
                    // A series another group holds: the Pushgateway finds
                    // it in its consistency check, after parsing.
                    | IngestError::Cache(CacheError::Owned)
            ),
            PushError::TypeConflict { .. }
            | PushError::NameCollision { .. }
            | PushError::Duplicate { .. } => true,
            PushError::Proto(e) => matches!(
                e,
                ProtoError::MissingValue | ProtoError::LabelName | ProtoError::Utf8
            ),
            _ => false,
        }
    }

    /// Whether the Pushgateway refuses such a body while parsing it, when
    /// it records no failure in the group at all.
    pub fn is_parse_error(&self, protobuf: bool) -> bool {
        match self {
            PushError::Line { error, .. } => {
                !protobuf
                    && !self.is_validation(protobuf)
                    && matches!(error, IngestError::Line(_) | IngestError::Bound)
            }
            PushError::DuplicateType { .. }
            | PushError::TypeAfterSamples { .. }
            | PushError::DuplicateHelp { .. } => true,
            PushError::Proto(_) => !self.is_validation(protobuf),
            _ => false,
        }
    }

    /// A short stable name, for logs and the rejected-pushes counter.
    pub fn reason(&self) -> &'static str {
        match self {
            PushError::Path(_) => "path",
            PushError::Line { error, .. } => error.reason(),
            PushError::TypeConflict { .. }
            | PushError::NameCollision { .. }
            | PushError::DuplicateType { .. }
            | PushError::TypeAfterSamples { .. } => "type_conflict",
            PushError::Duplicate { .. } => "duplicate",
            PushError::DuplicateHelp { .. } => "comment",
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
            PushError::TypeConflict { line, with: _ } => write!(
                f,
                "line {line}: this metric has another TYPE in another group or stream: push it with the same TYPE (none is untyped), or rename it"
            ),
            PushError::NameCollision {
                line,
                with: Conflict::Body,
            } => write!(
                f,
                "line {line}: this metric's name collides with another family of this push (a histogram foo owns foo_bucket, foo_sum and foo_count; a summary foo_sum and foo_count): rename one"
            ),
            PushError::NameCollision {
                line,
                with: Conflict::Other,
            } => write!(
                f,
                "line {line}: this metric's name collides with a family another group or stream pushed (a histogram foo owns foo_bucket, foo_sum and foo_count; a summary foo_sum and foo_count): rename it"
            ),
            PushError::Duplicate { line, first } => write!(
                f,
                "line {line}: the same series as line {first} (label order, grouping labels and the form of le or quantile aside): push each series once"
            ),
            PushError::DuplicateHelp { line } => write!(
                f,
                "line {line}: second HELP line for the same metric: give each family one HELP"
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
        return Err(PushError::TypeConflict {
            line: 1,
            with: Conflict::Other,
        });
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
    if let Err(e) = &result
        && !e.is_parse_error(req.protobuf)
    {
        // The Pushgateway records a body that parsed but failed its checks
        // in the group even when the group is new: it then shows up with
        // `push_time_seconds` 0 and the failure time. A body that does not
        // parse it records nowhere.
        if e.is_validation(req.protobuf)
            && method_pushes(req.method)
            && cache.group_find(&s.group).is_none()
            && let Ok(gid) = cache.group_open(&s.group, now, req.ttl_ms)
        {
            cache.group_close(gid, now, req.ttl_ms, 0.0);
        }
        cache.group_failed(&s.group, unix_now);
    }
    result
}

fn method_pushes(method: PushMethod) -> bool {
    matches!(method, PushMethod::Put | PushMethod::Post)
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
    // Pass 1: everything that could fail.
    let Checked { needed, group } = push_check::check(cache, s, req, labels, body)?;
    let kept = match (group, method) {
        (Some(g), PushMethod::Post) => {
            cache.group_retained_bytes(g, |f| s.families.find(f).is_some())
        }
        (Some(g), PushMethod::Patch) => cache.group_bytes(g),
        _ => 0,
    };
    // A push that only writes again series its group holds, in the
    // families they have, takes no room in place: it fits as the group
    // does, whatever the sizes above (which count each series as new)
    // say. Removing its series first would free and retake their room,
    // their families' with it, scattered over holes, and could evict
    // other entries for a push that grows nothing.
    let rewrites_only = group.is_some() && s.entries.iter().all(|e| e.rewrite);
    let group_bytes = record_bytes(s.group.len() + 8);
    if !rewrites_only && needed + kept + group_bytes > cache.push_room() {
        return Err(PushError::TooLarge);
    }
    // Series pushed again are overwritten in place (the page's order stays
    // valid and nothing moves), when the old ones, with their families,
    // fit beside the new; otherwise replaced series are removed first.
    let in_place = rewrites_only
        || needed
            + group.map_or(0, |g| cache.group_bytes(g) + cache.group_family_bytes(g))
            + group_bytes
            <= cache.push_room();

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
            for (name, _) in s.families.iter() {
                cache.group_mark_stale(gid, Some(name));
            }
        }
        (_, false) => {
            for (name, _) in s.families.iter() {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{Line, MetricType};
    use crate::ingest::StreamContext;
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
        for help in [
            "# HELP push_time_seconds Last Unix time when changing this group in the Pushgateway succeeded.\n",
            "# HELP push_failure_time_seconds Last Unix time when changing this group in the Pushgateway failed.\n",
        ] {
            assert!(p.contains(help), "{p}");
        }
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

    /// A push repeated as it was, at any fill of a small budget, succeeds
    /// again and changes nothing: it rewrites its series in place, and
    /// neither counts them as new room nor evicts anyone for them.
    #[test]
    fn a_repeated_push_succeeds_and_evicts_nothing_at_any_fill() {
        for budget in (1024..3072).step_by(64) {
            for n in 1..40 {
                let mut c = Cache::new(budget);
                let _ = call(&mut c, PushMethod::Put, "/metrics/job/other", "o 1\n");
                let body: String = (0..n).map(|i| format!("m{{i=\"{i}\"}} {i}\n")).collect();
                if call(&mut c, PushMethod::Put, "/metrics/job/j", &body).is_err() {
                    continue;
                }
                let first = page(&c);
                let again = call(&mut c, PushMethod::Put, "/metrics/job/j", &body);
                assert_eq!(again, Ok(200), "budget {budget}, {n} series");
                assert_eq!(page(&c), first, "budget {budget}, {n} series");
                c.check_invariants();
            }
        }
    }

    /// A PUT that replaces a group's families with others may write its
    /// series beside the old ones only if the old families' records fit
    /// too: they stay until the push ends. Counted without them, the last
    /// series of such a push found no room, were dropped, and the push
    /// answered 200.
    #[test]
    fn a_put_replacing_a_groups_families_keeps_every_sample() {
        let old = format!(
            "# HELP x_long_family {}\nx_long_family 1\n",
            "h".repeat(600)
        );
        for budget in (1536..4096).step_by(64) {
            for n in 1..40 {
                for pad in ["", "ppp", "pppppppppppppppppppppppppppppppppppppp"] {
                    let mut c = Cache::new(budget);
                    if call(&mut c, PushMethod::Put, "/metrics/job/j", &old).is_err() {
                        continue;
                    }
                    let body: String = (0..n)
                        .map(|i| format!("y{pad}{{i=\"{i}\"}} {i}\n"))
                        .collect();
                    let pushed = call(&mut c, PushMethod::Put, "/metrics/job/j", &body);
                    c.check_invariants();
                    if pushed.is_err() {
                        continue;
                    }
                    for i in 0..n {
                        let key = format!("y{pad}{{i=\"{i}\",instance=\"\",job=\"j\"}}");
                        assert_eq!(
                            c.get(key.as_bytes(), 0),
                            Some(f64::from(i)),
                            "budget {budget}: {key} of {n}, push answered {pushed:?}"
                        );
                    }
                }
            }
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
        assert_eq!(
            e,
            PushError::TypeConflict {
                line: 2,
                with: Conflict::Other
            }
        );
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
        // Two HELP lines for one family are refused, as the Pushgateway
        // does; a HELP after the family's samples applies to them.
        let body = "# HELP a x\na{l=\"1\"} 3\n# HELP a y\na{l=\"2\"} 4\n";
        let e = call(&mut c, PushMethod::Put, path, body).unwrap_err();
        assert_eq!(e, PushError::DuplicateHelp { line: 3 });
        assert_eq!(help(&c).as_deref(), Some("# HELP a y"));
        let body = "a{l=\"1\"} 5\na{l=\"2\"} 6\n# HELP a x\n";
        call(&mut c, PushMethod::Put, path, body).unwrap();
        assert_eq!(help(&c).as_deref(), Some("# HELP a x"));
        assert_eq!(c.get(b"a{instance=\"\",job=\"j\",l=\"2\"}", 0), Some(6.0));
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
        // A new TYPE of a family only this group holds replaces the family
        // and its series, as in the Pushgateway.
        call(&mut c, PushMethod::Put, path, "# TYPE n gauge\nn 7\n").unwrap();
        assert_eq!(c.family_type("n"), Some(MetricType::Gauge));
        assert_eq!(c.get(b"n{instance=\"\",job=\"j\"}", 0), Some(7.0));
        call(&mut c, PushMethod::Post, path, "# TYPE n counter\nn 8\n").unwrap();
        assert_eq!(c.family_type("n"), Some(MetricType::Counter));
        c.check_invariants();
    }

    /// The Pushgateway's rule: types agree across groups, and a push
    /// without TYPE is untyped (it does not join another group's counter).
    #[test]
    fn types_of_families_other_groups_hold_stand_in_either_order() {
        for (first, second) in [
            ("# TYPE m counter\nm 1\n", "m 2\n"),
            ("m 1\n", "# TYPE m counter\nm 2\n"),
            ("# TYPE m gauge\nm 1\n", "# TYPE m counter\nm 2\n"),
        ] {
            let mut c = Cache::new(16 * 1024);
            call(&mut c, PushMethod::Put, "/metrics/job/a", first).unwrap();
            for method in [PushMethod::Put, PushMethod::Post] {
                let e = call(&mut c, method, "/metrics/job/b", second).unwrap_err();
                assert!(
                    matches!(
                        e,
                        PushError::TypeConflict {
                            with: Conflict::Other,
                            ..
                        }
                    ),
                    "{first:?} then {second:?}: {e}"
                );
                assert_eq!(e.reason(), "type_conflict");
            }
            // Alone in its group, the same push changes the type.
            call(&mut c, PushMethod::Put, "/metrics/job/a", second).unwrap();
            c.check_invariants();
        }
    }

    #[test]
    fn families_that_claim_each_others_names_are_refused() {
        let hist = "# TYPE foo histogram\nfoo_bucket{le=\"1\"} 1\nfoo_count 1\nfoo_sum 1\n";
        for body in [
            format!("foo_sum 1\n{hist}"),
            format!("# TYPE foo_count gauge\nfoo_count{{x=\"1\"}} 1\n{hist}"),
            "s_count 1\n# TYPE s summary\ns_sum 1\n".into(),
        ] {
            let mut c = Cache::new(16 * 1024);
            let e = call(&mut c, PushMethod::Put, "/metrics/job/a", &body).unwrap_err();
            assert!(
                matches!(
                    e,
                    PushError::NameCollision {
                        with: Conflict::Body,
                        ..
                    }
                ),
                "{body}: {e}"
            );
            assert!(!e.is_parse_error(false), "{body}");
        }
        // A TYPE for a name a histogram or summary declared before owns is,
        // to the Pushgateway's parser, a second TYPE of that family.
        for body in [
            format!("{hist}# TYPE foo_count gauge\nfoo_count 1\n"),
            format!("{hist}# TYPE foo_bucket counter\n"),
            "# TYPE s summary\ns_sum 1\n# TYPE s_count counter\ns_count 1\n".into(),
        ] {
            let mut c = Cache::new(16 * 1024);
            let e = call(&mut c, PushMethod::Put, "/metrics/job/a", &body).unwrap_err();
            assert!(matches!(e, PushError::DuplicateType { .. }), "{body}: {e}");
            assert!(e.is_parse_error(false), "{body}");
        }
        // Across groups and streams, in either order.
        let mut c = Cache::new(16 * 1024);
        call(&mut c, PushMethod::Put, "/metrics/job/a", hist).unwrap();
        let e = call(&mut c, PushMethod::Put, "/metrics/job/b", "foo_count 1\n").unwrap_err();
        assert!(
            matches!(
                e,
                PushError::NameCollision {
                    with: Conflict::Other,
                    ..
                }
            ),
            "{e}"
        );
        let mut key = Vec::new();
        let r = ingest::apply_line(
            &mut c,
            &mut StreamContext::default(),
            b"# TYPE foo_sum gauge",
            0,
            1000,
            &mut key,
        );
        assert_eq!(r, Ok(()));
        let mut ctx = StreamContext::default();
        ctx.note(&Line::Type {
            name: "foo_sum",
            kind: MetricType::Gauge,
        });
        let r = ingest::apply_line(&mut c, &mut ctx, b"foo_sum 1", 0, 1000, &mut key);
        assert_eq!(r, Err(IngestError::TypeConflict));
        let mut c = Cache::new(16 * 1024);
        call(&mut c, PushMethod::Put, "/metrics/job/a", "foo_count 1\n").unwrap();
        let e = call(&mut c, PushMethod::Put, "/metrics/job/b", hist).unwrap_err();
        assert!(
            matches!(
                e,
                PushError::NameCollision {
                    with: Conflict::Other,
                    ..
                }
            ),
            "{e}"
        );
        // The group's own family goes with its PUT.
        call(&mut c, PushMethod::Put, "/metrics/job/a", hist).unwrap();
        c.check_invariants();
    }

    #[test]
    fn a_series_twice_in_one_push_is_refused() {
        let mut c = Cache::new(16 * 1024);
        for (body, line, first) in [
            ("m 1\nm 2\n", 2, 1),
            ("m{a=\"1\",b=\"2\"} 1\nx 1\nm{b=\"2\", a=\"1\"} 2\n", 3, 1),
            ("m{job=\"x\"} 1\nm 2\n", 2, 1),
            (
                "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"1\"} 1\n",
                3,
                2,
            ),
        ] {
            let e = call(&mut c, PushMethod::Put, "/metrics/job/j", body).unwrap_err();
            assert_eq!(e, PushError::Duplicate { line, first }, "{body}");
            assert_eq!(e.reason(), "duplicate");
        }
        assert_eq!(c.series_count(), 0);
    }

    /// What the Pushgateway 1.5 serves for each body, but for its order.
    #[test]
    fn histograms_and_summaries_are_completed_and_their_bounds_canonical() {
        let j = "instance=\"\",job=\"j\"";
        for (body, want) in [
            (
                "# TYPE h histogram\nh_bucket{le=\"1.0\"} 1\nh_bucket{le=\"0.00001\"} 0\nh_count 2\nh_sum 3\n",
                vec![
                    format!("h_bucket{{{j},le=\"1e-05\"}} 0"),
                    format!("h_bucket{{{j},le=\"1\"}} 1"),
                    format!("h_bucket{{{j},le=\"+Inf\"}} 2"),
                    format!("h_sum{{{j}}} 3"),
                    format!("h_count{{{j}}} 2"),
                ],
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"1\"} 1\n",
                vec![
                    format!("h_bucket{{{j},le=\"1\"}} 1"),
                    format!("h_bucket{{{j},le=\"+Inf\"}} 0"),
                    format!("h_sum{{{j}}} 0"),
                    format!("h_count{{{j}}} 0"),
                ],
            ),
            (
                "# TYPE h histogram\nh 3\nh_bucket 1\nh_bucket{le=\"NaN\"} 1\nh_sum{le=\"2\"} 1\n",
                vec![
                    format!("h_bucket{{{j},le=\"+Inf\"}} 0"),
                    format!("h_sum{{{j}}} 1"),
                    format!("h_count{{{j}}} 0"),
                ],
            ),
            (
                "# TYPE h histogram\nh_bucket{le=\"+inf\",x=\"1\"} 3\nh_count{x=\"2\"} 5\n",
                vec![
                    format!("h_bucket{{{j},le=\"+Inf\",x=\"1\"}} 3"),
                    format!("h_sum{{{j},x=\"1\"}} 0"),
                    format!("h_count{{{j},x=\"1\"}} 0"),
                    format!("h_bucket{{{j},le=\"+Inf\",x=\"2\"}} 5"),
                    format!("h_sum{{{j},x=\"2\"}} 0"),
                    format!("h_count{{{j},x=\"2\"}} 5"),
                ],
            ),
            (
                "# TYPE s summary\ns{quantile=\"0.50\"} 1\ns_sum{quantile=\"0.5\"} 4\ns 9\n",
                vec![
                    format!("s{{{j},quantile=\"0.5\"}} 1"),
                    format!("s_sum{{{j}}} 4"),
                    format!("s_count{{{j}}} 0"),
                ],
            ),
        ] {
            let mut c = Cache::new(16 * 1024);
            call(&mut c, PushMethod::Put, "/metrics/job/j", body).unwrap();
            let p = page(&c);
            let mut got: Vec<&str> = p
                .lines()
                .filter(|l| !l.starts_with('#') && !l.starts_with("push_"))
                .collect();
            let mut want: Vec<&str> = want.iter().map(String::as_str).collect();
            got.sort_unstable();
            want.sort_unstable();
            assert_eq!(got, want, "{body}");
            c.check_invariants();
        }
    }

    /// As the Pushgateway: a body that parses but fails the checks is
    /// recorded in its group even when the group is new; one that does
    /// not parse is not.
    #[test]
    fn a_failed_check_records_the_failure_in_a_new_group() {
        for (body, recorded) in [
            ("x 1 123\n", true),
            ("x 1\nx 2\n", true),
            ("x{__a=\"1\"} 1\n", true),
            ("x{__name__=\"1\"} 1\n", false),
            ("x one\n", false),
            ("# TYPE x gauge\n# TYPE x gauge\n", false),
        ] {
            let mut c = Cache::new(16 * 1024);
            call(&mut c, PushMethod::Put, "/metrics/job/j", body).unwrap_err();
            let p = page(&c);
            // Nor in a group that exists, for a body that does not parse.
            let mut old = Cache::new(16 * 1024);
            call(&mut old, PushMethod::Put, "/metrics/job/j", "ok 1\n").unwrap();
            call(&mut old, PushMethod::Put, "/metrics/job/j", body).unwrap_err();
            assert_eq!(
                page(&old)
                    .contains("push_failure_time_seconds{instance=\"\",job=\"j\"} 1700000000.5\n"),
                recorded,
                "{body}"
            );
            assert_eq!(
                p.contains("push_time_seconds{instance=\"\",job=\"j\"} 0\n")
                    && p.contains(
                        "push_failure_time_seconds{instance=\"\",job=\"j\"} 1700000000.5\n"
                    ),
                recorded,
                "{body}: {p}"
            );
            assert_eq!(c.group_count(), usize::from(recorded), "{body}");
            c.check_invariants();
        }
    }

    /// As the Pushgateway: a series another group holds is found by the
    /// consistency check, so the refusal is recorded in the new group.
    #[test]
    fn a_series_of_another_group_records_the_failure_in_a_new_group() {
        let mut c = Cache::new(16 * 1024);
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/a/instance/x",
            "foo 1\n",
        )
        .unwrap();
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/a",
            "foo{instance=\"x\"} 2\n",
        )
        .unwrap_err();
        let p = page(&c);
        assert!(
            p.contains("push_time_seconds{instance=\"\",job=\"a\"} 0\n")
                && p.contains("push_failure_time_seconds{instance=\"\",job=\"a\"} 1700000000.5\n"),
            "{p}"
        );
        c.check_invariants();
    }

    /// The Pushgateway serves a family's HELP from its push: a push without
    /// one leaves none; but among groups, the first group's stands.
    #[test]
    fn help_comes_with_the_push_and_other_groups_keep_theirs() {
        let help_of = |c: &Cache| {
            page(c)
                .lines()
                .find(|l| l.starts_with("# HELP foo "))
                .map(str::to_string)
        };
        let mut c = Cache::new(16 * 1024);
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/j",
            "# HELP foo A.\nfoo 1\n",
        )
        .unwrap();
        call(&mut c, PushMethod::Post, "/metrics/job/j", "foo 2\n").unwrap();
        assert_eq!(help_of(&c), None);
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/j",
            "# HELP foo A.\nfoo 1\n",
        )
        .unwrap();
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/k",
            "# HELP foo B.\nfoo 2\n",
        )
        .unwrap();
        assert_eq!(help_of(&c).as_deref(), Some("# HELP foo A."));
        call(&mut c, PushMethod::Put, "/metrics/job/k", "foo 2\n").unwrap();
        assert_eq!(help_of(&c).as_deref(), Some("# HELP foo A."));
        let mut c = Cache::new(16 * 1024);
        call(&mut c, PushMethod::Put, "/metrics/job/j", "foo 1\n").unwrap();
        call(
            &mut c,
            PushMethod::Put,
            "/metrics/job/k",
            "# HELP foo A.\nfoo 2\n",
        )
        .unwrap();
        assert_eq!(help_of(&c), None);
        c.check_invariants();
    }

    /// Names are found by hash: a body of many families is checked in time
    /// linear in its lines (a list made it quadratic), and a repeat among
    /// them is still found.
    #[test]
    fn many_families_in_one_body() {
        let mut c = Cache::new(4 << 20);
        let mut body = String::new();
        for i in 0..10_000 {
            body.push_str(&format!(
                "# HELP f{i} F {i}.\n# TYPE f{i} gauge\nf{i} {i}\n"
            ));
        }
        call(&mut c, PushMethod::Put, "/metrics/job/j", &body).unwrap();
        assert_eq!(c.family_count(), 10_000);
        for (extra, want) in [
            ("# TYPE f77 gauge\n", "second TYPE"),
            ("# HELP f5000 again\n", "second HELP"),
            ("f9999 1\n", "the same series"),
        ] {
            let e = call(
                &mut c,
                PushMethod::Put,
                "/metrics/job/j",
                &format!("{body}{extra}"),
            )
            .unwrap_err();
            assert!(e.to_string().contains(want), "{extra}: {e}");
        }
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

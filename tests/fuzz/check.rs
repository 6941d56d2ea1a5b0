//! What a valid `/metrics` page is, checked line by line.
//!
//! Shared by the fuzz targets (this is the fuzz crate's library) and by
//! `tests/proptest_roundtrip.rs` and `tests/hostile.rs` (which include this
//! file with `#[path]`). The rules are those of the Prometheus text format
//! as `promtool check metrics` applies them, plus what the renderer
//! promises on top:
//!
//! * every line parses with `exposition::parse_line`; no blank or comment
//!   lines other than HELP and TYPE; the page ends with a newline;
//! * each family has one TYPE line, preceded by at most one HELP line of
//!   the same name, and its samples follow it, each named as its family
//!   owns (`foo_bucket` under histogram `foo`);
//! * no series appears twice; every key is canonical (labels sorted by
//!   name) and every value is written as `render::write_value` writes it;
//! * `le` of a histogram and `quantile` of a summary are numbers (promtool
//!   rejects the whole page otherwise).
//!
//! Lines longer than the gateway's own input limit (`LINE_MAX_BYTES`) are
//! valid exposition text but cannot be re-parsed by `parse_line`; they are
//! counted in [`Page::overlong`] and otherwise skipped.
//!
//! [`lenient`] tells the fuzz targets to tolerate the known, open defects
//! listed in `tests/fuzz_regressions.rs` (`PUSH_GATEWAY_FUZZ_LENIENT=1`),
//! so that fuzzing can look past them; the test suite never sets it. The
//! page rules here are never relaxed.
#![allow(dead_code)]

use std::collections::HashSet;
use std::fmt;

use push_gateway::exposition::{self, Line, MetricType};
use push_gateway::ingest;
use push_gateway::limits::LINE_MAX_BYTES;
use push_gateway::render;

/// Whether known, reported defects are tolerated (fuzzing past them).
pub fn lenient() -> bool {
    static LENIENT: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *LENIENT.get_or_init(|| {
        std::env::var("PUSH_GATEWAY_FUZZ_LENIENT").is_ok_and(|v| !v.is_empty() && v != "0")
    })
}

/// A label as `Sample::labels` yields it: a pair, or a reference to one.
pub trait LabelPair<'a> {
    fn pair(self) -> (&'a str, &'a str);
}

impl<'a> LabelPair<'a> for (&'a str, &'a str) {
    fn pair(self) -> (&'a str, &'a str) {
        self
    }
}

impl<'a> LabelPair<'a> for &(&'a str, &'a str) {
    fn pair(self) -> (&'a str, &'a str) {
        *self
    }
}

/// The labels of a sample (`labels_of(sample.labels())`), in line order,
/// whether `labels()` returns a slice or an iterator.
pub fn labels_of<'a, I>(labels: I) -> Vec<(&'a str, &'a str)>
where
    I: IntoIterator,
    I::Item: LabelPair<'a>,
{
    labels.into_iter().map(LabelPair::pair).collect()
}

/// Equal values, NaN equal to NaN (and 0 equal to -0, as on a page).
pub fn same_value(a: f64, b: f64) -> bool {
    a == b || (a.is_nan() && b.is_nan())
}

/// One sample line of a page.
#[derive(Debug, Clone)]
pub struct PageSample {
    /// The family whose TYPE line it follows.
    pub family: String,
    pub kind: MetricType,
    /// The sample's name (`foo_bucket` for family `foo`).
    pub name: String,
    /// Canonical key: `name{a="1",b="2"}`, values escaped.
    pub key: String,
    /// Labels in key order, values escaped.
    pub labels: Vec<(String, String)>,
    pub value: f64,
}

impl PageSample {
    /// The (escaped) value of label `name`.
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A page that passed [`check_page`].
#[derive(Debug, Default)]
pub struct Page {
    pub samples: Vec<PageSample>,
    /// `(family, kind, help)`, in page order; `help` escaped, empty if none.
    pub families: Vec<(String, MetricType, String)>,
    /// Lines over `LINE_MAX_BYTES`, not re-parsed.
    pub overlong: usize,
}

impl Page {
    /// The value of the sample with canonical key `key`.
    pub fn value(&self, key: &str) -> Option<f64> {
        self.samples.iter().find(|s| s.key == key).map(|s| s.value)
    }
}

/// A rule the page breaks: which line, and why.
#[derive(Debug, Clone)]
pub struct Violation {
    /// 1-based line number.
    pub line: usize,
    pub text: String,
    pub why: String,
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "page line {}: {}: {:?}", self.line, self.why, self.text)
    }
}

/// Whether `v` is a number as Prometheus' text parser reads `le` and
/// `quantile` (Go's `strconv.ParseFloat`, without `p` or `_`).
pub fn is_float_label(v: &str) -> bool {
    !v.contains(['p', 'P', '_']) && exposition::parse_value(v).is_ok()
}

/// Checks a whole page; returns what it holds.
///
/// # Errors
/// The first [`Violation`].
pub fn check_page(page: &[u8]) -> Result<Page, Violation> {
    let fail = |line: usize, text: &str, why: String| Violation {
        line,
        text: text.chars().take(300).collect(),
        why,
    };
    let text =
        std::str::from_utf8(page).map_err(|e| fail(0, "", format!("page is not UTF-8: {e}")))?;
    if !text.is_empty() && !text.ends_with('\n') {
        return Err(fail(0, "", "page does not end with a newline".into()));
    }
    let mut out = Page::default();
    let mut families: HashSet<&str> = HashSet::new();
    let mut keys: HashSet<&str> = HashSet::new();
    let mut current: Option<(&str, MetricType)> = None;
    let mut pending_help: Option<(&str, &str)> = None;
    let mut key = Vec::new();
    let mut value_text = Vec::new();
    for (i, line) in text.split_terminator('\n').enumerate() {
        let n = i + 1;
        if line.len() > LINE_MAX_BYTES {
            out.overlong += 1;
            continue;
        }
        // A HELP text keeps its trailing blanks, as the Pushgateway keeps
        // them (`# HELP b B ` is served so, and promtool accepts it).
        let help = line.starts_with("# HELP ");
        if line.starts_with([' ', '\t'])
            || line.ends_with('\r')
            || (!help && line.ends_with([' ', '\t']))
        {
            return Err(fail(n, line, "leading or trailing blank".into()));
        }
        let parsed = exposition::parse_line(line.as_bytes())
            .map_err(|e| fail(n, line, format!("does not parse: {e}")))?;
        match parsed {
            Line::Help { name, text } => {
                if pending_help.is_some() {
                    return Err(fail(n, line, "two HELP lines without a TYPE".into()));
                }
                if families.contains(name) {
                    return Err(fail(n, line, "HELP after the family's TYPE".into()));
                }
                pending_help = Some((name, text));
            }
            Line::Type { name, kind } => {
                let help = match pending_help.take() {
                    Some((h, _)) if h != name => {
                        return Err(fail(n, line, format!("HELP of {h} before TYPE of {name}")));
                    }
                    Some((_, text)) => text,
                    None => "",
                };
                if !families.insert(name) {
                    return Err(fail(n, line, format!("second TYPE line for {name}")));
                }
                current = Some((name, kind));
                out.families
                    .push((name.to_string(), kind, help.to_string()));
            }
            Line::Sample(s) => {
                if pending_help.is_some() {
                    return Err(fail(n, line, "sample between HELP and TYPE".into()));
                }
                let Some((family, kind)) = current else {
                    return Err(fail(n, line, "sample before any TYPE line".into()));
                };
                if !kind.owns(family, s.name) {
                    return Err(fail(
                        n,
                        line,
                        format!("sample {} under {} {family}", s.name, kind.as_str()),
                    ));
                }
                let Some((key_text, value)) = line.rsplit_once(' ') else {
                    return Err(fail(n, line, "no blank before the value".into()));
                };
                ingest::write_key(&s, &[], &[], &mut key);
                if key != key_text.as_bytes() {
                    return Err(fail(
                        n,
                        line,
                        format!("key not canonical: {:?}", String::from_utf8_lossy(&key)),
                    ));
                }
                value_text.clear();
                render::write_value(&mut value_text, s.value);
                if value_text != value.as_bytes() {
                    return Err(fail(
                        n,
                        line,
                        format!(
                            "value not written canonically: {:?}",
                            String::from_utf8_lossy(&value_text)
                        ),
                    ));
                }
                if !keys.insert(key_text) {
                    return Err(fail(n, line, "series appears twice".into()));
                }
                let bound = match kind {
                    MetricType::Histogram => Some("le"),
                    MetricType::Summary => Some("quantile"),
                    _ => None,
                };
                if let Some(bound) = bound {
                    for (label, v) in labels_of(s.labels()) {
                        if label == bound && !is_float_label(v) {
                            return Err(fail(n, line, format!("{bound}={v:?} is not a number")));
                        }
                    }
                }
                out.samples.push(PageSample {
                    family: family.to_string(),
                    kind,
                    name: s.name.to_string(),
                    key: key_text.to_string(),
                    labels: labels_of(s.labels())
                        .into_iter()
                        .map(|(n, v)| (n.to_string(), v.to_string()))
                        .collect(),
                    value: s.value,
                });
            }
            // Blank lines, plain comments and anything else the renderer
            // never writes.
            _ => return Err(fail(n, line, "not a HELP, TYPE or sample line".into())),
        }
    }
    if let Some((name, _)) = pending_help {
        return Err(fail(0, name, "HELP without a TYPE at the end".into()));
    }
    Ok(out)
}

/// [`check_page`], panicking with the page on a violation.
pub fn assert_valid_page(page: &[u8]) -> Page {
    match check_page(page) {
        Ok(p) => p,
        Err(v) => panic!(
            "invalid /metrics page: {v}\n--- page ---\n{}",
            String::from_utf8_lossy(&page[..page.len().min(20_000)])
        ),
    }
}

//! Scraped pages (text exposition format 0.0.4) as multisets of series, so
//! two gateways' pages can be compared for what Prometheus would store
//! from them, not for their bytes: each sample becomes (family, type, help,
//! sample name, label set, value), label order and number spelling do not
//! count (`1796159670.5` and `1.7961596705e+09` are one value), label
//! values do (`le="1.0"` and `le="1"` are two series in Prometheus).
//!
//! Each gateway's own metrics are left out: a sample without a `job` label
//! under one of `OWN_PREFIXES` (every pushed sample has `job`, from its
//! grouping key). Values that are not the pushed data are masked:
//! `push_time_seconds` and `push_failure_time_seconds` become "zero" or
//! "set", and the caller's `Mask` hides the values (or the label sets) of
//! families that legitimately change between two collections of the same
//! registry (process CPU time, memory, a runtime's handles).
//!
//! Memory: the parsed page, a few times the page's size; test-only code.

use std::collections::BTreeMap;
use std::fmt;

/// Name prefixes of the gateways' own metrics: push-gateway's, and the
/// Pushgateway's own registry (Go runtime, process, HTTP handler).
pub const OWN_PREFIXES: &[&str] = &[
    "push_gateway_",
    "pushgateway_",
    "go_",
    "process_",
    "promhttp_",
];

/// Families whose value is a time the gateway stamps on each group.
pub const PUSH_TIME_FAMILIES: &[&str] = &["push_time_seconds", "push_failure_time_seconds"];

/// What of a family is compared.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mask {
    /// Everything: labels and value.
    Nothing,
    /// The labels, not the value (CPU time, memory, a GC count).
    Value,
    /// Only that the family is there, with its type and help: the label
    /// sets change between two collections too (a runtime's active handle
    /// types, the GC kinds seen so far).
    Labels,
}

/// One sample as Prometheus would store it, plus its family's metadata.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Series {
    pub family: String,
    pub kind: String,
    pub help: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    /// The value in one spelling (Rust's shortest round-trip form), or
    /// what is left of it after masking.
    pub value: String,
}

impl fmt::Display for Series {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let labels: Vec<String> = self
            .labels
            .iter()
            .map(|(k, v)| format!("{k}={v:?}"))
            .collect();
        write!(
            f,
            "{}{{{}}} {}   [{} {}: {:?}]",
            self.name,
            labels.join(","),
            self.value,
            self.kind,
            self.family,
            self.help
        )
    }
}

/// A page as a multiset of series: each series with how often it appears.
pub type Normalised = BTreeMap<Series, usize>;

/// Parses `page` and normalises it as the module doc says; `mask` names
/// what of each family (by family name) is compared. Errors name the line
/// that is not exposition format.
pub fn normalise(page: &str, mask: &dyn Fn(&str) -> Mask) -> Result<Normalised, String> {
    let mut out = Normalised::new();
    let mut help: BTreeMap<String, String> = BTreeMap::new();
    let mut kind: BTreeMap<String, String> = BTreeMap::new();
    // The family the last HELP or TYPE line was about: its samples follow.
    let mut current = String::new();
    for (i, line) in page.lines().enumerate() {
        let at = |e: &str| format!("line {}: {e}: {line:?}", i + 1);
        if line.is_empty() {
            continue;
        }
        if let Some(rest) = line.strip_prefix("# HELP ") {
            let (name, text) = rest.split_once(' ').unwrap_or((rest, ""));
            help.insert(name.to_string(), unescape_help(text));
            current = name.to_string();
            continue;
        }
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            let (name, t) = rest
                .split_once(' ')
                .ok_or_else(|| at("TYPE without a type"))?;
            kind.insert(name.to_string(), t.to_string());
            current = name.to_string();
            continue;
        }
        if line.starts_with('#') {
            continue;
        }
        let (name, labels, value) = parse_sample(line).map_err(|e| at(&e))?;
        let family = family_of(&name, &current, kind.get(&current).map(String::as_str));
        if !labels.contains_key("job") && OWN_PREFIXES.iter().any(|p| family.starts_with(p)) {
            continue;
        }
        let mut series = Series {
            kind: kind
                .get(&family)
                .cloned()
                .unwrap_or_else(|| "untyped".into()),
            help: help.get(&family).cloned().unwrap_or_default(),
            family,
            name,
            labels,
            value,
        };
        if PUSH_TIME_FAMILIES.contains(&series.family.as_str()) {
            series.value = if series.value == "0.0" { "zero" } else { "set" }.into();
        }
        match mask(&series.family) {
            Mask::Nothing => {}
            Mask::Value => series.value = "(masked)".into(),
            Mask::Labels => {
                series.value = "(masked)".into();
                series.labels.clear();
                series.name = series.family.clone();
                out.insert(series, 1);
                continue;
            }
        }
        *out.entry(series).or_insert(0) += 1;
    }
    Ok(out)
}

/// The differences between two normalised pages, one line per series that
/// one page has more often than the other; empty when they are equal.
pub fn differences(
    left_name: &str,
    left: &Normalised,
    right_name: &str,
    right: &Normalised,
) -> Vec<String> {
    let mut diffs = Vec::new();
    for (s, &n) in left {
        let m = right.get(s).copied().unwrap_or(0);
        if n > m {
            diffs.push(format!("only {left_name} ({n} vs {m}): {s}"));
        }
    }
    for (s, &m) in right {
        let n = left.get(s).copied().unwrap_or(0);
        if m > n {
            diffs.push(format!("only {right_name} ({m} vs {n}): {s}"));
        }
    }
    diffs
}

/// The family a sample belongs to: the family of the HELP/TYPE lines
/// before it when the name is that family's or one of its histogram or
/// summary series, else a family of its own.
fn family_of(name: &str, current: &str, kind: Option<&str>) -> String {
    if name == current {
        return name.to_string();
    }
    if matches!(kind, Some("histogram" | "summary"))
        && let Some(suffix) = name.strip_prefix(current)
        && matches!(suffix, "_bucket" | "_sum" | "_count")
    {
        return current.to_string();
    }
    name.to_string()
}

/// `name{l="v",...} value [timestamp]`, label values unescaped; the value
/// in one spelling, with the timestamp appended when there is one.
fn parse_sample(line: &str) -> Result<(String, BTreeMap<String, String>, String), String> {
    let end = line.find(['{', ' ']).ok_or("no value")?;
    let name = line[..end].to_string();
    let mut rest = &line[end..];
    let mut labels = BTreeMap::new();
    if let Some(mut r) = rest.strip_prefix('{') {
        loop {
            r = r.trim_start_matches([',', ' ']);
            if let Some(after) = r.strip_prefix('}') {
                rest = after;
                break;
            }
            let eq = r.find('=').ok_or("label without `=`")?;
            let lname = r[..eq].trim().to_string();
            r = r[eq + 1..]
                .strip_prefix('"')
                .ok_or("label value without `\"`")?;
            let mut value = String::new();
            let mut chars = r.char_indices();
            let closing = loop {
                let (i, c) = chars.next().ok_or("unterminated label value")?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next().ok_or("dangling `\\`")?.1 {
                        'n' => value.push('\n'),
                        c => value.push(c),
                    },
                    c => value.push(c),
                }
            };
            r = &r[closing + 1..];
            if labels.insert(lname.clone(), value).is_some() {
                return Err(format!("label {lname} twice"));
            }
        }
    }
    let mut fields = rest.split_whitespace();
    let value = canonical_number(fields.next().ok_or("no value")?)?;
    Ok(match fields.next() {
        Some(ts) => (name, labels, format!("{value} @{ts}")),
        None => (name, labels, value),
    })
}

/// A sample value in one spelling: Rust's shortest form that reads back
/// as the same double, with Go's names for the infinities and NaN.
fn canonical_number(v: &str) -> Result<String, String> {
    let x: f64 = match v {
        "+Inf" => return Ok("+Inf".into()),
        "-Inf" => return Ok("-Inf".into()),
        "NaN" => return Ok("NaN".into()),
        v => v
            .parse()
            .map_err(|_| format!("value {v:?} is not a number"))?,
    };
    Ok(format!("{x:?}"))
}

/// HELP text with `\\` and `\n` unescaped, as Prometheus reads it.
fn unescape_help(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        match (c, c == '\\') {
            (_, true) => match chars.next() {
                Some('n') => out.push('\n'),
                Some('\\') => out.push('\\'),
                Some(o) => {
                    out.push('\\');
                    out.push(o);
                }
                None => out.push('\\'),
            },
            (c, false) => out.push(c),
        }
    }
    out
}

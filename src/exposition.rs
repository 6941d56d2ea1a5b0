//! The Prometheus text exposition format (version 0.0.4), one line at a time.
//!
//! [`parse_line`] turns one line (without its newline) into a [`Line`] that
//! borrows from the input: no allocation, labels in a fixed array of
//! [`MAX_LABELS`]. Label values and HELP text are validated and kept in
//! their escaped form, which is canonical (the format has exactly one way
//! to write each value), so the cache stores and the renderer writes them
//! as they came. Memory: none beyond the caller's line.
//!
//! Tokens are recognised with nom; each step maps its failure to a
//! [`LineError`] that says what was wrong and what to send instead.

use std::fmt;

use nom::IResult;
use nom::bytes::complete::take_while;

use crate::bytes;
use crate::limits::{LINE_MAX_BYTES, MAX_LABELS};

/// The metric types of `# TYPE` lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricType {
    Counter,
    Gauge,
    Histogram,
    Summary,
    Untyped,
}

impl MetricType {
    pub fn as_str(self) -> &'static str {
        match self {
            MetricType::Counter => "counter",
            MetricType::Gauge => "gauge",
            MetricType::Histogram => "histogram",
            MetricType::Summary => "summary",
            MetricType::Untyped => "untyped",
        }
    }

    pub fn from_name(s: &str) -> Option<MetricType> {
        Some(match s {
            "counter" => MetricType::Counter,
            "gauge" => MetricType::Gauge,
            "histogram" => MetricType::Histogram,
            "summary" => MetricType::Summary,
            "untyped" => MetricType::Untyped,
            _ => return None,
        })
    }

    /// Compact code used inside the cache.
    pub fn code(self) -> u8 {
        self as u8
    }

    pub fn from_code(c: u8) -> MetricType {
        match c {
            0 => MetricType::Counter,
            1 => MetricType::Gauge,
            2 => MetricType::Histogram,
            3 => MetricType::Summary,
            _ => MetricType::Untyped,
        }
    }

    /// Whether a sample named `name` belongs to a family `family` of this
    /// type (`foo_bucket` to histogram `foo`, `foo_count` to summary `foo`).
    pub fn owns(self, family: &str, name: &str) -> bool {
        if name == family {
            return !matches!(self, MetricType::Histogram);
        }
        let Some(suffix) = name.strip_prefix(family) else {
            return false;
        };
        match self {
            MetricType::Histogram => matches!(suffix, "_bucket" | "_sum" | "_count"),
            MetricType::Summary => matches!(suffix, "_sum" | "_count"),
            _ => false,
        }
    }
}

/// One label of a sample; `value` is still escaped, as written.
pub type Label<'a> = (&'a str, &'a str);

/// A sample line: `name{labels} value`.
///
/// Labels are kept as byte offsets into the line (8 bytes each, not two
/// fat pointers), so a sample stays small to move around on the hot path.
#[derive(Debug, Clone)]
pub struct Sample<'a> {
    line: &'a str,
    pub name: &'a str,
    /// `name{labels}` as written, when that is already the canonical key
    /// (labels sorted by name, no blanks, no trailing comma).
    canonical: Option<&'a str>,
    /// name start, name end, value start, value end.
    spans: [[u16; 4]; MAX_LABELS],
    label_count: usize,
    pub value: f64,
}

impl<'a> Sample<'a> {
    pub fn label_count(&self) -> usize {
        self.label_count
    }

    /// Label `i`, `i < label_count()`.
    pub fn label(&self, i: usize) -> Label<'a> {
        let [ns, ne, vs, ve] = self.spans[i].map(usize::from);
        (&self.line[ns..ne], &self.line[vs..ve])
    }

    pub fn labels(&self) -> impl ExactSizeIterator<Item = Label<'a>> + '_ {
        (0..self.label_count).map(|i| self.label(i))
    }

    /// The series key exactly as written, when it is already canonical:
    /// then the key needs no rebuilding.
    pub fn canonical_key(&self) -> Option<&'a str> {
        self.canonical
    }

    /// Where label `i` lies in the line (which starts with the name, as
    /// [`Sample::canonical_key`] does): name start and end, value start and
    /// end (the value without its quotes).
    pub fn label_offsets(&self, i: usize) -> [usize; 4] {
        let [a, b, c, d] = self.spans[i];
        [a.into(), b.into(), c.into(), d.into()]
    }

    /// Label `i` as bytes: the hot path needs no `str` boundary checks.
    pub fn label_bytes(&self, i: usize) -> (&'a [u8], &'a [u8]) {
        let [ns, ne, vs, ve] = self.spans[i].map(usize::from);
        let line = self.line.as_bytes();
        (&line[ns..ne], &line[vs..ve])
    }
}

/// What one line of the format says.
// A sample carries its labels inline (no allocation per line), which makes
// it the large variant by design.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum Line<'a> {
    /// An empty line or a comment other than HELP and TYPE.
    Ignored,
    /// `# HELP name text`; `text` is still escaped.
    Help {
        name: &'a str,
        text: &'a str,
    },
    /// `# TYPE name type`.
    Type {
        name: &'a str,
        kind: MetricType,
    },
    /// `# TTL 10m`: the gateway's own directive (a comment to any other
    /// parser) setting the TTL of the stream's following lines.
    Ttl(&'a str),
    Sample(Sample<'a>),
}

/// Why a line was rejected. Messages say what is wrong and what to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineError {
    TooLong,
    NotUtf8,
    MetricName,
    LabelName,
    LabelSyntax,
    LabelValue,
    Escape,
    DuplicateLabel,
    TooManyLabels,
    Value,
    Timestamp,
    Trailing,
    HelpSyntax,
    HelpEscape,
    TypeSyntax,
    UnknownType,
}

impl LineError {
    pub fn message(self) -> &'static str {
        match self {
            LineError::TooLong => {
                "line too long: the limit is 4096 bytes; split the series or shorten its labels"
            }
            LineError::NotUtf8 => "invalid UTF-8: send names, labels and help text as UTF-8",
            LineError::MetricName => {
                "invalid metric name: use [a-zA-Z_:][a-zA-Z0-9_:]*, e.g. jobs_done_total 3"
            }
            LineError::LabelName => "invalid label name: use [a-zA-Z_][a-zA-Z0-9_]*",
            LineError::LabelSyntax => {
                "invalid labels: write {name=\"value\",...} between the metric name and the value"
            }
            LineError::LabelValue => "unterminated label value: close it with a double quote",
            LineError::Escape => {
                "invalid escape in label value: only \\\\, \\\" and \\n are allowed"
            }
            LineError::DuplicateLabel => "duplicate label name: give each label once",
            LineError::TooManyLabels => "too many labels: the limit is 32 per sample",
            LineError::Value => "invalid value: use a number such as 1, -3.5e-7, NaN, +Inf or -Inf",
            LineError::Timestamp => {
                "timestamps are not accepted: the sample time is the scrape time; drop the timestamp"
            }
            LineError::Trailing => "unexpected text after the value: send `name{labels} value`",
            LineError::HelpSyntax => "invalid HELP line: use `# HELP metric_name text`",
            LineError::HelpEscape => "invalid escape in HELP text: only \\\\ and \\n are allowed",
            LineError::TypeSyntax => "invalid TYPE line: use `# TYPE metric_name type`",
            LineError::UnknownType => {
                "unknown metric type: use counter, gauge, histogram, summary or untyped"
            }
        }
    }

    /// A short stable name, for logs and the rejected-lines counter.
    pub fn reason(self) -> &'static str {
        match self {
            LineError::TooLong => "too_long",
            LineError::NotUtf8 => "utf8",
            LineError::Timestamp => "timestamp",
            LineError::Value => "value",
            LineError::HelpSyntax
            | LineError::HelpEscape
            | LineError::TypeSyntax
            | LineError::UnknownType => "comment",
            _ => "syntax",
        }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for LineError {}

fn is_blank(c: char) -> bool {
    c == ' ' || c == '\t'
}

fn is_blank_byte(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

// Names are ASCII, so they are scanned as bytes (no UTF-8 decoding); the
// line was validated as UTF-8 once, and ASCII boundaries are char
// boundaries, so slicing the `&str` at them is sound.

fn blanks(i: &str) -> &str {
    // Most calls find none: spare them the scan.
    match i.as_bytes().first() {
        Some(&b) if is_blank_byte(b) => &i[span(i.as_bytes(), is_blank_byte)..],
        _ => i,
    }
}

/// Length of the run of bytes matching `pred` at the start of `b`.
#[inline]
fn span(b: &[u8], pred: impl Fn(u8) -> bool) -> usize {
    take_while::<_, &[u8], ()>(pred)(b).map_or(0, |(_, run)| run.len())
}

/// Byte classes of names, looked up in one table on the hot path.
const START: u8 = 1;
const CHAR: u8 = 2;
const COLON: u8 = 4;

const CLASSES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        if c.is_ascii_alphabetic() || c == b'_' {
            t[b] = START | CHAR;
        } else if c.is_ascii_digit() {
            t[b] = CHAR;
        } else if c == b':' {
            t[b] = COLON;
        }
        b += 1;
    }
    t
};

/// A name: a byte of class `start`, then bytes of class `rest`;
/// `(rest of i, name)`.
fn name(i: &str, start: u8, rest: u8) -> IResult<&str, &str, ()> {
    let b = i.as_bytes();
    match b.first() {
        Some(&c) if CLASSES[usize::from(c)] & start != 0 => {
            let n = 1 + span(&b[1..], |c| CLASSES[usize::from(c)] & rest != 0);
            Ok((&i[n..], &i[..n]))
        }
        _ => Err(nom::Err::Error(())),
    }
}

fn metric_name(i: &str) -> IResult<&str, &str, ()> {
    name(i, START | COLON, CHAR | COLON)
}

fn label_name(i: &str) -> IResult<&str, &str, ()> {
    name(i, START, CHAR)
}

/// A label value after its opening quote: returns what follows the closing
/// quote and the value between, escapes validated but kept.
fn label_value(i: &str) -> Result<(&str, &str), LineError> {
    let bytes = i.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b'"' => return Ok((&i[at + 1..], &i[..at])),
            b'\\' => match bytes.get(at + 1) {
                Some(b'\\' | b'"' | b'n') => at += 2,
                _ => return Err(LineError::Escape),
            },
            _ => at += 1,
        }
    }
    Err(LineError::LabelValue)
}

/// Whether `name` is a valid metric name.
pub fn is_metric_name(name: &str) -> bool {
    matches!(metric_name(name), Ok(("", _)))
}

/// Whether `name` is a valid label name.
pub fn is_label_name(name: &str) -> bool {
    matches!(label_name(name), Ok(("", _)))
}

/// Parses one line, without its trailing `\n` (a trailing `\r` is dropped).
///
/// # Errors
/// A [`LineError`] naming the first problem found.
pub fn parse_line(line: &[u8]) -> Result<Line<'_>, LineError> {
    if line.len() > LINE_MAX_BYTES {
        return Err(LineError::TooLong);
    }
    parse_text(std::str::from_utf8(line).map_err(|_| LineError::NotUtf8)?)
}

/// The lines of `body` (split at `\n`), parsed. A valid UTF-8 body is
/// checked once as a whole; otherwise line by line, so that the error
/// names the line.
pub fn parse_lines(body: &[u8]) -> impl Iterator<Item = Result<Line<'_>, LineError>> {
    let text = std::str::from_utf8(body).ok();
    let mut start = Some(0);
    std::iter::from_fn(move || {
        let from = start?;
        let newline = memchr::memchr(b'\n', &body[from..]).map(|n| from + n);
        let end = newline.unwrap_or(body.len());
        start = newline.map(|n| n + 1);
        // Newlines are ASCII: the text splits at them on char boundaries.
        Some(match text.and_then(|t| t.get(from..end)) {
            Some(line) => parse_text(line),
            None => parse_line(&body[from..end]),
        })
    })
}

/// [`parse_line`] for text already known to be UTF-8: a caller holding
/// many lines validates them in one pass, several times faster than line
/// by line.
///
/// # Errors
/// As [`parse_line`].
pub fn parse_text(line: &str) -> Result<Line<'_>, LineError> {
    if line.len() > LINE_MAX_BYTES {
        return Err(LineError::TooLong);
    }
    let b = line.as_bytes();
    let mut end = b.len();
    while end > 0 && (is_blank_byte(b[end - 1]) || b[end - 1] == b'\r') {
        end -= 1;
    }
    let line = blanks(&line[..end]);
    match line.as_bytes().first() {
        None => Ok(Line::Ignored),
        Some(b'#') => parse_comment(blanks(&line[1..])),
        Some(_) => parse_sample(line),
    }
}

fn parse_comment(i: &str) -> Result<Line<'_>, LineError> {
    let n = span(i.as_bytes(), |b| !is_blank_byte(b));
    let (rest, keyword) = (&i[n..], &i[..n]);
    match keyword {
        "HELP" => {
            let (text, name) = metric_name(blanks(rest)).map_err(|_| LineError::HelpSyntax)?;
            if !(text.is_empty() || text.starts_with(is_blank)) {
                return Err(LineError::HelpSyntax);
            }
            let text = blanks(text);
            check_help_escapes(text)?;
            Ok(Line::Help { name, text })
        }
        "TYPE" => {
            let (rest, name) = metric_name(blanks(rest)).map_err(|_| LineError::TypeSyntax)?;
            if !rest.starts_with(is_blank) {
                return Err(LineError::TypeSyntax);
            }
            let kind = MetricType::from_name(blanks(rest)).ok_or(LineError::UnknownType)?;
            Ok(Line::Type { name, kind })
        }
        "TTL" => Ok(Line::Ttl(blanks(rest))),
        _ => Ok(Line::Ignored),
    }
}

fn check_help_escapes(text: &str) -> Result<(), LineError> {
    let mut bytes = text.bytes();
    while let Some(b) = bytes.next() {
        if b == b'\\' && !matches!(bytes.next(), Some(b'\\' | b'n')) {
            return Err(LineError::HelpEscape);
        }
    }
    Ok(())
}

fn parse_sample(line: &str) -> Result<Line<'_>, LineError> {
    let (rest, name) = metric_name(line).map_err(|_| LineError::MetricName)?;
    // Built in place inside the `Line`: a sample is a few hundred bytes,
    // and a copy per line showed in profiles.
    let mut parsed = Line::Sample(Sample {
        line,
        name,
        canonical: Some(name),
        spans: [[0; 4]; MAX_LABELS],
        label_count: 0,
        value: 0.0,
    });
    if let Line::Sample(sample) = &mut parsed {
        finish_sample(sample, rest)?;
    }
    Ok(parsed)
}

/// Parses what follows the name of `sample`: labels and value.
fn finish_sample<'a>(sample: &mut Sample<'a>, rest: &'a str) -> Result<(), LineError> {
    let (line, name) = (sample.line, sample.name);
    let mut rest = blanks(rest);
    if rest.as_bytes().first() == Some(&b'{') {
        let compact_start = rest.len() == line.len() - name.len();
        rest = parse_labels(&rest[1..], sample)?;
        let key_len = line.len() - rest.len();
        sample.canonical = (compact_start && sample.canonical.is_some() && sample.label_count > 0)
            .then(|| &line[..key_len]);
    } else if rest.len() == line.len() - name.len() && !rest.is_empty() {
        // No blank between name and value: the name had a bad character.
        return Err(LineError::MetricName);
    }
    let rest = blanks(rest);
    let n = span(rest.as_bytes(), |b| !is_blank_byte(b));
    if n == 0 {
        return Err(LineError::Value);
    }
    let (token, rest) = (&rest[..n], &rest[n..]);
    sample.value = parse_value(token)?;
    let rest = blanks(rest);
    if !rest.is_empty() {
        let ts = rest.strip_prefix('-').unwrap_or(rest);
        return Err(if ts.bytes().all(|b| b.is_ascii_digit()) {
            LineError::Timestamp
        } else {
            LineError::Trailing
        });
    }
    Ok(())
}

/// Parses `name="value",...}` after the opening brace; returns what follows
/// the closing brace.
fn parse_labels<'a>(mut i: &'a str, sample: &mut Sample<'a>) -> Result<&'a str, LineError> {
    // Whether the text is already the canonical key: no blanks, no
    // trailing comma, names in order.
    let mut compact = true;
    // Whether the names so far are strictly ascending.
    let mut sorted = true;
    let mut after_comma = false;
    loop {
        let trimmed = blanks(i);
        compact &= trimmed.len() == i.len();
        i = trimmed;
        if i.as_bytes().first() == Some(&b'}') {
            if !compact || after_comma {
                sample.canonical = None;
            }
            return Ok(&i[1..]);
        }
        let (rest, name) = label_name(i).map_err(|_| {
            if i.is_empty() {
                LineError::LabelSyntax
            } else {
                LineError::LabelName
            }
        })?;
        let rest = match rest.as_bytes() {
            // The compact form `name="`, as client libraries write it.
            [b'=', b'"', ..] => &rest[2..],
            _ => blanks(rest)
                .strip_prefix('=')
                .map(blanks)
                .and_then(|r| r.strip_prefix('"'))
                .ok_or(LineError::LabelSyntax)?,
        };
        compact &= rest.len() + name.len() + 2 == i.len();
        let (rest, value) = label_value(rest)?;
        let name_bytes = name.as_bytes();
        if sample.label_count > 0 {
            let previous = sample.label_bytes(sample.label_count - 1).0;
            match bytes::cmp(previous, name_bytes) {
                // Names in order so far: a repeat would be the previous one.
                std::cmp::Ordering::Less if sorted => {}
                std::cmp::Ordering::Equal => return Err(LineError::DuplicateLabel),
                order => {
                    sorted &= order.is_lt();
                    if (0..sample.label_count)
                        .any(|j| bytes::eq(sample.label_bytes(j).0, name_bytes))
                    {
                        return Err(LineError::DuplicateLabel);
                    }
                }
            }
        }
        compact &= sorted;
        if sample.label_count == MAX_LABELS {
            return Err(LineError::TooManyLabels);
        }
        let base = sample.line.as_ptr() as usize;
        let offset = |part: &str| (part.as_ptr() as usize - base) as u16;
        let (ns, vs) = (offset(name), offset(value));
        sample.spans[sample.label_count] =
            [ns, ns + name.len() as u16, vs, vs + value.len() as u16];
        sample.label_count += 1;
        let trimmed = blanks(rest);
        compact &= trimmed.len() == rest.len();
        after_comma = trimmed.starts_with(',');
        i = match trimmed.as_bytes().first() {
            Some(b',') => &trimmed[1..],
            Some(b'}') => trimmed,
            _ => return Err(LineError::LabelSyntax),
        };
    }
}

/// Parses a sample value as Go's `strconv.ParseFloat` does for the format:
/// decimal and exponent forms, `NaN`, `+Inf`, `-Inf` (any case).
pub fn parse_value(token: &str) -> Result<f64, LineError> {
    // Most values are small integers: no need for the float parser.
    let b = token.as_bytes();
    if !b.is_empty() && b.len() <= 15 {
        let mut n = 0u64;
        let mut digits = true;
        for &d in b {
            if !d.is_ascii_digit() {
                digits = false;
                break;
            }
            n = n * 10 + u64::from(d - b'0');
        }
        if digits {
            return Ok(n as f64);
        }
    }
    let plausible = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !plausible {
        return Err(LineError::Value);
    }
    token.parse::<f64>().map_err(|_| LineError::Value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(line: &str) -> Sample<'_> {
        match parse_line(line.as_bytes()) {
            Ok(Line::Sample(s)) => s,
            other => panic!("{line:?}: {other:?}"),
        }
    }

    #[test]
    fn samples() {
        let s = sample("http_requests_total{method=\"post\",code=\"200\"} 1027");
        assert_eq!(s.name, "http_requests_total");
        assert_eq!(
            s.labels().collect::<Vec<_>>(),
            [("method", "post"), ("code", "200")]
        );
        assert_eq!(s.value, 1027.0);

        for (line, value) in [
            ("x 1", 1.0),
            ("x -3.5e-7", -3.5e-7),
            ("x +Inf", f64::INFINITY),
            ("x -Inf", f64::NEG_INFINITY),
            ("x\t\t2", 2.0),
            ("  x 3  ", 3.0),
            ("x 4\r", 4.0),
            ("x{} 5", 5.0),
            ("x {a=\"b\"} 6", 6.0),
            ("x{ a = \"b\" , } 7", 7.0),
            ("a:b_c 8", 8.0),
            ("_x 9", 9.0),
        ] {
            assert_eq!(sample(line).value, value, "{line}");
        }
        assert!(sample("x NaN").value.is_nan());
        assert!(sample("x nan").value.is_nan());
    }

    #[test]
    fn escaped_label_values_are_kept_as_written() {
        let s = sample(r#"x{path="C:\\dir",quote="say \"hi\"",nl="a\nb",u="ünï"} 1"#);
        assert_eq!(
            s.labels().collect::<Vec<_>>(),
            [
                ("path", r"C:\\dir"),
                ("quote", r#"say \"hi\""#),
                ("nl", r"a\nb"),
                ("u", "ünï")
            ]
        );
        assert_eq!(
            sample(r#"x{a=""} 1"#).labels().collect::<Vec<_>>(),
            [("a", "")]
        );
        assert_eq!(
            sample(r#"x{a="},{"} 1"#).labels().collect::<Vec<_>>(),
            [("a", "},{")]
        );
    }

    #[test]
    fn comments() {
        match parse_line(b"# HELP http_requests_total The total\\n number \\\\ of requests.") {
            Ok(Line::Help { name, text }) => {
                assert_eq!(name, "http_requests_total");
                assert_eq!(text, "The total\\n number \\\\ of requests.");
            }
            other => panic!("{other:?}"),
        }
        match parse_line(b"# HELP x") {
            Ok(Line::Help {
                name: "x",
                text: "",
            }) => {}
            other => panic!("{other:?}"),
        }
        for (line, kind) in [
            ("# TYPE x counter", MetricType::Counter),
            ("#TYPE x gauge", MetricType::Gauge),
            ("# TYPE x   histogram  ", MetricType::Histogram),
            ("# TYPE x summary", MetricType::Summary),
            ("# TYPE x untyped", MetricType::Untyped),
        ] {
            match parse_line(line.as_bytes()) {
                Ok(Line::Type { name: "x", kind: k }) => assert_eq!(k, kind, "{line}"),
                other => panic!("{line}: {other:?}"),
            }
        }
        for line in [
            "",
            "   ",
            "#",
            "# just a comment",
            "# HELPFUL x",
            "\t# TYPEx",
        ] {
            assert!(
                matches!(parse_line(line.as_bytes()), Ok(Line::Ignored)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn malformed_lines() {
        let long = format!("x{{a=\"{}\"}} 1", "v".repeat(LINE_MAX_BYTES));
        let cases: &[(&[u8], LineError)] = &[
            (long.as_bytes(), LineError::TooLong),
            (b"x{a=\"\xff\"} 1", LineError::NotUtf8),
            (b"1x 1", LineError::MetricName),
            (b"x-y 1", LineError::MetricName),
            (b"x\0 1", LineError::MetricName),
            (b"x{1a=\"b\"} 1", LineError::LabelName),
            (b"x{a:b=\"c\"} 1", LineError::LabelSyntax),
            (b"x{a} 1", LineError::LabelSyntax),
            (b"x{a=b} 1", LineError::LabelSyntax),
            (b"x{a=\"b\" c=\"d\"} 1", LineError::LabelSyntax),
            (b"x{a=\"b\"", LineError::LabelSyntax),
            (b"x{a=\"b} 1", LineError::LabelValue),
            (b"x{a=\"\\t\"} 1", LineError::Escape),
            (b"x{a=\"1\",a=\"2\"} 1", LineError::DuplicateLabel),
            (b"x", LineError::Value),
            (b"x{a=\"b\"}", LineError::Value),
            (b"x one", LineError::Value),
            (b"x 0x10", LineError::Value),
            (b"x 1 1700000000000", LineError::Timestamp),
            (b"x 1 -5", LineError::Timestamp),
            (b"x 1 two", LineError::Trailing),
            (b"# HELP", LineError::HelpSyntax),
            (b"# HELP 9x text", LineError::HelpSyntax),
            (b"# HELP x bad \\t escape", LineError::HelpEscape),
            (b"# TYPE x", LineError::TypeSyntax),
            (b"# TYPE x countr", LineError::UnknownType),
        ];
        for (line, want) in cases {
            let got = parse_line(line).err();
            assert_eq!(got, Some(*want), "{:?}", String::from_utf8_lossy(line));
        }
        let many: String = (0..=MAX_LABELS).map(|n| format!("l{n}=\"v\",")).collect();
        assert_eq!(
            parse_line(format!("x{{{many}}} 1").as_bytes()).err(),
            Some(LineError::TooManyLabels)
        );
    }

    #[test]
    fn family_membership() {
        use MetricType::*;
        assert!(Histogram.owns("h", "h_bucket"));
        assert!(Histogram.owns("h", "h_sum"));
        assert!(!Histogram.owns("h", "h"));
        assert!(Summary.owns("s", "s"));
        assert!(Summary.owns("s", "s_count"));
        assert!(!Summary.owns("s", "s_bucket"));
        assert!(Counter.owns("c_total", "c_total"));
        assert!(!Counter.owns("c", "c_total"));
    }

    #[test]
    fn never_panics_on_any_prefix() {
        let line = br#"x{a="b\"c",d="\n"} -1.5e3"#;
        for end in 0..=line.len() {
            let _ = parse_line(&line[..end]);
        }
    }
}

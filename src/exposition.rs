//! The Prometheus text exposition format (version 0.0.4), one line at a time.
//!
//! [`parse_line`] turns one line (without its newline) into a [`Line`] that
//! borrows from the input: no allocation, labels as offsets in fixed arrays
//! (up to [`MAX_LABELS`]). Label values and HELP text are validated and kept in
//! their escaped form, which is canonical (the format has exactly one way
//! to write each value), so the cache stores and the renderer writes them
//! as they came. Memory: none beyond the caller's line.
//!
//! Tokens are recognised with nom; each step maps its failure to a
//! [`LineError`] that says what was wrong and what to send instead.

use std::cmp::Ordering;
use std::fmt;

use nom::IResult;
use nom::bytes::complete::take_while;

use crate::bytes;
use crate::limits::{LINE_MAX_BYTES, MAX_LABELS};
pub use crate::value::parse_value;
use crate::value::small_integer;

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

    /// The type a `# TYPE` line names, in any case (as the Pushgateway's
    /// parser reads it).
    pub fn from_name(s: &str) -> Option<MetricType> {
        [
            MetricType::Counter,
            MetricType::Gauge,
            MetricType::Histogram,
            MetricType::Summary,
            MetricType::Untyped,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
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
    /// Per label: name start, name end, value start, value end. Labels
    /// from `FIRST_SPANS` on are in `more_spans`.
    spans: [[u16; 4]; FIRST_SPANS],
    /// Set up only for a sample with more labels than `spans` holds: a
    /// `None` is one store, where zeroing room for all 32 spans took a call
    /// to `memset` per line (over 128 bytes, at opt-level "s"; measured,
    /// about 50 instructions).
    more_spans: Option<[[u16; 4]; MAX_LABELS - FIRST_SPANS]>,
    label_count: usize,
    pub value: f64,
}

/// How many label spans a sample holds before it needs `more_spans`.
const FIRST_SPANS: usize = 16;

impl<'a> Sample<'a> {
    /// The span of label `i`, `i < MAX_LABELS`.
    #[inline]
    fn span(&self, i: usize) -> [u16; 4] {
        match i.checked_sub(FIRST_SPANS) {
            None => self.spans[i],
            Some(j) => self.more_spans.as_ref().map_or([0; 4], |more| more[j]),
        }
    }

    pub fn label_count(&self) -> usize {
        self.label_count
    }

    /// Label `i`, `i < label_count()`.
    pub fn label(&self, i: usize) -> Label<'a> {
        let [ns, ne, vs, ve] = self.span(i).map(usize::from);
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
        let [a, b, c, d] = self.span(i);
        [a.into(), b.into(), c.into(), d.into()]
    }

    /// Label `i` as bytes: the hot path needs no `str` boundary checks.
    pub fn label_bytes(&self, i: usize) -> (&'a [u8], &'a [u8]) {
        let [ns, ne, vs, ve] = self.span(i).map(usize::from);
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
    /// A label name starting with `__`, which Prometheus keeps for itself
    /// (`__name__` on a pushed sample makes Prometheus reject the page).
    ReservedLabel,
    /// The label `__name__`: refused as the others, but the Pushgateway
    /// refuses it while parsing, the others when checking the push.
    NameLabel,
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
            LineError::ReservedLabel | LineError::NameLabel => {
                "label names starting with __ (such as __name__) are reserved for Prometheus: rename the label"
            }
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
            LineError::ReservedLabel | LineError::NameLabel => "reserved",
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

// The parser works on byte indexes into the line and slices it once per
// token it hands out: re-slicing a `&str` at every step cost a bounds and
// a char-boundary check each time. Names and the syntax around them are
// ASCII; the line was validated as UTF-8 once, and ASCII boundaries are
// char boundaries, so slicing the `&str` at them is sound. The helpers
// called from several places are `#[inline]`: at opt-level "s" the
// compiler otherwise leaves them as calls (measured, each one pays).

fn blanks(i: &str) -> &str {
    &i[skip_blanks(i.as_bytes(), 0)..]
}

/// The index of the first byte at or after `at` that is not a blank.
#[inline]
fn skip_blanks(b: &[u8], at: usize) -> usize {
    // Most calls find none: spare them the scan.
    match b.get(at) {
        Some(&c) if is_blank_byte(c) => at + 1 + span(&b[at + 1..], is_blank_byte),
        _ => at,
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

/// The length of the name at the start of `b` (a byte of class `start`,
/// then bytes of class `rest`); 0 if there is none.
#[inline]
fn name_len(b: &[u8], start: u8, rest: u8) -> usize {
    match b.split_first() {
        Some((&c, tail)) if CLASSES[usize::from(c)] & start != 0 => {
            1 + span(tail, |c| CLASSES[usize::from(c)] & rest != 0)
        }
        _ => 0,
    }
}

#[inline]
fn metric_name_len(b: &[u8]) -> usize {
    name_len(b, START | COLON, CHAR | COLON)
}

fn label_name_len(b: &[u8]) -> usize {
    name_len(b, START, CHAR)
}

/// A metric name at the start of `i`: `(rest of i, name)`.
fn metric_name(i: &str) -> IResult<&str, &str, ()> {
    match metric_name_len(i.as_bytes()) {
        0 => Err(nom::Err::Error(())),
        n => Ok((&i[n..], &i[..n])),
    }
}

/// The index of the closing quote of the label value starting at `at`
/// (after its opening quote); escapes are validated but kept.
fn label_value_end(b: &[u8], mut at: usize) -> Result<usize, LineError> {
    loop {
        at += span(&b[at..], |c| c != b'"' && c != b'\\');
        match b.get(at) {
            Some(b'"') => return Ok(at),
            // A backslash.
            Some(_) => match b.get(at + 1) {
                Some(b'\\' | b'"' | b'n') => at += 2,
                _ => return Err(LineError::Escape),
            },
            None => return Err(LineError::LabelValue),
        }
    }
}

/// Whether `name` is a valid metric name.
pub fn is_metric_name(name: &str) -> bool {
    let n = metric_name_len(name.as_bytes());
    n > 0 && n == name.len()
}

/// Whether `name` is a valid label name.
pub fn is_label_name(name: &str) -> bool {
    let n = label_name_len(name.as_bytes());
    n > 0 && n == name.len()
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

/// The lines of a body, split at `\n` but not parsed: the caller parses
/// each where it uses it (a parsed line is a few hundred bytes, and passing
/// it through an iterator copied it). A valid UTF-8 body is checked once as
/// a whole; otherwise each line is checked on its own, so that the error
/// names the line.
pub struct Lines<'a> {
    body: &'a [u8],
    /// The whole body, if it is UTF-8.
    text: Option<&'a str>,
    /// Where the next line starts; `None` after the last.
    start: Option<usize>,
}

impl<'a> Lines<'a> {
    pub fn new(body: &'a [u8]) -> Lines<'a> {
        Lines {
            body,
            text: std::str::from_utf8(body).ok(),
            start: Some(0),
        }
    }

    /// The next line without its `\n`: as text when the body is UTF-8,
    /// else as bytes; [`parse`] parses either.
    pub fn next_line(&mut self) -> Option<Result<&'a str, &'a [u8]>> {
        let from = self.start?;
        let newline = memchr::memchr(b'\n', &self.body[from..]).map(|n| from + n);
        let end = newline.unwrap_or(self.body.len());
        self.start = newline.map(|n| n + 1);
        // Newlines are ASCII: the text splits at them on char boundaries.
        Some(match self.text.and_then(|t| t.get(from..end)) {
            Some(line) => Ok(line),
            None => Err(&self.body[from..end]),
        })
    }
}

/// Parses a line of [`Lines`].
///
/// # Errors
/// As [`parse_line`].
pub fn parse<'a>(line: Result<&'a str, &'a [u8]>) -> Result<Line<'a>, LineError> {
    match line {
        Ok(text) => parse_text(text),
        Err(bytes) => parse_line(bytes),
    }
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
    // Carriage returns of CRLF line ends, however many: a HELP text ending
    // in one would be written back as a line the parser reads otherwise.
    while end > 0 && b[end - 1] == b'\r' {
        end -= 1;
    }
    let start = skip_blanks(&b[..end], 0);
    if b.get(start) == Some(&b'#') {
        // Trailing blanks are part of a HELP text, as the Pushgateway keeps
        // them; the other comments trim their own.
        return parse_comment(blanks(&line[start + 1..end]));
    }
    while end > start && (is_blank_byte(b[end - 1]) || b[end - 1] == b'\r') {
        end -= 1;
    }
    let line = &line[start..end];
    match line.as_bytes().first() {
        None => Ok(Line::Ignored),
        _ => parse_sample(line),
    }
}

/// `i` without blanks at its end.
fn trim_end_blanks(i: &str) -> &str {
    i.trim_end_matches(is_blank)
}

// Out of line: inlined, comments made `parse_text` save and restore more
// registers for every line (measured, about 6 instructions a line).
#[inline(never)]
fn parse_comment(i: &str) -> Result<Line<'_>, LineError> {
    let n = span(i.as_bytes(), |b| !is_blank_byte(b));
    let (rest, keyword) = (&i[n..], &i[..n]);
    match keyword {
        // As the Pushgateway's parser: a HELP or TYPE line that ends
        // before its text or type (or even its name) is a comment.
        "HELP" | "TYPE" if trim_end_blanks(rest).is_empty() => Ok(Line::Ignored),
        "HELP" => {
            let (text, name) = metric_name(blanks(rest)).map_err(|_| LineError::HelpSyntax)?;
            if !(text.is_empty() || text.starts_with(is_blank)) {
                return Err(LineError::HelpSyntax);
            }
            let text = blanks(text);
            if text.is_empty() {
                return Ok(Line::Ignored);
            }
            check_help_escapes(text)?;
            Ok(Line::Help { name, text })
        }
        "TYPE" => {
            let (rest, name) = metric_name(blanks(rest)).map_err(|_| LineError::TypeSyntax)?;
            let word = trim_end_blanks(blanks(rest));
            if word.is_empty() {
                return Ok(Line::Ignored);
            }
            if !rest.starts_with(is_blank) {
                return Err(LineError::TypeSyntax);
            }
            let kind = MetricType::from_name(word).ok_or(LineError::UnknownType)?;
            Ok(Line::Type { name, kind })
        }
        "TTL" => Ok(Line::Ttl(trim_end_blanks(blanks(rest)))),
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

/// `line` is trimmed and starts with neither a blank nor `#`.
fn parse_sample(line: &str) -> Result<Line<'_>, LineError> {
    let name_end = metric_name_len(line.as_bytes());
    if name_end == 0 {
        return Err(LineError::MetricName);
    }
    let mut error = None;
    let sample = scan_sample(line, name_end, &mut error);
    // The compiler has `scan_sample` build the sample right where this
    // result holds it: it is wrapped where it lies, and an error replaces it.
    let mut parsed = Ok(Line::Sample(sample));
    if let Some(e) = error {
        parsed = Err(e);
    }
    parsed
}

/// Parses what follows the name of a sample (which ends at `name_end`):
/// labels and value. What was wrong goes to `error`; the sample returned
/// then means nothing.
///
/// A sample is a few hundred bytes (its label spans inline), built in
/// place: `sample` is only ever assigned to, field by field, and never
/// borrowed, so the compiler builds it in the return slot, which the caller
/// points into its own result. A `&mut` to it anywhere costs a copy of the
/// whole sample per line (measured, about 60 instructions). Hence helpers
/// here get bytes and indexes, never the sample; errors leave through
/// `error`; and the function stays out of line, as a call is what lets
/// the caller hand it the place.
#[inline(never)]
fn scan_sample<'a>(line: &'a str, name_end: usize, error: &mut Option<LineError>) -> Sample<'a> {
    let b = line.as_bytes();
    let name = &line[..name_end];
    let mut sample = Sample {
        line,
        name,
        canonical: Some(name),
        spans: [[0; 4]; FIRST_SPANS],
        more_spans: None,
        label_count: 0,
        value: 0.0,
    };
    // `?` for this function, which returns the sample even on an error.
    macro_rules! check {
        ($result:expr) => {
            match $result {
                Ok(v) => v,
                Err(e) => {
                    *error = Some(e);
                    return sample;
                }
            }
        };
    }
    let mut at = skip_blanks(b, name_end);
    match b.get(at) {
        Some(b'{') => {
            // Whether the labels are already the canonical key: no blanks
            // (from the name on), no trailing comma, names in order.
            let mut compact = at == name_end;
            // Whether the names so far are strictly ascending.
            let mut sorted = true;
            let mut previous: &[u8] = &[];
            at += 1;
            loop {
                // After the brace or a comma: a label or the closing brace.
                if b.get(at).is_some_and(|&c| is_blank_byte(c)) {
                    compact = false;
                    at = skip_blanks(b, at);
                }
                let (span, compact_label) = match label_at(b, at) {
                    Ok(label) => label,
                    // `{}`, or a trailing comma: valid, never canonical.
                    Err(_) if b.get(at) == Some(&b'}') => {
                        compact = false;
                        at += 1;
                        break;
                    }
                    Err(e) => check!(Err(e)),
                };
                compact &= compact_label;
                let [name_start, name_end, _, value_end] = span;
                let name = &b[name_start..name_end];
                let count = sample.label_count;
                if count > 0 {
                    // Names usually differ in their first byte (both have one).
                    let order = match previous[0].cmp(&name[0]) {
                        Ordering::Equal => bytes::cmp(previous, name),
                        order => order,
                    };
                    match order {
                        // Names in order so far: a repeat would be the previous one.
                        Ordering::Less if sorted => {}
                        Ordering::Equal => check!(Err(LineError::DuplicateLabel)),
                        order => {
                            sorted &= order.is_lt();
                            for j in 0..count {
                                let [s, e, _, _] = match j.checked_sub(FIRST_SPANS) {
                                    None => sample.spans[j],
                                    Some(j) => sample.more_spans.unwrap_or_default()[j],
                                }
                                .map(usize::from);
                                if bytes::eq(&b[s..e], name) {
                                    check!(Err(LineError::DuplicateLabel));
                                }
                            }
                        }
                    }
                }
                if count == MAX_LABELS {
                    check!(Err(LineError::TooManyLabels));
                }
                // Offsets fit: the line is at most LINE_MAX_BYTES long.
                let span = [
                    span[0] as u16,
                    span[1] as u16,
                    span[2] as u16,
                    span[3] as u16,
                ];
                match count.checked_sub(FIRST_SPANS) {
                    None => sample.spans[count] = span,
                    // Rare: copied out and back in, as a borrow of
                    // `sample` would cost its build in place (see above).
                    Some(j) => {
                        let mut more = sample.more_spans.unwrap_or_default();
                        more[j] = span;
                        sample.more_spans = Some(more);
                    }
                }
                sample.label_count = count + 1;
                previous = name;
                at = value_end + 1;
                if b.get(at).is_some_and(|&c| is_blank_byte(c)) {
                    compact = false;
                    at = skip_blanks(b, at);
                }
                match b.get(at) {
                    Some(b',') => at += 1,
                    Some(b'}') => {
                        at += 1;
                        break;
                    }
                    _ => check!(Err(LineError::LabelSyntax)),
                }
            }
            sample.canonical = (compact && sorted && sample.label_count > 0).then(|| &line[..at]);
            at = skip_blanks(b, at);
        }
        // No blank between name and value: the name had a bad character.
        Some(_) if at == name_end => check!(Err(LineError::MetricName)),
        _ => {}
    }
    sample.value = check!(sample_value(line, at));
    sample
}

/// The label `name="value"` at `at`: its name start and end, value start
/// and end (without the quotes; the value is still escaped), and whether
/// it is written compactly (`name="`, as client libraries write it).
fn label_at(b: &[u8], at: usize) -> Result<([usize; 4], bool), LineError> {
    let name_end = at + label_name_len(&b[at..]);
    if name_end == at {
        return Err(if at == b.len() {
            LineError::LabelSyntax
        } else {
            LineError::LabelName
        });
    }
    if b[at] == b'_' && b.get(at + 1) == Some(&b'_') {
        return Err(if &b[at..name_end] == b"__name__" {
            LineError::NameLabel
        } else {
            LineError::ReservedLabel
        });
    }
    let (value_start, compact) = if b.get(name_end..name_end + 2) == Some(b"=\"") {
        (name_end + 2, true)
    } else {
        let eq = skip_blanks(b, name_end);
        if b.get(eq) != Some(&b'=') {
            return Err(LineError::LabelSyntax);
        }
        let quote = skip_blanks(b, eq + 1);
        if b.get(quote) != Some(&b'"') {
            return Err(LineError::LabelSyntax);
        }
        (quote + 1, false)
    };
    let value_end = label_value_end(b, value_start)?;
    Ok(([at, name_end, value_start, value_end], compact))
}

/// The value token of a sample at `at` (after the labels and blanks),
/// which must end the line.
fn sample_value(line: &str, at: usize) -> Result<f64, LineError> {
    let b = line.as_bytes();
    // The value is usually the rest of the line (trailing blanks are
    // gone), and an integer: then no scan for its end is needed.
    if let Some(n) = small_integer(&b[at..]) {
        return Ok(n as f64);
    }
    let end = at + span(&b[at..], |c| !is_blank_byte(c));
    if end == at {
        return Err(LineError::Value);
    }
    let value = parse_value(&line[at..end])?;
    let rest = &line[skip_blanks(b, end)..];
    if !rest.is_empty() {
        let ts = rest.strip_prefix('-').unwrap_or(rest);
        return Err(if ts.bytes().all(|b| b.is_ascii_digit()) {
            LineError::Timestamp
        } else {
            LineError::Trailing
        });
    }
    Ok(value)
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
            // As Go's ParseFloat (the Pushgateway) reads them.
            ("x inf", f64::INFINITY),
            ("x -Infinity", f64::NEG_INFINITY),
            ("x +infinity", f64::INFINITY),
            ("x 1e-400", 0.0),
            ("x .5", 0.5),
            ("x 5.", 5.0),
            ("x +5", 5.0),
            ("x{_a=\"1\"} 10", 10.0),
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
        // Trailing blanks belong to the text, as the Pushgateway keeps them.
        match parse_line(b"  # HELP x  spaced  \t\r") {
            Ok(Line::Help {
                name: "x",
                text: "spaced  \t",
            }) => {}
            other => panic!("{other:?}"),
        }
        // As the Pushgateway reads them: a HELP or TYPE line without its
        // text is a comment, and type names are read in any case.
        for line in [
            "# HELP x",
            "# HELP x   ",
            "# HELP",
            "# TYPE",
            "# TYPE x",
            "# TYPE x  ",
        ] {
            assert!(
                matches!(parse_line(line.as_bytes()), Ok(Line::Ignored)),
                "{line}"
            );
        }
        assert!(matches!(
            parse_line(b"# TYPE x GAUGE"),
            Ok(Line::Type {
                kind: MetricType::Gauge,
                ..
            })
        ));
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
            (b"x{__name__=\"y\"} 1", LineError::NameLabel),
            (b"x{a=\"1\", __x=\"2\"} 1", LineError::ReservedLabel),
            (b"x 1e309", LineError::Value),
            (b"x -1e309", LineError::Value),
            (b"x -NaN", LineError::Value),
            (b"x +nan", LineError::Value),
            (b"x infinit", LineError::Value),
            (b"x", LineError::Value),
            (b"x{a=\"b\"}", LineError::Value),
            (b"x one", LineError::Value),
            (b"x 0x10", LineError::Value),
            (b"x 1 1700000000000", LineError::Timestamp),
            (b"x 1 -5", LineError::Timestamp),
            (b"x 1 two", LineError::Trailing),
            (b"# HELP 9x text", LineError::HelpSyntax),
            (b"# HELP x bad \\t escape", LineError::HelpEscape),
            (b"# TYPE x-y gauge", LineError::TypeSyntax),
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

    #[test]
    fn canonical_keys() {
        for (line, key) in [
            ("x 1", Some("x")),
            ("x{a=\"1\"} 1", Some("x{a=\"1\"}")),
            ("x{a=\"1\",b=\"\\\"}\"} 1", Some("x{a=\"1\",b=\"\\\"}\"}")),
            ("  x{a=\"1\"}\t1\r", Some("x{a=\"1\"}")),
            ("x{} 1", None),
            ("x {a=\"1\"} 1", None),
            ("x{ a=\"1\"} 1", None),
            ("x{a =\"1\"} 1", None),
            ("x{a= \"1\"} 1", None),
            ("x{a=\"1\" } 1", None),
            ("x{a=\"1\",} 1", None),
            ("x{a=\"1\", b=\"2\"} 1", None),
            ("x{b=\"1\",a=\"2\"} 1", None),
            ("x{a=\"1\",c=\"2\",b=\"3\"} 1", None),
        ] {
            assert_eq!(sample(line).canonical_key(), key, "{line}");
        }
    }

    #[test]
    fn label_offsets_point_into_the_trimmed_line() {
        let s = sample("  x{ a = \"b\" ,cd=\"\"} 1");
        assert_eq!(s.label_offsets(0), [3, 4, 8, 9]);
        assert_eq!(s.label_offsets(1), [12, 14, 16, 16]);
        assert_eq!(s.label_bytes(1), (&b"cd"[..], &b""[..]));
    }

    /// Labels past the sixteenth are kept apart (`more_spans`).
    #[test]
    fn many_labels() {
        let labels: Vec<String> = (0..MAX_LABELS)
            .map(|n| format!("l{n:02}=\"v{n}\""))
            .collect();
        let line = format!("x{{{}}} 1", labels.join(","));
        let s = sample(&line);
        assert_eq!(s.label_count(), MAX_LABELS);
        for (i, (name, value)) in s.labels().enumerate() {
            assert_eq!((name, value), (&*format!("l{i:02}"), &*format!("v{i}")));
        }
        assert_eq!(s.canonical_key(), line.strip_suffix(" 1"));

        // Unsorted: a repeat is found wherever it is.
        let mut unsorted = labels.clone();
        unsorted.swap(0, 20);
        let line = format!("x{{{}}} 1", unsorted.join(","));
        assert_eq!(sample(&line).canonical_key(), None);
        assert_eq!(sample(&line).label(0), ("l20", "v20"));
        assert_eq!(sample(&line).label(20), ("l00", "v0"));
        for repeat in [3, 18] {
            let mut with_repeat = unsorted[..MAX_LABELS - 1].to_vec();
            with_repeat.push(format!("l{repeat:02}=\"again\""));
            let line = format!("x{{{}}} 1", with_repeat.join(","));
            assert_eq!(
                parse_line(line.as_bytes()).err(),
                Some(LineError::DuplicateLabel),
                "{repeat}"
            );
        }
    }
}

//! The case files under `tests/differential/cases/`: one file per topic,
//! many cases each. A case is a sequence of steps (requests and pauses);
//! after the last step both gateways are scraped and the pages compared.
//!
//! ```text
//! # a comment (body lines have their own prefixes)
//! == case_name
//! > PUT /metrics/job/j             a request built by the harness: Host,
//! + Content-Type: text/plain         Content-Length and Connection: close
//! | # TYPE foo gauge                 are added unless given with `+`
//! | foo 1                          `|` a body line (a newline is added)
//! b no newline\x00\r\n             `b` bytes with \n \r \t \\ \xHH, no newline added
//! hex 0a 0b                        `hex` raw bytes
//! pb {name:"foo" type:GAUGE metric{gauge{value:1}}}
//!                                  `pb` one length-delimited MetricFamily
//!                                  (adds the protobuf Content-Type unless
//!                                  one is given); `pbx` the same message
//!                                  without its length prefix
//! raw>                             raw bytes on one connection, exactly as
//! b PUT /metrics/job/j HTTP/1.1\r\n  written by the `b`/`hex`/`|` lines
//! sleep 1200                       wait that many milliseconds
//! flags --cache-bytes 2KiB         extra push-gateway flags for this case
//! ```
//!
//! A request line may end in `HTTP/1.0`, and in `@tcp` to send it to
//! push-gateway's TCP port instead of its socket (the Pushgateway has only
//! TCP). The protobuf notation is in [`encode_message`].

use std::fmt::Write as _;

/// The delimited protobuf Content-Type the Go client sends.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

#[derive(Debug, Clone)]
pub struct Case {
    /// `topic/name`: the file's stem, then the name after `==`.
    pub name: String,
    pub steps: Vec<Step>,
    /// Extra push-gateway flags (`flags --cache-bytes 2KiB`).
    pub flags: Vec<String>,
    /// Where the case starts, for messages.
    pub origin: String,
}

#[derive(Debug, Clone)]
pub enum Step {
    /// Bytes written on one fresh connection, whose responses are read
    /// until the server closes it.
    Send {
        bytes: Vec<u8>,
        /// To push-gateway's TCP port instead of its socket.
        tcp: bool,
        /// For messages: the request line, or `raw`.
        label: String,
    },
    Sleep(u64),
}

/// One request being assembled from its lines.
struct Built {
    method: String,
    target: String,
    version: String,
    tcp: bool,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    protobuf: bool,
    raw: bool,
    label: String,
}

impl Built {
    fn finish(self) -> Step {
        if self.raw {
            return Step::Send {
                bytes: self.body,
                tcp: self.tcp,
                label: self.label,
            };
        }
        let mut head = format!("{} {} {}\r\n", self.method, self.target, self.version);
        let has = |name: &str| {
            self.headers
                .iter()
                .any(|(n, _)| n.eq_ignore_ascii_case(name))
        };
        if !has("host") {
            head.push_str("Host: localhost\r\n");
        }
        let needs_length =
            !self.body.is_empty() || matches!(self.method.as_str(), "PUT" | "POST" | "PATCH");
        if needs_length && !has("content-length") && !has("transfer-encoding") {
            let _ = write!(head, "Content-Length: {}\r\n", self.body.len());
        }
        if self.protobuf && !has("content-type") {
            let _ = write!(head, "Content-Type: {PROTOBUF_CONTENT_TYPE}\r\n");
        }
        if !has("connection") {
            head.push_str("Connection: close\r\n");
        }
        for (n, v) in &self.headers {
            let _ = write!(head, "{n}: {v}\r\n");
        }
        head.push_str("\r\n");
        let mut bytes = head.into_bytes();
        bytes.extend_from_slice(&self.body);
        Step::Send {
            bytes,
            tcp: self.tcp,
            label: self.label,
        }
    }
}

/// Parses one case file; `topic` prefixes every case name.
pub fn parse_file(topic: &str, file: &str, text: &str) -> Result<Vec<Case>, String> {
    let mut cases: Vec<Case> = Vec::new();
    let mut current: Option<Built> = None;
    for (i, line) in text.lines().enumerate() {
        let at = format!("{file}:{}", i + 1);
        let err = |m: String| format!("{at}: {m}");
        if let Some(name) = line.strip_prefix("== ") {
            if let (Some(b), Some(c)) = (current.take(), cases.last_mut()) {
                c.steps.push(b.finish());
            }
            let name = format!("{topic}/{}", name.trim());
            if cases.iter().any(|c| c.name == name) {
                return Err(err(format!("case {name} defined twice")));
            }
            cases.push(Case {
                name,
                steps: Vec::new(),
                flags: Vec::new(),
                origin: at.clone(),
            });
            continue;
        }
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let Some(case) = cases.last_mut() else {
            return Err(err("a step before the first `== name`".into()));
        };
        if let Some(rest) = line.strip_prefix("> ") {
            if let Some(b) = current.take() {
                case.steps.push(b.finish());
            }
            let mut words: Vec<&str> = rest.split_whitespace().collect();
            let tcp = words.last() == Some(&"@tcp");
            if tcp {
                words.pop();
            }
            let (method, target, version) = match words.as_slice() {
                [m, t] => (*m, *t, "HTTP/1.1"),
                [m, t, v] => (*m, *t, *v),
                _ => return Err(err(format!("expected `> METHOD TARGET [VERSION]`: {line}"))),
            };
            current = Some(Built {
                method: method.into(),
                target: target.into(),
                version: version.into(),
                tcp,
                headers: Vec::new(),
                body: Vec::new(),
                protobuf: false,
                raw: false,
                label: rest.trim().into(),
            });
            continue;
        }
        if line == "raw>" || line == "raw> @tcp" {
            if let Some(b) = current.take() {
                case.steps.push(b.finish());
            }
            current = Some(Built {
                method: String::new(),
                target: String::new(),
                version: String::new(),
                tcp: line.ends_with("@tcp"),
                headers: Vec::new(),
                body: Vec::new(),
                protobuf: false,
                raw: true,
                label: "raw".into(),
            });
            continue;
        }
        if let Some(f) = line.strip_prefix("flags ") {
            case.flags.extend(f.split_whitespace().map(String::from));
            continue;
        }
        if let Some(ms) = line.strip_prefix("sleep ") {
            if let Some(b) = current.take() {
                case.steps.push(b.finish());
            }
            let ms = ms
                .trim()
                .parse()
                .map_err(|_| err(format!("bad sleep: {line}")))?;
            case.steps.push(Step::Sleep(ms));
            continue;
        }
        let Some(b) = current.as_mut() else {
            return Err(err(format!("a request part outside a request: {line}")));
        };
        if let Some(h) = line.strip_prefix("+ ") {
            let Some((n, v)) = h.split_once(':') else {
                return Err(err(format!("expected `+ Name: value`: {line}")));
            };
            if b.raw {
                return Err(err("headers in a raw request go in `b` lines".into()));
            }
            b.headers.push((n.trim().into(), v.trim().into()));
        } else if line == "|" {
            b.body.push(b'\n');
        } else if let Some(t) = line.strip_prefix("| ") {
            b.body.extend_from_slice(t.as_bytes());
            b.body.push(b'\n');
        } else if line == "b" {
        } else if let Some(t) = line.strip_prefix("b ") {
            b.body.extend_from_slice(&unescape(t).map_err(&err)?);
        } else if let Some(t) = line.strip_prefix("hex ") {
            b.body.extend_from_slice(&parse_hex(t).map_err(&err)?);
        } else if let Some(t) = line.strip_prefix("pb ") {
            let msg = encode_message(t).map_err(&err)?;
            varint(&mut b.body, msg.len() as u64);
            b.body.extend_from_slice(&msg);
            b.protobuf = true;
        } else if let Some(t) = line.strip_prefix("pbx ") {
            b.body.extend_from_slice(&encode_message(t).map_err(&err)?);
            b.protobuf = true;
        } else {
            return Err(err(format!("unknown line: {line}")));
        }
    }
    if let (Some(b), Some(c)) = (current.take(), cases.last_mut()) {
        c.steps.push(b.finish());
    }
    Ok(cases)
}

/// `\n`, `\r`, `\t`, `\\`, `\xHH`; everything else is literal.
pub fn unescape(s: &str) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
            continue;
        }
        match b.get(i + 1) {
            Some(b'n') => out.push(b'\n'),
            Some(b'r') => out.push(b'\r'),
            Some(b't') => out.push(b'\t'),
            Some(b'\\') => out.push(b'\\'),
            Some(b'x') => {
                let hex = s.get(i + 2..i + 4).ok_or("truncated \\x escape")?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| format!("bad \\x{hex}"))?);
                i += 2;
            }
            _ => return Err(format!("unknown escape in {s:?}")),
        }
        i += 2;
    }
    Ok(out)
}

fn parse_hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits: {s}"));
    }
    (0..digits.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&digits[i..i + 2], 16).map_err(|_| format!("bad hex: {s}")))
        .collect()
}

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// How a named field of the prometheus `metrics.proto` is encoded.
#[derive(Clone, Copy)]
enum Kind {
    Str,
    Varint,
    Sint,
    Double,
    Msg(Schema),
}

/// The messages of `io.prometheus.client`.
#[derive(Clone, Copy, PartialEq)]
enum Schema {
    Family,
    Metric,
    Label,
    Value,
    Counter,
    Summary,
    Quantile,
    Histogram,
    Bucket,
    Span,
    Timestamp,
    Unknown,
}

fn field(schema: Schema, name: &str) -> Option<(u64, Kind)> {
    use Kind::*;
    Some(match (schema, name) {
        (Schema::Family, "name") => (1, Str),
        (Schema::Family, "help") => (2, Str),
        (Schema::Family, "type") => (3, Varint),
        (Schema::Family, "metric") => (4, Msg(Schema::Metric)),
        (Schema::Family, "unit") => (5, Str),
        (Schema::Metric, "label") => (1, Msg(Schema::Label)),
        (Schema::Metric, "gauge") => (2, Msg(Schema::Value)),
        (Schema::Metric, "counter") => (3, Msg(Schema::Counter)),
        (Schema::Metric, "summary") => (4, Msg(Schema::Summary)),
        (Schema::Metric, "untyped") => (5, Msg(Schema::Value)),
        (Schema::Metric, "timestamp_ms") => (6, Varint),
        (Schema::Metric, "histogram") => (7, Msg(Schema::Histogram)),
        (Schema::Label, "name") => (1, Str),
        (Schema::Label, "value") => (2, Str),
        (Schema::Value, "value") => (1, Double),
        (Schema::Counter, "value") => (1, Double),
        (Schema::Counter, "created_timestamp") => (3, Msg(Schema::Timestamp)),
        (Schema::Summary, "sample_count") => (1, Varint),
        (Schema::Summary, "sample_sum") => (2, Double),
        (Schema::Summary, "quantile") => (3, Msg(Schema::Quantile)),
        (Schema::Summary, "created_timestamp") => (4, Msg(Schema::Timestamp)),
        (Schema::Quantile, "quantile") => (1, Double),
        (Schema::Quantile, "value") => (2, Double),
        (Schema::Histogram, "sample_count") => (1, Varint),
        (Schema::Histogram, "sample_sum") => (2, Double),
        (Schema::Histogram, "bucket") => (3, Msg(Schema::Bucket)),
        (Schema::Histogram, "sample_count_float") => (4, Double),
        (Schema::Histogram, "schema") => (5, Sint),
        (Schema::Histogram, "zero_threshold") => (6, Double),
        (Schema::Histogram, "zero_count") => (7, Varint),
        (Schema::Histogram, "positive_span") => (12, Msg(Schema::Span)),
        (Schema::Histogram, "positive_delta") => (13, Sint),
        (Schema::Histogram, "created_timestamp") => (15, Msg(Schema::Timestamp)),
        (Schema::Bucket, "cumulative_count") => (1, Varint),
        (Schema::Bucket, "upper_bound") => (2, Double),
        (Schema::Bucket, "cumulative_count_float") => (4, Double),
        (Schema::Span, "offset") => (1, Sint),
        (Schema::Span, "length") => (2, Varint),
        (Schema::Timestamp, "seconds") => (1, Varint),
        (Schema::Timestamp, "nanos") => (2, Varint),
        _ => return None,
    })
}

/// Encodes one message written as `{field:value field{...} ...}`.
///
/// Fields are named as in `metrics.proto` (`name`, `help`, `type`,
/// `metric`, `label`, `gauge`, `counter`, `summary`, `untyped`,
/// `histogram`, `bucket`, `quantile`, `value`, `sample_count`, ...).
/// Values: `"strings"` (with the `b` escapes), integers, floats
/// (`NaN`, `+Inf`, `-Inf`, `1e-05`), type names (`COUNTER`, `GAUGE`,
/// `SUMMARY`, `UNTYPED`, `HISTOGRAM`, `GAUGE_HISTOGRAM`). Any field by
/// number and wire type, to write wrong or unknown fields: `#N:vINT`
/// (varint), `#N:dFLOAT` (fixed64 double), `#N:fFLOAT` (fixed32),
/// `#N:"bytes"` (length-delimited), `#N{...}` (a nested message of
/// unknown schema).
pub fn encode_message(text: &str) -> Result<Vec<u8>, String> {
    let mut p = Parser {
        s: text.trim().as_bytes(),
        i: 0,
    };
    let out = p.message(Schema::Family)?;
    p.ws();
    if p.i != p.s.len() {
        return Err(format!("trailing text in protobuf: {text}"));
    }
    Ok(out)
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && self.s[self.i].is_ascii_whitespace() {
            self.i += 1;
        }
    }
    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }
    fn word(&mut self) -> String {
        self.ws();
        let start = self.i;
        while self.i < self.s.len()
            && (self.s[self.i].is_ascii_alphanumeric() || b"_+-.".contains(&self.s[self.i]))
        {
            self.i += 1;
        }
        String::from_utf8_lossy(&self.s[start..self.i]).into_owned()
    }
    fn string(&mut self) -> Result<Vec<u8>, String> {
        if !self.eat(b'"') {
            return Err("expected a quoted string".into());
        }
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != b'"' {
            if self.s[self.i] == b'\\' {
                self.i += 1;
            }
            self.i += 1;
        }
        let raw = String::from_utf8_lossy(&self.s[start..self.i.min(self.s.len())]).into_owned();
        self.i += 1;
        unescape(&raw.replace("\\\"", "\\x22"))
    }
    fn message(&mut self, schema: Schema) -> Result<Vec<u8>, String> {
        if !self.eat(b'{') {
            return Err("expected `{`".into());
        }
        let mut out = Vec::new();
        loop {
            if self.eat(b'}') {
                return Ok(out);
            }
            if self.i >= self.s.len() {
                return Err("unterminated `{`".into());
            }
            if self.eat(b'#') {
                let n: u64 = self.word().parse().map_err(|_| "expected a field number")?;
                if self.eat(b':') {
                    self.ws();
                    match self.s.get(self.i) {
                        Some(b'"') => {
                            let b = self.string()?;
                            bytes_field(&mut out, n, &b);
                        }
                        Some(b'v') => {
                            self.i += 1;
                            varint(&mut out, n << 3);
                            varint(&mut out, int(&self.word())?);
                        }
                        Some(b'd') => {
                            self.i += 1;
                            varint(&mut out, n << 3 | 1);
                            out.extend_from_slice(&float(&self.word())?.to_le_bytes());
                        }
                        Some(b'f') => {
                            self.i += 1;
                            varint(&mut out, n << 3 | 5);
                            out.extend_from_slice(&(float(&self.word())? as f32).to_le_bytes());
                        }
                        _ => return Err(format!("bad raw field #{n}")),
                    }
                } else {
                    self.ws();
                    let b = self.message(Schema::Unknown)?;
                    bytes_field(&mut out, n, &b);
                }
                continue;
            }
            let name = self.word();
            let Some((n, kind)) = field(schema, &name) else {
                return Err(format!("unknown field `{name}` here"));
            };
            if let Kind::Msg(inner) = kind {
                self.eat(b':');
                let b = self.message(inner)?;
                bytes_field(&mut out, n, &b);
                continue;
            }
            if !self.eat(b':') {
                return Err(format!("expected `:` after {name}"));
            }
            match kind {
                Kind::Str => {
                    let b = self.string()?;
                    bytes_field(&mut out, n, &b);
                }
                Kind::Varint => {
                    varint(&mut out, n << 3);
                    varint(&mut out, int(&self.word())?);
                }
                Kind::Sint => {
                    let v = int(&self.word())? as i64;
                    varint(&mut out, n << 3);
                    varint(&mut out, ((v << 1) ^ (v >> 63)) as u64);
                }
                Kind::Double => {
                    varint(&mut out, n << 3 | 1);
                    out.extend_from_slice(&float(&self.word())?.to_le_bytes());
                }
                Kind::Msg(_) => unreachable!(),
            }
        }
    }
}

fn bytes_field(out: &mut Vec<u8>, n: u64, b: &[u8]) {
    varint(out, n << 3 | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

fn int(w: &str) -> Result<u64, String> {
    Ok(match w {
        "COUNTER" => 0,
        "GAUGE" => 1,
        "SUMMARY" => 2,
        "UNTYPED" => 3,
        "HISTOGRAM" => 4,
        "GAUGE_HISTOGRAM" => 5,
        _ if w.starts_with('-') => w.parse::<i64>().map_err(|_| format!("bad integer {w}"))? as u64,
        _ => w.parse().map_err(|_| format!("bad integer {w}"))?,
    })
}

fn float(w: &str) -> Result<f64, String> {
    match w {
        "NaN" => Ok(f64::NAN),
        "+Inf" | "Inf" => Ok(f64::INFINITY),
        "-Inf" => Ok(f64::NEG_INFINITY),
        _ => w.parse().map_err(|_| format!("bad float {w}")),
    }
}

//! A decoder for the one protobuf message pushes use: the Prometheus client
//! model's `io.prometheus.client.MetricFamily`, length-delimited
//! (`application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily;
//! encoding=delimited`), as the Go client library sends by default.
//!
//! Decoded families are written out as text exposition lines, so the text
//! path does all validation and caching: one set of rules for both
//! formats. Counters, gauges, untyped, summaries and (classic) histograms
//! are supported; native histogram fields and exemplars are skipped. A
//! timestamp is carried over so the text rules reject it as for text.
//!
//! Memory: an index of the body's family names (a pointer pair and a
//! number per family, freed after the body); the output buffer is the
//! caller's, and its growth is bounded by `limit`.

use std::collections::HashMap;
use std::fmt;

use crate::limits::MAX_LABELS;
use crate::render::write_value;
use crate::value::write_go_float;

/// Whether a `Content-Type` names the delimited `MetricFamily` format:
/// `application/vnd.google.protobuf` with `proto=io.prometheus.client.MetricFamily`
/// and `encoding=delimited`. Anything else is read as text, as the
/// Pushgateway reads it (another `proto=` is no `MetricFamily` stream).
pub fn is_protobuf(content_type: &str) -> bool {
    let mut parts = content_type.split(';');
    let media = parts.next().unwrap_or("").trim();
    if !media.eq_ignore_ascii_case("application/vnd.google.protobuf") {
        return false;
    }
    let (mut proto, mut delimited) = (false, false);
    for param in parts {
        let Some((name, value)) = param.split_once('=') else {
            continue;
        };
        let value = value.trim();
        // A quoted value means the same (RFC 2045); names are case-blind.
        let value = value
            .strip_prefix('"')
            .and_then(|v| v.strip_suffix('"'))
            .unwrap_or(value);
        match name.trim().to_ascii_lowercase().as_str() {
            "proto" => proto = value == "io.prometheus.client.MetricFamily",
            "encoding" => delimited = value == "delimited",
            _ => {}
        }
    }
    proto && delimited
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProtoError {
    Truncated,
    Varint,
    WireType,
    Utf8,
    TooManyLabels,
    TooLarge,
    /// A metric name the text format cannot carry.
    Name,
    /// A label name the text format cannot carry.
    LabelName,
    /// Field number 0, which no message has.
    FieldZero,
    /// A metric without the value of its family's type (a counter family's
    /// metric with no `counter` field): the Pushgateway refuses it.
    MissingValue,
}

impl fmt::Display for ProtoError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ProtoError::Truncated => {
                "truncated protobuf body: send complete length-delimited MetricFamily messages"
            }
            ProtoError::Varint => "invalid varint in protobuf body",
            ProtoError::WireType => {
                "unsupported protobuf wire type: send io.prometheus.client.MetricFamily messages"
            }
            ProtoError::Utf8 => {
                "invalid UTF-8 in a protobuf string: send names, labels and help as UTF-8"
            }
            ProtoError::TooManyLabels => "too many labels: the limit is 32 per sample",
            ProtoError::Name => {
                "invalid metric name in the protobuf body: use [a-zA-Z_:][a-zA-Z0-9_:]*"
            }
            ProtoError::LabelName => {
                "invalid label name in the protobuf body: use [a-zA-Z_][a-zA-Z0-9_]*"
            }
            ProtoError::FieldZero => {
                "invalid protobuf body: field number 0: send io.prometheus.client.MetricFamily messages"
            }
            ProtoError::MissingValue => {
                "a metric lacks the value field of its family's type (e.g. a gauge value in a COUNTER family; an absent type means COUNTER): set the family's type or the metric's value"
            }
            ProtoError::TooLarge => {
                "protobuf body too large once decoded: push fewer series per request"
            }
        })
    }
}

impl std::error::Error for ProtoError {}

/// One field of a message.
#[derive(Debug, Clone, Copy)]
enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Bytes(&'a [u8]),
    Fixed32,
}

impl Value<'_> {
    fn f64(self) -> f64 {
        match self {
            Value::Fixed64(bits) => f64::from_bits(bits),
            _ => 0.0,
        }
    }
    fn u64(self) -> u64 {
        match self {
            Value::Varint(v) => v,
            _ => 0,
        }
    }
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn new(buf: &'a [u8]) -> Reader<'a> {
        Reader { buf, pos: 0 }
    }

    fn varint(&mut self) -> Result<u64, ProtoError> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = *self.buf.get(self.pos).ok_or(ProtoError::Truncated)?;
            self.pos += 1;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err(ProtoError::Varint)
    }

    fn take(&mut self, n: usize) -> Result<&'a [u8], ProtoError> {
        let end = self.pos.checked_add(n).ok_or(ProtoError::Truncated)?;
        let bytes = self.buf.get(self.pos..end).ok_or(ProtoError::Truncated)?;
        self.pos = end;
        Ok(bytes)
    }

    /// The next field of the message, or `None` at its end.
    fn field(&mut self) -> Result<Option<(u64, Value<'a>)>, ProtoError> {
        if self.pos == self.buf.len() {
            return Ok(None);
        }
        let tag = self.varint()?;
        if tag >> 3 == 0 {
            return Err(ProtoError::FieldZero);
        }
        let value = match tag & 7 {
            0 => Value::Varint(self.varint()?),
            1 => {
                let b = self.take(8)?;
                Value::Fixed64(u64::from_le_bytes([
                    b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7],
                ]))
            }
            2 => {
                let len = usize::try_from(self.varint()?).map_err(|_| ProtoError::Truncated)?;
                Value::Bytes(self.take(len)?)
            }
            5 => {
                self.take(4)?;
                Value::Fixed32
            }
            _ => return Err(ProtoError::WireType),
        };
        Ok(Some((tag >> 3, value)))
    }
}

fn bytes_of(v: Value<'_>) -> &[u8] {
    match v {
        Value::Bytes(b) => b,
        _ => &[],
    }
}

fn utf8(b: &[u8]) -> Result<&str, ProtoError> {
    std::str::from_utf8(b).map_err(|_| ProtoError::Utf8)
}

/// Metric types of the client model's `MetricType` enum.
const COUNTER: u64 = 0;
const GAUGE: u64 = 1;
const SUMMARY: u64 = 2;
const UNTYPED: u64 = 3;
const HISTOGRAM: u64 = 4;
const GAUGE_HISTOGRAM: u64 = 5;

/// Decodes a delimited stream of `MetricFamily` messages into exposition
/// text appended to `out`, which may not grow past `limit` bytes.
///
/// # Errors
/// [`ProtoError`] for a malformed body or output over `limit`.
pub fn to_text(body: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), ProtoError> {
    // A family named again replaces the one before, as in the Pushgateway
    // (which keeps the families of a push by name): only the last of each
    // name is written. The names are read first, in a pass that copies
    // nothing.
    let mut last_of: HashMap<&[u8], usize> = HashMap::new();
    let mut stream = Reader::new(body);
    let mut index = 0;
    while let Some(len) = length_prefix(&mut stream)? {
        last_of.insert(family_name(stream.take(len)?)?, index);
        index += 1;
    }
    let mut stream = Reader::new(body);
    let mut index = 0;
    while let Some(len) = length_prefix(&mut stream)? {
        let family = stream.take(len)?;
        if last_of.get(family_name(family)?) == Some(&index) {
            write_family(family, out, limit)?;
        }
        index += 1;
        if out.len() > limit {
            return Err(ProtoError::TooLarge);
        }
    }
    Ok(())
}

/// The length of the next message; `None` at the end of the body, or when
/// the body ends inside the length itself, which the Pushgateway takes for
/// the end too (a message cut short is an error).
fn length_prefix(stream: &mut Reader) -> Result<Option<usize>, ProtoError> {
    if stream.pos == stream.buf.len() {
        return Ok(None);
    }
    match stream.varint() {
        Ok(len) => usize::try_from(len)
            .map(Some)
            .map_err(|_| ProtoError::Truncated),
        Err(ProtoError::Truncated) => Ok(None),
        Err(e) => Err(e),
    }
}

/// The `name` field of a `MetricFamily` message (empty if absent).
fn family_name(msg: &[u8]) -> Result<&[u8], ProtoError> {
    let mut name: &[u8] = &[];
    let mut r = Reader::new(msg);
    while let Some((field, v)) = r.field()? {
        if let (1, Value::Bytes(b)) = (field, v) {
            name = b;
        }
    }
    Ok(name)
}

fn write_family(msg: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<(), ProtoError> {
    // An absent type field is the enum's default, COUNTER (proto2 and
    // proto3 alike): the Go client omits it for counters.
    let (mut name, mut help, mut kind) = ("", "", COUNTER);
    let mut r = Reader::new(msg);
    // A field of another wire type than its own is skipped, as the
    // Pushgateway's decoder skips it.
    while let Some((field, v)) = r.field()? {
        match (field, v) {
            (1, Value::Bytes(b)) => name = utf8(b)?,
            (2, Value::Bytes(b)) => help = utf8(b)?,
            (3, Value::Varint(k)) => kind = k,
            _ => {}
        }
    }
    // A family without a name has no place on the page: the Pushgateway
    // drops it (an empty message is one).
    if name.is_empty() {
        return Ok(());
    }
    if !crate::exposition::is_metric_name(name) {
        return Err(ProtoError::Name);
    }
    if !help.is_empty() {
        out.extend_from_slice(b"# HELP ");
        out.extend_from_slice(name.as_bytes());
        out.push(b' ');
        for c in help.bytes() {
            match c {
                b'\\' => out.extend_from_slice(b"\\\\"),
                b'\n' => out.extend_from_slice(b"\\n"),
                c => out.push(c),
            }
        }
        out.push(b'\n');
    }
    let type_name = match kind {
        COUNTER => "counter",
        GAUGE => "gauge",
        SUMMARY => "summary",
        HISTOGRAM | GAUGE_HISTOGRAM => "histogram",
        UNTYPED => "untyped",
        // Values a newer client model may add.
        _ => "untyped",
    };
    out.extend_from_slice(b"# TYPE ");
    out.extend_from_slice(name.as_bytes());
    out.push(b' ');
    out.extend_from_slice(type_name.as_bytes());
    out.push(b'\n');
    let mut r = Reader::new(msg);
    while let Some((field, v)) = r.field()? {
        if let (4, Value::Bytes(metric)) = (field, v) {
            write_metric(name, kind, metric, out, limit)?;
        }
    }
    Ok(())
}

/// One `Metric` message: its labels, its value message and a timestamp.
struct Metric<'a> {
    labels: [(&'a str, &'a str); MAX_LABELS],
    label_count: usize,
    /// The value message of the family's type; `None` if absent.
    value: Option<&'a [u8]>,
    timestamp_ms: Option<i64>,
}

fn write_metric(
    name: &str,
    kind: u64,
    msg: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ProtoError> {
    let mut m = Metric {
        labels: [("", ""); MAX_LABELS],
        label_count: 0,
        value: None,
        timestamp_ms: None,
    };
    let value_field = match kind {
        COUNTER => 3,
        GAUGE => 2,
        SUMMARY => 4,
        HISTOGRAM | GAUGE_HISTOGRAM => 7,
        _ => 5,
    };
    let mut r = Reader::new(msg);
    // Fields of another wire type than their own are skipped, as above.
    while let Some((field, v)) = r.field()? {
        match (field, v) {
            (1, Value::Bytes(pair)) => {
                let (mut ln, mut lv) = ("", "");
                let mut pair = Reader::new(pair);
                while let Some((f, v)) = pair.field()? {
                    match (f, v) {
                        (1, Value::Bytes(b)) => ln = utf8(b)?,
                        (2, Value::Bytes(b)) => lv = utf8(b)?,
                        _ => {}
                    }
                }
                if !crate::exposition::is_label_name(ln) {
                    return Err(ProtoError::LabelName);
                }
                if m.label_count == MAX_LABELS {
                    return Err(ProtoError::TooManyLabels);
                }
                m.labels[m.label_count] = (ln, lv);
                m.label_count += 1;
            }
            (6, Value::Varint(ts)) => m.timestamp_ms = Some(ts as i64),
            (f, Value::Bytes(b)) if f == value_field => m.value = Some(b),
            _ => {}
        }
    }
    let Some(value) = m.value else {
        return Err(ProtoError::MissingValue);
    };
    match kind {
        SUMMARY => write_summary(name, &m, value, out, limit),
        HISTOGRAM | GAUGE_HISTOGRAM => write_histogram(name, &m, value, out, limit),
        _ => {
            // Counter, Gauge and Untyped all keep their value in field 1.
            let mut number = 0.0;
            let mut r = Reader::new(value);
            while let Some((f, v)) = r.field()? {
                if f == 1 {
                    number = v.f64();
                }
            }
            write_sample(out, name, "", &m, None, number, limit)?;
            Ok(())
        }
    }
}

fn write_summary(
    name: &str,
    m: &Metric,
    value: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ProtoError> {
    let (mut count, mut sum) = (0.0, 0.0);
    let mut r = Reader::new(value);
    while let Some((f, v)) = r.field()? {
        match f {
            1 => count = v.u64() as f64,
            2 => sum = v.f64(),
            3 => {
                let (mut q, mut value) = (0.0, 0.0);
                let mut qr = Reader::new(bytes_of(v));
                while let Some((f, v)) = qr.field()? {
                    match f {
                        1 => q = v.f64(),
                        2 => value = v.f64(),
                        _ => {}
                    }
                }
                write_sample(out, name, "", m, Some(("quantile", q)), value, limit)?;
            }
            _ => {}
        }
    }
    write_sample(out, name, "_sum", m, None, sum, limit)?;
    write_sample(out, name, "_count", m, None, count, limit)?;
    Ok(())
}

fn write_histogram(
    name: &str,
    m: &Metric,
    value: &[u8],
    out: &mut Vec<u8>,
    limit: usize,
) -> Result<(), ProtoError> {
    let (mut count, mut sum, mut has_inf) = (0.0, 0.0, false);
    let mut r = Reader::new(value);
    while let Some((f, v)) = r.field()? {
        match f {
            1 => count = v.u64() as f64,
            4 => count = v.f64(),
            2 => sum = v.f64(),
            3 => {
                let (mut cumulative, mut bound) = (0.0, 0.0);
                let mut br = Reader::new(bytes_of(v));
                while let Some((f, v)) = br.field()? {
                    match f {
                        1 => cumulative = v.u64() as f64,
                        4 => cumulative = v.f64(),
                        2 => bound = v.f64(),
                        _ => {}
                    }
                }
                has_inf |= bound == f64::INFINITY;
                write_sample(
                    out,
                    name,
                    "_bucket",
                    m,
                    Some(("le", bound)),
                    cumulative,
                    limit,
                )?;
            }
            _ => {}
        }
    }
    if !has_inf {
        write_sample(
            out,
            name,
            "_bucket",
            m,
            Some(("le", f64::INFINITY)),
            count,
            limit,
        )?;
    }
    write_sample(out, name, "_sum", m, None, sum, limit)?;
    write_sample(out, name, "_count", m, None, count, limit)?;
    Ok(())
}

/// Writes `name+suffix{labels[,extra]} value[ timestamp]\n`.
/// Stops as soon as the text passes `limit`: one family can repeat long
/// labels on many lines.
fn write_sample(
    out: &mut Vec<u8>,
    name: &str,
    suffix: &str,
    m: &Metric,
    extra: Option<(&str, f64)>,
    value: f64,
    limit: usize,
) -> Result<(), ProtoError> {
    if out.len() > limit {
        return Err(ProtoError::TooLarge);
    }
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(suffix.as_bytes());
    let labels = &m.labels[..m.label_count];
    if !labels.is_empty() || extra.is_some() {
        out.push(b'{');
        for (i, (ln, lv)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(b',');
            }
            out.extend_from_slice(ln.as_bytes());
            out.extend_from_slice(b"=\"");
            escape_label_value(out, lv);
            out.push(b'"');
        }
        if let Some((ln, bound)) = extra {
            if !labels.is_empty() {
                out.push(b',');
            }
            out.extend_from_slice(ln.as_bytes());
            out.extend_from_slice(b"=\"");
            // In the Pushgateway's form, the one text pushes are stored in.
            write_go_float(out, bound);
            out.push(b'"');
        }
        out.push(b'}');
    }
    out.push(b' ');
    write_value(out, value);
    if let Some(ts) = m.timestamp_ms {
        out.push(b' ');
        out.extend_from_slice(ts.to_string().as_bytes());
    }
    out.push(b'\n');
    Ok(())
}

/// Escapes a raw label value for the text format.
pub fn escape_label_value(out: &mut Vec<u8>, value: &str) {
    for c in value.bytes() {
        match c {
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'"' => out.extend_from_slice(b"\\\""),
            b'\n' => out.extend_from_slice(b"\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // A tiny encoder, only to build test messages.
    fn varint(out: &mut Vec<u8>, mut v: u64) {
        while v >= 0x80 {
            out.push((v as u8) | 0x80);
            v >>= 7;
        }
        out.push(v as u8);
    }
    fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
        varint(out, field << 3 | 2);
        varint(out, b.len() as u64);
        out.extend_from_slice(b);
    }
    fn double_field(out: &mut Vec<u8>, field: u64, v: f64) {
        varint(out, field << 3 | 1);
        out.extend_from_slice(&v.to_bits().to_le_bytes());
    }
    fn varint_field(out: &mut Vec<u8>, field: u64, v: u64) {
        varint(out, field << 3);
        varint(out, v);
    }
    fn label(name: &str, value: &str) -> Vec<u8> {
        let mut l = Vec::new();
        bytes_field(&mut l, 1, name.as_bytes());
        bytes_field(&mut l, 2, value.as_bytes());
        l
    }
    fn delimited(families: &[Vec<u8>]) -> Vec<u8> {
        let mut out = Vec::new();
        for f in families {
            varint(&mut out, f.len() as u64);
            out.extend_from_slice(f);
        }
        out
    }

    fn text(body: &[u8]) -> String {
        let mut out = Vec::new();
        to_text(body, &mut out, 1 << 20).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn counter_and_gauge() {
        let mut counter = Vec::new();
        bytes_field(&mut counter, 1, b"jobs_total");
        bytes_field(&mut counter, 2, b"Jobs\ndone \\ so far.");
        varint_field(&mut counter, 3, COUNTER);
        let mut metric = Vec::new();
        bytes_field(&mut metric, 1, &label("queue", "a\"b\\c\nd"));
        let mut value = Vec::new();
        double_field(&mut value, 1, 42.0);
        bytes_field(&mut metric, 3, &value);
        bytes_field(&mut counter, 4, &metric);

        let mut gauge = Vec::new();
        bytes_field(&mut gauge, 1, b"temp");
        varint_field(&mut gauge, 3, GAUGE);
        let mut metric = Vec::new();
        let mut value = Vec::new();
        double_field(&mut value, 1, -1.5);
        bytes_field(&mut metric, 2, &value);
        bytes_field(&mut gauge, 4, &metric);

        assert_eq!(
            text(&delimited(&[counter, gauge])),
            "# HELP jobs_total Jobs\\ndone \\\\ so far.\n\
             # TYPE jobs_total counter\n\
             jobs_total{queue=\"a\\\"b\\\\c\\nd\"} 42\n\
             # TYPE temp gauge\n\
             temp -1.5\n"
        );
    }

    #[test]
    fn histogram_and_summary() {
        let mut h = Vec::new();
        bytes_field(&mut h, 1, b"lat_seconds");
        varint_field(&mut h, 3, HISTOGRAM);
        let mut hist = Vec::new();
        varint_field(&mut hist, 1, 7);
        double_field(&mut hist, 2, 3.5);
        for (bound, count) in [(0.1, 2u64), (1.0, 5)] {
            let mut b = Vec::new();
            varint_field(&mut b, 1, count);
            double_field(&mut b, 2, bound);
            bytes_field(&mut hist, 3, &b);
        }
        let mut metric = Vec::new();
        bytes_field(&mut metric, 1, &label("path", "/"));
        bytes_field(&mut metric, 7, &hist);
        bytes_field(&mut h, 4, &metric);

        let mut s = Vec::new();
        bytes_field(&mut s, 1, b"rpc_seconds");
        varint_field(&mut s, 3, SUMMARY);
        let mut summary = Vec::new();
        varint_field(&mut summary, 1, 10);
        double_field(&mut summary, 2, 2.0);
        let mut q = Vec::new();
        double_field(&mut q, 1, 0.5);
        double_field(&mut q, 2, 0.25);
        bytes_field(&mut summary, 3, &q);
        let mut metric = Vec::new();
        bytes_field(&mut metric, 4, &summary);
        bytes_field(&mut s, 4, &metric);

        assert_eq!(
            text(&delimited(&[h, s])),
            "# TYPE lat_seconds histogram\n\
             lat_seconds_bucket{path=\"/\",le=\"0.1\"} 2\n\
             lat_seconds_bucket{path=\"/\",le=\"1\"} 5\n\
             lat_seconds_bucket{path=\"/\",le=\"+Inf\"} 7\n\
             lat_seconds_sum{path=\"/\"} 3.5\n\
             lat_seconds_count{path=\"/\"} 7\n\
             # TYPE rpc_seconds summary\n\
             rpc_seconds{quantile=\"0.5\"} 0.25\n\
             rpc_seconds_sum 2\n\
             rpc_seconds_count 10\n"
        );
    }

    #[test]
    fn timestamps_are_carried_for_the_text_rules_to_reject() {
        let mut f = Vec::new();
        bytes_field(&mut f, 1, b"x");
        varint_field(&mut f, 3, UNTYPED);
        let mut metric = Vec::new();
        let mut value = Vec::new();
        double_field(&mut value, 1, 1.0);
        bytes_field(&mut metric, 5, &value);
        varint_field(&mut metric, 6, 1234);
        bytes_field(&mut f, 4, &metric);
        assert_eq!(text(&delimited(&[f])), "# TYPE x untyped\nx 1 1234\n");
    }

    #[test]
    fn malformed_bodies_are_errors_never_panics() {
        let mut f = Vec::new();
        bytes_field(&mut f, 1, b"x");
        let good = delimited(&[f]);
        for end in 0..good.len() {
            let mut out = Vec::new();
            let _ = to_text(&good[..end], &mut out, 1 << 20);
        }
        let mut out = Vec::new();
        assert_eq!(
            to_text(&[0x05, 0x0f], &mut out, 100),
            Err(ProtoError::Truncated)
        );
        assert_eq!(to_text(&[0xff; 12], &mut out, 100), Err(ProtoError::Varint));
        assert_eq!(
            to_text(&[0x02, 0x0b, 0x00], &mut out, 100),
            Err(ProtoError::WireType)
        );
        assert!(is_protobuf(
            "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        ));
        assert!(!is_protobuf("text/plain; version=0.0.4"));
    }

    #[test]
    fn only_delimited_metric_families_are_protobuf() {
        for (ct, want) in [
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                true,
            ),
            (
                "Application/Vnd.Google.Protobuf;Encoding=delimited; PROTO=\"io.prometheus.client.MetricFamily\"",
                true,
            ),
            ("application/vnd.google.protobuf", false),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily",
                false,
            ),
            (
                "application/vnd.google.protobuf; proto=other.Message; encoding=delimited",
                false,
            ),
            (
                "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=text",
                false,
            ),
            (
                "application/vnd.google.protobuf2; proto=io.prometheus.client.MetricFamily; encoding=delimited",
                false,
            ),
        ] {
            assert_eq!(is_protobuf(ct), want, "{ct}");
        }
    }

    fn family(name: &str, kind: Option<u64>, metrics: &[Vec<u8>]) -> Vec<u8> {
        let mut f = Vec::new();
        bytes_field(&mut f, 1, name.as_bytes());
        if let Some(kind) = kind {
            varint_field(&mut f, 3, kind);
        }
        for m in metrics {
            bytes_field(&mut f, 4, m);
        }
        f
    }

    fn metric(field: u64, value: f64) -> Vec<u8> {
        let mut v = Vec::new();
        double_field(&mut v, 1, value);
        let mut m = Vec::new();
        bytes_field(&mut m, field, &v);
        m
    }

    /// As the Pushgateway decodes them: no type is COUNTER, and a metric
    /// without its type's value is refused, not stored as 0.
    #[test]
    fn absent_fields_mean_what_the_proto_says() {
        assert_eq!(
            text(&delimited(&[family("c", None, &[metric(3, 5.0)])])),
            "# TYPE c counter\nc 5\n"
        );
        for body in [
            family("c", None, &[metric(2, 5.0)]),
            family("g", Some(GAUGE), &[Vec::new()]),
            family("u", Some(UNTYPED), &[metric(2, 1.0)]),
            family("h", Some(HISTOGRAM), &[metric(2, 1.0)]),
            family("s", Some(SUMMARY), &[Vec::new()]),
        ] {
            let mut out = Vec::new();
            assert_eq!(
                to_text(&delimited(&[body]), &mut out, 1 << 20),
                Err(ProtoError::MissingValue)
            );
        }
    }

    /// As the Pushgateway decodes a body: a family named again replaces
    /// the one before; a family without a name is dropped; a field of the
    /// wrong wire type is skipped; field number 0 is an error.
    #[test]
    fn bodies_read_as_the_pushgateway_reads_them() {
        let body = delimited(&[
            family("g", Some(GAUGE), &[metric(2, 1.0)]),
            family("c", None, &[metric(3, 2.0)]),
            family("g", Some(COUNTER), &[metric(3, 3.0)]),
            Vec::new(),
            family("", Some(GAUGE), &[metric(2, 4.0)]),
        ]);
        assert_eq!(
            text(&body),
            "# TYPE c counter\nc 2\n# TYPE g counter\ng 3\n"
        );
        let mut f = family("w", Some(GAUGE), &[metric(2, 5.0)]);
        varint_field(&mut f, 1, 7); // a name as a varint
        varint_field(&mut f, 4, 7); // a metric as a varint
        bytes_field(&mut f, 3, b"x"); // a type as bytes
        assert_eq!(text(&delimited(&[f])), "# TYPE w gauge\nw 5\n");
        // A body that ends inside a length prefix ends there.
        let mut cut = delimited(&[family("w", Some(GAUGE), &[metric(2, 5.0)])]);
        cut.push(0x80);
        assert_eq!(text(&cut), "# TYPE w gauge\nw 5\n");
        let mut out = Vec::new();
        let mut zero = family("z", Some(GAUGE), &[metric(2, 1.0)]);
        varint_field(&mut zero, 0, 1);
        assert_eq!(
            to_text(&delimited(&[zero]), &mut out, 1 << 20),
            Err(ProtoError::FieldZero)
        );
    }

    #[test]
    fn bounds_are_written_as_the_pushgateway_writes_them() {
        let mut hist = Vec::new();
        for bound in [1e-5, 1.0, 1e6] {
            let mut b = Vec::new();
            double_field(&mut b, 2, bound);
            bytes_field(&mut hist, 3, &b);
        }
        let mut m = Vec::new();
        bytes_field(&mut m, 7, &hist);
        let t = text(&delimited(&[family("h", Some(HISTOGRAM), &[m])]));
        for le in ["le=\"1e-05\"", "le=\"1\"", "le=\"1e+06\"", "le=\"+Inf\""] {
            assert!(t.contains(le), "{t}");
        }
    }
}

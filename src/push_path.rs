//! Grouping keys and labels from request paths and queries: the
//! Pushgateway's `/metrics/job/<JOB>{/<LABEL>/<VALUE>}` (percent-encoding,
//! URL-safe base64 for a name suffixed `@base64`), metric names in paths
//! and `?label=value` queries. Names are checked, values are escaped for
//! the text format, so that they join series keys as they are.
//!
//! Memory: the caller's buffer, which holds the decoded path.

use crate::exposition::{self, Label};
use crate::protobuf;
use crate::push::{MAX_GROUP_LABELS, PushError};

/// Byte ranges of one grouping label in the path buffer.
#[derive(Clone, Copy, Default)]
pub(crate) struct Span {
    pub(crate) name: (usize, usize),
    pub(crate) value: (usize, usize),
}

/// A percent-decoded metric name from a path segment.
pub(crate) fn decode_name(segment: &str, buf: &mut Vec<u8>) -> Result<String, PushError> {
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
pub(crate) fn parse_query(
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

pub(crate) fn labels_of<'a>(buf: &'a [u8], spans: &[Span]) -> Vec<Label<'a>> {
    spans
        .iter()
        .map(|s| (span_str(buf, s.name), span_str(buf, s.value)))
        .collect()
}

pub(crate) fn span_str(buf: &[u8], (start, end): (usize, usize)) -> &str {
    std::str::from_utf8(&buf[start..end]).unwrap_or("")
}

/// Writes the canonical grouping key: labels sorted, `instance=""` added
/// when the path has no instance.
pub(crate) fn write_group_key(labels: &[Label], out: &mut Vec<u8>) {
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
pub(crate) fn parse_path(
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
pub(crate) fn decode_value(
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
pub(crate) fn percent_decode(
    seg: &str,
    out: &mut Vec<u8>,
    plus_is_space: bool,
) -> Result<(), PushError> {
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
pub(crate) fn decode_base64(seg: &str, out: &mut Vec<u8>) -> Result<(), PushError> {
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

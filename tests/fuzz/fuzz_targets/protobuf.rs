//! `protobuf::to_text` on arbitrary bodies: never panics, never writes
//! past its limit by more than one family's output, and what it writes is
//! complete lines that parse or are rejected cleanly by `parse_line`.
//!
//! Input: two bytes of limit (little-endian, in units of 16 bytes), then
//! the body.
//!
//! Checks:
//! * `out.len() <= limit + ` the largest output of any one family of the
//!   body (each family converted on its own);
//! * `out.len() <= limit + 3 × body + 256`, i.e. past the limit by at most
//!   about one sample line, so that a small body cannot make the gateway
//!   hold much more than the limit;
//! * when `Ok`: `out.len() <= limit`, the output ends with a newline, and if
//!   every line parses (a push of it would be accepted) every sample
//!   follows the TYPE line of the family that owns it (no line injected by
//!   a name holding a newline); converting again gives the same text.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_gateway::exposition::{Line, MetricType, parse_line};
use push_gateway::protobuf::to_text;

/// The delimited frames of `body` (varint length + message), as far as
/// they are well framed; the same framing as `to_text`'s.
fn frames(body: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut pos = 0;
    while pos < body.len() {
        let start = pos;
        let mut len = 0u64;
        let mut done = false;
        for shift in (0..64).step_by(7) {
            let Some(&b) = body.get(pos) else {
                return out;
            };
            pos += 1;
            len |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                done = true;
                break;
            }
        }
        if !done {
            return out;
        }
        let Some(end) = usize::try_from(len).ok().and_then(|l| pos.checked_add(l)) else {
            return out;
        };
        if end > body.len() {
            return out;
        }
        out.push(&body[start..end]);
        pos = end;
    }
    out
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limit = usize::from(u16::from_le_bytes([data[0], data[1]])) * 16;
    let body = &data[2..];
    let mut out = Vec::new();
    let result = to_text(body, &mut out, limit);

    let largest_family = frames(body)
        .iter()
        .map(|f| {
            let mut one = Vec::new();
            let _ = to_text(f, &mut one, usize::MAX);
            one.len()
        })
        .max()
        .unwrap_or(0);
    assert!(
        out.len() <= limit + largest_family,
        "{} bytes written for a limit of {limit}; largest family {largest_family}",
        out.len()
    );
    assert!(
        out.len() <= limit + 3 * body.len() + 256,
        "a {}-byte body made {} bytes of text for a limit of {limit}",
        body.len(),
        out.len()
    );

    if result.is_err() {
        return;
    }
    assert!(
        out.len() <= limit,
        "Ok with {} bytes > limit {limit}",
        out.len()
    );
    let text = &out[..];
    if text.is_empty() {
        return;
    }
    assert_eq!(text.last(), Some(&b'\n'), "output ends mid-line");
    let mut all_parse = true;
    for line in text[..text.len() - 1].split(|&b| b == b'\n') {
        all_parse &= parse_line(line).is_ok();
    }
    if all_parse {
        let mut family: Option<(&str, MetricType)> = None;
        for line in text[..text.len() - 1].split(|&b| b == b'\n') {
            match parse_line(line) {
                Ok(Line::Type { name, kind }) => family = Some((name, kind)),
                Ok(Line::Sample(s)) => {
                    let owned = family.is_some_and(|(f, k)| k.owns(f, s.name));
                    assert!(
                        owned,
                        "sample {:?} does not belong to the family before it ({family:?})\n{}",
                        s.name,
                        String::from_utf8_lossy(text)
                    );
                }
                _ => {}
            }
        }
    }
    let mut again = Vec::new();
    assert!(to_text(body, &mut again, limit).is_ok());
    assert_eq!(again, out, "not deterministic");
});

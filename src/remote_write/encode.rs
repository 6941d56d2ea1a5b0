//! The remote write 1.0 `WriteRequest`, encoded by hand (as
//! [`crate::protobuf`] decodes pushes), from the text of a `/metrics` page.
//!
//! ```text
//! WriteRequest { repeated TimeSeries timeseries = 1; }
//! TimeSeries   { repeated Label labels = 1; repeated Sample samples = 2; }
//! Label        { string name = 1; string value = 2; }
//! Sample       { double value = 1; int64 timestamp = 2; }
//! ```
//!
//! Each sample line of the page becomes one `TimeSeries`: its labels with
//! `__name__`, the `--remote-write-label`s it does not carry itself, sorted
//! by name (empty values left out: to Prometheus they are no label), and one
//! sample at the send time. The label bytes of each series are remembered
//! (where they are in the body, and their hash), so that the next request
//! can tell which series left the cache and end them with a staleness
//! marker ([`STALE_NAN`]) built from the remembered bytes.
//!
//! # Memory
//! A [`Request`]: the body, at most the bound its caller passes (see
//! [`crate::limits::remote_write_body_max_bytes`]), and 12 bytes per
//! series. No allocation per series: a line's labels are found in place.

use std::cmp::Ordering;

use crate::cache::hash;
use crate::limits::MAX_LABELS;
use crate::value::parse_value;

/// The staleness marker of Prometheus: a NaN that no sample value has
/// (pushed NaNs are the ordinary `0x7ff8000000000001` or this crate's
/// canonical NaN), which ends a series at its timestamp.
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// One series of a request: its label bytes (the encoded `Label` fields of
/// its `TimeSeries`) are `body[start..start + len]`.
#[derive(Debug, Clone, Copy)]
pub struct Entry {
    hash: u32,
    start: u32,
    len: u32,
}

/// A `WriteRequest` being built or last delivered.
#[derive(Debug, Default)]
pub struct Request {
    pub body: Vec<u8>,
    /// Series with a value (not staleness markers), sorted by label bytes
    /// once [`Request::finish`] ran.
    series: Vec<Entry>,
    /// Staleness markers in the body.
    pub stale: u64,
    /// Sample lines left out: the body reached its bound, or the line did
    /// not read as a sample.
    pub skipped: u64,
}

/// A label of a series: bytes of the page line (escaped value) or of a
/// `--remote-write-label` (raw value).
#[derive(Clone, Copy)]
struct Pair<'a> {
    name: &'a [u8],
    value: &'a [u8],
    escaped: bool,
}

impl Request {
    pub fn clear(&mut self) {
        self.body.clear();
        self.series.clear();
        self.stale = 0;
        self.skipped = 0;
    }

    /// Samples in the body, staleness markers included.
    pub fn samples(&self) -> u64 {
        self.series.len() as u64 + self.stale
    }

    /// Appends a series for every sample line of `page` (exposition text
    /// as the gateway renders it: canonical keys, no timestamps), with
    /// `extra` labels (sorted by name) and timestamp `ts_ms`. A series that
    /// would take the body past `limit` bytes is left out and counted in
    /// [`Request::skipped`].
    pub fn add_page(&mut self, page: &[u8], extra: &[(String, String)], ts_ms: i64, limit: usize) {
        for line in page.split(|&b| b == b'\n') {
            if line.is_empty() || line[0] == b'#' {
                continue;
            }
            if !self.add_line(line, extra, ts_ms, limit) {
                self.skipped += 1;
            }
        }
    }

    fn add_line(
        &mut self,
        line: &[u8],
        extra: &[(String, String)],
        ts_ms: i64,
        limit: usize,
    ) -> bool {
        let Some(space) = line.iter().rposition(|&b| b == b' ') else {
            return false;
        };
        let Ok(value) = std::str::from_utf8(&line[space + 1..])
            .map_err(|_| ())
            .and_then(|v| parse_value(v).map_err(|_| ()))
        else {
            return false;
        };
        let key = &line[..space];
        let mut pairs = [Pair {
            name: b"",
            value: b"",
            escaped: false,
        }; MAX_LABELS + 1];
        let Some(n) = split_key(key, &mut pairs) else {
            return false;
        };
        // The series' own labels win over `--remote-write-label`s, as
        // Prometheus' external labels do.
        let mut labels = [pairs[0]; MAX_LABELS + 1 + MAX_EXTRA_LABELS];
        labels[..n].copy_from_slice(&pairs[..n]);
        let mut all = n;
        for (name, value) in extra.iter().take(MAX_EXTRA_LABELS) {
            if !pairs[..n].iter().any(|p| p.name == name.as_bytes()) {
                labels[all] = Pair {
                    name: name.as_bytes(),
                    value: value.as_bytes(),
                    escaped: false,
                };
                all += 1;
            }
        }
        let labels = &mut labels[..all];
        // A few labels: an insertion sort (a library sort would be
        // kilobytes of code for this one type).
        for i in 1..labels.len() {
            let mut j = i;
            while j > 0 && labels[j - 1].name > labels[j].name {
                labels.swap(j - 1, j);
                j -= 1;
            }
        }
        let before = self.body.len();
        let entry = self.write_series(labels, value.to_bits(), ts_ms);
        if self.body.len() > limit {
            self.body.truncate(before);
            return false;
        }
        self.series.push(entry);
        true
    }

    /// Writes one `TimeSeries` field; returns where its labels are.
    fn write_series(&mut self, labels: &[Pair<'_>], value_bits: u64, ts_ms: i64) -> Entry {
        let labels_len: usize = labels
            .iter()
            .filter(|p| !p.value.is_empty())
            .map(|p| field_len(label_len(p)))
            .sum();
        let sample = sample_len(ts_ms);
        let out = &mut self.body;
        out.push(0x0a);
        varint(out, (labels_len + field_len(sample)) as u64);
        let start = out.len();
        for p in labels.iter().filter(|p| !p.value.is_empty()) {
            out.push(0x0a);
            varint(out, label_len(p) as u64);
            out.push(0x0a);
            varint(out, p.name.len() as u64);
            out.extend_from_slice(p.name);
            out.push(0x12);
            if p.escaped {
                varint(out, unescaped_len(p.value) as u64);
                unescape(out, p.value);
            } else {
                varint(out, p.value.len() as u64);
                out.extend_from_slice(p.value);
            }
        }
        let entry = Entry {
            hash: hash(&out[start..]),
            start: start as u32,
            len: labels_len as u32,
        };
        write_sample(out, value_bits, ts_ms);
        entry
    }

    /// Sorts the series (by hash, then bytes) so that [`Request::holds`]
    /// can search them. Call once all series with a value are in.
    pub fn finish(&mut self) {
        heapsort(&mut self.series, &self.body);
    }

    /// Whether this (finished) request has a series with `entry`'s labels
    /// from `other`'s body.
    fn holds(&self, other: &Request, entry: &Entry) -> bool {
        self.series
            .binary_search_by(|e| compare(&self.body, e, &other.body, entry))
            .is_ok()
    }

    /// Appends a staleness marker at `ts_ms` for every series of `last`
    /// (the request last delivered) that this finished request does not
    /// hold: those left the cache since. Markers beyond `limit` are left
    /// out (the receiver then ends those series after its lookback).
    pub fn add_stale(&mut self, last: &Request, ts_ms: i64, limit: usize) {
        for entry in &last.series {
            if self.holds(last, entry) {
                continue;
            }
            let labels = labels_of(&last.body, entry);
            let len = labels.len() + field_len(sample_len(ts_ms));
            if self.body.len() + field_len(len) > limit {
                self.skipped += 1;
                continue;
            }
            self.body.push(0x0a);
            varint(&mut self.body, len as u64);
            self.body.extend_from_slice(labels);
            write_sample(&mut self.body, STALE_NAN, ts_ms);
            self.stale += 1;
        }
    }
}

/// Most `--remote-write-label`s.
pub const MAX_EXTRA_LABELS: usize = 16;

fn labels_of<'a>(body: &'a [u8], e: &Entry) -> &'a [u8] {
    &body[e.start as usize..][..e.len as usize]
}

fn compare(body_a: &[u8], a: &Entry, body_b: &[u8], b: &Entry) -> Ordering {
    a.hash
        .cmp(&b.hash)
        .then_with(|| labels_of(body_a, a).cmp(labels_of(body_b, b)))
}

/// Sorts `entries` of `body` in [`compare`]'s order: a heapsort written
/// out for this one type, as small as it gets (no allocation, O(n log n)).
fn heapsort(entries: &mut [Entry], body: &[u8]) {
    let less = |a: &Entry, b: &Entry| compare(body, a, body, b) == Ordering::Less;
    let sift = |v: &mut [Entry], mut root: usize, end: usize| {
        loop {
            let mut child = 2 * root + 1;
            if child >= end {
                return;
            }
            if child + 1 < end && less(&v[child], &v[child + 1]) {
                child += 1;
            }
            if !less(&v[root], &v[child]) {
                return;
            }
            v.swap(root, child);
            root = child;
        }
    };
    let n = entries.len();
    for start in (0..n / 2).rev() {
        sift(entries, start, n);
    }
    for end in (1..n).rev() {
        entries.swap(0, end);
        sift(entries, 0, end);
    }
}

/// `__name__` and the labels of a canonical key `name{a="x",b="y"}` into
/// `pairs`; how many, or `None` if the key does not read as one.
fn split_key<'a>(key: &'a [u8], pairs: &mut [Pair<'a>]) -> Option<usize> {
    let brace = key.iter().position(|&b| b == b'{');
    let name = &key[..brace.unwrap_or(key.len())];
    if name.is_empty() {
        return None;
    }
    pairs[0] = Pair {
        name: b"__name__",
        value: name,
        escaped: false,
    };
    let mut n = 1;
    let Some(brace) = brace else {
        return Some(n);
    };
    let mut rest = key.get(brace + 1..)?;
    while rest != b"}" {
        let eq = rest.iter().position(|&b| b == b'=')?;
        if rest.get(eq + 1) != Some(&b'"') {
            return None;
        }
        let value_start = eq + 2;
        let mut i = value_start;
        while *rest.get(i)? != b'"' {
            i += if rest[i] == b'\\' { 2 } else { 1 };
        }
        *pairs.get_mut(n)? = Pair {
            name: &rest[..eq],
            value: &rest[value_start..i],
            escaped: true,
        };
        n += 1;
        rest = match rest.get(i + 1)? {
            b',' => &rest[i + 2..],
            b'}' => &rest[i + 1..],
            _ => return None,
        };
    }
    Some(n)
}

/// Length of a `Label` message.
fn label_len(p: &Pair<'_>) -> usize {
    let value = if p.escaped {
        unescaped_len(p.value)
    } else {
        p.value.len()
    };
    field_len(p.name.len()) + field_len(value)
}

/// A length-delimited field of `len` bytes, with its tag and length.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn sample_len(ts_ms: i64) -> usize {
    1 + 8 + 1 + varint_len(ts_ms as u64)
}

fn write_sample(out: &mut Vec<u8>, value_bits: u64, ts_ms: i64) {
    out.push(0x12);
    varint(out, sample_len(ts_ms) as u64);
    out.push(0x09);
    out.extend_from_slice(&value_bits.to_le_bytes());
    out.push(0x10);
    // int64 as protobuf writes it: two's complement, ten bytes if negative.
    varint(out, ts_ms as u64);
}

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// Length of an escaped label value (`\\`, `\"`, `\n`) once unescaped.
fn unescaped_len(v: &[u8]) -> usize {
    let mut n = 0;
    let mut i = 0;
    while i < v.len() {
        i += if v[i] == b'\\' && i + 1 < v.len() {
            2
        } else {
            1
        };
        n += 1;
    }
    n
}

fn unescape(out: &mut Vec<u8>, v: &[u8]) {
    let mut i = 0;
    while i < v.len() {
        if v[i] == b'\\' && i + 1 < v.len() {
            out.push(if v[i + 1] == b'n' { b'\n' } else { v[i + 1] });
            i += 2;
        } else {
            out.push(v[i]);
            i += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn varints() {
        for (v, bytes) in [
            (0u64, &[0u8][..]),
            (1, &[1]),
            (127, &[0x7f]),
            (128, &[0x80, 1]),
            (300, &[0xac, 2]),
            (1_700_000_000_000, &[0x80, 0xd0, 0x95, 0xff, 0xbc, 0x31]),
        ] {
            let mut out = Vec::new();
            varint(&mut out, v);
            assert_eq!(out, bytes, "{v}");
            assert_eq!(varint_len(v), bytes.len(), "{v}");
        }
        assert_eq!(varint_len(u64::MAX), 10);
    }

    /// One series, byte by byte, as the protobuf rules lay it out (fields
    /// in number order, labels sorted); the receivers' tests decode the
    /// same encoder's requests (tests/remote_write.rs).
    #[test]
    fn one_series_in_known_bytes() {
        let mut r = Request::default();
        r.add_page(
            b"# TYPE up gauge\nup{job=\"a\"} 1\n",
            &labels(&[("box", "b1")]),
            1000,
            usize::MAX,
        );
        #[rustfmt::skip]
        let want: &[u8] = &[
            0x0a, 0x33,                                  // timeseries, 51 bytes
            0x0a, 0x0e,                                  // label, 14 bytes
            0x0a, 0x08, b'_', b'_', b'n', b'a', b'm', b'e', b'_', b'_',
            0x12, 0x02, b'u', b'p',
            0x0a, 0x09,                                  // label box="b1"
            0x0a, 0x03, b'b', b'o', b'x', 0x12, 0x02, b'b', b'1',
            0x0a, 0x08,                                  // label job="a"
            0x0a, 0x03, b'j', b'o', b'b', 0x12, 0x01, b'a',
            0x12, 0x0c,                                  // sample, 12 bytes
            0x09, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f,          // 1.0
            0x10, 0xe8, 0x07,                            // 1000 ms
        ];
        assert_eq!(r.body, want);
        assert_eq!((r.samples(), r.skipped), (1, 0));
    }

    #[test]
    fn escapes_are_undone_and_empty_values_left_out() {
        let mut r = Request::default();
        r.add_page(br#"m{a="x\"y\\z\n",e=""} NaN"#, &[], 5, usize::MAX);
        let b = &r.body;
        let value = [b'x', b'"', b'y', b'\\', b'z', b'\n'];
        assert!(
            b.windows(value.len() + 2)
                .any(|w| w[..2] == [0x12, 6] && w[2..] == value)
        );
        assert!(
            !b.windows(3).any(|w| w == [0x0a, 1, b'e']),
            "empty label e sent"
        );
        // NaN as Rust writes it, never the staleness marker.
        let nan_at = b.len() - 10;
        assert_ne!(
            u64::from_le_bytes(b[nan_at..nan_at + 8].try_into().unwrap()),
            STALE_NAN
        );
    }

    #[test]
    fn own_labels_win_over_extra_ones_and_all_are_sorted() {
        let mut r = Request::default();
        r.add_page(
            b"m{zone=\"own\",Up=\"1\"} 2\n",
            &labels(&[("a", "x"), ("zone", "extra")]),
            1,
            usize::MAX,
        );
        let text = String::from_utf8_lossy(&r.body).into_owned();
        let order: Vec<usize> = ["Up", "__name__", "a", "zone"]
            .iter()
            .map(|l| text.find(l).unwrap())
            .collect();
        assert!(order.windows(2).all(|w| w[0] < w[1]), "{text:?}");
        assert!(text.contains("own") && !text.contains("extra"));
    }

    #[test]
    fn lines_that_do_not_read_are_skipped() {
        let mut r = Request::default();
        r.add_page(
            b"novalue\nm{a=\"1\" 3\n{a=\"1\"} 3\nm x\nok 1\n",
            &[],
            1,
            usize::MAX,
        );
        assert_eq!((r.samples(), r.skipped), (1, 4));
    }

    #[test]
    fn the_limit_leaves_series_out() {
        let mut r = Request::default();
        r.add_page(b"a 1\nb 2\nc 3\n", &[], 1, 60);
        assert_eq!(r.body.len(), 60);
        assert_eq!((r.samples(), r.skipped), (2, 1));
    }

    #[test]
    fn series_gone_since_the_last_request_get_a_staleness_marker() {
        let mut last = Request::default();
        last.add_page(b"a 1\nb{x=\"1\"} 2\nc 3\n", &[], 1, usize::MAX);
        last.finish();
        let mut now = Request::default();
        now.add_page(b"a 5\nc 6\n", &[], 2, usize::MAX);
        now.finish();
        let live = now.body.len();
        now.add_stale(&last, 2, usize::MAX);
        assert_eq!((now.samples(), now.stale), (3, 1));
        // The marker: b's labels from the last request, the stale NaN at 2.
        let mut want = Request::default();
        want.add_page(b"b{x=\"1\"} 0\n", &[], 2, usize::MAX);
        let marker = &mut want.body;
        let at = marker.len() - 10;
        marker[at..at + 8].copy_from_slice(&STALE_NAN.to_le_bytes());
        assert_eq!(&now.body[live..], &marker[..]);
        // Once delivered, b is no longer remembered: no second marker.
        let mut next = Request::default();
        next.add_page(b"a 5\nc 6\n", &[], 3, usize::MAX);
        next.finish();
        next.add_stale(&now, 3, usize::MAX);
        assert_eq!(next.stale, 0);
    }

    #[test]
    fn many_series_are_found_again_whatever_their_order() {
        let page: String = (0..500)
            .map(|i| format!("m{{i=\"{}\"}} 1\n", (i * 7919) % 500))
            .collect();
        let mut last = Request::default();
        last.add_page(page.as_bytes(), &[], 1, usize::MAX);
        last.finish();
        let s = &last.series;
        assert!(
            s.windows(2)
                .all(|w| compare(&last.body, &w[0], &last.body, &w[1]) != Ordering::Greater)
        );
        let kept: String = (0..500)
            .filter(|i| i % 3 != 0)
            .map(|i| format!("m{{i=\"{i}\"}} 2\n"))
            .collect();
        let mut now = Request::default();
        now.add_page(kept.as_bytes(), &[], 2, usize::MAX);
        now.finish();
        now.add_stale(&last, 2, usize::MAX);
        assert_eq!(now.stale, 167);
    }
}

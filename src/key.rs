//! Series keys: the canonical text `name{a="1",b="2"}` a series is
//! stored under (labels sorted by name, values escaped as written), so
//! that label order does not matter; a push's grouping labels merged into
//! each of its samples' keys; matching keys against label matchers.
//!
//! Memory: none of its own; keys are written into the caller's buffers
//! (at most [`key_buffer`]'s capacity for a line's key).

use std::cmp::Ordering;

use crate::bytes;
use crate::exposition::{Label, Sample};
use crate::limits::{LINE_MAX_BYTES, MAX_LABELS};

/// Writes the canonical key `name{a="1",b="2"}` of `sample`: labels sorted
/// by name, values escaped as written. `overrides` (already valid labels,
/// such as a push's grouping labels) replace the sample's labels of the
/// same name; `defaults` apply where the sample has no such label.
pub fn write_key(sample: &Sample, overrides: &[Label], defaults: &[Label], key: &mut Vec<u8>) {
    if overrides.is_empty()
        && defaults.is_empty()
        && let Some(canonical) = sample.canonical_key()
    {
        key.clear();
        key.extend_from_slice(canonical.as_bytes());
        return;
    }
    let own = |i: usize| sample.label_bytes(i);
    write_key_from(
        sample.name,
        sample.label_count(),
        own,
        overrides,
        defaults,
        key,
    );
}

/// A push's grouping labels in canonical text (`instance="",job="a"`,
/// sorted by name, values escaped), split once per push so that every
/// sample's key is a merge of two sorted label lists.
pub struct GroupLabels<'a> {
    text: &'a [u8],
    /// Per label: where it starts, where its name ends, where it ends.
    spans: [(usize, usize, usize); GROUP_KEY_LABELS],
    count: usize,
    /// The label that yields to a sample's own label of that name (a
    /// default such as `instance=""`); the others replace the sample's.
    weak: Option<usize>,
}

/// Most labels [`GroupLabels`] holds; a grouping key has fewer.
const GROUP_KEY_LABELS: usize = 32;

impl<'a> GroupLabels<'a> {
    /// Splits canonical `text`; `weak` names its default label, if any.
    /// `None` if the text has more labels than fit.
    pub fn new(text: &'a [u8], weak: Option<&str>) -> Option<GroupLabels<'a>> {
        let mut g = GroupLabels {
            text,
            spans: [(0, 0, 0); GROUP_KEY_LABELS],
            count: 0,
            weak: None,
        };
        let mut at = 0;
        while at < text.len() {
            let name_end = at + memchr::memchr(b'=', &text[at..])?;
            // The value: from the quote after `=` to the next unescaped quote.
            let mut end = name_end + 2;
            while end < text.len() && text[end] != b'"' {
                end += if text[end] == b'\\' { 2 } else { 1 };
            }
            let end = (end + 1).min(text.len());
            if g.count == GROUP_KEY_LABELS {
                return None;
            }
            if weak.is_some_and(|w| bytes::eq(w.as_bytes(), &text[at..name_end])) {
                g.weak = Some(g.count);
            }
            g.spans[g.count] = (at, name_end, end);
            g.count += 1;
            at = end + 1;
        }
        Some(g)
    }
}

/// [`write_key`] for a sample of a push: its labels merged with the
/// group's, written into `buf` from `at` (a push collects its keys one
/// after another); returns where the key ends. `buf` grows when it has not
/// room for the longest key this sample could have; bytes past the key
/// are left as they were, as scratch. Returns `None`, writing nothing, when
/// the sample's labels are not written in canonical form; [`write_key`]
/// handles those.
///
/// Both lists are sorted, so the key is written in runs copied whole
/// (`a="1",b="2"` at once), not label by label. This runs for every
/// sample of a push, so a run also takes along what surrounds it in its
/// text: the line's `name{` before its first label, the comma before a
/// label, the line's `}` after its last one. A key of the sample's labels
/// around the group's is then three copies and one comma, into bytes that
/// `buf` already holds: appending to a `Vec` would call `memcpy` for
/// each, and resizing it zero it each time.
pub fn write_key_grouped(
    sample: &Sample,
    group: &GroupLabels,
    buf: &mut Vec<u8>,
    at: usize,
) -> Option<usize> {
    let line = sample.canonical_key()?.as_bytes();
    // The line and the group's labels, a comma and braces at most.
    let room = at + line.len() + group.text.len() + 3;
    if buf.len() < room {
        buf.resize(room, 0);
    }
    let mut out = KeyOut { buf, at };
    let own_count = sample.label_count();
    if own_count == 0 {
        // The line is the bare name; the group's labels all go.
        out.piece(line);
        if group.count > 0 {
            out.byte(b'{');
            out.piece(group.text);
            out.byte(b'}');
        }
        return Some(out.at);
    }
    // The line's bytes not copied yet (`pending.0 == pending.1`: none): a
    // run of the sample's labels, which a canonical line with labels opens
    // with `name{`.
    let mut pending = (0, sample.name.len() + 1);
    // Whether a label is in the key (copied or pending).
    let mut any = false;
    // The group's next label.
    let mut j = 0;
    for i in 0..own_count {
        let [start, name_end, _, value_end] = sample.label_offsets(i);
        let name = &line[start..name_end];
        // The group's labels that sort before this one go first, with the
        // group's label of the same name unless that is the weak default.
        let first_group = j;
        let (mut keep, mut yields) = (true, false);
        while j < group.count {
            let (gs, ge, _) = group.spans[j];
            match cmp_names(&group.text[gs..ge], name) {
                Ordering::Less => j += 1,
                Ordering::Greater => break,
                Ordering::Equal if group.weak == Some(j) => {
                    yields = true;
                    break;
                }
                Ordering::Equal => {
                    keep = false;
                    j += 1;
                    break;
                }
            }
        }
        if j > first_group {
            out.piece(&line[pending.0..pending.1]);
            pending = (0, 0);
            out.group_run(group, first_group, j, any);
            any = true;
        }
        if yields {
            j += 1;
        }
        if !keep {
            continue;
        }
        let end = value_end + 1;
        if pending.0 < pending.1 {
            // The labels before it in the line are pending: the comma
            // between (or the `{`) is in the line too.
            pending.1 = end;
        } else if i > 0 {
            pending = (start - 1, end);
        } else {
            // Label 0 after the group's: `name{` is copied, and no comma
            // precedes it in the line.
            out.byte(b',');
            pending = (start, end);
        }
        any = true;
    }
    if j < group.count {
        out.piece(&line[pending.0..pending.1]);
        out.group_run(group, j, group.count, any);
        out.byte(b'}');
    } else if pending.0 < pending.1 && pending.1 + 1 == line.len() {
        // The sample's last label ends the line, just before its `}`.
        out.piece(&line[pending.0..]);
    } else {
        out.piece(&line[pending.0..pending.1]);
        out.byte(b'}');
    }
    Some(out.at)
}

/// Where [`write_key_grouped`] writes: bytes already in the buffer.
struct KeyOut<'a> {
    buf: &'a mut [u8],
    at: usize,
}

impl KeyOut<'_> {
    // Inlined: a few pieces per key, and as calls they cost a sixth of it.
    #[inline(always)]
    fn piece(&mut self, piece: &[u8]) {
        let end = self.at + piece.len();
        bytes::copy(&mut self.buf[self.at..end], piece);
        self.at = end;
    }

    fn byte(&mut self, b: u8) {
        self.buf[self.at] = b;
        self.at += 1;
    }

    /// The group's labels `from..to`, after a comma when `any` label
    /// precedes them: the group's text has it, but before its first label.
    fn group_run(&mut self, group: &GroupLabels, from: usize, to: usize, any: bool) {
        let (mut start, _, _) = group.spans[from];
        let (_, _, end) = group.spans[to - 1];
        if any {
            if from > 0 {
                start -= 1;
            } else {
                self.byte(b',');
            }
        }
        self.piece(&group.text[start..end]);
    }
}

/// Orders label names; most differ in their first byte, which spares the
/// word-wise comparison.
#[inline]
fn cmp_names(a: &[u8], b: &[u8]) -> Ordering {
    match (a.first(), b.first()) {
        (Some(x), Some(y)) if x != y => x.cmp(y),
        _ => bytes::cmp(a, b),
    }
}

/// [`write_key`] for a name and labels that did not come from a line.
pub fn write_key_parts(
    name: &str,
    sample_labels: &[Label],
    overrides: &[Label],
    defaults: &[Label],
    key: &mut Vec<u8>,
) {
    let own = |i: usize| label_bytes(&sample_labels[i]);
    write_key_from(name, sample_labels.len(), own, overrides, defaults, key);
}

/// A label as bytes: name and escaped value.
type LabelBytes<'a> = (&'a [u8], &'a [u8]);

fn label_bytes<'a>((name, value): &Label<'a>) -> LabelBytes<'a> {
    (name.as_bytes(), value.as_bytes())
}

/// Where a label of a key comes from: the sample's own label `i`, override
/// `i` or default `i`. Small, so that the list of a key's labels costs a
/// few hundred bytes of stack to set up, not kilobytes.
#[derive(Clone, Copy)]
enum Pick {
    Own(u8),
    Override(u8),
    Default(u8),
}

/// Most labels a key is built from; more are dropped (a sample has at most
/// [`MAX_LABELS`], and grouping labels are as bounded); indexes fit a `u8`.
const MAX_KEY_LABELS: usize = MAX_LABELS * 2;

fn write_key_from<'a>(
    name: &str,
    own_count: usize,
    own: impl Fn(usize) -> LabelBytes<'a>,
    overrides: &[Label<'a>],
    defaults: &[Label<'a>],
    key: &mut Vec<u8>,
) {
    let label = |p: Pick| match p {
        Pick::Own(i) => own(usize::from(i)),
        Pick::Override(i) => label_bytes(&overrides[usize::from(i)]),
        Pick::Default(i) => label_bytes(&defaults[usize::from(i)]),
    };
    let overridden = |n: &[u8]| overrides.iter().any(|(o, _)| bytes::eq(o.as_bytes(), n));
    let mut picks = [Pick::Own(0); MAX_KEY_LABELS];
    let mut n = 0;
    let mut pick = |p: Pick| {
        if n < picks.len() {
            picks[n] = p;
            n += 1;
        }
    };
    for i in 0..overrides.len().min(MAX_KEY_LABELS) {
        pick(Pick::Override(i as u8));
    }
    for i in 0..own_count.min(MAX_KEY_LABELS) {
        if !overridden(own(i).0) {
            pick(Pick::Own(i as u8));
        }
    }
    for (i, (d, _)) in defaults.iter().enumerate().take(MAX_KEY_LABELS) {
        let d = d.as_bytes();
        if !overridden(d) && !(0..own_count).any(|j| bytes::eq(own(j).0, d)) {
            pick(Pick::Default(i as u8));
        }
    }
    let picks = &mut picks[..n];
    // Insertion sort: label lists are short and often already in order.
    for i in 1..picks.len() {
        let mut j = i;
        while j > 0 && bytes::cmp(label(picks[j - 1]).0, label(picks[j]).0).is_gt() {
            picks.swap(j - 1, j);
            j -= 1;
        }
    }
    key.clear();
    key.extend_from_slice(name.as_bytes());
    if picks.is_empty() {
        return;
    }
    key.push(b'{');
    for (i, &p) in picks.iter().enumerate() {
        let (name, value) = label(p);
        if i > 0 {
            key.push(b',');
        }
        key.extend_from_slice(name);
        key.extend_from_slice(b"=\"");
        key.extend_from_slice(value);
        key.push(b'"');
    }
    key.push(b'}');
}

/// Whether the canonical key `key` has every label of `matchers` (values
/// escaped) with exactly that value.
pub fn key_matches(key: &[u8], matchers: &[Label]) -> bool {
    matchers.iter().all(|(name, value)| {
        let mut pattern = [0u8; 256];
        let needle_len = name.len() + value.len() + 3;
        if needle_len > pattern.len() {
            return false;
        }
        pattern[..name.len()].copy_from_slice(name.as_bytes());
        pattern[name.len()..name.len() + 2].copy_from_slice(b"=\"");
        pattern[name.len() + 2..needle_len - 1].copy_from_slice(value.as_bytes());
        pattern[needle_len - 1] = b'"';
        let needle = &pattern[..needle_len];
        // A label starts after `{` or `,` outside any quoted value.
        key.windows(needle_len).enumerate().any(|(i, w)| {
            w == needle && i > 0 && matches!(key[i - 1], b'{' | b',') && !in_value(key, i)
        })
    })
}

/// Whether byte `at` of a canonical key lies inside a quoted label value.
fn in_value(key: &[u8], at: usize) -> bool {
    let mut inside = false;
    let mut i = 0;
    while i < at {
        match key[i] {
            b'\\' if inside => i += 1,
            b'"' => inside = !inside,
            _ => {}
        }
        i += 1;
    }
    inside
}

/// A key scratch buffer big enough for any line's key.
pub fn key_buffer() -> Vec<u8> {
    Vec::with_capacity(2 * LINE_MAX_BYTES)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::exposition::{self, Line};

    #[test]
    fn a_key_written_as_is_equals_the_rebuilt_key() {
        for line in [
            "x{a=\"1\",b=\"2\"} 1",
            "x{b=\"2\",a=\"1\"} 1",
            "x{ a=\"1\"} 1",
            "x{a=\"1\",} 1",
            "x {a=\"1\"} 1",
            "x{} 1",
            "x 1",
            "x{a=\"1\", b=\"2\"} 1",
            "x{a = \"1\"} 1",
            "x{a=\"1\" ,b=\"2\"} 1",
            "x{aa=\"1\",a=\"2\"} 1",
            "x{a=\"\\\"}\",b=\"\"} 1",
        ] {
            let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            let mut fast = Vec::new();
            write_key(&s, &[], &[], &mut fast);
            let labels: Vec<Label> = s.labels().collect();
            let mut slow = Vec::new();
            write_key_parts(s.name, &labels, &[], &[], &mut slow);
            assert_eq!(
                String::from_utf8(fast).unwrap(),
                String::from_utf8(slow).unwrap(),
                "{line}"
            );
        }
    }

    #[test]
    fn matchers() {
        let key = br#"m{a="1",b="x,c=\"2\"",c="3"}"#;
        assert!(key_matches(key, &[("a", "1"), ("c", "3")]));
        assert!(key_matches(key, &[]));
        assert!(!key_matches(key, &[("a", "2")]));
        assert!(!key_matches(key, &[("c", "\\\"2\\\"")]));
        assert!(key_matches(key, &[("b", "x,c=\\\"2\\\"")]));
    }

    #[test]
    fn overrides_replace_sample_labels() {
        let line = "m{instance=\"a\",z=\"1\"} 1";
        let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
            panic!()
        };
        let mut key = Vec::new();
        write_key(&s, &[("job", "j"), ("instance", "b")], &[], &mut key);
        assert_eq!(key, b"m{instance=\"b\",job=\"j\",z=\"1\"}");
        write_key(&s, &[("job", "j")], &[("instance", "")], &mut key);
        assert_eq!(key, b"m{instance=\"a\",job=\"j\",z=\"1\"}");
        let Ok(Line::Sample(bare)) = exposition::parse_line(b"m 1") else {
            panic!()
        };
        write_key(&bare, &[("job", "j")], &[("instance", "")], &mut key);
        assert_eq!(key, b"m{instance=\"\",job=\"j\"}");
    }

    #[test]
    fn grouped_keys_for_every_overlap_of_label_names() {
        // Every subset of these names on the sample, against every grouping
        // key (with `job`) of them: runs of either side at the start, in
        // the middle and at the end, and names on both sides.
        let names = ["a", "b", "instance", "job", "k", "zz"];
        let mut checked = 0;
        for own in 0..1u32 << names.len() {
            let mut line = String::from("m");
            let picked: Vec<&str> = (0..names.len())
                .filter(|b| own & 1 << b != 0)
                .map(|b| names[b])
                .collect();
            if !picked.is_empty() {
                let labels: Vec<String> = picked.iter().map(|n| format!("{n}=\"o{n}\"")).collect();
                line = format!("m{{{}}}", labels.join(","));
            }
            line.push_str(" 1");
            let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                panic!("{line}")
            };
            for grouping in 0..1u32 << names.len() {
                let labels: Vec<Label> = (0..names.len())
                    .filter(|b| grouping & 1 << b != 0 || names[*b] == "job")
                    .map(|b| (names[b], "g"))
                    .collect();
                let has_instance = labels.iter().any(|(n, _)| *n == "instance");
                let mut all = labels.clone();
                if !has_instance {
                    all.push(("instance", ""));
                    all.sort();
                }
                let text: Vec<String> = all.iter().map(|(n, v)| format!("{n}=\"{v}\"")).collect();
                let text = text.join(",");
                let group =
                    GroupLabels::new(text.as_bytes(), (!has_instance).then_some("instance"))
                        .unwrap();
                let mut slow = Vec::new();
                write_key(&s, &labels, &[("instance", "")], &mut slow);
                let mut fast = Vec::new();
                let end = write_key_grouped(&s, &group, &mut fast, 0).unwrap();
                assert_eq!(
                    String::from_utf8_lossy(&fast[..end]),
                    String::from_utf8_lossy(&slow),
                    "{line} with {text}"
                );
                checked += 1;
            }
        }
        assert_eq!(checked, 64 * 64);
    }

    #[test]
    fn grouped_keys_are_the_keys_write_key_builds() {
        let lines = [
            "m 1",
            "m{} 1",
            "m{a=\"1\"} 1",
            "m{instance=\"x\"} 1",
            "m{job=\"mine\",z=\"2\"} 1",
            "m{a=\"1\",instance=\"i\",job=\"q\",zone=\"z\"} 1",
            "m{a=\"\\\",x\\\"\",b=\"\"} 1",
            "m{z=\"1\",a=\"2\"} 1",
            "m{ a=\"1\" } 1",
            "m{le=\"0.5\",series=\"9\"} 1",
            "m{aaa=\"1\",zzzz=\"2\"} 1",
            "m{b=\"1\",instance=\"i\",zzzz=\"x\"} 1",
            "m{job=\"x\"} 1",
            "m{a=\"1\",job=\"x\"} 1",
            "m{job=\"x\",zzzz=\"1\"} 1",
            "m{a=\"1\",b=\"2\",c=\"3\",job=\"x\",k=\"4\",zzzz=\"5\"} 1",
        ];
        let groups: [&[Label]; 7] = [
            &[("job", "j")],
            &[("instance", "b"), ("job", "j")],
            &[("a", "g"), ("job", "j"), ("zone", "\\\",")],
            &[("job", "j"), ("series", "s")],
            &[("job", "j"), ("zzz", "last")],
            &[("b", "g"), ("job", "j"), ("k", "")],
            &[("a", "1"), ("c", "3"), ("job", "j"), ("zzzz", "z")],
        ];
        let defaults: &[Label] = &[("instance", "")];
        let mut merged = 0;
        for labels in groups {
            let mut text = String::new();
            let has_instance = labels.iter().any(|(n, _)| *n == "instance");
            let mut all: Vec<Label> = labels.to_vec();
            if !has_instance {
                all.push(("instance", ""));
            }
            all.sort();
            for (n, v) in &all {
                if !text.is_empty() {
                    text.push(',');
                }
                text.push_str(&format!("{n}=\"{v}\""));
            }
            let weak = (!has_instance).then_some("instance");
            let group = GroupLabels::new(text.as_bytes(), weak).unwrap();
            for line in lines {
                let Ok(Line::Sample(s)) = exposition::parse_line(line.as_bytes()) else {
                    panic!("{line}")
                };
                let mut slow = Vec::new();
                write_key(&s, labels, defaults, &mut slow);
                // Written after other bytes, into a buffer with scratch.
                let mut fast = b"before".to_vec();
                if let Some(end) = write_key_grouped(&s, &group, &mut fast, 6) {
                    merged += 1;
                    assert_eq!(
                        String::from_utf8_lossy(&fast[6..end]),
                        String::from_utf8_lossy(&slow),
                        "{line} with {text}"
                    );
                    assert_eq!(&fast[..6], b"before");
                } else {
                    assert!(s.canonical_key().is_none(), "{line}");
                    assert_eq!(fast, b"before");
                }
            }
        }
        assert_eq!(merged, 7 * 13, "every canonical line takes the merge");
    }
}

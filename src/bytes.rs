//! Comparisons and copies of byte strings for the hot paths (series keys,
//! label names), eight bytes at a time.
//!
//! The deployed build links musl statically, whose `memcmp` compares one
//! byte per iteration: with it, comparing keys was a fifth of an HTTP
//! push's instructions. Keys are short (tens of bytes), so a word loop
//! without a call beats both. Holds no memory.

use std::cmp::Ordering;

/// `a == b`.
#[inline]
pub fn eq(a: &[u8], b: &[u8]) -> bool {
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n < 8 {
        return a.iter().zip(b).all(|(x, y)| x == y);
    }
    let mut at = 0;
    while at + 8 < n {
        if word(a, at) != word(b, at) {
            return false;
        }
        at += 8;
    }
    // The last word may overlap the one before: no byte-wise tail.
    word(a, n - 8) == word(b, n - 8)
}

/// `a.cmp(b)`, lexicographic by byte.
#[inline]
pub fn cmp(a: &[u8], b: &[u8]) -> Ordering {
    let common = a.len().min(b.len());
    let mut at = 0;
    while at + 8 <= common {
        // Big-endian words order as their bytes do.
        let (x, y) = (u64::from_be(word(a, at)), u64::from_be(word(b, at)));
        if x != y {
            return x.cmp(&y);
        }
        at += 8;
    }
    for (x, y) in a[at..common].iter().zip(&b[at..common]) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// Where `a` and `b` first differ: the index of the first unequal byte,
/// or the shorter length if one is a prefix of the other.
#[inline]
pub fn mismatch(a: &[u8], b: &[u8]) -> usize {
    let common = a.len().min(b.len());
    let mut at = 0;
    while at + 8 <= common {
        let x = word(a, at) ^ word(b, at);
        if x != 0 {
            // Little-endian words: the first byte is the lowest.
            return at + (u64::from_le(x).trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    while at < common && a[at] == b[at] {
        at += 1;
    }
    at
}

/// `dst.copy_from_slice(src)` for short pieces (keys are built of them), a
/// word at a time. The static build's musl `memcpy` copies the unaligned head and
/// tail of a copy byte by byte: some 60 instructions for 20 bytes.
#[inline(always)]
pub fn copy(dst: &mut [u8], src: &[u8]) {
    let n = src.len();
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            dst[at..at + 8].copy_from_slice(&src[at..at + 8]);
            at += 8;
        }
        // The last word may overlap the one before: no byte-wise tail.
        dst[n - 8..n].copy_from_slice(&src[n - 8..n]);
    } else if n >= 4 {
        dst[..4].copy_from_slice(&src[..4]);
        dst[n - 4..n].copy_from_slice(&src[n - 4..n]);
    } else if n >= 2 {
        dst[..2].copy_from_slice(&src[..2]);
        dst[n - 2..n].copy_from_slice(&src[n - 2..n]);
    } else if n == 1 {
        dst[0] = src[0];
    }
}

/// The eight bytes of `s` at `at` as a native-endian word.
#[inline]
fn word(s: &[u8], at: usize) -> u64 {
    let mut w = [0u8; 8];
    w.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(w)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_standard_comparisons() {
        let words: Vec<Vec<u8>> = [
            "",
            "a",
            "b",
            "ab",
            "abc",
            "abcdefg",
            "abcdefgh",
            "abcdefgi",
            "abcdefghi",
            "abcdefghij",
            "abcdefgha",
            "bbcdefgh",
            "abcdefghabcdefgh",
            "abcdefghabcdefgi",
            "abcdefghabcdefg",
            "\u{ff}",
            "a\u{ff}cdefgh",
            "job=\"x\"",
            "instance",
            "loadgen_http{instance=\"0\",job=\"loadgen\",series=\"1\"}",
            "loadgen_http{instance=\"0\",job=\"loadgen\",series=\"2\"}",
        ]
        .iter()
        .map(|s| s.as_bytes().to_vec())
        .collect();
        for a in &words {
            for b in &words {
                assert_eq!(eq(a, b), a == b, "{a:?} == {b:?}");
                assert_eq!(cmp(a, b), a.cmp(b), "{a:?} cmp {b:?}");
            }
        }
        // Every position of a difference in a longer key.
        let base = vec![b'x'; 40];
        for i in 0..base.len() {
            for d in [b'a', b'z'] {
                let mut other = base.clone();
                other[i] = d;
                assert!(!eq(&base, &other));
                assert_eq!(cmp(&base, &other), base.cmp(&other), "at {i}");
                assert_eq!(cmp(&other, &base), other.cmp(&base), "at {i}");
            }
        }
    }

    #[test]
    fn short_copies_copy_every_length() {
        let src: Vec<u8> = (1..=40).collect();
        for n in 0..=src.len() {
            let mut dst = [0u8; 40];
            copy(&mut dst[..n], &src[..n]);
            assert_eq!(&dst[..n], &src[..n]);
            assert!(dst[n..].iter().all(|&b| b == 0), "{n}");
        }
    }
}

//! A set of names (metric family names of one push body), each with a
//! small value, found by hash: a body can hold tens of thousands of TYPE
//! or HELP lines, and looking each name up in a list made a push cost the
//! square of its families.
//!
//! Memory: the names' bytes plus about 24 bytes per name (their place, the
//! value, the hash index and its chain), reused from push to push; a name
//! comes from a line of the body, so this is bounded by a few times the
//! body.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

use crate::bytes;
use crate::cache;

/// A map keyed by a hash the caller computed ([`cache::hash`]): the key
/// is its own hash, so the map spends no time hashing it again (the
/// standard SipHash cost a push with many series about a tenth of its
/// time).
pub type HashKeyed<V> = HashMap<u32, V, BuildHasherDefault<KeyIsHash>>;

/// The [`Hasher`] of [`HashKeyed`]: a `u32` key that is already a hash.
#[derive(Default)]
pub struct KeyIsHash(u64);

impl Hasher for KeyIsHash {
    fn finish(&self) -> u64 {
        // Spread to the high bits too, which the map's control bytes use.
        self.0.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = u64::from(n);
    }
}

/// End of a hash chain.
const END: u32 = u32::MAX;

/// Names with a value `T` each, in the order they were added.
#[derive(Debug)]
pub struct NameIndex<T> {
    text: Vec<u8>,
    /// Per name: where it lies in `text`, its value and the next name of
    /// the same hash.
    entries: Vec<(u32, u32, T, u32)>,
    /// Hash of a name to the last name added with that hash.
    heads: HashKeyed<u32>,
}

impl<T> Default for NameIndex<T> {
    fn default() -> Self {
        NameIndex {
            text: Vec::new(),
            entries: Vec::new(),
            heads: HashKeyed::default(),
        }
    }
}

impl<T: Copy> NameIndex<T> {
    /// Empties the index, keeping its memory.
    pub fn clear(&mut self) {
        self.text.clear();
        self.entries.clear();
        self.heads.clear();
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The index of `name`, if it was added.
    pub fn find(&self, name: &[u8]) -> Option<usize> {
        let mut at = *self.heads.get(&cache::hash(name))?;
        while at != END {
            let (start, end, _, next) = self.entries[at as usize];
            if bytes::eq(&self.text[start as usize..end as usize], name) {
                return Some(at as usize);
            }
            at = next;
        }
        None
    }

    /// The value of `name`, if it was added.
    pub fn get(&self, name: &[u8]) -> Option<T> {
        self.find(name).map(|i| self.entries[i].2)
    }

    /// Adds `name` (which the caller knows is not in the index yet) with
    /// `value`; returns its index.
    pub fn add(&mut self, name: &[u8], value: T) -> usize {
        let start = self.text.len() as u32;
        self.text.extend_from_slice(name);
        let i = self.entries.len() as u32;
        let next = self.heads.insert(cache::hash(name), i).unwrap_or(END);
        self.entries
            .push((start, self.text.len() as u32, value, next));
        i as usize
    }

    /// Name `i` and its value.
    pub fn entry(&self, i: usize) -> (&[u8], T) {
        let (start, end, value, _) = self.entries[i];
        (&self.text[start as usize..end as usize], value)
    }

    /// Every name and its value, in the order added.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], T)> + '_ {
        (0..self.entries.len()).map(|i| self.entry(i))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_found_with_their_values() {
        let mut names = NameIndex::default();
        for i in 0..1000u32 {
            assert_eq!(names.find(format!("n{i}").as_bytes()), None);
            names.add(format!("n{i}").as_bytes(), i * 2);
        }
        assert_eq!(names.len(), 1000);
        for i in 0..1000u32 {
            assert_eq!(names.get(format!("n{i}").as_bytes()), Some(i * 2));
        }
        assert_eq!(names.get(b"n1000"), None);
        assert_eq!(names.get(b""), None);
        assert_eq!(names.entry(7), (&b"n7"[..], 14));
        assert_eq!(names.iter().count(), 1000);
        names.clear();
        assert!(names.is_empty());
        assert_eq!(names.get(b"n1"), None);
    }
}

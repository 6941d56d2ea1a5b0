//! The hash index: a fixed array of bucket heads at the start of the
//! budget, each the first record id of a chain linked through the records'
//! `F_BUCKET_NEXT`, oldest record first.
//!
//! A bucket holds its head's id plus one, so that zero is an empty bucket:
//! the index needs no writing at start-up, and the pages of a large
//! budget's index stay unmapped until series land in them.
//!
//! # Memory
//! More than 1/32 and at most 1/16 of the budget (a power of two of `u32`
//! heads, one per 64 bytes rounded down), set at start-up; chains live in
//! the records' headers.

use super::{Cache, F_BUCKET_NEXT, F_HASH, F_KIND, FREE, KIND_SERIES, Lookup, NIL};
use crate::bytes;

/// A fast non-cryptographic hash (FxHash's multiply-rotate, 8 bytes at a
/// time). Pushers are local processes, and a long chain costs only time.
pub fn hash(bytes: &[u8]) -> u32 {
    const K: u64 = 0x517c_c1b7_2722_0a95;
    let mut h: u64 = bytes.len() as u64;
    let mut chunks = bytes.chunks_exact(8);
    for c in &mut chunks {
        let w = u64::from_le_bytes([c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]]);
        h = (h.rotate_left(5) ^ w).wrapping_mul(K);
    }
    for &b in chunks.remainder() {
        h = (h.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
    }
    (h ^ (h >> 32)) as u32
}

impl Cache {
    #[inline(always)]
    fn bucket(&self, h: u32) -> usize {
        ((h & self.bucket_mask) as usize) * 4
    }

    /// The first id of the chain in `bucket`, or `NIL`.
    #[inline(always)]
    fn head(&self, bucket: usize) -> u32 {
        self.u32_at(bucket).wrapping_sub(1)
    }

    #[inline(always)]
    fn set_head(&mut self, bucket: usize, id: u32) {
        self.set_u32(bucket, id.wrapping_add(1));
    }

    pub(super) fn find(&self, kind: u8, key: &[u8], h: u32) -> Option<u32> {
        let mut id = self.head(self.bucket(h));
        while id != NIL {
            let off = self.off(id);
            if self.u32_at(off + F_HASH) == h
                && self.u8_at(off + F_KIND) == kind
                && bytes::eq(self.key(id), key)
            {
                return Some(id);
            }
            id = self.u32_at(off + F_BUCKET_NEXT);
        }
        None
    }

    /// The series `found` names, if it is still the series `key`.
    pub(super) fn refind(&self, found: Lookup, key: &[u8]) -> Option<u32> {
        if self.is_series(found, key) {
            return Some(found.id);
        }
        self.find(KIND_SERIES, key, found.hash)
    }

    /// Whether `found.id` is a live id naming the series `key`.
    #[inline(always)]
    pub(super) fn is_series(&self, found: Lookup, key: &[u8]) -> bool {
        let id = found.id;
        if id >= self.id_count || self.u32_at(self.id_slot(id)) & FREE != 0 {
            return false;
        }
        let off = self.off(id);
        self.u8_at(off + F_KIND) == KIND_SERIES
            && self.u32_at(off + F_HASH) == found.hash
            && bytes::eq(self.key(id), key)
    }

    pub(super) fn unlink_bucket(&mut self, id: u32) {
        let h = self.field(id, F_HASH);
        let bucket = self.bucket(h);
        let next = self.field(id, F_BUCKET_NEXT);
        let mut cur = self.head(bucket);
        if cur == id {
            self.set_head(bucket, next);
            return;
        }
        while cur != NIL {
            let cur_next = self.field(cur, F_BUCKET_NEXT);
            if cur_next == id {
                self.set_field(cur, F_BUCKET_NEXT, next);
                return;
            }
            cur = cur_next;
        }
    }

    /// Puts a new record at the end of its bucket's chain, which so stays
    /// in order of insertion: the oldest record, the first a flood evicts,
    /// is unlinked at the head, without a walk. The walk here costs no
    /// miss: looking the new key up walked the same chain just before.
    pub(super) fn link_bucket(&mut self, id: u32, h: u32) {
        self.set_field(id, F_BUCKET_NEXT, NIL);
        let bucket = self.bucket(h);
        let mut cur = self.head(bucket);
        if cur == NIL {
            self.set_head(bucket, id);
            return;
        }
        loop {
            let next = self.field(cur, F_BUCKET_NEXT);
            if next == NIL {
                self.set_field(cur, F_BUCKET_NEXT, id);
                return;
            }
            cur = next;
        }
    }
}

//! The hash index: a fixed array of bucket heads at the start of the
//! budget, each the first record id of a chain linked through the records'
//! `F_BUCKET_NEXT`.
//!
//! # Memory
//! Between 1/32 and 1/16 of the budget (a power of two of `u32` heads),
//! set at start-up; chains live in the records' headers.

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

    pub(super) fn find(&self, kind: u8, key: &[u8], h: u32) -> Option<u32> {
        let mut id = self.u32_at(self.bucket(h));
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
        let head = self.bucket(h);
        let next = self.field(id, F_BUCKET_NEXT);
        if self.u32_at(head) == id {
            self.set_u32(head, next);
            return;
        }
        let mut cur = self.u32_at(head);
        while cur != NIL {
            let cur_next = self.field(cur, F_BUCKET_NEXT);
            if cur_next == id {
                self.set_field(cur, F_BUCKET_NEXT, next);
                return;
            }
            cur = cur_next;
        }
    }

    /// Puts a new record at the head of its bucket's chain.
    pub(super) fn link_bucket(&mut self, id: u32, h: u32) {
        let bucket = self.bucket(h);
        let head = self.u32_at(bucket);
        self.set_field(id, F_BUCKET_NEXT, head);
        self.set_u32(bucket, id);
    }
}

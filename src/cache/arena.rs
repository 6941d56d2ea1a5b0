//! The cache's bytes: field access, the id table, and where records go.
//!
//! Records grow up from the end of the index, the id table grows down from
//! the end of the budget (see the layout in [`super`]). A removed record
//! leaves a *hole* (unless it was the last record, when the top just comes
//! down); a hole of at least [`MIN_RECORD_BYTES`] is listed by its size
//! class and a new record that fits takes it, leaving what it does not use
//! as a smaller hole. Holes too small for any record (slivers) and holes
//! nothing fits into wait for a compaction, which slides every live record
//! down over them; it runs only once holes add up to
//! [`COMPACT_DEAD_DIVISOR`]th of the budget (or when nothing is left to
//! evict), so its cost, one pass over the live records, is paid once per
//! that many bytes removed: amortised O(1) per record written.
//!
//! # Memory
//! Nothing beyond the budget's one `Vec`: a hole's size and its list link
//! are written in the hole itself, and the list heads are a fixed array in
//! [`Cache`] ([`HOLE_CLASSES`] × 4 bytes plus a bitmap).

use super::{
    Cache, CacheError, F_HELP_LEN, F_ID, F_KEY_LEN, F_KIND, GROUP_EXTRA_BYTES, HEADER_BYTES,
    ID_BYTES, KIND_DEAD, KIND_FAMILY, KIND_GROUP, NIL,
};

/// Smallest record: a header and a one-byte key, padded to 8.
pub const MIN_RECORD_BYTES: usize = 64;

/// Holes are compacted away once they add up to this fraction (1/8) of
/// the budget and a record finds no place: until then a record that fits
/// no hole makes room by evicting, so the cache may hold up to 1/8 of its
/// budget in holes. The fraction is what amortises compaction: each pass
/// moves at most the budget's bytes and comes after at least 1/8 of the
/// budget was removed, so at most 8 bytes are moved per byte written.
pub const COMPACT_DEAD_DIVISOR: usize = 8;

/// Holes of 64 to 1024 bytes are listed by exact size (8-byte steps);
/// larger ones by power of two.
const EXACT_HOLE_MAX: usize = 1024;
const EXACT_CLASSES: usize = (EXACT_HOLE_MAX - MIN_RECORD_BYTES) / 8 + 1;
/// Exact classes, then one per power of two up to the 1 GiB budget limit.
pub const HOLE_CLASSES: usize = EXACT_CLASSES + 20;
pub(super) const HOLE_BITMAP_WORDS: usize = HOLE_CLASSES.div_ceil(64);

/// A hole: `KIND_DEAD` at `F_KIND`, its size here, and while it is listed
/// the offset of the next hole of its class (or `NIL`).
const F_DEAD_SIZE: usize = 4;
const F_HOLE_NEXT: usize = 8;

pub(super) fn align8(n: usize) -> usize {
    (n + 7) & !7
}

/// The class a hole of `size` bytes (at least [`MIN_RECORD_BYTES`]) is
/// listed in.
fn hole_class(size: usize) -> usize {
    if size <= EXACT_HOLE_MAX {
        (size - MIN_RECORD_BYTES) / 8
    } else {
        // (1024, 2048] is the first, (2048, 4096] the next, ...
        let log2 = (usize::BITS - 1 - (size - 1).leading_zeros()) as usize;
        (EXACT_CLASSES + log2 - 10).min(HOLE_CLASSES - 1)
    }
}

/// The first class whose every hole holds `size` bytes.
fn fit_class(size: usize) -> usize {
    if size <= MIN_RECORD_BYTES {
        0
    } else if size <= EXACT_HOLE_MAX {
        (size - MIN_RECORD_BYTES) / 8
    } else {
        hole_class(size) + 1
    }
}

impl Cache {
    // ---- raw field access -------------------------------------------------
    // Always inlined: they are a few instructions each, on every hot path,
    // and opt-level "s" would otherwise leave many of them as calls.

    #[inline(always)]
    pub(super) fn u8_at(&self, off: usize) -> u8 {
        self.mem[off]
    }
    #[inline(always)]
    pub(super) fn u16_at(&self, off: usize) -> usize {
        usize::from(u16::from_le_bytes([self.mem[off], self.mem[off + 1]]))
    }
    #[inline(always)]
    pub(super) fn u32_at(&self, off: usize) -> u32 {
        let b = &self.mem[off..off + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline(always)]
    pub(super) fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.mem[off..off + 8]);
        u64::from_le_bytes(b)
    }
    #[inline(always)]
    pub(super) fn set_u32(&mut self, off: usize, v: u32) {
        self.mem[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    #[inline(always)]
    pub(super) fn set_u64(&mut self, off: usize, v: u64) {
        self.mem[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[inline(always)]
    pub(super) fn id_slot(&self, id: u32) -> usize {
        self.mem.len() - ID_BYTES * (id as usize + 1)
    }
    #[inline(always)]
    pub(super) fn off(&self, id: u32) -> usize {
        self.u32_at(self.id_slot(id)) as usize
    }
    #[inline(always)]
    pub(super) fn field(&self, id: u32, f: usize) -> u32 {
        self.u32_at(self.off(id) + f)
    }
    #[inline(always)]
    pub(super) fn set_field(&mut self, id: u32, f: usize, v: u32) {
        let off = self.off(id) + f;
        self.set_u32(off, v);
    }
    #[inline(always)]
    pub(super) fn key(&self, id: u32) -> &[u8] {
        let off = self.off(id);
        let len = self.u16_at(off + F_KEY_LEN);
        &self.mem[off + HEADER_BYTES..off + HEADER_BYTES + len]
    }
    pub(super) fn record_size(&self, off: usize) -> usize {
        match self.u8_at(off + F_KIND) {
            KIND_DEAD => self.u32_at(off + F_DEAD_SIZE) as usize,
            kind => {
                let mut n = HEADER_BYTES + self.u16_at(off + F_KEY_LEN);
                if kind == KIND_FAMILY {
                    n += self.u32_at(off + F_HELP_LEN) as usize;
                } else if kind == KIND_GROUP {
                    n += GROUP_EXTRA_BYTES;
                }
                align8(n)
            }
        }
    }

    // ---- space ------------------------------------------------------------

    /// Dead bytes past which a record that finds no place compacts instead
    /// of evicting.
    fn compact_at(&self) -> usize {
        self.capacity() / COMPACT_DEAD_DIVISOR
    }

    /// Finds `size` bytes for a new record (and an id, if no freed one is
    /// left) and reserves them; returns their offset. In this order:
    /// the free space between records and ids; a hole that holds the
    /// record; reclaiming an expired entry; compacting, if the holes add
    /// up to [`COMPACT_DEAD_DIVISOR`]th of the budget (or nothing is left
    /// to evict) and compaction makes room; evicting the least recently
    /// written entry. Then it tries again.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when even evicting everything that may be
    /// evicted leaves no room.
    pub(super) fn make_room(&mut self, size: usize, now: u64) -> Result<usize, CacheError> {
        loop {
            let id_need = if self.free_ids == NIL { ID_BYTES } else { 0 };
            let gap = self.ids_bottom - self.top;
            if gap >= size + id_need {
                let off = self.top;
                self.top += size;
                return Ok(off);
            }
            if gap >= id_need
                && let Some(off) = self.take_hole(size)
            {
                return Ok(off);
            }
            let compaction_fits = gap + self.dead_bytes >= size + id_need;
            match self.oldest_entry(now) {
                Some((id, true)) => self.stats.evicted_ttl += self.remove_entry(id),
                Some(_) if compaction_fits && self.dead_bytes >= self.compact_at() => {
                    self.compact()
                }
                None if compaction_fits => self.compact(),
                Some((id, false)) => self.stats.evicted_budget += self.remove_entry(id),
                None => return Err(CacheError::TooLarge),
            }
        }
    }

    /// Takes a listed hole of at least `size` bytes, the smallest class
    /// first; what the record leaves of it is a hole again.
    fn take_hole(&mut self, size: usize) -> Option<usize> {
        if size > EXACT_HOLE_MAX {
            // The class `size` falls in holds smaller holes too: try its
            // first before going a class up.
            let c = hole_class(size);
            let head = self.hole_heads[c];
            if head != NIL && self.u32_at(head as usize + F_DEAD_SIZE) as usize >= size {
                return Some(self.carve(c, size));
            }
        }
        let from = fit_class(size);
        if from >= HOLE_CLASSES {
            return None;
        }
        let mut word = from / 64;
        let mut bits = self.hole_bitmap[word] & (u64::MAX << (from % 64));
        loop {
            if bits != 0 {
                let c = word * 64 + bits.trailing_zeros() as usize;
                return Some(self.carve(c, size));
            }
            word += 1;
            if word == HOLE_BITMAP_WORDS {
                return None;
            }
            bits = self.hole_bitmap[word];
        }
    }

    /// Unlists the first hole of class `c`, uses its first `size` bytes and
    /// leaves the rest a hole.
    fn carve(&mut self, c: usize, size: usize) -> usize {
        let off = self.hole_heads[c] as usize;
        let next = self.u32_at(off + F_HOLE_NEXT);
        self.hole_heads[c] = next;
        if next == NIL {
            self.hole_bitmap[c / 64] &= !(1 << (c % 64));
        }
        let hole = self.u32_at(off + F_DEAD_SIZE) as usize;
        self.dead_bytes -= hole;
        if hole > size {
            self.make_hole(off + size, hole - size);
        }
        off
    }

    /// Marks `size` bytes at `off` dead, listing them if a record fits.
    fn make_hole(&mut self, off: usize, size: usize) {
        self.mem[off + F_KIND] = KIND_DEAD;
        self.set_u32(off + F_DEAD_SIZE, size as u32);
        self.dead_bytes += size;
        if size >= MIN_RECORD_BYTES {
            let c = hole_class(size);
            let head = self.hole_heads[c];
            self.set_u32(off + F_HOLE_NEXT, head);
            self.hole_heads[c] = off as u32;
            self.hole_bitmap[c / 64] |= 1 << (c % 64);
        }
    }

    /// Slides live records down over the holes; ids keep pointing at them.
    fn compact(&mut self) {
        let mut read = self.records_start;
        let mut write = self.records_start;
        while read < self.top {
            let size = self.record_size(read);
            if self.u8_at(read + F_KIND) != KIND_DEAD {
                let id = self.u32_at(read + F_ID);
                if read != write {
                    self.mem.copy_within(read..read + size, write);
                    self.stats.records_moved += 1;
                }
                let slot = self.id_slot(id);
                self.set_u32(slot, write as u32);
                write += size;
            }
            read += size;
        }
        self.top = write;
        self.dead_bytes = 0;
        self.hole_heads = [NIL; HOLE_CLASSES];
        self.hole_bitmap = [0; HOLE_BITMAP_WORDS];
        self.stats.compactions += 1;
    }

    /// Writes a new record header and key at `off`, which
    /// [`Cache::make_room`] reserved for it, and indexes it.
    pub(super) fn alloc(&mut self, kind: u8, key: &[u8], extra: &[u8], h: u32, off: usize) -> u32 {
        let id = if self.free_ids != NIL {
            let id = self.free_ids;
            let next = self.u32_at(self.id_slot(id)) & !super::FREE;
            self.free_ids = if next == super::FREE_END { NIL } else { next };
            id
        } else {
            let id = self.id_count;
            self.id_count += 1;
            self.ids_bottom -= ID_BYTES;
            id
        };
        let slot = self.id_slot(id);
        self.set_u32(slot, off as u32);
        self.mem[off..off + HEADER_BYTES].fill(0);
        self.mem[off + F_KIND] = kind;
        self.mem[off + F_KEY_LEN..off + F_KEY_LEN + 2]
            .copy_from_slice(&(key.len() as u16).to_le_bytes());
        self.set_u32(off + super::F_HASH, h);
        self.set_u32(off + F_ID, id);
        self.mem[off + HEADER_BYTES..off + HEADER_BYTES + key.len()].copy_from_slice(key);
        let extra_at = off + HEADER_BYTES + key.len();
        self.mem[extra_at..extra_at + extra.len()].copy_from_slice(extra);
        self.link_bucket(id, h);
        id
    }

    /// Frees the bytes of the record at `off`, which nothing names any more.
    pub(super) fn free_bytes(&mut self, off: usize) {
        let size = self.record_size(off);
        if off + size == self.top {
            self.top = off;
        } else {
            self.make_hole(off, size);
        }
    }

    /// Frees a record's bytes and its id.
    pub(super) fn release(&mut self, id: u32) {
        self.unlink_bucket(id);
        self.free_bytes(self.off(id));
        let slot = self.id_slot(id);
        let next = if self.free_ids == NIL {
            super::FREE_END
        } else {
            self.free_ids
        };
        self.set_u32(slot, super::FREE | next);
        self.free_ids = id;
    }

    /// Checks the records and holes; part of [`Cache::check_invariants`].
    pub(super) fn check_arena(&self) {
        let mut live = 0;
        let mut dead = 0;
        let mut listed_expected = 0;
        let mut off = self.records_start;
        while off < self.top {
            let size = self.record_size(off);
            assert!(
                size >= 8 && size.is_multiple_of(8),
                "record at {off} of {size} bytes"
            );
            if self.u8_at(off + F_KIND) == KIND_DEAD {
                dead += size;
                if size >= MIN_RECORD_BYTES {
                    listed_expected += 1;
                }
            } else {
                live += size;
            }
            off += size;
        }
        assert_eq!(off, self.top);
        assert_eq!(dead, self.dead_bytes);
        assert_eq!(live, self.top - self.records_start - self.dead_bytes);
        let mut listed = 0;
        for c in 0..HOLE_CLASSES {
            let bit = self.hole_bitmap[c / 64] & (1 << (c % 64)) != 0;
            assert_eq!(bit, self.hole_heads[c] != NIL, "bitmap of class {c}");
            let mut hole = self.hole_heads[c];
            while hole != NIL {
                let at = hole as usize;
                assert!(at >= self.records_start && at < self.top);
                assert_eq!(self.u8_at(at + F_KIND), KIND_DEAD);
                assert_eq!(hole_class(self.record_size(at)), c);
                listed += 1;
                hole = self.u32_at(at + F_HOLE_NEXT);
            }
        }
        assert_eq!(
            listed, listed_expected,
            "every hole a record fits is listed"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classes_hold_what_they_promise() {
        for size in (MIN_RECORD_BYTES..1 << 13).step_by(8) {
            let c = hole_class(size);
            assert!(c < HOLE_CLASSES);
            // Every hole in a class at or past fit_class(size) holds size.
            let f = fit_class(size);
            for hole in (MIN_RECORD_BYTES..1 << 14).step_by(8) {
                if hole_class(hole) >= f {
                    assert!(hole >= size, "hole {hole} in class >= {f} for {size}");
                }
            }
        }
        assert_eq!(hole_class(1 << 30), HOLE_CLASSES - 1);
    }
}

//! Pushed groups: a record per group (its grouping labels, push times,
//! TTL class and deadline) heading the list of its series, which live and
//! die with it. A push opens its group, which spares it from eviction
//! while the push writes, and closes it.
//!
//! # Memory
//! A group record costs `HEADER_BYTES + labels + 8`, padded to 8, plus an
//! id, in the budget; its series are linked through their headers.

use super::arena::align8;
use super::index::hash;
use super::{
    Cache, CacheError, F_DEADLINE, F_FAMILY, F_FIRST, F_FLAGS, F_GROUP_BYTES, F_KEY_LEN, F_NEXT,
    F_OWNER, F_PREV, F_TYPE, F_VALUE, FLAG_STALE, Family, GROUP_EXTRA_BYTES, HEADER_BYTES,
    ID_BYTES, KIND_FAMILY, KIND_GROUP, KIND_SERIES, Lookup, NIL, Write,
};
use crate::bytes;

impl Cache {
    pub(super) fn group_link(&mut self, group: u32, id: u32) {
        let bytes = self.field(group, F_GROUP_BYTES) as usize + self.series_bytes(id);
        self.set_field(group, F_GROUP_BYTES, bytes as u32);
        let first = self.field(group, F_FIRST);
        self.set_field(id, F_PREV, NIL);
        self.set_field(id, F_NEXT, first);
        if first != NIL {
            self.set_field(first, F_PREV, id);
        }
        self.set_field(group, F_FIRST, id);
    }

    pub(super) fn group_unlink(&mut self, group: u32, id: u32) {
        let bytes = self.field(group, F_GROUP_BYTES) as usize - self.series_bytes(id);
        self.set_field(group, F_GROUP_BYTES, bytes as u32);
        let prev = self.field(id, F_PREV);
        let next = self.field(id, F_NEXT);
        if prev == NIL {
            self.set_field(group, F_FIRST, next);
        } else {
            self.set_field(prev, F_NEXT, next);
        }
        if next != NIL {
            self.set_field(next, F_PREV, prev);
        }
    }

    pub(super) fn remove_group(&mut self, group: u32) -> u64 {
        let removed = self.group_clear(group, None);
        self.lru_unlink(group);
        self.release(group);
        self.groups -= 1;
        self.generation += 1;
        self.layout += 1;
        removed
    }

    /// The group with grouping labels `labels` (canonical), if held.
    pub fn group_find(&self, labels: &[u8]) -> Option<u32> {
        self.find(KIND_GROUP, labels, hash(labels))
    }

    /// Starts a push to the group `labels`: finds or creates it and spares
    /// it from eviction until [`Cache::group_close`].
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] when even the empty group cannot fit.
    pub fn group_open(&mut self, labels: &[u8], now: u64, ttl_ms: u64) -> Result<u32, CacheError> {
        let class = self.class_for(ttl_ms)?;
        let h = hash(labels);
        let id = match self.find(KIND_GROUP, labels, h) {
            Some(id) => id,
            None => {
                let size = align8(HEADER_BYTES + labels.len() + GROUP_EXTRA_BYTES);
                if labels.len() > usize::from(u16::MAX)
                    || size + ID_BYTES + self.records_start > self.capacity()
                {
                    return Err(CacheError::TooLarge);
                }
                let off = self.make_room(size, now)?;
                let id = self.alloc(KIND_GROUP, labels, &0f64.to_bits().to_le_bytes(), h, off);
                self.set_field(id, F_FIRST, NIL);
                let off = self.off(id);
                self.set_u64(off + F_DEADLINE, u64::MAX);
                self.lru_push_tail(id, class);
                self.groups += 1;
                self.layout += 1;
                self.generation += 1;
                id
            }
        };
        self.lru_touch(id, class);
        self.pinned_group = id;
        Ok(id)
    }

    /// Removes the group's series (only those of family `family` if given);
    /// returns how many.
    pub fn group_clear(&mut self, group: u32, family: Option<&[u8]>) -> u64 {
        let mut removed = 0;
        let mut id = self.field(group, F_FIRST);
        while id != NIL {
            let next = self.field(id, F_NEXT);
            if family.is_none_or(|f| bytes::eq(self.key(self.field(id, F_FAMILY)), f)) {
                self.remove_series(id);
                removed += 1;
            }
            id = next;
        }
        removed
    }

    /// Marks the group's series (of family `family` if given) as replaced
    /// by the push under way: [`Cache::group_sweep`] removes those the push
    /// does not write again.
    pub fn group_mark_stale(&mut self, group: u32, family: Option<&[u8]>) {
        let mut id = self.field(group, F_FIRST);
        while id != NIL {
            if family.is_none_or(|f| bytes::eq(self.key(self.field(id, F_FAMILY)), f)) {
                let off = self.off(id);
                self.mem[off + F_FLAGS] |= FLAG_STALE;
            }
            id = self.field(id, F_NEXT);
        }
    }

    /// Removes the group's series still marked stale.
    pub fn group_sweep(&mut self, group: u32) {
        let mut id = self.field(group, F_FIRST);
        while id != NIL {
            let next = self.field(id, F_NEXT);
            if self.u8_at(self.off(id) + F_FLAGS) & FLAG_STALE != 0 {
                self.remove_series(id);
            }
            id = next;
        }
    }

    /// Bytes the group's series hold, except those of families for which
    /// `replaced` is true: what a push keeps, for its size check.
    pub fn group_retained_bytes(&self, group: u32, replaced: impl Fn(&[u8]) -> bool) -> usize {
        let mut bytes = 0;
        let mut id = self.field(group, F_FIRST);
        while id != NIL {
            if !replaced(self.key(self.field(id, F_FAMILY))) {
                bytes += self.series_bytes(id);
            }
            id = self.field(id, F_NEXT);
        }
        bytes
    }

    /// Whether family `name` has series that `group` does not hold
    /// (streamed, or pushed by other groups); `false` when the cache has
    /// no such family. A push may change the type of a family only it
    /// holds; this walks the group's series, once per family whose type
    /// the push changes.
    pub fn family_held_elsewhere(&self, name: &str, group: Option<u32>) -> bool {
        let key = name.as_bytes();
        let Some(family) = self.find(KIND_FAMILY, key, hash(key)) else {
            return false;
        };
        let total = self.field(family, F_FAMILY);
        let mut own = 0;
        if let Some(group) = group {
            let mut id = self.field(group, F_FIRST);
            while id != NIL {
                if self.field(id, F_FAMILY) == family {
                    own += 1;
                }
                id = self.field(id, F_NEXT);
            }
        }
        total > own
    }

    /// Appends the ids of the series group `group` holds to `out`.
    pub fn group_series(&self, group: u32, out: &mut Vec<u32>) {
        let mut s = self.field(group, F_FIRST);
        while s != NIL {
            out.push(s);
            s = self.field(s, F_NEXT);
        }
    }

    /// Bytes the series of `group` take, ids included.
    pub fn group_bytes(&self, group: u32) -> usize {
        self.field(group, F_GROUP_BYTES) as usize
    }

    /// Bytes of the family records the group's series belong to, ids
    /// included: what stays beside the group's series while a push
    /// rewrites them in place. A family is counted again wherever series
    /// of another family come between its own, so this is at most the
    /// exact sum, which would need a set of the families seen.
    pub fn group_family_bytes(&self, group: u32) -> usize {
        let mut bytes = 0;
        let mut last = NIL;
        let mut id = self.field(group, F_FIRST);
        while id != NIL {
            let family = self.field(id, F_FAMILY);
            if family != last {
                bytes += self.record_size(self.off(family)) + ID_BYTES;
                last = family;
            }
            id = self.field(id, F_NEXT);
        }
        bytes
    }

    /// What series `id` costs: its record and its id.
    pub(super) fn series_bytes(&self, id: u32) -> usize {
        self.record_size(self.off(id)) + ID_BYTES
    }

    /// Bytes available to a push that may evict everything but its group.
    pub fn push_room(&self) -> usize {
        self.capacity() - self.records_start - self.id_count as usize * ID_BYTES
    }

    /// Writes one series of a group being pushed.
    ///
    /// # Errors
    /// [`CacheError::Owned`] when a stream or another group holds the
    /// series; [`CacheError::TooLarge`] when it cannot fit.
    pub fn group_set(
        &mut self,
        group: u32,
        family: &Family,
        key: &[u8],
        value: f64,
        now: u64,
    ) -> Result<(), CacheError> {
        self.group_set_with(group, family, key, None, value, now, Write::replace(0))
    }

    /// Like [`Cache::group_set`], adding or marking for drain as `w` says
    /// (its TTL is the group's); `found` is the series' [`Cache::lookup`]
    /// if the caller made one.
    ///
    /// # Errors
    /// As [`Cache::group_set`].
    #[allow(clippy::too_many_arguments)]
    pub fn group_set_with(
        &mut self,
        group: u32,
        family: &Family,
        key: &[u8],
        found: Option<Lookup>,
        value: f64,
        now: u64,
        w: Write,
    ) -> Result<(), CacheError> {
        let class = self.u8_at(self.off(group) + F_TYPE);
        self.set_owned(group, family, key, found, value, now, w, class)
    }

    /// Looks series `key` up, for [`Cache::owned_by_other`] and a later
    /// [`Cache::group_set_with`].
    pub fn lookup(&self, key: &[u8]) -> Lookup {
        let hash = hash(key);
        let id = self.find(KIND_SERIES, key, hash).unwrap_or(NIL);
        Lookup { hash, id }
    }

    /// Whether the series `found` existed and belongs to someone other than
    /// the group `group` (`None`: the group does not exist yet). By id, not
    /// by grouping labels: a push checks every series it writes.
    #[inline]
    pub fn owned_by_other(&self, found: Lookup, group: Option<u32>) -> bool {
        if found.id == NIL {
            return false;
        }
        let owner = self.field(found.id, F_OWNER);
        owner == NIL || Some(owner) != group
    }

    /// The family record of the series `found`, if it existed. A push
    /// compares it with [`Cache::family_id`] of the family it states, to
    /// know a rewrite leaves the family as it is.
    #[inline]
    pub fn series_family(&self, found: Lookup) -> Option<u32> {
        (found.id != NIL).then(|| self.field(found.id, F_FAMILY))
    }

    /// Writes a new value to the series `found` of the group being pushed,
    /// if `found` still names the series `key` of `group`; `false`, having
    /// written nothing, otherwise.
    ///
    /// This is what [`Cache::group_set_with`] does to a series that exists
    /// in the group and whose family stays as it is, without its searches
    /// and size checks (a push's check counted the series, its family and
    /// the group's bytes against [`Cache::push_room`], which covers them).
    /// The caller makes sure of the family: its check found
    /// [`Cache::series_family`] to be the pushed family's
    /// [`Cache::family_id`], and no series or family was added or removed,
    /// nor a family changed, since ([`Cache::layout`] is the same).
    pub fn group_rewrite(
        &mut self,
        group: u32,
        found: Lookup,
        key: &[u8],
        value: f64,
        now: u64,
        w: Write,
    ) -> bool {
        // Checked although the layout says nothing moved: a wrong write
        // would be silent.
        if !self.is_series(found, key) || self.field(found.id, F_OWNER) != group {
            return false;
        }
        let class = self.u8_at(self.off(group) + F_TYPE);
        self.write_value(found.id, value, now, w, class);
        true
    }

    /// Ends a push: the group lives `ttl_ms` from `now`, pushed at
    /// `unix_now` (seconds).
    pub fn group_close(&mut self, group: u32, now: u64, ttl_ms: u64, unix_now: f64) {
        if let Ok(class) = self.class_for(ttl_ms) {
            self.lru_touch(group, class);
        }
        let off = self.off(group);
        self.set_u64(off + F_VALUE, unix_now.to_bits());
        self.set_u64(off + F_DEADLINE, now.saturating_add(ttl_ms));
        self.pinned_group = NIL;
        self.generation += 1;
    }

    /// Records a failed push to the group `labels`, if it exists.
    pub fn group_failed(&mut self, labels: &[u8], unix_now: f64) {
        if let Some(id) = self.group_find(labels) {
            let off = self.off(id);
            let at = off + HEADER_BYTES + self.u16_at(off + F_KEY_LEN);
            self.set_u64(at, unix_now.to_bits());
            self.generation += 1;
        }
    }

    /// Deletes the group `labels` and its series; whether it existed.
    pub fn group_delete(&mut self, labels: &[u8]) -> bool {
        match self.group_find(labels) {
            Some(id) => {
                self.remove_group(id);
                true
            }
            None => false,
        }
    }
}

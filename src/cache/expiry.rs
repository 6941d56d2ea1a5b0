//! Expiry and eviction order: one write-order list per TTL class.
//!
//! Each list holds the entries (streamed series and pushed groups) of one
//! TTL, least recently written first, linked through the records'
//! `F_PREV`/`F_NEXT`. Within a class, least recently written is also
//! soonest to expire, so the heads of the [`TTL_CLASSES`] lists are all
//! that expiry and eviction look at.
//!
//! # Memory
//! The list heads and tails are a fixed array in [`Cache`]; links live in
//! the records' headers.

use super::{
    Cache, CacheError, F_DEADLINE, F_FIRST, F_KIND, F_NEXT, F_PREV, F_TYPE, KIND_GROUP, NIL,
    TTL_CLASSES,
};

/// One write-order list: the entries (streamed series and groups) of one
/// TTL, least recently written first, so also soonest to expire first.
#[derive(Debug, Clone, Copy)]
pub(super) struct Class {
    pub(super) ttl_ms: u64,
    pub(super) head: u32,
    pub(super) tail: u32,
}

impl Class {
    pub(super) const EMPTY: Class = Class {
        ttl_ms: 0,
        head: NIL,
        tail: NIL,
    };
}

impl Cache {
    pub(super) fn class_of(&self, id: u32) -> usize {
        usize::from(self.u8_at(self.off(id) + F_TYPE)) % TTL_CLASSES
    }

    /// The class of `ttl_ms`, taking a free one if no class has it.
    pub(super) fn class_for(&mut self, ttl_ms: u64) -> Result<u8, CacheError> {
        if let Some(c) = self.classes.iter().position(|c| c.ttl_ms == ttl_ms) {
            return Ok(c as u8);
        }
        let free = self
            .classes
            .iter()
            .position(|c| c.head == NIL)
            .ok_or(CacheError::TooManyTtls)?;
        self.classes[free].ttl_ms = ttl_ms;
        Ok(free as u8)
    }

    pub(super) fn lru_unlink(&mut self, id: u32) {
        let off = self.off(id);
        let c = usize::from(self.u8_at(off + F_TYPE)) % TTL_CLASSES;
        let prev = self.u32_at(off + F_PREV);
        let next = self.u32_at(off + F_NEXT);
        if prev == NIL {
            self.classes[c].head = next;
        } else {
            self.set_field(prev, F_NEXT, next);
        }
        if next == NIL {
            self.classes[c].tail = prev;
        } else {
            self.set_field(next, F_PREV, prev);
        }
    }

    pub(super) fn lru_push_tail(&mut self, id: u32, class: u8) {
        let off = self.off(id);
        let c = usize::from(class);
        let tail = self.classes[c].tail;
        self.mem[off + F_TYPE] = class;
        self.set_u32(off + F_PREV, tail);
        self.set_u32(off + F_NEXT, NIL);
        if tail == NIL {
            self.classes[c].head = id;
        } else {
            self.set_field(tail, F_NEXT, id);
        }
        self.classes[c].tail = id;
    }

    /// Moves an entry to the tail of `class` (it was just written).
    pub(super) fn lru_touch(&mut self, id: u32, class: u8) {
        if usize::from(class) != self.class_of(id) || self.classes[usize::from(class)].tail != id {
            self.lru_unlink(id);
            self.lru_push_tail(id, class);
        }
    }

    /// The entry to reclaim first, sparing the group being pushed: an
    /// expired one if any (`true`), else the least recently written.
    pub(super) fn oldest_entry(&self, now: u64) -> Option<(u32, bool)> {
        let mut best: Option<(u32, u64)> = None;
        for c in &self.classes {
            let head = c.head;
            if head == NIL || head == self.pinned_group {
                continue;
            }
            let deadline = self.deadline(head);
            if deadline <= now {
                return Some((head, true));
            }
            let written = deadline.saturating_sub(c.ttl_ms);
            if best.is_none_or(|(_, w)| written < w) {
                best = Some((head, written));
            }
        }
        best.map(|(id, _)| (id, false))
    }

    /// Calls `f` on every series (streamed and pushed); `f` may remove the
    /// series it is given, and nothing else.
    pub(super) fn for_each_series(&mut self, mut f: impl FnMut(&mut Self, u32)) {
        for c in 0..TTL_CLASSES {
            let mut entry = self.classes[c].head;
            while entry != NIL {
                let next_entry = self.field(entry, F_NEXT);
                if self.u8_at(self.off(entry) + F_KIND) == KIND_GROUP {
                    let mut id = self.field(entry, F_FIRST);
                    while id != NIL {
                        let next = self.field(id, F_NEXT);
                        f(self, id);
                        id = next;
                    }
                } else {
                    f(self, entry);
                }
                entry = next_entry;
            }
        }
    }

    pub(super) fn deadline(&self, id: u32) -> u64 {
        self.u64_at(self.off(id) + F_DEADLINE)
    }

    /// Removes every series and group whose deadline is at or before `now`.
    pub fn expire(&mut self, now: u64) {
        for c in 0..TTL_CLASSES {
            while self.classes[c].head != NIL && self.deadline(self.classes[c].head) <= now {
                self.stats.evicted_ttl += self.remove_entry(self.classes[c].head);
            }
        }
    }

    /// When the next series expires, if any: the event loop's poll timeout.
    pub fn next_deadline(&self) -> Option<u64> {
        self.classes
            .iter()
            .filter(|c| c.head != NIL)
            .map(|c| self.deadline(c.head))
            .min()
    }

    /// Appends the ids of all live series to `out`.
    pub fn series_ids(&self, out: &mut Vec<u32>) {
        for c in &self.classes {
            let mut id = c.head;
            while id != NIL {
                if self.u8_at(self.off(id) + F_KIND) == KIND_GROUP {
                    let mut s = self.field(id, F_FIRST);
                    while s != NIL {
                        out.push(s);
                        s = self.field(s, F_NEXT);
                    }
                } else {
                    out.push(id);
                }
                id = self.field(id, F_NEXT);
            }
        }
    }

    /// Appends the ids of all pushed groups to `out`.
    pub fn group_ids(&self, out: &mut Vec<u32>) {
        for c in &self.classes {
            let mut id = c.head;
            while id != NIL {
                if self.u8_at(self.off(id) + F_KIND) == KIND_GROUP {
                    out.push(id);
                }
                id = self.field(id, F_NEXT);
            }
        }
    }

    /// Removes everything; returns how many series.
    pub fn wipe(&mut self) -> u64 {
        let mut removed = 0;
        for c in 0..TTL_CLASSES {
            while self.classes[c].head != NIL {
                removed += self.remove_entry(self.classes[c].head);
            }
        }
        removed
    }
}

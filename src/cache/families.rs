//! Families: one record per metric family (its name, TYPE and HELP),
//! shared by its series and counting them; it goes with its last series.
//!
//! # Memory
//! A family record costs `HEADER_BYTES + name + HELP`, padded to 8, plus
//! an id, in the budget.

use super::arena::align8;
use super::index::hash;
use super::{
    Cache, CacheError, F_FAMILY, F_HELP_LEN, F_KEY_LEN, F_TYPE, Family, HEADER_BYTES, KIND_FAMILY,
};
use crate::bytes;
use crate::exposition::MetricType;

impl Cache {
    /// The type of family `name`, if the cache holds it.
    pub fn family_type(&self, name: &str) -> Option<MetricType> {
        let key = name.as_bytes();
        self.find(KIND_FAMILY, key, hash(key))
            .map(|id| MetricType::from_code(self.u8_at(self.off(id) + F_TYPE)))
    }

    /// Whether family record `id` is `family` as its pusher states it: same
    /// name and type, and same HELP unless the pusher keeps the HELP.
    pub(super) fn family_is(&self, id: u32, family: &Family) -> bool {
        bytes::eq(self.key(id), family.name.as_bytes())
            && self.u8_at(self.off(id) + F_TYPE) == family.kind.code()
            && family
                .help
                .is_none_or(|help| help.as_bytes() == self.family_help(id))
    }

    /// The id of the family record that is `family` as stated (see
    /// [`Cache::series_family`]), if the cache holds one.
    pub fn family_id(&self, family: &Family) -> Option<u32> {
        let key = family.name.as_bytes();
        self.find(KIND_FAMILY, key, hash(key))
            .filter(|&id| self.family_is(id, family))
    }

    pub(super) fn family_help(&self, id: u32) -> &[u8] {
        let off = self.off(id);
        let start = off + HEADER_BYTES + self.u16_at(off + F_KEY_LEN);
        &self.mem[start..start + self.u32_at(off + F_HELP_LEN) as usize]
    }

    /// Finds or creates the family and brings its TYPE and HELP up to date;
    /// returns its id with one extra reference, so that evicting for the
    /// series about to be written cannot remove it.
    pub(super) fn pin_family(&mut self, family: &Family, now: u64) -> Result<u32, CacheError> {
        let key = family.name.as_bytes();
        let h = hash(key);
        let id = match self.find(KIND_FAMILY, key, h) {
            Some(id) => {
                if MetricType::from_code(self.u8_at(self.off(id) + F_TYPE)) != family.kind {
                    // A redefined metric: its old series belong to the old
                    // type and would make the page invalid.
                    self.drop_family_series(id);
                    return self.pin_family(family, now);
                }
                id
            }
            None => {
                let help = family.help.unwrap_or("").as_bytes();
                let off = self.make_room(align8(HEADER_BYTES + key.len() + help.len()), now)?;
                let id = self.alloc(KIND_FAMILY, key, help, h, off);
                let off = self.off(id);
                self.mem[off + F_TYPE] = family.kind.code();
                self.set_u32(off + F_HELP_LEN, help.len() as u32);
                self.families += 1;
                self.generation += 1;
                self.layout += 1;
                id
            }
        };
        self.set_field(id, F_FAMILY, self.field(id, F_FAMILY) + 1);
        if let Some(help) = family.help
            && help.as_bytes() != self.family_help(id)
            && let Err(e) = self.rewrite_family(id, help.as_bytes(), now)
        {
            self.unpin_family(id);
            return Err(e);
        }
        Ok(id)
    }

    pub(super) fn unpin_family(&mut self, id: u32) {
        let count = self.field(id, F_FAMILY) - 1;
        self.set_field(id, F_FAMILY, count);
        if count == 0 {
            self.release(id);
            self.families -= 1;
        }
    }

    /// Moves a family record to new space with a new HELP text.
    pub(super) fn rewrite_family(
        &mut self,
        id: u32,
        help: &[u8],
        now: u64,
    ) -> Result<(), CacheError> {
        let name_len = self.key(id).len();
        let size = align8(HEADER_BYTES + name_len + help.len());
        // The relocation needs no new id: make_room's id allowance is spare.
        let new = self.make_room(size, now)?;
        // Read after make_room: a compaction may have moved the record.
        let old = self.off(id);
        self.mem
            .copy_within(old..old + HEADER_BYTES + name_len, new);
        self.mem[new + HEADER_BYTES + name_len..new + HEADER_BYTES + name_len + help.len()]
            .copy_from_slice(help);
        self.free_bytes(old);
        let slot = self.id_slot(id);
        self.set_u32(slot, new as u32);
        self.set_u32(new + F_HELP_LEN, help.len() as u32);
        self.generation += 1;
        self.layout += 1;
        Ok(())
    }

    pub(super) fn drop_family_series(&mut self, family: u32) {
        // Pin so the family record survives while its series go.
        self.set_field(family, F_FAMILY, self.field(family, F_FAMILY) + 1);
        self.for_each_series(|c, id| {
            if c.field(id, F_FAMILY) == family {
                c.remove_series(id);
            }
        });
        self.unpin_family(family);
    }

    /// Removes the series of family `name` whose key `matches`; returns how
    /// many.
    pub fn delete_family(&mut self, name: &str, matches: impl Fn(&[u8]) -> bool) -> u64 {
        let key = name.as_bytes();
        let Some(fid) = self.find(KIND_FAMILY, key, hash(key)) else {
            return 0;
        };
        let mut removed = 0;
        // Pin, so that removing its last series cannot free the id under us.
        self.set_field(fid, F_FAMILY, self.field(fid, F_FAMILY) + 1);
        self.for_each_series(|c, id| {
            if c.field(id, F_FAMILY) == fid && matches(c.key(id)) {
                c.remove_series(id);
                removed += 1;
            }
        });
        self.unpin_family(fid);
        removed
    }
}

//! The series cache: the latest value of every series, each kept for a TTL
//! after its last write, in a byte budget reserved once at start-up.
//!
//! # Memory
//! The whole cache is one `Vec<u8>` of exactly `--cache-bytes`, allocated in
//! [`Cache::new`] and never grown. Everything the cache holds lives in it:
//!
//! ```text
//! [ bucket heads | records (grow up) ->   free   <- id table (grows down) ]
//! ```
//!
//! * bucket heads: the hash index, a fixed array of `u32` ids (more than
//!   1/32 of the budget, at most 1/16);
//! * records: one per series and one per metric family, each a
//!   [`HEADER_BYTES`] header followed by the key (canonical
//!   `name{label="value",...}` for a series, the name for a family) and, for
//!   a family, its HELP text; padded to 8 bytes;
//! * id table: 4 bytes per record id, mapping stable ids to record offsets,
//!   so records can be moved (compacted, resized) while links between them
//!   use ids.
//!
//! A series costs `HEADER_BYTES + key + padding + 4` bytes; a family the same
//! plus its HELP text. [`Cache::used`] counts all of it plus the index.
//! A removed record leaves a hole among the records, which the next record
//! that fits takes (`arena`); holes count as free in [`Cache::used`].
//!
//! # Eviction order
//! When a new record does not fit in the free space or in a hole: expired
//! entries are reclaimed first, then, if the holes add up to at least
//! 1/[`COMPACT_DEAD_DIVISOR`] of the budget and compacting them would make
//! room, the records are compacted; else the least recently written entry
//! (a streamed series, or a pushed group with its series) is evicted and
//! the record tried again. So a record is placed as soon as an evicted
//! one's space (or an earlier hole) holds it, and at most 1/8 of the budget
//! is given up to holes, evicted ahead of need, before compacting; when
//! nothing is left to evict, the holes are compacted whatever they add up
//! to. A family goes with its last series. A record larger than the whole
//! budget is refused with [`CacheError::TooLarge`] and nothing is evicted
//! for it.
//!
//! Within one TTL the least recently written entry is also the first to
//! expire: one list per TTL ordered by write time (`expiry`) serves both
//! expiry and eviction.
//!
//! # Cost
//! A write of an existing series is a lookup and a few header writes. A new
//! series at a full budget costs its eviction (O(1)) plus, amortised, at
//! most 8 bytes moved by compaction per byte written ([`COMPACT_DEAD_DIVISOR`]);
//! [`CacheStats::records_moved`] counts the moves.
//!
//! # Modules
//! `arena` (bytes, id table, holes, compaction), `index` (hash buckets),
//! `expiry` (write-order lists, expiry, eviction candidates), `families`,
//! `groups` (pushed groups), `drain` (drain on scrape), `entries` (the
//! contents in write order, for snapshots).
//!
//! Time is passed in (`now`, milliseconds on a monotonic clock) so that
//! tests drive expiry without sleeping.

use std::fmt;

use crate::exposition::MetricType;

mod arena;
mod drain;
mod entries;
mod expiry;
mod families;
mod groups;
mod index;

pub use arena::{COMPACT_DEAD_DIVISOR, MIN_RECORD_BYTES};
pub use entries::{ByWrite, EntryView};
pub use index::hash;

use arena::{HOLE_BITMAP_WORDS, HOLE_CLASSES, align8};
use expiry::Class;

/// Header of every record, in bytes.
pub const HEADER_BYTES: usize = 56;

/// Most distinct TTLs in use at once (`--ttl`, `Push-TTL`, `# TTL`). Each
/// TTL keeps its own write-order list, so expiry stays exact and cheap.
pub const TTL_CLASSES: usize = 8;

/// Failed deliveries after which a drain-on-scrape series is dropped.
pub const DRAIN_ATTEMPTS: u8 = 3;

/// Bytes of the id table per record.
pub const ID_BYTES: usize = 4;

/// Smallest possible record plus its id, used to size the renderer's
/// scratch space for the most series a budget can hold.
pub const MIN_SERIES_BYTES: usize = HEADER_BYTES + 8 + ID_BYTES;

const NIL: u32 = u32::MAX;
/// Marks a free slot of the id table; the rest is the next free id.
const FREE: u32 = 1 << 31;
/// The end of the free-id list inside a free slot.
const FREE_END: u32 = FREE - 1;

const KIND_DEAD: u8 = 0;
const KIND_SERIES: u8 = 1;
const KIND_FAMILY: u8 = 2;
const KIND_GROUP: u8 = 3;

// Header field offsets.
const F_KIND: usize = 0;
/// Family: its metric type. Series or group: its TTL class.
const F_TYPE: usize = 1;
const F_KEY_LEN: usize = 2;
const F_HASH: usize = 4;
const F_ID: usize = 8;
const F_BUCKET_NEXT: usize = 12;
const F_PREV: usize = 16;
const F_NEXT: usize = 20;
/// Series: its family id. Family: its number of series.
const F_FAMILY: usize = 24;
/// Family: length of its HELP text.
const F_HELP_LEN: usize = 28;
/// Series: the group that pushed it, or `NIL` for a streamed series.
const F_OWNER: usize = 28;
/// Group: its first series (F_FAMILY's slot; groups have no family).
const F_FIRST: usize = 24;
/// Group: bytes after its key holding the last failed push time.
const GROUP_EXTRA_BYTES: usize = 8;
/// Series: its value. Dead record: its size.
const F_VALUE: usize = 32;
const F_DEADLINE: usize = 40;
/// Series: the page that last included it while it is drain-on-scrape.
const F_DRAIN_PAGE: usize = 48;
/// Group: bytes its series take (records and ids), kept as they are
/// linked and unlinked so that a push sizes itself without a walk.
const F_GROUP_BYTES: usize = 48;
/// Series: failed deliveries of that page.
const F_DRAIN_TRIES: usize = 52;
/// Series: bit 0, drain on scrape; bit 1, stale (replaced by the push under
/// way unless written again).
const F_FLAGS: usize = 53;
const FLAG_STALE: u8 = 2;

/// Why a write was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CacheError {
    /// The series (with its family) is larger than the whole budget.
    TooLarge,
    /// The series exists and belongs to another pusher (a group, or the
    /// stream protocol).
    Owned,
    /// Every TTL class is taken by other TTLs.
    TooManyTtls,
}

impl fmt::Display for CacheError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CacheError::TooLarge => f.write_str(
                "larger than the whole cache budget: shorten the labels, push less, or raise --cache-bytes",
            ),
            CacheError::Owned => f.write_str(
                "this series is already pushed by another group or by a stream: give it other labels",
            ),
            CacheError::TooManyTtls => f.write_str(
                "too many different TTLs in use at once (at most 8): push with a TTL already in use",
            ),
        }
    }
}

impl std::error::Error for CacheError {}

/// The family a write belongs to, with what the pusher said of it.
#[derive(Debug, Clone, Copy)]
pub struct Family<'a> {
    pub name: &'a str,
    pub kind: MetricType,
    /// HELP text, escaped; `None` keeps what the family has.
    pub help: Option<&'a str>,
}

/// Counters of what the cache did, for the gateway's own metrics.
#[derive(Debug, Clone, Copy, Default)]
pub struct CacheStats {
    pub evicted_ttl: u64,
    pub evicted_budget: u64,
    /// Drain-on-scrape series removed after a complete delivery.
    pub drained: u64,
    /// Drain-on-scrape series dropped after failed deliveries.
    pub drain_failed: u64,
    /// Compactions of the records (see [`COMPACT_DEAD_DIVISOR`]).
    pub compactions: u64,
    /// Records moved by compactions: the cache's work beyond a write's own.
    pub records_moved: u64,
}

/// How a write treats the series.
#[derive(Debug, Clone, Copy)]
pub struct Write {
    /// The series (streamed) or group (pushed) lives this long.
    pub ttl_ms: u64,
    /// Removed once a scrape that included it is fully sent.
    pub drain: bool,
    /// Add the value to the stored one instead of replacing it.
    pub add: bool,
}

impl Write {
    pub fn replace(ttl_ms: u64) -> Write {
        Write {
            ttl_ms,
            drain: false,
            add: false,
        }
    }
}

/// A series looked up by key: its hash and, when it existed then, its id.
/// A push looks every series up once while checking it and writes through
/// the lookup afterwards. The id is checked again before it is used, so a
/// lookup that the writes in between made stale costs a search, no more.
#[derive(Debug, Clone, Copy)]
pub struct Lookup {
    hash: u32,
    id: u32,
}

/// What the renderer reads of one series.
#[derive(Debug, Clone, Copy)]
pub struct SeriesView<'a> {
    pub key: &'a [u8],
    pub value: f64,
    pub family: u32,
}

/// What the renderer reads of one pushed group.
#[derive(Debug, Clone, Copy)]
pub struct GroupView<'a> {
    /// Grouping labels, canonical: `job="a",instance="b"` sorted by name.
    pub labels: &'a [u8],
    /// Unix time of the last successful push, in seconds.
    pub push_time: f64,
    /// Unix time of the last failed push, or 0.
    pub failure_time: f64,
}

/// What the renderer reads of one family.
#[derive(Debug, Clone, Copy)]
pub struct FamilyView<'a> {
    pub name: &'a [u8],
    pub kind: MetricType,
    pub help: &'a [u8],
}

pub struct Cache {
    mem: Vec<u8>,
    bucket_mask: u32,
    records_start: usize,
    top: usize,
    ids_bottom: usize,
    id_count: u32,
    free_ids: u32,
    /// Bytes of holes and slivers between records (see `arena`).
    dead_bytes: usize,
    /// First hole of each size class (an offset), or `NIL`.
    hole_heads: [u32; HOLE_CLASSES],
    /// Which classes have a hole.
    hole_bitmap: [u64; HOLE_BITMAP_WORDS],
    classes: [Class; TTL_CLASSES],
    series: usize,
    families: usize,
    groups: usize,
    /// The group being pushed, which eviction must spare.
    pinned_group: u32,
    /// Whether a drain-on-scrape series was ever written; spares scrapes
    /// the walk when the mode is unused.
    drain_written: bool,
    generation: u64,
    layout: u64,
    pub stats: CacheStats,
}

impl Cache {
    /// Reserves `budget` bytes; nothing is allocated after this.
    pub fn new(budget: usize) -> Cache {
        // One bucket per 64 bytes, rounded down to a power of two: chains
        // average at most one record for series of 64 bytes or more, so a
        // new series at a full budget misses the CPU caches few times.
        let buckets = 1usize << (budget / 64).max(16).ilog2();
        let records_start = buckets * 4;
        // Zero is an empty bucket (see `index`): the index is not written
        // here, so its pages are mapped only as series use them.
        let mem = vec![0u8; budget];
        Cache {
            mem,
            bucket_mask: (buckets - 1) as u32,
            records_start,
            top: records_start,
            ids_bottom: budget,
            id_count: 0,
            free_ids: NIL,
            dead_bytes: 0,
            classes: [Class::EMPTY; TTL_CLASSES],
            hole_heads: [NIL; HOLE_CLASSES],
            hole_bitmap: [0; HOLE_BITMAP_WORDS],
            series: 0,
            families: 0,
            groups: 0,
            pinned_group: NIL,
            drain_written: false,
            generation: 0,
            layout: 0,
            stats: CacheStats::default(),
        }
    }

    /// The budget in bytes.
    pub fn capacity(&self) -> usize {
        self.mem.len()
    }

    /// Bytes in use: index, live records and id table.
    pub fn used(&self) -> usize {
        self.records_start
            + (self.top - self.records_start - self.dead_bytes)
            + (self.mem.len() - self.ids_bottom)
    }

    pub fn remaining(&self) -> usize {
        self.capacity() - self.used()
    }

    pub fn series_count(&self) -> usize {
        self.series
    }

    pub fn family_count(&self) -> usize {
        self.families
    }

    pub fn group_count(&self) -> usize {
        self.groups
    }

    /// Changes whenever what the cache would render changes.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Changes whenever a series or family is added or removed, or a family's
    /// HELP or TYPE changes: what the renderer's sorted order depends on.
    pub fn layout(&self) -> u64 {
        self.layout
    }

    /// Upper bound on the number of series any budget of this size holds.
    pub fn max_series(&self) -> usize {
        self.capacity() / MIN_SERIES_BYTES + 1
    }

    /// Removes an entry of the write-order list (a streamed series or a
    /// whole group); returns the number of series removed.
    fn remove_entry(&mut self, id: u32) -> u64 {
        if self.u8_at(self.off(id) + F_KIND) == KIND_GROUP {
            self.remove_group(id)
        } else {
            self.remove_series(id);
            1
        }
    }

    fn remove_series(&mut self, id: u32) {
        let owner = self.field(id, F_OWNER);
        if owner == NIL {
            self.lru_unlink(id);
        } else {
            self.group_unlink(owner, id);
        }
        let family = self.field(id, F_FAMILY);
        self.release(id);
        self.series -= 1;
        self.generation += 1;
        self.layout += 1;
        let count = self.field(family, F_FAMILY) - 1;
        self.set_field(family, F_FAMILY, count);
        if count == 0 {
            self.release(family);
            self.families -= 1;
        }
    }

    // ---- the public operations -------------------------------------------

    /// Writes `value` to the series `key` (canonical form) of `family`,
    /// restarting its TTL: it expires at `now + ttl_ms`.
    ///
    /// # Errors
    /// [`CacheError::TooLarge`] if the series and its family cannot fit in
    /// the whole budget; the cache is unchanged then.
    pub fn set(
        &mut self,
        family: &Family,
        key: &[u8],
        value: f64,
        now: u64,
        ttl_ms: u64,
    ) -> Result<(), CacheError> {
        self.set_with(family, key, value, now, Write::replace(ttl_ms))
    }

    /// Writes a new value to a streamed series the cache already holds;
    /// `Ok(false)` when it holds no such series.
    ///
    /// # Errors
    /// [`CacheError::Owned`] when a pushed group holds it,
    /// [`CacheError::TooManyTtls`].
    pub fn rewrite(
        &mut self,
        key: &[u8],
        value: f64,
        now: u64,
        w: Write,
    ) -> Result<bool, CacheError> {
        let Some(id) = self.find(KIND_SERIES, key, hash(key)) else {
            return Ok(false);
        };
        if self.field(id, F_OWNER) != NIL {
            return Err(CacheError::Owned);
        }
        let class = self.class_for(w.ttl_ms)?;
        self.write_value(id, value, now, w, class);
        Ok(true)
    }

    /// Writes a streamed series as `w` says (TTL, drain, add).
    ///
    /// # Errors
    /// As [`Cache::set`], and [`CacheError::Owned`] when a pushed group
    /// holds the series, [`CacheError::TooManyTtls`].
    pub fn set_with(
        &mut self,
        family: &Family,
        key: &[u8],
        value: f64,
        now: u64,
        w: Write,
    ) -> Result<(), CacheError> {
        let class = self.class_for(w.ttl_ms)?;
        self.set_owned(NIL, family, key, None, value, now, w, class)
    }

    #[allow(clippy::too_many_arguments)]
    fn set_owned(
        &mut self,
        owner: u32,
        family: &Family,
        key: &[u8],
        found: Option<Lookup>,
        value: f64,
        now: u64,
        w: Write,
        class: u8,
    ) -> Result<(), CacheError> {
        let (h, existing) = match found {
            Some(found) => (found.hash, self.refind(found, key)),
            None => {
                let h = hash(key);
                (h, self.find(KIND_SERIES, key, h))
            }
        };
        let series_size = align8(HEADER_BYTES + key.len());
        let family_size =
            align8(HEADER_BYTES + family.name.len() + family.help.map_or(0, str::len));
        let fixed = self.records_start + self.id_count as usize * ID_BYTES;
        if key.len() > usize::from(u16::MAX)
            || family.name.len() > usize::from(u16::MAX)
            || series_size + 2 * family_size + 2 * ID_BYTES + fixed > self.capacity()
        {
            return Err(CacheError::TooLarge);
        }
        if let Some(id) = existing {
            // A series has one writer: a stream or one pushed group.
            if self.field(id, F_OWNER) != owner {
                return Err(CacheError::Owned);
            }
            // Fast path: a rewrite of a series whose family is unchanged.
            if self.family_is(self.field(id, F_FAMILY), family) {
                self.write_value(id, value, now, w, class);
                return Ok(());
            }
        }
        let fid = self.pin_family(family, now)?;
        if let Some(id) = self.find(KIND_SERIES, key, h) {
            if self.field(id, F_FAMILY) == fid {
                self.write_value(id, value, now, w, class);
                self.unpin_family(fid);
                return Ok(());
            }
            // The series moved to another family (e.g. `x_sum` joined a
            // summary `x`): drop the old one and insert it anew.
            self.remove_series(id);
        }
        let off = match self.make_room(series_size, now) {
            Ok(off) => off,
            Err(e) => {
                self.unpin_family(fid);
                return Err(e);
            }
        };
        // The pin taken above becomes this series' reference to its family.
        let id = self.alloc(KIND_SERIES, key, &[], h, off);
        self.set_field(id, F_FAMILY, fid);
        self.set_field(id, F_OWNER, owner);
        self.series += 1;
        self.layout += 1;
        if owner == NIL {
            self.lru_push_tail(id, class);
        } else {
            self.group_link(owner, id);
        }
        self.write_value(id, value, now, w, class);
        Ok(())
    }

    fn write_value(&mut self, id: u32, value: f64, now: u64, w: Write, class: u8) {
        let off = self.off(id);
        let value = if w.add {
            f64::from_bits(self.u64_at(off + F_VALUE)) + value
        } else {
            value
        };
        self.set_u64(off + F_VALUE, value.to_bits());
        // A new value has not been delivered yet.
        self.set_u32(off + F_DRAIN_PAGE, 0);
        self.mem[off + F_DRAIN_TRIES] = 0;
        self.mem[off + F_FLAGS] = u8::from(w.drain);
        self.drain_written |= w.drain;
        self.generation += 1;
        if self.u32_at(off + F_OWNER) != NIL {
            // A pushed series lives and dies with its group.
            return;
        }
        self.set_u64(off + F_DEADLINE, now.saturating_add(w.ttl_ms));
        self.lru_touch(id, class);
    }

    /// The value of series `key`, if held and not expired at `now`.
    pub fn get(&self, key: &[u8], now: u64) -> Option<f64> {
        let id = self.find(KIND_SERIES, key, hash(key))?;
        let owner = self.field(id, F_OWNER);
        let deadline = self.deadline(if owner == NIL { id } else { owner });
        (deadline > now).then(|| f64::from_bits(self.u64_at(self.off(id) + F_VALUE)))
    }

    pub fn group(&self, id: u32) -> GroupView<'_> {
        let off = self.off(id);
        let failure_at = off + HEADER_BYTES + self.u16_at(off + F_KEY_LEN);
        GroupView {
            labels: self.key(id),
            push_time: f64::from_bits(self.u64_at(off + F_VALUE)),
            failure_time: f64::from_bits(self.u64_at(failure_at)),
        }
    }

    pub fn series(&self, id: u32) -> SeriesView<'_> {
        let off = self.off(id);
        SeriesView {
            key: self.key(id),
            value: f64::from_bits(self.u64_at(off + F_VALUE)),
            family: self.u32_at(off + F_FAMILY),
        }
    }

    /// The key hash of series `id`, if `id` names a series now: what the
    /// renderer remembers of each series it sorted, to tell an id that
    /// names another series since (ids are reused) from one that does not.
    pub fn series_hash(&self, id: u32) -> Option<u32> {
        if id >= self.id_count || self.u32_at(self.id_slot(id)) & FREE != 0 {
            return None;
        }
        let off = self.off(id);
        (self.u8_at(off + F_KIND) == KIND_SERIES).then(|| self.u32_at(off + F_HASH))
    }

    /// Every id the cache has handed out is below this; never more than
    /// [`Cache::max_series`].
    pub fn id_bound(&self) -> u32 {
        self.id_count
    }

    /// The name of family `id`: [`Cache::family`]'s `name` alone.
    #[inline]
    pub fn family_name(&self, id: u32) -> &[u8] {
        self.key(id)
    }

    pub fn family(&self, id: u32) -> FamilyView<'_> {
        FamilyView {
            name: self.key(id),
            kind: MetricType::from_code(self.u8_at(self.off(id) + F_TYPE)),
            help: self.family_help(id),
        }
    }

    /// Checks the internal invariants; used by tests and the fuzz target.
    pub fn check_invariants(&self) {
        assert!(self.used() <= self.capacity());
        assert!(self.top <= self.ids_bottom);
        let mut ids = Vec::new();
        self.series_ids(&mut ids);
        assert_eq!(ids.len(), self.series);
        let mut families = std::collections::HashMap::new();
        for &id in &ids {
            let s = self.series(id);
            assert_eq!(self.find(KIND_SERIES, s.key, hash(s.key)), Some(id));
            let owner = self.field(id, F_OWNER);
            if owner != NIL {
                assert_eq!(self.u8_at(self.off(owner) + F_KIND), KIND_GROUP);
            }
            *families.entry(s.family).or_insert(0u32) += 1;
        }
        assert_eq!(families.len(), self.families);
        let mut groups = Vec::new();
        self.group_ids(&mut groups);
        for g in groups {
            assert_eq!(self.group_bytes(g), self.group_retained_bytes(g, |_| false));
        }
        for (fam, n) in families {
            assert_eq!(self.field(fam, F_FAMILY), n);
            assert_eq!(self.u8_at(self.off(fam) + F_KIND), KIND_FAMILY);
        }
        self.check_arena();
    }
}

#[cfg(test)]
mod tests;

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
//! * bucket heads: the hash index, a fixed array of `u32` ids (1/16 of the
//!   budget at most);
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
//!
//! # Eviction order
//! When a new record does not fit: expired series are reclaimed first, then
//! the space of removed records is compacted, then the least recently
//! written series are evicted one by one until it fits. A family goes with
//! its last series. A record larger than the whole budget is refused with
//! [`CacheError::TooLarge`] and nothing is evicted for it.
//!
//! Every series has the same TTL, so the least recently written series is
//! also the first to expire: one list ordered by write time serves both
//! expiry and eviction.
//!
//! Time is passed in (`now`, milliseconds on a monotonic clock) so that
//! tests drive expiry without sleeping.

use std::fmt;

use crate::bytes;
use crate::exposition::MetricType;

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

/// One write-order list: the entries (streamed series and groups) of one
/// TTL, least recently written first, so also soonest to expire first.
#[derive(Debug, Clone, Copy)]
struct Class {
    ttl_ms: u64,
    head: u32,
    tail: u32,
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
    dead_bytes: usize,
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

fn align8(n: usize) -> usize {
    (n + 7) & !7
}

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
    /// Reserves `budget` bytes; nothing is allocated after this.
    pub fn new(budget: usize) -> Cache {
        let buckets = (budget / 64).max(16).next_power_of_two() / 2;
        let records_start = buckets * 4;
        let mut mem = vec![0u8; budget];
        for b in mem[..records_start].chunks_exact_mut(4) {
            b.copy_from_slice(&NIL.to_le_bytes());
        }
        Cache {
            mem,
            bucket_mask: (buckets - 1) as u32,
            records_start,
            top: records_start,
            ids_bottom: budget,
            id_count: 0,
            free_ids: NIL,
            dead_bytes: 0,
            classes: [Class {
                ttl_ms: 0,
                head: NIL,
                tail: NIL,
            }; TTL_CLASSES],
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

    // ---- raw field access -------------------------------------------------
    // Always inlined: they are a few instructions each, on every hot path,
    // and opt-level "s" would otherwise leave many of them as calls.

    #[inline(always)]
    fn u8_at(&self, off: usize) -> u8 {
        self.mem[off]
    }
    #[inline(always)]
    fn u16_at(&self, off: usize) -> usize {
        usize::from(u16::from_le_bytes([self.mem[off], self.mem[off + 1]]))
    }
    #[inline(always)]
    fn u32_at(&self, off: usize) -> u32 {
        let b = &self.mem[off..off + 4];
        u32::from_le_bytes([b[0], b[1], b[2], b[3]])
    }
    #[inline(always)]
    fn u64_at(&self, off: usize) -> u64 {
        let mut b = [0u8; 8];
        b.copy_from_slice(&self.mem[off..off + 8]);
        u64::from_le_bytes(b)
    }
    #[inline(always)]
    fn set_u32(&mut self, off: usize, v: u32) {
        self.mem[off..off + 4].copy_from_slice(&v.to_le_bytes());
    }
    #[inline(always)]
    fn set_u64(&mut self, off: usize, v: u64) {
        self.mem[off..off + 8].copy_from_slice(&v.to_le_bytes());
    }

    #[inline(always)]
    fn id_slot(&self, id: u32) -> usize {
        self.mem.len() - ID_BYTES * (id as usize + 1)
    }
    #[inline(always)]
    fn off(&self, id: u32) -> usize {
        self.u32_at(self.id_slot(id)) as usize
    }
    #[inline(always)]
    fn field(&self, id: u32, f: usize) -> u32 {
        self.u32_at(self.off(id) + f)
    }
    #[inline(always)]
    fn set_field(&mut self, id: u32, f: usize, v: u32) {
        let off = self.off(id) + f;
        self.set_u32(off, v);
    }
    #[inline(always)]
    fn key(&self, id: u32) -> &[u8] {
        let off = self.off(id);
        let len = self.u16_at(off + F_KEY_LEN);
        &self.mem[off + HEADER_BYTES..off + HEADER_BYTES + len]
    }
    fn record_size(&self, off: usize) -> usize {
        match self.u8_at(off + F_KIND) {
            KIND_DEAD => self.u32_at(off + F_VALUE) as usize,
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
    #[inline(always)]
    fn bucket(&self, h: u32) -> usize {
        ((h & self.bucket_mask) as usize) * 4
    }

    // ---- index ------------------------------------------------------------

    fn find(&self, kind: u8, key: &[u8], h: u32) -> Option<u32> {
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
    fn refind(&self, found: Lookup, key: &[u8]) -> Option<u32> {
        if self.is_series(found, key) {
            return Some(found.id);
        }
        self.find(KIND_SERIES, key, found.hash)
    }

    /// Whether `found.id` is a live id naming the series `key`.
    #[inline(always)]
    fn is_series(&self, found: Lookup, key: &[u8]) -> bool {
        let id = found.id;
        if id >= self.id_count || self.u32_at(self.id_slot(id)) & FREE != 0 {
            return false;
        }
        let off = self.off(id);
        self.u8_at(off + F_KIND) == KIND_SERIES
            && self.u32_at(off + F_HASH) == found.hash
            && bytes::eq(self.key(id), key)
    }

    fn unlink_bucket(&mut self, id: u32) {
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

    // ---- write-order list -------------------------------------------------

    fn class_of(&self, id: u32) -> usize {
        usize::from(self.u8_at(self.off(id) + F_TYPE)) % TTL_CLASSES
    }

    /// The class of `ttl_ms`, taking a free one if no class has it.
    fn class_for(&mut self, ttl_ms: u64) -> Result<u8, CacheError> {
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

    fn lru_unlink(&mut self, id: u32) {
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

    fn lru_push_tail(&mut self, id: u32, class: u8) {
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
    fn lru_touch(&mut self, id: u32, class: u8) {
        if usize::from(class) != self.class_of(id) || self.classes[usize::from(class)].tail != id {
            self.lru_unlink(id);
            self.lru_push_tail(id, class);
        }
    }

    /// The entry to reclaim first, sparing the group being pushed: an
    /// expired one if any (`true`), else the least recently written.
    fn oldest_entry(&self, now: u64) -> Option<(u32, bool)> {
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
    fn for_each_series(&mut self, mut f: impl FnMut(&mut Self, u32)) {
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

    // ---- space ------------------------------------------------------------

    fn id_cost(&self) -> usize {
        if self.free_ids == NIL { ID_BYTES } else { 0 }
    }

    /// Makes `size` contiguous bytes plus an id available, reclaiming
    /// expired series, compacting and evicting in that order.
    fn ensure_space(&mut self, size: usize, now: u64) -> Result<(), CacheError> {
        loop {
            let need = size + self.id_cost();
            let free = self.ids_bottom - self.top;
            if free >= need {
                return Ok(());
            }
            match self.oldest_entry(now) {
                Some((id, true)) => self.stats.evicted_ttl += self.remove_entry(id),
                _ if free + self.dead_bytes >= need => self.compact(),
                Some((id, false)) => self.stats.evicted_budget += self.remove_entry(id),
                None => return Err(CacheError::TooLarge),
            }
        }
    }

    /// Slides live records down over dead ones; ids keep pointing at them.
    fn compact(&mut self) {
        let mut read = self.records_start;
        let mut write = self.records_start;
        while read < self.top {
            let size = self.record_size(read);
            if self.u8_at(read + F_KIND) != KIND_DEAD {
                let id = self.u32_at(read + F_ID);
                if read != write {
                    self.mem.copy_within(read..read + size, write);
                }
                let slot = self.id_slot(id);
                self.set_u32(slot, write as u32);
                write += size;
            }
            read += size;
        }
        self.top = write;
        self.dead_bytes = 0;
    }

    /// Writes a new record header and key at the top; the caller has made
    /// room with `ensure_space`.
    fn alloc(&mut self, kind: u8, key: &[u8], extra: &[u8], h: u32) -> u32 {
        let id = if self.free_ids != NIL {
            let id = self.free_ids;
            let next = self.u32_at(self.id_slot(id)) & !FREE;
            self.free_ids = if next == FREE_END { NIL } else { next };
            id
        } else {
            let id = self.id_count;
            self.id_count += 1;
            self.ids_bottom -= ID_BYTES;
            id
        };
        let off = self.top;
        let size = align8(HEADER_BYTES + key.len() + extra.len());
        self.top += size;
        let slot = self.id_slot(id);
        self.set_u32(slot, off as u32);
        self.mem[off..off + HEADER_BYTES].fill(0);
        self.mem[off + F_KIND] = kind;
        self.mem[off + F_KEY_LEN..off + F_KEY_LEN + 2]
            .copy_from_slice(&(key.len() as u16).to_le_bytes());
        self.set_u32(off + F_HASH, h);
        self.set_u32(off + F_ID, id);
        self.mem[off + HEADER_BYTES..off + HEADER_BYTES + key.len()].copy_from_slice(key);
        let extra_at = off + HEADER_BYTES + key.len();
        self.mem[extra_at..extra_at + extra.len()].copy_from_slice(extra);
        let bucket = self.bucket(h);
        let head = self.u32_at(bucket);
        self.set_u32(off + F_BUCKET_NEXT, head);
        self.set_u32(bucket, id);
        id
    }

    /// Frees a record's bytes and its id.
    fn release(&mut self, id: u32) {
        self.unlink_bucket(id);
        let off = self.off(id);
        let size = self.record_size(off);
        if off + size == self.top {
            self.top = off;
        } else {
            self.mem[off + F_KIND] = KIND_DEAD;
            self.set_u32(off + F_VALUE, size as u32);
            self.dead_bytes += size;
        }
        let slot = self.id_slot(id);
        let next = if self.free_ids == NIL {
            FREE_END
        } else {
            self.free_ids
        };
        self.set_u32(slot, FREE | next);
        self.free_ids = id;
    }

    fn deadline(&self, id: u32) -> u64 {
        self.u64_at(self.off(id) + F_DEADLINE)
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

    // ---- families ---------------------------------------------------------

    /// The type of family `name`, if the cache holds it.
    pub fn family_type(&self, name: &str) -> Option<MetricType> {
        let key = name.as_bytes();
        self.find(KIND_FAMILY, key, hash(key))
            .map(|id| MetricType::from_code(self.u8_at(self.off(id) + F_TYPE)))
    }

    /// Whether family record `id` is `family` as its pusher states it: same
    /// name and type, and same HELP unless the pusher keeps the HELP.
    fn family_is(&self, id: u32, family: &Family) -> bool {
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

    fn family_help(&self, id: u32) -> &[u8] {
        let off = self.off(id);
        let start = off + HEADER_BYTES + self.u16_at(off + F_KEY_LEN);
        &self.mem[start..start + self.u32_at(off + F_HELP_LEN) as usize]
    }

    /// Finds or creates the family and brings its TYPE and HELP up to date;
    /// returns its id with one extra reference, so that evicting for the
    /// series about to be written cannot remove it.
    fn pin_family(&mut self, family: &Family, now: u64) -> Result<u32, CacheError> {
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
                self.ensure_space(align8(HEADER_BYTES + key.len() + help.len()), now)?;
                let id = self.alloc(KIND_FAMILY, key, help, h);
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

    fn unpin_family(&mut self, id: u32) {
        let count = self.field(id, F_FAMILY) - 1;
        self.set_field(id, F_FAMILY, count);
        if count == 0 {
            self.release(id);
            self.families -= 1;
        }
    }

    /// Moves a family record to new space with a new HELP text.
    fn rewrite_family(&mut self, id: u32, help: &[u8], now: u64) -> Result<(), CacheError> {
        let name_len = self.key(id).len();
        let size = align8(HEADER_BYTES + name_len + help.len());
        // The relocation needs no new id: ensure_space's id allowance is spare.
        self.ensure_space(size, now)?;
        let old = self.off(id);
        let new = self.top;
        self.mem
            .copy_within(old..old + HEADER_BYTES + name_len, new);
        self.mem[new + HEADER_BYTES + name_len..new + HEADER_BYTES + name_len + help.len()]
            .copy_from_slice(help);
        self.top += size;
        let old_size = self.record_size(old);
        self.mem[old + F_KIND] = KIND_DEAD;
        self.set_u32(old + F_VALUE, old_size as u32);
        self.dead_bytes += old_size;
        let slot = self.id_slot(id);
        self.set_u32(slot, new as u32);
        self.set_u32(new + F_HELP_LEN, help.len() as u32);
        self.generation += 1;
        self.layout += 1;
        Ok(())
    }

    fn drop_family_series(&mut self, family: u32) {
        // Pin so the family record survives while its series go.
        self.set_field(family, F_FAMILY, self.field(family, F_FAMILY) + 1);
        self.for_each_series(|c, id| {
            if c.field(id, F_FAMILY) == family {
                c.remove_series(id);
            }
        });
        self.unpin_family(family);
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
        if let Err(e) = self.ensure_space(series_size, now) {
            self.unpin_family(fid);
            return Err(e);
        }
        // The pin taken above becomes this series' reference to its family.
        let id = self.alloc(KIND_SERIES, key, &[], h);
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

    // ---- drain on scrape --------------------------------------------------

    /// Notes that page `page` includes the drain-on-scrape series among
    /// `ids`; whether there was any.
    pub fn mark_scraped(&mut self, ids: &[u32], page: u32) -> bool {
        if !self.drain_written {
            return false;
        }
        let mut any = false;
        for &id in ids {
            let off = self.off(id);
            if self.u8_at(off + F_FLAGS) & 1 != 0 {
                self.set_u32(off + F_DRAIN_PAGE, page);
                any = true;
            }
        }
        any
    }

    /// Page `page` reached its scraper whole: its drain-on-scrape series
    /// (not rewritten since) are removed.
    pub fn drain_delivered(&mut self, page: u32) {
        self.for_each_series(|c, id| {
            if c.u32_at(c.off(id) + F_DRAIN_PAGE) == page {
                c.remove_series(id);
                c.stats.drained += 1;
            }
        });
    }

    /// Page `page` was not fully sent: its series wait for another scrape,
    /// up to [`DRAIN_ATTEMPTS`] failures.
    pub fn drain_failed(&mut self, page: u32) {
        self.for_each_series(|c, id| {
            let off = c.off(id);
            if c.u32_at(off + F_DRAIN_PAGE) == page {
                c.set_u32(off + F_DRAIN_PAGE, 0);
                let tries = c.u8_at(off + F_DRAIN_TRIES) + 1;
                c.mem[off + F_DRAIN_TRIES] = tries;
                if tries >= DRAIN_ATTEMPTS {
                    c.remove_series(id);
                    c.stats.drain_failed += 1;
                }
            }
        });
    }

    // ---- deleting ---------------------------------------------------------

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

    pub fn family(&self, id: u32) -> FamilyView<'_> {
        FamilyView {
            name: self.key(id),
            kind: MetricType::from_code(self.u8_at(self.off(id) + F_TYPE)),
            help: self.family_help(id),
        }
    }

    // ---- pushed groups ----------------------------------------------------

    fn group_link(&mut self, group: u32, id: u32) {
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

    fn group_unlink(&mut self, group: u32, id: u32) {
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

    fn remove_group(&mut self, group: u32) -> u64 {
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
                self.ensure_space(size, now)?;
                let id = self.alloc(KIND_GROUP, labels, &0f64.to_bits().to_le_bytes(), h);
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

    /// Bytes the series of `group` take, ids included.
    pub fn group_bytes(&self, group: u32) -> usize {
        self.field(group, F_GROUP_BYTES) as usize
    }

    /// What series `id` costs: its record and its id.
    fn series_bytes(&self, id: u32) -> usize {
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
        let mut live = 0;
        let mut off = self.records_start;
        while off < self.top {
            let size = self.record_size(off);
            if self.u8_at(off + F_KIND) != KIND_DEAD {
                live += size;
            }
            off += size;
        }
        assert_eq!(off, self.top);
        assert_eq!(live, self.top - self.records_start - self.dead_bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(name: &str) -> Family<'_> {
        Family {
            name,
            kind: MetricType::Untyped,
            help: None,
        }
    }

    fn set(c: &mut Cache, key: &str, v: f64, now: u64) {
        let name = key.split('{').next().unwrap();
        c.set(&fam(name), key.as_bytes(), v, now, 1000).unwrap();
        c.check_invariants();
    }

    #[test]
    fn write_replaces_value_and_restarts_ttl() {
        let mut c = Cache::new(4096);
        set(&mut c, "a", 1.0, 0);
        set(&mut c, "a", 2.0, 900);
        assert_eq!(c.get(b"a", 1500), Some(2.0));
        assert_eq!(c.series_count(), 1);
        assert_eq!(c.get(b"a", 1900), None);
    }

    #[test]
    fn expiry_frees_bytes_for_reuse() {
        let mut c = Cache::new(4096);
        let empty = c.used();
        set(&mut c, "a{x=\"1\"}", 1.0, 0);
        set(&mut c, "b", 1.0, 500);
        assert_eq!(c.next_deadline(), Some(1000));
        c.expire(1000);
        assert_eq!(c.get(b"a{x=\"1\"}", 1000), None);
        assert_eq!(c.series_count(), 1);
        assert_eq!(c.next_deadline(), Some(1500));
        c.expire(1500);
        c.check_invariants();
        assert_eq!(c.series_count(), 0);
        assert_eq!(c.family_count(), 0);
        // Only the id table's high-water mark remains.
        assert_eq!(c.used(), empty + 4 * ID_BYTES);
        assert_eq!(c.stats.evicted_ttl, 2);
    }

    #[test]
    fn evicts_least_recently_written_first() {
        let mut c = Cache::new(1024);
        let mut n = 0;
        while c.stats.evicted_budget == 0 {
            set(&mut c, &format!("s{n}"), n as f64, 0);
            assert!(c.used() <= c.capacity());
            n += 1;
        }
        // s0 went first; rewriting s1 makes s2 the next to go.
        assert_eq!(c.get(b"s0", 0), None);
        set(&mut c, "s1", 1.0, 0);
        set(&mut c, &format!("s{n}"), 0.0, 0);
        assert_eq!(c.get(b"s1", 0), Some(1.0));
        assert_eq!(c.get(b"s2", 0), None);
        assert_eq!(c.stats.evicted_budget, 2);
    }

    #[test]
    fn expired_series_are_reclaimed_before_live_ones_are_evicted() {
        let mut c = Cache::new(1024);
        set(&mut c, "old", 1.0, 0);
        let mut n = 0;
        while c.stats.evicted_ttl + c.stats.evicted_budget == 0 {
            set(&mut c, &format!("s{n}"), 0.0, 2000);
            n += 1;
        }
        assert_eq!(c.stats.evicted_ttl, 1);
        assert_eq!(c.stats.evicted_budget, 0);
    }

    #[test]
    fn too_large_is_refused_without_evicting() {
        let mut c = Cache::new(1024);
        set(&mut c, "keep", 1.0, 0);
        let key = format!("big{{l=\"{}\"}}", "v".repeat(2000));
        assert_eq!(
            c.set(&fam("big"), key.as_bytes(), 1.0, 0, 1000),
            Err(CacheError::TooLarge)
        );
        assert_eq!(c.get(b"keep", 0), Some(1.0));
        c.check_invariants();
    }

    #[test]
    fn budget_never_exceeded_under_churn() {
        let mut c = Cache::new(2048);
        for i in 0..5000u64 {
            let key = format!("m{}{{l=\"{}\"}}", i % 7, "x".repeat((i * 13 % 90) as usize));
            let name = key.split('{').next().unwrap().to_string();
            let help = format!("help {}", "h".repeat((i % 50) as usize));
            let family = Family {
                name: &name,
                kind: MetricType::Gauge,
                help: Some(&help),
            };
            c.set(&family, key.as_bytes(), i as f64, i, 300).unwrap();
            if i % 97 == 0 {
                c.expire(i);
            }
            c.check_invariants();
            assert_eq!(c.get(key.as_bytes(), i), Some(i as f64));
        }
    }

    #[test]
    fn help_and_type_go_with_the_family() {
        let mut c = Cache::new(4096);
        let f = Family {
            name: "h",
            kind: MetricType::Histogram,
            help: Some("latency"),
        };
        c.set(&f, b"h_bucket{le=\"1\"}", 1.0, 0, 1000).unwrap();
        c.set(&f, b"h_sum", 1.0, 10, 1000).unwrap();
        assert_eq!(c.family_count(), 1);
        assert_eq!(c.family_type("h"), Some(MetricType::Histogram));
        let mut ids = Vec::new();
        c.series_ids(&mut ids);
        let fv = c.family(c.series(ids[0]).family);
        assert_eq!((fv.name, fv.help), (&b"h"[..], &b"latency"[..]));
        c.expire(1000);
        assert_eq!(c.family_type("h"), Some(MetricType::Histogram));
        c.expire(1010);
        assert_eq!(c.family_type("h"), None);
        c.check_invariants();
    }

    #[test]
    fn redefining_the_type_drops_the_old_series() {
        let mut c = Cache::new(4096);
        let counter = Family {
            name: "x",
            kind: MetricType::Counter,
            help: None,
        };
        let gauge = Family {
            name: "x",
            kind: MetricType::Gauge,
            help: None,
        };
        c.set(&counter, b"x{a=\"1\"}", 1.0, 0, 1000).unwrap();
        c.set(&gauge, b"x{a=\"2\"}", 2.0, 0, 1000).unwrap();
        assert_eq!(c.get(b"x{a=\"1\"}", 0), None);
        assert_eq!(c.family_type("x"), Some(MetricType::Gauge));
        assert_eq!(c.series_count(), 1);
        c.check_invariants();
    }

    #[test]
    fn a_family_held_elsewhere_is_one_with_series_outside_the_group() {
        let mut c = Cache::new(8192);
        let f = Family {
            name: "m",
            kind: MetricType::Counter,
            help: None,
        };
        let a = c.group_open(b"job=\"a\"", 0, 1000).unwrap();
        c.group_set(a, &f, b"m{job=\"a\"}", 1.0, 0).unwrap();
        c.group_close(a, 0, 1000, 1.0);
        assert!(!c.family_held_elsewhere("m", Some(a)));
        assert!(c.family_held_elsewhere("m", None));
        assert!(!c.family_held_elsewhere("other", Some(a)));
        let b = c.group_open(b"job=\"b\"", 0, 1000).unwrap();
        c.group_close(b, 0, 1000, 1.0);
        assert!(c.family_held_elsewhere("m", Some(b)));
        c.set(&f, b"m{s=\"1\"}", 1.0, 0, 1000).unwrap();
        assert!(c.family_held_elsewhere("m", Some(a)));
    }
}

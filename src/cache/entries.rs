//! The cache's contents for a snapshot: its entries (streamed series and
//! pushed groups) in the order they were written, with their TTL and
//! deadline, and the drain state of a series. Re-inserting goes through the
//! ordinary writes ([`Cache::set_with`], [`Cache::group_open`] ...) in the
//! same order, so that the cache's own eviction keeps the most recently
//! written entries when the budget is smaller; only the drain failure count
//! needs an accessor of its own ([`Cache::set_drain_tries`]).
//!
//! # Memory
//! None: [`ByWrite`] walks the [`TTL_CLASSES`] write-order lists with one
//! cursor each.

use super::index::hash;
use super::{
    Cache, F_DRAIN_TRIES, F_FLAGS, F_KIND, F_NEXT, KIND_GROUP, KIND_SERIES, NIL, TTL_CLASSES,
};

/// One entry of the write-order lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryView {
    pub id: u32,
    /// A pushed group (its series: [`Cache::group_series`]), else a
    /// streamed series.
    pub group: bool,
    pub ttl_ms: u64,
    /// When it expires, on the cache's clock (`u64::MAX` for a group whose
    /// first push is under way).
    pub deadline: u64,
}

/// The entries, least recently written first: a merge of the write-order
/// lists, each already in that order.
pub struct ByWrite<'a> {
    cache: &'a Cache,
    next: [u32; TTL_CLASSES],
}

impl Iterator for ByWrite<'_> {
    type Item = EntryView;

    fn next(&mut self) -> Option<EntryView> {
        let c = &self.cache;
        let mut best: Option<(usize, u64)> = None;
        for (class, &id) in self.next.iter().enumerate() {
            if id == NIL {
                continue;
            }
            let written = c.deadline(id).saturating_sub(c.classes[class].ttl_ms);
            if best.is_none_or(|(_, w)| written < w) {
                best = Some((class, written));
            }
        }
        let (class, _) = best?;
        let id = self.next[class];
        self.next[class] = c.field(id, F_NEXT);
        Some(EntryView {
            id,
            group: c.u8_at(c.off(id) + F_KIND) == KIND_GROUP,
            ttl_ms: c.classes[class].ttl_ms,
            deadline: c.deadline(id),
        })
    }
}

impl Cache {
    /// Every streamed series and pushed group, least recently written first.
    pub fn entries_by_write(&self) -> ByWrite<'_> {
        ByWrite {
            cache: self,
            next: self.classes.map(|c| c.head),
        }
    }

    /// Series `id`'s drain state: whether it is drain-on-scrape, and its
    /// failed deliveries so far.
    pub fn series_drain(&self, id: u32) -> (bool, u8) {
        let off = self.off(id);
        (
            self.u8_at(off + F_FLAGS) & 1 != 0,
            self.u8_at(off + F_DRAIN_TRIES),
        )
    }

    /// Sets the failed deliveries of series `key` (restoring a snapshot);
    /// whether the cache holds it.
    pub fn set_drain_tries(&mut self, key: &[u8], tries: u8) -> bool {
        let Some(id) = self.find(KIND_SERIES, key, hash(key)) else {
            return false;
        };
        let off = self.off(id);
        self.mem[off + F_DRAIN_TRIES] = tries;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Family, Write};
    use super::*;
    use crate::exposition::MetricType;

    const FAM: Family = Family {
        name: "m",
        kind: MetricType::Gauge,
        help: None,
    };

    fn keys(c: &Cache) -> Vec<(String, bool, u64, u64)> {
        c.entries_by_write()
            .map(|e| {
                let key = if e.group {
                    c.group(e.id).labels
                } else {
                    c.series(e.id).key
                };
                (
                    String::from_utf8_lossy(key).into_owned(),
                    e.group,
                    e.ttl_ms,
                    e.deadline,
                )
            })
            .collect()
    }

    #[test]
    fn entries_come_in_write_order_across_ttls() {
        let mut c = Cache::new(8192);
        c.set(&FAM, b"m{a=\"1\"}", 1.0, 100, 5000).unwrap();
        c.set(&FAM, b"m{a=\"2\"}", 1.0, 200, 1000).unwrap();
        let g = c.group_open(b"job=\"j\"", 300, 3000).unwrap();
        c.group_set(g, &FAM, b"m{job=\"j\"}", 2.0, 300).unwrap();
        c.group_close(g, 300, 3000, 17.5);
        // Rewritten last: it moves to the end.
        c.set(&FAM, b"m{a=\"1\"}", 3.0, 400, 5000).unwrap();
        assert_eq!(
            keys(&c),
            [
                ("m{a=\"2\"}".into(), false, 1000, 1200),
                ("job=\"j\"".into(), true, 3000, 3300),
                ("m{a=\"1\"}".into(), false, 5000, 5400),
            ]
        );
        assert_eq!(Cache::new(1024).entries_by_write().count(), 0);
    }

    #[test]
    fn drain_state_reads_back_and_its_tries_can_be_restored() {
        let mut c = Cache::new(4096);
        let w = Write {
            ttl_ms: 1000,
            drain: true,
            add: false,
        };
        c.set_with(&FAM, b"m", 1.0, 0, w).unwrap();
        c.set(&FAM, b"n", 1.0, 0, 1000).unwrap();
        let ids: Vec<u32> = c.entries_by_write().map(|e| e.id).collect();
        assert_eq!(c.series_drain(ids[0]), (true, 0));
        assert_eq!(c.series_drain(ids[1]), (false, 0));
        assert!(c.set_drain_tries(b"m", 2));
        assert!(!c.set_drain_tries(b"absent", 2));
        assert_eq!(c.series_drain(ids[0]), (true, 2));
        // One more failed delivery reaches DRAIN_ATTEMPTS.
        c.mark_scraped(&ids, 7);
        c.drain_failed(7);
        assert_eq!(c.get(b"m", 0), None);
        assert_eq!(c.get(b"n", 0), Some(1.0));
        c.check_invariants();
    }
}

//! Drain on scrape: series written with drain mode are removed once a
//! page that included them reached its scraper whole, and dropped after
//! [`DRAIN_ATTEMPTS`] failed deliveries.
//!
//! # Memory
//! The page number and failure count live in each series' header.

use super::{Cache, DRAIN_ATTEMPTS, F_DRAIN_PAGE, F_DRAIN_TRIES, F_FIRST, F_FLAGS, F_OWNER, NIL};

impl Cache {
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
                c.remove_drained(id);
                c.stats.drained += 1;
            }
        });
    }

    /// Removes a drained series, and its pushed group with it when that was
    /// the group's last series: a group that holds nothing would otherwise
    /// keep showing `push_time_seconds` and `push_failure_time_seconds`
    /// until its TTL. Safe inside [`Cache::for_each_series`]: the group is
    /// the entry being walked, whose successor is already read, and its
    /// series list is empty.
    fn remove_drained(&mut self, id: u32) {
        let owner = self.field(id, F_OWNER);
        self.remove_series(id);
        if owner != NIL && owner != self.pinned_group && self.field(owner, F_FIRST) == NIL {
            self.remove_group(owner);
        }
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
                    c.remove_drained(id);
                    c.stats.drain_failed += 1;
                }
            }
        });
    }
}

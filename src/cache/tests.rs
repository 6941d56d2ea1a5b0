//! Unit tests of the cache: eviction order, expiry, the budget, families,
//! and the cost of floods. Compiled only for tests (`#[cfg(test)] mod
//! tests;` in mod.rs), so its unwraps never meet outside input.

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

/// Fills `c` with series `flood{i="N"}` from `*n` on until it evicts, then
/// writes `count` more never-seen series; keys of `len(i)` bytes of label.
fn flood(c: &mut Cache, n: &mut u64, count: u64, len: impl Fn(u64) -> usize) {
    let mut written = 0;
    while written < count {
        let i = *n;
        *n += 1;
        let key = format!("flood{{i=\"{i:0>width$}\"}}", width = len(i));
        c.set(&fam("flood"), key.as_bytes(), i as f64, 0, 1000)
            .unwrap();
        if c.stats.evicted_budget > 0 {
            written += 1;
        }
    }
}

#[test]
fn a_flood_of_new_series_moves_a_bounded_number_of_records_per_write() {
    // Keys from 10 to 120 bytes of label, so that holes rarely fit exactly.
    let len = |i: u64| 10 + (i.wrapping_mul(0x9e37_79b9) >> 7) as usize % 110;
    let mut c = Cache::new(64 * 1024);
    let mut n = 0;
    flood(&mut c, &mut n, 1, len);
    let (moved, evicted) = (c.stats.records_moved, c.stats.evicted_budget);
    let writes = 20_000;
    flood(&mut c, &mut n, writes, len);
    c.check_invariants();
    let moved = c.stats.records_moved - moved;
    // A compaction moves at most the ~600 records the budget holds and
    // comes after 1/8 of the budget (8 KiB, at least 40 of these records)
    // was removed: at most ~15 moves per removal, and a write removes
    // about one record. Compacting per write would be ~600.
    assert!(
        moved <= 16 * writes,
        "{moved} records moved for {writes} writes"
    );
    assert!(
        c.stats.compactions > 0,
        "holes that fit nothing were compacted"
    );
    // Evicting ahead of need is bounded by the holes allowed: 1/8 of the
    // budget, a few dozen records each time.
    let evicted = c.stats.evicted_budget - evicted;
    assert!(
        evicted <= writes + writes / 10,
        "{evicted} evicted for {writes}"
    );
}

#[test]
fn same_sized_new_series_take_the_evicted_ones_place() {
    let mut c = Cache::new(64 * 1024);
    let mut n = 0;
    flood(&mut c, &mut n, 10_000, |_| 12);
    c.check_invariants();
    assert_eq!(c.stats.compactions, 0);
    assert_eq!(c.stats.records_moved, 0);
    assert_eq!(c.stats.evicted_budget, 10_000);
    // The budget stays full: one evicted record's hole per write, no more.
    assert!(c.remaining() < 128, "{} bytes left over", c.remaining());
}

#[test]
fn holes_never_hold_more_than_an_eighth_of_the_budget_at_a_full_budget() {
    let len = |i: u64| (i % 7) as usize * 20 + 1;
    let mut c = Cache::new(32 * 1024);
    let mut n = 0;
    flood(&mut c, &mut n, 1, len);
    let largest = align8(HEADER_BYTES + "flood{i=\"\"}".len() + 121);
    for _ in 0..5000 {
        flood(&mut c, &mut n, 1, len);
        assert!(
            c.dead_bytes <= c.capacity() / COMPACT_DEAD_DIVISOR + largest,
            "{} dead bytes",
            c.dead_bytes
        );
    }
    c.check_invariants();
}

#[test]
fn compaction_keeps_every_series_and_its_order() {
    let mut c = Cache::new(16 * 1024);
    let mut n = 0;
    // Phases of short and long keys: a long one fits no short one's hole.
    flood(
        &mut c,
        &mut n,
        3000,
        |i| if i / 400 % 2 == 0 { 1 } else { 120 },
    );
    assert!(c.stats.compactions > 0);
    c.check_invariants();
    // The survivors are the most recently written, oldest first.
    let mut ids = Vec::new();
    c.series_ids(&mut ids);
    let values: Vec<f64> = ids.iter().map(|&id| c.series(id).value).collect();
    assert!(values.windows(2).all(|w| w[1] == w[0] + 1.0), "{values:?}");
    assert_eq!(*values.last().unwrap(), (n - 1) as f64);
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

//! Unit tests of the snapshot format: a cache written and read back renders
//! the same page, keeps what is left of each TTL on the wall clock, keeps
//! the most recently written entries in a smaller budget, and every damaged
//! file is refused whole. Compiled only for tests.

use super::*;
use crate::cache::{Family, Write};
use crate::exposition::MetricType;
use crate::render::Renderer;

const GAUGE: Family = Family {
    name: "temp",
    kind: MetricType::Gauge,
    help: Some("Temperature."),
};
const COUNTER: Family = Family {
    name: "jobs_total",
    kind: MetricType::Counter,
    help: None,
};

/// The cache's clock and the wall clock at the time of writing.
const NOW: u64 = 1_000_000;
const UNIX_MS: u64 = 1_700_000_000_000;

fn sample() -> Cache {
    let mut c = Cache::new(16 * 1024);
    c.set(&GAUGE, b"temp{room=\"a\"}", 21.5, NOW - 500, 60_000)
        .unwrap();
    let drain = Write {
        ttl_ms: 5000,
        drain: true,
        add: false,
    };
    c.set_with(&COUNTER, b"jobs_total{q=\"x\"}", 7.0, NOW - 400, drain)
        .unwrap();
    let g = c
        .group_open(b"job=\"backup\"", NOW - 300, 90_000_000)
        .unwrap();
    c.group_set(
        g,
        &GAUGE,
        b"temp{job=\"backup\",room=\"b\"}",
        3.0,
        NOW - 300,
    )
    .unwrap();
    c.group_set(g, &COUNTER, b"jobs_total{job=\"backup\"}", 1e9, NOW - 300)
        .unwrap();
    c.group_close(g, NOW - 300, 90_000_000, 1_699_999_999.25);
    c.group_failed(b"job=\"backup\"", 1_700_000_000.5);
    // A group with no series shows its push times alone.
    let e = c.group_open(b"job=\"empty\"", NOW - 200, 60_000).unwrap();
    c.group_close(e, NOW - 200, 60_000, 1_699_999_000.0);
    c
}

fn encode(c: &Cache, now: u64, unix_ms: u64) -> Vec<u8> {
    let mut out = Vec::new();
    let n = Encoder::default().write(&mut out, c, now, unix_ms).unwrap();
    assert_eq!(n as usize, out.len());
    out
}

fn decode_into(
    bytes: &[u8],
    budget: usize,
    now: u64,
    unix_ms: u64,
) -> Result<(Cache, Restored), Error> {
    decode::check(bytes)?;
    let mut c = Cache::new(budget);
    let r = decode::restore(bytes, &mut c, now, unix_ms)?;
    c.check_invariants();
    Ok((c, r))
}

fn page(c: &Cache) -> String {
    let mut r = Renderer::new(c);
    String::from_utf8(r.render(c, |_| {}).to_vec()).unwrap()
}

#[test]
fn a_cache_comes_back_the_same() {
    let c = sample();
    let bytes = encode(&c, NOW, UNIX_MS);
    let (back, r) = decode_into(&bytes, 16 * 1024, CLOCK_START_MS, UNIX_MS).unwrap();
    assert_eq!(
        r,
        Restored {
            series: 4,
            groups: 2,
            expired: 0,
            dropped: 0
        }
    );
    assert_eq!(page(&back), page(&c));
    assert!(page(&c).contains("push_failure_time_seconds"));
    // Written again, the same bytes: nothing was lost or reordered.
    assert_eq!(encode(&back, CLOCK_START_MS, UNIX_MS), bytes);
    let drains: Vec<(bool, u8)> = back
        .entries_by_write()
        .filter(|e| !e.group)
        .map(|e| back.series_drain(e.id))
        .collect();
    assert_eq!(drains, [(false, 0), (true, 0)]);
}

#[test]
fn what_is_left_of_each_ttl_is_kept_on_the_wall_clock() {
    let c = sample();
    let bytes = encode(&c, NOW, UNIX_MS);
    // Down for 5 s, restarted with its clock at the start.
    const T: u64 = CLOCK_START_MS;
    let (back, r) = decode_into(&bytes, 16 * 1024, T, UNIX_MS + 5000).unwrap();
    assert_eq!(r.expired, 1, "the 5 s drain series had 4.6 s left");
    let left: Vec<(u64, u64)> = back
        .entries_by_write()
        .map(|e| (e.ttl_ms, e.deadline))
        .collect();
    // Written NOW-500 with 60 s: 59.5 s left at the stop, 54.5 s now.
    assert_eq!(
        left,
        [
            (60_000, T + 54_500),
            (90_000_000, T + 89_999_700 - 5000),
            (60_000, T + 54_800),
        ]
    );
    // Down for longer than every TTL but the group's: only it is left.
    let (back, r) = decode_into(&bytes, 16 * 1024, T, UNIX_MS + 3_600_000).unwrap();
    assert_eq!((r.series, r.groups, r.expired), (2, 1, 2));
    assert!(page(&back).contains("job=\"backup\""));
    // A wall clock set back does not lengthen a TTL.
    let (back, _) = decode_into(&bytes, 16 * 1024, T, UNIX_MS - 3_600_000).unwrap();
    assert!(back.entries_by_write().all(|e| e.deadline <= T + e.ttl_ms));
}

#[test]
fn a_smaller_budget_keeps_the_most_recently_written() {
    let mut c = Cache::new(64 * 1024);
    for i in 0..400 {
        let key = format!("temp{{n=\"{i}\"}}");
        c.set(&GAUGE, key.as_bytes(), i as f64, NOW + i, 60_000)
            .unwrap();
    }
    let bytes = encode(&c, NOW + 400, UNIX_MS);
    let (back, r) = decode_into(&bytes, 4096, CLOCK_START_MS, UNIX_MS).unwrap();
    let kept = back.series_count() as u64;
    assert!(kept > 10 && kept < 400, "{kept}");
    assert_eq!(r.series, 400, "each was written, the oldest then evicted");
    for i in 0..400 {
        let key = format!("temp{{n=\"{i}\"}}");
        let held = back.get(key.as_bytes(), CLOCK_START_MS).is_some();
        assert_eq!(held, i >= 400 - kept, "{key}");
    }
}

#[test]
fn damaged_files_are_refused_whole() {
    let bytes = encode(&sample(), NOW, UNIX_MS);
    let check = |b: &[u8]| decode::check(b).map(|_| ());
    assert!(matches!(check(&[]), Err(Error::Empty)));
    for len in 1..bytes.len() {
        let e = check(&bytes[..len]).unwrap_err();
        assert!(
            matches!(e, Error::Truncated | Error::Checksum),
            "cut at {len}: {e}"
        );
    }
    for bit in 0..bytes.len() * 8 {
        let mut bad = bytes.clone();
        bad[bit / 8] ^= 1 << (bit % 8);
        assert!(check(&bad).is_err(), "bit {bit} flipped");
    }
    assert!(matches!(
        check(b"# HELP not a snapshot\n"),
        Err(Error::Foreign)
    ));
    let mut v2 = bytes.clone();
    v2[8] = 2;
    assert!(matches!(check(&v2), Err(Error::Version(2))));
    assert!(Error::Version(2).to_string().contains("version 2"));
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(check(&longer).is_err());
}

/// A file with a good checksum whose records make no sense (written by
/// something else) is refused too, and what it restored is the caller's
/// to drop.
#[test]
fn malformed_records_with_a_good_checksum_are_refused() {
    let with_crc = |mut body: Vec<u8>| {
        let mut crc = crc32::Crc32::default();
        crc.update(&body);
        body.extend_from_slice(&crc.value().to_le_bytes());
        body
    };
    let mut header = MAGIC.to_vec();
    header.extend_from_slice(&VERSION.to_le_bytes());
    header.extend_from_slice(&4096u64.to_le_bytes());
    header.extend_from_slice(&UNIX_MS.to_le_bytes());
    for (body, what) in [
        (&b"X"[..], "unknown record type"),
        (b"S\0\0\0\0", "family not yet defined"),
        (b"M", "outside a group"),
        (b"G\0\0", "truncated"),
    ] {
        let mut file = header.clone();
        file.extend_from_slice(body);
        file.push(TAG_END);
        let file = with_crc(file);
        decode::check(&file[..]).unwrap();
        let e = decode::restore(&file[..], &mut Cache::new(4096), 0, UNIX_MS).unwrap_err();
        assert!(e.to_string().contains(what), "{e}");
    }
    let mut empty = header.clone();
    empty.push(TAG_END);
    let empty = with_crc(empty);
    assert_eq!(
        decode_into(&empty, 4096, 0, UNIX_MS).unwrap().1,
        Restored::default()
    );
}

//! Arbitrary bytes as a snapshot file, in process: `snapshot::decode`'s
//! `check`, then its `restore` into a small cache, as the gateway does at
//! start-up.
//!
//! Input: one byte choosing how the rest is read. 0: as the whole file
//! (almost always refused by `check`, which is what it exercises). Else:
//! as the records between a valid header and a valid end mark and
//! checksum, so that `restore` decodes them; the byte's low bits pick the
//! cache budget (1 to 16 KiB).
//!
//! Checks: never a panic; a file `check` refuses is not restored; whether
//! `restore` succeeds or fails (the gateway then wipes the cache), the
//! cache's invariants hold, and it can be written as a snapshot again that
//! `check` accepts.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_gateway::cache::Cache;
use push_gateway::snapshot::{CLOCK_START_MS, Encoder, MAGIC, VERSION, decode};

const UNIX_MS: u64 = 1_700_000_000_000;

fn crc32(bytes: &[u8]) -> u32 {
    // The IEEE polynomial bit by bit: independent of the gateway's table.
    let mut c = !0u32;
    for &b in bytes {
        c ^= u32::from(b);
        for _ in 0..8 {
            c = if c & 1 != 0 { 0xEDB8_8320 ^ (c >> 1) } else { c >> 1 };
        }
    }
    !c
}

fuzz_target!(|data: &[u8]| {
    let Some((&how, rest)) = data.split_first() else {
        return;
    };
    let budget = (usize::from(how & 0x0F) + 1) * 1024;
    let file = if how == 0 {
        rest.to_vec()
    } else {
        let mut f = MAGIC.to_vec();
        f.extend_from_slice(&VERSION.to_le_bytes());
        f.extend_from_slice(&(budget as u64 * 2).to_le_bytes());
        f.extend_from_slice(&(UNIX_MS - 1000).to_le_bytes());
        f.extend_from_slice(rest);
        f.push(b'E');
        let crc = crc32(&f);
        f.extend_from_slice(&crc.to_le_bytes());
        f
    };
    let mut cache = Cache::new(budget);
    if decode::check(&file[..]).is_ok()
        && decode::restore(&file[..], &mut cache, CLOCK_START_MS, UNIX_MS).is_err()
    {
        cache.wipe();
    }
    cache.check_invariants();
    let mut again = Vec::new();
    Encoder::default()
        .write(&mut again, &cache, CLOCK_START_MS, UNIX_MS)
        .unwrap();
    decode::check(&again[..]).unwrap();
});

//! Writing a snapshot: the header, then the cache's entries least recently
//! written first (a streamed series, or a group followed by its series),
//! each family written once before the first series that needs it, then
//! the end mark and the CRC-32 of everything before it. The format is
//! described in [`super`].
//!
//! # Memory
//! A table of 4 bytes per id the cache has handed out (which families are
//! written already, at most `--cache-bytes / 17`) and the ids of one
//! group's series, both kept for the next snapshot. The bytes go to the
//! writer given, which buffers them ([`crate::limits::SNAPSHOT_BUFFER_BYTES`]).

use std::io::{self, Write};

use super::crc32::Crc32;
use super::{MAGIC, TAG_END, TAG_FAMILY, TAG_GROUP, TAG_MEMBER, TAG_SERIES, VERSION};
use crate::cache::Cache;

/// Bytes written and their running checksum.
struct Out<W: Write> {
    w: W,
    crc: Crc32,
    bytes: u64,
}

impl<W: Write> Out<W> {
    fn put(&mut self, b: &[u8]) -> io::Result<()> {
        self.crc.update(b);
        self.bytes += b.len() as u64;
        self.w.write_all(b)
    }
    fn u8(&mut self, v: u8) -> io::Result<()> {
        self.put(&[v])
    }
    fn u32(&mut self, v: u32) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    fn u64(&mut self, v: u64) -> io::Result<()> {
        self.put(&v.to_le_bytes())
    }
    /// A key: its length in 2 bytes (the cache's own limit), then its bytes.
    fn key(&mut self, b: &[u8]) -> io::Result<()> {
        self.put(&(b.len() as u16).to_le_bytes())?;
        self.put(b)
    }
}

/// What one snapshot keeps for the next; see the module's memory note.
#[derive(Debug, Default)]
pub struct Encoder {
    /// Per cache id: 1 + the family's index in the file, or 0.
    families: Vec<u32>,
    members: Vec<u32>,
}

impl Encoder {
    /// Writes `cache` to `w` as it is at `now` (the cache's clock), which
    /// is `unix_now_ms` on the wall clock; returns the bytes written.
    ///
    /// # Errors
    /// The writer's.
    pub fn write<W: Write>(
        &mut self,
        w: W,
        cache: &Cache,
        now: u64,
        unix_now_ms: u64,
    ) -> io::Result<u64> {
        let Encoder { families, members } = self;
        families.clear();
        families.resize(cache.id_bound() as usize, 0);
        let mut next_family = 0;
        let mut out = Out {
            w,
            crc: Crc32::default(),
            bytes: 0,
        };
        out.put(&MAGIC)?;
        out.u32(VERSION)?;
        out.u64(cache.capacity() as u64)?;
        out.u64(unix_now_ms)?;
        // Deadlines on the wall clock, so that a restart keeps what is left.
        let wall = |deadline: u64| match deadline {
            u64::MAX => u64::MAX,
            d => unix_now_ms.saturating_add(d.saturating_sub(now)),
        };
        let mut family = |out: &mut Out<W>, id: u32| -> io::Result<u32> {
            let slot = &mut families[id as usize];
            if *slot == 0 {
                next_family += 1;
                *slot = next_family;
                let f = cache.family(id);
                out.u8(TAG_FAMILY)?;
                out.u8(f.kind.code())?;
                out.key(f.name)?;
                out.u32(f.help.len() as u32)?;
                out.put(f.help)?;
            }
            Ok(*slot - 1)
        };
        for e in cache.entries_by_write() {
            if e.group {
                members.clear();
                cache.group_series(e.id, members);
                for &s in members.iter() {
                    family(&mut out, cache.series(s).family)?;
                }
                let g = cache.group(e.id);
                out.u8(TAG_GROUP)?;
                out.key(g.labels)?;
                out.u64(g.push_time.to_bits())?;
                out.u64(g.failure_time.to_bits())?;
                out.u64(e.ttl_ms)?;
                out.u64(wall(e.deadline))?;
                out.u32(members.len() as u32)?;
                // Last first: restoring puts each at the head of the
                // group's list, which then comes back in its order.
                for &s in members.iter().rev() {
                    // Written above: only the index is looked up.
                    let f = family(&mut out, cache.series(s).family)?;
                    out.u8(TAG_MEMBER)?;
                    series(&mut out, cache, s, f)?;
                }
            } else {
                let f = family(&mut out, cache.series(e.id).family)?;
                out.u8(TAG_SERIES)?;
                series(&mut out, cache, e.id, f)?;
                out.u64(e.ttl_ms)?;
                out.u64(wall(e.deadline))?;
            }
        }
        out.u8(TAG_END)?;
        let crc = out.crc.value();
        out.w.write_all(&crc.to_le_bytes())?;
        out.w.flush()?;
        Ok(out.bytes + 4)
    }
}

/// What a streamed and a pushed series have in common: family index, key,
/// value, drain mode and failed deliveries.
fn series<W: Write>(out: &mut Out<W>, cache: &Cache, id: u32, family: u32) -> io::Result<()> {
    let s = cache.series(id);
    let (drain, tries) = cache.series_drain(id);
    out.u32(family)?;
    out.key(s.key)?;
    out.u64(s.value.to_bits())?;
    out.u8(u8::from(drain))?;
    out.u8(tries)
}

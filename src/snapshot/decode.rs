//! Reading a snapshot back, in two passes over the file so that nothing is
//! restored from a bad one and no more than a buffer of it is held:
//! [`check`] reads the header and the whole file through its CRC-32;
//! [`restore`] then decodes the records and re-inserts them, least recently
//! written first, through the cache's ordinary writes (so a smaller budget
//! keeps the most recently written entries, by its own eviction order).
//!
//! TTL deadlines are wall-clock times in the file: what is left of each is
//! what is left now; an entry whose deadline has passed is dropped.
//!
//! # Memory
//! The read buffer ([`SNAPSHOT_BUFFER_BYTES`]), one key and one group's
//! labels, and the families' names and HELP texts (at most the budget the
//! file was written with), all freed once restored.

use std::fmt;
use std::io::{self, BufReader, Read};
use std::ops::Range;

use super::crc32::Crc32;
use super::{
    HEADER_BYTES, MAGIC, TAG_END, TAG_FAMILY, TAG_GROUP, TAG_MEMBER, TAG_SERIES, TRAILER_BYTES,
    VERSION,
};
use crate::cache::{Cache, Family, Write};
use crate::exposition::MetricType;
use crate::limits::{CACHE_MAX_BYTES, CACHE_MIN_BYTES, SNAPSHOT_BUFFER_BYTES, TTL_MAX};

/// Why a file is not a snapshot this gateway can restore.
#[derive(Debug)]
pub enum Error {
    Io(io::Error),
    Empty,
    /// Not a push-gateway snapshot at all.
    Foreign,
    /// A snapshot of another format version.
    Version(u32),
    /// Shorter than its header and end say.
    Truncated,
    /// The checksum does not match: damaged or torn.
    Checksum,
    /// The checksum matches but a record makes no sense.
    Malformed(&'static str),
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Io(e) => write!(f, "read failed: {e}"),
            Error::Empty => f.write_str("the file is empty"),
            Error::Foreign => f.write_str("not a push-gateway snapshot (wrong magic number)"),
            Error::Version(v) => write!(
                f,
                "snapshot format version {v}, this push-gateway reads version {VERSION}"
            ),
            Error::Truncated => f.write_str("the file is truncated"),
            Error::Checksum => f.write_str("the checksum does not match: the file is damaged"),
            Error::Malformed(what) => write!(f, "malformed record: {what}"),
        }
    }
}

impl From<io::Error> for Error {
    fn from(e: io::Error) -> Error {
        match e.kind() {
            io::ErrorKind::UnexpectedEof => Error::Truncated,
            _ => Error::Io(e),
        }
    }
}

/// What the header says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    /// `--cache-bytes` of the gateway that wrote it.
    pub budget: u64,
    /// When it was written, in milliseconds since the Unix epoch.
    pub written_unix_ms: u64,
}

/// What a restore put back and what it left out.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Restored {
    pub series: u64,
    pub groups: u64,
    /// Series whose TTL ran out while the gateway was down.
    pub expired: u64,
    /// Series the budget could not hold (it is smaller than the writer's),
    /// or that the cache refused.
    pub dropped: u64,
}

fn header(bytes: &[u8]) -> Result<Header, Error> {
    let field = |at: usize| {
        let mut b = [0u8; 8];
        b.copy_from_slice(&bytes[at..at + 8]);
        u64::from_le_bytes(b)
    };
    let version = u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]);
    if version != VERSION {
        return Err(Error::Version(version));
    }
    let h = Header {
        budget: field(12),
        written_unix_ms: field(20),
    };
    if !(CACHE_MIN_BYTES as u64..=CACHE_MAX_BYTES as u64).contains(&h.budget) {
        return Err(Error::Malformed("budget out of range"));
    }
    Ok(h)
}

/// Reads `r` whole: its header, and its checksum against its content.
///
/// # Errors
/// Which check failed, or the read error.
pub fn check<R: Read>(mut r: R) -> Result<Header, Error> {
    let mut buf = vec![0u8; SNAPSHOT_BUFFER_BYTES];
    // The first read may be short: fill the header first.
    let mut have = 0;
    while have < HEADER_BYTES {
        match r.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => have += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    let magic = have.min(MAGIC.len());
    if have == 0 {
        return Err(Error::Empty);
    }
    if buf[..magic] != MAGIC[..magic] {
        return Err(Error::Foreign);
    }
    if have < HEADER_BYTES {
        return Err(Error::Truncated);
    }
    let h = header(&buf[..HEADER_BYTES])?;
    // Everything but the last TRAILER_BYTES goes through the checksum; the
    // last ones read so far are held back until more comes.
    let mut crc = Crc32::default();
    let mut total = have as u64;
    loop {
        if have > TRAILER_BYTES {
            crc.update(&buf[..have - TRAILER_BYTES]);
            buf.copy_within(have - TRAILER_BYTES..have, 0);
            have = TRAILER_BYTES;
        }
        match r.read(&mut buf[have..]) {
            Ok(0) => break,
            Ok(n) => {
                have += n;
                total += n as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::Io(e)),
        }
    }
    // The header, at least the end mark, and the checksum.
    if total < (HEADER_BYTES + 1 + TRAILER_BYTES) as u64 {
        return Err(Error::Truncated);
    }
    if u32::from_le_bytes([buf[0], buf[1], buf[2], buf[3]]) != crc.value() {
        return Err(Error::Checksum);
    }
    Ok(h)
}

/// Records read from the file, with scratch for what they hold.
struct In<R: Read> {
    r: BufReader<R>,
    key: Vec<u8>,
}

impl<R: Read> In<R> {
    fn array<const N: usize>(&mut self) -> Result<[u8; N], Error> {
        let mut b = [0u8; N];
        self.r.read_exact(&mut b)?;
        Ok(b)
    }
    fn u8(&mut self) -> Result<u8, Error> {
        Ok(self.array::<1>()?[0])
    }
    fn u32(&mut self) -> Result<u32, Error> {
        Ok(u32::from_le_bytes(self.array()?))
    }
    fn u64(&mut self) -> Result<u64, Error> {
        Ok(u64::from_le_bytes(self.array()?))
    }
    /// Appends `len` bytes to `out`.
    fn bytes(&mut self, len: usize, out: &mut Vec<u8>) -> Result<(), Error> {
        let start = out.len();
        out.resize(start + len, 0);
        self.r.read_exact(&mut out[start..])?;
        Ok(())
    }
    /// A key into the scratch key.
    fn key(&mut self) -> Result<(), Error> {
        let len = usize::from(u16::from_le_bytes(self.array()?));
        let mut key = std::mem::take(&mut self.key);
        key.clear();
        let read = self.bytes(len, &mut key);
        self.key = key;
        read
    }
}

/// A family of the file: its type and where its name and HELP are in the
/// text of all families.
struct FamilyEntry {
    kind: MetricType,
    name: Range<usize>,
    help: Range<usize>,
}

impl FamilyEntry {
    /// The family a restored series is written to; `text` holds every
    /// family's name and HELP.
    fn family<'a>(&self, text: &'a str) -> Family<'a> {
        Family {
            name: &text[self.name.clone()],
            kind: self.kind,
            help: Some(&text[self.help.clone()]),
        }
    }
}

/// What a series record holds besides its key (in the scratch key).
struct SeriesRecord {
    family: usize,
    value: f64,
    drain: bool,
    tries: u8,
}

/// A group being restored: its series follow its record.
struct OpenGroup {
    /// `None` when it is left out (expired, or refused), its series with it.
    id: Option<u32>,
    labels: Vec<u8>,
    members_left: u32,
    /// When it was last pushed, on the cache's clock.
    written: u64,
    ttl_ms: u64,
    push_time: f64,
    failure_time: f64,
}

/// Decodes `r`, which [`check`] passed, into `cache` at `now` (the cache's
/// clock), `unix_now_ms` on the wall clock.
///
/// # Errors
/// A record that makes no sense, or a read error. The cache then holds
/// part of the file: the caller empties it.
pub fn restore<R: Read>(
    r: R,
    cache: &mut Cache,
    now: u64,
    unix_now_ms: u64,
) -> Result<Restored, Error> {
    let mut input = In {
        r: BufReader::with_capacity(SNAPSHOT_BUFFER_BYTES, r),
        key: Vec::new(),
    };
    let h = header(&input.array::<HEADER_BYTES>()?)?;
    let mut text = String::new();
    let mut families: Vec<FamilyEntry> = Vec::new();
    let mut group: Option<OpenGroup> = None;
    let mut done = Restored::default();
    // What is left of a TTL now, on the cache's clock: when the entry was
    // written (so that its deadline comes out right), or `None` if expired.
    let written_at = |ttl_ms: u64, deadline: u64| -> Result<Option<u64>, Error> {
        if ttl_ms == 0 || ttl_ms > TTL_MAX.as_millis() as u64 {
            return Err(Error::Malformed("TTL out of range"));
        }
        if deadline <= unix_now_ms {
            return Ok(None);
        }
        // A wall clock set back since cannot make a TTL longer than it is.
        let left = (deadline - unix_now_ms).min(ttl_ms);
        Ok(Some((now + left).saturating_sub(ttl_ms)))
    };
    loop {
        let tag = input.u8()?;
        if tag != TAG_MEMBER && tag != TAG_FAMILY && group.is_some() {
            return Err(Error::Malformed("a group has fewer series than it says"));
        }
        match tag {
            TAG_FAMILY => {
                let kind = input.u8()?;
                input.key()?;
                let name = text.len()..text.len() + input.key.len();
                let name_text = std::str::from_utf8(&input.key)
                    .map_err(|_| Error::Malformed("a family name is not UTF-8"))?;
                text.push_str(name_text);
                let len = input.u32()? as usize;
                if text.len() + len > h.budget as usize {
                    return Err(Error::Malformed("families larger than the budget"));
                }
                let mut help = Vec::with_capacity(len);
                input.bytes(len, &mut help)?;
                let help_text = String::from_utf8(help)
                    .map_err(|_| Error::Malformed("a HELP text is not UTF-8"))?;
                let help = text.len()..text.len() + help_text.len();
                text.push_str(&help_text);
                families.push(FamilyEntry {
                    kind: MetricType::from_code(kind),
                    name,
                    help,
                });
            }
            TAG_SERIES => {
                let s = series(&mut input, families.len())?;
                let ttl_ms = input.u64()?;
                let deadline = input.u64()?;
                let Some(written) = written_at(ttl_ms, deadline)? else {
                    done.expired += 1;
                    continue;
                };
                let family = families[s.family].family(&text);
                let w = Write {
                    ttl_ms,
                    drain: s.drain,
                    add: false,
                };
                match cache.set_with(&family, &input.key, s.value, written, w) {
                    Ok(()) => {
                        done.series += 1;
                        if s.tries > 0 {
                            cache.set_drain_tries(&input.key, s.tries);
                        }
                    }
                    Err(_) => done.dropped += 1,
                }
            }
            TAG_GROUP => {
                input.key()?;
                let labels = input.key.clone();
                let push_time = f64::from_bits(input.u64()?);
                let failure_time = f64::from_bits(input.u64()?);
                let ttl_ms = input.u64()?;
                let deadline = input.u64()?;
                let members = input.u32()?;
                let written = written_at(ttl_ms, deadline)?;
                let id = match written {
                    Some(w) => cache.group_open(&labels, w, ttl_ms).ok(),
                    None => None,
                };
                let mut g = OpenGroup {
                    id,
                    labels,
                    members_left: members,
                    written: written.unwrap_or(now),
                    ttl_ms,
                    push_time,
                    failure_time,
                };
                if written.is_none() {
                    done.expired += u64::from(members);
                } else if id.is_none() {
                    done.dropped += u64::from(members);
                }
                if members == 0 {
                    close(cache, &mut g, &mut done);
                } else {
                    group = Some(g);
                }
            }
            TAG_MEMBER => {
                let Some(g) = group.as_mut() else {
                    return Err(Error::Malformed("a group's series outside a group"));
                };
                let s = series(&mut input, families.len())?;
                if let Some(id) = g.id {
                    let family = families[s.family].family(&text);
                    let w = Write {
                        ttl_ms: g.ttl_ms,
                        drain: s.drain,
                        add: false,
                    };
                    match cache.group_set_with(id, &family, &input.key, None, s.value, g.written, w)
                    {
                        Ok(()) => {
                            done.series += 1;
                            if s.tries > 0 {
                                cache.set_drain_tries(&input.key, s.tries);
                            }
                        }
                        Err(_) => done.dropped += 1,
                    }
                }
                g.members_left -= 1;
                if g.members_left == 0
                    && let Some(mut g) = group.take()
                {
                    close(cache, &mut g, &mut done);
                }
            }
            TAG_END => {
                // The checksum follows, which `check` verified; then nothing.
                input.array::<TRAILER_BYTES>()?;
                let mut rest = [0u8; 1];
                return match input.r.read(&mut rest)? {
                    0 => Ok(done),
                    _ => Err(Error::Malformed("data after the end")),
                };
            }
            _ => return Err(Error::Malformed("unknown record type")),
        }
    }
}

/// The series fields common to both kinds, its key into the scratch key.
fn series<R: Read>(input: &mut In<R>, families: usize) -> Result<SeriesRecord, Error> {
    let family = input.u32()? as usize;
    if family >= families {
        return Err(Error::Malformed("a series of a family not yet defined"));
    }
    input.key()?;
    let value = f64::from_bits(input.u64()?);
    let drain = input.u8()? != 0;
    let tries = input.u8()?;
    Ok(SeriesRecord {
        family,
        value,
        drain,
        tries,
    })
}

/// Ends a group's restore: its push time, TTL and last failure.
fn close(cache: &mut Cache, g: &mut OpenGroup, done: &mut Restored) {
    let Some(id) = g.id else {
        return;
    };
    cache.group_close(id, g.written, g.ttl_ms, g.push_time);
    if g.failure_time != 0.0 {
        cache.group_failed(&g.labels, g.failure_time);
    }
    done.groups += 1;
}

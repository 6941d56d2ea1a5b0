//! Persistence: the cache saved to `--persistence-file` and restored from it
//! at start-up, so that a restart (an upgrade, a watchdog, a power cut)
//! keeps what was pushed, with what is left of each TTL.
//!
//! # When it writes
//! On SIGTERM or SIGINT, once the last connection is done, and at most once
//! per `--persistence-interval` (counted from start-up, then from the last
//! write) while the cache has changed since the last snapshot: its
//! generation moves with every write, removal and expiry. A cache that
//! does not change is never written, whatever the interval: flash wears by
//! writes, and every write is counted (`push_gateway_snapshot_writes_total`).
//!
//! # How it writes
//! The snapshot goes to `PATH.tmp` in the same directory, which is fsynced,
//! renamed over `PATH`, and the directory fsynced. The loop is held up by
//! the encoding and the copy into the page cache only (about 40 ms for a
//! full 16 MiB budget): the kernel is asked to start writing the file back
//! at once, and the fsync and rename come [`SNAPSHOT_COMMIT_DELAY`] later
//! (or one interval, if shorter), when little is left to wait for; the
//! snapshot is the cache as it was when encoded. On shutdown it is written
//! and made durable in one go. A crash or a power cut
//! at any moment leaves the old snapshot or the new one, whole; a
//! `PATH.tmp` left behind is removed at the next start. A failed write
//! (ENOSPC, EIO, a read-only directory) is logged at most
//! [`crate::limits::WARN_BURST`] times per window, counted
//! (`push_gateway_snapshot_failures_total`), leaves the old snapshot in
//! place and is tried again an interval later; the gateway keeps serving.
//!
//! # Restoring
//! A missing file is a first start. A file that is empty, truncated,
//! damaged (its checksum), foreign (its magic number) or of another format
//! version is logged, moved aside to `PATH.corrupt` (replacing an older
//! one) and the gateway starts empty: it never refuses to start because of
//! its own state. Entries come back least recently written first through
//! the cache's ordinary writes, so that a smaller `--cache-bytes` keeps
//! the most recently written ones.
//!
//! # Format, version 1 (integers little-endian)
//! ```text
//! header   magic "PGWSNAP\n" (8) | version u32 | budget u64 | written, Unix ms u64
//! records  F kind u8 | name u16+bytes | help u32+bytes          a family, index = its rank
//!          S series | ttl_ms u64 | deadline, Unix ms u64          a streamed series
//!          G labels u16+bytes | push time f64 | failure time f64
//!            | ttl_ms u64 | deadline, Unix ms u64 | n u32        a pushed group, then
//!          M series                                               n of its series
//! series   family index u32 | key u16+bytes | value f64 | drain u8 | failed deliveries u8
//! end      E | CRC-32 (IEEE) u32 of every byte before it
//! ```
//! Entries are in write order; a family's record comes before the first
//! series (or group) that needs it. A snapshot is smaller than the cache
//! it was written from: a streamed series takes its key and 33 bytes, a
//! pushed one its key and 17, a group its labels and 39, a family its name,
//! HELP and 8 (against 60 and more per record in the cache).
//!
//! # Memory
//! [`encode`]'s table (4 bytes per cache id) and one group's series ids,
//! kept between snapshots; a [`SNAPSHOT_BUFFER_BYTES`] buffer while writing
//! or reading; at start-up, the families' names and HELP texts ([`decode`]).

mod crc32;
pub mod decode;
pub mod encode;

use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::io::{self, BufWriter, Seek};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::cache::Cache;
use crate::limits::{SNAPSHOT_BUFFER_BYTES, SNAPSHOT_COMMIT_DELAY, TTL_MAX};
use crate::self_metrics::Stats;
use crate::warn_limit::WarnLimit;
pub use decode::{Error, Header, Restored};
pub use encode::Encoder;

pub const MAGIC: [u8; 8] = *b"PGWSNAP\n";
pub const VERSION: u32 = 1;
/// Magic, version, budget and time of writing.
pub const HEADER_BYTES: usize = 8 + 4 + 8 + 8;
/// The CRC-32 after the end mark.
pub const TRAILER_BYTES: usize = 4;

/// Where the event loop's clock (milliseconds, monotonic) starts: an entry
/// restored from a snapshot was written up to [`crate::limits::TTL_MAX`]
/// before the start, and its write time must be on that clock too (it
/// orders eviction across TTLs).
pub const CLOCK_START_MS: u64 = TTL_MAX.as_millis() as u64 + 24 * 3600 * 1000;

const TAG_FAMILY: u8 = b'F';
const TAG_SERIES: u8 = b'S';
const TAG_GROUP: u8 = b'G';
const TAG_MEMBER: u8 = b'M';
const TAG_END: u8 = b'E';

/// `path` with `suffix` appended to its file name (`cache.snap.tmp`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push(suffix);
    PathBuf::from(name)
}

/// The snapshot file, when to write it next and what it holds.
pub struct Persistence {
    path: PathBuf,
    tmp: PathBuf,
    interval: Duration,
    /// The cache generation the file holds.
    saved: u64,
    /// No periodic write before this (the cache's clock).
    next_at: u64,
    encoder: Encoder,
    warn: WarnLimit,
    /// A snapshot written to the temporary file, to be made durable.
    pending: Option<Pending>,
}

/// A snapshot in the temporary file, written back by the kernel meanwhile.
struct Pending {
    file: File,
    /// The cache generation it holds.
    generation: u64,
    bytes: u64,
    /// When to fsync and rename it (the cache's clock).
    commit_at: u64,
}

impl Persistence {
    /// Persistence to `path`, writing at most once per `interval` from
    /// `now` on.
    pub fn new(path: PathBuf, interval: Duration, now: u64) -> Persistence {
        Persistence {
            tmp: with_suffix(&path, ".tmp"),
            path,
            interval,
            saved: 0,
            next_at: now + interval.as_millis() as u64,
            encoder: Encoder::default(),
            warn: WarnLimit::about("snapshot writes"),
            pending: None,
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Fills the empty `cache` from the snapshot, if there is a good one;
    /// logs what it did, and moves a bad file aside.
    pub fn restore(&mut self, cache: &mut Cache, now: u64, unix_now_ms: u64) {
        let path = self.path.display();
        match fs::remove_file(&self.tmp) {
            Ok(()) => log::info!(
                "removed {}: a snapshot cut short by a crash or power cut; {path} is the last complete one",
                self.tmp.display()
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => log::warn!("cannot remove {}: {e}", self.tmp.display()),
        }
        let file = match File::open(&self.path) {
            Ok(file) => file,
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                log::info!("no snapshot at {path} yet: starting empty");
                self.saved = cache.generation();
                return;
            }
            Err(e) => {
                log::warn!(
                    "cannot read the snapshot {path} ({e}): starting empty; make it readable by the gateway"
                );
                self.saved = cache.generation();
                return;
            }
        };
        let started = Instant::now();
        let evicted_before = cache.stats.evicted_budget;
        let result = decode::check(&file).and_then(|h| {
            (&file).rewind()?;
            Ok((h, decode::restore(&file, cache, now, unix_now_ms)?))
        });
        match result {
            Ok((h, r)) => {
                let age = unix_now_ms.saturating_sub(h.written_unix_ms) / 1000;
                log::info!(
                    "restored {} series ({} groups) from {path} in {:?}, written {age} s ago with a budget of {} bytes; {} expired since, {} did not fit in {} bytes",
                    r.series,
                    r.groups,
                    started.elapsed(),
                    h.budget,
                    r.expired,
                    r.dropped + (cache.stats.evicted_budget - evicted_before),
                    cache.capacity(),
                );
            }
            Err(e) => {
                cache.wipe();
                cache.stats = Default::default();
                if let Error::Io(_) = e {
                    log::warn!("cannot read the snapshot {path} ({e}): starting empty");
                } else {
                    let aside = with_suffix(&self.path, ".corrupt");
                    match fs::rename(&self.path, &aside) {
                        Ok(()) => log::warn!(
                            "the snapshot {path} is unusable ({e}): moved it to {} and starting empty",
                            aside.display()
                        ),
                        Err(e2) => log::warn!(
                            "the snapshot {path} is unusable ({e}) and cannot be moved to {} ({e2}): starting empty",
                            aside.display()
                        ),
                    }
                }
            }
        }
        self.saved = cache.generation();
    }

    /// When to come back: to finish a snapshot written, or for the next
    /// periodic one if the cache has changed.
    pub fn wakeup(&self, cache: &Cache) -> Option<u64> {
        match &self.pending {
            Some(p) => Some(p.commit_at),
            None => (cache.generation() != self.saved).then_some(self.next_at),
        }
    }

    /// Does what is due at `now`: finishes the snapshot written a turn
    /// ago, or writes the next one and starts its write-back.
    pub fn tick(&mut self, cache: &Cache, now: u64, unix_now_ms: u64, stats: &mut Stats) {
        if let Some(p) = self.pending.take_if(|p| p.commit_at <= now) {
            self.commit_counted(p, now, stats);
            return;
        }
        if self.pending.is_some() || cache.generation() == self.saved || now < self.next_at {
            return;
        }
        self.next_at = now + self.interval.as_millis() as u64;
        let delay = self.interval.min(SNAPSHOT_COMMIT_DELAY).as_millis() as u64;
        match self.write_tmp(cache, now, unix_now_ms) {
            Ok(mut p) => {
                p.commit_at = now + delay;
                self.pending = Some(p);
            }
            Err(e) => self.failed(e, now, stats),
        }
    }

    /// Makes the file hold the cache as it is now, if it does not (on
    /// shutdown); whether it does.
    pub fn flush(&mut self, cache: &Cache, now: u64, unix_now_ms: u64, stats: &mut Stats) -> bool {
        // A pending snapshot out of date is dropped: its temporary file is
        // written again below.
        if let Some(p) = self.pending.take()
            && p.generation == cache.generation()
        {
            return self.commit_counted(p, now, stats);
        }
        if cache.generation() == self.saved {
            return true;
        }
        match self.write_tmp(cache, now, unix_now_ms) {
            Ok(p) => self.commit_counted(p, now, stats),
            Err(e) => {
                self.failed(e, now, stats);
                false
            }
        }
    }

    /// Encodes the cache into the temporary file and starts writing it
    /// back to the disk, without waiting: that is [`Self::commit`]'s.
    fn write_tmp(&mut self, cache: &Cache, now: u64, unix_now_ms: u64) -> io::Result<Pending> {
        let started = Instant::now();
        let file = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&self.tmp)?;
        let buffered = BufWriter::with_capacity(SNAPSHOT_BUFFER_BYTES, &file);
        let bytes = self.encoder.write(buffered, cache, now, unix_now_ms)?;
        start_writeback(&file);
        log::debug!(
            "encoded {} series ({bytes} bytes) into {} in {:?}",
            cache.series_count(),
            self.tmp.display(),
            started.elapsed()
        );
        Ok(Pending {
            file,
            generation: cache.generation(),
            bytes,
            commit_at: now,
        })
    }

    /// [`Self::commit`], counted and logged; whether it succeeded.
    fn commit_counted(&mut self, p: Pending, now: u64, stats: &mut Stats) -> bool {
        let (generation, bytes) = (p.generation, p.bytes);
        let started = Instant::now();
        match self.commit(p) {
            Ok(()) => {
                self.saved = generation;
                stats.snapshot_writes += 1;
                stats.snapshot_bytes += bytes;
                log::debug!(
                    "{bytes} bytes made durable as {} in {:?}",
                    self.path.display(),
                    started.elapsed()
                );
                true
            }
            Err(e) => {
                self.failed(e, now, stats);
                false
            }
        }
    }

    /// The temporary file fsynced, renamed over the snapshot, and the
    /// directory fsynced: the new snapshot, whole, or still the old one.
    fn commit(&self, p: Pending) -> io::Result<()> {
        p.file.sync_all()?;
        drop(p.file);
        fs::rename(&self.tmp, &self.path)?;
        let dir = match self.path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        File::open(dir)?.sync_all()
    }

    fn failed(&mut self, e: io::Error, now: u64, stats: &mut Stats) {
        stats.snapshot_failures += 1;
        let _ = fs::remove_file(&self.tmp);
        if self.warn.allow(now) {
            log::warn!(
                "cannot write the snapshot {} ({e}): the previous one stays; trying again in {} (check the free space and that the gateway may write to its directory)",
                self.path.display(),
                crate::config::format_duration(self.interval),
            );
        }
    }
}

/// Asks the kernel to start writing `file`'s dirty pages to the disk now,
/// without waiting for them, so that the fsync a turn later finds little
/// left to do: on slow flash that wait is most of a snapshot's time.
#[allow(unsafe_code)]
fn start_writeback(file: &File) {
    // SAFETY: the descriptor is borrowed from an open file for the length
    // of the call, and the other arguments are plain integers (the whole
    // file, start write-out): no memory is passed to the kernel.
    let rc = unsafe { libc::sync_file_range(file.as_raw_fd(), 0, 0, libc::SYNC_FILE_RANGE_WRITE) };
    // A failure (a file system without it) leaves all of it to the fsync.
    let _ = rc;
}

#[cfg(test)]
mod tests;

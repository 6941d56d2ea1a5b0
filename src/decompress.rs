//! Compressed push bodies (`Content-Encoding: gzip` and `snappy`), decoded
//! as they arrive, straight into the push's body buffer.
//!
//! * gzip (RFC 1952): the member header and trailer (CRC-32, size) are
//!   parsed here, the deflate data by `miniz_oxide`. Concatenated members
//!   are one body, as Go's `gzip.Reader` (the Pushgateway's) reads them.
//! * snappy: the framing format (what Python's `snappy.StreamCompressor`
//!   and Go's `snappy.NewWriter` write, and what the Pushgateway reads with
//!   `snappy.NewReader`), each chunk's CRC-32C checked; chunk data by
//!   `snap`'s raw decoder.
//!
//! The decoded size counts against the limit (`--max-body-bytes`) while
//! decoding: output past it stops the push with [`DecodeError::TooLarge`]
//! before it is written, so a decompression bomb costs no more than a
//! plain body of the limit.
//!
//! # Memory
//! Besides the body (at most the limit): gzip holds `miniz_oxide`'s
//! decompressor state (about 11 KiB; its window is the body itself, so no
//! 32 KiB window is kept), snappy one chunk of compressed data, at most
//! [`SNAPPY_CHUNK_MAX_BYTES`]. Both are allocated only while such a body
//! is read; [`DECODER_MAX_BYTES`] bounds either.

use std::fmt;

use miniz_oxide::inflate::TINFLStatus;
use miniz_oxide::inflate::core::{DecompressorOxide, decompress, inflate_flags};

/// Largest snappy chunk of data: its 4-byte checksum and a compressed
/// block of at most 65,536 decoded bytes (`32 + n + n/6` compressed).
pub const SNAPPY_CHUNK_MAX_BYTES: usize =
    4 + 32 + SNAPPY_BLOCK_MAX_BYTES + SNAPPY_BLOCK_MAX_BYTES / 6;

/// Most decoded bytes one snappy chunk may hold (the format's bound).
const SNAPPY_BLOCK_MAX_BYTES: usize = 65_536;

/// Heap a decoder holds besides the body, at most.
pub const DECODER_MAX_BYTES: usize = SNAPPY_CHUNK_MAX_BYTES + 1024;

/// The body grows by at most this much per inflate step.
const INFLATE_STEP_BYTES: usize = 32 * 1024;

/// Why a compressed body was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeError {
    /// The decoded body would pass the limit.
    TooLarge,
    /// Not valid data of its encoding.
    Corrupt(&'static str),
}

impl fmt::Display for DecodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DecodeError::TooLarge => f.write_str(
                "decompressed request body over the limit (--max-body-bytes, by default the cache budget): push less per request",
            ),
            DecodeError::Corrupt(what) => f.write_str(what),
        }
    }
}

/// A body's decoder; feed it the body bytes in order, then [`Decoder::finish`].
pub enum Decoder {
    Gzip(Box<Gzip>),
    Snappy(Snappy),
}

impl Decoder {
    pub fn gzip() -> Decoder {
        Decoder::Gzip(Box::new(Gzip {
            state: GzState::Header(Header::default()),
            inflate: DecompressorOxide::new(),
            crc: !0,
            size: 0,
            members: 0,
        }))
    }

    pub fn snappy() -> Decoder {
        Decoder::Snappy(Snappy {
            head: [0; 4],
            have_head: 0,
            chunk: Vec::new(),
            chunk_len: 0,
            started: false,
        })
    }

    /// Decodes all of `input`, appending to `out`, never past `limit`.
    ///
    /// # Errors
    /// [`DecodeError`]: corrupt input, or output past `limit`.
    pub fn feed(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DecodeError> {
        match self {
            Decoder::Gzip(g) => g.feed(input, out, limit),
            Decoder::Snappy(s) => s.feed(input, out, limit),
        }
    }

    /// At the end of the body: whether it ended where its encoding may.
    ///
    /// # Errors
    /// [`DecodeError::Corrupt`] for a truncated or empty stream.
    pub fn finish(&self) -> Result<(), DecodeError> {
        match self {
            Decoder::Gzip(g) => match g.state {
                GzState::Header(Header { have: 0, .. }) if g.members > 0 => Ok(()),
                _ => Err(DecodeError::Corrupt(
                    "truncated gzip body: send the whole gzip stream",
                )),
            },
            // An empty body is an empty stream, as Go's reader takes it.
            Decoder::Snappy(s) if s.have_head == 0 && s.chunk_len == 0 => Ok(()),
            Decoder::Snappy(_) => Err(DecodeError::Corrupt(
                "truncated snappy body: send the whole stream in the snappy framing format",
            )),
        }
    }
}

// ---- gzip -------------------------------------------------------------

pub struct Gzip {
    state: GzState,
    inflate: DecompressorOxide,
    /// CRC-32 of the member's output so far (pre-inverted).
    crc: u32,
    /// The member's output size, modulo 2^32.
    size: u32,
    members: u32,
}

enum GzState {
    Header(Header),
    Deflate,
    /// The 8 trailer bytes (CRC-32 and size), as they arrive.
    Trailer([u8; 8], usize),
}

/// Where a member header's parse stands.
#[derive(Default)]
struct Header {
    fixed: [u8; 10],
    have: usize,
    /// Bytes of FEXTRA: its 2-byte length, then the data to skip.
    extra_len: [u8; 2],
    extra_have: usize,
    extra_left: usize,
    /// Inside the zero-terminated FNAME / FCOMMENT.
    in_name: bool,
    in_comment: bool,
    hcrc_left: usize,
    done_fields: bool,
}

const FHCRC: u8 = 2;
const FEXTRA: u8 = 4;
const FNAME: u8 = 8;
const FCOMMENT: u8 = 16;

impl Gzip {
    fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DecodeError> {
        while !input.is_empty() {
            match &mut self.state {
                GzState::Header(h) => {
                    let used = header_step(h, input)?;
                    input = &input[used..];
                    if h.done_fields {
                        self.state = GzState::Deflate;
                        self.inflate.init();
                        self.crc = !0;
                        self.size = 0;
                    }
                }
                GzState::Deflate => {
                    let used = self.inflate_step(input, out, limit)?;
                    input = &input[used..];
                }
                GzState::Trailer(bytes, have) => {
                    let n = (8 - *have).min(input.len());
                    bytes[*have..*have + n].copy_from_slice(&input[..n]);
                    *have += n;
                    input = &input[n..];
                    if *have == 8 {
                        let crc = u32::from_le_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
                        let size = u32::from_le_bytes([bytes[4], bytes[5], bytes[6], bytes[7]]);
                        if crc != !self.crc || size != self.size {
                            return Err(DecodeError::Corrupt(
                                "gzip checksum mismatch: the body was damaged",
                            ));
                        }
                        self.members += 1;
                        self.state = GzState::Header(Header::default());
                    }
                }
            }
        }
        Ok(())
    }

    /// Inflates from `input` into `out`; returns the input bytes used.
    fn inflate_step(
        &mut self,
        input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<usize, DecodeError> {
        let flags = inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF
            | inflate_flags::TINFL_FLAG_HAS_MORE_INPUT;
        let mut used = 0;
        loop {
            // Room for output, up to one byte past the limit so that a body
            // of exactly the limit can tell it ended.
            let start = out.len();
            let room = (limit + 1).saturating_sub(start).min(INFLATE_STEP_BYTES);
            if room == 0 {
                return Err(DecodeError::TooLarge);
            }
            grow_within(out, start + room, limit + 1);
            out.resize(start + room, 0);
            let (status, read, wrote) =
                decompress(&mut self.inflate, &input[used..], out, start, flags);
            out.truncate(start + wrote);
            used += read;
            self.crc = crc_update(&CRC32_TABLE, self.crc, &out[start..]);
            self.size = self.size.wrapping_add(wrote as u32);
            if out.len() > limit {
                return Err(DecodeError::TooLarge);
            }
            match status {
                TINFLStatus::Done => {
                    self.state = GzState::Trailer([0; 8], 0);
                    return Ok(used);
                }
                TINFLStatus::NeedsMoreInput => return Ok(used),
                TINFLStatus::HasMoreOutput => {}
                _ => {
                    return Err(DecodeError::Corrupt(
                        "corrupt gzip body: the deflate data is invalid",
                    ));
                }
            }
        }
    }
}

/// Parses header bytes from `input`; returns how many it used.
fn header_step(h: &mut Header, input: &[u8]) -> Result<usize, DecodeError> {
    let bad = DecodeError::Corrupt("not a gzip body: send gzip data with Content-Encoding: gzip");
    let mut at = 0;
    while at < input.len() && !h.done_fields {
        let b = input[at];
        if h.have < 10 {
            h.fixed[h.have] = b;
            h.have += 1;
            at += 1;
            if h.have == 10 {
                let [id1, id2, cm, flags, ..] = h.fixed;
                if id1 != 0x1f || id2 != 0x8b || cm != 8 || flags & 0xe0 != 0 {
                    return Err(bad);
                }
                h.hcrc_left = if flags & FHCRC != 0 { 2 } else { 0 };
                h.in_name = flags & FNAME != 0;
                h.in_comment = flags & FCOMMENT != 0;
                h.extra_have = if flags & FEXTRA != 0 { 0 } else { 2 };
            }
        } else if h.extra_have < 2 {
            h.extra_len[h.extra_have] = b;
            h.extra_have += 1;
            at += 1;
            if h.extra_have == 2 {
                h.extra_left = u16::from_le_bytes(h.extra_len) as usize;
            }
        } else if h.extra_left > 0 {
            let n = h.extra_left.min(input.len() - at);
            h.extra_left -= n;
            at += n;
        } else if h.in_name {
            h.in_name = b != 0;
            at += 1;
        } else if h.in_comment {
            h.in_comment = b != 0;
            at += 1;
        } else if h.hcrc_left > 0 {
            h.hcrc_left -= 1;
            at += 1;
        }
        h.done_fields = h.have == 10
            && h.extra_have == 2
            && h.extra_left == 0
            && !h.in_name
            && !h.in_comment
            && h.hcrc_left == 0;
    }
    Ok(at)
}

// ---- snappy framing format --------------------------------------------

pub struct Snappy {
    /// The chunk header being read: type and 24-bit length.
    head: [u8; 4],
    have_head: usize,
    /// The chunk's data so far (skippable chunks are not kept).
    chunk: Vec<u8>,
    /// Bytes of the current chunk's data still to come; 0 between chunks.
    chunk_len: usize,
    /// The stream identifier has been seen.
    started: bool,
}

const SNAPPY_COMPRESSED: u8 = 0x00;
const SNAPPY_UNCOMPRESSED: u8 = 0x01;
const SNAPPY_PADDING: u8 = 0xfe;
const SNAPPY_STREAM_ID: u8 = 0xff;
const SNAPPY_MAGIC: &[u8] = b"sNaPpY";

impl Snappy {
    fn feed(
        &mut self,
        mut input: &[u8],
        out: &mut Vec<u8>,
        limit: usize,
    ) -> Result<(), DecodeError> {
        let bad = DecodeError::Corrupt(
            "corrupt snappy body: send the snappy framing format (e.g. snappy.StreamCompressor), not a raw block",
        );
        while !input.is_empty() {
            if self.have_head < 4 {
                let n = (4 - self.have_head).min(input.len());
                self.head[self.have_head..self.have_head + n].copy_from_slice(&input[..n]);
                self.have_head += n;
                input = &input[n..];
                if self.have_head < 4 {
                    break;
                }
                let kind = self.head[0];
                let len =
                    u32::from_le_bytes([self.head[1], self.head[2], self.head[3], 0]) as usize;
                let max = match kind {
                    SNAPPY_STREAM_ID => SNAPPY_MAGIC.len(),
                    SNAPPY_COMPRESSED => SNAPPY_CHUNK_MAX_BYTES,
                    SNAPPY_UNCOMPRESSED => 4 + SNAPPY_BLOCK_MAX_BYTES,
                    // Skippable chunks (0x80..=0xfe), of any length.
                    0x80..=SNAPPY_PADDING => usize::MAX,
                    _ => return Err(bad),
                };
                if (kind != SNAPPY_STREAM_ID && !self.started)
                    || len > max
                    || (kind == SNAPPY_STREAM_ID && len != SNAPPY_MAGIC.len())
                    || (kind <= SNAPPY_UNCOMPRESSED && len < 4)
                {
                    return Err(bad);
                }
                self.chunk.clear();
                self.chunk_len = len;
            }
            let kind = self.head[0];
            let n = self.chunk_len.min(input.len());
            if (0x80..=SNAPPY_PADDING).contains(&kind) {
                // Skipped without being kept.
            } else {
                if self.chunk.capacity() == 0 {
                    self.chunk.reserve_exact(SNAPPY_CHUNK_MAX_BYTES);
                }
                self.chunk.extend_from_slice(&input[..n]);
            }
            self.chunk_len -= n;
            input = &input[n..];
            if self.chunk_len == 0 {
                self.have_head = 0;
                self.end_chunk(out, limit, bad)?;
            }
        }
        Ok(())
    }

    /// A whole chunk has arrived: checks and decodes it.
    fn end_chunk(
        &mut self,
        out: &mut Vec<u8>,
        limit: usize,
        bad: DecodeError,
    ) -> Result<(), DecodeError> {
        let kind = self.head[0];
        if kind == SNAPPY_STREAM_ID {
            if self.chunk != SNAPPY_MAGIC {
                return Err(bad);
            }
            self.started = true;
            return Ok(());
        }
        if kind > SNAPPY_UNCOMPRESSED {
            return Ok(());
        }
        let (sum, data) = self.chunk.split_at(4);
        let want = u32::from_le_bytes([sum[0], sum[1], sum[2], sum[3]]);
        let start = out.len();
        if kind == SNAPPY_COMPRESSED {
            let len = snap::raw::decompress_len(data).map_err(|_| bad)?;
            if len > SNAPPY_BLOCK_MAX_BYTES {
                return Err(bad);
            }
            if start + len > limit {
                return Err(DecodeError::TooLarge);
            }
            grow_within(out, start + len, limit);
            out.resize(start + len, 0);
            let n = snap::raw::Decoder::new()
                .decompress(data, &mut out[start..])
                .map_err(|_| bad)?;
            out.truncate(start + n);
        } else {
            if start + data.len() > limit {
                return Err(DecodeError::TooLarge);
            }
            grow_within(out, start + data.len(), limit);
            out.extend_from_slice(data);
        }
        let crc = !crc_update(&CRC32C_TABLE, !0, &out[start..]);
        let masked = crc.rotate_right(15).wrapping_add(0xa282_ead8);
        if masked != want {
            return Err(DecodeError::Corrupt(
                "snappy checksum mismatch: the body was damaged",
            ));
        }
        Ok(())
    }
}

/// Makes room for `len` bytes in `out`, doubling its capacity as a `Vec`
/// does but never past `cap`, so a body at the limit holds no more.
fn grow_within(out: &mut Vec<u8>, len: usize, cap: usize) {
    if len > out.capacity() {
        let want = (out.capacity() * 2).max(len).min(cap.max(len));
        out.reserve_exact(want - out.len());
    }
}

// ---- checksums --------------------------------------------------------

/// CRC-32 (gzip's) and CRC-32C (snappy's), reflected, one table each.
pub(crate) const CRC32_TABLE: [u32; 256] = crc_table(0xedb8_8320);
const CRC32C_TABLE: [u32; 256] = crc_table(0x82f6_3b78);

const fn crc_table(poly: u32) -> [u32; 256] {
    let mut table = [0u32; 256];
    let mut i = 0;
    while i < 256 {
        let mut c = i as u32;
        let mut k = 0;
        while k < 8 {
            c = if c & 1 != 0 { poly ^ (c >> 1) } else { c >> 1 };
            k += 1;
        }
        table[i] = c;
        i += 1;
    }
    table
}

/// Continues a pre-inverted CRC over `data`.
pub(crate) fn crc_update(table: &[u32; 256], mut crc: u32, data: &[u8]) -> u32 {
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xff) as usize] ^ (crc >> 8);
    }
    crc
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &[u8] = b"up{a=\"b\"} 1\nother 2.5\n";

    /// `TEXT` as `gzip` wrote it (with FNAME `t.txt`).
    const GZ: [u8; 48] = [
        0x1f, 0x8b, 0x08, 0x08, 0x43, 0x45, 0x0f, 0x6b, 0x00, 0x03, 0x74, 0x2e, 0x74, 0x78, 0x74,
        0x00, 0x2b, 0x2d, 0xa8, 0x4e, 0xb4, 0x55, 0x4a, 0x52, 0xaa, 0x55, 0x30, 0xe4, 0xca, 0x2f,
        0xc9, 0x48, 0x2d, 0x52, 0x30, 0xd2, 0x33, 0xe5, 0x02, 0x00, 0x5b, 0xff, 0x33, 0xfc, 0x16,
        0x00, 0x00, 0x00,
    ];

    /// The same member with every optional header field: FEXTRA, FNAME,
    /// FCOMMENT and FHCRC.
    fn gz_all_fields() -> Vec<u8> {
        let mut g = vec![
            0x1f,
            0x8b,
            8,
            FEXTRA | FNAME | FCOMMENT | FHCRC,
            0,
            0,
            0,
            0,
            0,
            3,
        ];
        g.extend_from_slice(&[3, 0, b'x', b'y', b'z']);
        g.extend_from_slice(b"name\0comment\0");
        g.extend_from_slice(&[0xaa, 0xbb]);
        g.extend_from_slice(&GZ[16..]);
        g
    }

    fn decode(d: &mut Decoder, parts: &[&[u8]], limit: usize) -> Result<Vec<u8>, DecodeError> {
        let mut out = Vec::new();
        for p in parts {
            d.feed(p, &mut out, limit)?;
        }
        d.finish()?;
        Ok(out)
    }

    #[test]
    fn gzip_in_every_split() {
        let two: Vec<u8> = [&GZ[..], &gz_all_fields()].concat();
        for stream in [GZ.to_vec(), gz_all_fields(), two] {
            let want: Vec<u8> = TEXT.repeat(1 + usize::from(stream.len() > 70));
            for split in 0..=stream.len() {
                let (a, b) = stream.split_at(split);
                let got = decode(&mut Decoder::gzip(), &[a, b], 1000);
                assert_eq!(got.as_deref(), Ok(&want[..]), "split at {split}");
            }
            let bytes: Vec<&[u8]> = stream.chunks(1).collect();
            assert_eq!(decode(&mut Decoder::gzip(), &bytes, 1000).unwrap(), want);
        }
    }

    #[test]
    fn gzip_errors() {
        let gz = GZ.to_vec();
        assert_eq!(
            decode(&mut Decoder::gzip(), &[&gz], TEXT.len()).unwrap(),
            TEXT
        );
        assert_eq!(
            decode(&mut Decoder::gzip(), &[&gz], TEXT.len() - 1),
            Err(DecodeError::TooLarge)
        );
        let corrupt = |bytes: &[u8]| {
            matches!(
                decode(&mut Decoder::gzip(), &[bytes], 1000),
                Err(DecodeError::Corrupt(_))
            )
        };
        assert!(corrupt(b""), "empty");
        assert!(corrupt(&gz[..gz.len() - 1]), "truncated");
        assert!(corrupt(b"up 1\n"), "plain text");
        let mut bad_crc = gz.clone();
        bad_crc[40] ^= 1;
        assert!(corrupt(&bad_crc), "checksum");
        let mut trailing = gz.clone();
        trailing.extend_from_slice(b"junk");
        assert!(corrupt(&trailing), "trailing junk");
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        // About 1 MiB of output from 2 KiB of deflate data.
        let mut d = Decoder::gzip();
        let mut out = Vec::new();
        // Fixed-Huffman block: a literal, then repeated length-258 matches
        // at distance 1 (each 258 bytes of output for a few bits).
        let mut stream = vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 3];
        stream.extend_from_slice(&bomb_deflate(4000));
        let limit = 64 * 1024;
        let r = d.feed(&stream, &mut out, limit);
        assert_eq!(r, Err(DecodeError::TooLarge));
        assert!(
            out.len() <= limit + 1 && out.capacity() <= limit + 1,
            "{}",
            out.capacity()
        );
    }

    /// A deflate stream of one fixed-Huffman block: `'a'`, then `matches`
    /// copies of (length 258, distance 1), not terminated.
    fn bomb_deflate(matches: usize) -> Vec<u8> {
        let mut bits: Vec<bool> = Vec::new();
        let mut put = |value: u32, n: u32, reversed: bool| {
            for i in 0..n {
                let bit = if reversed {
                    (value >> (n - 1 - i)) & 1
                } else {
                    (value >> i) & 1
                };
                bits.push(bit == 1);
            }
        };
        put(1, 1, false); // BFINAL
        put(1, 2, false); // BTYPE = fixed
        put(0x30 + u32::from(b'a'), 8, true); // literal 'a'
        for _ in 0..matches {
            put(0xc5, 8, true); // length code 285 (258): 11000101
            put(0, 5, true); // distance code 0 (1)
        }
        let mut out = vec![0u8; bits.len().div_ceil(8)];
        for (i, b) in bits.iter().enumerate() {
            if *b {
                out[i / 8] |= 1 << (i % 8);
            }
        }
        out
    }

    fn snappy_framed(data: &[u8]) -> Vec<u8> {
        use std::io::Write as _;
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(data).unwrap();
        w.into_inner().unwrap()
    }

    #[test]
    fn snappy_framed_in_splits() {
        // Compressible and incompressible parts: both chunk kinds.
        let mut data = TEXT.repeat(5000);
        let mut x = 1u32;
        for _ in 0..100_000 {
            x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
            data.push((x >> 24) as u8);
        }
        let stream = snappy_framed(&data);
        for step in [1, 7, 4096, 65_540, stream.len()] {
            let parts: Vec<&[u8]> = stream.chunks(step).collect();
            let got = decode(&mut Decoder::snappy(), &parts, data.len()).unwrap();
            assert!(got == data, "step {step}");
        }
        assert_eq!(
            decode(&mut Decoder::snappy(), &[&stream], data.len() - 1),
            Err(DecodeError::TooLarge)
        );
        let empty = snappy_framed(b"");
        assert_eq!(decode(&mut Decoder::snappy(), &[&empty], 10).unwrap(), b"");
    }

    #[test]
    fn snappy_errors() {
        let corrupt = |bytes: &[u8]| {
            matches!(
                decode(&mut Decoder::snappy(), &[bytes], 1 << 20),
                Err(DecodeError::Corrupt(_))
            )
        };
        let raw_block = snap::raw::Encoder::new().compress_vec(TEXT).unwrap();
        assert!(corrupt(&raw_block), "a raw block is not the framing format");
        assert_eq!(decode(&mut Decoder::snappy(), &[b""], 10).unwrap(), b"");
        let stream = snappy_framed(TEXT);
        assert!(corrupt(&stream[..stream.len() - 1]), "truncated");
        let mut bad = stream.clone();
        let last = bad.len() - 1;
        bad[last] ^= 0x20;
        assert!(corrupt(&bad), "checksum");
        // A reserved unskippable chunk type.
        let mut reserved = stream.clone();
        reserved.extend_from_slice(&[0x02, 1, 0, 0, 0]);
        assert!(corrupt(&reserved), "reserved chunk");
        // Skippable chunks and padding are skipped.
        let mut skip = stream.clone();
        skip.extend_from_slice(&[0xfe, 3, 0, 0, 0, 0, 0, 0x80, 1, 0, 0, 9]);
        assert_eq!(decode(&mut Decoder::snappy(), &[&skip], 100).unwrap(), TEXT);
    }

    #[test]
    fn never_panics_on_noise_or_damaged_streams() {
        let mut x = 7u32;
        let mut noise = |n: usize| -> Vec<u8> {
            (0..n)
                .map(|_| {
                    x = x.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
                    (x >> 24) as u8
                })
                .collect()
        };
        let valid = [
            GZ.to_vec(),
            gz_all_fields(),
            snappy_framed(&TEXT.repeat(50)),
        ];
        for round in 0..2000 {
            let mut input = if round % 2 == 0 {
                noise(round % 300)
            } else {
                valid[round % 3].clone()
            };
            // Damage a few bytes of the valid ones; start some noise with a
            // valid header so that it reaches the inner decoders.
            for i in noise(3) {
                if !input.is_empty() {
                    let at = usize::from(i) % input.len();
                    input[at] ^= noise(1)[0] | 1;
                }
            }
            if round % 4 == 0 {
                input.splice(0..0, valid[round % 3][..10].iter().copied());
            }
            for mut d in [Decoder::gzip(), Decoder::snappy()] {
                let mut out = Vec::new();
                let step = 1 + round % 17;
                for part in input.chunks(step) {
                    if d.feed(part, &mut out, 4096).is_err() {
                        break;
                    }
                }
                let _ = d.finish();
                assert!(out.len() <= 4096);
            }
        }
    }

    #[test]
    fn decoder_state_is_within_its_bound() {
        assert!(std::mem::size_of::<Gzip>() <= DECODER_MAX_BYTES);
        assert!(std::mem::size_of::<Snappy>() + SNAPPY_CHUNK_MAX_BYTES <= DECODER_MAX_BYTES);
    }

    #[test]
    fn checksums_match_their_check_values() {
        // The standard check value of each CRC: the CRC of "123456789".
        assert_eq!(!crc_update(&CRC32_TABLE, !0, b"123456789"), 0xcbf4_3926);
        assert_eq!(!crc_update(&CRC32C_TABLE, !0, b"123456789"), 0xe306_9283);
    }
}

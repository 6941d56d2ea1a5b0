//! CRC-32 (IEEE 802.3, the one of zlib, gzip and PNG) over a snapshot, so
//! that a torn, truncated or bit-flipped file is told from a good one. It
//! uses the gzip decoder's table and loop (`decompress`); a byte at a time
//! is far faster than the disk the snapshot goes to.
//!
//! # Memory
//! A `u32` of state (the table is the gzip decoder's, static).

use crate::decompress::{CRC32_TABLE, crc_update};

/// A running CRC-32.
#[derive(Debug, Clone, Copy)]
pub struct Crc32(u32);

impl Default for Crc32 {
    fn default() -> Crc32 {
        Crc32(!0)
    }
}

impl Crc32 {
    pub fn update(&mut self, bytes: &[u8]) {
        self.0 = crc_update(&CRC32_TABLE, self.0, bytes);
    }

    /// The checksum of everything given so far.
    pub fn value(&self) -> u32 {
        !self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn crc(bytes: &[u8]) -> u32 {
        let mut c = Crc32::default();
        c.update(bytes);
        c.value()
    }

    #[test]
    fn known_values() {
        // The check value of CRC-32/ISO-HDLC, and two from zlib's crc32().
        assert_eq!(crc(b"123456789"), 0xCBF4_3926);
        assert_eq!(crc(b""), 0);
        assert_eq!(
            crc(b"The quick brown fox jumps over the lazy dog"),
            0x414F_A339
        );
    }

    #[test]
    fn pieces_give_the_sum_of_the_whole() {
        let text = b"push-gateway snapshot";
        for split in 0..=text.len() {
            let mut c = Crc32::default();
            c.update(&text[..split]);
            c.update(&text[split..]);
            assert_eq!(c.value(), crc(text), "split at {split}");
        }
    }

    #[test]
    fn any_flipped_bit_changes_it() {
        let text = b"0123456789abcdef".repeat(4);
        let good = crc(&text);
        for bit in 0..text.len() * 8 {
            let mut bad = text.clone();
            bad[bit / 8] ^= 1 << (bit % 8);
            assert_ne!(crc(&bad), good, "bit {bit}");
        }
    }
}

//! Arbitrary bytes through the compressed-body decoders, in process:
//! `decompress::Decoder` for gzip and snappy (framed), fed in two reads.
//!
//! Input: one byte choosing the limit (0 to 255 KiB), one choosing where
//! the body splits, then the body.
//!
//! Checks: never a panic; the output stays within the limit; the same
//! result (bytes, or error) whether the body arrives in one read or two.
#![no_main]

use libfuzzer_sys::fuzz_target;
use push_gateway::decompress::Decoder;

fn run(mut d: Decoder, parts: &[&[u8]], limit: usize) -> Result<Vec<u8>, String> {
    let mut out = Vec::new();
    for p in parts {
        d.feed(p, &mut out, limit).map_err(|e| e.to_string())?;
        assert!(out.len() <= limit, "decoded past the limit");
    }
    d.finish().map_err(|e| e.to_string())?;
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 2 {
        return;
    }
    let limit = usize::from(data[0]) * 1024;
    let body = &data[2..];
    let split = usize::from(data[1]) % (body.len() + 1);
    let (a, b) = body.split_at(split);
    for make in [Decoder::gzip as fn() -> Decoder, Decoder::snappy] {
        let whole = run(make(), &[body], limit);
        let parts = run(make(), &[a, b], limit);
        assert_eq!(
            whole, parts,
            "a body split in two reads decodes differently"
        );
    }
});

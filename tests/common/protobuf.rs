//! A minimal encoder of delimited `MetricFamily` messages, to build the
//! protobuf push bodies the tests send (the gateway only decodes them).

pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field (`bytes`, `string` or a nested message).
pub fn bytes_field(out: &mut Vec<u8>, field: u64, b: &[u8]) {
    varint(out, field << 3 | 2);
    varint(out, b.len() as u64);
    out.extend_from_slice(b);
}

/// One encoded family, prefixed with its length as a push body holds it.
pub fn delimited(family: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    varint(&mut out, family.len() as u64);
    out.extend_from_slice(family);
    out
}

/// A histogram family `h` whose one metric has a label of `label_bytes`
/// bytes and `buckets` empty buckets: every bucket line of its text repeats
/// the label, so a small body decodes to a lot of text.
pub fn histogram_body(label_bytes: usize, buckets: usize) -> Vec<u8> {
    let mut label = Vec::new();
    bytes_field(&mut label, 1, b"l");
    bytes_field(&mut label, 2, &vec![b'v'; label_bytes]);
    let mut hist = Vec::new();
    for _ in 0..buckets {
        bytes_field(&mut hist, 3, &[]);
    }
    let mut metric = Vec::new();
    bytes_field(&mut metric, 1, &label);
    bytes_field(&mut metric, 7, &hist);
    let mut family = Vec::new();
    bytes_field(&mut family, 1, b"h");
    family.extend_from_slice(&[3 << 3, 4]); // type: histogram
    bytes_field(&mut family, 4, &metric);
    delimited(&family)
}

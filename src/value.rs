//! Numbers of the text format, read and written as the Go libraries of
//! the Prometheus Pushgateway read and write them: a sample value parsed
//! as `strconv.ParseFloat` parses it, and a histogram bound (`le`) or
//! summary quantile (`quantile`) written in the one form the Pushgateway
//! serves (`strconv.FormatFloat(f, 'g', -1, 64)`: `1`, `0.25`, `1e-05`,
//! `1e+06`, `+Inf`), so that `le="1.0"` from one client and `le="1"` from
//! another are the same series. Memory: none.

use std::io::Write as _;

use crate::exposition::LineError;

/// Parses a sample value as Go's `strconv.ParseFloat` does for the format
/// (and so as the Pushgateway does): decimal and exponent forms, `NaN`
/// without a sign, `Inf` and `Infinity` with or without one (any case).
/// A number out of the `f64` range (`1e309`) is an error, not infinity.
pub fn parse_value(token: &str) -> Result<f64, LineError> {
    // Most values are small integers: no need for the float parser.
    if let Some(n) = small_integer(token.as_bytes()) {
        return Ok(n as f64);
    }
    let plausible = token
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'+' | b'-' | b'.'));
    if !plausible {
        return Err(LineError::Value);
    }
    let v = token.parse::<f64>().map_err(|_| LineError::Value)?;
    if v.is_finite() {
        return Ok(v);
    }
    let word = token.strip_prefix(['+', '-']).unwrap_or(token);
    let ok = if v.is_nan() {
        word.len() == token.len()
    } else {
        word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("infinity")
    };
    if ok { Ok(v) } else { Err(LineError::Value) }
}

/// The value of 1 to 15 ASCII digits (exact as an `f64`), or `None` if
/// `digits` is anything else.
#[inline]
pub(crate) fn small_integer(digits: &[u8]) -> Option<u64> {
    if !(1..=15).contains(&digits.len()) {
        return None;
    }
    let mut n = 0;
    let mut rest = digits;
    // Eight digits at a time: values are often counters of ten digits or
    // more, and a byte loop costs about ten instructions a digit.
    if let Some((eight, tail)) = rest.split_first_chunk::<8>() {
        n = eight_digits(u64::from_le_bytes(*eight))?;
        rest = tail;
    }
    for &d in rest {
        if !d.is_ascii_digit() {
            return None;
        }
        n = n * 10 + u64::from(d - b'0');
    }
    Some(n)
}

/// The value of the eight ASCII digits in `w`, the first in its low byte,
/// or `None` if a byte is not a digit: all eight at once (SWAR, as in
/// Lemire's "Quickly parsing eight digits").
fn eight_digits(w: u64) -> Option<u64> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    let d = w.wrapping_sub(ONES * u64::from(b'0'));
    // A digit leaves 0..=9 in its byte: no borrow (high bit clear) and
    // still below 0x80 after adding 0x76. Other bytes fail one of the two.
    if (d | d.wrapping_add(ONES * 0x76)) & (ONES * 0x80) != 0 {
        return None;
    }
    // Each 16-bit lane's low byte becomes 10 * its first digit + its
    // second; two multiplies then sum the four pairs, weighted 10^6, 10^4,
    // 100 and 1, into the high 32 bits.
    let pairs = d.wrapping_mul(10).wrapping_add(d >> 8);
    let mask = 0x0000_00ff_0000_00ff;
    let high = (pairs & mask).wrapping_mul(100 + (1_000_000 << 32));
    let low = ((pairs >> 16) & mask).wrapping_mul(1 + (10_000 << 32));
    Some(high.wrapping_add(low) >> 32)
}

/// Most bytes [`write_go_float`] writes: a sign, 17 digits, a point and
/// an exponent `e-308`.
pub const GO_FLOAT_MAX_BYTES: usize = 24;

/// Writes `v` as the Pushgateway writes a bound or quantile: Go's shortest
/// `%g` (exponent form below 1e-4 and from 1e+06 on, with a signed
/// exponent of at least two digits), `NaN`, `+Inf`, `-Inf`, and `0` for
/// both zeros.
pub fn write_go_float(out: &mut Vec<u8>, v: f64) {
    let mut buf = GoFloat::default();
    out.extend_from_slice(buf.format(v));
}

/// Whether `text` (a label value) is a number, written the way
/// [`write_go_float`] writes it.
pub fn is_go_float(text: &str) -> bool {
    let b = text.as_bytes();
    // Integers below 1e6 without a leading zero are their own form.
    if small_integer(b).is_some() && b.len() <= 6 {
        return b.len() == 1 || b[0] != b'0';
    }
    match parse_value(text) {
        Ok(v) => GoFloat::default().format(v) == b,
        Err(_) => false,
    }
}

/// Room for one formatted number, on the stack.
struct GoFloat {
    buf: [u8; GO_FLOAT_MAX_BYTES],
    len: usize,
}

impl Default for GoFloat {
    fn default() -> GoFloat {
        GoFloat {
            buf: [0; GO_FLOAT_MAX_BYTES],
            len: 0,
        }
    }
}

impl GoFloat {
    fn push(&mut self, b: u8) {
        if self.len < self.buf.len() {
            self.buf[self.len] = b;
            self.len += 1;
        }
    }

    fn extend(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.push(b);
        }
    }

    fn format(&mut self, v: f64) -> &[u8] {
        self.len = 0;
        if v.is_nan() {
            self.extend(b"NaN");
        } else if v.is_infinite() {
            self.extend(if v > 0.0 { b"+Inf" } else { b"-Inf" });
        } else if v == 0.0 {
            self.push(b'0');
        } else {
            self.finite(v);
        }
        &self.buf[..self.len]
    }

    fn finite(&mut self, v: f64) {
        // Rust's `{:e}` gives the shortest digits that read back as `v`,
        // the digits Go picks too: `d.ddde[-]x`.
        let mut sci = [0u8; 32];
        let mut cursor = std::io::Cursor::new(&mut sci[..]);
        let _ = write!(cursor, "{:e}", v.abs());
        let len = cursor.position() as usize;
        let sci = &sci[..len];
        let e_at = sci.iter().position(|&b| b == b'e').unwrap_or(len);
        let mut digits = [b'0'; 20];
        let mut nd = 0;
        for &d in &sci[..e_at] {
            if d.is_ascii_digit() && nd < digits.len() {
                digits[nd] = d;
                nd += 1;
            }
        }
        let digits = &digits[..nd.max(1)];
        let exp: i32 = std::str::from_utf8(&sci[(e_at + 1).min(len)..])
            .ok()
            .and_then(|e| e.parse().ok())
            .unwrap_or(0);
        if v < 0.0 {
            self.push(b'-');
        }
        if !(-4..6).contains(&exp) {
            self.push(digits[0]);
            if digits.len() > 1 {
                self.push(b'.');
                self.extend(&digits[1..]);
            }
            self.push(b'e');
            self.push(if exp < 0 { b'-' } else { b'+' });
            let e = exp.unsigned_abs();
            if e >= 100 {
                self.push(b'0' + (e / 100) as u8);
            }
            self.push(b'0' + (e / 10 % 10) as u8);
            self.push(b'0' + (e % 10) as u8);
        } else if exp < 0 {
            self.extend(b"0.");
            for _ in 0..(-exp - 1) {
                self.push(b'0');
            }
            self.extend(digits);
        } else {
            let int_len = exp as usize + 1;
            for i in 0..int_len {
                self.push(digits.get(i).copied().unwrap_or(b'0'));
            }
            if digits.len() > int_len {
                self.push(b'.');
                self.extend(&digits[int_len..]);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn go(v: f64) -> String {
        let mut out = Vec::new();
        write_go_float(&mut out, v);
        String::from_utf8(out).unwrap()
    }

    /// Each as the Pushgateway 1.5 served it (`le` of a pushed bucket).
    #[test]
    fn bounds_are_written_as_go_writes_them() {
        for (v, want) in [
            (1.0, "1"),
            (0.25, "0.25"),
            (1e-5, "1e-05"),
            (0.0001, "0.0001"),
            (2.5, "2.5"),
            (1000.0, "1000"),
            (123456.0, "123456"),
            (1e6, "1e+06"),
            (1.23456789e8, "1.23456789e+08"),
            (1e20, "1e+20"),
            (1e21, "1e+21"),
            (1e-300, "1e-300"),
            (-0.0, "0"),
            (-2.5, "-2.5"),
            (-1e-7, "-1e-07"),
            (0.1, "0.1"),
            (0.005, "0.005"),
            (f64::INFINITY, "+Inf"),
            (f64::NEG_INFINITY, "-Inf"),
            (f64::NAN, "NaN"),
            (1.796159400459744e9, "1.796159400459744e+09"),
            (f64::MAX, "1.7976931348623157e+308"),
            (5e-324, "5e-324"),
        ] {
            assert_eq!(go(v), want, "{v}");
            assert!(go(v).len() <= GO_FLOAT_MAX_BYTES);
        }
        for (text, canonical) in [
            ("1", true),
            ("1.0", false),
            ("01", false),
            ("0", true),
            ("-0", false),
            ("+Inf", true),
            ("+inf", false),
            ("1e-05", true),
            ("0.00001", false),
            ("1000000", false),
            ("1e+06", true),
            ("999999", true),
            ("x", false),
        ] {
            assert_eq!(is_go_float(text), canonical, "{text}");
        }
    }

    #[test]
    fn integer_values() {
        let mut digits = String::new();
        for len in 1..=17 {
            digits.push(char::from(b'0' + (len * 7 % 10) as u8));
            let want: f64 = digits.parse().unwrap();
            assert_eq!(parse_value(&digits), Ok(want), "{digits}");
            let line = format!("x {digits}");
            match crate::exposition::parse_line(line.as_bytes()) {
                Ok(crate::exposition::Line::Sample(s)) => assert_eq!(s.value, want, "{digits}"),
                other => panic!("{line}: {other:?}"),
            }
            // A byte that is not a digit, anywhere, goes to the float parser.
            for at in 0..len {
                for c in [b'/', b':', b'.', b'e', b' ', b'\0', 0x80, 0xb9] {
                    let mut token = digits.clone().into_bytes();
                    token[at] = c;
                    let Ok(token) = String::from_utf8(token) else {
                        continue;
                    };
                    assert_eq!(
                        parse_value(&token).ok(),
                        token.parse::<f64>().ok().filter(|v| v.is_finite()),
                        "{token:?}"
                    );
                }
            }
        }
    }
}

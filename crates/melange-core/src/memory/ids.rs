//! Hex text for message ids and receipts, written into stack buffers and copied once into
//! their `Arc<str>` (`format!` with padded hex, then a `String` → `Arc<str>` copy, was a
//! visible share of every publish and receive). Sixteen digits are written and read eight
//! at a time in a `u64` (a digit at a time, with a table, was about 400 instructions per
//! receipt, written on every receive and read on every acknowledgement).

/// A short ASCII text built on the stack.
pub(super) struct AsciiBuf {
    bytes: [u8; 64],
    len: usize,
}

impl AsciiBuf {
    pub(super) fn new() -> Self {
        Self {
            bytes: [0; 64],
            len: 0,
        }
    }

    /// Appends ASCII text; what would not fit is left out (callers write fixed, short
    /// shapes well inside the buffer).
    pub(super) fn push(&mut self, text: &str) {
        for &byte in text.as_bytes() {
            self.push_byte(byte);
        }
    }

    /// Appends the low `digits` hex digits of `value`, zero-padded.
    pub(super) fn push_hex(&mut self, value: u64, digits: u32) {
        let mut text = [0; 16];
        let text = &mut text[..(digits as usize).min(16)];
        write_hex(text, value);
        for &byte in &*text {
            self.push_byte(byte);
        }
    }

    fn push_byte(&mut self, byte: u8) {
        if let Some(slot) = self.bytes.get_mut(self.len)
            && byte.is_ascii()
        {
            *slot = byte;
            self.len += 1;
        }
    }

    pub(super) fn as_str(&self) -> &str {
        // Only ASCII bytes are ever written.
        std::str::from_utf8(&self.bytes[..self.len]).unwrap_or_default()
    }
}

/// Writes `value` in hex into all of `slot`, zero-padded; only its low `slot.len()` digits
/// when it has more.
pub(super) fn write_hex(slot: &mut [u8], value: u64) {
    let digits = hex16(value);
    let (padding, tail) = slot.split_at_mut(slot.len().saturating_sub(16));
    padding.fill(b'0');
    tail.copy_from_slice(&digits[16 - tail.len()..]);
}

/// `value` as 16 lowercase hex digits, zero-padded.
pub(super) fn hex16(value: u64) -> [u8; 16] {
    let mut text = [0; 16];
    text[..8].copy_from_slice(&hex8((value >> 32) as u32).to_be_bytes());
    text[8..].copy_from_slice(&hex8(value as u32).to_be_bytes());
    text
}

/// Eight hex digits of `value`, as the big-endian bytes of the result.
fn hex8(value: u32) -> u64 {
    // One nibble per byte, the most significant in the highest byte.
    let x = u64::from(value);
    let x = (x | x << 16) & 0x0000_ffff_0000_ffff;
    let x = (x | x << 8) & 0x00ff_00ff_00ff_00ff;
    let x = (x | x << 4) & 0x0f0f_0f0f_0f0f_0f0f;
    // 1 in each byte whose nibble is 10 or more (adding 6 carries into bit 4), then ASCII:
    // '0' + n, plus the 39 between '9' + 1 and 'a' for letters. No byte exceeds 0x66, so
    // nothing carries between bytes.
    let letters = ((x + 0x0606_0606_0606_0606) >> 4) & 0x0101_0101_0101_0101;
    x + 0x3030_3030_3030_3030 + letters * 39
}

/// The value of 16 hex digits (either case), or `None` if one is not a hex digit.
pub(super) fn parse_hex16(text: &[u8; 16]) -> Option<u64> {
    let (high, low) = text.split_at(8);
    let high = parse_hex8(u64::from_be_bytes(high.try_into().ok()?))?;
    let low = parse_hex8(u64::from_be_bytes(low.try_into().ok()?))?;
    Some(u64::from(high) << 32 | u64::from(low))
}

/// Eight hex digits given as the big-endian bytes of `chunk`.
fn parse_hex8(chunk: u64) -> Option<u32> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    if chunk & HIGH != 0 {
        return None;
    }
    // The high bit of each byte of `x` that is at least `c` (every byte is below 0x80, so
    // setting its high bit keeps the subtraction inside the byte).
    let at_least = |x: u64, c: u8| ((x | HIGH) - u64::from(c) * ONES) & HIGH;
    let digit = at_least(chunk, b'0') & !at_least(chunk, b'9' + 1);
    // Letters of either case, folded to lowercase.
    let folded = chunk | 0x2020_2020_2020_2020;
    let letter = at_least(folded, b'a') & !at_least(folded, b'f' + 1);
    if digit | letter != HIGH {
        return None;
    }
    // '0'..'9' → 0..9 and 'a'..'f' → 1..6 in the low nibble; letters get 9 more.
    let x = (chunk & 0x0f0f_0f0f_0f0f_0f0f) + (letter >> 7) * 9;
    // Pack the eight nibbles, the first (highest) byte's most significant.
    let x = (x | x >> 4) & 0x00ff_00ff_00ff_00ff;
    let x = (x | x >> 8) & 0x0000_ffff_0000_ffff;
    let x = (x | x >> 16) & 0x0000_0000_ffff_ffff;
    Some(x as u32)
}

#[cfg(test)]
mod tests {
    use super::{AsciiBuf, hex16, parse_hex16, write_hex};

    /// A spread of values: every nibble value in every position, powers of two, and a
    /// pseudo-random walk.
    fn samples() -> Vec<u64> {
        let mut values = vec![0, 1, u64::MAX, 0x0123_4567_89ab_cdef, 0xfedc_ba98_7654_3210];
        for position in 0..16 {
            for nibble in 0..16_u64 {
                values.push(nibble << (4 * position));
            }
        }
        values.extend((0..64).map(|bit| 1_u64 << bit));
        let mut x = 0x9e37_79b9_7f4a_7c15_u64;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            values.push(x);
        }
        values
    }

    #[test]
    fn sixteen_digits_read_back_and_match_the_formatter() {
        for value in samples() {
            let text = hex16(value);
            assert_eq!(text, *format!("{value:016x}").as_bytes(), "{value:#x}");
            assert_eq!(parse_hex16(&text), Some(value), "{value:#x}");
            let upper: [u8; 16] = format!("{value:016X}").as_bytes().try_into().unwrap();
            assert_eq!(parse_hex16(&upper), Some(value), "{value:#X}");
        }
    }

    #[test]
    fn a_byte_that_is_not_a_hex_digit_anywhere_is_refused() {
        let valid = *b"0123456789abcdef";
        for position in 0..16 {
            for byte in 0..=255_u8 {
                let mut text = valid;
                text[position] = byte;
                let expected = std::str::from_utf8(&text)
                    .ok()
                    .filter(|t| t.bytes().all(|b| b.is_ascii_hexdigit()))
                    .and_then(|t| u64::from_str_radix(t, 16).ok());
                assert_eq!(parse_hex16(&text), expected, "byte {byte:#x} at {position}");
            }
        }
    }

    #[test]
    fn narrow_and_wide_slots_keep_the_low_digits_or_pad_with_zeros() {
        for value in samples() {
            for width in [1, 3, 4, 12, 16, 20] {
                let mut slot = vec![b'?'; width];
                write_hex(&mut slot, value);
                let full = format!("{value:020x}");
                assert_eq!(slot, full.as_bytes()[20 - width..], "{value:#x} in {width}");
            }
        }
    }

    #[test]
    fn hex_is_zero_padded_to_its_width_and_keeps_the_low_digits() {
        let mut text = AsciiBuf::new();
        text.push("mem-");
        text.push_hex(0xab, 4);
        text.push("-");
        text.push_hex(0x1_2345, 3);
        assert_eq!(text.as_str(), "mem-00ab-345");
    }

    #[test]
    fn text_beyond_the_buffer_is_left_out_rather_than_panicking() {
        let mut text = AsciiBuf::new();
        for _ in 0..10 {
            text.push_hex(u64::MAX, 16);
        }
        assert_eq!(text.as_str().len(), 64);
    }
}

//! Hex text for message ids and receipts, written into stack buffers and copied once into
//! their `Arc<str>` (`format!` with padded hex, then a `String` → `Arc<str>` copy, was a
//! visible share of every publish and receive).

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
        const HEX: &[u8; 16] = b"0123456789abcdef";
        for shift in (0..digits).rev() {
            // The index is masked to 0..16.
            self.push_byte(HEX[((value >> (shift * 4)) & 0xf) as usize]);
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
    const HEX: &[u8; 16] = b"0123456789abcdef";
    for (i, byte) in slot.iter_mut().rev().enumerate() {
        let digit = if i < 16 { (value >> (4 * i)) & 0xf } else { 0 };
        // The index is masked to 0..16.
        *byte = HEX[digit as usize];
    }
}

#[cfg(test)]
mod tests {
    use super::AsciiBuf;

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

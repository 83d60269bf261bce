//! Receipts: a delivery's two numbers, `seq` and `nonce`. One is issued per delivery and read
//! per acknowledgement, both on the hot path, so a receipt carries the numbers themselves
//! and its text, `mem-{seq:016x}-{nonce:016x}`, is written only if someone asks for it (a
//! log line, a receipt stored elsewhere); the text reads back to the same numbers.
//!
//! The nonce alone tells a current receipt from any other: nonces are unique in the backend
//! (queue declarations draw from the same counter), so a receipt from another queue, or from
//! an earlier declaration of this one, never matches a message's latest nonce. The queue's
//! incarnation was a third number in every receipt until 2026-11-29.
//!
//! Until 2026-11-30 every receipt was written as text under the backend's lock and parsed
//! back on acknowledgement (3.5% of a pipeline message's instructions, by callgrind).

use super::ids::{hex16, parse_hex16};
use crate::envelope::ReceiptHandle;

/// What a receipt names: a message of a queue and one delivery of it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ReceiptKey {
    pub(super) seq: u64,
    /// Unique per delivery; 0 is never issued.
    pub(super) nonce: u64,
}

/// The length of a receipt: `mem-` and two 16-digit hex numbers separated by `-`.
const RECEIPT_LEN: usize = 4 + 2 * 16 + 1;

impl ReceiptKey {
    /// The receipt: its numbers, written as text only if someone asks for it.
    pub(super) fn to_receipt(self) -> ReceiptHandle {
        ReceiptHandle::numbered([self.seq, self.nonce])
    }

    /// Reads back a receipt built by [`to_receipt`](Self::to_receipt), or its text; `None`
    /// for any other.
    pub(super) fn parse(receipt: &ReceiptHandle) -> Option<Self> {
        if let Some([seq, nonce]) = receipt.numbers() {
            return Some(Self { seq, nonce });
        }
        let text = receipt.as_str();
        // Fast path for the exact shape `text` writes; anything else takes the general one.
        if text.len() == RECEIPT_LEN
            && let Some(parsed) = parse_fixed(text.as_bytes())
        {
            return Some(parsed);
        }
        let mut parts = text.strip_prefix("mem-")?.split('-');
        let mut next = || u64::from_str_radix(parts.next()?, 16).ok();
        let parsed = Self {
            seq: next()?,
            nonce: next()?,
        };
        if parts.next().is_some() {
            return None;
        }
        Some(parsed)
    }
}

/// A receipt's text, as [`ReceiptHandle::as_str`] shows it: `mem-{seq:016x}-{nonce:016x}`.
pub(crate) fn text([seq, nonce]: [u64; 2]) -> Box<str> {
    let mut text = [b'-'; RECEIPT_LEN];
    text[..4].copy_from_slice(b"mem-");
    for (part, value) in [seq, nonce].into_iter().enumerate() {
        let start = 4 + part * 17;
        text[start..start + 16].copy_from_slice(&hex16(value));
    }
    // Only ASCII was written.
    std::str::from_utf8(&text).unwrap_or_default().into()
}

fn parse_fixed(bytes: &[u8]) -> Option<ReceiptKey> {
    if !bytes.starts_with(b"mem-") || bytes.get(20) != Some(&b'-') {
        return None;
    }
    let hex = |start: usize| parse_hex16(bytes.get(start..start + 16)?.try_into().ok()?);
    Some(ReceiptKey {
        seq: hex(4)?,
        nonce: hex(21)?,
    })
}

#[cfg(test)]
mod tests {
    use std::collections::hash_map::RandomState;
    use std::hash::BuildHasher;

    use super::*;

    fn key(seq: u64, nonce: u64) -> ReceiptKey {
        ReceiptKey { seq, nonce }
    }

    #[test]
    fn receipts_read_back_on_the_fast_and_the_general_path() {
        let built = key(u64::MAX, 7).to_receipt();
        assert_eq!(built.as_str(), "mem-ffffffffffffffff-0000000000000007");
        assert_eq!(ReceiptKey::parse(&built), Some(key(u64::MAX, 7)));
        // Its text, handed back as text (as a receipt stored elsewhere comes back), is the
        // same receipt.
        let as_text = ReceiptHandle::new(key(u64::MAX, 7).to_receipt().as_str());
        assert_eq!(ReceiptKey::parse(&as_text), Some(key(u64::MAX, 7)));
        assert_eq!(as_text, key(u64::MAX, 7).to_receipt());
        let state = RandomState::new();
        assert_eq!(
            state.hash_one(&as_text),
            state.hash_one(key(u64::MAX, 7).to_receipt())
        );
        assert_ne!(key(1, 2).to_receipt(), key(1, 3).to_receipt());
        let short = ReceiptHandle::new("mem-1f-2");
        assert_eq!(ReceiptKey::parse(&short), Some(key(0x1f, 2)));
        for bad in [
            "mem-ffffffffffffffff-000000000000000g",
            "mem-fffffffffffffffff000000000000000",
            "mem-1-10000000000000000",
            "mem-1",
            "mem-1-2-3",
            "rcpt-1-2",
            // The earlier shape, with the queue's incarnation first.
            "mem-000000000000001f-ffffffffffffffff-0000000000000007",
        ] {
            assert_eq!(ReceiptKey::parse(&ReceiptHandle::new(bad)), None, "{bad}");
        }
    }
}

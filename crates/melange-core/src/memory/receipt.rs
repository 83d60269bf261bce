//! Receipts: `mem-{seq:016x}-{nonce:016x}`, written in place. One is written per delivery
//! and read per acknowledgement, both on the hot path.
//!
//! The nonce alone tells a current receipt from any other: nonces are unique in the backend
//! (queue declarations draw from the same counter), so a receipt from another queue, or from
//! an earlier declaration of this one, never matches a message's latest nonce. The queue's
//! incarnation was a third number in every receipt until 2026-11-29.
//!
//! Both happen under the backend's lock. Writing them after it is released (envelopes
//! handed out with a stand-in) and reading them before it is taken made the pipeline
//! benchmark slower, not faster: the two extra vectors per call cost more than the shorter
//! hold saved (2026-11-29).

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
    /// The receipt's text, written in place.
    pub(super) fn to_receipt(self) -> ReceiptHandle {
        let mut text = [b'-'; RECEIPT_LEN];
        text[..4].copy_from_slice(b"mem-");
        for (part, value) in [self.seq, self.nonce].into_iter().enumerate() {
            let start = 4 + part * 17;
            text[start..start + 16].copy_from_slice(&hex16(value));
        }
        // Only ASCII was written.
        ReceiptHandle::new(std::str::from_utf8(&text).unwrap_or_default())
    }

    /// Reads back a receipt built by [`to_receipt`](Self::to_receipt); `None` for any other
    /// text.
    pub(super) fn parse(receipt: &ReceiptHandle) -> Option<Self> {
        let text = receipt.as_str();
        // Fast path for the exact shape `to_receipt` writes; anything else takes the general
        // one.
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
    use super::*;

    fn key(seq: u64, nonce: u64) -> ReceiptKey {
        ReceiptKey { seq, nonce }
    }

    #[test]
    fn receipts_read_back_on_the_fast_and_the_general_path() {
        let built = key(u64::MAX, 7).to_receipt();
        assert_eq!(built.as_str(), "mem-ffffffffffffffff-0000000000000007");
        assert_eq!(ReceiptKey::parse(&built), Some(key(u64::MAX, 7)));
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

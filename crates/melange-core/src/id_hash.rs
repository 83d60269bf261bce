//! A hasher for the sequential `u64` ids melange hands out itself (lease ids, in-memory
//! message sequence numbers), also used for the in-memory backend's queue and topic names.
//! SipHash, the standard default, defends against keys chosen by an attacker, which these
//! are not, and was a visible cost per message; a multiply by a 64-bit odd constant spreads
//! sequential ids over all bits, the top ones included.
//!
//! Keeping an id's low bits as they are (so sequential ids take adjacent buckets, which a
//! pipeline walks in order) was tried and undone: acknowledged messages leave long runs of
//! full and deleted buckets, which every lookup of an id no longer there probes through; the
//! in-memory backend's expiry looks such ids up, and cost about six times as much on a
//! 10,000-message backlog (2026-11-29).

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<u64, V, BuildIdHasher>`: a map keyed by ids melange generated.
pub(crate) type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

/// 2^64 divided by the golden ratio, made odd (Fibonacci hashing).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Not used by `u64` keys; correct for any other key all the same.
        for &byte in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(byte)).wrapping_mul(MULTIPLIER);
        }
    }

    fn write_u64(&mut self, id: u64) {
        self.0 = id.wrapping_mul(MULTIPLIER);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::BuildIdHasher;

    #[test]
    fn a_map_keyed_by_sequential_ids_finds_every_id() {
        let mut map: HashMap<u64, u64, BuildIdHasher> = HashMap::default();
        for id in 0..10_000 {
            map.insert(id, id * 2);
        }
        assert!((0..10_000).all(|id| map.get(&id) == Some(&(id * 2))));
        assert_eq!(map.get(&10_000), None);
    }
}

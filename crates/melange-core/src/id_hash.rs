//! A hasher for the sequential `u64` ids melange hands out itself (lease ids, in-memory
//! message sequence numbers), also used for the in-memory backend's queue and topic names.
//! SipHash, the standard default, defends against keys chosen by an attacker, which these
//! are not, and was a visible cost per message.
//!
//! An id keeps its low bits as they are, so sequential ids land in adjacent buckets of a
//! hashbrown table (which picks the bucket from the low bits): the in-memory backend's
//! publisher writes its queue's message slots one after the other and the consumer reads
//! them in that order, which the cache's prefetcher follows; spread over the table by a
//! multiply, every message was a few cache misses of its own on each side (paired runs of
//! the pipeline benchmark: about 4% less CPU per message this way, 2026-11-29). The top seven bits, hashbrown's tag for a
//! bucket, come from a multiply by a 64-bit odd constant, so tags differ between ids.

use std::hash::{BuildHasherDefault, Hasher};

/// `HashMap<u64, V, BuildIdHasher>`: a map keyed by ids melange generated.
pub(crate) type BuildIdHasher = BuildHasherDefault<IdHasher>;

/// See the module documentation.
#[derive(Default)]
pub(crate) struct IdHasher(u64);

/// 2^64 divided by the golden ratio, made odd (Fibonacci hashing).
const MULTIPLIER: u64 = 0x9e37_79b9_7f4a_7c15;

/// The hash bits hashbrown uses as a bucket's tag.
const TAG_BITS: u64 = !(u64::MAX >> 7);

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
        self.0 = id ^ (id.wrapping_mul(MULTIPLIER) & TAG_BITS);
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{HashMap, HashSet};
    use std::hash::Hasher;

    use super::{BuildIdHasher, IdHasher, TAG_BITS};

    #[test]
    fn a_map_keyed_by_sequential_ids_finds_every_id() {
        let mut map: HashMap<u64, u64, BuildIdHasher> = HashMap::default();
        for id in 0..10_000 {
            map.insert(id, id * 2);
        }
        assert!((0..10_000).all(|id| map.get(&id) == Some(&(id * 2))));
        assert_eq!(map.get(&10_000), None);
    }

    #[test]
    fn sequential_ids_keep_their_low_bits_and_get_varied_tags() {
        let hash = |id: u64| {
            let mut hasher = IdHasher::default();
            hasher.write_u64(id);
            hasher.finish()
        };
        for id in [0, 1, 2, 1_000, 1 << 40] {
            assert_eq!(hash(id) & !TAG_BITS, id);
        }
        let tags: HashSet<u64> = (0..1_000).map(|id| hash(id) >> 57).collect();
        assert!(tags.len() > 100, "only {} distinct tags", tags.len());
    }
}

//! A queue's manifests, each kept once: its messages mostly share a few.
//!
//! A stored message names its manifest by its place in the queue's table rather than holding
//! a reference-counted copy. With a shared copy, the publisher's thread counted a reference
//! on every message sent and the consumer's on every message delivered and deleted, all on
//! one counter, whose cache line the two threads then took from each other on every message
//! (and the publisher read the manifest's text from that line, under the backend's lock, to
//! compare it). Now the publisher compares with a copy only it reads, and the consumer alone
//! counts references to the copy that envelopes carry.

use std::sync::Arc;

/// At most this many distinct manifests are kept per queue; a message with another one
/// holds its own copy. Entries are never dropped, so this bounds the table.
const MAX_KEPT: usize = 64;

/// A stored message's manifest.
#[derive(Debug)]
pub(super) enum StoredManifest {
    /// The entry at this place in the queue's [`Manifests`].
    Kept(u32),
    /// Its own copy: the table was full, or the message came from another queue (a
    /// dead-letter move).
    Own(Arc<str>),
}

#[derive(Debug)]
struct Entry {
    /// Read by publishers, to compare.
    text: Box<str>,
    /// Cloned by consumers, into envelopes.
    shared: Arc<str>,
}

/// One queue's table of manifests.
#[derive(Debug, Default)]
pub(super) struct Manifests {
    entries: Vec<Entry>,
    /// The entry the previous message used: the next one most likely uses it too.
    last: usize,
}

impl Manifests {
    /// How a message sent with `manifest` stores it.
    pub(super) fn store(&mut self, manifest: &str) -> StoredManifest {
        let found = match self.entries.get(self.last) {
            Some(entry) if *entry.text == *manifest => Some(self.last),
            _ => self
                .entries
                .iter()
                .position(|entry| *entry.text == *manifest),
        };
        let place = match found {
            Some(place) => place,
            None if self.entries.len() < MAX_KEPT => {
                self.entries.push(Entry {
                    text: manifest.into(),
                    shared: manifest.into(),
                });
                self.entries.len() - 1
            }
            None => return StoredManifest::Own(manifest.into()),
        };
        self.last = place;
        // `place` is below `MAX_KEPT`.
        StoredManifest::Kept(place as u32)
    }

    /// The manifest as an envelope carries it.
    pub(super) fn shared(&self, manifest: &StoredManifest) -> Option<Arc<str>> {
        match manifest {
            StoredManifest::Kept(place) => self
                .entries
                .get(*place as usize)
                .map(|entry| entry.shared.clone()),
            StoredManifest::Own(text) => Some(text.clone()),
        }
    }

    /// The manifest of a message leaving this queue for another (whose table differs).
    pub(super) fn detach(&self, manifest: StoredManifest) -> Option<StoredManifest> {
        match manifest {
            StoredManifest::Own(_) => Some(manifest),
            kept => self.shared(&kept).map(StoredManifest::Own),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(manifests: &Manifests, stored: &StoredManifest) -> String {
        manifests
            .shared(stored)
            .as_deref()
            .unwrap_or("<none>")
            .to_owned()
    }

    #[test]
    fn each_manifest_is_kept_once_and_read_back() {
        let mut manifests = Manifests::default();
        let names = ["A", "B", "A", "C", "B", "B", "A"];
        let stored: Vec<_> = names.iter().map(|name| manifests.store(name)).collect();
        assert_eq!(manifests.entries.len(), 3);
        for (name, stored) in names.iter().zip(&stored) {
            assert!(matches!(stored, StoredManifest::Kept(_)));
            assert_eq!(text(&manifests, stored), *name);
        }
        // Envelopes share the kept copy.
        let (first, second) = (manifests.shared(&stored[0]), manifests.shared(&stored[2]));
        assert!(Arc::ptr_eq(&first.unwrap(), &second.unwrap()));
    }

    #[test]
    fn beyond_the_bound_messages_hold_their_own_copy() {
        let mut manifests = Manifests::default();
        for n in 0..MAX_KEPT {
            assert!(matches!(
                manifests.store(&format!("M{n}")),
                StoredManifest::Kept(_)
            ));
        }
        let extra = manifests.store("one too many");
        assert!(matches!(extra, StoredManifest::Own(_)));
        assert_eq!(text(&manifests, &extra), "one too many");
        assert_eq!(manifests.entries.len(), MAX_KEPT);
        // Known ones are still found.
        let known = manifests.store("M3");
        assert_eq!(text(&manifests, &known), "M3");
    }

    #[test]
    fn a_detached_manifest_reads_the_same_without_the_table() {
        let mut manifests = Manifests::default();
        let kept = manifests.store("OrderCreated");
        let detached = manifests.detach(kept).unwrap();
        assert!(matches!(&detached, StoredManifest::Own(text) if &**text == "OrderCreated"));
        let elsewhere = Manifests::default();
        assert_eq!(text(&elsewhere, &detached), "OrderCreated");
    }
}

//! The visible messages of a standard queue, in enqueue order. Messages sent and not yet
//! received are appended in order and only ever leave from the front, so they sit in a
//! `VecDeque`; those that came back (an expired or released flight) are few and sit in a
//! `BTreeSet`. Every returned message was received, hence sent, before any message still
//! waiting its first receive, so the returned ones go first.
//!
//! The never-received messages are held here whole, not in the queue's table: a publisher
//! appends them and the consumer takes them from the front into the table, which only the
//! consumer's calls then touch. When publishers inserted them into the table, the publisher's
//! and the consumer's threads took its slots from each other on every message (the table's
//! entries are a few cache lines each), and that handoff cost the pipeline more than the
//! work itself.

use std::collections::{BTreeSet, VecDeque};

use super::queue::StoredMessage;

/// A standard queue's visible messages by sequence number, smallest first.
#[derive(Debug, Default)]
pub(super) struct InOrder {
    /// Never received, in increasing order of sequence number, with the messages themselves.
    fresh: VecDeque<(u64, StoredMessage)>,
    /// Visible again after a flight (the messages are in the queue's table); all smaller
    /// than the `fresh` ones.
    returned: BTreeSet<u64>,
}

/// The next visible message.
pub(super) enum Next {
    /// Never received: the message itself, out of the queue.
    Fresh(u64, StoredMessage),
    /// Visible again after a flight: it is in the queue's table.
    Returned(u64),
}

impl InOrder {
    /// A message sent just now (its sequence number is the largest yet).
    pub(super) fn push_fresh(&mut self, seq: u64, message: StoredMessage) {
        self.fresh.push_back((seq, message));
    }

    /// A message visible again after a flight.
    pub(super) fn push_returned(&mut self, seq: u64) {
        self.returned.insert(seq);
    }

    /// Takes the smallest.
    pub(super) fn pop_first(&mut self) -> Option<Next> {
        match self.returned.pop_first() {
            Some(seq) => Some(Next::Returned(seq)),
            None => self
                .fresh
                .pop_front()
                .map(|(seq, message)| Next::Fresh(seq, message)),
        }
    }

    /// Removes a returned message (only those can be acknowledged: a fresh one has no
    /// receipt yet).
    pub(super) fn remove_returned(&mut self, seq: u64) {
        self.returned.remove(&seq);
    }

    /// How many are visible.
    pub(super) fn len(&self) -> usize {
        self.fresh.len() + self.returned.len()
    }

    /// How many were never received (they are not in the queue's table).
    pub(super) fn fresh_len(&self) -> usize {
        self.fresh.len()
    }
}

//! The visible messages of a standard queue, in enqueue order. Messages sent and not yet
//! received are appended in order and only ever leave from the front, so they sit in a
//! `VecDeque`; those that came back (an expired or released flight) are few and sit in a
//! `BTreeSet`. Every returned message was received, hence sent, before any message still
//! waiting its first receive, so the returned ones go first.

use std::collections::{BTreeSet, VecDeque};

/// A standard queue's visible messages by sequence number, smallest first.
#[derive(Debug, Default)]
pub(super) struct InOrder {
    /// Never received, in increasing order.
    fresh: VecDeque<u64>,
    /// Visible again after a flight; all smaller than the `fresh` ones.
    returned: BTreeSet<u64>,
}

impl InOrder {
    /// A message sent just now (its sequence number is the largest yet).
    pub(super) fn push_fresh(&mut self, seq: u64) {
        self.fresh.push_back(seq);
    }

    /// A message visible again after a flight.
    pub(super) fn push_returned(&mut self, seq: u64) {
        self.returned.insert(seq);
    }

    /// Takes the smallest.
    pub(super) fn pop_first(&mut self) -> Option<u64> {
        self.returned.pop_first().or_else(|| self.fresh.pop_front())
    }

    /// Removes `seq` if it is visible.
    pub(super) fn remove(&mut self, seq: u64) {
        if !self.returned.remove(&seq)
            && let Ok(at) = self.fresh.binary_search(&seq)
        {
            self.fresh.remove(at);
        }
    }

    /// How many are visible.
    pub(super) fn len(&self) -> usize {
        self.fresh.len() + self.returned.len()
    }
}

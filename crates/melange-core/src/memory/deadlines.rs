//! When in-flight messages become visible again: a min-heap whose entries are dropped
//! lazily. Acknowledging a message, the common end of a flight, touches nothing here (a
//! `BTreeSet` insert and remove per message was a visible share of the receive and
//! acknowledge paths); its entry goes stale and is dropped when it reaches the top, or when
//! stale entries outnumber the live ones.

use std::cmp::Reverse;
use std::collections::BinaryHeap;

use tokio::time::Instant;

/// Stale entries tolerated beyond the live ones before the heap is compacted.
const SLACK: usize = 64;

/// One scheduled return to visibility.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct Deadline {
    pub(super) until: Instant,
    pub(super) seq: u64,
    /// Unique per schedule: the entry is live while the message still holds this ticket.
    pub(super) ticket: u64,
}

/// The deadlines of a queue's in-flight messages, earliest first.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    heap: BinaryHeap<Reverse<Deadline>>,
    last_ticket: u64,
}

impl Deadlines {
    /// Schedules message `seq` to return at `until`; returns the ticket the message must
    /// hold for the entry to count (any earlier entry for it goes stale).
    pub(super) fn schedule(&mut self, until: Instant, seq: u64) -> u64 {
        self.last_ticket += 1;
        let ticket = self.last_ticket;
        self.heap.push(Reverse(Deadline { until, seq, ticket }));
        ticket
    }

    /// The earliest entry, live or stale.
    pub(super) fn first(&self) -> Option<Deadline> {
        self.heap.peek().map(|Reverse(deadline)| *deadline)
    }

    /// Removes the earliest entry.
    pub(super) fn pop_first(&mut self) {
        self.heap.pop();
    }

    /// Drops the stale entries once they outnumber the `live` ones (plus some slack), so
    /// the heap stays within a small multiple of the messages in flight. `is_live` tells
    /// whether an entry's message still holds its ticket.
    pub(super) fn compact_if_needed(
        &mut self,
        live: usize,
        mut is_live: impl FnMut(&Deadline) -> bool,
    ) {
        if self.heap.len() > 2 * live + SLACK {
            self.heap.retain(|Reverse(deadline)| is_live(deadline));
        }
    }

    /// Entries held, live and stale.
    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.heap.len()
    }
}

//! When in-flight messages become visible again, with entries dropped lazily.
//! Acknowledging a message, the common end of a flight, touches nothing here (a `BTreeSet`
//! insert and remove per message was a visible share of the receive and acknowledge
//! paths); its entry goes stale and is dropped when it comes first, or when stale entries
//! outnumber the live ones.
//!
//! Receives with the same visibility timeout schedule deadlines in increasing order: those
//! go to the back of a `VecDeque` (no sifting), and only a deadline earlier than the last
//! one (a shorter timeout, a visibility change) goes to a min-heap.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};

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

/// The deadlines of a queue's in-flight messages, earliest first, and how many messages
/// are in flight.
#[derive(Debug, Default)]
pub(super) struct Deadlines {
    /// Scheduled in increasing order.
    in_order: VecDeque<Deadline>,
    /// Scheduled earlier than the back of `in_order` at the time.
    out_of_order: BinaryHeap<Reverse<Deadline>>,
    last_ticket: u64,
    /// Messages in flight: one live entry each.
    in_flight: usize,
}

impl Deadlines {
    /// A message goes in flight until `until`; returns the ticket it must hold for its entry
    /// to count.
    pub(super) fn begin(&mut self, until: Instant, seq: u64) -> u64 {
        self.in_flight += 1;
        self.schedule(until, seq)
    }

    /// An in-flight message's deadline moves to `until`; returns its new ticket (the entry
    /// of the old one goes stale).
    pub(super) fn reschedule(&mut self, until: Instant, seq: u64) -> u64 {
        self.schedule(until, seq)
    }

    /// A message's flight ended (acknowledged, or visible again): its entry is stale, or
    /// was just popped.
    pub(super) fn end(&mut self) {
        self.in_flight -= 1;
    }

    /// Messages in flight.
    pub(super) fn in_flight(&self) -> usize {
        self.in_flight
    }

    fn schedule(&mut self, until: Instant, seq: u64) -> u64 {
        self.last_ticket += 1;
        let deadline = Deadline {
            until,
            seq,
            ticket: self.last_ticket,
        };
        match self.in_order.back() {
            Some(last) if *last > deadline => self.out_of_order.push(Reverse(deadline)),
            _ => self.in_order.push_back(deadline),
        }
        deadline.ticket
    }

    /// The earliest entry, live or stale.
    pub(super) fn first(&self) -> Option<Deadline> {
        match (self.in_order.front(), self.out_of_order.peek()) {
            (Some(a), Some(Reverse(b))) => Some(*a.min(b)),
            (a, b) => a.copied().or(b.map(|Reverse(b)| *b)),
        }
    }

    /// Removes the earliest entry.
    pub(super) fn pop_first(&mut self) {
        let heap_first = self
            .out_of_order
            .peek()
            .is_some_and(|Reverse(b)| self.in_order.front().is_none_or(|a| b < a));
        if heap_first {
            self.out_of_order.pop();
        } else {
            self.in_order.pop_front();
        }
    }

    /// Whether stale entries outnumber the live ones (plus some slack): then the queue
    /// drops them with [`retain_live`](Self::retain_live), so the entries stay within a
    /// small multiple of the messages in flight.
    pub(super) fn needs_compaction(&self) -> bool {
        self.len() > 2 * self.in_flight + SLACK
    }

    /// Keeps the entries whose message still holds their ticket, as `is_live` tells.
    pub(super) fn retain_live(&mut self, mut is_live: impl FnMut(&Deadline) -> bool) {
        self.in_order.retain(&mut is_live);
        self.out_of_order
            .retain(|Reverse(deadline)| is_live(deadline));
    }

    /// Entries held, live and stale.
    pub(super) fn len(&self) -> usize {
        self.in_order.len() + self.out_of_order.len()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn entries_come_out_earliest_first_whatever_the_order_they_went_in() {
        let start = Instant::now();
        let mut x = 0x2545_f491_4f6c_dd1d_u64;
        let mut random = move |bound: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % bound
        };
        let mut deadlines = Deadlines::default();
        let mut expected = Vec::new();
        for seq in 0..2_000 {
            // Mostly increasing (one timeout), sometimes earlier (a shorter one).
            let at = if random(4) == 0 {
                random(1_000)
            } else {
                seq * 2
            };
            let until = start + Duration::from_millis(at);
            let ticket = deadlines.schedule(until, seq);
            expected.push(Deadline { until, seq, ticket });
            // Take some out as they come due, as receives do.
            if random(8) == 0 {
                expected.sort();
                assert_eq!(deadlines.first(), expected.first().copied());
                deadlines.pop_first();
                expected.remove(0);
            }
        }
        expected.sort();
        let mut drained = Vec::new();
        while let Some(first) = deadlines.first() {
            drained.push(first);
            deadlines.pop_first();
        }
        assert_eq!(drained, expected);
        assert_eq!(deadlines.len(), 0);
    }
}

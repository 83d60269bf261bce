//! Topics: subscriptions with their manifest filters, as SNS topics with SQS subscriptions.

use std::collections::BTreeMap;

use super::fifo::DedupWindow;

/// A topic and the queues subscribed to it.
#[derive(Debug)]
pub(super) struct Topic {
    pub(super) fifo: bool,
    /// Queue name → manifest filter (`None`: every message). Sorted, so fan-out order is
    /// deterministic.
    pub(super) subscriptions: BTreeMap<String, Option<Vec<String>>>,
    /// FIFO topics deduplicate publishes, as SNS FIFO topics do.
    pub(super) dedup: DedupWindow,
}

impl Topic {
    /// A topic without subscriptions.
    pub(super) fn new(fifo: bool) -> Self {
        Self {
            fifo,
            subscriptions: BTreeMap::new(),
            dedup: DedupWindow::default(),
        }
    }

    /// The queues a message with `manifest` goes to: those without a filter, and those whose
    /// filter lists the manifest (a message without a manifest passes no filter, as SNS
    /// filter policies need the attribute to be present).
    pub(super) fn recipients<'a>(
        &'a self,
        manifest: Option<&'a str>,
    ) -> impl Iterator<Item = &'a str> + 'a {
        self.subscriptions
            .iter()
            .filter(move |(_, filter)| match filter {
                None => true,
                Some(manifests) => manifest.is_some_and(|m| manifests.iter().any(|f| f == m)),
            })
            .map(|(queue, _)| queue.as_str())
    }
}

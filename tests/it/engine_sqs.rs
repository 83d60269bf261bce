//! The consumer engine against the real SQS server (moto_server, started by `scripts/test`):
//! heartbeats, retries, shutdown and FIFO groups, in real time with short timeouts.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use melange::{
    ConsumerOptions, Failure, MessageContext, MessagingBackendFactory, PublishOptions,
    QueuePublisher, RetryBackoff, SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

use crate::support::{receive_all, sqs_backend, unique};

#[derive(Debug, Clone, Serialize, Deserialize, melange::Message)]
struct Task {
    id: u64,
    group: String,
    work_ms: u64,
    fail_until_receive: u32,
}

/// One handler run: task id, group, receive count, start, end.
type Run = (u64, String, u32, Instant, Instant);

/// Records every run.
#[derive(Default)]
struct Recorder {
    runs: Mutex<Vec<Run>>,
}

#[melange::listener]
impl Recorder {
    async fn on_task(&self, task: Task, ctx: MessageContext<'_>) -> Result<(), Failure> {
        let started = Instant::now();
        tokio::time::sleep(Duration::from_millis(task.work_ms)).await;
        let receive_count = ctx.receive_count();
        self.runs.lock().unwrap().push((
            task.id,
            task.group.clone(),
            receive_count,
            started,
            Instant::now(),
        ));
        if receive_count <= task.fail_until_receive {
            return Err(Failure::new(format!(
                "task {} fails on receive {receive_count}",
                task.id
            )));
        }
        Ok(())
    }
}

fn task(id: u64, work_ms: u64, fail_until_receive: u32) -> Task {
    Task {
        id,
        group: "g".into(),
        work_ms,
        fail_until_receive,
    }
}

async fn queue(visibility: Duration, max_receives: u32) -> (String, String) {
    let name = unique("engine");
    let dlq = format!("{name}-dlq");
    MessagingBackendFactory::new(sqs_backend())
        .init_queue(name.clone())
        .dead_letter_queue(dlq.clone())
        .max_receive_count(max_receives)
        .visibility_timeout(visibility)
        .await
        .unwrap();
    (name, dlq)
}

async fn publish(queue: &str, tasks: &[Task]) {
    let publisher = QueuePublisher::new(SerializerRegistry::default(), sqs_backend());
    for result in publisher.publish_batch(queue, tasks).await.unwrap() {
        result.unwrap();
    }
}

fn handler(
    recorder: &Arc<Recorder>,
    options: ConsumerOptions,
) -> SimpleConsumerHandler<Arc<Recorder>, melange::sqs::ElasticMqBackend> {
    SimpleConsumerHandler::new(
        recorder.clone(),
        SerializerRegistry::default(),
        sqs_backend(),
    )
    .with_options(options)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn heartbeats_keep_a_slow_handler_from_running_twice_on_sqs() {
    let (queue, _) = queue(Duration::from_secs(2), 4).await;
    publish(&queue, &[task(1, 5_000, 0)]).await;
    let recorder = Arc::new(Recorder::default());
    let rival = Arc::new(Recorder::default());
    let consume = handler(
        &recorder,
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(2)),
    );
    let compete = handler(
        &rival,
        ConsumerOptions::default().stop_when_idle(Duration::from_secs(7)),
    );
    let (summary, rival_summary) = tokio::join!(consume.consume_loop(&queue), async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        compete.consume_loop(&queue).await
    });
    assert_eq!(summary.unwrap().succeeded, 1);
    assert_eq!(
        rival_summary.unwrap().received,
        0,
        "the message became visible while handled"
    );
    assert_eq!(recorder.runs.lock().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_retry_with_backoff_then_reach_the_dead_letter_queue_on_sqs() {
    let (queue, dlq) = queue(Duration::from_secs(30), 3).await;
    publish(&queue, &[task(1, 0, u32::MAX)]).await;
    let recorder = Arc::new(Recorder::default());
    let backoff = RetryBackoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(2),
    };
    let options = ConsumerOptions::default()
        .retry_backoff(Some(backoff))
        .stop_when_idle(Duration::from_secs(4));
    let started = Instant::now();
    let summary = handler(&recorder, options)
        .consume_loop(&queue)
        .await
        .unwrap();
    // Retried after about a second each time, not after the 30 s visibility timeout.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "took {:?}",
        started.elapsed()
    );
    let counts: Vec<u32> = recorder.runs.lock().unwrap().iter().map(|r| r.2).collect();
    assert_eq!(counts, [1, 2, 3]);
    assert_eq!(summary.retried, 3);
    let dead = receive_all(&sqs_backend(), &dlq, 1, Duration::from_secs(10)).await;
    assert_eq!(dead.len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_releases_unfinished_messages_at_once_on_sqs() {
    let (queue, _) = queue(Duration::from_secs(120), 4).await;
    let tasks: Vec<Task> = (0..3).map(|id| task(id, 60_000, 0)).collect();
    publish(&queue, &tasks).await;
    let recorder = Arc::new(Recorder::default());
    let shutdown = Shutdown::new();
    let consume = handler(
        &recorder,
        ConsumerOptions::default().shutdown_deadline(Duration::from_secs(1)),
    )
    .with_shutdown(shutdown.clone());
    let stopper = async {
        // Wait until all three are in hand, then stop.
        tokio::time::sleep(Duration::from_secs(3)).await;
        shutdown.trigger();
    };
    let (summary, ()) = tokio::join!(consume.consume_loop(&queue), stopper);
    let summary = summary.unwrap();
    // Everything received was released, the three unfinished ones at least; a receive still
    // long-polling at the deadline may take them again, and is waited for and released too.
    assert_eq!(summary.succeeded, 0);
    assert_eq!(summary.received, summary.released);
    assert!(summary.released >= 3, "{summary:?}");
    // Visible again now, not after the 120 s visibility timeout.
    let again = receive_all(&sqs_backend(), &queue, 3, Duration::from_secs(20)).await;
    assert_eq!(again.len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifo_groups_keep_their_order_through_a_failure_on_sqs() {
    let name = format!("{}.fifo", unique("engine-fifo"));
    let dlq = format!("{}-dlq.fifo", unique("engine-fifo"));
    MessagingBackendFactory::new(sqs_backend())
        .init_queue(name.clone())
        .dead_letter_queue(dlq)
        .await
        .unwrap();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), sqs_backend());
    for seq in 0..4 {
        for group in ["a", "b"] {
            let fail = u32::from(group == "b" && seq == 1);
            let task = Task {
                id: seq,
                group: group.into(),
                work_ms: 50,
                fail_until_receive: fail,
            };
            let options = PublishOptions::default()
                .message_group_id(group)
                .deduplication_id(format!("{group}-{seq}"));
            publisher.publish_with(&name, &task, options).await.unwrap();
        }
    }
    let recorder = Arc::new(Recorder::default());
    let backoff = RetryBackoff {
        base: Duration::from_secs(1),
        max: Duration::from_secs(1),
    };
    let options = ConsumerOptions::default()
        .retry_backoff(Some(backoff))
        .stop_when_idle(Duration::from_secs(4));
    let summary = handler(&recorder, options)
        .consume_loop(&name)
        .await
        .unwrap();
    let left = receive_all(&sqs_backend(), &name, 1, Duration::from_secs(3)).await;
    eprintln!(
        "summary {summary:?} left {:?}",
        left.iter()
            .map(|e| e
                .as_ref()
                .map(|e| (e.content.clone(), e.delivery.receive_count))
                .ok())
            .collect::<Vec<_>>()
    );
    assert_eq!(summary.failed, 1);
    let runs = recorder.runs.lock().unwrap().clone();
    for group in ["a", "b"] {
        let done: Vec<u64> = runs
            .iter()
            .filter(|r| r.1 == group && !(r.1 == "b" && r.0 == 1 && r.2 == 1))
            .map(|r| r.0)
            .collect();
        assert_eq!(done, [0, 1, 2, 3], "group {group}: {runs:?}");
    }
}

//! A production worker: configured from the environment, it works jobs from a queue until
//! SIGTERM or Ctrl-C, then drains gracefully: it stops receiving, lets the running jobs
//! finish (within the shutdown deadline) and acknowledges them, and releases anything
//! unfinished so another replica picks it up at once. With `WORKER_REDIS_URL`, replicas share
//! a de-duplication cache in Redis, so a job redelivered after a crash is not run again once
//! its handler completed.
//!
//! Configuration (besides the backend, see `common`):
//!
//! - `WORKER_CONCURRENCY`: jobs worked at once (16 by default);
//! - `WORKER_SHUTDOWN_DEADLINE`: seconds running jobs get to finish on shutdown (30);
//! - `WORKER_REDIS_URL`: a Redis URL for the shared de-duplication cache (feature `redis`);
//!   keys are `<prefix>worker:Jobs.<message id>`.
//!
//! In one process, on the embedded backend (enqueues 20 jobs, exits once the queue is idle):
//!
//! ```sh
//! cargo run --example worker
//! ```
//!
//! As separate processes on a local SQS server (run several workers, stop them with Ctrl-C or
//! `kill -TERM`):
//!
//! ```sh
//! export MELANGE_SQS_ENDPOINT=http://127.0.0.1:9324
//! cargo run --example worker -- enqueue 200      # creates the queue, sends 200 jobs
//! cargo run --example worker -- work             # works until SIGTERM / Ctrl-C
//! WORKER_REDIS_URL=redis://127.0.0.1:6379/ cargo run --features redis --example worker -- work
//! ```
mod common;

use std::time::Duration;

use melange::{
    AnyBackend, ConsumerOptions, MessageContext, MessagingBackendFactory, QueuePublisher,
    SerializerRegistry, Shutdown, SimpleConsumerHandler,
};
use serde::{Deserialize, Serialize};

type Error = Box<dyn std::error::Error>;

/// A unit of work; `work_ms` stands in for the real work.
#[derive(Serialize, Deserialize, melange::Message)]
struct Job {
    id: u64,
    work_ms: u64,
}

struct Jobs;

#[melange::listener]
impl Jobs {
    async fn on_job(&self, job: Job, ctx: MessageContext<'_>) {
        println!("job {} started (receive {})", job.id, ctx.receive_count());
        tokio::time::sleep(Duration::from_millis(job.work_ms)).await;
        println!("job {} done", job.id);
    }
}

/// A number from the environment, or `default` when unset.
fn env_number(name: &str, default: u64) -> Result<u64, Error> {
    match std::env::var(name) {
        Ok(value) => value
            .parse()
            .map_err(|_| format!("{name}={value:?} is not a number").into()),
        Err(_) => Ok(default),
    }
}

async fn enqueue(backend: &AnyBackend, queue: &str, count: u64) -> Result<(), Error> {
    MessagingBackendFactory::new(backend.clone())
        .init_queue(queue)
        .dead_letter_queue(format!("{queue}-dlq"))
        .await?;
    let jobs: Vec<Job> = (0..count)
        .map(|id| Job {
            id,
            work_ms: 100 + id * 37 % 200,
        })
        .collect();
    let publisher = QueuePublisher::new(SerializerRegistry::default(), backend.clone());
    for result in publisher.publish_batch(queue, &jobs).await? {
        result?;
    }
    println!("{count} jobs sent to {queue}");
    Ok(())
}

async fn work(backend: AnyBackend, queue: &str, options: ConsumerOptions) -> Result<(), Error> {
    let options = options
        .max_in_flight(env_number("WORKER_CONCURRENCY", 16)? as usize)
        .shutdown_deadline(Duration::from_secs(env_number(
            "WORKER_SHUTDOWN_DEADLINE",
            30,
        )?));
    let mut handler = SimpleConsumerHandler::new(Jobs, SerializerRegistry::default(), backend)
        .with_options(options)
        .with_shutdown(Shutdown::on_ctrl_c_or_sigterm());
    if let Ok(url) = std::env::var("WORKER_REDIS_URL") {
        handler = with_redis(handler, &url).await?;
    }
    println!("worker: consuming {queue} (SIGTERM or Ctrl-C to stop)");
    let summary = handler.consume_loop(queue).await?;
    println!(
        "worker: stopped; {} jobs done, {} acknowledged, {} skipped as duplicates, {} released",
        summary.succeeded, summary.acknowledged, summary.duplicates, summary.released
    );
    Ok(())
}

#[cfg(feature = "redis")]
async fn with_redis(
    handler: SimpleConsumerHandler<Jobs, AnyBackend>,
    url: &str,
) -> Result<SimpleConsumerHandler<Jobs, AnyBackend>, Error> {
    // Remember completed jobs for a day: longer than any redelivery.
    let cache =
        melange::consumer::RedisDeduplicationCache::connect(url, Duration::from_secs(24 * 3600))
            .await?
            .namespace(common::name("worker"));
    Ok(handler.with_deduplication_cache(cache))
}

#[cfg(not(feature = "redis"))]
async fn with_redis(
    _handler: SimpleConsumerHandler<Jobs, AnyBackend>,
    _url: &str,
) -> Result<SimpleConsumerHandler<Jobs, AnyBackend>, Error> {
    Err(
        "WORKER_REDIS_URL needs melange's `redis` feature: cargo run --features redis \
         --example worker -- work"
            .into(),
    )
}

#[tokio::main]
async fn main() -> Result<(), Error> {
    let backend = common::backend().await?;
    let queue = common::name("jobs");
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("enqueue") => {
            common::require_server("enqueue")?;
            let count = args.get(1).map_or(Ok(100), |n| n.parse())?;
            enqueue(&backend, &queue, count).await?;
        }
        Some("work") => {
            common::require_server("work")?;
            work(backend, &queue, ConsumerOptions::default()).await?;
        }
        Some(other) => {
            return Err(format!("unknown command {other:?}: use enqueue [COUNT] or work").into());
        }
        None => {
            enqueue(&backend, &queue, 20).await?;
            let idle = ConsumerOptions::default().stop_when_idle(Duration::from_millis(200));
            work(backend, &queue, idle).await?;
        }
    }
    Ok(())
}

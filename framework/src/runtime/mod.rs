//! The runtime: a topology running against Kafka.
//!
//! [`KafkaStreams`] is the instance: it checks the topics, creates the internal ones and
//! starts `num.stream.threads` stream threads. Each stream thread (`stream_thread`) polls
//! its consumer and hands records and rebalances to its `TaskManager`, which makes, runs,
//! commits and closes its tasks; a `Task` is one sub-topology on one partition number,
//! processing the records of its input partitions one at a time, in timestamp order. A
//! thread writes through its `StreamsProducer`; restoration (`restore`) replays changelogs
//! into the stores of new tasks; `shutdown_requests` carries a request to stop every
//! instance of the application.

mod clients;
mod crash_points;
mod embedded;
mod error;
mod global_thread;
mod instance;
mod kafka_streams;
mod metrics;
mod purge;
mod restore;
mod shutdown_requests;
mod state_manager;
mod stream_thread;
mod streams_producer;
pub(crate) mod task;
mod task_manager;

pub use embedded::{EmbeddedError, EmbeddedKafka};
pub use error::{
    GLOBAL_THREAD, ProduceError, RestoreError, RestoreFailure, StreamThreadError, ThreadError,
};
pub use kafka_streams::{CloseError, KafkaStreams, StartError, State, StreamThreadResponse};
pub use metrics::{Metrics, ThreadMetadata};
pub use task::{Location, TaskError, TaskId};

/// The librdkafka settings of the clients of stream thread 0 of an instance with `config`:
/// the benchmark's plain rdkafka loop and changelog reader run with them, so that they
/// measure the same clients HOMA runs.
#[doc(hidden)]
#[derive(Debug)]
pub struct ClientConfigs {
    /// The main consumer's.
    pub consumer: rdkafka::ClientConfig,
    /// The restore consumer's.
    pub restore_consumer: rdkafka::ClientConfig,
    /// The producer's.
    pub producer: rdkafka::ClientConfig,
}

impl ClientConfigs {
    /// The settings of the clients of stream thread 0 of an instance with `config`
    /// reaching Kafka at `bootstrap` (under exactly-once, the producer's `transactional.id`
    /// carries `<process id>` where the instance puts the one kept in its state directory).
    pub fn new(config: &crate::config::StreamsConfig, bootstrap: &str) -> Self {
        let transactional_id = config
            .exactly_once()
            .then(|| clients::transactional_id(config, "<process id>", 0));
        Self {
            consumer: clients::consumer(config, bootstrap, 0),
            restore_consumer: clients::restore_consumer(config, bootstrap, 0),
            producer: clients::producer(config, bootstrap, 0, transactional_id.as_deref()),
        }
    }
}

/// The wall-clock time in ms since the epoch.
pub(crate) fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

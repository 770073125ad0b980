//! The runtime: tasks, and (next) the stream threads and the `KafkaStreams` instance that
//! run them against Kafka.
//!
//! A task is one sub-topology on one partition number: it owns its processor instances and
//! processes the records of its input partitions one at a time, in timestamp order.

mod clients;
mod collector;
mod instance;
mod kafka_streams;
mod metrics;
mod restore;
mod stream_thread;
pub(crate) mod task;

pub use kafka_streams::{KafkaStreams, StartError, State, StreamThreadError};
pub use metrics::Metrics;
pub use task::{TaskError, TaskId};

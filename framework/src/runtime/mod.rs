//! The runtime: tasks, and (next) the stream threads and the `KafkaStreams` instance that
//! run them against Kafka.
//!
//! A task is one sub-topology on one partition number: it owns its processor instances and
//! processes the records of its input partitions one at a time, in timestamp order.

// Until the stream threads land, only the test driver runs tasks.
#[cfg_attr(not(feature = "test-utils"), allow(dead_code))]
pub(crate) mod task;

pub use task::{TaskError, TaskId};

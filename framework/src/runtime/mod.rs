//! The runtime: tasks, and (next) the stream threads and the `KafkaStreams` instance that
//! run them against Kafka.
//!
//! A task is one sub-topology on one partition number: it owns its processor instances and
//! processes the records of its input partitions one at a time, in timestamp order.

// Driven by the stream threads and the test driver, which come next; until then only this
// module's tests drive it.
#[allow(dead_code)]
mod task;

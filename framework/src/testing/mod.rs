//! Testing a topology without a broker (feature `test-utils`).
//!
//! [`TopologyTestDriver`] runs the same tasks, processors and serdes as the runtime, with an
//! in-memory record collector in place of the Kafka producer: records piped into an input
//! topic are processed at once, and what the sinks write is read from output topics.

mod driver;
mod topics;

pub use driver::TopologyTestDriver;
pub use topics::{TestInputTopic, TestOutputTopic};

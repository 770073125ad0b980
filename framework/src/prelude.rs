//! The names most topologies use: `use homa::prelude::*;`.

pub use crate::config::StreamsConfig;
pub use crate::dsl::{
    BufferConfig, Consumed, EmitStrategy, GlobalKTable, Grouped, JoinWindows, Joined,
    KGroupedStream, KStream, KTable, Materialized, Produced, Repartitioned, SessionWindows,
    SlidingWindows, StreamJoined, StreamsBuilder, Suppressed, TableJoined, TimeWindows, Window,
    Windowed,
};
pub use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
pub use crate::runtime::KafkaStreams;
pub use crate::serde::Json;
#[cfg(any(test, feature = "test-utils"))]
pub use crate::testing::TopologyTestDriver;
pub use crate::topology::Topology;

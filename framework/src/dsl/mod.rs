//! The DSL: `StreamsBuilder` records a topology, from typed stream operators or from
//! sources, processors and sinks added by name (the Processor API), and `build()` checks it.

mod builder;

pub use builder::StreamsBuilder;

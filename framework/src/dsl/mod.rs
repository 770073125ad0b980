//! The DSL: `StreamsBuilder` records a topology, from typed stream operators or from
//! sources, processors and sinks added by name (the Processor API), and `build()` checks it.

mod builder;
mod kstream;
mod options;

pub use builder::StreamsBuilder;
pub use kstream::{BranchedKStream, KStream, Repartitioned};
pub use options::{Consumed, Produced};

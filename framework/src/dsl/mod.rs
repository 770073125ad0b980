//! The DSL: `StreamsBuilder` records a topology, from typed stream operators or from
//! sources, processors and sinks added by name (the Processor API), and `build()` checks it.

pub(crate) mod builder;
mod kgrouped_table;
mod kstream;
pub(crate) mod ktable;
mod materialized;
mod options;
mod per_record;
mod table_store;

pub use builder::StreamsBuilder;
pub use kgrouped_table::KGroupedTable;
pub use kstream::{BranchedKStream, KGroupedStream, KStream, Repartitioned};
pub use ktable::KTable;
pub use materialized::Materialized;
pub use options::{Consumed, Grouped, Produced};

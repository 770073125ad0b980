//! The DSL: `StreamsBuilder` records a topology, from typed stream operators or from
//! sources, processors and sinks added by name (the Processor API), and `build()` checks it.

/// `with_key_serde` and `with_value_serde` of an options type whose serdes are the fields
/// `$keys` and `$values`: `Materialized` and the options of `options.rs` set them alike.
macro_rules! serde_setters {
    ($keys:ident, $values:ident) => {
        /// Sets the key serde (default: the key type's).
        #[must_use]
        pub fn with_key_serde(mut self, serde: impl $crate::serde::Serde<K>) -> Self {
            self.$keys = Some(std::sync::Arc::new(serde));
            self
        }

        /// Sets the value serde (default: the value type's).
        #[must_use]
        pub fn with_value_serde(mut self, serde: impl $crate::serde::Serde<V>) -> Self {
            self.$values = Some(std::sync::Arc::new(serde));
            self
        }
    };
}

pub(crate) mod builder;
mod global_table;
mod joins;
mod kgrouped_table;
mod kstream;
pub(crate) mod ktable;
mod materialized;
mod options;
mod per_record;
mod table_store;
mod windows;

pub use builder::StreamsBuilder;
pub use global_table::GlobalKTable;
pub use joins::{JoinWindows, Joined, StreamJoined, TableJoined};
pub use kgrouped_table::KGroupedTable;
pub use kstream::{
    BranchedKStream, CogroupWindows, CogroupedKStream, KGroupedStream, KStream, Repartitioned,
    SessionWindowedCogroupedKStream, TimeWindowedCogroupedKStream,
};
pub use ktable::{BufferConfig, KTable, Suppressed};
pub use materialized::Materialized;
pub use options::{Consumed, Grouped, Produced};
pub use windows::{
    EmitStrategy, SessionWindowedKStream, SessionWindows, SlidingWindows, TimeWindowedKStream,
    TimeWindows, Window, Windowed, WindowedSerde, WindowsOf,
};

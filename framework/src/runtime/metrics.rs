//! Figures of a running instance, read with `KafkaStreams::metrics`.

use std::collections::BTreeMap;

/// What an instance has done so far (Kafka Streams' metrics, as values to read).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Changelog records written into each store by restoration, by store name.
    pub restored_records: BTreeMap<String, u64>,
    /// Restorations finished (a task's store brought up to its changelog's end), by store.
    pub restorations: BTreeMap<String, u64>,
}

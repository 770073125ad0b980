//! Figures of a running instance, read with `KafkaStreams::metrics`.

use std::collections::BTreeMap;

use crate::state::StoreMetrics;

/// What an instance has done so far (Kafka Streams' metrics, as values to read). The record
/// counts are as of each thread's last commit.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Metrics {
    /// Records processed by the instance's tasks.
    pub processed_records: u64,
    /// Records skipped for an error, each logged with its coordinates: unreadable
    /// (deserialization handler log-and-continue), with a negative timestamp, failed in a
    /// processor (processing handler log-and-continue), or not written (production handler
    /// log-and-continue). The test driver's `skipped_records` counts the same, but for the
    /// production handler.
    pub skipped_records: u64,
    /// Records an operator could not pass on and dropped, each logged with its coordinates:
    /// a record without a key or value where an aggregation or table needs one, a tombstone
    /// reaching `map` (Kafka Streams' `dropped-records`). The driver's `dropped_records`.
    pub dropped_records: u64,
    /// Of those, the records that came after their window had closed (later than its
    /// grace), by the topic they were read from: a late-data report per source.
    pub late_records: BTreeMap<String, u64>,
    /// Tasks made (on assignment), over the instance's life.
    pub tasks_created: u64,
    /// Tasks closed (their partitions moved away, or the instance closed).
    pub tasks_closed: u64,
    /// Records fetched and waiting in the tasks' queues (a partition stops being fetched
    /// once `buffered.records.per.partition` of its records wait).
    pub buffered_records: u64,
    /// Changelog records written into each store by restoration, by store name.
    pub restored_records: BTreeMap<String, u64>,
    /// Restorations finished (a task's store brought up to its changelog's end), by store.
    pub restorations: BTreeMap<String, u64>,
    /// What each store was asked to do by its tasks (the metered layer), by store: counts,
    /// and times at `metrics.recording.level` `DEBUG`. As of each thread's last commit.
    pub stores: BTreeMap<String, StoreMetrics>,
}

/// A stream thread of an instance and its tasks (Kafka Streams' `ThreadMetadata`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ThreadMetadata {
    /// The thread's name, `<client.id>-StreamThread-<n>`.
    pub thread_name: String,
    /// The tasks it runs, processing or restoring.
    pub active_tasks: Vec<super::TaskId>,
    /// The input partitions of those tasks, `(topic, partition)`.
    pub assigned_partitions: Vec<(String, i32)>,
    /// Those of them still restoring their stores.
    pub restoring_tasks: Vec<super::TaskId>,
}

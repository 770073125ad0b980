//! The change-logging layer: every write to a logged store also goes to the store's
//! changelog topic (`<application.id>-<store>-changelog`), on the partition of the store's
//! task, so that the store can be rebuilt from it (Kafka Streams'
//! `ChangeLoggingKeyValueBytesStore`).
//!
//! A plain store's record carries the timestamp of the record being processed; a
//! timestamped store's carries the value alone, and the value's timestamp as the record's.

use std::rc::Rc;
use std::sync::Arc;

use super::{StoreError, StoreKind, timestamped};

/// A changelog record of `store`: `key` = `value` (`None`: a tombstone) on `topic`'s
/// `partition`.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ChangelogRecord<'a> {
    pub(crate) store: &'a str,
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) key: &'a [u8],
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: i64,
}

/// The error of a sink that could not take a record.
pub(crate) type SinkError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Where changelog records go: the task's record collector.
pub(crate) trait ChangelogSink {
    /// Hands `record` over.
    ///
    /// # Errors
    /// When the record cannot be handed over.
    fn send_changelog(&self, record: ChangelogRecord<'_>) -> Result<(), SinkError>;
}

/// Writes a store's changes to its changelog partition.
pub(crate) struct ChangeLogger {
    store: Arc<str>,
    topic: Arc<str>,
    partition: i32,
    kind: StoreKind,
    sink: Rc<dyn ChangelogSink>,
}

impl std::fmt::Debug for ChangeLogger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangeLogger")
            .field("store", &self.store)
            .field("topic", &self.topic)
            .field("partition", &self.partition)
            .finish_non_exhaustive()
    }
}

impl ChangeLogger {
    pub(crate) fn new(
        store: Arc<str>,
        (topic, partition): (Arc<str>, i32),
        kind: StoreKind,
        sink: Rc<dyn ChangelogSink>,
    ) -> Self {
        Self {
            store,
            topic,
            partition,
            kind,
            sink,
        }
    }

    /// Logs that `key` is now `stored` (the bytes the store keeps; `None`: deleted), an
    /// update made while processing a record stamped `timestamp` (a cache writes its
    /// updates later than that).
    pub(crate) fn log_at(
        &self,
        key: &[u8],
        stored: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), StoreError> {
        let record_timestamp = timestamp.max(0);
        let (value, timestamp) = match stored {
            Some(stored) if self.kind.timestamped() => match timestamped::split(stored) {
                Some((timestamp, value)) => (Some(value), timestamp),
                None => (Some(stored), record_timestamp),
            },
            stored => (stored, record_timestamp),
        };
        let record = ChangelogRecord {
            store: &self.store,
            topic: &self.topic,
            partition: self.partition,
            key,
            value,
            timestamp,
        };
        self.sink
            .send_changelog(record)
            .map_err(|source| StoreError::Changelog {
                store: self.store.to_string(),
                topic: self.topic.to_string(),
                source,
            })
    }
}

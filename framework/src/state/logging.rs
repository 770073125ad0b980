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

/// Where changelog records go: the task's record collector.
pub(crate) trait ChangelogSink {
    /// Sends `key` = `value` (`None`: a tombstone) to `topic`'s `partition` for `store`.
    ///
    /// # Errors
    /// When the record cannot be handed over.
    fn send_changelog(
        &self,
        store: &str,
        topic: &str,
        partition: i32,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>>;
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
        let (value, timestamp) = match (self.kind, stored) {
            (StoreKind::TimestampedKeyValue, Some(stored)) => match timestamped::split(stored) {
                Some((timestamp, value)) => (Some(value), timestamp),
                None => (Some(stored), record_timestamp),
            },
            (_, stored) => (stored, record_timestamp),
        };
        self.sink
            .send_changelog(
                &self.store,
                &self.topic,
                self.partition,
                key,
                value,
                timestamp,
            )
            .map_err(|source| StoreError::Changelog {
                store: self.store.to_string(),
                topic: self.topic.to_string(),
                source,
            })
    }
}

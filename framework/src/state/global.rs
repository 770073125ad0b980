//! The stores of an instance's global tables, and how a record of a global table's topic
//! is written to its store (Kafka Streams' `GlobalStateUpdateTask` over a `KTableSource`):
//! a record without a key is dropped, one that cannot be read is handled as the
//! deserialization handler says, a tombstone deletes its key, any other record is the
//! key's row, with the record's timestamp, whatever the row's timestamp was (the last
//! record of the topic wins).
//!
//! The stores live in `<state.dir>/<application.id>/global`, with a checkpoint of how far
//! each partition of their topics was written (the topic is their changelog).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use super::checkpoint::{self, Offsets};
use super::{RocksDbMemory, SharedBytesStore, StoreDef, StoreError, timestamped};
use crate::config::DeserializationHandler;
use crate::header::Headers;
use crate::topology::Topology;
use crate::topology::graph::GlobalTableDef;

/// A record of a global table's topic, as read.
#[derive(Debug, Clone, Copy)]
pub(crate) struct GlobalRecord<'a> {
    pub(crate) topic: &'a str,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: i64,
    pub(crate) headers: &'a Headers,
}

/// A record of a global table's topic that could not be read, under log-and-fail.
#[derive(Debug, thiserror::Error)]
#[error(
    "global table {store}: the record at {topic}/{partition}@{offset} cannot be read: {reason}"
)]
pub struct GlobalRecordError {
    /// The table's store.
    pub store: String,
    /// Where the record is.
    pub topic: String,
    /// Its partition.
    pub partition: i32,
    /// Its offset.
    pub offset: i64,
    /// What is wrong with it.
    pub reason: String,
}

/// The global tables of an instance (or of a test driver), their stores open.
#[derive(Debug)]
pub(crate) struct GlobalState {
    dir: PathBuf,
    tables: Vec<(GlobalTableDef, SharedBytesStore)>,
    /// Records dropped (no key) or skipped (unreadable, under log-and-continue).
    dropped: AtomicU64,
}

impl GlobalState {
    /// Opens the stores of `topology`'s global tables in `dir`; none without global tables.
    pub(crate) fn open(
        topology: &Topology,
        dir: &Path,
        memory: Option<&RocksDbMemory>,
    ) -> Result<Option<Self>, StoreError> {
        if topology.globals().is_empty() {
            return Ok(None);
        }
        let tables = topology
            .globals()
            .iter()
            .map(|def| Ok((def.clone(), def.store.open(dir, memory)?)))
            .collect::<Result<_, StoreError>>()?;
        Ok(Some(Self {
            dir: dir.to_path_buf(),
            tables,
            dropped: AtomicU64::new(0),
        }))
    }

    /// The stores, by name, as tasks read them.
    pub(crate) fn stores(&self) -> BTreeMap<Arc<str>, SharedBytesStore> {
        self.tables
            .iter()
            .map(|(def, store)| (def.store.name.clone(), store.clone()))
            .collect()
    }

    /// The store `name`, with its definition and topic (which its serdes are told), if it
    /// is a global table's.
    pub(crate) fn store(&self, name: &str) -> Option<(&StoreDef, SharedBytesStore, Arc<str>)> {
        self.tables
            .iter()
            .find(|(def, _)| &*def.store.name == name)
            .map(|(def, store)| (&def.store, store.clone(), Arc::from(def.topic.as_str())))
    }

    /// The topics the tables are kept from.
    pub(crate) fn topics(&self) -> Vec<&str> {
        self.tables
            .iter()
            .map(|(def, _)| def.topic.as_str())
            .collect()
    }

    /// Whether `topic` is a global table's.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn reads(&self, topic: &str) -> bool {
        self.tables.iter().any(|(def, _)| def.topic == topic)
    }

    /// Records dropped or skipped so far.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Writes `record` to the store of its topic's table.
    ///
    /// # Errors
    /// When the record cannot be read under log-and-fail, or the store fails.
    pub(crate) fn apply(
        &self,
        record: &GlobalRecord<'_>,
        handler: DeserializationHandler,
    ) -> Result<(), GlobalError> {
        let Some((def, store)) = self
            .tables
            .iter()
            .find(|(def, _)| def.topic == record.topic)
        else {
            return Ok(());
        };
        let at = format!("{}/{}@{}", record.topic, record.partition, record.offset);
        let Some(key) = record.key else {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                "homa: global table {} drops the record from {at}: a row needs a key",
                def.store.name
            );
            return Ok(());
        };
        if let Err(e) = (def.check)(record.topic, key, record.value, record.headers) {
            let error = GlobalRecordError {
                store: def.store.name.to_string(),
                topic: record.topic.to_string(),
                partition: record.partition,
                offset: record.offset,
                reason: e.to_string(),
            };
            return match handler {
                DeserializationHandler::LogAndFail => Err(GlobalError::Record(error)),
                DeserializationHandler::LogAndContinue => {
                    self.dropped.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!("homa: {error}; skipped (log_and_continue)");
                    Ok(())
                }
            };
        }
        match record.value {
            Some(value) => {
                let mut stored = Vec::with_capacity(timestamped::TIMESTAMP_BYTES + value.len());
                stored.extend_from_slice(&record.timestamp.to_be_bytes());
                stored.extend_from_slice(value);
                store.put(key, &stored)?;
            }
            None => store.delete(key)?,
        }
        Ok(())
    }

    /// How far each partition of the tables' topics was written, as of the last
    /// checkpoint (none: from the start).
    pub(crate) fn checkpointed(&self) -> Result<Offsets, StoreError> {
        checkpoint::read(&self.dir)
    }

    /// Makes the stores durable, then records `offsets` (the next offset of each
    /// partition) as how far they were written.
    pub(crate) fn checkpoint(&self, offsets: &Offsets) -> Result<(), StoreError> {
        for (_, store) in &self.tables {
            store.flush()?;
        }
        checkpoint::write(&self.dir, offsets)
    }
}

/// Why a global table could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum GlobalError {
    /// A record could not be read, under log-and-fail.
    #[error(transparent)]
    Record(#[from] GlobalRecordError),
    /// Its store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The consumer failed.
    #[error("the global consumer: {0}")]
    Consumer(String),
}

//! Errors of state stores.

use std::path::PathBuf;

use crate::serde::SerdeError;

/// A state store operation that failed, naming the store and what was being done.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// RocksDB failed.
    #[error("state store {store}: RocksDB {operation} at {} failed: {source}", path.display())]
    RocksDb {
        /// The store's name.
        store: String,
        /// Its directory.
        path: PathBuf,
        /// What was being done (`open`, `put`, `get`, ...).
        operation: &'static str,
        /// RocksDB's own error.
        #[source]
        source: ::rocksdb::Error,
    },
    /// A key or value could not be written as bytes or read back from them.
    #[error("state store {store}: the {part} serde failed: {source}")]
    Serde {
        /// The store's name.
        store: String,
        /// `key` or `value`.
        part: &'static str,
        /// The serde's error.
        #[source]
        source: SerdeError,
    },
    /// The store's directory could not be made ready.
    #[error("state store {store}: {operation} {}: {source}", path.display())]
    Io {
        /// The store's name.
        store: String,
        /// The path concerned.
        path: PathBuf,
        /// What was being done.
        operation: &'static str,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
    /// A store was asked for with other key and value types than it holds.
    #[error("state store {store} holds {holds}, not {asked}")]
    WrongTypes {
        /// The store's name.
        store: String,
        /// The types asked for.
        asked: &'static str,
        /// The types it holds.
        holds: &'static str,
    },
    /// A processor asked for a store that is not connected to it (or does not exist).
    #[error(
        "processor {processor} has no state store {store}: connect it when the store is added (connected: [{connected}])"
    )]
    NotConnected {
        /// The store asked for.
        store: String,
        /// The processor that asked.
        processor: String,
        /// The stores connected to it.
        connected: String,
    },
    /// No store of the topology has this name.
    #[error("no state store {store} in the topology")]
    Unknown {
        /// The name asked for.
        store: String,
    },
    /// Another task (of this or another instance) holds the directory: two instances
    /// share a `state.dir`, which would corrupt their stores.
    #[error("state directory {} is in use by another instance (its lock is held): give each instance its own state.dir", path.display())]
    Locked {
        /// The task directory.
        path: PathBuf,
    },
    /// A write could not be logged to the store's changelog topic.
    #[error("state store {store}: logging to {topic}: {source}")]
    Changelog {
        /// The store's name.
        store: String,
        /// The changelog topic.
        topic: String,
        /// The record collector's error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// The processors a cache flush handed an update to failed.
    #[error("state store {store}: forwarding a flushed update: {source}")]
    Listener {
        /// The store's name.
        store: String,
        /// The processors' error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
    /// A query tried to write.
    #[error("state store {store}: a query's view is read-only")]
    ReadOnly {
        /// The store's name.
        store: String,
    },
    /// A store of a query's view closed: its partition moved to another thread or
    /// instance, or the instance is closing. Ask for the store again.
    #[error("state store {store}: a task's store closed (its partition moved); query again")]
    Moved {
        /// The store's name.
        store: String,
    },
    /// No local task has the store now: the instance is not running, rebalancing, or has no
    /// partition of it.
    #[error(
        "state store {store} is not available on this instance now (not running, rebalancing, or no local partition)"
    )]
    NotAvailable {
        /// The store's name.
        store: String,
    },
    /// A window or session store was given a key that is not one of its store keys (a
    /// changelog written by something else, or a damaged store).
    #[error("state store {store}: {reason}")]
    BadKey {
        /// The store's name.
        store: String,
        /// What is wrong with the key.
        reason: String,
    },
}

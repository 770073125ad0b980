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
}

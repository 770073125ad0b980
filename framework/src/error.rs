//! The one error type of the crate; each variant names the operation that failed and where.

use std::path::PathBuf;

/// An error from HOMA.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A setting of the application is missing, unknown or invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// A task stopped: a record it could not read, or a processor's error.
    #[error(transparent)]
    Task(#[from] crate::runtime::TaskError),
    /// A stream thread stopped.
    #[error(transparent)]
    Thread(Box<crate::runtime::StreamThreadError>),
    /// An instance could not start.
    #[error(transparent)]
    Start(#[from] crate::runtime::StartError),
    /// An instance did not close cleanly.
    #[error(transparent)]
    Close(#[from] crate::runtime::CloseError),
    /// An operation of an instance was called in a state that does not allow it.
    #[error("{operation} needs {needs}; the instance is {state}")]
    WrongState {
        /// The operation, e.g. `clean_up()`.
        operation: &'static str,
        /// The states that allow it.
        needs: &'static str,
        /// The instance's state, as `Debug` shows it.
        state: String,
    },
    /// A state store operation failed.
    #[error(transparent)]
    State(#[from] crate::state::StoreError),
    /// A topology has a mistake.
    #[error(transparent)]
    Topology(#[from] crate::topology::TopologyError),
    /// A RocksDB operation on the store at `path` failed.
    #[error("state store at {path}: {operation} failed: {source}")]
    Store {
        /// The directory of the store.
        path: PathBuf,
        /// What was being done (`open`, `put`, `get`, ...).
        operation: &'static str,
        /// RocksDB's own error.
        #[source]
        source: rocksdb::Error,
    },
    /// A store read back something other than what was written to it.
    #[error("state store at {path}: read back {found:?} for key {key:?}, wrote {expected:?}")]
    StoreMismatch {
        /// The directory of the store.
        path: PathBuf,
        /// The key that was read.
        key: Vec<u8>,
        /// The value that was written.
        expected: Vec<u8>,
        /// The value that came back, if any.
        found: Option<Vec<u8>>,
    },
    /// A file-system operation HOMA needed failed.
    #[error("{operation}: {source}")]
    Io {
        /// What was being done, and where.
        operation: String,
        /// The operating system's error.
        #[source]
        source: std::io::Error,
    },
}

impl From<crate::runtime::StreamThreadError> for Error {
    fn from(error: crate::runtime::StreamThreadError) -> Self {
        Self::Thread(Box::new(error))
    }
}

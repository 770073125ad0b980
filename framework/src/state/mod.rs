//! State stores: what stateful operators keep between records.
//!
//! Every store is a [`StateStore`] (name, persistence, flush, restoration), of a
//! [`StoreKind`] that decides its changelog's topic settings. A store is a stack of layers,
//! as Kafka Streams' `state/internals`:
//!
//! - the typed top ([`KeyValueStore<K, V>`], or [`TimestampedKeyValueStore<K, V>`] whose
//!   values carry the timestamp of their last update): serdes, and the metered layer
//!   (`metered`), which counts its operations and times them at the `DEBUG` recording
//!   level ([`StoreMetrics`]);
//! - caching (`caching`, when the store's builder enables it): the record cache holds
//!   writes back until the commit, keeps the latest of each key, and reads through;
//! - change-logging (`logging`): every write also goes to the store's changelog partition;
//! - under exactly-once, for a persistent logged store, the transactional layer
//!   (`transactional`): the writes of the open transaction wait in memory until it
//!   commits, so that the files only ever hold committed state;
//! - the bytes ([`KeyValueBytesStore`]): RocksDB by default ([`RocksDbKeyValueStore`]), or
//!   in memory ([`InMemoryKeyValueStore`]).
//!
//! Window and session stores ([`WindowStore`], [`TimestampedWindowStore`],
//! [`SessionStore`], keyed by [`Windowed`] keys) are the same stack over a byte store of
//! segments by time (`segmented`), whose keys carry the window's times in Kafka Streams'
//! layouts: caching, change-logging and restoration work on them as on any key-value store.
//!
//! Keys are ordered by their serialized bytes (lexicographically), as in Kafka Streams, so
//! a range over typed keys is a range over their encodings. A timestamped store keeps the
//! timestamp (8 bytes, big-endian) before each value, and its changelog the value alone
//! with the timestamp as the record's, as Kafka Streams lays them out.
//!
//! Every store is owned by one task; queries from other threads read it through the same
//! `Send + Sync` handle, which is why the byte stores take `&self`.

mod batch;
mod buffer;
mod builder;
mod caching;
pub mod checkpoint;
mod composite;
mod error;
pub(crate) mod global;
mod logging;
mod memory;
mod metered;
mod rocksdb;
pub(crate) mod segmented;
mod session;
pub(crate) mod timestamped;
mod transactional;
mod typed;
mod window;
mod windowed;

use std::sync::Arc;

pub use batch::WriteBatch;
pub(crate) use buffer::{Buffered, BufferedSerde, TimeOrderedBuffer};
pub(crate) use builder::StoreDef;
pub use builder::{StoreBackend, StoreBuilder, StoreKind};
pub(crate) use caching::{Below, CacheBudget, CachingLayer, FlushListener};
pub(crate) use composite::CompositeBytesStore;
pub use error::StoreError;
pub(crate) use logging::{ChangeLogger, ChangelogRecord, ChangelogSink};
pub use memory::InMemoryKeyValueStore;
pub(crate) use metered::StoreMeters;
pub use metered::{OperationMetrics, StoreMetrics};
pub use rocksdb::{RocksDbKeyValueStore, RocksDbMemory};
pub use session::{ReadOnlySessionStore, SessionStore};
pub(crate) use timestamped::ValueAndTimestampSerde;
pub use timestamped::{TimestampedKeyValueStore, ValueAndTimestamp};
pub(crate) use transactional::TransactionalBytesStore;
pub(crate) use typed::StoreLayers;
pub use typed::{KeyValueStore, ReadOnlyKeyValueStore};
pub use window::{ReadOnlyWindowStore, TimestampedWindowStore, WindowStore, WindowedEntries};
pub use windowed::{Window, Windowed, WindowedSerde};

/// The entries of a scan, in key order: `(key, value)` or the error that ended it.
pub type KeyValueIter<'a> = Box<dyn Iterator<Item = Result<(Vec<u8>, Vec<u8>), StoreError>> + 'a>;

/// What every state store is, whatever its kind (Kafka Streams' `StateStore`).
pub trait StateStore: Send + Sync + std::fmt::Debug {
    /// The store's name (unique within a topology).
    fn name(&self) -> &str;

    /// Whether the store keeps its content on disk across restarts (no, by default).
    fn persistent(&self) -> bool {
        false
    }

    /// Makes what was written durable where the backend keeps it (RocksDB: memtables to
    /// files), as a commit does before it writes a checkpoint. Nothing by default.
    ///
    /// # Errors
    /// When the backend fails.
    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    /// Applies the writes of `batch` in order, at once where the backend can: restoration
    /// from the changelog writes this way.
    ///
    /// # Errors
    /// When the backend fails; then none or some of the writes may have been applied.
    fn restore_batch(&self, batch: &WriteBatch) -> Result<(), StoreError>;

    /// Applies the writes of a committed transaction, `batch`, and records with them that
    /// the store now reflects its changelog up to `next` (exclusive), at once and durably
    /// where the backend can (RocksDB: one batch through its write-ahead log), so that
    /// after a crash [`committed_offset`](Self::committed_offset) says what the store
    /// holds. By default the writes alone, as [`restore_batch`](Self::restore_batch).
    ///
    /// # Errors
    /// As [`restore_batch`](Self::restore_batch).
    fn commit_batch(&self, batch: &WriteBatch, next: i64) -> Result<(), StoreError> {
        let _ = next;
        self.restore_batch(batch)
    }

    /// The changelog offset the store's content reflects, as the last
    /// [`commit_batch`](Self::commit_batch) that is durable recorded it; `None` when none
    /// is (the default, for a store that keeps no offset).
    ///
    /// # Errors
    /// When the backend fails.
    fn committed_offset(&self) -> Result<Option<i64>, StoreError> {
        Ok(None)
    }

    /// Releases what the store holds, when its task closes. Nothing by default: the store
    /// closes when its last handle goes.
    fn close(&self) {}
}

/// A key-value store of bytes.
pub trait KeyValueBytesStore: StateStore {
    /// The value of `key`, if any.
    ///
    /// # Errors
    /// When the backend fails.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// When the backend fails.
    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError>;

    /// Removes `key`; removing a missing key is no error.
    ///
    /// # Errors
    /// When the backend fails.
    fn delete(&self, key: &[u8]) -> Result<(), StoreError>;

    /// The entries with `from <= key <= to`, in key order; `None` leaves that end open.
    ///
    /// # Errors
    /// When the backend cannot start the scan; errors during it end the iterator.
    fn range(&self, from: Option<&[u8]>, to: Option<&[u8]>)
    -> Result<KeyValueIter<'_>, StoreError>;

    /// Every entry the store holds, in key order: a window or session store's past its
    /// retention too, while a live segment keeps them (what emitting sessions on close
    /// scans, as Kafka Streams' time-ordered session store does: they are just past it).
    /// An open range for any other store.
    ///
    /// # Errors
    /// As [`range`](Self::range).
    fn all_held(&self) -> Result<KeyValueIter<'_>, StoreError> {
        self.range(None, None)
    }

    /// An estimate of the number of entries (RocksDB's own estimate; exact in memory).
    ///
    /// # Errors
    /// When the backend fails.
    fn approximate_num_entries(&self) -> Result<u64, StoreError>;
}

/// A byte store shared by its task and by queries.
pub type SharedBytesStore = Arc<dyn KeyValueBytesStore>;

/// Creates `dir` and takes its lock (`dir/.lock`), held until the returned file is
/// dropped: a task's stores are opened only under its directory's lock, so two instances
/// given one `state.dir` fail clearly instead of writing the same stores.
pub(crate) fn lock_dir(dir: &std::path::Path) -> Result<std::fs::File, StoreError> {
    let io = |operation| {
        move |source| StoreError::Io {
            store: String::new(),
            path: dir.to_path_buf(),
            operation,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(io("creating the task directory"))?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(dir.join(".lock"))
        .map_err(io("opening the lock file of"))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Locked {
            path: dir.to_path_buf(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(io("locking")(source)),
    }
}

/// Whether `key` is within the inclusive bounds `from..=to` (`None`: open).
fn in_range(key: &[u8], from: Option<&[u8]>, to: Option<&[u8]>) -> bool {
    from.is_none_or(|from| key >= from) && to.is_none_or(|to| key <= to)
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_task_directory_is_locked_once_at_a_time() {
        let dir = tempfile::tempdir().unwrap();
        let task = dir.path().join("app/0_1");
        let held = super::lock_dir(&task).unwrap();
        let err = super::lock_dir(&task).unwrap_err().to_string();
        assert!(err.contains("is in use by another instance"), "{err}");
        drop(held);
        super::lock_dir(&task).unwrap();
    }
}

/// The behaviour every byte store shares, run against each backend by its tests.
#[cfg(test)]
pub(crate) mod contract {
    use super::*;

    fn collect(iter: KeyValueIter<'_>) -> Vec<(Vec<u8>, Vec<u8>)> {
        iter.collect::<Result<_, _>>().expect("a scan")
    }

    pub(crate) fn check(store: &dyn KeyValueBytesStore) {
        assert_eq!(store.get(b"a").unwrap(), None);
        store.put(b"b", b"2").unwrap();
        store.put(b"a", b"1").unwrap();
        store.put(b"c", b"3").unwrap();
        store.put(b"a", b"one").unwrap();
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"one"[..]));
        store.delete(b"c").unwrap();
        store.delete(b"missing").unwrap();
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(
            collect(store.range(None, None).unwrap()),
            vec![
                (b"a".to_vec(), b"one".to_vec()),
                (b"b".to_vec(), b"2".to_vec())
            ]
        );

        let mut batch = WriteBatch::new();
        batch.put(b"d", b"4");
        batch.put(b"e", b"5");
        batch.delete(b"a");
        batch.put(b"e", b"five");
        store.restore_batch(&batch).unwrap();
        let keys = |iter| -> Vec<Vec<u8>> { collect(iter).into_iter().map(|(k, _)| k).collect() };
        assert_eq!(keys(store.range(None, None).unwrap()), [b"b", b"d", b"e"]);
        // Both ends inclusive; a bound need not be a key of the store.
        assert_eq!(
            keys(store.range(Some(b"b"), Some(b"d")).unwrap()),
            [b"b", b"d"]
        );
        assert_eq!(keys(store.range(Some(b"bb"), None).unwrap()), [b"d", b"e"]);
        assert_eq!(keys(store.range(None, Some(b"c")).unwrap()), [b"b"]);
        assert!(keys(store.range(Some(b"x"), Some(b"a")).unwrap()).is_empty());
        assert_eq!(store.get(b"e").unwrap().as_deref(), Some(&b"five"[..]));
        store.flush().unwrap();
        // An estimate: RocksDB's may lag behind deletes, so only that it answers.
        store.approximate_num_entries().unwrap();
    }
}

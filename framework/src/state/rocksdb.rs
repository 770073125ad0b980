//! The RocksDB backend, configured as Kafka Streams configures its stores, under one memory
//! budget per instance.

use std::fmt;
use std::path::{Path, PathBuf};

use ::rocksdb::{
    BlockBasedOptions, Cache, DB, DBCompactionStyle, DBCompressionType, Direction, IteratorMode,
    Options, ReadOptions, WriteBufferManager, WriteOptions,
};

use super::{KeyValueBytesStore, KeyValueIter, StateStore, StoreError, WriteBatch, in_range};

/// One memory budget for every RocksDB store of an instance, as Kafka Streams'
/// bounded-memory configuration: a block cache shared by all stores, and a write buffer
/// manager that charges their memtables to that same cache.
#[derive(Clone)]
pub struct RocksDbMemory {
    cache: Cache,
    write_buffers: WriteBufferManager,
    total: usize,
}

impl RocksDbMemory {
    /// A budget of `total` bytes, of which memtables may take `write_buffer_share` (0 to 1).
    pub fn new(total: usize, write_buffer_share: f64) -> Self {
        let cache = Cache::new_lru_cache(total);
        let write_buffers = WriteBufferManager::new_write_buffer_manager_with_cache(
            (total as f64 * write_buffer_share.clamp(0.0, 1.0)) as usize,
            false,
            cache.clone(),
        );
        Self {
            cache,
            write_buffers,
            total,
        }
    }

    /// The budget, in bytes.
    pub fn total(&self) -> usize {
        self.total
    }

    /// Bytes of the shared block cache in use now (memtables charged to it included).
    pub fn usage(&self) -> usize {
        self.cache.get_usage()
    }
}

impl fmt::Debug for RocksDbMemory {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbMemory")
            .field("total", &self.total)
            .field("usage", &self.usage())
            .finish()
    }
}

/// What a store's writes mostly do, which its RocksDB database is tuned for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Writes {
    /// Update keys the store has (a table, an aggregation).
    Updates,
    /// Add keys the store does not have yet (a segment of a window or session store,
    /// whose windows are mostly new when written).
    Inserts,
}

/// A key-value store in a RocksDB database of its own (Kafka Streams' default store).
///
/// As in Kafka Streams: no compression, and no write-ahead log, since the changelog topic is
/// what makes the store durable; [`flush`](StateStore::flush) writes the memtables
/// to files before a checkpoint records how far the store is.
///
/// Under exactly-once, a transaction's writes come in one
/// [`commit_batch`](StateStore::commit_batch) with the changelog offset they bring the store
/// to, kept in a column family of its own (`homa-offsets`), both written at once through
/// the write-ahead log: after a crash the store holds exactly the batches it was given up
/// to the offset it says.
pub struct RocksDbKeyValueStore {
    name: String,
    path: PathBuf,
    db: DB,
    write: WriteOptions,
    /// The write-ahead log's options, for committed batches.
    logged: WriteOptions,
}

/// The column family of a RocksDB store that keeps the changelog offset its content
/// reflects (exactly-once), apart from the store's keys.
pub(crate) const OFFSETS_FAMILY: &str = "homa-offsets";

/// The key of the changelog offset in [`OFFSETS_FAMILY`].
const CHANGELOG_OFFSET: &[u8] = b"changelog-offset";

impl fmt::Debug for RocksDbKeyValueStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RocksDbKeyValueStore")
            .field("name", &self.name)
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl RocksDbKeyValueStore {
    /// Opens (or creates) store `name` in directory `path`, within `memory` when given.
    ///
    /// # Errors
    /// When the directory cannot be made or RocksDB cannot open it (another process has it
    /// open, for one).
    pub fn open(
        name: impl Into<String>,
        path: &Path,
        memory: Option<&RocksDbMemory>,
    ) -> Result<Self, StoreError> {
        Self::open_for(name, path, memory, Writes::Updates)
    }

    /// Opens store `name` as [`open`](Self::open) does, tuned for `writes`.
    pub(crate) fn open_for(
        name: impl Into<String>,
        path: &Path,
        memory: Option<&RocksDbMemory>,
        writes: Writes,
    ) -> Result<Self, StoreError> {
        let name = name.into();
        std::fs::create_dir_all(path).map_err(|source| StoreError::Io {
            store: name.clone(),
            path: path.to_path_buf(),
            operation: "creating the directory",
            source,
        })?;
        // Kafka Streams' RocksDBStore settings.
        let mut options = Options::default();
        options.create_if_missing(true);
        options.set_compression_type(DBCompressionType::None);
        options.set_compaction_style(DBCompactionStyle::Universal);
        options.set_max_write_buffer_number(3);
        options.set_write_buffer_size(16 * 1024 * 1024);
        options.increase_parallelism(
            std::thread::available_parallelism().map_or(2, |n| n.get().max(2)) as i32,
        );
        options.set_allow_concurrent_memtable_write(false);
        if writes == Writes::Updates {
            // A lookup of a key the store does not have (an aggregation's first record of
            // a key) is answered by the filters, without reading data blocks; the last
            // level, which holds most keys, goes without, as lookups there mostly find
            // their key. (A segment's lookups mostly miss: its filters cover every level.)
            options.set_optimize_filters_for_hits(true);
            // An aggregation rewrites the same keys over and over: updated in place, a key
            // keeps one entry in the memtable instead of one per update, so reads find it
            // sooner and memtables fill (and flush) far less often. The price: a scan
            // running while its task writes may see some keys' newer values (no
            // point-in-time view). (A segment's keys are mostly written once: looking for
            // the entry to update would only double the cost of a write.)
            options.set_inplace_update_support(true);
        }
        // A lookup of a key the memtable does not have (a window's first record, a key new
        // to an aggregation) is answered by a bloom filter of its keys instead of a search
        // of the skip list.
        options.set_memtable_prefix_bloom_ratio(0.02);
        options.set_memtable_whole_key_filtering(true);
        let mut table = BlockBasedOptions::default();
        table.set_block_size(4 * 1024);
        table.set_bloom_filter(10.0, false);
        if let Some(memory) = memory {
            table.set_block_cache(&memory.cache);
            table.set_cache_index_and_filter_blocks(true);
            options.set_write_buffer_manager(&memory.write_buffers);
        }
        options.set_block_based_table_factory(&table);
        options.create_missing_column_families(true);
        let db = DB::open_cf(
            &options,
            path,
            [::rocksdb::DEFAULT_COLUMN_FAMILY_NAME, OFFSETS_FAMILY],
        )
        .map_err(|source| StoreError::RocksDb {
            store: name.clone(),
            path: path.to_path_buf(),
            operation: "open",
            source,
        })?;
        let mut write = WriteOptions::default();
        write.disable_wal(true);
        Ok(Self {
            name,
            path: path.to_path_buf(),
            db,
            write,
            logged: WriteOptions::default(),
        })
    }

    /// The store's directory.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn error(&self, operation: &'static str) -> impl Fn(::rocksdb::Error) -> StoreError + '_ {
        move |source| StoreError::RocksDb {
            store: self.name.clone(),
            path: self.path.clone(),
            operation,
            source,
        }
    }
}

impl StateStore for RocksDbKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        true
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush().map_err(self.error("flush"))
    }

    fn restore_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        self.db
            .write_opt(writes_of(batch), &self.write)
            .map_err(self.error("write batch"))
    }

    fn commit_batch(&self, batch: &WriteBatch, next: i64) -> Result<(), StoreError> {
        let mut writes = writes_of(batch);
        writes.put_cf(self.offsets()?, CHANGELOG_OFFSET, next.to_be_bytes());
        self.db
            .write_opt(writes, &self.logged)
            .map_err(self.error("committed write batch"))
    }

    fn committed_offset(&self) -> Result<Option<i64>, StoreError> {
        let stored = self
            .db
            .get_cf(self.offsets()?, CHANGELOG_OFFSET)
            .map_err(self.error("reading the committed offset"))?;
        match stored {
            None => Ok(None),
            Some(bytes) => match <[u8; 8]>::try_from(bytes.as_slice()) {
                Ok(bytes) => Ok(Some(i64::from_be_bytes(bytes))),
                Err(_) => Err(StoreError::BadKey {
                    store: self.name.clone(),
                    reason: format!(
                        "the committed offset in {} has {} bytes, not 8",
                        self.path.display(),
                        bytes.len()
                    ),
                }),
            },
        }
    }
}

/// `batch` as a RocksDB batch.
fn writes_of(batch: &WriteBatch) -> ::rocksdb::WriteBatch {
    let mut writes = ::rocksdb::WriteBatch::default();
    for (key, value) in batch.iter() {
        match value {
            Some(value) => writes.put(key, value),
            None => writes.delete(key),
        }
    }
    writes
}

impl RocksDbKeyValueStore {
    /// The column family of the committed offset (made when the store opened).
    fn offsets(&self) -> Result<&::rocksdb::ColumnFamily, StoreError> {
        self.db
            .cf_handle(OFFSETS_FAMILY)
            .ok_or_else(|| StoreError::BadKey {
                store: self.name.clone(),
                reason: format!(
                    "{} has no column family {OFFSETS_FAMILY}",
                    self.path.display()
                ),
            })
    }
}

impl KeyValueBytesStore for RocksDbKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.db.get(key).map_err(self.error("get"))
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.db
            .put_opt(key, value, &self.write)
            .map_err(self.error("put"))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.db
            .delete_opt(key, &self.write)
            .map_err(self.error("delete"))
    }

    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        let mut read = ReadOptions::default();
        if let Some(from) = from {
            read.set_iterate_lower_bound(from);
        }
        let mode = from.map_or(IteratorMode::Start, |from| {
            IteratorMode::From(from, Direction::Forward)
        });
        let to = to.map(<[u8]>::to_vec);
        let from_owned = from.map(<[u8]>::to_vec);
        let entries = self
            .db
            .iterator_opt(mode, read)
            .map(|entry| {
                entry
                    .map(|(k, v)| (k.into_vec(), v.into_vec()))
                    .map_err(self.error("range"))
            })
            .take_while(move |entry| match entry {
                Ok((key, _)) => in_range(key, from_owned.as_deref(), to.as_deref()),
                Err(_) => true,
            });
        Ok(Box::new(entries))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        let estimate = self
            .db
            .property_int_value("rocksdb.estimate-num-keys")
            .map_err(self.error("estimate-num-keys"))?;
        Ok(estimate.unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_byte_store_contract() {
        let dir = tempfile::tempdir().unwrap();
        let store = RocksDbKeyValueStore::open("counts", &dir.path().join("a/b"), None).unwrap();
        super::super::contract::check(&store);
        assert!(store.persistent());
    }

    #[test]
    fn flushed_content_survives_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let memory = RocksDbMemory::new(8 * 1024 * 1024, 0.5);
        {
            let store = RocksDbKeyValueStore::open("s", dir.path(), Some(&memory)).unwrap();
            store.put(b"k", b"v").unwrap();
            store.flush().unwrap();
        }
        let store = RocksDbKeyValueStore::open("s", dir.path(), Some(&memory)).unwrap();
        assert_eq!(store.get(b"k").unwrap().as_deref(), Some(&b"v"[..]));
        assert_eq!(memory.total(), 8 * 1024 * 1024);
    }

    #[test]
    fn a_committed_batch_and_its_offset_survive_a_crash_together() {
        let dir = tempfile::tempdir().unwrap();
        {
            let store = RocksDbKeyValueStore::open("s", dir.path(), None).unwrap();
            assert_eq!(store.committed_offset().unwrap(), None);
            let mut batch = WriteBatch::new();
            batch.put(b"a", b"1");
            store.commit_batch(&batch, 17).unwrap();
            // Not through the log, not flushed: lost with the process.
            store.put(b"b", b"2").unwrap();
            // No flush, no close: the process dies here as far as RocksDB knows.
            std::mem::forget(store);
        }
        // (The dead process' lock is this process' own: the same DB cannot open twice here.)
        let copy = tempfile::tempdir().unwrap();
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let entry = entry.unwrap();
            if entry.file_name() != "LOCK" {
                std::fs::copy(entry.path(), copy.path().join(entry.file_name())).unwrap();
            }
        }
        let store = RocksDbKeyValueStore::open("s", copy.path(), None).unwrap();
        assert_eq!(store.committed_offset().unwrap(), Some(17));
        assert_eq!(store.get(b"a").unwrap().as_deref(), Some(&b"1"[..]));
        assert_eq!(store.get(b"b").unwrap(), None);
        // The offsets' family is not part of the store's entries.
        let keys: Vec<Vec<u8>> = store
            .range(None, None)
            .unwrap()
            .map(|e| e.unwrap().0)
            .collect();
        assert_eq!(keys, [b"a".to_vec()]);
    }

    #[test]
    fn a_store_open_elsewhere_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let _first = RocksDbKeyValueStore::open("s", dir.path(), None).unwrap();
        let err = RocksDbKeyValueStore::open("s", dir.path(), None).unwrap_err();
        let text = err.to_string();
        assert!(text.starts_with("state store s: RocksDB open at"), "{text}");
        assert!(text.contains("lock"), "{text}");
    }
}

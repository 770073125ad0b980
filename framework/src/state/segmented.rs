//! The bytes of a window store (Kafka Streams' `RocksDBSegmentedBytesStore`): entries kept
//! by time in segments of `max(retention / 2, 60 s)`, each segment a store of its own (a
//! RocksDB database in its own directory, or a map in memory), so that what falls out of
//! the retention period is dropped a segment at a time, never deleted key by key.
//!
//! An entry's key is the record key's bytes, then the window's start (8 bytes, big-endian),
//! then a sequence number (4 bytes, 0 unless duplicates are kept), Kafka Streams'
//! `WindowKeySchema`: within a segment, a key's windows are next to each other in time
//! order. Stream time, as far as the store knows it, is the largest timestamp put. As in
//! Kafka Streams, the segments before the one holding stream time minus the retention are
//! dropped and a put into them refused (the record is too late for the store), and reads
//! leave out the windows older than the retention that a live segment still holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::{
    InMemoryKeyValueStore, RocksDbKeyValueStore, RocksDbMemory, SharedBytesStore, StoreError,
};

/// Bytes of the window start and of the sequence number after a key.
const SUFFIX: usize = 8 + 4;

/// The shortest segment, as Kafka Streams has it.
const MIN_SEGMENT_MS: i64 = 60_000;

/// The store key of `key`'s window starting at `start`, with sequence number `seq`.
pub(crate) fn store_key(key: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SUFFIX);
    out.extend_from_slice(key);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
    out
}

/// The record key and window start of a store key, if it is one.
pub(crate) fn split_store_key(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let at = bytes.len().checked_sub(SUFFIX)?;
    let (key, suffix) = bytes.split_at(at);
    let start = <[u8; 8]>::try_from(&suffix[..8]).ok()?;
    Some((key, i64::from_be_bytes(start)))
}

/// An entry of a window store: record key, window start, value.
pub(crate) type WindowEntry = (Vec<u8>, i64, Vec<u8>);

/// Opens the store of segment `start` (the segment's first timestamp).
type OpenSegment = Box<dyn Fn(i64) -> Result<SharedBytesStore, StoreError> + Send + Sync>;

/// A window store's segments.
pub(crate) struct SegmentedBytesStore {
    name: String,
    retention: i64,
    interval: i64,
    /// The largest timestamp put so far.
    stream_time: AtomicI64,
    /// By the segment's first timestamp.
    segments: RwLock<BTreeMap<i64, SharedBytesStore>>,
    open: OpenSegment,
    /// Where the segments' directories are, for a persistent store.
    dir: Option<PathBuf>,
}

impl std::fmt::Debug for SegmentedBytesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SegmentedBytesStore({}, {} ms)",
            self.name, self.retention
        )
    }
}

impl SegmentedBytesStore {
    /// Store `name` keeping `retention_ms`, its segments in memory.
    pub(crate) fn in_memory(name: &str, retention_ms: i64) -> Self {
        let segment_name = name.to_string();
        let open: OpenSegment = Box::new(move |start| {
            let store: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new(format!(
                "{segment_name}.{start}"
            )));
            Ok(store)
        });
        Self::new(name, retention_ms, open, None)
    }

    /// Store `name` keeping `retention_ms`, each segment a RocksDB database in
    /// `dir/<name>.<segment start>`, with the segments found there opened again.
    ///
    /// # Errors
    /// When the directory cannot be read or a segment cannot be opened.
    pub(crate) fn rocksdb(
        name: &str,
        dir: &Path,
        retention_ms: i64,
        memory: Option<RocksDbMemory>,
    ) -> Result<Self, StoreError> {
        let (segment_name, segment_dir) = (name.to_string(), dir.to_path_buf());
        let open: OpenSegment = Box::new(move |start| {
            let name = format!("{segment_name}.{start}");
            let store: SharedBytesStore = Arc::new(RocksDbKeyValueStore::open(
                name.clone(),
                &segment_dir.join(&name),
                memory.as_ref(),
            )?);
            Ok(store)
        });
        let store = Self::new(name, retention_ms, open, Some(dir.to_path_buf()));
        store.open_existing(dir)?;
        Ok(store)
    }

    fn new(name: &str, retention_ms: i64, open: OpenSegment, dir: Option<PathBuf>) -> Self {
        Self {
            name: name.to_string(),
            retention: retention_ms,
            interval: (retention_ms / 2).max(MIN_SEGMENT_MS),
            stream_time: AtomicI64::new(-1),
            segments: RwLock::default(),
            open,
            dir,
        }
    }

    /// Opens the segments a persistent store left in `dir`.
    fn open_existing(&self, dir: &Path) -> Result<(), StoreError> {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(source) => {
                return Err(StoreError::Io {
                    store: self.name.clone(),
                    path: dir.to_path_buf(),
                    operation: "listing the segments",
                    source,
                });
            }
        };
        let prefix = format!("{}.", self.name);
        for entry in entries.flatten() {
            let file = entry.file_name();
            let start = file
                .to_str()
                .and_then(|f| f.strip_prefix(&prefix))
                .and_then(|s| s.parse::<i64>().ok());
            if let Some(start) = start {
                self.write_segments().insert(start, (self.open)(start)?);
            }
        }
        Ok(())
    }

    fn read_segments(&self) -> RwLockReadGuard<'_, BTreeMap<i64, SharedBytesStore>> {
        self.segments.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write_segments(&self) -> RwLockWriteGuard<'_, BTreeMap<i64, SharedBytesStore>> {
        self.segments
            .write()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// The first timestamp of the segment that holds `timestamp`.
    fn segment_start(&self, timestamp: i64) -> i64 {
        timestamp.div_euclid(self.interval) * self.interval
    }

    /// The first timestamp of the oldest segment kept at stream time `stream_time`.
    fn oldest_segment(&self, stream_time: i64) -> i64 {
        self.segment_start(stream_time.saturating_sub(self.retention))
    }

    /// The oldest window start reads return, from `from` on.
    fn actual_from(&self, from: i64) -> i64 {
        let stream_time = self.stream_time.load(Ordering::Relaxed);
        from.max(stream_time.saturating_sub(self.retention) + 1)
    }

    /// Sets `key`'s window starting at `start` to `value` (`None`: removes it). Returns
    /// whether it was written: a window in a segment already dropped is not (Kafka Streams
    /// skips it and counts it as expired). Segments that fall out of the retention are
    /// dropped.
    ///
    /// # Errors
    /// When a segment cannot be opened, written or dropped.
    pub(crate) fn put(
        &self,
        key: &[u8],
        start: i64,
        value: Option<&[u8]>,
    ) -> Result<bool, StoreError> {
        let stream_time = self
            .stream_time
            .fetch_max(start, Ordering::Relaxed)
            .max(start);
        let segment_start = self.segment_start(start);
        if segment_start < self.oldest_segment(stream_time) {
            return Ok(false);
        }
        let existing = self.read_segments().get(&segment_start).cloned();
        let segment = match existing {
            Some(segment) => segment,
            None => {
                let segment = (self.open)(segment_start)?;
                self.write_segments().insert(segment_start, segment.clone());
                segment
            }
        };
        let store_key = store_key(key, start, 0);
        match value {
            Some(value) => segment.put(&store_key, value)?,
            None => segment.delete(&store_key)?,
        }
        self.drop_expired(stream_time)?;
        Ok(true)
    }

    /// Drops the segments wholly older than the retention at `stream_time`.
    fn drop_expired(&self, stream_time: i64) -> Result<(), StoreError> {
        let oldest_kept = self.oldest_segment(stream_time);
        let expired: Vec<i64> = self
            .read_segments()
            .range(..oldest_kept)
            .map(|(start, _)| *start)
            .collect();
        for start in expired {
            self.write_segments().remove(&start);
            if let Some(dir) = &self.dir {
                let path = dir.join(format!("{}.{start}", self.name));
                std::fs::remove_dir_all(&path).map_err(|source| StoreError::Io {
                    store: self.name.clone(),
                    path,
                    operation: "dropping an expired segment",
                    source,
                })?;
            }
        }
        Ok(())
    }

    /// `key`'s windows starting from `from` to `to` (both included), in time order, as
    /// `(start, value)`.
    ///
    /// # Errors
    /// When a segment cannot be read.
    pub(crate) fn fetch(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, Vec<u8>)>, StoreError> {
        let from = self.actual_from(from);
        if from > to {
            return Ok(Vec::new());
        }
        let (low, high) = (store_key(key, from, 0), store_key(key, to, u32::MAX));
        let mut found = Vec::new();
        for segment in self.segments_between(from, to) {
            for entry in segment.range(Some(&low), Some(&high))? {
                let (store_key, value) = entry?;
                // Longer keys that start with `key` sort in between: not this key's.
                if let Some((k, start)) = split_store_key(&store_key)
                    && k == key
                {
                    found.push((start, value));
                }
            }
        }
        Ok(found)
    }

    /// Every key's windows starting from `from` to `to` (both included), segment by
    /// segment, each in key order.
    ///
    /// # Errors
    /// When a segment cannot be read.
    pub(crate) fn fetch_all(&self, from: i64, to: i64) -> Result<Vec<WindowEntry>, StoreError> {
        let from = self.actual_from(from);
        let mut found = Vec::new();
        if from > to {
            return Ok(found);
        }
        for segment in self.segments_between(from, to) {
            for entry in segment.range(None, None)? {
                let (store_key, value) = entry?;
                if let Some((key, start)) = split_store_key(&store_key)
                    && (from..=to).contains(&start)
                {
                    found.push((key.to_vec(), start, value));
                }
            }
        }
        Ok(found)
    }

    /// The segments that may hold windows starting from `from` to `to`.
    fn segments_between(&self, from: i64, to: i64) -> Vec<SharedBytesStore> {
        let (first, last) = (self.segment_start(from), self.segment_start(to));
        self.read_segments()
            .range(first..=last)
            .map(|(_, segment)| segment.clone())
            .collect()
    }

    /// How many segments the store has now.
    pub(crate) fn segment_count(&self) -> usize {
        self.read_segments().len()
    }

    /// The length of a segment, in ms.
    pub(crate) fn segment_interval(&self) -> i64 {
        self.interval
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    #[test]
    fn a_keys_windows_come_back_in_time_order_and_no_other_keys() {
        let store = SegmentedBytesStore::in_memory("w", 10 * MINUTE);
        for (key, start, value) in [
            ("a", 3 * MINUTE, "3"),
            ("a", MINUTE, "1"),
            ("ab", 2 * MINUTE, "x"),
            ("a", 7 * MINUTE, "7"),
        ] {
            assert!(
                store
                    .put(key.as_bytes(), start, Some(value.as_bytes()))
                    .unwrap()
            );
        }
        let fetched = store.fetch(b"a", 0, 5 * MINUTE).unwrap();
        assert_eq!(
            fetched,
            [(MINUTE, b"1".to_vec()), (3 * MINUTE, b"3".to_vec())]
        );
        assert_eq!(store.fetch(b"a", 7 * MINUTE, 7 * MINUTE).unwrap().len(), 1);
        store.put(b"a", MINUTE, None).unwrap();
        assert_eq!(store.fetch(b"a", 0, MINUTE).unwrap(), []);
        let all = store.fetch_all(2 * MINUTE, 3 * MINUTE).unwrap();
        // One segment (of 5 min): in the order of the store keys.
        assert_eq!(
            all,
            [
                (b"a".to_vec(), 3 * MINUTE, b"3".to_vec()),
                (b"ab".to_vec(), 2 * MINUTE, b"x".to_vec())
            ]
        );
        assert_eq!(
            split_store_key(&store_key(b"k", 5, 0)),
            Some((&b"k"[..], 5))
        );
        assert_eq!(split_store_key(b"short"), None);
    }

    #[test]
    fn old_segments_are_dropped_whole_and_late_windows_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = SegmentedBytesStore::rocksdb("w", dir.path(), 2 * MINUTE, None).unwrap();
        // Retention 2 min: segments of max(1 min, 60 s) = 1 min.
        assert_eq!(store.segment_interval(), MINUTE);
        for minute in 0..30 {
            assert!(store.put(b"k", minute * MINUTE, Some(b"v")).unwrap());
            assert!(
                store.segment_count() <= 3,
                "{} segments",
                store.segment_count()
            );
        }
        // Stream time is 29 min: the segments before 27 min are gone and stay out; the
        // one of 27 min is live, but reads keep only the last 2 min (28 and 29).
        assert!(!store.put(b"k", 26 * MINUTE, Some(b"late")).unwrap());
        assert!(store.put(b"k", 27 * MINUTE, Some(b"late")).unwrap());
        let kept: Vec<i64> = store
            .fetch(b"k", 0, 30 * MINUTE)
            .unwrap()
            .into_iter()
            .map(|(s, _)| s)
            .collect();
        assert_eq!(kept, [28 * MINUTE, 29 * MINUTE]);
        let on_disk = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            on_disk,
            store.segment_count(),
            "dropped segments leave no directory"
        );

        // Opened again, the store finds its segments.
        drop(store);
        let again = SegmentedBytesStore::rocksdb("w", dir.path(), 2 * MINUTE, None).unwrap();
        assert_eq!(
            again.fetch(b"k", 28 * MINUTE, 29 * MINUTE).unwrap().len(),
            2
        );
    }
}

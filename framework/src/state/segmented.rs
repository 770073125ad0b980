//! The bytes of window and session stores (Kafka Streams' `RocksDBSegmentedBytesStore`):
//! entries kept by time in segments of `max(retention / 2, 60 s)`, each segment a store of
//! its own (a RocksDB database in its own directory, or a map in memory), so that what falls
//! out of the retention period is dropped a segment at a time, never deleted key by key.
//!
//! It is a [`KeyValueBytesStore`] of store keys in Kafka Streams' layouts, so the caching
//! and change-logging layers of the key-value stores serve it unchanged, and its changelog
//! holds the store keys as Kafka Streams' does:
//!
//! - a window: the record key's bytes, the window's start (8 bytes, big-endian), a sequence
//!   number (4 bytes, 0 unless duplicates are kept) (`WindowKeySchema`); placed by its start;
//! - a session: the record key's bytes, the session's end, then its start (8 bytes each,
//!   big-endian) (`SessionKeySchema`); placed by its end.
//!
//! Within a segment a key's windows are next to each other in time order. Stream time, as
//! far as the store knows it, is the largest of those timestamps written. As in Kafka
//! Streams, the segments before the one holding stream time minus the retention are dropped
//! and a write into them refused (counted as expired), and reads leave out the entries
//! older than the retention that a live segment still holds.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock, RwLockReadGuard, RwLockWriteGuard};

use super::rocksdb::Writes;
use super::{
    InMemoryKeyValueStore, KeyValueBytesStore, KeyValueIter, RocksDbKeyValueStore, RocksDbMemory,
    SharedBytesStore, StateStore, StoreError, WriteBatch,
};

/// The shortest segment, as Kafka Streams has it.
const MIN_SEGMENT_MS: i64 = 60_000;

/// Bytes of a window's start and sequence number after its key.
const WINDOW_SUFFIX: usize = 8 + 4;

/// Bytes of a session's end and start after its key.
const SESSION_SUFFIX: usize = 8 + 8;

/// The store key of `key`'s window starting at `start`, with sequence number `seq`, into
/// `out`.
pub(crate) fn window_key_into(key: &[u8], start: i64, seq: u32, out: &mut Vec<u8>) {
    out.extend_from_slice(key);
    out.extend_from_slice(&start.to_be_bytes());
    out.extend_from_slice(&seq.to_be_bytes());
}

/// The store key of `key`'s window starting at `start`, with sequence number `seq`.
pub(crate) fn window_key(key: &[u8], start: i64, seq: u32) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + WINDOW_SUFFIX);
    window_key_into(key, start, seq, &mut out);
    out
}

/// The record key and window start of a window's store key, if it is one.
pub(crate) fn split_window_key(bytes: &[u8]) -> Option<(&[u8], i64)> {
    let at = bytes.len().checked_sub(WINDOW_SUFFIX)?;
    let (key, suffix) = bytes.split_at(at);
    Some((key, be_i64(&suffix[..8])?))
}

/// The store key of `key`'s session from `start` to `end`, into `out`.
pub(crate) fn session_key_into(key: &[u8], start: i64, end: i64, out: &mut Vec<u8>) {
    out.extend_from_slice(key);
    out.extend_from_slice(&end.to_be_bytes());
    out.extend_from_slice(&start.to_be_bytes());
}

/// The store key of `key`'s session from `start` to `end`.
pub(crate) fn session_key(key: &[u8], start: i64, end: i64) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.len() + SESSION_SUFFIX);
    session_key_into(key, start, end, &mut out);
    out
}

/// The record key, start and end of a session's store key, if it is one.
pub(crate) fn split_session_key(bytes: &[u8]) -> Option<(&[u8], i64, i64)> {
    let at = bytes.len().checked_sub(SESSION_SUFFIX)?;
    let (key, suffix) = bytes.split_at(at);
    Some((key, be_i64(&suffix[8..])?, be_i64(&suffix[..8])?))
}

fn be_i64(bytes: &[u8]) -> Option<i64> {
    Some(i64::from_be_bytes(<[u8; 8]>::try_from(bytes).ok()?))
}

/// How a segmented store reads the time of its keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum KeySchema {
    /// Windows, placed by their start.
    Window,
    /// Sessions, placed by their end.
    Session,
}

impl KeySchema {
    /// The timestamp that places the entry of `store_key` in a segment.
    fn timestamp(self, store_key: &[u8]) -> Option<i64> {
        match self {
            Self::Window => split_window_key(store_key).map(|(_, start)| start),
            Self::Session => split_session_key(store_key).map(|(_, _, end)| end),
        }
    }
}

/// Opens the store of segment `start` (the segment's first timestamp).
type OpenSegment = Box<dyn Fn(i64) -> Result<SharedBytesStore, StoreError> + Send + Sync>;

/// A window or session store's segments.
pub(crate) struct SegmentedBytesStore {
    name: String,
    schema: KeySchema,
    retention: i64,
    interval: i64,
    /// The largest timestamp written so far.
    stream_time: AtomicI64,
    /// Writes refused for falling into a dropped segment.
    expired: AtomicU64,
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
            "SegmentedBytesStore({}, {:?}, {} ms)",
            self.name, self.schema, self.retention
        )
    }
}

impl SegmentedBytesStore {
    /// Store `name` of `schema`'s keys keeping `retention_ms`, its segments in memory.
    pub(crate) fn in_memory(name: &str, schema: KeySchema, retention_ms: i64) -> Self {
        let segment_name = name.to_string();
        let open: OpenSegment = Box::new(move |start| {
            let store: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new(format!(
                "{segment_name}.{start}"
            )));
            Ok(store)
        });
        Self::new(name, schema, retention_ms, open, None)
    }

    /// Store `name` of `schema`'s keys keeping `retention_ms`, each segment a RocksDB
    /// database in `dir/<name>.<segment start>`, with the segments found there opened again.
    ///
    /// # Errors
    /// When the directory cannot be read or a segment cannot be opened.
    pub(crate) fn rocksdb(
        name: &str,
        schema: KeySchema,
        dir: &Path,
        retention_ms: i64,
        memory: Option<RocksDbMemory>,
    ) -> Result<Self, StoreError> {
        let (segment_name, segment_dir) = (name.to_string(), dir.to_path_buf());
        let open: OpenSegment = Box::new(move |start| {
            let name = format!("{segment_name}.{start}");
            let store: SharedBytesStore = Arc::new(RocksDbKeyValueStore::open_for(
                name.clone(),
                &segment_dir.join(&name),
                memory.as_ref(),
                Writes::Inserts,
            )?);
            Ok(store)
        });
        let store = Self::new(name, schema, retention_ms, open, Some(dir.to_path_buf()));
        store.open_existing(dir)?;
        Ok(store)
    }

    fn new(
        name: &str,
        schema: KeySchema,
        retention_ms: i64,
        open: OpenSegment,
        dir: Option<PathBuf>,
    ) -> Self {
        Self {
            name: name.to_string(),
            schema,
            retention: retention_ms,
            interval: (retention_ms / 2).max(MIN_SEGMENT_MS),
            stream_time: AtomicI64::new(-1),
            expired: AtomicU64::new(0),
            segments: RwLock::default(),
            open,
            dir,
        }
    }

    /// Opens the segments a persistent store left in `dir`. Kafka Streams starts such a
    /// store's stream time from its newest segment's entries; the newest segment's start
    /// is a bound below them, enough to drop what is surely expired.
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
                let segment = (self.open)(start)?;
                // The newest entry of the newest segment is stream time as the store last
                // knew it.
                self.stream_time.fetch_max(
                    self.newest_in(&segment)?.unwrap_or(start),
                    Ordering::Relaxed,
                );
                self.write_segments().insert(start, segment);
            }
        }
        Ok(())
    }

    /// The largest timestamp of `segment`'s entries.
    fn newest_in(&self, segment: &SharedBytesStore) -> Result<Option<i64>, StoreError> {
        let mut newest = None;
        for entry in segment.range(None, None)? {
            let (key, _) = entry?;
            newest = newest.max(self.schema.timestamp(&key));
        }
        Ok(newest)
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

    /// The oldest timestamp reads return.
    fn oldest_live(&self) -> i64 {
        let stream_time = self.stream_time.load(Ordering::Relaxed);
        stream_time.saturating_sub(self.retention).saturating_add(1)
    }

    /// The timestamp of `key`, or an error naming the store when it is no store key.
    fn timestamp_of(&self, key: &[u8]) -> Result<i64, StoreError> {
        self.schema
            .timestamp(key)
            .ok_or_else(|| StoreError::BadKey {
                store: self.name.clone(),
                reason: format!(
                    "a key of {} bytes is too short for a {:?} store key",
                    key.len(),
                    self.schema
                ),
            })
    }

    /// Sets `key` to `value` (`None`: removes it), unless it falls in a segment already
    /// dropped: Kafka Streams skips such a write and counts it as expired. Segments that
    /// fall out of the retention are dropped.
    fn write(&self, key: &[u8], value: Option<&[u8]>) -> Result<(), StoreError> {
        let timestamp = self.timestamp_of(key)?;
        let stream_time = self
            .stream_time
            .fetch_max(timestamp, Ordering::Relaxed)
            .max(timestamp);
        let Some(segment) = self.live_segment(timestamp, stream_time, value.is_some())? else {
            return Ok(());
        };
        match value {
            Some(value) => segment.put(key, value)?,
            None => segment.delete(key)?,
        }
        self.drop_expired(stream_time)
    }

    /// The segment of `timestamp`, opened when `create` and it has none yet; none for a
    /// timestamp whose segment is dropped at `stream_time` (counted as expired).
    fn live_segment(
        &self,
        timestamp: i64,
        stream_time: i64,
        create: bool,
    ) -> Result<Option<SharedBytesStore>, StoreError> {
        let start = self.segment_start(timestamp);
        if start < self.oldest_segment(stream_time) {
            self.expired.fetch_add(1, Ordering::Relaxed);
            tracing::debug!(
                "homa: store {}: skipping a write for the expired segment of {timestamp} \
                 (stream time {stream_time}, retention {} ms)",
                self.name,
                self.retention
            );
            return Ok(None);
        }
        if let Some(segment) = self.read_segments().get(&start) {
            return Ok(Some(segment.clone()));
        }
        if !create {
            return Ok(None);
        }
        let segment = (self.open)(start)?;
        self.write_segments().insert(start, segment.clone());
        Ok(Some(segment))
    }

    /// Drops the segments wholly older than the retention at `stream_time`.
    fn drop_expired(&self, stream_time: i64) -> Result<(), StoreError> {
        let oldest_kept = self.oldest_segment(stream_time);
        if self
            .read_segments()
            .first_key_value()
            .is_none_or(|(start, _)| *start >= oldest_kept)
        {
            return Ok(());
        }
        let mut segments = self.write_segments();
        let kept = segments.split_off(&oldest_kept);
        let expired = std::mem::replace(&mut *segments, kept);
        drop(segments);
        for (start, segment) in expired {
            segment.close();
            drop(segment);
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

    /// The live segments, oldest first.
    fn all_segments(&self) -> Vec<SharedBytesStore> {
        self.read_segments().values().cloned().collect()
    }

    /// How many segments the store has now.
    #[cfg(test)]
    fn segment_count(&self) -> usize {
        self.read_segments().len()
    }

    /// The entries of every segment with `from <= key <= to` and a timestamp from `oldest`
    /// on, in key order, read at once.
    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        oldest: i64,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        let mut found = Vec::new();
        for segment in self.all_segments() {
            for entry in segment.range(from, to)? {
                let (key, value) = entry?;
                if self.schema.timestamp(&key).is_some_and(|t| t >= oldest) {
                    found.push((key, value));
                }
            }
        }
        // Each segment's entries are in order: the sort merges the runs. A key lives in
        // one segment only (its time places it), so none repeats.
        found.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(Box::new(found.into_iter().map(Ok)))
    }

    /// The writes of `batch` by the segment they go to (made when it has none yet), the
    /// store's stream time moved as far as the batch takes it; writes into segments
    /// expired by then are skipped.
    fn by_segment(
        &self,
        batch: &WriteBatch,
    ) -> Result<BTreeMap<i64, (SharedBytesStore, WriteBatch)>, StoreError> {
        let mut by_segment: BTreeMap<i64, (SharedBytesStore, WriteBatch)> = BTreeMap::new();
        let mut stream_time = self.stream_time.load(Ordering::Relaxed);
        for (key, value) in batch.iter() {
            let timestamp = self.timestamp_of(key)?;
            stream_time = stream_time.max(timestamp);
            let start = self.segment_start(timestamp);
            if let Some((_, writes)) = by_segment.get_mut(&start) {
                writes.push(key, value);
            } else if let Some(segment) = self.live_segment(timestamp, stream_time, true)? {
                let mut writes = WriteBatch::new();
                writes.push(key, value);
                by_segment.insert(start, (segment, writes));
            }
        }
        self.stream_time.fetch_max(stream_time, Ordering::Relaxed);
        Ok(by_segment)
    }

    /// Writes refused so far for falling into a dropped segment.
    #[cfg(test)]
    fn expired_writes(&self) -> u64 {
        self.expired.load(Ordering::Relaxed)
    }
}

impl StateStore for SegmentedBytesStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn persistent(&self) -> bool {
        self.dir.is_some()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.all_segments().iter().try_for_each(|s| s.flush())
    }

    /// Each segment's writes at once; writes into segments expired by stream time as the
    /// batch moves it are skipped, as Kafka Streams restores a segmented store.
    fn restore_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        for (segment, writes) in self.by_segment(batch)?.values() {
            segment.restore_batch(writes)?;
        }
        self.drop_expired(self.stream_time.load(Ordering::Relaxed))
    }

    /// Each segment's writes at once, as [`restore_batch`](Self::restore_batch), and `next`
    /// recorded in every live segment (one that had no write too), so that the lowest
    /// offset of the segments is one they all reflect.
    fn commit_batch(&self, batch: &WriteBatch, next: i64) -> Result<(), StoreError> {
        let mut by_segment = self.by_segment(batch)?;
        let empty = WriteBatch::new();
        for (start, segment) in self.read_segments().iter() {
            match by_segment.remove(start) {
                Some((segment, writes)) => segment.commit_batch(&writes, next)?,
                None => segment.commit_batch(&empty, next)?,
            }
        }
        self.drop_expired(self.stream_time.load(Ordering::Relaxed))
    }

    /// The lowest offset the segments recorded: the one every segment reflects. A segment
    /// that recorded none (made by a restore since) was written from a higher offset.
    fn committed_offset(&self) -> Result<Option<i64>, StoreError> {
        let mut lowest: Option<i64> = None;
        for segment in self.all_segments() {
            if let Some(offset) = segment.committed_offset()? {
                lowest = Some(lowest.map_or(offset, |l| l.min(offset)));
            }
        }
        Ok(lowest)
    }

    fn close(&self) {
        self.all_segments().iter().for_each(|s| s.close());
    }
}

impl KeyValueBytesStore for SegmentedBytesStore {
    /// The entry of `key`, unless it is older than the retention.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let timestamp = self.timestamp_of(key)?;
        if timestamp < self.oldest_live() {
            return Ok(None);
        }
        let segment = self
            .read_segments()
            .get(&self.segment_start(timestamp))
            .cloned();
        match segment {
            Some(segment) => segment.get(key),
            None => Ok(None),
        }
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write(key, Some(value))
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.write(key, None)
    }

    /// The live entries of every segment with `from <= key <= to`, in key order, read at
    /// once.
    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        self.scan(from, to, self.oldest_live())
    }

    /// Every entry of the live segments, those past the retention too.
    fn all_held(&self) -> Result<KeyValueIter<'_>, StoreError> {
        self.scan(None, None, i64::MIN)
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        self.all_segments()
            .iter()
            .map(|s| s.approximate_num_entries())
            .sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINUTE: i64 = 60_000;

    fn keys(store: &SegmentedBytesStore) -> Vec<(Vec<u8>, i64)> {
        store
            .range(None, None)
            .unwrap()
            .map(|e| {
                let (k, _) = e.unwrap();
                let (key, start) = split_window_key(&k).unwrap();
                (key.to_vec(), start)
            })
            .collect()
    }

    #[test]
    fn windows_come_back_in_key_then_time_order_across_segments() {
        let store = SegmentedBytesStore::in_memory("w", KeySchema::Window, 10 * MINUTE);
        for (key, start) in [("a", 7 * MINUTE), ("a", MINUTE), ("ab", 2 * MINUTE)] {
            store
                .put(&window_key(key.as_bytes(), start, 0), b"v")
                .unwrap();
        }
        assert_eq!(store.segment_count(), 2, "segments of 5 min");
        assert_eq!(
            keys(&store),
            [
                (b"a".to_vec(), MINUTE),
                (b"a".to_vec(), 7 * MINUTE),
                (b"ab".to_vec(), 2 * MINUTE)
            ]
        );
        let one = window_key(b"a", MINUTE, 0);
        assert_eq!(store.get(&one).unwrap().as_deref(), Some(&b"v"[..]));
        store.delete(&one).unwrap();
        assert_eq!(store.get(&one).unwrap(), None);
        assert_eq!(
            split_window_key(&window_key(b"k", 5, 0)),
            Some((&b"k"[..], 5))
        );
        assert_eq!(split_window_key(b"short"), None);
        assert_eq!(
            split_session_key(&session_key(b"k", 5, 9)),
            Some((&b"k"[..], 5, 9))
        );
        assert!(store.put(b"short", b"v").is_err(), "no store key");
    }

    #[test]
    fn old_segments_are_dropped_whole_and_late_windows_refused() {
        let dir = tempfile::tempdir().unwrap();
        let open = || {
            SegmentedBytesStore::rocksdb("w", KeySchema::Window, dir.path(), 2 * MINUTE, None)
                .unwrap()
        };
        let store = open();
        // Retention 2 min: segments of max(1 min, 60 s) = 1 min.
        for minute in 0..30 {
            store
                .put(&window_key(b"k", minute * MINUTE, 0), b"v")
                .unwrap();
            assert!(
                store.segment_count() <= 3,
                "{} segments",
                store.segment_count()
            );
        }
        // Stream time is 29 min: the segments before 27 min are gone and stay out; the
        // one of 27 min is live, but reads keep only the last 2 min (28 and 29).
        store
            .put(&window_key(b"k", 26 * MINUTE, 0), b"late")
            .unwrap();
        assert_eq!(store.expired_writes(), 1);
        store
            .put(&window_key(b"k", 27 * MINUTE, 0), b"late")
            .unwrap();
        assert_eq!(store.expired_writes(), 1);
        let kept: Vec<i64> = keys(&store).into_iter().map(|(_, s)| s).collect();
        assert_eq!(kept, [28 * MINUTE, 29 * MINUTE]);
        assert_eq!(store.get(&window_key(b"k", 27 * MINUTE, 0)).unwrap(), None);
        let on_disk = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(
            on_disk,
            store.segment_count(),
            "dropped segments leave no directory"
        );

        // Opened again, the store finds its segments and its stream time.
        drop(store);
        let again = open();
        assert_eq!(keys(&again).len(), 2);
        again
            .put(&window_key(b"k", 26 * MINUTE, 0), b"late")
            .unwrap();
        assert_eq!(again.expired_writes(), 1);
    }

    #[test]
    fn a_restore_skips_what_its_own_records_expire() {
        let store = SegmentedBytesStore::in_memory("s", KeySchema::Session, 2 * MINUTE);
        let mut batch = WriteBatch::new();
        batch.put(&session_key(b"k", 0, MINUTE), b"old");
        batch.put(&session_key(b"k", 10 * MINUTE, 10 * MINUTE), b"new");
        batch.put(&session_key(b"k", 0, 2 * MINUTE), b"late");
        store.restore_batch(&batch).unwrap();
        assert_eq!(store.segment_count(), 1);
        assert_eq!(store.expired_writes(), 1);
        let all: Vec<_> = store
            .range(None, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all,
            [(session_key(b"k", 10 * MINUTE, 10 * MINUTE), b"new".to_vec())]
        );
    }
}

//! The caching layer (Kafka Streams' record cache, `CachingKeyValueStore`): between
//! commits a store's writes stay in memory, and only the latest of each key goes down to the
//! change-logging layer and the byte store when the cache is flushed (before each commit)
//! or evicts. A flush hands each update it writes to the store's flush listener, if it has
//! one: the DSL's tables forward their changes downstream that way.
//!
//! The cache is byte-level, for any store whose builder enables it; the stream thread's
//! caches share one budget (`statestore.cache.max.bytes` divided among the threads). When
//! they are over it, the least recently updated entry of the cache being written leaves, and
//! when it holds an update the store does not have yet, the whole cache is flushed first.
//! Reads of the task fill the cache (values and absences); queries read through it, from
//! any thread, without filling it.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use hashlink::LinkedHashMap;

use crate::header::Headers;

use super::{
    ChangeLogger, KeyValueBytesStore, KeyValueIter, SharedBytesStore, StateStore, StoreError,
    WriteBatch, in_range,
};

/// The bytes a stream thread's record caches may hold (`statestore.cache.max.bytes` divided
/// among the threads), shared by the caches of its tasks.
#[derive(Debug)]
pub(crate) struct CacheBudget {
    pub(crate) max: usize,
    pub(crate) used: Cell<usize>,
}

impl CacheBudget {
    pub(crate) fn new(max: usize) -> Rc<Self> {
        Rc::new(Self {
            max,
            used: Cell::new(0),
        })
    }

    /// Whether the caches hold more than the budget.
    fn exceeded(&self) -> bool {
        self.used.get() > self.max
    }
}

/// Bookkeeping of an entry besides its key and value bytes: the entry, its key's buffer,
/// the map's node and slot (an estimate, as Kafka Streams' cache makes one).
pub(crate) const ENTRY_OVERHEAD: usize = 96;

#[derive(Debug)]
struct Entry {
    /// The value now, as the store keeps it (`None`: absent, or deleted).
    value: Option<Vec<u8>>,
    /// While dirty: the value the store has, when known (`None`: read it at the flush).
    old: Option<Option<Vec<u8>>>,
    /// The timestamp of the update (of the record that made it).
    timestamp: i64,
    /// The headers of the record that made the update, which its flush forwards with
    /// (Kafka Streams keeps the record context of each cache entry).
    headers: Headers,
    /// What the entry is charged against the budget.
    bytes: usize,
    /// Whether it holds an update not yet written to the store.
    dirty: bool,
}

/// By key, the least recently updated first: the order of eviction and of a flush's
/// writes.
type Entries = LinkedHashMap<Vec<u8>, Entry>;

/// Called with each update a flush writes: the key, the new value and the one it replaces
/// (as the store keeps them; `None`: absent), and the update's timestamp and headers.
pub(crate) type FlushListener = Box<
    dyn FnMut(
        &[u8],
        Option<&[u8]>,
        Option<&[u8]>,
        i64,
        &Headers,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync + 'static>>,
>;

/// An update a flush writes.
struct Update {
    key: Vec<u8>,
    new: Option<Vec<u8>>,
    /// The store's value, when known.
    old: Option<Option<Vec<u8>>>,
    timestamp: i64,
    headers: Headers,
}

/// What is below a cache: the byte store, and its changelog when it is logged.
#[derive(Clone, Copy)]
pub(crate) struct Below<'a> {
    pub(crate) bytes: &'a SharedBytesStore,
    pub(crate) logger: Option<&'a ChangeLogger>,
}

impl Below<'_> {
    /// Writes `key` = `value` (`None`: deletes it) as of `timestamp`.
    pub(crate) fn write(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        timestamp: i64,
    ) -> Result<(), StoreError> {
        match value {
            Some(value) => self.bytes.put(key, value)?,
            None => self.bytes.delete(key)?,
        }
        match self.logger {
            Some(logger) => logger.log_at(key, value, timestamp),
            None => Ok(()),
        }
    }
}

/// The record cache of one store of one task.
pub(crate) struct CachingLayer {
    name: Arc<str>,
    /// Shared with the store's query view.
    entries: Arc<Mutex<Entries>>,
    budget: Rc<CacheBudget>,
    dirty: Cell<usize>,
    /// What this cache is charged.
    bytes: Cell<usize>,
    listener: RefCell<Option<FlushListener>>,
    /// The task's timestamp of the record being processed: while the listener takes an
    /// update, it is the update's, so that what processors downstream write is stamped
    /// with it (as Kafka Streams restores an entry's record context).
    record_timestamp: Rc<Cell<i64>>,
}

impl std::fmt::Debug for CachingLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CachingLayer")
            .field("name", &self.name)
            .field("dirty", &self.dirty.get())
            .field("bytes", &self.bytes.get())
            .finish_non_exhaustive()
    }
}

fn lock(entries: &Mutex<Entries>) -> MutexGuard<'_, Entries> {
    // A panic while holding the lock leaves the map as it was between two operations.
    entries.lock().unwrap_or_else(PoisonError::into_inner)
}

fn charge(key: &[u8], value: Option<&[u8]>) -> usize {
    key.len() + value.map_or(0, <[u8]>::len) + ENTRY_OVERHEAD
}

impl CachingLayer {
    /// An empty cache of store `name`, drawing on `budget`, of a task whose record
    /// timestamp is `record_timestamp`.
    pub(crate) fn new(
        name: Arc<str>,
        budget: Rc<CacheBudget>,
        record_timestamp: Rc<Cell<i64>>,
    ) -> Self {
        Self {
            name,
            entries: Arc::default(),
            budget,
            dirty: Cell::new(0),
            bytes: Cell::new(0),
            listener: RefCell::new(None),
            record_timestamp,
        }
    }

    /// Hands every update a flush writes to `listener` from now on.
    pub(crate) fn set_flush_listener(&self, listener: FlushListener) {
        *self.listener.borrow_mut() = Some(listener);
    }

    /// The value of `key` now: the cached one, else the store's (which the cache keeps).
    pub(crate) fn get(&self, key: &[u8], below: Below<'_>) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = lock(&self.entries).get(key) {
            return Ok(entry.value.clone());
        }
        let value = below.bytes.get(key)?;
        let bytes = charge(key, value.as_deref());
        let entry = Entry {
            value: value.clone(),
            old: None,
            timestamp: -1,
            headers: Headers::new(),
            bytes,
            dirty: false,
        };
        lock(&self.entries).insert(key.to_vec(), entry);
        self.account(bytes as isize);
        self.evict(below)?;
        Ok(value)
    }

    /// Holds `key` = `value` (`None`: deleted) as of `timestamp`, made by a record with
    /// `headers`.
    pub(crate) fn put(
        &self,
        key: &[u8],
        value: Option<&[u8]>,
        (timestamp, headers): (i64, &Headers),
        below: Below<'_>,
    ) -> Result<(), StoreError> {
        let size = charge(key, value);
        let delta = {
            let mut entries = lock(&self.entries);
            match entries.to_back(key) {
                Some(entry) => {
                    if !entry.dirty {
                        // The first update since the last flush: the store has what the
                        // entry held.
                        entry.old = Some(entry.value.take());
                        entry.dirty = true;
                        self.dirty.set(self.dirty.get() + 1);
                    }
                    entry.value = value.map(<[u8]>::to_vec);
                    entry.timestamp = timestamp;
                    entry.headers.clone_from(headers);
                    let delta = size as isize - entry.bytes as isize;
                    entry.bytes = size;
                    delta
                }
                None => {
                    let entry = Entry {
                        value: value.map(<[u8]>::to_vec),
                        old: None,
                        timestamp,
                        headers: headers.clone(),
                        bytes: size,
                        dirty: true,
                    };
                    entries.insert(key.to_vec(), entry);
                    self.dirty.set(self.dirty.get() + 1);
                    size as isize
                }
            }
        };
        self.account(delta);
        self.evict(below)
    }

    /// While the thread's caches are over their budget: the least recently updated entry
    /// leaves; when it holds an update the store does not have yet, every update of this
    /// cache is written (and handed to the listener) first, as Kafka Streams evicts.
    fn evict(&self, below: Below<'_>) -> Result<(), StoreError> {
        while self.budget.exceeded() {
            let eldest_dirty = {
                let entries = lock(&self.entries);
                // The entry just read or written stays (when the other caches of the
                // thread hold the budget, this one would otherwise lose it at once, and a
                // read then a write of one key would read the store twice).
                if entries.len() <= 1 {
                    break;
                }
                match entries.front() {
                    Some((_, eldest)) => eldest.dirty,
                    None => break,
                }
            };
            if eldest_dirty {
                self.flush(below)?;
                continue;
            }
            let gone = lock(&self.entries).pop_front();
            if let Some((_, entry)) = gone {
                self.account(-(entry.bytes as isize));
            }
        }
        Ok(())
    }

    /// Writes every held update to the store, in the order of their last updates, and hands
    /// each to the listener; the entries stay, clean, to answer reads. An update of a key
    /// the store did not have either (a delete of an absent key) is neither written nor
    /// handed on, as Kafka Streams' caching layer drops it.
    pub(crate) fn flush(&self, below: Below<'_>) -> Result<(), StoreError> {
        if self.dirty.get() == 0 {
            return Ok(());
        }
        // Taken out under the lock, written and handed on without it: the listener's
        // processors downstream may read this store.
        // An update moves its entry to the back, and a read adds an entry there: the dirty
        // entries are among the last ones, after every entry untouched since the last
        // flush. Looked for from the back, a flush costs what was touched since the last
        // (the test driver flushes after every record), not the size of the cache.
        let updates: Vec<Update> = {
            let mut entries = lock(&self.entries);
            let mut left = self.dirty.get();
            let mut updates = Vec::with_capacity(left);
            for (key, entry) in entries.iter_mut().rev() {
                if left == 0 {
                    break;
                }
                if !entry.dirty {
                    continue;
                }
                left -= 1;
                entry.dirty = false;
                updates.push(Update {
                    key: key.clone(),
                    new: entry.value.clone(),
                    old: entry.old.take(),
                    timestamp: entry.timestamp,
                    headers: std::mem::take(&mut entry.headers),
                });
            }
            updates.reverse();
            updates
        };
        self.dirty.set(0);
        let mut listener = self.listener.borrow_mut();
        let processing = self.record_timestamp.get();
        let outcome = self.write_down(updates, listener.as_mut(), below);
        self.record_timestamp.set(processing);
        outcome
    }

    /// Writes `updates` down and hands each to `listener`, stamped with its timestamp.
    fn write_down(
        &self,
        updates: Vec<Update>,
        mut listener: Option<&mut FlushListener>,
        below: Below<'_>,
    ) -> Result<(), StoreError> {
        for update in updates {
            let (key, new, timestamp) = (&update.key, update.new.as_deref(), update.timestamp);
            let old = match update.old {
                Some(old) => old,
                None => below.bytes.get(key)?,
            };
            if new.is_none() && old.is_none() {
                continue;
            }
            below.write(key, new, timestamp)?;
            if let Some(listener) = listener.as_mut() {
                self.record_timestamp.set(timestamp);
                listener(key, new, old.as_deref(), timestamp, &update.headers).map_err(
                    |source| StoreError::Listener {
                        store: self.name.to_string(),
                        source,
                    },
                )?;
            }
        }
        Ok(())
    }

    /// The view of the store that queries (and the test driver) read, through this cache.
    pub(crate) fn view(&self, bytes: SharedBytesStore) -> SharedBytesStore {
        Arc::new(CachedView {
            entries: self.entries.clone(),
            inner: bytes,
        })
    }

    fn account(&self, delta: isize) {
        self.bytes
            .set(self.bytes.get().saturating_add_signed(delta));
        let used = self.budget.used.get().saturating_add_signed(delta);
        self.budget.used.set(used);
    }
}

impl Drop for CachingLayer {
    /// A closed task's cache gives its share of the thread's budget back.
    fn drop(&mut self) {
        let used = self.budget.used.get().saturating_sub(self.bytes.get());
        self.budget.used.set(used);
    }
}

/// A store read through its cache: what queries see, from any thread. Reads do not fill
/// the cache; writes are refused.
#[derive(Debug)]
struct CachedView {
    entries: Arc<Mutex<Entries>>,
    inner: SharedBytesStore,
}

impl StateStore for CachedView {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    fn restore_batch(&self, _: &WriteBatch) -> Result<(), StoreError> {
        Err(StoreError::ReadOnly {
            store: self.inner.name().to_string(),
        })
    }
}

impl CachedView {
    /// The cache's entries with `from <= key <= to` over `stored` (the store's), in key
    /// order.
    fn over<'a>(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
        stored: KeyValueIter<'a>,
    ) -> KeyValueIter<'a> {
        let mut cached: Vec<(Vec<u8>, Option<Vec<u8>>)> = lock(&self.entries)
            .iter()
            .filter(|(key, _)| in_range(key, from, to))
            .map(|(key, entry)| (key.clone(), entry.value.clone()))
            .collect();
        cached.sort_by(|a, b| a.0.cmp(&b.0));
        let mut stored = stored.peekable();
        let mut cached = cached.into_iter().peekable();
        let merged = std::iter::from_fn(move || {
            loop {
                let take_cached = match (cached.peek(), stored.peek()) {
                    (None, None) => return None,
                    (Some(_), None) => true,
                    (None, Some(_)) => false,
                    (Some(_), Some(Err(_))) => false,
                    (Some((c, _)), Some(Ok((s, _)))) => c <= s,
                };
                if !take_cached {
                    return stored.next();
                }
                let (key, value) = cached.next()?;
                // The cache's entry stands for the store's of the same key.
                if let Some(Ok((s, _))) = stored.peek()
                    && *s == key
                {
                    stored.next();
                }
                if let Some(value) = value {
                    return Some(Ok((key, value)));
                }
            }
        });
        Box::new(merged)
    }
}

impl KeyValueBytesStore for CachedView {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(entry) = lock(&self.entries).get(key) {
            return Ok(entry.value.clone());
        }
        self.inner.get(key)
    }

    fn put(&self, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        self.restore_batch(&WriteBatch::new())
    }

    fn delete(&self, _: &[u8]) -> Result<(), StoreError> {
        self.restore_batch(&WriteBatch::new())
    }

    /// The store's entries with the cache's over them, in key order.
    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        Ok(self.over(from, to, self.inner.range(from, to)?))
    }

    fn all_held(&self) -> Result<KeyValueIter<'_>, StoreError> {
        Ok(self.over(None, None, self.inner.all_held()?))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        self.inner.approximate_num_entries()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::InMemoryKeyValueStore;

    /// Key, new value, old value, timestamp and the number of headers of each update.
    type Flushed = Rc<RefCell<Vec<(String, Option<String>, Option<String>, i64, usize)>>>;

    fn text(bytes: Option<&[u8]>) -> Option<String> {
        bytes.map(|b| String::from_utf8_lossy(b).into_owned())
    }

    fn cache(max: usize) -> (CachingLayer, SharedBytesStore, Flushed, Rc<CacheBudget>) {
        let budget = CacheBudget::new(max);
        let cache = CachingLayer::new("s".into(), budget.clone(), Rc::default());
        let flushed: Flushed = Rc::default();
        let seen = flushed.clone();
        cache.set_flush_listener(Box::new(move |k, new, old, t, headers| {
            seen.borrow_mut().push((
                String::from_utf8_lossy(k).into_owned(),
                text(new),
                text(old),
                t,
                headers.len(),
            ));
            Ok(())
        }));
        let bytes: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        (cache, bytes, flushed, budget)
    }

    fn below(bytes: &SharedBytesStore) -> Below<'_> {
        Below {
            bytes,
            logger: None,
        }
    }

    #[test]
    fn holds_updates_until_flushed_with_the_values_they_replace() {
        let (cache, bytes, flushed, budget) = cache(10_000);
        bytes.put(b"a", b"0").unwrap();
        let none = Headers::new();
        let mut one = Headers::new();
        one.add("h", b"x");
        for (key, value, t, headers) in [
            ("a", "1", 1, &none),
            ("b", "1", 2, &none),
            ("a", "2", 3, &one),
        ] {
            cache
                .put(
                    key.as_bytes(),
                    Some(value.as_bytes()),
                    (t, headers),
                    below(&bytes),
                )
                .unwrap();
        }
        // A delete of a key nobody had is dropped.
        cache.put(b"c", None, (4, &none), below(&bytes)).unwrap();
        assert_eq!(
            bytes.get(b"a").unwrap().as_deref(),
            Some(&b"0"[..]),
            "held back"
        );
        let view = cache.view(bytes.clone());
        assert_eq!(
            view.get(b"a").unwrap().as_deref(),
            Some(&b"2"[..]),
            "queries see it"
        );
        let all: Vec<_> = view
            .range(None, None)
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(
            all,
            [
                (b"a".to_vec(), b"2".to_vec()),
                (b"b".to_vec(), b"1".to_vec())
            ]
        );
        cache.flush(below(&bytes)).unwrap();
        assert_eq!(
            *flushed.borrow(),
            [
                ("b".into(), Some("1".into()), None, 2, 0),
                // With the headers of its last update's record.
                ("a".into(), Some("2".into()), Some("0".into()), 3, 1),
            ]
        );
        assert_eq!(bytes.get(b"a").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(bytes.get(b"c").unwrap(), None);
        drop(cache);
        assert_eq!(budget.used.get(), 0, "a dropped cache gives its bytes back");
    }

    #[test]
    fn a_full_cache_writes_its_updates_and_evicts_the_least_recently_updated() {
        // Room for two entries (1 key byte + 1 value byte + the overhead each).
        let entry = 2 + ENTRY_OVERHEAD;
        let (cache, bytes, flushed, budget) = cache(2 * entry + entry / 2);
        let none = Headers::new();
        for key in ["a", "b", "c"] {
            cache
                .put(key.as_bytes(), Some(b"1"), (1, &none), below(&bytes))
                .unwrap();
            assert!(!budget.exceeded());
        }
        assert_eq!(flushed.borrow().len(), 3, "the third write flushed all");
        // `a` was evicted: read back from the store, it is cached again.
        assert_eq!(
            cache.get(b"a", below(&bytes)).unwrap().as_deref(),
            Some(&b"1"[..])
        );
        cache
            .put(b"a", Some(b"2"), (2, &none), below(&bytes))
            .unwrap();
        cache.flush(below(&bytes)).unwrap();
        assert_eq!(
            flushed.borrow().last(),
            Some(&("a".into(), Some("2".into()), Some("1".into()), 2, 0))
        );
    }
}

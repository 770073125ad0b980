//! The record cache of an aggregation or table (Kafka Streams' record cache): between
//! commits, repeated updates of a key stay in memory and only the latest is written to the
//! store (and its changelog) and forwarded, with the value it replaces from before the first.
//!
//! The stores of tables and aggregations are timestamped: each value is kept with the
//! timestamp of its last update, and a change is forwarded with that timestamp.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use hashlink::LinkedHashMap;

use super::ktable::Change;
use crate::header::Headers;
use crate::processor::{CacheBudget, ProcessError, ProcessorContext, Record};
use crate::state::{TimestampedKeyValueStore, ValueAndTimestamp};

/// A value and its timestamp, as the store keeps it.
type Stamped<V> = ValueAndTimestamp<V>;

struct Entry<K, V> {
    key: K,
    /// The value now, with its timestamp (`None`: deleted).
    new: Option<Stamped<V>>,
    /// The value downstream last saw, before the first update since the entry was flushed.
    old: Option<Stamped<V>>,
    timestamp: i64,
    /// What the entry is charged against the budget.
    bytes: usize,
    /// Whether it holds an update not yet written to the store.
    dirty: bool,
}

/// Bookkeeping of an entry besides its key and value bytes: the entry, its key's buffer,
/// the map's node and slot (an estimate, as Kafka Streams' cache makes one).
const ENTRY_OVERHEAD: usize = 96;

/// A store's writes held back until the next flush, and the values last written, kept to
/// answer reads until evicted.
pub(crate) struct RecordCache<K, V> {
    budget: Rc<CacheBudget>,
    /// By serialized key, the least recently updated first: the order of eviction, and of
    /// the writes of a flush, as in Kafka Streams' cache.
    entries: LinkedHashMap<Vec<u8>, Entry<K, V>>,
    dirty: usize,
    bytes: usize,
    /// Reused to serialize keys and values.
    scratch: RefCell<Vec<u8>>,
}

impl<K: Clone + 'static, V: Clone + 'static> RecordCache<K, V> {
    pub(crate) fn new(budget: Rc<CacheBudget>) -> Self {
        Self {
            budget,
            entries: LinkedHashMap::new(),
            dirty: 0,
            bytes: 0,
            scratch: RefCell::new(Vec::new()),
        }
    }

    /// The value of `key` now: the cached one, else the store's.
    pub(crate) fn get(
        &self,
        store: &TimestampedKeyValueStore<K, V>,
        key: &K,
    ) -> Result<Option<Stamped<V>>, ProcessError> {
        let mut bytes = self.scratch.borrow_mut();
        store.key_bytes_into(key, &mut bytes)?;
        match self.entries.get(bytes.as_slice()) {
            Some(entry) => Ok(entry.new.clone()),
            None => Ok(store.get_serialized(&bytes)?),
        }
    }

    /// Holds `key` = `new` (`None`: deleted), which replaces `old`. When the thread's caches
    /// are over their budget, this cache evicts its least recently updated entries (Kafka
    /// Streams' eviction).
    pub(crate) fn put(
        &mut self,
        store: &TimestampedKeyValueStore<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        new: Option<V>,
        old: Option<Stamped<V>>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let new = new.map(|value| ValueAndTimestamp::make(value, timestamp));
        let scratch = self.scratch.get_mut();
        let value_bytes = match &new {
            Some(value) => {
                store.value_bytes_into(value, scratch)?;
                scratch.len()
            }
            None => 0,
        };
        store.key_bytes_into(key, scratch)?;
        let size = scratch.len() + value_bytes + ENTRY_OVERHEAD;
        let charge = match self.entries.to_back(scratch.as_slice()) {
            Some(entry) => {
                // The first update since the last flush keeps the value downstream saw.
                if !entry.dirty {
                    entry.old = old;
                    entry.dirty = true;
                    self.dirty += 1;
                }
                entry.new = new;
                entry.timestamp = timestamp;
                let delta = size as isize - entry.bytes as isize;
                entry.bytes = size;
                delta
            }
            None => {
                let entry = Entry {
                    key: key.clone(),
                    new,
                    old,
                    timestamp,
                    bytes: size,
                    dirty: true,
                };
                self.entries.insert(scratch.clone(), entry);
                self.dirty += 1;
                size as isize
            }
        };
        self.account(charge);
        // As Kafka Streams: the least recently updated entry leaves; when it holds an update
        // the store does not have yet, every held update is written (and forwarded) first.
        while self.budget.exceeded() {
            let Some((_, eldest)) = self.entries.front() else {
                break;
            };
            if eldest.dirty {
                self.flush(store, ctx)?;
                continue;
            }
            if let Some((_, entry)) = self.entries.pop_front() {
                self.account(-(entry.bytes as isize));
            }
        }
        Ok(())
    }

    /// Writes every held update to the store and forwards it, in the order of their last
    /// updates; the entries stay, clean, to answer reads (deleted ones go).
    pub(crate) fn flush(
        &mut self,
        store: &TimestampedKeyValueStore<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        if self.dirty == 0 {
            return Ok(());
        }
        let mut deleted = Vec::new();
        for (key_bytes, entry) in self.entries.iter_mut().filter(|(_, e)| e.dirty) {
            entry.dirty = false;
            self.dirty -= 1;
            let old = entry.old.take();
            if entry.new.is_none() {
                deleted.push(key_bytes.clone());
                // As Kafka Streams' caching layer: a key neither here nor in the store
                // before is neither written nor forwarded.
                if old.is_none() {
                    continue;
                }
            }
            // A tombstone in the changelog carries the timestamp of the delete.
            ctx.set_record_timestamp(entry.timestamp);
            match &entry.new {
                Some(value) => store.put(&entry.key, value)?,
                None => store.remove(&entry.key)?,
            }
            let change = Change {
                new: entry.new.as_ref().map(|v| v.value.clone()),
                old: old.map(|v| v.value),
            };
            ctx.forward(Record::new(entry.key.clone(), change, entry.timestamp))?;
        }
        for key in deleted {
            if let Some(gone) = self.entries.remove(&key) {
                self.account(-(gone.bytes as isize));
            }
        }
        Ok(())
    }

    fn account(&mut self, delta: isize) {
        self.bytes = self.bytes.saturating_add_signed(delta);
        let used = self.budget.used.get().saturating_add_signed(delta);
        self.budget.used.set(used);
    }
}

impl<K, V> Drop for RecordCache<K, V> {
    /// A closed task's cache gives its share of the thread's budget back.
    fn drop(&mut self) {
        let used = self.budget.used.get().saturating_sub(self.bytes);
        self.budget.used.set(used);
    }
}

/// The store of an aggregation or table processor, with its record cache when the store
/// caches: what the processors of tables share.
pub(crate) struct CachedStore<K, V> {
    name: Arc<str>,
    store: Option<TimestampedKeyValueStore<K, V>>,
    cache: Option<RecordCache<K, V>>,
}

impl<K: Clone + 'static, V: Clone + 'static> CachedStore<K, V> {
    /// The store `name`, opened by [`open`](Self::open) in the processor's `init`.
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            store: None,
            cache: None,
        }
    }

    /// Opens the store (and its cache) from the processor's context.
    pub(crate) fn open(
        &mut self,
        ctx: &ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        self.store = Some(ctx.timestamped_key_value_store(&self.name)?);
        self.cache = ctx.store_cache(&self.name).map(RecordCache::new);
        Ok(())
    }

    fn store(&self) -> Result<&TimestampedKeyValueStore<K, V>, ProcessError> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }

    /// The value of `key` now, with its timestamp.
    pub(crate) fn get(&self, key: &K) -> Result<Option<Stamped<V>>, ProcessError> {
        let store = self.store()?;
        match &self.cache {
            Some(cache) => cache.get(store, key),
            None => Ok(store.get(key)?),
        }
    }

    /// Sets `key` to `new` as of `timestamp` (`None`: deletes it), which replaces `old`:
    /// held in the cache, or written and forwarded as a change at once (with `headers`,
    /// whatever its values, as Kafka Streams forwards) when the store does not cache.
    pub(crate) fn write(
        &mut self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        new: Option<V>,
        old: Option<Stamped<V>>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        let store = self.store.as_ref().ok_or("the store is not open")?;
        if let Some(cache) = &mut self.cache {
            return cache.put(store, ctx, key, new, old, timestamp);
        }
        let new = new.map(|value| ValueAndTimestamp::make(value, timestamp));
        match &new {
            Some(value) => store.put(key, value)?,
            None => store.remove(key)?,
        }
        let change = Change {
            new: new.map(|v| v.value),
            old: old.map(|v| v.value),
        };
        let record =
            Record::from_parts(Some(key.clone()), Some(change), timestamp, headers.clone());
        ctx.forward(record)
    }

    /// Before a commit: writes and forwards what the cache holds.
    pub(crate) fn flush(
        &mut self,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        match (&mut self.cache, &self.store) {
            (Some(cache), Some(store)) => cache.flush(store, ctx),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{Child, Downstream, TaskState};
    use crate::serde::DefaultSerde;
    use crate::state::{
        InMemoryKeyValueStore, KeyValueStore, ReadOnlyKeyValueStore, ValueAndTimestampSerde,
    };

    /// A forwarded change: key, new value, old value.
    type Forwarded = (String, Option<i64>, Option<i64>);

    #[derive(Default)]
    struct Collect(RefCell<Vec<Forwarded>>);

    impl Downstream<String, Change<i64>> for Collect {
        fn process(&self, record: Record<String, Change<i64>>) -> Result<(), ProcessError> {
            let change = record.value.expect("a change");
            let key = record.key.expect("a key");
            self.0.borrow_mut().push((key, change.new, change.old));
            Ok(())
        }
    }

    /// Counts `words` through a cache of `max` bytes, as an aggregation does; returns what
    /// went downstream and the store.
    fn count(
        words: &[&str],
        max: usize,
    ) -> (Vec<Forwarded>, TimestampedKeyValueStore<String, i64>) {
        let task = Rc::new(TaskState::new("app".into(), 0));
        let out = Rc::new(Collect::default());
        let children = vec![Child {
            name: "out".into(),
            sink: out.clone() as Rc<dyn Downstream<String, Change<i64>>>,
        }];
        let mut ctx = ProcessorContext::new(0, "count".into(), children, task);
        let bytes = Arc::new(InMemoryKeyValueStore::new("counts"));
        let view = ReadOnlyKeyValueStore::new(
            bytes,
            String::default_serde(),
            ValueAndTimestampSerde::shared(i64::default_serde()),
            "app-counts-changelog",
        );
        let store = KeyValueStore::new(view, None, Rc::default());
        let budget = CacheBudget::new(max);
        let mut cache = RecordCache::new(budget.clone());
        for word in words {
            let key = (*word).to_string();
            let old = cache.get(&store, &key).unwrap();
            let new = old.as_ref().map_or(0, |o| o.value) + 1;
            cache
                .put(&store, &mut ctx, &key, Some(new), old, 0)
                .unwrap();
            assert!(!budget.exceeded(), "the cache keeps within its budget");
        }
        cache.flush(&store, &mut ctx).unwrap();
        drop(cache);
        assert_eq!(budget.used.get(), 0, "a dropped cache gives its bytes back");
        let forwarded = out.0.take();
        (forwarded, store)
    }

    #[test]
    fn holds_updates_until_flushed_in_the_order_of_last_updates() {
        let (forwarded, store) = count(&["a", "b", "a", "c", "a"], 10_000);
        assert_eq!(
            forwarded,
            [
                ("b".to_string(), Some(1), None),
                ("c".to_string(), Some(1), None),
                ("a".to_string(), Some(3), None),
            ]
        );
        assert_eq!(
            store.get(&"a".to_string()).unwrap().map(|v| v.value),
            Some(3)
        );
    }

    #[test]
    fn a_full_cache_writes_its_updates_and_evicts_the_least_recently_updated() {
        // Room for two entries (1 key byte + 16 bytes of timestamp and value + the overhead
        // each): the
        // third writes and forwards what the cache holds, then the least recently updated
        // entry ("a") leaves; when "a" comes again it is read from the store, and the
        // change carries the value forwarded before as its old value.
        let entry = 1 + 16 + ENTRY_OVERHEAD;
        let (forwarded, store) = count(&["a", "b", "c", "b", "a"], 2 * entry + entry / 2);
        assert_eq!(
            forwarded,
            [
                ("a".to_string(), Some(1), None),
                ("b".to_string(), Some(1), None),
                ("c".to_string(), Some(1), None),
                ("b".to_string(), Some(2), Some(1)),
                ("a".to_string(), Some(2), Some(1)),
            ]
        );
        for (word, n) in [("a", 2), ("b", 2), ("c", 1)] {
            assert_eq!(
                store.get(&word.to_string()).unwrap().map(|v| v.value),
                Some(n)
            );
        }
    }
}

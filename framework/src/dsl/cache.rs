//! The record cache of an aggregation or table (Kafka Streams' record cache): between
//! commits, repeated updates of a key stay in memory and only the latest is written to the
//! store (and its changelog) and forwarded, with the value it replaces from before the first.

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::ktable::Change;
use crate::header::Headers;
use crate::processor::{CacheBudget, ProcessError, ProcessorContext, Record};
use crate::state::KeyValueStore;

struct Entry<K, V> {
    key: K,
    new: Option<V>,
    /// The value before the first update since the last flush.
    old: Option<V>,
    timestamp: i64,
    bytes: usize,
    /// When it was last updated: flushes go in that order, as Kafka Streams' cache.
    seq: u64,
}

/// A store's writes held back until the next flush.
pub(crate) struct RecordCache<K, V> {
    budget: Rc<CacheBudget>,
    /// By serialized key.
    entries: BTreeMap<Vec<u8>, Entry<K, V>>,
    bytes: usize,
    next_seq: u64,
}

impl<K: Clone + 'static, V: Clone + 'static> RecordCache<K, V> {
    pub(crate) fn new(budget: Rc<CacheBudget>) -> Self {
        Self {
            budget,
            entries: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    /// The value of `key` now: the cached one, else the store's.
    pub(crate) fn get(
        &self,
        store: &KeyValueStore<K, V>,
        key: &K,
    ) -> Result<Option<V>, ProcessError> {
        let bytes = store.key_bytes(key)?;
        match self.entries.get(&bytes) {
            Some(entry) => Ok(entry.new.clone()),
            None => Ok(store.get(key)?),
        }
    }

    /// Holds `key` = `new` (`None`: deleted), which replaces `old`; flushes everything when
    /// the thread's caches are over their budget.
    pub(crate) fn put(
        &mut self,
        store: &KeyValueStore<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        new: Option<V>,
        old: Option<V>,
        timestamp: i64,
    ) -> Result<(), ProcessError> {
        let key_bytes = store.key_bytes(key)?;
        let size = key_bytes.len()
            + match &new {
                Some(value) => store.value_bytes(value)?.len(),
                None => 0,
            };
        let entry = Entry {
            key: key.clone(),
            new,
            old,
            timestamp,
            bytes: size,
            seq: self.next_seq,
        };
        self.next_seq += 1;
        let entry = match self.entries.remove(&key_bytes) {
            // The first update's old value is the one downstream last saw.
            Some(earlier) => {
                self.account(-(earlier.bytes as isize));
                Entry {
                    old: earlier.old,
                    ..entry
                }
            }
            None => entry,
        };
        self.account(entry.bytes as isize);
        self.entries.insert(key_bytes, entry);
        if self.budget.exceeded() {
            self.flush(store, ctx)?;
        }
        Ok(())
    }

    /// Writes every held update to the store and forwards it, in the order of their last
    /// updates.
    pub(crate) fn flush(
        &mut self,
        store: &KeyValueStore<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let mut entries: Vec<Entry<K, V>> =
            std::mem::take(&mut self.entries).into_values().collect();
        entries.sort_by_key(|e| e.seq);
        self.account(-(self.bytes as isize));
        for entry in entries {
            // The changelog record carries the timestamp of the update it logs.
            ctx.set_record_timestamp(entry.timestamp);
            match &entry.new {
                Some(value) => store.put(&entry.key, value)?,
                None => {
                    store.delete(&entry.key)?;
                }
            }
            if entry.new.is_none() && entry.old.is_none() {
                continue;
            }
            let change = Change {
                new: entry.new,
                old: entry.old,
            };
            ctx.forward(Record::new(entry.key, change, entry.timestamp))?;
        }
        Ok(())
    }

    fn account(&mut self, delta: isize) {
        self.bytes = self.bytes.saturating_add_signed(delta);
        let used = self.budget.used.get().saturating_add_signed(delta);
        self.budget.used.set(used);
    }
}

/// The store of an aggregation or table processor, with its record cache when the store
/// caches: what the processors of tables share.
pub(crate) struct CachedStore<K, V> {
    name: Arc<str>,
    store: Option<KeyValueStore<K, V>>,
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
        self.store = Some(ctx.key_value_store(&self.name)?);
        self.cache = ctx.store_cache(&self.name).map(RecordCache::new);
        Ok(())
    }

    fn store(&self) -> Result<&KeyValueStore<K, V>, ProcessError> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }

    /// The value of `key` now.
    pub(crate) fn get(&self, key: &K) -> Result<Option<V>, ProcessError> {
        let store = self.store()?;
        match &self.cache {
            Some(cache) => cache.get(store, key),
            None => Ok(store.get(key)?),
        }
    }

    /// Sets `key` to `new` (`None`: deletes it), which replaces `old`: held in the cache, or
    /// written and forwarded as a change at once (with `headers`) when the store does not
    /// cache.
    pub(crate) fn write(
        &mut self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        change: Change<V>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        let store = self.store.as_ref().ok_or("the store is not open")?;
        if let Some(cache) = &mut self.cache {
            return cache.put(store, ctx, key, change.new, change.old, timestamp);
        }
        match &change.new {
            Some(value) => store.put(key, value)?,
            None => {
                store.delete(key)?;
            }
        }
        if change.new.is_none() && change.old.is_none() {
            return Ok(());
        }
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

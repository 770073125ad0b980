//! Typed stores over byte stores: a read-only view any thread may query, and the
//! read-write view of the task that owns the store (the top layer), whose writes go through
//! the change-logging layer to its changelog and whose operations the metered layer
//! measures.

use std::cell::Cell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use super::{Below, CachingLayer, ChangeLogger, SharedBytesStore, StoreError, StoreMeters};
use crate::header::Headers;
use crate::serde::SharedSerde;

/// The layers of a task's store under its typed top: the record cache (if it caches), the
/// change-logging layer (if it is logged) and the byte store.
#[derive(Debug)]
pub(crate) struct StoreLayers {
    pub(crate) bytes: SharedBytesStore,
    pub(crate) cache: Option<CachingLayer>,
    pub(crate) logger: Option<ChangeLogger>,
    /// The metered layer: what the store is asked to do.
    pub(crate) meters: StoreMeters,
    /// The timestamp of the record the task processes, which writes are made at.
    pub(crate) record_timestamp: Rc<Cell<i64>>,
    /// Buffers the typed top serializes keys and values into, kept from one write to the
    /// next (taken while in use: a write made from within a write gets fresh ones).
    pub(crate) buffers: ScratchBuffers,
}

/// A key buffer and a value buffer, reused across a store's operations.
#[derive(Default)]
pub(crate) struct ScratchBuffers {
    key: Cell<Vec<u8>>,
    value: Cell<Vec<u8>>,
}

impl fmt::Debug for ScratchBuffers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ScratchBuffers").finish_non_exhaustive()
    }
}

/// Runs `f` with `slot`'s buffer, emptied, and puts it back.
fn with_buffer<R>(slot: &Cell<Vec<u8>>, f: impl FnOnce(&mut Vec<u8>) -> R) -> R {
    let mut buffer = slot.take();
    buffer.clear();
    let result = f(&mut buffer);
    slot.set(buffer);
    result
}

impl StoreLayers {
    fn below(&self) -> Below<'_> {
        Below {
            bytes: &self.bytes,
            logger: self.logger.as_ref(),
        }
    }

    /// The value of `key`, through the cache.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        self.meters.measure(&self.meters.get, || match &self.cache {
            Some(cache) => cache.get(key, self.below()),
            None => self.bytes.get(key),
        })
    }

    /// Writes `key` = `value` (`None`: deletes it), into the cache or down at once; the
    /// cache forwards it later with `headers`, those of the record that made it.
    fn write(&self, key: &[u8], value: Option<&[u8]>, headers: &Headers) -> Result<(), StoreError> {
        let meter = match value {
            Some(_) => &self.meters.put,
            None => &self.meters.delete,
        };
        let timestamp = self.record_timestamp.get();
        self.meters.measure(meter, || match &self.cache {
            Some(cache) => cache.put(key, value, (timestamp, headers), self.below()),
            None => self.below().write(key, value, timestamp),
        })
    }

    /// Before a commit: the cache writes what it holds down.
    pub(crate) fn flush_cache(&self) -> Result<(), StoreError> {
        match &self.cache {
            Some(cache) => self
                .meters
                .measure(&self.meters.flush, || cache.flush(self.below())),
            None => Ok(()),
        }
    }

    /// What the store has been asked to do so far.
    pub(crate) fn metrics(&self) -> super::StoreMetrics {
        self.meters.snapshot()
    }

    /// What reads of the store see, from any thread: through the cache when it has one.
    pub(crate) fn read_view(&self) -> SharedBytesStore {
        match &self.cache {
            Some(cache) => cache.view(self.bytes.clone()),
            None => self.bytes.clone(),
        }
    }
}

/// A read-only key-value store of `K` to `V` (Kafka Streams' `ReadOnlyKeyValueStore`): what
/// queries see. `Send + Sync`: it may be read from any thread while its task writes.
pub struct ReadOnlyKeyValueStore<K, V> {
    inner: SharedBytesStore,
    keys: SharedSerde<K>,
    values: SharedSerde<V>,
    /// The topic the serdes are told: the store's changelog topic, as in Kafka Streams.
    topic: Arc<str>,
}

impl<K, V> Clone for ReadOnlyKeyValueStore<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K, V> fmt::Debug for ReadOnlyKeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyKeyValueStore")
            .field("name", &self.inner.name())
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The typed entries of a scan, in the order of their serialized keys.
pub type TypedIter<'a, K, V> = Box<dyn Iterator<Item = Result<(K, V), StoreError>> + 'a>;

impl<K: 'static, V: 'static> ReadOnlyKeyValueStore<K, V> {
    /// A typed view of `inner`, its serdes told `topic` (the changelog topic).
    pub fn new(
        inner: SharedBytesStore,
        keys: SharedSerde<K>,
        values: SharedSerde<V>,
        topic: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            inner,
            keys,
            values,
            topic: topic.into(),
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.inner.name()
    }

    /// The byte store underneath.
    pub fn bytes(&self) -> &SharedBytesStore {
        &self.inner
    }

    /// The value of `key`, if any.
    ///
    /// # Errors
    /// When the key cannot be serialized, the stored value cannot be read, or the backend
    /// fails.
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.get_serialized(&self.key_bytes(key)?)
    }

    /// The value of the key serialized as `key`, if any.
    pub(crate) fn get_serialized(&self, key: &[u8]) -> Result<Option<V>, StoreError> {
        self.inner
            .get(key)?
            .map(|bytes| self.value_of(&bytes))
            .transpose()
    }

    /// The entries with `from <= key <= to` (by serialized key), in that order. A scan
    /// is not a point-in-time view: while the store's task writes, it may see some keys'
    /// newer values.
    ///
    /// # Errors
    /// When a bound cannot be serialized or the scan cannot start; an entry that cannot be
    /// read is an `Err` item.
    pub fn range(&self, from: &K, to: &K) -> Result<TypedIter<'_, K, V>, StoreError> {
        let (from, to) = (self.key_bytes(from)?, self.key_bytes(to)?);
        self.scan(Some(&from), Some(&to))
    }

    /// Every entry, in the order of the serialized keys.
    ///
    /// # Errors
    /// As [`range`](Self::range).
    pub fn all(&self) -> Result<TypedIter<'_, K, V>, StoreError> {
        self.scan(None, None)
    }

    /// An estimate of the number of entries.
    ///
    /// # Errors
    /// When the backend fails.
    pub fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        self.inner.approximate_num_entries()
    }

    fn scan(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<TypedIter<'_, K, V>, StoreError> {
        let entries = self.inner.range(from, to)?.map(move |entry| {
            let (key, value) = entry?;
            let key = self
                .keys
                .deserialize(&self.topic, &Headers::new(), &key)
                .map_err(|source| self.serde_error("key", source))?;
            Ok((key, self.value_of(&value)?))
        });
        Ok(Box::new(entries))
    }

    /// `key` serialized as the store orders it.
    pub(crate) fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StoreError> {
        self.serialized(&*self.keys, key, "key")
    }

    fn serialized<T: 'static>(
        &self,
        serde: &dyn crate::serde::Serde<T>,
        item: &T,
        part: &'static str,
    ) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.serialize_into(serde, item, part, &mut bytes)?;
        Ok(bytes)
    }

    fn serialize_into<T: 'static>(
        &self,
        serde: &dyn crate::serde::Serde<T>,
        item: &T,
        part: &'static str,
        out: &mut Vec<u8>,
    ) -> Result<(), StoreError> {
        serde
            .serialize(&self.topic, &mut Headers::new(), item, out)
            .map_err(|source| self.serde_error(part, source))
    }

    /// The key serialized as `bytes`.
    pub(crate) fn key_of(&self, bytes: &[u8]) -> Result<K, StoreError> {
        self.keys
            .deserialize(&self.topic, &Headers::new(), bytes)
            .map_err(|source| self.serde_error("key", source))
    }

    pub(crate) fn value_of(&self, bytes: &[u8]) -> Result<V, StoreError> {
        self.values
            .deserialize(&self.topic, &Headers::new(), bytes)
            .map_err(|source| self.serde_error("value", source))
    }

    fn serde_error(&self, part: &'static str, source: crate::serde::SerdeError) -> StoreError {
        StoreError::Serde {
            store: self.inner.name().to_string(),
            part,
            source,
        }
    }
}

/// A key-value store of `K` to `V` as its task's processors use it (Kafka Streams'
/// `KeyValueStore<K, V>`): reads as [`ReadOnlyKeyValueStore`], and every write also goes to
/// the store's changelog topic when the store is logged.
pub struct KeyValueStore<K, V> {
    /// Reads, through the cache when the store caches.
    view: ReadOnlyKeyValueStore<K, V>,
    layers: Rc<StoreLayers>,
}

impl<K, V> Clone for KeyValueStore<K, V> {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
            layers: self.layers.clone(),
        }
    }
}

impl<K, V> fmt::Debug for KeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValueStore")
            .field("name", &self.view.inner.name())
            .field("logged", &self.layers.logger.is_some())
            .field("cached", &self.layers.cache.is_some())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> std::ops::Deref for KeyValueStore<K, V> {
    type Target = ReadOnlyKeyValueStore<K, V>;

    /// The reads: `get`, `range`, `all`, `approximate_num_entries`.
    fn deref(&self) -> &Self::Target {
        &self.view
    }
}

impl<K: 'static, V: 'static> KeyValueStore<K, V> {
    /// The typed top of a task's store: `view` reads (through the cache when it caches),
    /// `layers` take the writes.
    pub(crate) fn new(view: ReadOnlyKeyValueStore<K, V>, layers: Rc<StoreLayers>) -> Self {
        Self { view, layers }
    }

    /// The value of `key`, if any (through the cache, which keeps what it read).
    ///
    /// # Errors
    /// As [`ReadOnlyKeyValueStore::get`].
    pub fn get(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.with_key(key, |key| self.get_serialized(key))
    }

    /// Runs `f` with `key` serialized (into a buffer the store reuses): a caller that reads
    /// and then writes a key serializes it once.
    pub(crate) fn with_key<R, E: From<StoreError>>(
        &self,
        key: &K,
        f: impl FnOnce(&[u8]) -> Result<R, E>,
    ) -> Result<R, E> {
        self.with_store_key(key, |_| {}, f)
    }

    /// Runs `f` with `key` serialized and `suffix` appended to it (a window's or session's
    /// times, making a window or session store's key), in the buffer the store reuses.
    pub(crate) fn with_store_key<R, E: From<StoreError>>(
        &self,
        key: &K,
        suffix: impl FnOnce(&mut Vec<u8>),
        f: impl FnOnce(&[u8]) -> Result<R, E>,
    ) -> Result<R, E> {
        with_buffer(&self.layers.buffers.key, |buffer| {
            self.view
                .serialize_into(&*self.view.keys, key, "key", buffer)?;
            suffix(buffer);
            f(buffer)
        })
    }

    /// The value of the key serialized as `key`, if any.
    pub(crate) fn get_serialized(&self, key: &[u8]) -> Result<Option<V>, StoreError> {
        self.layers
            .get(key)?
            .map(|bytes| self.view.value_of(&bytes))
            .transpose()
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// When either cannot be serialized, the backend fails, or the changelog cannot take
    /// the write.
    pub fn put(&self, key: &K, value: &V) -> Result<(), StoreError> {
        self.with_key(key, |key| self.put_serialized(key, value, &Headers::new()))
    }

    /// Sets the key serialized as `key` to `value`, an update of a record with `headers`
    /// (which a cache's flush forwards it with).
    pub(crate) fn put_serialized(
        &self,
        key: &[u8],
        value: &V,
        headers: &Headers,
    ) -> Result<(), StoreError> {
        with_buffer(&self.layers.buffers.value, |buffer| {
            self.view
                .serialize_into(&*self.view.values, value, "value", buffer)?;
            self.layers.write(key, Some(buffer), headers)
        })
    }

    /// Sets `key` to `value` unless it has a value; returns the value it had.
    ///
    /// # Errors
    /// As [`get`](Self::get) and [`put`](Self::put).
    pub fn put_if_absent(&self, key: &K, value: &V) -> Result<Option<V>, StoreError> {
        self.with_key(key, |key| {
            let old = self.get_serialized(key)?;
            if old.is_none() {
                self.put_serialized(key, value, &Headers::new())?;
            }
            Ok(old)
        })
    }

    /// Removes `key`; returns the value it had. A logged store writes a tombstone.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn delete(&self, key: &K) -> Result<Option<V>, StoreError> {
        self.with_key(key, |key| {
            let old = self.get_serialized(key)?;
            self.remove_serialized(key, &Headers::new())?;
            Ok(old)
        })
    }

    /// Removes the key serialized as `key` without reading the value it had (the caller
    /// knows it), an update of a record with `headers`.
    pub(crate) fn remove_serialized(
        &self,
        key: &[u8],
        headers: &Headers,
    ) -> Result<(), StoreError> {
        self.layers.write(key, None, headers)
    }

    /// Hands every update the store's cache writes down to `listener` (nothing without a
    /// cache). Returns whether the store caches.
    pub(crate) fn set_flush_listener(&self, listener: super::FlushListener) -> bool {
        match &self.layers.cache {
            Some(cache) => {
                cache.set_flush_listener(listener);
                true
            }
            None => false,
        }
    }

    /// The serdes of the store, for a flush listener to read keys and values with.
    pub(crate) fn view(&self) -> &ReadOnlyKeyValueStore<K, V> {
        &self.view
    }

    /// The read-only view of this store, which may be sent to other threads.
    pub fn read_only(&self) -> ReadOnlyKeyValueStore<K, V> {
        self.view.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::DefaultSerde;
    use crate::state::InMemoryKeyValueStore;

    fn store() -> KeyValueStore<String, i64> {
        let view = ReadOnlyKeyValueStore::new(
            Arc::new(InMemoryKeyValueStore::new("counts")),
            String::default_serde(),
            i64::default_serde(),
            "app-counts-changelog",
        );
        let layers = StoreLayers {
            bytes: view.bytes().clone(),
            cache: None,
            logger: None,
            meters: StoreMeters::new(false),
            record_timestamp: Rc::default(),
            buffers: ScratchBuffers::default(),
        };
        KeyValueStore::new(view, Rc::new(layers))
    }

    #[test]
    fn reads_back_what_it_wrote_typed() {
        let counts = store();
        counts.put(&"b".to_string(), &2).unwrap();
        counts.put(&"a".to_string(), &1).unwrap();
        assert_eq!(counts.get(&"a".to_string()).unwrap(), Some(1));
        assert_eq!(counts.put_if_absent(&"a".to_string(), &9).unwrap(), Some(1));
        assert_eq!(counts.put_if_absent(&"c".to_string(), &3).unwrap(), None);
        assert_eq!(counts.delete(&"b".to_string()).unwrap(), Some(2));
        assert_eq!(counts.delete(&"b".to_string()).unwrap(), None);
        let all: Vec<(String, i64)> = counts.all().unwrap().map(Result::unwrap).collect();
        assert_eq!(all, [("a".to_string(), 1), ("c".to_string(), 3)]);
        let some: Vec<(String, i64)> = counts
            .range(&"b".to_string(), &"c".to_string())
            .unwrap()
            .map(Result::unwrap)
            .collect();
        assert_eq!(some, [("c".to_string(), 3)]);
        assert_eq!(counts.approximate_num_entries().unwrap(), 2);
    }

    #[test]
    fn a_value_that_cannot_be_read_names_the_store_and_part() {
        let counts = store();
        counts.bytes().put(b"k", b"not eight bytes").unwrap();
        let err = counts.get(&"k".to_string()).unwrap_err().to_string();
        assert!(
            err.starts_with("state store counts: the value serde failed"),
            "{err}"
        );
    }
}

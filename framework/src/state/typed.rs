//! Typed stores over byte stores.

use std::fmt;
use std::sync::Arc;

use super::{SharedBytesStore, StoreError};
use crate::header::Headers;
use crate::serde::SharedSerde;

/// A key-value store of `K` to `V`: a byte store and the serdes of its keys and values
/// (Kafka Streams' `KeyValueStore<K, V>`).
pub struct KeyValueStore<K, V> {
    inner: SharedBytesStore,
    keys: SharedSerde<K>,
    values: SharedSerde<V>,
    /// The topic the serdes are told: the store's changelog topic, as in Kafka Streams.
    topic: Arc<str>,
}

impl<K, V> Clone for KeyValueStore<K, V> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
            topic: self.topic.clone(),
        }
    }
}

impl<K, V> fmt::Debug for KeyValueStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeyValueStore")
            .field("name", &self.inner.name())
            .field("topic", &self.topic)
            .finish_non_exhaustive()
    }
}

/// The typed entries of a scan, in the order of their serialized keys.
pub type TypedIter<'a, K, V> = Box<dyn Iterator<Item = Result<(K, V), StoreError>> + 'a>;

impl<K: 'static, V: 'static> KeyValueStore<K, V> {
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
        let key = self.key_bytes(key)?;
        self.inner
            .get(&key)?
            .map(|bytes| self.value_of(&bytes))
            .transpose()
    }

    /// Sets `key` to `value`.
    ///
    /// # Errors
    /// When either cannot be serialized or the backend fails.
    pub fn put(&self, key: &K, value: &V) -> Result<(), StoreError> {
        let key = self.key_bytes(key)?;
        let mut bytes = Vec::new();
        self.values
            .serialize(&self.topic, &mut Headers::new(), value, &mut bytes)
            .map_err(|source| self.serde_error("value", source))?;
        self.inner.put(&key, &bytes)
    }

    /// Sets `key` to `value` unless it has a value; returns the value it had.
    ///
    /// # Errors
    /// As [`get`](Self::get) and [`put`](Self::put).
    pub fn put_if_absent(&self, key: &K, value: &V) -> Result<Option<V>, StoreError> {
        let old = self.get(key)?;
        if old.is_none() {
            self.put(key, value)?;
        }
        Ok(old)
    }

    /// Removes `key`; returns the value it had.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn delete(&self, key: &K) -> Result<Option<V>, StoreError> {
        let bytes = self.key_bytes(key)?;
        let old = self
            .inner
            .get(&bytes)?
            .map(|value| self.value_of(&value))
            .transpose()?;
        self.inner.delete(&bytes)?;
        Ok(old)
    }

    /// The entries with `from <= key <= to` (by serialized key), in that order.
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

    fn key_bytes(&self, key: &K) -> Result<Vec<u8>, StoreError> {
        let mut bytes = Vec::new();
        self.keys
            .serialize(&self.topic, &mut Headers::new(), key, &mut bytes)
            .map_err(|source| self.serde_error("key", source))?;
        Ok(bytes)
    }

    fn value_of(&self, bytes: &[u8]) -> Result<V, StoreError> {
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::DefaultSerde;
    use crate::state::InMemoryKeyValueStore;

    fn store() -> KeyValueStore<String, i64> {
        KeyValueStore::new(
            Arc::new(InMemoryKeyValueStore::new("counts")),
            String::default_serde(),
            i64::default_serde(),
            "app-counts-changelog",
        )
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

//! The in-memory backend: a sorted map behind a lock.

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{PoisonError, RwLock};

use super::{KeyValueBytesStore, KeyValueIter, StateStore, StoreError, WriteBatch};

/// A key-value store kept in memory (Kafka Streams' `Stores.inMemoryKeyValueStore`): fast,
/// and rebuilt from its changelog after every restart.
#[derive(Debug)]
pub struct InMemoryKeyValueStore {
    name: String,
    map: RwLock<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl InMemoryKeyValueStore {
    /// An empty store named `name`.
    pub fn new(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            map: RwLock::new(BTreeMap::new()),
        }
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        // A panic while holding the lock leaves the map as it was between two operations.
        self.map.read().unwrap_or_else(PoisonError::into_inner)
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, BTreeMap<Vec<u8>, Vec<u8>>> {
        self.map.write().unwrap_or_else(PoisonError::into_inner)
    }
}

impl StateStore for InMemoryKeyValueStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut map = self.write();
        for (key, value) in batch.iter() {
            match value {
                Some(value) => map.insert(key.to_vec(), value.to_vec()),
                None => map.remove(key),
            };
        }
        Ok(())
    }
}

impl KeyValueBytesStore for InMemoryKeyValueStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.read().get(key).cloned())
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.write().insert(key.to_vec(), value.to_vec());
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.write().remove(key);
        Ok(())
    }

    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Ok(Box::new(std::iter::empty()));
        }
        let bounds = (
            from.map_or(Bound::Unbounded, Bound::Included),
            to.map_or(Bound::Unbounded, Bound::Included),
        );
        // A snapshot: the lock is not held while the caller iterates.
        let entries: Vec<_> = self
            .read()
            .range::<[u8], _>(bounds)
            .map(|(k, v)| Ok((k.clone(), v.clone())))
            .collect();
        Ok(Box::new(entries.into_iter()))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        Ok(self.read().len() as u64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_byte_store_contract() {
        let store = InMemoryKeyValueStore::new("counts");
        super::super::contract::check(&store);
        assert_eq!(store.name(), "counts");
        assert!(!store.persistent());
        assert_eq!(store.approximate_num_entries().unwrap(), 3);
    }
}

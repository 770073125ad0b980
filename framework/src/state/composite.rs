//! What a query of an instance reads: the stores of one name of all its local tasks, seen
//! as one read-only store.

use std::sync::Weak;

use super::{KeyValueBytesStore, KeyValueIter, SharedBytesStore, StoreError, WriteBatch};

/// The local tasks' stores of one name, read as one (Kafka Streams'
/// `CompositeReadOnlyKeyValueStore`). It holds them weakly: a store whose task closed (its
/// partition moved) is gone, and reading it says so instead of keeping it open.
#[derive(Debug)]
pub(crate) struct CompositeBytesStore {
    name: String,
    stores: Vec<Weak<dyn KeyValueBytesStore>>,
}

impl CompositeBytesStore {
    pub(crate) fn new(name: impl Into<String>, stores: &[SharedBytesStore]) -> Self {
        Self {
            name: name.into(),
            stores: stores.iter().map(std::sync::Arc::downgrade).collect(),
        }
    }

    fn live(&self) -> Result<Vec<SharedBytesStore>, StoreError> {
        self.stores
            .iter()
            .map(|s| {
                s.upgrade().ok_or_else(|| StoreError::Moved {
                    store: self.name.clone(),
                })
            })
            .collect()
    }

    fn read_only(&self) -> StoreError {
        StoreError::ReadOnly {
            store: self.name.clone(),
        }
    }
}

impl KeyValueBytesStore for CompositeBytesStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        for store in self.live()? {
            if let Some(value) = store.get(key)? {
                return Ok(Some(value));
            }
        }
        Ok(None)
    }

    fn put(&self, _: &[u8], _: &[u8]) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn delete(&self, _: &[u8]) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    fn write_batch(&self, _: &WriteBatch) -> Result<(), StoreError> {
        Err(self.read_only())
    }

    /// Each task's entries in key order, one task after the other (as Kafka Streams'
    /// composite store), read at once: the stores are not held open while the caller
    /// iterates.
    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        let mut entries = Vec::new();
        for store in self.live()? {
            for entry in store.range(from, to)? {
                entries.push(entry);
            }
        }
        Ok(Box::new(entries.into_iter()))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        let mut total = 0_u64;
        for store in self.live()? {
            total = total.saturating_add(store.approximate_num_entries()?);
        }
        Ok(total)
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn persistent(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::InMemoryKeyValueStore;

    #[test]
    fn reads_every_task_store_and_forgets_closed_ones() {
        let a: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        let b: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        a.put(b"k1", b"1").unwrap();
        b.put(b"k2", b"2").unwrap();
        let all = CompositeBytesStore::new("s", &[a.clone(), b.clone()]);
        assert_eq!(all.get(b"k2").unwrap().as_deref(), Some(&b"2"[..]));
        assert_eq!(all.range(None, None).unwrap().count(), 2);
        assert_eq!(all.approximate_num_entries().unwrap(), 2);
        assert!(
            all.put(b"k", b"v")
                .unwrap_err()
                .to_string()
                .contains("read-only")
        );
        drop(b);
        let err = all.get(b"k1").unwrap_err().to_string();
        assert!(err.contains("moved"), "{err}");
    }
}

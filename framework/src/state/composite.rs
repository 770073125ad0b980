//! What a query of an instance reads: the stores of one name of all its local tasks, seen
//! as one read-only store whose scans merge the tasks' scans in key order.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Weak;

use super::{
    KeyValueBytesStore, KeyValueIter, SharedBytesStore, StateStore, StoreError, WriteBatch,
};

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

impl StateStore for CompositeBytesStore {
    fn name(&self) -> &str {
        &self.name
    }

    fn restore_batch(&self, _: &WriteBatch) -> Result<(), StoreError> {
        Err(self.read_only())
    }
}

impl KeyValueBytesStore for CompositeBytesStore {
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

    /// The tasks' entries merged in key order (their keys are disjoint: a key belongs to
    /// one partition), read at once: the stores are not held open while the caller
    /// iterates.
    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        let mut scans = Vec::new();
        for store in self.live()? {
            scans.push(store.range(from, to)?.collect());
        }
        Ok(Box::new(Merge::new(scans)))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        let mut total = 0_u64;
        for store in self.live()? {
            total = total.saturating_add(store.approximate_num_entries()?);
        }
        Ok(total)
    }
}

type Entry = Result<(Vec<u8>, Vec<u8>), StoreError>;

/// A scan's next entry in a [`Merge`], as `(key, scan, value)`: reversed, so that the
/// heap's top is the smallest key, and of equal keys the earlier scan's.
type Head = Reverse<(Vec<u8>, usize, Vec<u8>)>;

/// A k-way merge of scans that are each in key order: one scan in key order. Two scans
/// with the same key (tasks never share one) give both entries, the earlier scan's first.
/// An error of a scan ends the merge where the merge meets it.
struct Merge {
    scans: Vec<std::vec::IntoIter<Entry>>,
    /// The next entry of each scan that has one.
    heads: BinaryHeap<Head>,
    /// The error a scan gave in place of its next entry; yielded next.
    failed: Option<StoreError>,
}

impl Merge {
    fn new(scans: Vec<Vec<Entry>>) -> Self {
        let mut merge = Self {
            heads: BinaryHeap::with_capacity(scans.len()),
            scans: scans.into_iter().map(Vec::into_iter).collect(),
            failed: None,
        };
        for scan in 0..merge.scans.len() {
            merge.advance(scan);
        }
        merge
    }

    /// Takes the next entry of scan `scan` into the heads.
    fn advance(&mut self, scan: usize) {
        match self.scans[scan].next() {
            Some(Ok((key, value))) => self.heads.push(Reverse((key, scan, value))),
            Some(Err(e)) => {
                self.failed.get_or_insert(e);
            }
            None => {}
        }
    }
}

impl Iterator for Merge {
    type Item = Entry;

    fn next(&mut self) -> Option<Entry> {
        if let Some(e) = self.failed.take() {
            self.heads.clear();
            return Some(Err(e));
        }
        let Reverse((key, scan, value)) = self.heads.pop()?;
        self.advance(scan);
        Some(Ok((key, value)))
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

    fn keys(iter: KeyValueIter<'_>) -> Vec<String> {
        iter.map(|e| String::from_utf8(e.unwrap().0).unwrap())
            .collect()
    }

    #[test]
    fn scans_merge_the_tasks_entries_in_key_order() {
        let a: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        let b: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        for key in ["k1", "k4", "k5", "k9"] {
            a.put(key.as_bytes(), b"a").unwrap();
        }
        for key in ["k0", "k2", "k3", "k6"] {
            b.put(key.as_bytes(), b"b").unwrap();
        }
        let stores = [a, b];
        let all = CompositeBytesStore::new("s", &stores);
        assert_eq!(
            keys(all.range(None, None).unwrap()),
            ["k0", "k1", "k2", "k3", "k4", "k5", "k6", "k9"]
        );
        assert_eq!(
            keys(all.range(Some(b"k2"), Some(b"k5")).unwrap()),
            ["k2", "k3", "k4", "k5"]
        );
        assert_eq!(keys(all.range(Some(b"k7"), None).unwrap()), ["k9"]);
        let values: Vec<Vec<u8>> = all
            .range(Some(b"k3"), Some(b"k4"))
            .unwrap()
            .map(|e| e.unwrap().1)
            .collect();
        assert_eq!(values, [b"b", b"a"]);
    }

    #[test]
    fn a_key_in_two_scans_comes_from_the_earlier_first_and_an_error_ends_the_merge() {
        let entry = |k: &str, v: &str| Ok((k.as_bytes().to_vec(), v.as_bytes().to_vec()));
        let merged: Vec<_> = Merge::new(vec![
            vec![entry("k1", "first"), entry("k3", "first")],
            vec![entry("k1", "second"), entry("k2", "second")],
        ])
        .map(Result::unwrap)
        .collect();
        let expected = [
            ("k1", "first"),
            ("k1", "second"),
            ("k2", "second"),
            ("k3", "first"),
        ];
        let expected: Vec<_> = expected
            .iter()
            .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
            .collect();
        assert_eq!(merged, expected);

        let moved = Err(StoreError::Moved { store: "s".into() });
        let mut merge = Merge::new(vec![
            vec![entry("k1", "a"), entry("k4", "a")],
            vec![entry("k2", "b"), moved, entry("k3", "b")],
        ]);
        assert_eq!(merge.next().unwrap().unwrap().0, b"k1");
        assert_eq!(merge.next().unwrap().unwrap().0, b"k2");
        assert!(matches!(merge.next(), Some(Err(StoreError::Moved { .. }))));
        assert!(merge.next().is_none());
    }
}

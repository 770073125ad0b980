//! The transactional layer (exactly-once): a persistent store's writes of the open
//! transaction stay out of the byte store (RocksDB) until the transaction commits, so that
//! what is on disk is always committed state, and a restart after a crash replays only the
//! changelog's tail from the checkpoint instead of wiping the store and replaying all of it
//! (what Kafka Streams does under exactly-once, whose transactional stores, KIP-892, are not
//! released).
//!
//! Under the cache and the change-logging layer, the layer keeps each write of the open
//! transaction in memory, by key (the last write of a key wins); reads of the task see
//! those writes over the byte store's. When the stream thread's transaction has committed
//! (its changelog records and the consumed offsets with it), [`apply`] writes them to the
//! byte store in one batch, with the changelog offset they bring it to, at once and
//! durably (RocksDB: one write batch through its write-ahead log, the offset in a column
//! family of its own); when it aborts, the task is closed dirty and they are dropped with
//! it. When the task opens again, its restore starts from that offset.
//!
//! So a store always holds the writes of its changelog's committed transactions up to the
//! offset it keeps, and nothing else, and replaying the committed changelog from there to
//! its end gives exactly the committed state. The windows a crash may fall in:
//!
//! 1. **Before the commit** (processing, flushing the caches, sending the offsets): the
//!    open transaction's writes were in memory only, and its records on the broker are
//!    aborted (by the restarted instance's producer, whose `init_transactions` fences the
//!    old one, or by the broker when `transaction.timeout.ms` runs out). The store holds
//!    the state of the last commit; the restore replays the tail, which has nothing of the
//!    aborted transaction for a `read_committed` reader; the input is read again from the
//!    committed offsets.
//! 2. **During the commit** (`commit_transaction` sent, no answer yet): the broker decides
//!    alone, commit or abort, for the records and the offsets together. The store has
//!    nothing of the transaction either way; the restore replays it if it committed, and
//!    the input resumes after it if it committed, at it if not.
//! 3. **After the commit, before or while the batch is written**: the transaction is
//!    committed; the store has none of it (its batch is written whole or not at all) and
//!    keeps the offset of the commit before: the restore replays the transaction from the
//!    changelog.
//! 4. **After the batch**: the store and its offset have the transaction; the restore has
//!    nothing to replay from it. (A window store's segments each keep the offset, and
//!    the restore starts from the lowest: a segment written again only gets the values it
//!    has.)
//!
//! Restoration writes without the write-ahead log, and the store is flushed to files once
//! restored, before any commit goes through the log: a crash never keeps a later commit
//! and loses the restored records under it.
//!
//! Reads of the task and queries both see the open transaction's writes (as in Kafka
//! Streams, whose stores hold them). A window store's pending writes are read without its
//! segments' retention check, and its expired segments are dropped as its batches come in:
//! the writes are all of the last commit interval, newer than anything the retention drops.
//!
//! [`apply`]: TransactionalBytesStore::apply

use std::collections::BTreeMap;
use std::ops::Bound;
use std::sync::{Mutex, MutexGuard, PoisonError};

use super::{
    KeyValueBytesStore, KeyValueIter, SharedBytesStore, StateStore, StoreError, WriteBatch,
};

/// The writes of the open transaction, by key: `None` removes it.
type Pending = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// A pending write: a key, and its value (`None`: removed).
type Write = (Vec<u8>, Option<Vec<u8>>);

/// A byte store whose writes wait for their transaction to commit (see the module's doc).
pub(crate) struct TransactionalBytesStore {
    inner: SharedBytesStore,
    /// Shared with queries, which read through it from other threads.
    pending: Mutex<Pending>,
}

impl std::fmt::Debug for TransactionalBytesStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TransactionalBytesStore")
            .field("inner", &self.inner)
            .field("pending", &self.pending().len())
            .finish()
    }
}

impl TransactionalBytesStore {
    /// `inner`, its writes held until [`apply`](Self::apply).
    pub(crate) fn new(inner: SharedBytesStore) -> Self {
        Self {
            inner,
            pending: Mutex::new(Pending::new()),
        }
    }

    fn pending(&self) -> MutexGuard<'_, Pending> {
        // A panic while holding the lock leaves the map as it was between two writes.
        self.pending.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The transaction committed, bringing the store's changelog to `next` (exclusive;
    /// `None` when it wrote no changelog record): its writes go to the byte store in one
    /// batch, with `next`.
    ///
    /// # Errors
    /// When the byte store fails; the writes are then dropped (the task closes dirty, and
    /// its restore replays them from the changelog).
    pub(crate) fn apply(&self, next: Option<i64>) -> Result<(), StoreError> {
        let pending = std::mem::take(&mut *self.pending());
        // No write, no changelog record: the offset the store keeps still holds.
        if pending.is_empty() {
            return Ok(());
        }
        let mut batch = WriteBatch::new();
        for (key, value) in &pending {
            batch.push(key, value.as_deref());
        }
        match next {
            Some(next) => self.inner.commit_batch(&batch, next),
            // (Each write is logged, so the changelog has records: not expected.)
            None => self.inner.restore_batch(&batch),
        }
    }

    /// Writes waiting for the transaction to commit.
    #[cfg(test)]
    fn waiting(&self) -> usize {
        self.pending().len()
    }

    /// The pending writes with `from <= key <= to` (`None`: open), in key order.
    fn pending_range(&self, from: Option<&[u8]>, to: Option<&[u8]>) -> Vec<Write> {
        if let (Some(from), Some(to)) = (from, to)
            && from > to
        {
            return Vec::new();
        }
        let lower = from.map_or(Bound::Unbounded, Bound::Included);
        let upper = to.map_or(Bound::Unbounded, Bound::Included);
        self.pending()
            .range::<[u8], _>((lower, upper))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }
}

impl StateStore for TransactionalBytesStore {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn persistent(&self) -> bool {
        self.inner.persistent()
    }

    /// Flushes what is committed: a checkpoint follows a commit, which wrote the pending
    /// writes down first.
    fn flush(&self) -> Result<(), StoreError> {
        self.inner.flush()
    }

    /// Restoration writes committed records: straight to the byte store (nothing is
    /// pending while a task restores; a pending write of a key the batch writes would be
    /// older than it, and goes).
    fn restore_batch(&self, batch: &WriteBatch) -> Result<(), StoreError> {
        let mut pending = self.pending();
        if !pending.is_empty() {
            for (key, _) in batch.iter() {
                pending.remove(key);
            }
        }
        self.inner.restore_batch(batch)
    }

    fn commit_batch(&self, batch: &WriteBatch, next: i64) -> Result<(), StoreError> {
        self.inner.commit_batch(batch, next)
    }

    fn committed_offset(&self) -> Result<Option<i64>, StoreError> {
        self.inner.committed_offset()
    }

    fn close(&self) {
        self.pending().clear();
        self.inner.close();
    }
}

impl KeyValueBytesStore for TransactionalBytesStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        if let Some(value) = self.pending().get(key) {
            return Ok(value.clone());
        }
        self.inner.get(key)
    }

    fn put(&self, key: &[u8], value: &[u8]) -> Result<(), StoreError> {
        self.pending().insert(key.to_vec(), Some(value.to_vec()));
        Ok(())
    }

    fn delete(&self, key: &[u8]) -> Result<(), StoreError> {
        self.pending().insert(key.to_vec(), None);
        Ok(())
    }

    fn range(
        &self,
        from: Option<&[u8]>,
        to: Option<&[u8]>,
    ) -> Result<KeyValueIter<'_>, StoreError> {
        let pending = self.pending_range(from, to);
        let inner = self.inner.range(from, to)?;
        Ok(Box::new(Merged::new(pending, inner)))
    }

    fn all_held(&self) -> Result<KeyValueIter<'_>, StoreError> {
        let pending = self.pending_range(None, None);
        let inner = self.inner.all_held()?;
        Ok(Box::new(Merged::new(pending, inner)))
    }

    fn approximate_num_entries(&self) -> Result<u64, StoreError> {
        let added = self.pending().values().filter(|v| v.is_some()).count() as u64;
        Ok(self.inner.approximate_num_entries()? + added)
    }
}

/// The entries of a scan: the pending writes over the byte store's entries, both in key
/// order (a pending write of a key replaces the store's entry; a pending removal hides it).
struct Merged<'a> {
    pending: std::iter::Peekable<std::vec::IntoIter<Write>>,
    inner: std::iter::Peekable<KeyValueIter<'a>>,
}

impl<'a> Merged<'a> {
    fn new(pending: Vec<Write>, inner: KeyValueIter<'a>) -> Self {
        Self {
            pending: pending.into_iter().peekable(),
            inner: inner.peekable(),
        }
    }
}

impl Iterator for Merged<'_> {
    type Item = Result<(Vec<u8>, Vec<u8>), StoreError>;

    fn next(&mut self) -> Option<Self::Item> {
        use std::cmp::Ordering::{Equal, Greater, Less};
        loop {
            let (pending_first, replaced) = match (self.pending.peek(), self.inner.peek()) {
                (None, None) => return None,
                (Some(_), None) => (true, false),
                // An error of the store's scan comes out where it happened.
                (None, Some(_)) | (Some(_), Some(Err(_))) => (false, false),
                (Some((pending, _)), Some(Ok((stored, _)))) => match pending.cmp(stored) {
                    Less => (true, false),
                    Equal => (true, true),
                    Greater => (false, false),
                },
            };
            if replaced {
                // The pending write replaces the store's entry.
                self.inner.next();
            }
            if !pending_first {
                return self.inner.next();
            }
            if let Some((key, Some(value))) = self.pending.next() {
                return Some(Ok((key, value)));
            }
            // A pending removal: the key is gone; look further.
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::state::InMemoryKeyValueStore;

    fn scan(store: &dyn KeyValueBytesStore, from: Option<&[u8]>, to: Option<&[u8]>) -> Vec<String> {
        store
            .range(from, to)
            .unwrap()
            .map(|e| {
                let (k, v) = e.unwrap();
                format!(
                    "{}={}",
                    String::from_utf8(k).unwrap(),
                    String::from_utf8(v).unwrap()
                )
            })
            .collect()
    }

    #[test]
    fn behaves_as_a_byte_store() {
        let store = TransactionalBytesStore::new(Arc::new(InMemoryKeyValueStore::new("s")));
        crate::state::contract::check(&store);
    }

    #[test]
    fn writes_wait_for_the_commit_and_reads_see_them_over_the_store() {
        let inner: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        for (k, v) in [("a", "1"), ("b", "2"), ("c", "3"), ("e", "5")] {
            inner.put(k.as_bytes(), v.as_bytes()).unwrap();
        }
        let store = TransactionalBytesStore::new(inner.clone());
        store.put(b"b", b"two").unwrap();
        store.delete(b"c").unwrap();
        store.put(b"d", b"4").unwrap();
        store.delete(b"x").unwrap();
        assert_eq!(store.waiting(), 4);
        assert_eq!(store.get(b"b").unwrap().as_deref(), Some(&b"two"[..]));
        assert_eq!(store.get(b"c").unwrap(), None);
        assert_eq!(store.get(b"e").unwrap().as_deref(), Some(&b"5"[..]));
        assert_eq!(scan(&store, None, None), ["a=1", "b=two", "d=4", "e=5"]);
        assert_eq!(scan(&store, Some(b"b"), Some(b"d")), ["b=two", "d=4"]);
        assert_eq!(scan(&store, Some(b"c"), Some(b"c")), Vec::<String>::new());
        // Nothing of the transaction is in the store until it commits.
        assert_eq!(scan(&*inner, None, None), ["a=1", "b=2", "c=3", "e=5"]);
        store.apply(Some(4)).unwrap();
        assert_eq!(store.waiting(), 0);
        assert_eq!(scan(&*inner, None, None), ["a=1", "b=two", "d=4", "e=5"]);
    }

    #[test]
    fn writes_of_a_transaction_that_does_not_commit_never_reach_the_store() {
        let inner: SharedBytesStore = Arc::new(InMemoryKeyValueStore::new("s"));
        inner.put(b"a", b"1").unwrap();
        let store = TransactionalBytesStore::new(inner.clone());
        store.put(b"a", b"2").unwrap();
        store.put(b"b", b"1").unwrap();
        // The task closes dirty after an abort.
        store.close();
        assert_eq!(scan(&*inner, None, None), ["a=1"]);
    }
}

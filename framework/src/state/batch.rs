//! A batch of writes to a byte store, kept in one buffer: restoration fills one from many
//! changelog records without an allocation per record.

use std::fmt;

/// Writes to apply to a store at once: each sets a key or (no value) removes it, and a later
/// write of a key wins over an earlier one.
#[derive(Default, Clone)]
pub struct WriteBatch {
    /// Every key and value, one after the other.
    bytes: Vec<u8>,
    entries: Vec<Entry>,
}

#[derive(Clone, Copy)]
struct Entry {
    start: usize,
    key_len: usize,
    /// `None`: a delete.
    value_len: Option<usize>,
}

impl WriteBatch {
    /// An empty batch.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a write of `key`: `Some` sets it to the value, `None` removes it.
    pub fn push(&mut self, key: &[u8], value: Option<&[u8]>) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        if let Some(value) = value {
            self.bytes.extend_from_slice(value);
        }
        self.entries.push(Entry {
            start,
            key_len: key.len(),
            value_len: value.map(<[u8]>::len),
        });
    }

    /// Adds a write setting `key` to `value` with `timestamp` before it, as a timestamped
    /// store keeps its values.
    pub(crate) fn put_timestamped(&mut self, key: &[u8], timestamp: i64, value: &[u8]) {
        let start = self.bytes.len();
        self.bytes.extend_from_slice(key);
        self.bytes.extend_from_slice(&timestamp.to_be_bytes());
        self.bytes.extend_from_slice(value);
        self.entries.push(Entry {
            start,
            key_len: key.len(),
            value_len: Some(super::timestamped::TIMESTAMP_BYTES + value.len()),
        });
    }

    /// Adds a write setting `key` to `value`.
    pub fn put(&mut self, key: &[u8], value: &[u8]) {
        self.push(key, Some(value));
    }

    /// Adds a write removing `key`.
    pub fn delete(&mut self, key: &[u8]) {
        self.push(key, None);
    }

    /// The number of writes.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there is no write.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Bytes of keys and values held.
    pub fn bytes(&self) -> usize {
        self.bytes.len()
    }

    /// Removes every write, keeping the buffers for the next batch.
    pub fn clear(&mut self) {
        self.bytes.clear();
        self.entries.clear();
    }

    /// Puts the writes in key order and keeps only the last write of each key: the same
    /// result when applied, and a sorted batch goes into an ordered store (RocksDB's
    /// memtable) much faster than one in arrival order.
    pub fn sort_by_key(&mut self) {
        let bytes = &self.bytes;
        let key = |e: &Entry| &bytes[e.start..e.start + e.key_len];
        // Stable, so the writes of one key stay in their order and the last one wins.
        self.entries.sort_by(|a, b| key(a).cmp(key(b)));
        self.entries.dedup_by(|later, kept| {
            let same = key(later) == key(kept);
            if same {
                *kept = *later;
            }
            same
        });
    }

    /// The writes, in order: `(key, Some(value))` sets, `(key, None)` removes.
    pub fn iter(&self) -> impl Iterator<Item = (&[u8], Option<&[u8]>)> + '_ {
        self.entries.iter().map(|e| {
            let key_end = e.start + e.key_len;
            let value = e.value_len.map(|len| &self.bytes[key_end..key_end + len]);
            (&self.bytes[e.start..key_end], value)
        })
    }
}

impl fmt::Debug for WriteBatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WriteBatch")
            .field("writes", &self.len())
            .field("bytes", &self.bytes())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn writes(batch: &WriteBatch) -> Vec<(Vec<u8>, Option<Vec<u8>>)> {
        batch
            .iter()
            .map(|(k, v)| (k.to_vec(), v.map(<[u8]>::to_vec)))
            .collect()
    }

    #[test]
    fn keeps_writes_in_order_until_sorted() {
        let mut batch = WriteBatch::new();
        batch.put(b"b", b"1");
        batch.delete(b"a");
        batch.put(b"", b"");
        assert_eq!(
            writes(&batch),
            [
                (b"b".to_vec(), Some(b"1".to_vec())),
                (b"a".to_vec(), None),
                (Vec::new(), Some(Vec::new())),
            ]
        );
        assert_eq!((batch.len(), batch.bytes()), (3, 3));
        batch.clear();
        assert!(batch.is_empty());
    }

    #[test]
    fn sorting_keeps_the_last_write_of_each_key() {
        let mut batch = WriteBatch::new();
        batch.put(b"b", b"1");
        batch.put(b"a", b"1");
        batch.put(b"b", b"2");
        batch.delete(b"a");
        batch.put(b"c", b"1");
        batch.delete(b"c");
        batch.put(b"c", b"3");
        batch.sort_by_key();
        assert_eq!(
            writes(&batch),
            [
                (b"a".to_vec(), None),
                (b"b".to_vec(), Some(b"2".to_vec())),
                (b"c".to_vec(), Some(b"3".to_vec())),
            ]
        );
    }
}

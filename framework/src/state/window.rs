//! Window stores (Kafka Streams' `WindowStore`): values by key and time window, the
//! state of windowed aggregations (and of stream-stream joins). The typed layer over a
//! segmented byte store: a window is the record key's bytes, its start and a sequence
//! number (`segmented`), so that a key's windows lie side by side in time order.

use std::cell::Cell;
use std::fmt;

use super::segmented::{split_window_key, window_key};
use super::{KeyValueStore, ReadOnlyKeyValueStore, StoreError, ValueAndTimestamp};
use super::{Window, Windowed};
use crate::header::Headers;

/// A window store whose values carry the timestamp of their last update (Kafka Streams'
/// `TimestampedWindowStore`): the store of a windowed aggregation.
pub type TimestampedWindowStore<K, V> = WindowStore<K, ValueAndTimestamp<V>>;

/// A read-only window store of `K` to `V` (Kafka Streams' `ReadOnlyWindowStore`): what
/// queries see, from any thread. Windows are named by their start; their end is the start
/// plus the store's window size.
pub struct ReadOnlyWindowStore<K, V> {
    view: ReadOnlyKeyValueStore<K, V>,
    size: i64,
}

impl<K, V> Clone for ReadOnlyWindowStore<K, V> {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
            size: self.size,
        }
    }
}

impl<K: 'static, V: 'static> fmt::Debug for ReadOnlyWindowStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlyWindowStore")
            .field("name", &self.view.name())
            .field("size", &self.size)
            .finish_non_exhaustive()
    }
}

/// The entries of a window store's scan: each key in its window, and the value.
pub type WindowedEntries<K, V> = Vec<(Windowed<K>, V)>;

impl<K: 'static, V: 'static> ReadOnlyWindowStore<K, V> {
    /// The window store read through `view` (of its store keys), of windows `size_ms` long.
    pub(crate) fn new(view: ReadOnlyKeyValueStore<K, V>, size_ms: i64) -> Self {
        Self {
            view,
            size: size_ms,
        }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.view.name()
    }

    /// The value of `key` in the window starting at `window_start`, if any (Kafka
    /// Streams' `fetch(key, time)`).
    ///
    /// # Errors
    /// When the key cannot be serialized, the value cannot be read, or the backend fails.
    pub fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StoreError> {
        let key = window_key(&self.view.key_bytes(key)?, window_start, 0);
        self.view.get_serialized(&key)
    }

    /// `key`'s windows that start from `from` to `to` (both included, in ms), as (window
    /// start, value), oldest first.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>, StoreError> {
        self.fetch_serialized(&self.view.key_bytes(key)?, from, to)
    }

    /// [`fetch`](Self::fetch), newest first.
    ///
    /// # Errors
    /// As [`get`](Self::get).
    pub fn backward_fetch(&self, key: &K, from: i64, to: i64) -> Result<Vec<(i64, V)>, StoreError> {
        let mut windows = self.fetch(key, from, to)?;
        windows.reverse();
        Ok(windows)
    }

    /// The windows of the key serialized as `key` that start from `from` to `to`.
    pub(crate) fn fetch_serialized(
        &self,
        key: &[u8],
        from: i64,
        to: i64,
    ) -> Result<Vec<(i64, V)>, StoreError> {
        let from = from.max(0);
        if to < from {
            return Ok(Vec::new());
        }
        let (low, high) = (window_key(key, from, 0), window_key(key, to, u32::MAX));
        let mut found = Vec::new();
        for entry in self.view.bytes().range(Some(&low), Some(&high))? {
            let (store_key, value) = entry?;
            // Longer keys that begin with `key` sort in between: not this key's.
            if let Some((k, start)) = split_window_key(&store_key)
                && k == key
            {
                found.push((start, self.view.value_of(&value)?));
            }
        }
        Ok(found)
    }

    /// Every key's windows that start from `from` to `to` (both included), in the order of
    /// the serialized keys, each key's oldest first.
    ///
    /// # Errors
    /// When an entry cannot be read, or the backend fails.
    pub fn fetch_all(&self, from: i64, to: i64) -> Result<WindowedEntries<K, V>, StoreError> {
        self.scan(|start| (from..=to).contains(&start))
    }

    /// Every window of every key.
    ///
    /// # Errors
    /// As [`fetch_all`](Self::fetch_all).
    pub fn all(&self) -> Result<WindowedEntries<K, V>, StoreError> {
        self.scan(|_| true)
    }

    /// [`fetch_all`](Self::fetch_all) in the order of the windows' starts, then of the keys'
    /// bytes: as Kafka Streams' time-ordered window store gives them to emit on close.
    pub(crate) fn fetch_all_by_time(
        &self,
        from: i64,
        to: i64,
    ) -> Result<WindowedEntries<K, V>, StoreError> {
        let mut found = Vec::new();
        for entry in self.view.bytes().range(None, None)? {
            let (store_key, value) = entry?;
            if let Some((key, start)) = split_window_key(&store_key)
                && (from..=to).contains(&start)
            {
                found.push((start, key.to_vec(), value));
            }
        }
        found.sort();
        found
            .into_iter()
            .map(|(start, key, value)| {
                let window = Window::new(start, start.saturating_add(self.size));
                let key = Windowed::new(self.view.key_of(&key)?, window);
                Ok((key, self.view.value_of(&value)?))
            })
            .collect()
    }

    fn scan(&self, starts: impl Fn(i64) -> bool) -> Result<WindowedEntries<K, V>, StoreError> {
        let mut found = Vec::new();
        for entry in self.view.bytes().range(None, None)? {
            let (store_key, value) = entry?;
            let Some((key, start)) = split_window_key(&store_key) else {
                continue;
            };
            if starts(start) {
                let window = Window::new(start, start.saturating_add(self.size));
                let key = Windowed::new(self.view.key_of(key)?, window);
                found.push((key, self.view.value_of(&value)?));
            }
        }
        Ok(found)
    }
}

/// A window store of `K` to `V` as its task's processors use it (Kafka Streams'
/// `WindowStore`): reads as [`ReadOnlyWindowStore`] (through the cache when the store
/// caches), and every write also goes to the store's changelog when it is logged.
pub struct WindowStore<K, V> {
    store: KeyValueStore<K, V>,
    windows: ReadOnlyWindowStore<K, V>,
    retain_duplicates: bool,
    /// The sequence number of the last write, when duplicates are kept.
    seq: Cell<u32>,
}

impl<K: 'static, V: 'static> fmt::Debug for WindowStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowStore")
            .field("windows", &self.windows)
            .field("retain_duplicates", &self.retain_duplicates)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> std::ops::Deref for WindowStore<K, V> {
    type Target = ReadOnlyWindowStore<K, V>;

    /// The reads: `fetch`, `fetch_all`, `all`.
    fn deref(&self) -> &Self::Target {
        &self.windows
    }
}

impl<K: 'static, V: 'static> WindowStore<K, V> {
    /// The typed top of a task's window store, over `store` (of store keys), of windows
    /// `size_ms` long.
    pub(crate) fn new(store: KeyValueStore<K, V>, size_ms: i64, retain_duplicates: bool) -> Self {
        let windows = ReadOnlyWindowStore::new(store.view().clone(), size_ms);
        Self {
            store,
            windows,
            retain_duplicates,
            seq: Cell::new(0),
        }
    }

    /// The value of `key` in the window starting at `window_start`, if any (through the
    /// cache, which keeps what it read).
    ///
    /// # Errors
    /// As [`ReadOnlyWindowStore::get`].
    pub fn get(&self, key: &K, window_start: i64) -> Result<Option<V>, StoreError> {
        self.store
            .with_store_key(key, suffix(window_start, 0), |key| {
                self.store.get_serialized(key)
            })
    }

    /// Sets `key`'s value in the window starting at `window_start` (`None`: removes it). A
    /// store that keeps duplicates adds it beside the others instead.
    ///
    /// # Errors
    /// When either cannot be serialized, the backend fails, or the changelog cannot take
    /// the write.
    pub fn put(&self, key: &K, value: Option<&V>, window_start: i64) -> Result<(), StoreError> {
        self.put_with_headers(key, value, window_start, &Headers::new())
    }

    /// [`put`](Self::put), an update of a record with `headers` (which a cache's flush
    /// forwards it with).
    pub(crate) fn put_with_headers(
        &self,
        key: &K,
        value: Option<&V>,
        window_start: i64,
        headers: &Headers,
    ) -> Result<(), StoreError> {
        let seq = match self.retain_duplicates {
            // Kafka Streams' sequence numbers stay positive.
            true => {
                let next = (self.seq.get().wrapping_add(1)) & 0x7FFF_FFFF;
                self.seq.set(next);
                next
            }
            false => 0,
        };
        self.store
            .with_store_key(key, suffix(window_start, seq), |key| match value {
                Some(value) => self.store.put_serialized(key, value, headers),
                None => self.store.remove_serialized(key, headers),
            })
    }

    /// Hands every update the store's cache writes down to `listener`; whether it caches.
    pub(crate) fn set_flush_listener(&self, listener: super::FlushListener) -> bool {
        self.store.set_flush_listener(listener)
    }

    /// The read-only view, which may be sent to other threads.
    pub fn read_only(&self) -> ReadOnlyWindowStore<K, V> {
        self.windows.clone()
    }

    /// The key-value view of the store keys, for a flush listener to read entries with.
    pub(crate) fn view(&self) -> &ReadOnlyKeyValueStore<K, V> {
        self.store.view()
    }
}

/// Appends a window's start and sequence number to a serialized key.
fn suffix(start: i64, seq: u32) -> impl FnOnce(&mut Vec<u8>) {
    move |out| {
        out.extend_from_slice(&start.to_be_bytes());
        out.extend_from_slice(&seq.to_be_bytes());
    }
}

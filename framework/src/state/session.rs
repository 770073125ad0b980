//! Session stores (Kafka Streams' `SessionStore`): values by key and session, the state of
//! session-windowed aggregations. The typed layer over a segmented byte store: a session is
//! the record key's bytes, its end and its start (`segmented`), so a key's sessions lie side
//! by side in the order of their ends.

use std::fmt;

use super::segmented::{session_key, split_session_key};
use super::{KeyValueStore, ReadOnlyKeyValueStore, StoreError, WindowedEntries};
use super::{Window, Windowed};
use crate::header::Headers;

/// A read-only session store of `K` to `V` (Kafka Streams' `ReadOnlySessionStore`): what
/// queries see, from any thread.
pub struct ReadOnlySessionStore<K, V> {
    view: ReadOnlyKeyValueStore<K, V>,
}

impl<K, V> Clone for ReadOnlySessionStore<K, V> {
    fn clone(&self) -> Self {
        Self {
            view: self.view.clone(),
        }
    }
}

impl<K: 'static, V: 'static> fmt::Debug for ReadOnlySessionStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReadOnlySessionStore")
            .field("name", &self.view.name())
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> ReadOnlySessionStore<K, V> {
    /// The session store read through `view` (of its store keys).
    pub(crate) fn new(view: ReadOnlyKeyValueStore<K, V>) -> Self {
        Self { view }
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        self.view.name()
    }

    /// Every session of `key`, in the order of their ends.
    ///
    /// # Errors
    /// When the key cannot be serialized, an entry cannot be read, or the backend fails.
    pub fn fetch(&self, key: &K) -> Result<WindowedEntries<K, V>, StoreError> {
        self.find_sessions(key, 0, i64::MAX)
    }

    /// `key`'s sessions that end at `earliest_end` or later and start at `latest_start` or
    /// earlier: those a record could join (Kafka Streams' `findSessions`), in the order of
    /// their ends.
    ///
    /// # Errors
    /// As [`fetch`](Self::fetch).
    pub fn find_sessions(
        &self,
        key: &K,
        earliest_end: i64,
        latest_start: i64,
    ) -> Result<WindowedEntries<K, V>, StoreError> {
        let key_bytes = self.view.key_bytes(key)?;
        let low = session_key(&key_bytes, 0, earliest_end.max(0));
        let mut high = key_bytes.clone();
        high.extend_from_slice(&[0xFF; 16]);
        let mut found = Vec::new();
        for entry in self.view.bytes().range(Some(&low), Some(&high))? {
            let (store_key, value) = entry?;
            let Some((k, start, end)) = split_session_key(&store_key) else {
                continue;
            };
            // Longer keys that begin with `key` sort in between: not this key's.
            if k == key_bytes && end >= earliest_end && start <= latest_start {
                let session = Windowed::new(self.view.key_of(k)?, Window::session(start, end));
                found.push((session, self.view.value_of(&value)?));
            }
        }
        Ok(found)
    }

    /// The value of `key`'s session from `start` to `end`, if it has that session.
    ///
    /// # Errors
    /// As [`fetch`](Self::fetch).
    pub fn fetch_session(&self, key: &K, start: i64, end: i64) -> Result<Option<V>, StoreError> {
        let key = session_key(&self.view.key_bytes(key)?, start, end);
        self.view.get_serialized(&key)
    }

    /// The sessions of every key that end from `from` to `to` (both included), in the
    /// order of their ends, then of their keys' bytes, then of their starts, those past the
    /// retention that the store still holds too: as Kafka Streams' time-ordered session
    /// store gives them to emit on close.
    pub(crate) fn ending_between(
        &self,
        from: i64,
        to: i64,
    ) -> Result<WindowedEntries<K, V>, StoreError> {
        let mut found = Vec::new();
        for entry in self.view.bytes().all_held()? {
            let (store_key, value) = entry?;
            if let Some((key, start, end)) = split_session_key(&store_key)
                && (from..=to).contains(&end)
            {
                found.push((end, key.to_vec(), start, value));
            }
        }
        found.sort();
        found
            .into_iter()
            .map(|(end, key, start, value)| {
                let session = Windowed::new(self.view.key_of(&key)?, Window::session(start, end));
                Ok((session, self.view.value_of(&value)?))
            })
            .collect()
    }

    /// Every session of every key, in the order of the serialized keys.
    ///
    /// # Errors
    /// When an entry cannot be read, or the backend fails.
    pub fn all(&self) -> Result<WindowedEntries<K, V>, StoreError> {
        let mut found = Vec::new();
        for entry in self.view.bytes().range(None, None)? {
            let (store_key, value) = entry?;
            if let Some((key, start, end)) = split_session_key(&store_key) {
                let session = Windowed::new(self.view.key_of(key)?, Window::session(start, end));
                found.push((session, self.view.value_of(&value)?));
            }
        }
        Ok(found)
    }
}

/// A session store of `K` to `V` as its task's processors use it (Kafka Streams'
/// `SessionStore`): reads as [`ReadOnlySessionStore`] (through the cache when the store
/// caches), and every write also goes to the store's changelog when it is logged.
pub struct SessionStore<K, V> {
    store: KeyValueStore<K, V>,
    sessions: ReadOnlySessionStore<K, V>,
}

impl<K: 'static, V: 'static> fmt::Debug for SessionStore<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionStore")
            .field("sessions", &self.sessions)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static> std::ops::Deref for SessionStore<K, V> {
    type Target = ReadOnlySessionStore<K, V>;

    /// The reads: `fetch`, `find_sessions`, `fetch_session`, `all`.
    fn deref(&self) -> &Self::Target {
        &self.sessions
    }
}

impl<K: 'static, V: 'static> SessionStore<K, V> {
    /// The typed top of a task's session store, over `store` (of store keys).
    pub(crate) fn new(store: KeyValueStore<K, V>) -> Self {
        let sessions = ReadOnlySessionStore::new(store.view().clone());
        Self { store, sessions }
    }

    /// Sets the value of `session` (a key and its window).
    ///
    /// # Errors
    /// When either cannot be serialized, the backend fails, or the changelog cannot take
    /// the write.
    pub fn put(&self, session: &Windowed<K>, value: &V) -> Result<(), StoreError> {
        self.write(session, Some(value), &Headers::new())
    }

    /// Removes `session`; a logged store writes a tombstone.
    ///
    /// # Errors
    /// As [`put`](Self::put).
    pub fn remove(&self, session: &Windowed<K>) -> Result<(), StoreError> {
        self.write(session, None, &Headers::new())
    }

    /// Sets (`None`: removes) `session`, an update of a record with `headers`.
    pub(crate) fn write(
        &self,
        session: &Windowed<K>,
        value: Option<&V>,
        headers: &Headers,
    ) -> Result<(), StoreError> {
        let window = *session.window();
        let suffix = move |out: &mut Vec<u8>| {
            out.extend_from_slice(&window.end().to_be_bytes());
            out.extend_from_slice(&window.start().to_be_bytes());
        };
        self.store
            .with_store_key(session.key(), suffix, |key| match value {
                Some(value) => self.store.put_serialized(key, value, headers),
                None => self.store.remove_serialized(key, headers),
            })
    }

    /// Hands every update the store's cache writes down to `listener`; whether it caches.
    pub(crate) fn set_flush_listener(&self, listener: super::FlushListener) -> bool {
        self.store.set_flush_listener(listener)
    }

    /// The read-only view, which may be sent to other threads.
    pub fn read_only(&self) -> ReadOnlySessionStore<K, V> {
        self.sessions.clone()
    }

    /// The key-value view of the store keys, for a flush listener to read entries with.
    pub(crate) fn view(&self) -> &ReadOnlyKeyValueStore<K, V> {
        self.store.view()
    }
}

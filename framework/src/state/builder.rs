//! How a topology declares a store, and how a task opens it.

use std::any::{Any, type_name};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::{
    InMemoryKeyValueStore, ReadOnlyKeyValueStore, RocksDbKeyValueStore, RocksDbMemory,
    SharedBytesStore, StoreError,
};
use crate::serde::{DefaultSerde, SharedSerde};

/// Where a store keeps its data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum StoreBackend {
    /// A RocksDB database in the task's directory (the default).
    RocksDb,
    /// A sorted map in memory, rebuilt from the changelog after a restart.
    InMemory,
}

/// A key-value store of `K` to `V` to add to a topology (Kafka Streams'
/// `Stores.keyValueStoreBuilder`): its name, backend, serdes, and whether it is logged to a
/// changelog topic and cached.
pub struct StoreBuilder<K, V> {
    name: String,
    backend: StoreBackend,
    logging: bool,
    caching: bool,
    keys: SharedSerde<K>,
    values: SharedSerde<V>,
}

impl<K, V> fmt::Debug for StoreBuilder<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreBuilder")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("logging", &self.logging)
            .field("caching", &self.caching)
            .finish_non_exhaustive()
    }
}

impl<K: DefaultSerde, V: DefaultSerde> StoreBuilder<K, V> {
    /// A RocksDB key-value store named `name`, logged, with the types' default serdes.
    pub fn key_value(name: impl Into<String>) -> Self {
        Self::with_serdes(name, K::default_serde(), V::default_serde())
    }
}

impl<K: 'static, V: 'static> StoreBuilder<K, V> {
    /// A RocksDB key-value store named `name`, logged, with these serdes.
    pub fn with_serdes(
        name: impl Into<String>,
        keys: SharedSerde<K>,
        values: SharedSerde<V>,
    ) -> Self {
        Self {
            name: name.into(),
            backend: StoreBackend::RocksDb,
            logging: true,
            caching: false,
            keys,
            values,
        }
    }

    /// Keeps the store in memory instead of RocksDB.
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.backend = StoreBackend::InMemory;
        self
    }

    /// Keeps the store in RocksDB (the default).
    #[must_use]
    pub fn persistent(mut self) -> Self {
        self.backend = StoreBackend::RocksDb;
        self
    }

    /// Whether every write goes to the store's changelog topic (default: yes).
    #[must_use]
    pub fn logging(mut self, enabled: bool) -> Self {
        self.logging = enabled;
        self
    }

    /// Whether writes are cached and deduplicated between commits (default: no).
    #[must_use]
    pub fn caching(mut self, enabled: bool) -> Self {
        self.caching = enabled;
        self
    }

    /// The store's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn into_def(self) -> StoreDef {
        StoreDef {
            name: self.name.into(),
            backend: self.backend,
            logging: self.logging,
            caching: self.caching,
            serdes: Arc::new((self.keys, self.values)),
            types: type_name::<(K, V)>(),
        }
    }
}

/// A store of a topology, its types erased: what a task needs to open it, and the serdes
/// its typed view is made with.
#[derive(Clone)]
pub(crate) struct StoreDef {
    pub(crate) name: Arc<str>,
    pub(crate) backend: StoreBackend,
    pub(crate) logging: bool,
    pub(crate) caching: bool,
    /// `(SharedSerde<K>, SharedSerde<V>)`.
    serdes: Arc<dyn Any + Send + Sync>,
    /// `(K, V)`, for errors.
    types: &'static str,
}

impl fmt::Debug for StoreDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoreDef")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("logging", &self.logging)
            .field("caching", &self.caching)
            .field("types", &self.types)
            .finish()
    }
}

impl StoreDef {
    /// Opens the store for a task whose directory is `task_dir`.
    pub(crate) fn open(
        &self,
        task_dir: &Path,
        memory: Option<&RocksDbMemory>,
    ) -> Result<SharedBytesStore, StoreError> {
        Ok(match self.backend {
            StoreBackend::RocksDb => Arc::new(RocksDbKeyValueStore::open(
                &*self.name,
                &task_dir.join("rocksdb").join(&*self.name),
                memory,
            )?),
            StoreBackend::InMemory => Arc::new(InMemoryKeyValueStore::new(&*self.name)),
        })
    }

    /// Removes what the store keeps on disk for a task whose directory is `task_dir`.
    pub(crate) fn wipe(&self, task_dir: &Path) -> Result<(), StoreError> {
        let dir = task_dir.join("rocksdb").join(&*self.name);
        match std::fs::remove_dir_all(&dir) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(StoreError::Io {
                store: self.name.to_string(),
                path: dir,
                operation: "wiping the store",
                source: e,
            }),
            _ => Ok(()),
        }
    }

    /// The typed view of `bytes`, if `(K, V)` are the store's types.
    pub(crate) fn typed<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        match self
            .serdes
            .downcast_ref::<(SharedSerde<K>, SharedSerde<V>)>()
        {
            Some((keys, values)) => Ok(ReadOnlyKeyValueStore::new(
                bytes,
                keys.clone(),
                values.clone(),
                topic,
            )),
            None => Err(StoreError::WrongTypes {
                store: self.name.to_string(),
                asked: type_name::<(K, V)>(),
                holds: self.types,
            }),
        }
    }
}

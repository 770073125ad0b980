//! How a topology declares a store, and how a task opens it.

use std::any::{Any, type_name};
use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::timestamped::ValueOfTimestamped;
use super::{
    InMemoryKeyValueStore, ReadOnlyKeyValueStore, RocksDbKeyValueStore, RocksDbMemory,
    SharedBytesStore, StoreError, ValueAndTimestamp, ValueAndTimestampSerde,
};
use crate::serde::{DefaultSerde, SharedSerde};

/// What a store holds, which decides its layout and its changelog's topic settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// Keys to values.
    KeyValue,
    /// Keys to values with the timestamp of their last update: the DSL's tables and
    /// aggregations ([`TimestampedKeyValueStore`](super::TimestampedKeyValueStore)).
    TimestampedKeyValue,
}

impl StoreKind {
    /// The topic settings of a changelog of a store of this kind: compacted, as Kafka
    /// Streams creates them (window and session stores will add deletion).
    pub(crate) fn changelog_configs(self) -> &'static [(&'static str, &'static str)] {
        match self {
            Self::KeyValue | Self::TimestampedKeyValue => &[("cleanup.policy", "compact")],
        }
    }
}

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
    kind: StoreKind,
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
            .field("kind", &self.kind)
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

    /// A RocksDB store named `name` of values with their timestamps (Kafka Streams'
    /// `Stores.timestampedKeyValueStoreBuilder`), logged, with the types' default serdes:
    /// a processor reaches it with
    /// [`ProcessorContext::timestamped_key_value_store`](crate::processor::ProcessorContext::timestamped_key_value_store).
    pub fn timestamped_key_value(name: impl Into<String>) -> Self {
        let mut builder = Self::key_value(name);
        builder.kind = StoreKind::TimestampedKeyValue;
        builder
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
            kind: StoreKind::KeyValue,
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

    /// Makes the store keep each value's timestamp ([`StoreKind::TimestampedKeyValue`]).
    pub(crate) fn timestamped(mut self) -> Self {
        self.kind = StoreKind::TimestampedKeyValue;
        self
    }

    pub(crate) fn into_def(self) -> StoreDef {
        StoreDef {
            name: self.name.into(),
            kind: self.kind,
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
    pub(crate) kind: StoreKind,
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
            .field("kind", &self.kind)
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

    /// The serdes of the store, if `(K, V)` are its key and value types.
    fn serdes<K: 'static, V: 'static>(
        &self,
        asked: &'static str,
    ) -> Result<&(SharedSerde<K>, SharedSerde<V>), StoreError> {
        self.serdes
            .downcast_ref::<(SharedSerde<K>, SharedSerde<V>)>()
            .ok_or_else(|| StoreError::WrongTypes {
                store: self.name.to_string(),
                asked,
                holds: self.types,
            })
    }

    /// The typed view of `bytes` with its values alone, if `(K, V)` are the store's types:
    /// what queries see (of a timestamped store too, as in Kafka Streams).
    pub(crate) fn typed<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        let (keys, values) = self.serdes::<K, V>(type_name::<(K, V)>())?;
        let values = match self.kind {
            StoreKind::KeyValue => values.clone(),
            StoreKind::TimestampedKeyValue => Arc::new(ValueOfTimestamped(values.clone())),
        };
        Ok(ReadOnlyKeyValueStore::new(
            bytes,
            keys.clone(),
            values,
            topic,
        ))
    }

    /// The typed view of `bytes` as a processor writes it: plain values of a key-value
    /// store, or values with their timestamps of a timestamped one.
    pub(crate) fn writable<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        if self.kind != StoreKind::KeyValue {
            return Err(StoreError::WrongTypes {
                store: self.name.to_string(),
                asked: type_name::<(K, V)>(),
                holds: "values with timestamps: ask for it as a timestamped key-value store",
            });
        }
        self.typed(bytes, topic)
    }

    /// The view of `bytes` with each value's timestamp, if the store is timestamped and
    /// `(K, V)` are its types.
    pub(crate) fn timestamped<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>, StoreError> {
        let asked = type_name::<(K, ValueAndTimestamp<V>)>();
        if self.kind != StoreKind::TimestampedKeyValue {
            return Err(StoreError::WrongTypes {
                store: self.name.to_string(),
                asked,
                holds: self.types,
            });
        }
        let (keys, values) = self.serdes::<K, V>(asked)?;
        Ok(ReadOnlyKeyValueStore::new(
            bytes,
            keys.clone(),
            ValueAndTimestampSerde::shared(values.clone()),
            topic,
        ))
    }
}

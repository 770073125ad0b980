//! How a topology declares a store, and how a task opens it.

use std::any::{Any, type_name};
use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use super::segmented::{KeySchema, SegmentedBytesStore};
use super::timestamped::ValueOfTimestamped;
use super::{
    InMemoryKeyValueStore, ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore,
    RocksDbKeyValueStore, RocksDbMemory, SharedBytesStore, StoreError, ValueAndTimestamp,
    ValueAndTimestampSerde,
};
use crate::serde::{DefaultSerde, SharedSerde};

/// Milliseconds of `duration`, saturating at `i64::MAX`.
fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// What a store holds, which decides its layout and its changelog's topic settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum StoreKind {
    /// Keys to values.
    KeyValue,
    /// Keys to values with the timestamp of their last update: the DSL's tables and
    /// aggregations ([`TimestampedKeyValueStore`](super::TimestampedKeyValueStore)).
    TimestampedKeyValue,
    /// Keys to values by time window ([`WindowStore`](super::WindowStore)).
    Window,
    /// Keys to values by time window, each with the timestamp of its last update: the DSL's
    /// windowed aggregations ([`TimestampedWindowStore`](super::TimestampedWindowStore)).
    TimestampedWindow,
    /// Keys to values by session ([`SessionStore`](super::SessionStore)).
    Session,
    /// The updates a suppression holds back, by key (Kafka Streams' time-ordered buffer).
    SuppressionBuffer,
}

impl StoreKind {
    /// What a store of this kind is, for errors.
    fn description(self) -> &'static str {
        match self {
            Self::KeyValue => "a key-value store",
            Self::TimestampedKeyValue => {
                "a timestamped key-value store (values with timestamps): ask for it as one"
            }
            Self::Window => "a window store",
            Self::TimestampedWindow => {
                "a timestamped window store (values with timestamps): ask for it as one"
            }
            Self::Session => "a session store",
            Self::SuppressionBuffer => "a suppression buffer",
        }
    }

    /// What a store of this kind is, as a topology's description names it.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Self::KeyValue | Self::TimestampedKeyValue => "key-value store",
            Self::Window | Self::TimestampedWindow => "window store",
            Self::Session => "session store",
            Self::SuppressionBuffer => "suppression buffer",
        }
    }

    /// Whether the values carry the timestamp of their last update.
    pub(crate) fn timestamped(self) -> bool {
        matches!(self, Self::TimestampedKeyValue | Self::TimestampedWindow)
    }
}

/// How long a window or session store keeps its entries, and how big its windows are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct WindowSpec {
    /// How long after stream time an entry is kept, in ms.
    pub(crate) retention_ms: i64,
    /// The windows' size, in ms (sessions: 0, each has its own).
    pub(crate) size_ms: i64,
    /// Whether each write is kept apart, even for the same key and window (a join's
    /// windows), instead of replacing the one before.
    pub(crate) retain_duplicates: bool,
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
    window: Option<WindowSpec>,
    /// Why the store cannot be built as declared, found before the topology is.
    problem: Option<String>,
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
            .field("window", &self.window)
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

    /// A RocksDB window store named `name` (Kafka Streams' `Stores.windowStoreBuilder` of a
    /// `persistentWindowStore`), logged, with the types' default serdes: see
    /// [`windowed`](Self::windowed); a processor reaches it with
    /// [`ProcessorContext::window_store`](crate::processor::ProcessorContext::window_store).
    pub fn window(
        name: impl Into<String>,
        retention: Duration,
        window_size: Duration,
        retain_duplicates: bool,
    ) -> Self {
        Self::key_value(name).windowed(retention, window_size, retain_duplicates)
    }

    /// A RocksDB session store named `name` (Kafka Streams' `Stores.sessionStoreBuilder`),
    /// logged, with the types' default serdes: see [`sessions`](Self::sessions); a processor
    /// reaches it with
    /// [`ProcessorContext::session_store`](crate::processor::ProcessorContext::session_store).
    pub fn session(name: impl Into<String>, retention: Duration) -> Self {
        Self::key_value(name).sessions(retention)
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
            window: None,
            problem: None,
            keys,
            values,
        }
    }

    /// Makes it a window store: values by key and time window of `window_size`, kept for
    /// `retention` after stream time (at least the window size; more lets queries see older
    /// windows), in segments dropped whole as they expire. With `retain_duplicates`, every
    /// write is kept apart (as a stream-stream join keeps its records), else a write
    /// replaces the key's value of its window.
    #[must_use]
    pub fn windowed(
        mut self,
        retention: Duration,
        window_size: Duration,
        retain_duplicates: bool,
    ) -> Self {
        self.kind = StoreKind::Window;
        self.window = Some(WindowSpec {
            retention_ms: millis(retention),
            size_ms: millis(window_size),
            retain_duplicates,
        });
        self
    }

    /// Makes it a session store: values by key and session (a window from the first to the
    /// last record of a burst of activity), kept for `retention` after stream time.
    #[must_use]
    pub fn sessions(mut self, retention: Duration) -> Self {
        self.kind = StoreKind::Session;
        self.window = Some(WindowSpec {
            retention_ms: millis(retention),
            size_ms: 0,
            retain_duplicates: false,
        });
        self
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

    /// Makes it a suppression's buffer.
    pub(crate) fn suppression_buffer(mut self) -> Self {
        self.kind = StoreKind::SuppressionBuffer;
        self
    }

    /// Makes the store keep each value's timestamp ([`StoreKind::TimestampedKeyValue`], or
    /// [`StoreKind::TimestampedWindow`] for a window store).
    pub(crate) fn timestamped(mut self) -> Self {
        self.kind = match self.kind {
            StoreKind::Window => StoreKind::TimestampedWindow,
            _ => StoreKind::TimestampedKeyValue,
        };
        self
    }

    /// Makes the topology with this store fail to build, saying `problem`.
    pub(crate) fn with_problem(mut self, problem: impl Into<String>) -> Self {
        self.problem = Some(problem.into());
        self
    }

    pub(crate) fn into_def(self) -> StoreDef {
        StoreDef {
            name: self.name.into(),
            kind: self.kind,
            backend: self.backend,
            logging: self.logging,
            caching: self.caching,
            window: self.window,
            problem: self.problem,
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
    /// Of a window or session store.
    pub(crate) window: Option<WindowSpec>,
    /// Why it cannot be built as declared.
    problem: Option<String>,
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
            .field("window", &self.window)
            .field("types", &self.types)
            .finish()
    }
}

impl StoreDef {
    /// Why the store cannot be built as declared, if it cannot.
    pub(crate) fn problem(&self) -> Option<String> {
        if let Some(problem) = &self.problem {
            return Some(problem.clone());
        }
        let spec = self.window?;
        if spec.retention_ms < spec.size_ms {
            return Some(format!(
                "its retention ({} ms) must be at least its window size ({} ms)",
                spec.retention_ms, spec.size_ms
            ));
        }
        (spec.retention_ms < 0).then(|| "its retention must not be negative".to_string())
    }

    /// The topic settings of the store's changelog, as Kafka Streams creates them:
    /// compacted; a window or session store's also deleted after its retention plus
    /// `additional_retention_ms` (`windowstore.changelog.additional.retention.ms`), and
    /// only deleted for a store that keeps duplicates (a join's: no key is written twice).
    pub(crate) fn changelog_configs(
        &self,
        additional_retention_ms: i64,
    ) -> Vec<(&'static str, String)> {
        // As Kafka Streams: a restore takes the records' own timestamps.
        let timestamps = ("message.timestamp.type", "CreateTime".into());
        match self.window {
            None => vec![("cleanup.policy", "compact".into()), timestamps],
            Some(spec) => vec![
                timestamps,
                (
                    "cleanup.policy",
                    match spec.retain_duplicates {
                        true => "delete".into(),
                        false => "compact,delete".into(),
                    },
                ),
                (
                    "retention.ms",
                    spec.retention_ms
                        .saturating_add(additional_retention_ms)
                        .to_string(),
                ),
            ],
        }
    }

    /// Opens the store for a task whose directory is `task_dir`: a key-value store in
    /// `rocksdb/<name>`, a window or session store's segments in `<name>/`, as Kafka Streams
    /// lays them out.
    pub(crate) fn open(
        &self,
        task_dir: &Path,
        memory: Option<&RocksDbMemory>,
    ) -> Result<SharedBytesStore, StoreError> {
        let name = &*self.name;
        if let Some(spec) = self.window {
            let schema = match self.kind {
                StoreKind::Session => KeySchema::Session,
                _ => KeySchema::Window,
            };
            let retention = spec.retention_ms;
            return Ok(match self.backend {
                StoreBackend::RocksDb => Arc::new(SegmentedBytesStore::rocksdb(
                    name,
                    schema,
                    &task_dir.join(name),
                    retention,
                    memory.cloned(),
                )?),
                StoreBackend::InMemory => {
                    Arc::new(SegmentedBytesStore::in_memory(name, schema, retention))
                }
            });
        }
        Ok(match self.backend {
            StoreBackend::RocksDb => Arc::new(RocksDbKeyValueStore::open(
                name,
                &task_dir.join("rocksdb").join(name),
                memory,
            )?),
            StoreBackend::InMemory => Arc::new(InMemoryKeyValueStore::new(name)),
        })
    }

    /// Removes what the store keeps on disk for a task whose directory is `task_dir`.
    pub(crate) fn wipe(&self, task_dir: &Path) -> Result<(), StoreError> {
        let dir = match self.window {
            Some(_) => task_dir.join(&*self.name),
            None => task_dir.join("rocksdb").join(&*self.name),
        };
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

    /// Whether the store is of one of `kinds`; else the error of a processor or query that
    /// asked for `asked` of the wrong kind of store.
    fn expect_kind(&self, kinds: &[StoreKind], asked: &'static str) -> Result<(), StoreError> {
        if kinds.contains(&self.kind) {
            return Ok(());
        }
        Err(StoreError::WrongTypes {
            store: self.name.to_string(),
            asked,
            holds: self.kind.description(),
        })
    }

    /// The typed view of `bytes` with its values alone (of a timestamped store too: what
    /// queries see, as in Kafka Streams), if the store is of one of `kinds` and `(K, V)`
    /// are its types.
    fn values_view<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
        kinds: &[StoreKind],
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        let asked = type_name::<(K, V)>();
        self.expect_kind(kinds, asked)?;
        let (keys, values) = self.serdes::<K, V>(asked)?;
        let values = match self.kind.timestamped() {
            false => values.clone(),
            true => Arc::new(ValueOfTimestamped(values.clone())),
        };
        Ok(ReadOnlyKeyValueStore::new(
            bytes,
            keys.clone(),
            values,
            topic,
        ))
    }

    /// The view of `bytes` with each value's timestamp, if the store is of `kind` (a
    /// timestamped one) and `(K, V)` are its types.
    fn timestamped_view<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
        kind: StoreKind,
    ) -> Result<ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>, StoreError> {
        let asked = type_name::<(K, ValueAndTimestamp<V>)>();
        self.expect_kind(&[kind], asked)?;
        let (keys, values) = self.serdes::<K, V>(asked)?;
        Ok(ReadOnlyKeyValueStore::new(
            bytes,
            keys.clone(),
            ValueAndTimestampSerde::shared(values.clone()),
            topic,
        ))
    }

    /// The key-value view of `bytes` that queries read: values alone.
    pub(crate) fn typed<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        let kinds = [StoreKind::KeyValue, StoreKind::TimestampedKeyValue];
        self.values_view(bytes, topic, &kinds)
    }

    /// The key-value view of `bytes` as a processor writes a plain key-value store.
    pub(crate) fn writable<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        self.values_view(bytes, topic, &[StoreKind::KeyValue])
    }

    /// The view of `bytes` with each value's timestamp, of a timestamped key-value store.
    pub(crate) fn timestamped<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>, StoreError> {
        self.timestamped_view(bytes, topic, StoreKind::TimestampedKeyValue)
    }

    /// The window view of `bytes` that queries read: values alone.
    pub(crate) fn window_view<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyWindowStore<K, V>, StoreError> {
        let kinds = [StoreKind::Window, StoreKind::TimestampedWindow];
        let view = self.values_view(bytes, topic, &kinds)?;
        Ok(ReadOnlyWindowStore::new(view, self.window_size()))
    }

    /// The view of `bytes`'s store keys as a processor writes a plain window store.
    pub(crate) fn writable_window<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        self.values_view(bytes, topic, &[StoreKind::Window])
    }

    /// The view of `bytes`'s store keys, with each value's timestamp, as a processor
    /// writes a timestamped window store.
    pub(crate) fn timestamped_window<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>, StoreError> {
        self.timestamped_view(bytes, topic, StoreKind::TimestampedWindow)
    }

    /// The session view of `bytes` that queries read.
    pub(crate) fn session_view<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlySessionStore<K, V>, StoreError> {
        Ok(ReadOnlySessionStore::new(
            self.writable_session(bytes, topic)?,
        ))
    }

    /// The key-value view of `bytes` as a suppression writes its buffer.
    pub(crate) fn writable_buffer<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        self.values_view(bytes, topic, &[StoreKind::SuppressionBuffer])
    }

    /// The view of `bytes`'s store keys as a processor writes a session store.
    pub(crate) fn writable_session<K: 'static, V: 'static>(
        &self,
        bytes: SharedBytesStore,
        topic: Arc<str>,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        self.values_view(bytes, topic, &[StoreKind::Session])
    }

    /// The size of the store's windows, in ms (0 but for a window store).
    pub(crate) fn window_size(&self) -> i64 {
        self.window.map_or(0, |w| w.size_ms)
    }

    /// Whether every write of the store is kept apart (a window store of a join's).
    pub(crate) fn retains_duplicates(&self) -> bool {
        self.window.is_some_and(|w| w.retain_duplicates)
    }
}

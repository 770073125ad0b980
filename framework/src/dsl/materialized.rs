//! `Materialized`: how an aggregation or a table keeps its state.

use std::fmt;
use std::time::Duration;

use crate::serde::{DefaultSerde, Serde, SharedSerde};
use crate::state::{StoreBackend, StoreBuilder};

/// How a table or aggregation materializes its state store (Kafka Streams' `Materialized`):
/// the store's name (which also names its changelog and makes it queryable), backend, serdes,
/// and whether it is logged and cached.
pub struct Materialized<K, V> {
    name: Option<String>,
    backend: StoreBackend,
    logging: bool,
    caching: bool,
    retention: Option<Duration>,
    keys: Option<SharedSerde<K>>,
    values: Option<SharedSerde<V>>,
}

impl<K, V> Default for Materialized<K, V> {
    fn default() -> Self {
        Self {
            name: None,
            backend: StoreBackend::RocksDb,
            logging: true,
            caching: true,
            retention: None,
            keys: None,
            values: None,
        }
    }
}

impl<K, V> fmt::Debug for Materialized<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Materialized")
            .field("name", &self.name)
            .field("backend", &self.backend)
            .field("logging", &self.logging)
            .field("caching", &self.caching)
            .field("retention", &self.retention)
            .finish_non_exhaustive()
    }
}

impl<K, V> Materialized<K, V> {
    /// A store named `name`: its changelog is `<application.id>-<name>-changelog`, and
    /// queries find it by this name. Name stores, so that a change elsewhere in the topology
    /// does not rename their state.
    pub fn as_(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            ..Self::default()
        }
    }

    /// An unnamed store (a generated name) with these serdes, as `Consumed::with` and
    /// `Produced::with` take them.
    pub fn with(keys: impl Serde<K>, values: impl Serde<V>) -> Self {
        Self::default()
            .with_key_serde(keys)
            .with_value_serde(values)
    }

    serde_setters!(keys, values);

    /// Keeps the store in memory instead of RocksDB.
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.backend = StoreBackend::InMemory;
        self
    }

    /// No changelog: the store is not restored after a restart or a move.
    #[must_use]
    pub fn with_logging_disabled(mut self) -> Self {
        self.logging = false;
        self
    }

    /// Writes go to the record cache first (the default).
    #[must_use]
    pub fn with_caching_enabled(mut self) -> Self {
        self.caching = true;
        self
    }

    /// Every write goes to the store and downstream at once.
    #[must_use]
    pub fn with_caching_disabled(mut self) -> Self {
        self.caching = false;
        self
    }

    /// How long a window or session store keeps windows after stream time passes them
    /// (default: the window size plus the grace period, the least it may be), so that
    /// queries can read older windows. Only windowed aggregations take it: the topology of
    /// any other store with a retention fails to build.
    #[must_use]
    pub fn with_retention(mut self, retention: Duration) -> Self {
        self.retention = Some(retention);
        self
    }

    /// The store's name, if given.
    pub(crate) fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }

    /// The serdes of a grouping, for the store where it sets none (as Kafka Streams'
    /// aggregations take them from their `Grouped`).
    pub(crate) fn or_serdes(
        mut self,
        keys: Option<&SharedSerde<K>>,
        values: Option<&SharedSerde<V>>,
    ) -> Self {
        self.keys = self.keys.or_else(|| keys.cloned());
        self.values = self.values.or_else(|| values.cloned());
        self
    }
}

impl<K: DefaultSerde, V: DefaultSerde> Materialized<K, V> {
    /// The store's key serde: the one set, else the type's default.
    pub(crate) fn key_serde(&self) -> SharedSerde<K> {
        self.keys.clone().unwrap_or_else(K::default_serde)
    }

    /// The store's value serde: the one set, else the type's default.
    pub(crate) fn value_serde(&self) -> SharedSerde<V> {
        self.values.clone().unwrap_or_else(V::default_serde)
    }

    /// The key-value store it describes, named `name` unless it has a name of its own.
    pub(crate) fn into_store(self, name: String) -> StoreBuilder<K, V> {
        let retention = self.retention;
        let store = self.into_builder(name).timestamped();
        match retention {
            // Refused when the topology is built, naming the store.
            Some(_) => store
                .with_problem("with_retention applies to the stores of windowed aggregations only"),
            None => store,
        }
    }

    /// The timestamped window store it describes (of windows `size_ms` long, needing to
    /// keep them `least_ms` after stream time: Kafka Streams' `WindowStoreMaterializer`),
    /// named `name` unless it has a name of its own.
    pub(crate) fn into_window_store(
        self,
        name: String,
        size_ms: i64,
        least_ms: i64,
    ) -> StoreBuilder<K, V> {
        let size = Duration::from_millis(u64::try_from(size_ms).unwrap_or(0));
        self.into_windowed(name, least_ms, |store, retention| {
            store.windowed(retention, size, false).timestamped()
        })
    }

    /// The session store it describes (needing to keep sessions `least_ms` after stream
    /// time), named `name` unless it has a name of its own.
    pub(crate) fn into_session_store(self, name: String, least_ms: i64) -> StoreBuilder<K, V> {
        self.into_windowed(name, least_ms, StoreBuilder::sessions)
    }

    /// The store `kind` makes of the plain one with the retention asked for, else
    /// `least_ms`; refused when the retention asked for is shorter.
    fn into_windowed(
        self,
        name: String,
        least_ms: i64,
        kind: impl FnOnce(StoreBuilder<K, V>, Duration) -> StoreBuilder<K, V>,
    ) -> StoreBuilder<K, V> {
        let least = Duration::from_millis(u64::try_from(least_ms).unwrap_or(0));
        let retention = self.retention.unwrap_or(least);
        let store = kind(self.into_builder(name), retention);
        if retention >= least {
            return store;
        }
        store.with_problem(format!(
            "its retention ({} ms) must be at least what its windows need: their size (or \
             a session's gap; twice a sliding window's time difference) plus the grace \
             period, {least_ms} ms",
            retention.as_millis()
        ))
    }

    fn into_builder(self, name: String) -> StoreBuilder<K, V> {
        let keys = self.keys.unwrap_or_else(K::default_serde);
        let values = self.values.unwrap_or_else(V::default_serde);
        // The DSL's tables and aggregations keep each value's timestamp, as Kafka Streams'.
        let store = StoreBuilder::with_serdes(self.name.unwrap_or(name), keys, values)
            .logging(self.logging)
            .caching(self.caching);
        match self.backend {
            StoreBackend::InMemory => store.in_memory(),
            _ => store.persistent(),
        }
    }
}

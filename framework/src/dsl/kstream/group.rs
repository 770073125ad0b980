//! `group_by_key`, `group_by` and the aggregations of a grouped stream: `count`, `reduce`,
//! `aggregate`, each into a `KTable` materialized by a state store.

use std::fmt;
use std::sync::Arc;

use super::{KStream, Repartitioned};
use crate::dsl::ktable::KTable;
use crate::dsl::table_store::{Aggregate, Step, materialized_table};
use crate::dsl::{Grouped, Materialized};
use crate::serde::{DefaultSerde, SharedSerde};

/// A stream grouped by key, ready to aggregate (Kafka Streams' `KGroupedStream`).
pub struct KGroupedStream<K, V> {
    stream: KStream<K, V>,
    /// Whether the key was chosen anew, so records must move to the partition of their key.
    repartition: bool,
    grouped: Grouped<K, V>,
}

impl<K, V> Clone for KGroupedStream<K, V> {
    fn clone(&self) -> Self {
        Self {
            stream: self.stream.clone(),
            repartition: self.repartition,
            grouped: Grouped {
                key_serde: self.grouped.key_serde.clone(),
                value_serde: self.grouped.value_serde.clone(),
                name: self.grouped.name.clone(),
            },
        }
    }
}

impl<K, V> fmt::Debug for KGroupedStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KGroupedStream")
            .field("stream", &self.stream)
            .field("repartition", &self.repartition)
            .field("grouped", &self.grouped)
            .finish()
    }
}

impl<K: 'static, V: 'static> KStream<K, V> {
    /// The records grouped by their key, for an aggregation. Records read with their key
    /// are in their key's partition already; after an operator that may have changed the
    /// keys (`map`, `select_key`, ...), the aggregation first sends them through a
    /// repartition topic, named by [`group_by_key_with`](Self::group_by_key_with) or else
    /// after the store.
    pub fn group_by_key(&self) -> KGroupedStream<K, V> {
        self.group_by_key_with(Grouped::default())
    }

    /// [`group_by_key`](Self::group_by_key) with its repartition topic (if it needs one)
    /// named and written as `grouped` says.
    pub fn group_by_key_with(&self, grouped: Grouped<K, V>) -> KGroupedStream<K, V> {
        KGroupedStream {
            stream: self.clone(),
            repartition: self.repartition_required,
            grouped,
        }
    }

    /// The records grouped by `selector(key, value)`. The aggregation that follows first
    /// sends them through a repartition topic, so that each key's records meet in one task;
    /// [`group_by_with`](Self::group_by_with) names it.
    pub fn group_by<KR: Clone + 'static>(
        &self,
        selector: impl Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    ) -> KGroupedStream<KR, V>
    where
        V: Clone,
    {
        self.group_by_with(selector, Grouped::default())
    }

    /// [`group_by`](Self::group_by) with its repartition topic named and written as
    /// `grouped` says.
    pub fn group_by_with<KR: Clone + 'static>(
        &self,
        selector: impl Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
        grouped: Grouped<KR, V>,
    ) -> KGroupedStream<KR, V>
    where
        V: Clone,
    {
        KGroupedStream {
            stream: self.select_key(selector),
            repartition: true,
            grouped,
        }
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KStream<K, V> {
    /// The stream as a table: the latest value of each key (a tombstone deletes it), kept in
    /// a store with a generated name.
    pub fn to_table(&self) -> KTable<K, V> {
        self.to_table_with(Materialized::default())
    }

    /// [`to_table`](Self::to_table) into the store `materialized` describes. After an
    /// operator that may have changed the keys, the records first go through a repartition
    /// topic named after the store.
    pub fn to_table_with(&self, materialized: Materialized<K, V>) -> KTable<K, V> {
        let store_name = match materialized.name() {
            Some(name) => name.to_string(),
            None => self.state.borrow_mut().name("KSTREAM-TOTABLE-STATE-STORE"),
        };
        let input = if self.repartition_required {
            self.repartition(Repartitioned::as_(&store_name))
        } else {
            self.clone()
        };
        crate::dsl::ktable::table(&input, "KSTREAM-TOTABLE", store_name, materialized)
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KGroupedStream<K, V> {
    /// The number of records of each key.
    pub fn count(&self) -> KTable<K, i64> {
        self.count_with(Materialized::default())
    }

    /// [`count`](Self::count) into the store `materialized` describes.
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        let materialized = materialized.or_serdes(self.grouped.key_serde.as_ref(), None);
        self.aggregated(
            materialized,
            Arc::new(|_, _, old| Some(old.unwrap_or(0) + 1)),
        )
    }

    /// Each key's values combined with `reducer(aggregate, value)`; the first value of a key
    /// is its first aggregate.
    pub fn reduce(&self, reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static) -> KTable<K, V> {
        self.reduce_with(reducer, Materialized::default())
    }

    /// [`reduce`](Self::reduce) into the store `materialized` describes.
    pub fn reduce_with(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        let materialized = materialized.or_serdes(
            self.grouped.key_serde.as_ref(),
            self.grouped.value_serde.as_ref(),
        );
        self.aggregated(
            materialized,
            Arc::new(move |_, value, old| match old {
                Some(old) => Some(reducer(&old, value)),
                None => Some(value.clone()),
            }),
        )
    }

    /// Each key's values folded with `aggregator(key, value, aggregate)`, starting from
    /// `initializer()`.
    pub fn aggregate<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<K, VA> {
        self.aggregate_with(initializer, aggregator, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the store `materialized` describes.
    pub fn aggregate_with<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let materialized = materialized.or_serdes(self.grouped.key_serde.as_ref(), None);
        self.aggregated(
            materialized,
            Arc::new(move |key, value, old| {
                Some(aggregator(key, value, old.unwrap_or_else(&initializer)))
            }),
        )
    }

    /// The name of the store of an aggregation materialized as `materialized`: its own, or
    /// one generated with `prefix`.
    pub(crate) fn store_name<VA>(
        &self,
        materialized: &Materialized<K, VA>,
        prefix: &str,
    ) -> String {
        match materialized.name() {
            Some(name) => name.to_string(),
            None => self.stream.state.borrow_mut().name(prefix),
        }
    }

    /// What an aggregation into store `store_name` reads: the stream, through a
    /// repartition topic when its keys may have changed, named as Kafka Streams names it
    /// (by the grouping, else by the store).
    pub(crate) fn input(&self, store_name: &str) -> KStream<K, V> {
        if !self.repartition {
            return self.stream.clone();
        }
        let name = self
            .grouped
            .name
            .clone()
            .unwrap_or_else(|| store_name.to_string());
        self.stream
            .repartition_with_serdes(Repartitioned::as_(&name), self.grouped.serdes())
    }

    /// The builder's state the grouped stream belongs to.
    pub(crate) fn state(&self) -> &std::rc::Rc<std::cell::RefCell<crate::dsl::builder::DslState>> {
        self.stream.state()
    }

    /// The serdes the grouping sets, for the store where it sets none.
    pub(crate) fn grouped_serdes(&self) -> (Option<&SharedSerde<K>>, Option<&SharedSerde<V>>) {
        (
            self.grouped.key_serde.as_ref(),
            self.grouped.value_serde.as_ref(),
        )
    }

    fn aggregated<VA: DefaultSerde + Clone>(
        &self,
        materialized: Materialized<K, VA>,
        step: Step<K, V, VA>,
    ) -> KTable<K, VA> {
        let store_name = self.store_name(&materialized, "KSTREAM-AGGREGATE-STATE-STORE");
        let input = self.input(&store_name);
        let store = materialized.into_store(store_name);
        materialized_table(
            &input.state,
            input.node,
            "KSTREAM-AGGREGATE",
            store,
            move |store| Aggregate {
                store,
                step: step.clone(),
                // As Kafka Streams: a record without a key or a value has nothing to add.
                unusable: "an aggregation needs a key and a value",
            },
        )
    }
}

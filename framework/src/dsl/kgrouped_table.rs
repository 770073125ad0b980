//! `KTable::group_by` and the aggregations of a grouped table: each row counts under its
//! new key, and a changed or deleted row is taken back from the old one (the subtractor),
//! as Kafka Streams' `KGroupedTable`.

use std::fmt;
use std::sync::Arc;

use super::ktable::{Change, ChangeSerde, KTable};
use super::table_store::{Aggregate, Step, materialized_table};
use super::{Grouped, KStream, Materialized, Repartitioned};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::{DefaultSerde, SharedSerde};

/// A table's rows regrouped by a new key, ready to aggregate (Kafka Streams'
/// `KGroupedTable`).
pub struct KGroupedTable<K, V> {
    /// The rows' changes under their new keys, through the repartition topic.
    changes: KStream<K, Change<V>>,
    /// The grouping's serdes: the aggregations' stores' where their `Materialized` sets none.
    keys: SharedSerde<K>,
    values: SharedSerde<V>,
}

impl<K, V> fmt::Debug for KGroupedTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KGroupedTable").finish_non_exhaustive()
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The rows regrouped by `selector(key, value) -> (new key, new value)`, through a
    /// repartition topic named and written as `grouped` says (Kafka Streams'
    /// `KTable#groupBy`).
    pub fn group_by_with<KR, VR>(
        &self,
        selector: impl Fn(&K, &V) -> (KR, VR) + Send + Sync + 'static,
        grouped: Grouped<KR, VR>,
    ) -> KGroupedTable<KR, VR>
    where
        KR: DefaultSerde + Clone + PartialEq,
        VR: DefaultSerde + Clone,
    {
        // Taking a row back from its old group needs the old value.
        self.enable_old_values();
        let selector = Arc::new(selector);
        let node = self.then("KTABLE-SELECT", move || Select(selector.clone()));
        let name = match grouped.name.clone() {
            Some(name) => name,
            None => self
                .state()
                .borrow_mut()
                .name("KTABLE-AGGREGATE-STATE-STORE"),
        };
        let (keys, values) = grouped.serdes();
        let changes = KStream::<KR, Change<VR>>::new(self.state().clone(), node)
            .repartition_with_serdes(
                Repartitioned::as_(&name),
                (keys.clone(), ChangeSerde::shared(values.clone())),
            );
        KGroupedTable {
            changes,
            keys,
            values,
        }
    }

    /// [`group_by_with`](Self::group_by_with) with a generated repartition name.
    pub fn group_by<KR, VR>(
        &self,
        selector: impl Fn(&K, &V) -> (KR, VR) + Send + Sync + 'static,
    ) -> KGroupedTable<KR, VR>
    where
        KR: DefaultSerde + Clone + PartialEq,
        VR: DefaultSerde + Clone,
    {
        self.group_by_with(selector, Grouped::default())
    }
}

/// Sends each row's old value to be taken back under its old key, then its new value to be
/// added under its new key; when both keys are the same, one change carries both (Kafka
/// Streams since KIP-904), so downstream never sees the aggregate without the row.
struct Select<F>(Arc<F>);

impl<K, V, KR, VR, F> Processor<K, Change<V>, KR, Change<VR>> for Select<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    KR: Clone + PartialEq + 'static,
    VR: Clone + 'static,
    F: Fn(&K, &V) -> (KR, VR) + 'static,
{
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<KR, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            return Ok(());
        };
        let old = change.old.as_ref().map(|old| (self.0)(key, old));
        let new = change.new.as_ref().map(|new| (self.0)(key, new));
        match (old, new) {
            (Some((old_key, old)), Some((new_key, new))) if old_key == new_key => {
                let change = Change {
                    new: Some(new),
                    old: Some(old),
                };
                ctx.forward(Record::new(new_key, change, record.timestamp))
            }
            (old, new) => {
                if let Some((old_key, old)) = old {
                    let change = Change {
                        new: None,
                        old: Some(old),
                    };
                    ctx.forward(Record::new(old_key, change, record.timestamp))?;
                }
                if let Some((new_key, new)) = new {
                    let change = Change {
                        new: Some(new),
                        old: None,
                    };
                    ctx.forward(Record::new(new_key, change, record.timestamp))?;
                }
                Ok(())
            }
        }
    }
}

/// How a table aggregation updates a key's aggregate (if any) with a row's change: the old
/// value taken back, the new value added.
type TableStep<K, V, VA> = Step<K, Change<V>, VA>;

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KGroupedTable<K, V> {
    /// The number of rows under each key.
    pub fn count(&self) -> KTable<K, i64> {
        self.count_with(Materialized::default())
    }

    /// [`count`](Self::count) into the store `materialized` describes.
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<K, i64> {
        self.aggregate_with(|| 0, |_, _, n| n + 1, |_, _, n| n - 1, materialized)
    }

    /// Each key's rows combined with `adder(aggregate, value)`, the first row's value being
    /// the first aggregate; a row that leaves the key (changed or deleted) is taken back
    /// with `subtractor(aggregate, old value)` (Kafka Streams' `KGroupedTable#reduce`).
    pub fn reduce(
        &self,
        adder: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> KTable<K, V> {
        self.reduce_with(adder, subtractor, Materialized::default())
    }

    /// [`reduce`](Self::reduce) into the store `materialized` describes.
    pub fn reduce_with(
        &self,
        adder: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        subtractor: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<K, V> {
        self.aggregated(
            materialized.or_serdes(None, Some(&self.values)),
            Arc::new(move |_, change, aggregate| {
                let aggregate = match (&change.old, aggregate) {
                    (Some(old), Some(aggregate)) => Some(subtractor(&aggregate, old)),
                    (_, aggregate) => aggregate,
                };
                match (&change.new, aggregate) {
                    (Some(new), Some(aggregate)) => Some(adder(&aggregate, new)),
                    (Some(new), None) => Some(new.clone()),
                    (None, aggregate) => aggregate,
                }
            }),
        )
    }

    /// Each key's rows folded with `adder(key, value, aggregate)` from `initializer()`; a
    /// row that leaves the key (changed or deleted) is taken back with
    /// `subtractor(key, old value, aggregate)`.
    pub fn aggregate<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<K, VA> {
        self.aggregate_with(initializer, adder, subtractor, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the store `materialized` describes.
    pub fn aggregate_with<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        adder: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        subtractor: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        // As Kafka Streams: an old value is taken back only from an aggregate that exists;
        // a new value is added to the aggregate, or to `initializer()` when there is none.
        self.aggregated(
            materialized,
            Arc::new(move |key, change, aggregate| {
                let aggregate = match (&change.old, aggregate) {
                    (Some(old), Some(aggregate)) => Some(subtractor(key, old, aggregate)),
                    (_, aggregate) => aggregate,
                };
                match &change.new {
                    Some(new) => Some(adder(key, new, aggregate.unwrap_or_else(&initializer))),
                    None => aggregate,
                }
            }),
        )
    }

    fn aggregated<VA: DefaultSerde + Clone>(
        &self,
        materialized: Materialized<K, VA>,
        step: TableStep<K, V, VA>,
    ) -> KTable<K, VA> {
        let state = self.changes.state().clone();
        let store_name = match materialized.name() {
            Some(name) => name.to_string(),
            None => state.borrow_mut().name("KTABLE-AGGREGATE-STATE-STORE"),
        };
        let store = materialized
            .or_serdes(Some(&self.keys), None)
            .into_store(store_name);
        let parent = self.changes.node();
        materialized_table(&state, parent, "KTABLE-AGGREGATE", store, move |store| {
            Aggregate {
                store,
                step: step.clone(),
                unusable: "a table aggregation needs a key",
            }
        })
    }
}

//! The store of a table or aggregation processor, and how its changes go downstream: each
//! update is written to the store; when the store caches, its record cache holds the update
//! until the commit (or an eviction) and hands it to a listener that forwards it (Kafka
//! Streams' `TimestampedCacheFlushListener`), else the processor forwards it at once.
//!
//! The stores of tables and aggregations are timestamped: each value is kept with the
//! timestamp of its last update, and a change is forwarded with that timestamp.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::builder::DslState;
use super::ktable::{Change, KTable};
use crate::header::Headers;
use crate::processor::Processor;
use crate::processor::{ProcessError, ProcessorContext, Record};
use crate::state::StoreBuilder;
use crate::state::{TimestampedKeyValueStore, ValueAndTimestamp};
use crate::topology::graph::NodeId;

/// The store of a table processor, opened in its `init`.
pub(crate) struct TableStore<K, V> {
    name: Arc<str>,
    store: Option<TimestampedKeyValueStore<K, V>>,
    /// Whether the store's cache forwards the changes (else the processor does).
    cached: bool,
}

impl<K: Clone + 'static, V: Clone + 'static> TableStore<K, V> {
    /// The store `name`, opened by [`open`](Self::open) in the processor's `init`.
    pub(crate) fn new(name: Arc<str>) -> Self {
        Self {
            name,
            store: None,
            cached: false,
        }
    }

    /// Opens the store from the processor's context; a caching store forwards what it
    /// flushes to the processor's children.
    pub(crate) fn open(
        &mut self,
        ctx: &ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.timestamped_key_value_store::<K, V>(&self.name)?;
        let forwarder = ctx.forwarder();
        let serdes = store.view().clone();
        self.cached = store.set_flush_listener(Box::new(move |key, new, old, timestamp| {
            let key = serdes.key_of(key)?;
            let new = new.map(|bytes| serdes.value_of(bytes)).transpose()?;
            let old = old.map(|bytes| serdes.value_of(bytes)).transpose()?;
            // The update carries the timestamp of its new value, as in Kafka Streams.
            let timestamp = new.as_ref().map_or(timestamp, |n| n.timestamp);
            let change = Change {
                new: new.map(|n| n.value),
                old: old.map(|o| o.value),
            };
            forwarder.forward(Record::new(key, change, timestamp))
        }));
        self.store = Some(store);
        Ok(())
    }

    fn store(&self) -> Result<&TimestampedKeyValueStore<K, V>, ProcessError> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }

    /// The value of `key` now, with its timestamp.
    pub(crate) fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<V>>, ProcessError> {
        Ok(self.store()?.get(key)?)
    }

    /// Replaces `key`'s aggregate by `step(the old one)`, stamped with the larger of
    /// `timestamp` and the old aggregate's: as in Kafka Streams, an aggregate is as new as
    /// the newest record in it.
    pub(crate) fn aggregate(
        &self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        (timestamp, headers): (i64, &Headers),
        step: impl FnOnce(Option<V>) -> Option<V>,
    ) -> Result<(), ProcessError> {
        let old = self.get(key)?;
        let new = step(old.as_ref().map(|o| o.value.clone()));
        let timestamp = old
            .as_ref()
            .map_or(timestamp, |o| o.timestamp.max(timestamp));
        self.write(ctx, key, new, old, timestamp, headers)
    }

    /// Sets `key` to `new` as of `timestamp` (`None`: deletes it), which replaces `old`,
    /// and forwards the change (with `headers`) unless the store's cache will. Kafka Streams
    /// forwards every change of a store without a cache, a delete of an absent key too.
    pub(crate) fn write(
        &self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: &K,
        new: Option<V>,
        old: Option<ValueAndTimestamp<V>>,
        timestamp: i64,
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        let store = self.store()?;
        let new = new.map(|value| ValueAndTimestamp::make(value, timestamp));
        match &new {
            Some(value) => store.put(key, value)?,
            None => store.remove(key)?,
        }
        if self.cached {
            return Ok(());
        }
        let change = Change {
            new: new.map(|n| n.value),
            old: old.map(|o| o.value),
        };
        let record =
            Record::from_parts(Some(key.clone()), Some(change), timestamp, headers.clone());
        ctx.forward(record)
    }
}

/// Adds the processor `prefix-<n>` under `parent` with `store` connected, made by
/// `factory` from the store's name, and returns the table it keeps there (an aggregation's,
/// or a named table's).
pub(crate) fn materialized_table<P, KIn, VIn, K, V>(
    state: &Rc<RefCell<DslState>>,
    parent: NodeId,
    prefix: &str,
    store: StoreBuilder<K, V>,
    factory: impl Fn(Arc<str>) -> P + Send + Sync + 'static,
) -> KTable<K, V>
where
    P: Processor<KIn, VIn, K, Change<V>>,
    KIn: 'static,
    VIn: 'static,
    K: Clone + 'static,
    V: Clone + 'static,
{
    let store_name: Arc<str> = store.name().into();
    let node = {
        let mut dsl = state.borrow_mut();
        let name = dsl.name(prefix);
        let processor_store = store_name.clone();
        let added = dsl.add_processor_with_store(
            &name,
            &[parent],
            move || factory(processor_store.clone()),
            store,
        );
        dsl.or_report(added, parent)
    };
    KTable::materialized(state.clone(), node, store_name)
}

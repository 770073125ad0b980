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
use std::sync::atomic::{AtomicBool, Ordering};

use super::builder::DslState;
use super::ktable::{Change, KTable, ValueGetterSupplier};
use crate::header::Headers;
use crate::processor::Processor;
use crate::processor::{ProcessError, ProcessorContext, Record};
use crate::state::{ReadOnlyKeyValueStore, StoreBuilder, StoreDef, StoreError};
use crate::state::{TimestampedKeyValueStore, ValueAndTimestamp};
use crate::topology::graph::NodeId;

/// The store of a table processor, opened in its `init`.
pub(crate) struct TableStore<K, V> {
    name: Arc<str>,
    store: Option<TimestampedKeyValueStore<K, V>>,
    /// Whether the store's cache forwards the changes (else the processor does).
    cached: bool,
    /// Whether the changes forwarded carry old values: only when an operator downstream
    /// reads them (Kafka Streams' `sendOldValues`), else an old value is never copied.
    sends_old: bool,
}

impl<K: Clone + 'static, V: Clone + 'static> TableStore<K, V> {
    /// The store `name`, opened by [`open`](Self::open) in the processor's `init`; its
    /// changes carry old values when `sends_old`.
    pub(crate) fn new(name: Arc<str>, sends_old: bool) -> Self {
        Self {
            name,
            store: None,
            cached: false,
            sends_old,
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
        let sends_old = self.sends_old;
        self.cached =
            store.set_flush_listener(Box::new(move |key, new, old, timestamp, headers| {
                let key = serdes.key_of(key)?;
                let (change, timestamp) = flushed(&serdes, (new, old), sends_old, timestamp)?;
                // With the headers of the record that made the update, as Kafka Streams
                // forwards a cache entry with its record context.
                forwarder.forward(Record::from_parts(
                    Some(key),
                    Some(change),
                    timestamp,
                    headers.clone(),
                ))
            }));
        self.store = Some(store);
        Ok(())
    }

    fn store(&self) -> Result<&TimestampedKeyValueStore<K, V>, ProcessError> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }

    /// Replaces `key`'s aggregate by `step(key, the old one)`, stamped with the larger of
    /// `timestamp` and the old aggregate's: as in Kafka Streams, an aggregate is as new as
    /// the newest record in it.
    pub(crate) fn aggregate(
        &self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: K,
        (timestamp, headers): (i64, Headers),
        step: impl FnOnce(&K, Option<V>) -> Option<V>,
    ) -> Result<(), ProcessError> {
        self.update(ctx, key, headers, |key, old| {
            let timestamp = old
                .as_ref()
                .map_or(timestamp, |o| o.timestamp.max(timestamp));
            (step(key, old.map(|o| o.value)), timestamp)
        })
    }

    /// Sets `key` to `new` as of `timestamp` (`None`: deletes it), a table source's row.
    pub(crate) fn replace(
        &self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: K,
        new: Option<V>,
        (timestamp, headers): (i64, Headers),
    ) -> Result<(), ProcessError> {
        self.update(ctx, key, headers, |_, _| (new, timestamp))
    }

    /// Sets `key` to what `next(key, its value now)` makes of it, `(value, timestamp)` (a
    /// value of `None` deletes it), and forwards the change (with `headers`) unless the
    /// store's cache will. The key is serialized once, for the read and the write. Kafka
    /// Streams forwards every change of a store without a cache, a delete of an absent key
    /// too.
    fn update(
        &self,
        ctx: &mut ProcessorContext<K, Change<V>>,
        key: K,
        headers: Headers,
        next: impl FnOnce(&K, Option<ValueAndTimestamp<V>>) -> (Option<V>, i64),
    ) -> Result<(), ProcessError> {
        let store = self.store()?;
        let (new, old, timestamp) = store.with_key(&key, |bytes| {
            let now = store.get_serialized(bytes)?;
            // The old value goes on only when it is forwarded here and read downstream.
            let old = match &now {
                Some(now) if self.sends_old && !self.cached => Some(now.value.clone()),
                _ => None,
            };
            let (new, timestamp) = next(&key, now);
            let new = match new {
                Some(value) => {
                    let stored = ValueAndTimestamp::make(value, timestamp);
                    store.put_serialized(bytes, &stored, &headers)?;
                    Some(stored.value)
                }
                None => {
                    store.remove_serialized(bytes, &headers)?;
                    None
                }
            };
            Ok::<_, ProcessError>((new, old, timestamp))
        })?;
        if self.cached {
            return Ok(());
        }
        let change = Change { new, old };
        ctx.forward(Record::from_parts(
            Some(key),
            Some(change),
            timestamp,
            headers,
        ))
    }
}

/// The change a cache's flush of a timestamped store hands on, from the stored `new` and
/// `old` values (the old one read only when `sends_old`), and its timestamp: its new
/// value's, as Kafka Streams' `TimestampedCacheFlushListener` stamps it, else the update's.
pub(crate) fn flushed<K: 'static, V: 'static>(
    serdes: &ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>,
    (new, old): (Option<&[u8]>, Option<&[u8]>),
    sends_old: bool,
    timestamp: i64,
) -> Result<(Change<V>, i64), StoreError> {
    let new = new.map(|bytes| serdes.value_of(bytes)).transpose()?;
    let old = match old.filter(|_| sends_old) {
        Some(bytes) => Some(serdes.value_of(bytes)?.value),
        None => None,
    };
    let timestamp = new.as_ref().map_or(timestamp, |n| n.timestamp);
    let change = Change {
        new: new.map(|n| n.value),
        old,
    };
    Ok((change, timestamp))
}

/// Adds the processor `prefix-<n>` under `parent` with `store` connected, made by
/// `factory` from its [`TableStore`], and returns the table it keeps there (an
/// aggregation's, or a named table's).
pub(crate) fn materialized_table<P, KIn, VIn, K, V>(
    state: &Rc<RefCell<DslState>>,
    parent: NodeId,
    prefix: &str,
    store: StoreBuilder<K, V>,
    factory: impl Fn(TableStore<K, V>) -> P + Send + Sync + 'static,
) -> KTable<K, V>
where
    P: Processor<KIn, VIn, K, Change<V>>,
    KIn: 'static,
    VIn: 'static,
    K: Clone + 'static,
    V: Clone + 'static,
{
    let store_name: Arc<str> = store.name().into();
    let getter = ValueGetterSupplier::store(store_name.clone());
    stateful_table(
        state,
        parent,
        prefix,
        store.into_def(),
        getter,
        move |sends_old| factory(TableStore::new(store_name.clone(), sends_old)),
    )
}

/// Adds the processor `prefix-<n>` under `parent` with `store` connected, made by
/// `factory` (told whether to forward old values), and returns the table it keeps there,
/// read by `getter`.
pub(crate) fn stateful_table<P, KIn, VIn, K, V>(
    state: &Rc<RefCell<DslState>>,
    parent: NodeId,
    prefix: &str,
    store: StoreDef,
    getter: ValueGetterSupplier<K, V>,
    factory: impl Fn(bool) -> P + Send + Sync + 'static,
) -> KTable<K, V>
where
    P: Processor<KIn, VIn, K, Change<V>>,
    KIn: 'static,
    VIn: 'static,
    K: Clone + 'static,
    V: Clone + 'static,
{
    let store_name = store.name.clone();
    // Set while the topology is built, by the operators downstream that read old values;
    // read when tasks are made.
    let sends_old = Arc::new(AtomicBool::new(false));
    let node = {
        let mut dsl = state.borrow_mut();
        let name = dsl.name(prefix);
        let flag = sends_old.clone();
        let added = dsl.add_processor(
            &name,
            &[parent],
            move || factory(flag.load(Ordering::Relaxed)),
            Some(store),
        );
        dsl.or_report(added, parent)
    };
    KTable::materialized(state.clone(), node, store_name, sends_old, getter)
}

/// One step of an aggregation: a key's new aggregate (none: it has none) from a record's
/// value and the old aggregate.
pub(crate) type Step<K, V, VA> = Arc<dyn Fn(&K, &V, Option<VA>) -> Option<VA> + Send + Sync>;

/// Applies an aggregation step to each record, keeps the aggregate in its store and forwards
/// the change: the processor of the aggregations of grouped streams and of grouped tables.
pub(crate) struct Aggregate<K, V, VA> {
    pub(crate) store: TableStore<K, VA>,
    pub(crate) step: Step<K, V, VA>,
    /// Why a record without a key or a value is dropped, for the log.
    pub(crate) unusable: &'static str,
}

impl<K, V, VA> Processor<K, V, K, Change<VA>> for Aggregate<K, V, VA>
where
    K: Clone + 'static,
    V: 'static,
    VA: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<VA>>) -> Result<(), ProcessError> {
        self.store.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, Change<VA>>,
    ) -> Result<(), ProcessError> {
        let Record {
            key: Some(key),
            value: Some(value),
            timestamp,
            headers,
        } = record
        else {
            ctx.drop_record(self.unusable);
            return Ok(());
        };
        self.store
            .aggregate(ctx, key, (timestamp, headers), |key, old| {
                (self.step)(key, &value, old)
            })
    }
}

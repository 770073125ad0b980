//! `KTable<K, V>`: a changelog stream seen as a table, the latest value per key, and its
//! operators.
//!
//! Between the processors of a table flow changes, the new value of a key and the one it
//! replaces (Kafka Streams' `Change`), so that operators downstream can take back what an
//! old value contributed. A new value of `None` is a delete (a tombstone).

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::KStream;
use super::builder::DslState;
use super::table_store::TableStore;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::topology::graph::NodeId;

/// The new value of a key and the one it replaces; `None` is no value (deleted or absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change<V> {
    pub(crate) new: Option<V>,
    pub(crate) old: Option<V>,
}

/// A table: the latest value of each key of a changelog stream (Kafka Streams' `KTable`).
pub struct KTable<K, V> {
    state: Rc<RefCell<DslState>>,
    /// The node that forwards the table's changes, `(K, Change<V>)`.
    node: NodeId,
    /// The store that materializes it, when one does.
    store: Option<Arc<str>>,
    _records: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            node: self.node,
            store: self.store.clone(),
            _records: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for KTable<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KTable")
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    pub(crate) fn new(state: Rc<RefCell<DslState>>, node: NodeId, store: Option<Arc<str>>) -> Self {
        Self {
            state,
            node,
            store,
            _records: PhantomData,
        }
    }

    /// The name of the store that materializes this table, if one does: the name to query.
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The builder's state this table belongs to.
    pub(crate) fn state(&self) -> &Rc<RefCell<DslState>> {
        &self.state
    }

    /// Adds a processor of this table's changes, named `PREFIX-<n>`.
    pub(crate) fn then<P, KOut, VOut>(
        &self,
        prefix: &str,
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> NodeId
    where
        P: Processor<K, Change<V>, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        let mut state = self.state.borrow_mut();
        let name = state.name(prefix);
        state
            .add_processor(&name, &[self.node], factory)
            .unwrap_or_else(|e| {
                state.errors.push(e);
                self.node
            })
    }

    /// The table's updates as a stream: each new value of a key, a delete as a tombstone.
    pub fn to_stream(&self) -> KStream<K, V> {
        let node = self.then("KTABLE-TOSTREAM", || ToStream);
        KStream::new(self.state.clone(), node)
    }

    /// The rows for which `predicate(key, value)` holds; a row that stops matching is
    /// deleted downstream.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let predicate = Arc::new(predicate);
        let node = self.then("KTABLE-FILTER", move || Filter(predicate.clone()));
        KTable::new(self.state.clone(), node, None)
    }

    /// Each row's value replaced by `mapper(value)`.
    pub fn map_values<VR: Clone + 'static>(
        &self,
        mapper: impl Fn(&V) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let mapper = Arc::new(mapper);
        let node = self.then("KTABLE-MAPVALUES", move || MapValues(mapper.clone()));
        KTable::new(self.state.clone(), node, None)
    }
}

struct ToStream;

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, Change<V>, K, V> for ToStream {
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        let new = record.value.as_ref().and_then(|c| c.new.clone());
        ctx.forward(record.with_value(new))
    }
}

struct Filter<F>(Arc<F>);

impl<K, V, F> Processor<K, Change<V>, K, Change<V>> for Filter<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(&K, &V) -> bool + 'static,
{
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let (Some(key), Some(change)) = (&record.key, &record.value) else {
            return Ok(());
        };
        let keep = |v: &Option<V>| v.clone().filter(|v| (self.0)(key, v));
        let change = Change {
            new: keep(&change.new),
            old: keep(&change.old),
        };
        if change.new.is_none() && change.old.is_none() {
            return Ok(());
        }
        ctx.forward(record.with_value(Some(change)))
    }
}

struct MapValues<F>(Arc<F>);

impl<K, V, VR, F> Processor<K, Change<V>, K, Change<VR>> for MapValues<F>
where
    K: Clone + 'static,
    V: 'static,
    VR: Clone + 'static,
    F: Fn(&V) -> VR + 'static,
{
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let change = record.value.as_ref().map(|c| Change {
            new: c.new.as_ref().map(|v| (self.0)(v)),
            old: c.old.as_ref().map(|v| (self.0)(v)),
        });
        ctx.forward(record.with_value(change))
    }
}

/// Puts each record of a table's topic into its store and forwards the change.
pub(crate) struct TableSource<K, V> {
    pub(crate) store: TableStore<K, V>,
}

impl<K, V> Processor<K, V, K, Change<V>> for TableSource<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<V>>) -> Result<(), ProcessError> {
        self.store.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let Some(key) = &record.key else {
            ctx.drop_record("a table row needs a key");
            return Ok(());
        };
        let old = self.store.get(key)?;
        self.store.write(
            ctx,
            key,
            record.value.clone(),
            old,
            record.timestamp,
            &record.headers,
        )
    }
}

//! `KTable<K, V>`: a changelog stream seen as a table, the latest value per key, and its
//! operators, one a file: `source` (a topic or a stream as a table), `filter`, `map_values`,
//! `suppress`, `to_stream`; `change` is what flows between them, `getter` how a task reads a table's
//! current values. The joins of tables live with the other joins (`dsl::joins`).
//!
//! Between the processors of a table flow changes, the new value of a key and the one it
//! replaces (Kafka Streams' `Change`), so that operators downstream can take back what an
//! old value contributed. A new value of `None` is a delete (a tombstone).
//!
//! As in Kafka Streams, a table from a topic or a stream without a store name is kept in no
//! store until an operator needs one (a grouping, which needs old values, or a value getter);
//! until then it cannot tell old values, so its `filter` turns every row that fails into a
//! tombstone, and `map_values` passes on every delete.

mod change;
mod filter;
mod getter;
mod map_values;
mod source;
mod suppress;
mod to_stream;

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

pub(crate) use change::{Change, ChangeSerde};
pub(crate) use getter::{ValueGetter, ValueGetterSupplier};
pub(crate) use source::{table, table_named};
pub use suppress::{BufferConfig, Suppressed};

use super::builder::DslState;
use crate::processor::Processor;
use crate::serde::SharedSerde;
use crate::state::StoreDef;
use crate::topology::graph::NodeId;

/// Where a table's rows come from, as far as old values and stores go: the table at the
/// root of a line of `filter`s and `map_values`.
#[derive(Debug)]
pub(crate) struct TableRoot {
    /// The processor that keeps (or would keep) the root table.
    node_name: String,
    /// The store a source table gets when one is needed; `None` once it has it (or for a
    /// root that always has one).
    pending: Option<StoreDef>,
    /// Whether the root is kept in a store: then the tables of its line know old values.
    /// Read by their processors when tasks are made.
    materialized: Arc<AtomicBool>,
    /// Whether an operator of its line reads old values, so that the root forwards them
    /// (Kafka Streams' `sendOldValues`). Read by the root's processor when tasks are made.
    sends_old: Arc<AtomicBool>,
}

impl DslState {
    /// Registers a root table kept by `node_name`: in a store already, or in `pending` once
    /// one is needed; `materialized` says which, and its processors read it, as the root's
    /// reads `sends_old`.
    pub(crate) fn add_table_root(
        &mut self,
        node_name: &str,
        pending: Option<StoreDef>,
        materialized: Arc<AtomicBool>,
        sends_old: Arc<AtomicBool>,
    ) -> usize {
        self.tables.push(TableRoot {
            node_name: node_name.to_string(),
            pending,
            materialized,
            sends_old,
        });
        self.tables.len() - 1
    }

    /// Gives root table `root` its store if it has none yet (Kafka Streams'
    /// `enableSendingOldValues(true)`): from now on its line knows old values.
    pub(crate) fn materialize(&mut self, root: usize) {
        let Some(table) = self.tables.get_mut(root) else {
            return;
        };
        table.sends_old.store(true, Ordering::Relaxed);
        if let Some(def) = table.pending.take() {
            let node = table.node_name.clone();
            table.materialized.store(true, Ordering::Relaxed);
            if let Err(e) = self.graph.add_store(def, &[&node]) {
                self.errors.push(e);
            }
        }
    }

    /// The flag of root `root` that says whether its line knows old values; the root
    /// forwards them from now on, to whoever asks.
    pub(crate) fn old_values(&self, root: usize) -> Arc<AtomicBool> {
        match self.tables.get(root) {
            Some(table) => {
                table.sends_old.store(true, Ordering::Relaxed);
                table.materialized.clone()
            }
            None => Arc::new(AtomicBool::new(true)),
        }
    }
}

/// A table: the latest value of each key of a changelog stream (Kafka Streams' `KTable`).
pub struct KTable<K, V> {
    state: Rc<RefCell<DslState>>,
    /// The node that forwards the table's changes, `(K, Change<V>)`.
    node: NodeId,
    /// The store to query, when it was named (or belongs to an aggregation).
    store: Option<Arc<str>>,
    /// The root of the table's line, in the builder's state.
    root: usize,
    /// How a task reads the table's current values.
    getter: ValueGetterSupplier<K, V>,
    /// Of a windowed aggregation's table (and those derived from it).
    windowing: Option<Windowing<K>>,
    _records: PhantomData<fn() -> (K, V)>,
}

/// What a windowed aggregation tells the tables made from it: the serde that reads its
/// keys back whole (Kafka Streams' windowed key serdes, with the window size), and when its
/// windows close.
pub(crate) struct Windowing<K> {
    pub(crate) keys: SharedSerde<K>,
    /// A window closes this long after its end (a session's: the gap plus the grace).
    pub(crate) grace_ms: i64,
}

impl<K> Clone for Windowing<K> {
    fn clone(&self) -> Self {
        Self {
            keys: self.keys.clone(),
            grace_ms: self.grace_ms,
        }
    }
}

impl<K, V> Clone for KTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            node: self.node,
            store: self.store.clone(),
            root: self.root,
            getter: self.getter.clone(),
            windowing: self.windowing.clone(),
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
    /// The table forwarded by `node` and kept in `store` (always, as an aggregation's):
    /// queryable by that name, read by `getter`; its processor forwards old values once
    /// `sends_old` is set.
    pub(crate) fn materialized(
        state: Rc<RefCell<DslState>>,
        node: NodeId,
        store: Arc<str>,
        sends_old: Arc<AtomicBool>,
        getter: ValueGetterSupplier<K, V>,
    ) -> Self {
        Self::knowing_old_values(state, node, Some(store), sends_old, getter)
    }

    /// The table forwarded by `node`, kept in no store but computed from tables that know
    /// their old values (a join's): read by `getter`; its processors forward old values
    /// once `sends_old` is set.
    pub(crate) fn computed(
        state: Rc<RefCell<DslState>>,
        node: NodeId,
        sends_old: Arc<AtomicBool>,
        getter: ValueGetterSupplier<K, V>,
    ) -> Self {
        Self::knowing_old_values(state, node, None, sends_old, getter)
    }

    /// A table that roots a line of tables knowing their old values.
    fn knowing_old_values(
        state: Rc<RefCell<DslState>>,
        node: NodeId,
        store: Option<Arc<str>>,
        sends_old: Arc<AtomicBool>,
        getter: ValueGetterSupplier<K, V>,
    ) -> Self {
        let node_name = state.borrow().graph.node(node).name.to_string();
        let materialized = Arc::new(AtomicBool::new(true));
        let root = state
            .borrow_mut()
            .add_table_root(&node_name, None, materialized, sends_old);
        Self {
            state,
            node,
            store,
            root,
            getter,
            windowing: None,
            _records: PhantomData,
        }
    }

    /// The node that forwards the table's changes.
    pub(crate) fn node(&self) -> NodeId {
        self.node
    }

    /// The table, told it is a windowed aggregation's.
    pub(crate) fn with_windowing(mut self, windowing: Windowing<K>) -> Self {
        self.windowing = Some(windowing);
        self
    }

    /// A table computed by `node` from this one's rows, read by `getter`.
    fn derived<VR: Clone + 'static>(
        &self,
        node: NodeId,
        getter: ValueGetterSupplier<K, VR>,
    ) -> KTable<K, VR> {
        KTable {
            state: self.state.clone(),
            node,
            store: None,
            root: self.root,
            getter,
            windowing: self.windowing.clone(),
            _records: PhantomData,
        }
    }

    /// The name of the store that materializes this table, if one does and it was named:
    /// the name to query.
    pub fn queryable_store_name(&self) -> Option<&str> {
        self.store.as_deref()
    }

    /// The builder's state this table belongs to.
    pub(crate) fn state(&self) -> &Rc<RefCell<DslState>> {
        &self.state
    }

    /// Makes the table's line know old values, giving its root a store if it has none (an
    /// operator downstream takes back what old values contributed).
    pub(crate) fn enable_old_values(&self) {
        self.state.borrow_mut().materialize(self.root);
    }

    /// How a processor reads this table's current values (its root gets a store if it has
    /// none); the processor must be connected to the supplier's stores, as the joins with
    /// tables are.
    pub(crate) fn value_getter(&self) -> ValueGetterSupplier<K, V> {
        self.enable_old_values();
        self.getter.clone()
    }

    /// Whether this table's line knows old values, as its processors see it; asked by an
    /// operator that reads them, which the root then forwards.
    fn old_values(&self) -> Arc<AtomicBool> {
        self.state.borrow().old_values(self.root)
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
        let added = state.add_processor(&name, &[self.node], factory, None);
        state.or_report(added, self.node)
    }
}

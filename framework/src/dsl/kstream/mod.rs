//! `KStream<K, V>`: a stream of records, and its operators, one file each.
//!
//! Closures of the operators see a record's key as `Option<&K>` (keys may be null) and its
//! value as `&V`. A record whose value is null, a tombstone, skips value closures and goes
//! on unchanged, so deletes still reach the tables and compacted topics downstream:
//!
//! | operator | a tombstone |
//! |----------|-------------|
//! | `filter`, `filter_not`, `peek`, `merge`, `to`, `process` | passes on unchanged |
//! | `map_values`, `flat_map_values` | passes on as one tombstone |
//! | `foreach` | is not passed to the action |
//! | `map`, `flat_map`, `select_key` | is dropped, counted and logged: the new key needs the value |
//! | `repartition` | goes through the repartition topic unchanged |
//!
//! `group_by_key` and `group_by` make a [`KGroupedStream`] to aggregate; `cogroup` folds
//! several grouped streams into one aggregate ([`CogroupedKStream`]).
//!
//! After an operator that may change keys (`map`, `flat_map`, `select_key`, `process`),
//! records may sit in a partition other than their key's: as in Kafka Streams,
//! `group_by_key` and `to_table` downstream then send them through a repartition topic
//! first (`repartition` itself puts them back in place).

mod cogroup;
mod filter;
mod flat_map_values;
mod group;
mod map;
mod map_values;
mod merge;
mod peek;
mod repartition;
mod split;
mod to;

pub use cogroup::{
    CogroupWindows, CogroupedKStream, SessionWindowedCogroupedKStream, TimeWindowedCogroupedKStream,
};
pub use group::KGroupedStream;
pub(crate) use merge::PassThrough;
pub use repartition::Repartitioned;
pub use split::BranchedKStream;

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;

use super::builder::DslState;
use crate::processor::Processor;
use crate::topology::graph::NodeId;

/// A stream of records with keys of `K` and values of `V`. Cheap to clone: each clone adds
/// operators under the same node, so one stream can feed several.
pub struct KStream<K, V> {
    state: Rc<RefCell<DslState>>,
    node: NodeId,
    /// Whether an operator upstream may have changed the keys (`map`, `flat_map`,
    /// `select_key`, `process`) since the records were last partitioned by key: a grouping
    /// or table made from this stream then goes through a repartition topic first.
    repartition_required: bool,
    _records: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            node: self.node,
            repartition_required: self.repartition_required,
            _records: PhantomData,
        }
    }
}

impl<K, V> fmt::Debug for KStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = self.state.borrow();
        let name = state
            .graph
            .get(self.node)
            .map_or("<not added>", |n| &*n.name);
        f.debug_tuple("KStream").field(&name).finish()
    }
}

impl<K: 'static, V: 'static> KStream<K, V> {
    pub(crate) fn new(state: Rc<RefCell<DslState>>, node: NodeId) -> Self {
        Self {
            state,
            node,
            repartition_required: false,
            _records: PhantomData,
        }
    }

    /// This stream, its keys maybe changed by the operator that made it.
    fn keys_changed(mut self) -> Self {
        self.repartition_required = true;
        self
    }

    /// Whether an operator upstream may have changed the keys since the records were last
    /// partitioned by key.
    pub(crate) fn repartition_required(&self) -> bool {
        self.repartition_required
    }

    /// The node that forwards this stream's records.
    pub(crate) fn node(&self) -> NodeId {
        self.node
    }

    /// The builder's state this stream belongs to.
    pub(crate) fn state(&self) -> &Rc<RefCell<DslState>> {
        &self.state
    }

    /// Adds a processor made by `factory` under this stream's node, named `PREFIX-<n>`.
    pub(crate) fn then<P, KOut, VOut>(
        &self,
        prefix: &str,
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        let mut state = self.state.borrow_mut();
        let name = state.name(prefix);
        let added = state.add_processor(&name, &[self.node], factory, None);
        self.downstream(&mut state, added)
    }

    /// The stream of the node `added` (or, when it could not be, reported, of this one's),
    /// with this stream's need to repartition.
    fn downstream<KOut: 'static, VOut: 'static>(
        &self,
        state: &mut DslState,
        added: Result<NodeId, crate::topology::TopologyError>,
    ) -> KStream<KOut, VOut> {
        let node = state.or_report(added, self.node);
        KStream {
            repartition_required: self.repartition_required,
            ..KStream::new(self.state.clone(), node)
        }
    }
}

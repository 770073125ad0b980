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

mod filter;
mod flat_map_values;
mod map;
mod map_values;
mod merge;
mod peek;
mod repartition;
mod split;
mod to;

pub use repartition::Repartitioned;
pub use split::BranchedKStream;

use std::cell::RefCell;
use std::fmt;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::builder::DslState;
use crate::processor::Processor;
use crate::topology::graph::{NodeId, NodeKind, RecordType};
use crate::topology::task_builder::processor_build;

/// A stream of records with keys of `K` and values of `V`. Cheap to clone: each clone adds
/// operators under the same node, so one stream can feed several.
pub struct KStream<K, V> {
    state: Rc<RefCell<DslState>>,
    node: NodeId,
    _records: PhantomData<fn() -> (K, V)>,
}

impl<K, V> Clone for KStream<K, V> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            node: self.node,
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
            _records: PhantomData,
        }
    }

    /// Adds a processor made by `factory` under this stream's node, named `PREFIX-<n>`.
    fn then<P, KOut, VOut>(
        &self,
        prefix: &str,
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        self.then_from(prefix, &[], factory)
    }

    /// Adds a processor under this stream's node and the nodes of `others` (of the same type).
    fn then_from<P, KOut, VOut>(
        &self,
        prefix: &str,
        others: &[&KStream<K, V>],
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        let parents: Vec<NodeId> = std::iter::once(self.node)
            .chain(others.iter().map(|s| s.node))
            .collect();
        let name = self.state.borrow_mut().name(prefix);
        self.add_node(&name, &parents, factory)
    }

    /// Adds a processor named `name` under this stream's node.
    fn then_named<P, KOut, VOut>(
        &self,
        name: &str,
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        self.add_node(name, &[self.node], factory)
    }

    fn add_node<P, KOut, VOut>(
        &self,
        name: &str,
        parents: &[NodeId],
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        let mut state = self.state.borrow_mut();
        let build = processor_build::<P, K, V, KOut, VOut>(Arc::new(factory));
        let added = state.graph.add(
            name,
            NodeKind::Processor,
            parents,
            Some(RecordType::of::<K, V>()),
            Some(RecordType::of::<KOut, VOut>()),
            build,
        );
        let node = added.unwrap_or_else(|e| {
            // build() reports it before anything is instantiated from this graph.
            state.errors.push(e);
            self.node
        });
        KStream::new(self.state.clone(), node)
    }
}

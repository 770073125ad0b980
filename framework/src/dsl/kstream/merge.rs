//! `merge` and `process`: join two streams into one; run a user `Processor`.

use super::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::topology::graph::NodeId;

/// Passes every record on.
pub(crate) struct PassThrough;

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, V> for PassThrough {
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        ctx.forward(record)
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// A node named `name` that passes on the records of `parents` (this stream's node and
    /// others of the same record type) as they come: a merge, or a branch of a split.
    pub(super) fn pass_through(&self, name: &str, parents: &[NodeId]) -> Self {
        let mut state = self.state.borrow_mut();
        let added = state.add_processor::<_, K, V, K, V>(name, parents, || PassThrough, None);
        self.downstream(&mut state, added)
    }

    /// One stream of the records of this stream and of `other`, each in its own order (the
    /// task interleaves them by timestamp).
    pub fn merge(&self, other: &KStream<K, V>) -> Self {
        let name = self.state.borrow_mut().name("KSTREAM-MERGE");
        let merged = self.pass_through(&name, &[self.node, other.node]);
        if other.repartition_required {
            merged.keys_changed()
        } else {
            merged
        }
    }
}

impl<K: 'static, V: 'static> KStream<K, V> {
    /// Runs a [`Processor`] made by `factory` (once per task) on the stream; what it forwards
    /// is the new stream. It may forward other keys, so a grouping downstream repartitions
    /// (as in Kafka Streams).
    pub fn process<P, KOut, VOut>(
        &self,
        factory: impl Fn() -> P + Send + Sync + 'static,
    ) -> KStream<KOut, VOut>
    where
        P: Processor<K, V, KOut, VOut>,
        KOut: 'static,
        VOut: 'static,
    {
        self.then("KSTREAM-PROCESSOR", factory).keys_changed()
    }
}

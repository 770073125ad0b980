//! Builds a task's processor instances from the graph, children first.

use std::any::Any;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::graph::{Graph, NodeId};
use crate::processor::{
    Child, Downstream, NodeHandle, Processor, ProcessorContext, ProcessorNode, TaskState,
};

/// Instantiates the nodes of one task. Each node is built once and shared by all its
/// parents; the downcast from `Any` happens here, once per edge, never per record.
pub(crate) struct TaskBuilder<'g> {
    graph: &'g Graph,
    pub(crate) task: Rc<TaskState>,
    instances: BTreeMap<NodeId, Box<dyn Any>>,
    handles: BTreeMap<NodeId, Rc<dyn NodeHandle>>,
}

impl<'g> TaskBuilder<'g> {
    pub(crate) fn new(graph: &'g Graph, task: Rc<TaskState>) -> Self {
        Self {
            graph,
            task,
            instances: BTreeMap::new(),
            handles: BTreeMap::new(),
        }
    }

    /// The instance of node `id`, as the `(K, V)` receiver its parents forward to.
    ///
    /// # Panics
    /// When `(K, V)` is not the node's input type, which `Graph::validate` rules out.
    pub(crate) fn downstream<K: 'static, V: 'static>(
        &mut self,
        id: NodeId,
    ) -> Rc<dyn Downstream<K, V>> {
        if !self.instances.contains_key(&id) {
            let build = self.graph.node(id).build.clone();
            let instance = build(self, id);
            self.instances.insert(id, instance);
        }
        self.instances[&id]
            .downcast_ref::<Rc<dyn Downstream<K, V>>>()
            .expect("Graph::validate checked that every edge joins nodes of one record type")
            .clone()
    }

    /// The children of node `id`, built, as its context forwards to them.
    pub(crate) fn children<K: 'static, V: 'static>(&mut self, id: NodeId) -> Vec<Child<K, V>> {
        let graph = self.graph;
        graph
            .node(id)
            .children
            .iter()
            .map(|&child| Child {
                name: graph.node(child).name.clone(),
                sink: self.downstream::<K, V>(child),
            })
            .collect()
    }

    /// Records a node for init, punctuation and close.
    pub(crate) fn register(&mut self, id: NodeId, handle: Rc<dyn NodeHandle>) {
        self.handles.insert(id, handle);
    }

    /// The nodes built so far, in graph order.
    pub(crate) fn into_handles(self) -> Vec<(NodeId, Rc<dyn NodeHandle>)> {
        self.handles.into_iter().collect()
    }
}

/// The build function of a processor node made by `factory`.
pub(crate) fn processor_build<P, KIn, VIn, KOut, VOut>(
    factory: Arc<dyn Fn() -> P + Send + Sync>,
) -> super::graph::BuildFn
where
    P: Processor<KIn, VIn, KOut, VOut>,
    KIn: 'static,
    VIn: 'static,
    KOut: 'static,
    VOut: 'static,
{
    Arc::new(move |builder: &mut TaskBuilder<'_>, id: NodeId| {
        let children = builder.children::<KOut, VOut>(id);
        let name = builder.graph.node(id).name.clone();
        let ctx = ProcessorContext::new(id.0, name, children, builder.task.clone());
        let node = Rc::new(ProcessorNode::new(factory(), ctx));
        builder.register(id, node.clone());
        Box::new(node as Rc<dyn Downstream<KIn, VIn>>) as Box<dyn Any>
    })
}

//! Builds a task's processor instances from the graph, children first.

use std::any::Any;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

use super::graph::{Graph, NodeId};
use crate::processor::{
    Child, Downstream, NodeHandle, Processor, ProcessorContext, ProcessorNode, RecordCollector,
    SinkNode, SinkTopic, SourceEntry, SourceNode, TaskState, TimestampExtractor,
};
use crate::serde::SharedSerde;

/// Instantiates the nodes of one task. Each node is built once and shared by all its
/// parents; the downcast from `Any` happens here, once per edge, never per record.
pub(crate) struct TaskBuilder<'g> {
    graph: &'g Graph,
    pub(crate) task: Rc<TaskState>,
    collector: Rc<dyn RecordCollector>,
    instances: BTreeMap<NodeId, Box<dyn Any>>,
    handles: BTreeMap<NodeId, Rc<dyn NodeHandle>>,
}

impl<'g> TaskBuilder<'g> {
    pub(crate) fn new(
        graph: &'g Graph,
        task: Rc<TaskState>,
        collector: Rc<dyn RecordCollector>,
    ) -> Self {
        Self {
            graph,
            task,
            collector,
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

    /// The entry point of source node `id`.
    ///
    /// # Panics
    /// When `id` is not a source, which the graph's node kinds rule out.
    pub(crate) fn source(&mut self, id: NodeId) -> Rc<dyn SourceEntry> {
        if !self.instances.contains_key(&id) {
            let build = self.graph.node(id).build.clone();
            let instance = build(self, id);
            self.instances.insert(id, instance);
        }
        self.instances[&id]
            .downcast_ref::<Rc<dyn SourceEntry>>()
            .expect("only source nodes are entered from a topic")
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
        let node = builder.graph.node(id);
        let (name, stores) = (node.name.clone(), node.stores.clone());
        let ctx =
            ProcessorContext::new(id.0, name, children, builder.task.clone()).with_stores(stores);
        let node = Rc::new(ProcessorNode::new(factory(), ctx));
        builder.register(id, node.clone());
        Box::new(node as Rc<dyn Downstream<KIn, VIn>>) as Box<dyn Any>
    })
}

/// The build function of a source node reading `(K, V)` with these serdes.
pub(crate) fn source_build<K, V>(
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    extractor: Option<TimestampExtractor<K, V>>,
) -> super::graph::BuildFn
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    Arc::new(move |builder: &mut TaskBuilder<'_>, id: NodeId| {
        let children = builder.children::<K, V>(id);
        let name = builder.graph.node(id).name.clone();
        let ctx = ProcessorContext::new(id.0, name, children, builder.task.clone());
        let node = SourceNode::new(
            key_serde.clone(),
            value_serde.clone(),
            extractor.clone(),
            ctx,
        );
        Box::new(Rc::new(node) as Rc<dyn SourceEntry>) as Box<dyn Any>
    })
}

/// The build function of a sink node writing `(K, V)` with these serdes to `topic`.
pub(crate) fn sink_build<K, V>(
    topic: impl Fn() -> SinkTopic<K, V> + Send + Sync + 'static,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    partitioner: Option<crate::processor::StreamPartitioner<K, V>>,
) -> super::graph::BuildFn
where
    K: 'static,
    V: 'static,
{
    Arc::new(move |builder: &mut TaskBuilder<'_>, id: NodeId| {
        let name = builder.graph.node(id).name.clone();
        // An internal topic's name on the broker starts with the application id.
        let topic = match topic() {
            SinkTopic::Fixed(topic) => SinkTopic::Fixed(Arc::from(
                builder
                    .graph
                    .topic_name(&topic, &builder.task.application_id),
            )),
            chooser @ SinkTopic::PerRecord(_) => chooser,
        };
        let node = SinkNode::new(
            name,
            topic,
            (key_serde.clone(), value_serde.clone()),
            partitioner.clone(),
            builder.collector.clone(),
        );
        Box::new(Rc::new(node) as Rc<dyn Downstream<K, V>>) as Box<dyn Any>
    })
}

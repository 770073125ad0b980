//! The logical graph of a topology: named nodes, their edges, and how each is instantiated
//! in a task.

use std::any::{Any, TypeId, type_name};
use std::fmt;
use std::sync::Arc;

use super::TopologyError;
use super::task_builder::TaskBuilder;
use crate::state::StoreDef;

/// A node's place in the graph.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub(crate) struct NodeId(pub(crate) usize);

/// The record type `(K, V)` a node takes or forwards, for checking edges at build time.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) struct RecordType {
    id: TypeId,
    name: &'static str,
}

impl RecordType {
    pub(crate) fn of<K: 'static, V: 'static>() -> Self {
        Self {
            id: TypeId::of::<(K, V)>(),
            name: type_name::<(K, V)>(),
        }
    }
}

impl fmt::Debug for RecordType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

/// What kind of node, as `describe()` tells them apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NodeKind {
    /// Reads `topics`.
    Source { topics: Vec<String> },
    /// Runs a processor.
    Processor,
    /// Writes to `topic` (or to a topic chosen per record, when `None`).
    Sink { topic: Option<String> },
}

/// Instantiates a node for a task: returns `Rc<dyn Downstream<KIn, VIn>>` in a box (or the
/// source's entry point, for sources). Runs once per node per task, never per record.
pub(crate) type BuildFn = Arc<dyn Fn(&mut TaskBuilder<'_>, NodeId) -> Box<dyn Any> + Send + Sync>;

/// A node of the graph.
#[derive(Clone)]
pub(crate) struct GraphNode {
    pub(crate) name: Arc<str>,
    pub(crate) kind: NodeKind,
    pub(crate) parents: Vec<NodeId>,
    pub(crate) children: Vec<NodeId>,
    /// What the node takes; `None` for sources, which take bytes.
    pub(crate) input: Option<RecordType>,
    /// What the node forwards; `None` for sinks.
    pub(crate) output: Option<RecordType>,
    pub(crate) build: BuildFn,
    /// The state stores connected to the node (processors only).
    pub(crate) stores: Vec<Arc<str>>,
}

impl fmt::Debug for GraphNode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GraphNode")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .field("parents", &self.parents)
            .field("children", &self.children)
            .field("input", &self.input)
            .field("output", &self.output)
            .field("stores", &self.stores)
            .finish_non_exhaustive()
    }
}

/// The nodes of a topology, in the order they were added.
#[derive(Debug, Clone, Default)]
pub(crate) struct Graph {
    nodes: Vec<GraphNode>,
    /// Topics the application owns (repartition topics), by their name without the
    /// `<application.id>-` prefix, with the partition count asked for, if any.
    internal_topics: std::collections::BTreeMap<String, Option<i32>>,
    /// Internal topics partitioned as the topics a sub-topology reads: those topics, by
    /// internal topic.
    copartitioned: std::collections::BTreeMap<String, Vec<String>>,
    /// The state stores, by name.
    stores: std::collections::BTreeMap<Arc<str>, StoreDef>,
    /// The global tables: their nodes make no tasks.
    globals: Vec<GlobalTableDef>,
}

/// Checks that a global table's record can be read: its key's and value's bytes (the
/// topic and headers given).
pub(crate) type GlobalCheck = Arc<
    dyn Fn(
            &str,
            &[u8],
            Option<&[u8]>,
            &crate::header::Headers,
        ) -> Result<(), crate::serde::SerdeError>
        + Send
        + Sync,
>;

/// A global table: kept whole by every instance, in its store, from all partitions of its
/// topic (Kafka Streams' global store); its source and processor nodes make no tasks.
#[derive(Clone)]
pub(crate) struct GlobalTableDef {
    pub(crate) topic: String,
    pub(crate) store: StoreDef,
    pub(crate) nodes: [NodeId; 2],
    pub(crate) check: GlobalCheck,
}

impl fmt::Debug for GlobalTableDef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GlobalTableDef")
            .field("topic", &self.topic)
            .field("store", &self.store.name)
            .field("nodes", &self.nodes)
            .finish_non_exhaustive()
    }
}

impl Graph {
    /// Adds a node under parents that exist already; names must be unique.
    pub(crate) fn add(
        &mut self,
        name: &str,
        kind: NodeKind,
        parents: &[NodeId],
        input: Option<RecordType>,
        output: Option<RecordType>,
        build: BuildFn,
    ) -> Result<NodeId, TopologyError> {
        if name.is_empty() {
            return Err(TopologyError::EmptyName);
        }
        if self.find(name).is_some() {
            return Err(TopologyError::DuplicateName {
                name: name.to_string(),
            });
        }
        let id = NodeId(self.nodes.len());
        for &parent in parents {
            let Some(node) = self.nodes.get_mut(parent.0) else {
                return Err(TopologyError::UnknownNode {
                    name: format!("#{}", parent.0),
                    referenced_by: name.to_string(),
                });
            };
            node.children.push(id);
        }
        self.nodes.push(GraphNode {
            name: name.into(),
            kind,
            parents: parents.to_vec(),
            children: Vec::new(),
            input,
            output,
            build,
            stores: Vec::new(),
        });
        Ok(id)
    }

    /// Adds a state store and connects it to `processors`, which must exist.
    pub(crate) fn add_store(
        &mut self,
        store: StoreDef,
        processors: &[&str],
    ) -> Result<(), TopologyError> {
        if store.name.is_empty() {
            return Err(TopologyError::EmptyName);
        }
        if let Some(reason) = store.problem() {
            return Err(TopologyError::InvalidStore {
                store: store.name.to_string(),
                reason,
            });
        }
        if self.stores.contains_key(&store.name) || self.find(&store.name).is_some() {
            return Err(TopologyError::DuplicateName {
                name: store.name.to_string(),
            });
        }
        let mut ids = Vec::new();
        for name in processors {
            match self.find(name) {
                Some(id) if self.node(id).kind == NodeKind::Processor => ids.push(id),
                _ => {
                    return Err(TopologyError::UnknownNode {
                        name: format!("processor {name}"),
                        referenced_by: format!("state store {}", store.name),
                    });
                }
            }
        }
        for id in ids {
            self.nodes[id.0].stores.push(store.name.clone());
        }
        self.stores.insert(store.name.clone(), store);
        Ok(())
    }

    /// Connects the existing store `store` to the processor `node` too.
    pub(crate) fn connect_store(&mut self, store: &Arc<str>, node: NodeId) {
        let stores = &mut self.nodes[node.0].stores;
        if !stores.contains(store) {
            stores.push(store.clone());
        }
    }

    /// The state store named `name`.
    pub(crate) fn store(&self, name: &str) -> Option<&StoreDef> {
        self.stores.get(name)
    }

    /// Every state store, by name.
    pub(crate) fn stores(&self) -> impl Iterator<Item = &StoreDef> {
        self.stores.values()
    }

    /// Declares `topic` (e.g. `by-user-repartition`) an internal topic of the application.
    pub(crate) fn add_internal_topic(&mut self, topic: &str, partitions: Option<i32>) {
        self.internal_topics.insert(topic.to_string(), partitions);
    }

    /// The topic's name on the broker: internal topics carry the application id in front.
    pub(crate) fn topic_name(&self, topic: &str, application_id: &str) -> String {
        if self.internal_topics.contains_key(topic) {
            format!("{application_id}-{topic}")
        } else {
            topic.to_string()
        }
    }

    /// The internal topics, without the application id.
    /// Adds a global table; its nodes must exist.
    pub(crate) fn add_global(&mut self, global: GlobalTableDef) {
        self.globals.push(global);
    }

    /// The global tables.
    pub(crate) fn globals(&self) -> &[GlobalTableDef] {
        &self.globals
    }

    /// Makes internal topic `topic` as many partitions as the topics read upstream of
    /// `node` (the foreign-key join's topics are co-partitioned with their tables').
    pub(crate) fn copartition(&mut self, topic: &str, node: NodeId) {
        let mut sources = Vec::new();
        let mut todo = vec![node];
        let mut seen = std::collections::BTreeSet::new();
        while let Some(id) = todo.pop() {
            if !seen.insert(id.0) {
                continue;
            }
            let node = self.node(id);
            match &node.kind {
                NodeKind::Source { topics } => sources.extend(topics.iter().cloned()),
                _ => todo.extend(node.parents.iter().copied()),
            }
        }
        self.copartitioned.insert(topic.to_string(), sources);
    }

    /// The topics internal topic `topic` is co-partitioned with, if any.
    pub(crate) fn copartitioned_with(&self, topic: &str) -> &[String] {
        self.copartitioned.get(topic).map_or(&[], Vec::as_slice)
    }

    pub(crate) fn internal_topics(&self) -> impl Iterator<Item = (&str, Option<i32>)> {
        self.internal_topics.iter().map(|(t, p)| (t.as_str(), *p))
    }

    /// The node named `name`.
    pub(crate) fn find(&self, name: &str) -> Option<NodeId> {
        self.nodes.iter().position(|n| &*n.name == name).map(NodeId)
    }

    pub(crate) fn node(&self, id: NodeId) -> &GraphNode {
        &self.nodes[id.0]
    }

    pub(crate) fn get(&self, id: NodeId) -> Option<&GraphNode> {
        self.nodes.get(id.0)
    }

    pub(crate) fn nodes(&self) -> impl Iterator<Item = (NodeId, &GraphNode)> {
        self.nodes.iter().enumerate().map(|(i, n)| (NodeId(i), n))
    }

    /// Checks that every edge joins a parent to a child of the same record type, and that
    /// sinks have no children and sources no parents.
    pub(crate) fn validate(&self) -> Result<(), TopologyError> {
        for (_, node) in self.nodes() {
            for &child in &node.children {
                let child = self.node(child);
                if node.output.is_none() || child.input.is_none() || node.output != child.input {
                    return Err(TopologyError::TypeMismatch {
                        parent: node.name.to_string(),
                        forwards: node
                            .output
                            .map_or("nothing (a sink)", |t| t.name)
                            .to_string(),
                        child: child.name.to_string(),
                        takes: child
                            .input
                            .map_or("bytes (a source)", |t| t.name)
                            .to_string(),
                    });
                }
            }
        }
        Ok(())
    }
}

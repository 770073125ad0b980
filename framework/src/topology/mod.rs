//! Topologies: the graph of sources, processors and sinks that a `StreamsBuilder` records,
//! checked when it is built, and instantiated once per task.
//!
//! The graph is logical: nodes carry their names, edges and record types, and a build
//! function that makes the node's instance for a task. A task builds its instances children
//! first, so each processor holds typed handles to its children and forwards by direct call.

mod describe;
pub(crate) mod graph;
pub(crate) mod task_builder;

use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

pub use describe::TopologyDescription;
use graph::{Graph, NodeId, NodeKind};
use task_builder::TaskBuilder;

use crate::processor::{NodeHandle, RecordCollector, SourceEntry, TaskState};
use crate::state::StoreDef;

/// The changelog topic of store `store` of application `application_id`.
pub(crate) fn changelog_topic(application_id: &str, store: &str) -> String {
    format!("{application_id}-{store}-changelog")
}

/// A checked, immutable topology, split into sub-topologies: the groups of nodes joined by
/// edges (topics, not edges, join one sub-topology to the next). Made by
/// `StreamsBuilder::build`; cheap to clone.
#[derive(Debug, Clone)]
pub struct Topology {
    graph: Arc<Graph>,
    subtopologies: Arc<[Subtopology]>,
    /// The sub-topologies of global tables, which make no tasks (described only).
    global_subtopologies: Arc<[Subtopology]>,
}

/// One sub-topology: its nodes in graph order and the topics its sources read.
#[derive(Debug, Clone)]
pub(crate) struct Subtopology {
    pub(crate) id: u32,
    pub(crate) nodes: Vec<NodeId>,
    pub(crate) source_topics: Vec<String>,
    /// The state stores of its processors, each once.
    pub(crate) stores: Vec<Arc<str>>,
}

/// The instances of one task's nodes: the entry point of each source topic, and every node
/// for init, punctuation and close.
pub(crate) type TaskNodes = (
    BTreeMap<Arc<str>, Rc<dyn SourceEntry>>,
    Vec<(usize, Rc<dyn NodeHandle>)>,
);

impl Topology {
    /// Checks `graph` and splits it into sub-topologies.
    pub(crate) fn from_graph(graph: Graph) -> Result<Self, TopologyError> {
        graph.validate()?;
        let mut reader: BTreeMap<&str, &str> = BTreeMap::new();
        for (_, node) in graph.nodes() {
            if let NodeKind::Source { topics } = &node.kind {
                for topic in topics {
                    if let Some(first) = reader.insert(topic, &node.name) {
                        return Err(TopologyError::TopicReadTwice {
                            topic: topic.clone(),
                            first: first.to_string(),
                            second: node.name.to_string(),
                        });
                    }
                }
            }
        }
        let global_nodes: Vec<NodeId> = graph.globals().iter().flat_map(|g| g.nodes).collect();
        let (global, subtopologies): (Vec<Subtopology>, Vec<Subtopology>) = split(&graph)
            .into_iter()
            .partition(|sub| sub.nodes.iter().any(|id| global_nodes.contains(id)));
        Ok(Self {
            graph: Arc::new(graph),
            subtopologies: subtopologies.into(),
            global_subtopologies: global.into(),
        })
    }

    /// The sub-topologies and their nodes, as Kafka Streams prints them.
    pub fn describe(&self) -> TopologyDescription {
        TopologyDescription::new(&self.graph, &self.subtopologies, &self.global_subtopologies)
    }

    /// The global tables: their topics and stores.
    pub(crate) fn globals(&self) -> &[graph::GlobalTableDef] {
        self.graph.globals()
    }

    /// Every topic a source of this topology reads.
    pub fn source_topics(&self) -> Vec<&str> {
        self.subtopologies
            .iter()
            .flat_map(|s| s.source_topics.iter().map(String::as_str))
            .collect()
    }

    /// A topic's name on the broker for the application `application_id`: internal
    /// (repartition) topics are prefixed with it, as Kafka Streams names them.
    pub fn topic_name(&self, topic: &str, application_id: &str) -> String {
        self.graph.topic_name(topic, application_id)
    }

    /// The topics internal topic `topic` must have as many partitions as, if any.
    pub(crate) fn copartitioned_with(&self, topic: &str) -> &[String] {
        self.graph.copartitioned_with(topic)
    }

    /// The changelog topics (with the application id) of the logged stores, each with the
    /// sub-topology whose tasks write it (one partition per task).
    pub fn changelog_topics(&self, application_id: &str) -> Vec<(String, u32)> {
        self.changelogs(application_id)
            .map(|(topic, sub, _)| (topic, sub))
            .collect()
    }

    /// The changelog topics of the logged stores, with the sub-topology whose tasks write
    /// each and its store (whose kind decides the topic's settings).
    pub(crate) fn changelogs<'a>(
        &'a self,
        application_id: &'a str,
    ) -> impl Iterator<Item = (String, u32, &'a crate::state::StoreDef)> + 'a {
        self.subtopologies.iter().flat_map(move |sub| {
            sub.stores.iter().filter_map(move |name| {
                let def = self.graph.store(name).filter(|d| d.logging)?;
                Some((changelog_topic(application_id, name), sub.id, def))
            })
        })
    }

    /// The internal topics (without the application id) and the partition counts asked for.
    pub fn internal_topics(&self) -> Vec<(&str, Option<i32>)> {
        self.graph.internal_topics().collect()
    }

    /// Whether the topology has a state store named `name`.
    pub(crate) fn has_store(&self, name: &str) -> bool {
        self.graph.store(name).is_some()
    }

    pub(crate) fn subtopologies(&self) -> &[Subtopology] {
        &self.subtopologies
    }

    /// The definition of the store `name`, if the topology has one.
    pub(crate) fn store_def(&self, name: &str) -> Option<&StoreDef> {
        self.graph.store(name)
    }

    /// Builds the nodes of one task of `subtopology`, whose stores are open in `state`.
    pub(crate) fn instantiate(
        &self,
        subtopology: &Subtopology,
        state: Rc<TaskState>,
        collector: Rc<dyn RecordCollector>,
    ) -> TaskNodes {
        let mut builder = TaskBuilder::new(&self.graph, state, collector);
        let mut sources = BTreeMap::new();
        for &id in &subtopology.nodes {
            if let NodeKind::Source { topics } = &self.graph.node(id).kind {
                let entry = builder.source(id);
                for topic in topics {
                    let topic = self.topic_name(topic, &builder.task.application_id);
                    sources.insert(Arc::from(topic), entry.clone());
                }
            }
        }
        let nodes = builder
            .into_handles()
            .into_iter()
            .map(|(id, handle)| (id.0, handle))
            .collect();
        (sources, nodes)
    }
}

/// The connected groups of nodes, numbered in the order of their first node.
fn split(graph: &Graph) -> Vec<Subtopology> {
    let count = graph.nodes().count();
    let mut group: Vec<Option<usize>> = vec![None; count];
    let mut groups: Vec<Vec<NodeId>> = Vec::new();
    for start in 0..count {
        if group[start].is_some() {
            continue;
        }
        let index = groups.len();
        let mut members = Vec::new();
        let mut stack = vec![NodeId(start)];
        group[start] = Some(index);
        while let Some(id) = stack.pop() {
            members.push(id);
            let node = graph.node(id);
            // Nodes that share a store are in one sub-topology, as in Kafka Streams.
            let sharing = node.stores.iter().flat_map(|store| {
                graph
                    .nodes()
                    .filter(move |(_, n)| n.stores.contains(store))
                    .map(|(other, _)| other)
            });
            let linked: Vec<NodeId> = node
                .parents
                .iter()
                .chain(&node.children)
                .copied()
                .chain(sharing)
                .collect();
            for &next in &linked {
                if group[next.0].is_none() {
                    group[next.0] = Some(index);
                    stack.push(next);
                }
            }
        }
        members.sort();
        groups.push(members);
    }
    groups
        .into_iter()
        .enumerate()
        .map(|(i, nodes)| Subtopology {
            id: u32::try_from(i).unwrap_or(u32::MAX),
            source_topics: nodes
                .iter()
                .filter_map(|&id| match &graph.node(id).kind {
                    NodeKind::Source { topics } => Some(topics.clone()),
                    _ => None,
                })
                .flatten()
                .collect(),
            stores: {
                let mut stores: Vec<Arc<str>> = nodes
                    .iter()
                    .flat_map(|&id| graph.node(id).stores.iter().cloned())
                    .collect();
                stores.sort();
                stores.dedup();
                stores
            },
            nodes,
        })
        .collect()
}

/// A mistake in a topology, found when it is built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TopologyError {
    /// Two nodes (or a node and a store) have the same name.
    #[error(
        "topology: the name {name:?} is used twice; names of processors, sources and sinks must be unique"
    )]
    DuplicateName {
        /// The name.
        name: String,
    },
    /// A node was given an empty name.
    #[error("topology: a node name is empty")]
    EmptyName,
    /// A state store cannot be built as declared.
    #[error("topology: state store {store}: {reason}")]
    InvalidStore {
        /// The store's name.
        store: String,
        /// What is wrong.
        reason: String,
    },
    /// A node refers to a parent (or store) that does not exist.
    #[error("topology: {referenced_by} refers to {name}, which does not exist")]
    UnknownNode {
        /// The missing node.
        name: String,
        /// The node that refers to it.
        referenced_by: String,
    },
    /// Two sources read the same topic.
    #[error("topology: topic {topic} is read by both {first} and {second}; a topic has one source")]
    TopicReadTwice {
        /// The topic.
        topic: String,
        /// The source that reads it first.
        first: String,
        /// The other source.
        second: String,
    },
    /// A parent forwards records of another type than its child takes.
    #[error("topology: {parent} forwards {forwards} but its child {child} takes {takes}")]
    TypeMismatch {
        /// The parent node.
        parent: String,
        /// The record type `(K, V)` the parent forwards.
        forwards: String,
        /// The child node.
        child: String,
        /// The record type `(K, V)` the child takes.
        takes: String,
    },
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::{Arc, Mutex};

    use super::graph::RecordType;
    use super::task_builder::{TaskBuilder, processor_build};
    use super::*;
    use crate::processor::{ProcessError, Processor, ProcessorContext, Record, TaskState};

    /// Applies a function to values and forwards.
    struct MapValues(fn(&str) -> String);

    impl Processor<String, String> for MapValues {
        fn process(
            &mut self,
            r: Record<String, String>,
            ctx: &mut ProcessorContext<String, String>,
        ) -> Result<(), ProcessError> {
            let f = self.0;
            ctx.forward(r.map_value(|v| f(&v)))
        }
    }

    /// Collects values into a shared list; counts how many instances were made.
    struct Collect(Arc<Mutex<Vec<String>>>);

    impl Processor<String, String, (), ()> for Collect {
        fn process(
            &mut self,
            r: Record<String, String>,
            _: &mut ProcessorContext<(), ()>,
        ) -> Result<(), ProcessError> {
            self.0.lock().unwrap().extend(r.value);
            Ok(())
        }
    }

    fn strings() -> Option<RecordType> {
        Some(RecordType::of::<String, String>())
    }

    #[test]
    fn a_node_with_two_parents_is_one_instance_fed_by_both() {
        let out = Arc::new(Mutex::new(Vec::new()));
        let made = Arc::new(AtomicUsize::new(0));
        let mut graph = Graph::default();
        let map = |f: fn(&str) -> String| processor_build(Arc::new(move || MapValues(f)));
        let upper = graph
            .add(
                "upper",
                NodeKind::Processor,
                &[],
                strings(),
                strings(),
                map(|v| v.to_uppercase()),
            )
            .unwrap();
        let left = graph
            .add(
                "left",
                NodeKind::Processor,
                &[upper],
                strings(),
                strings(),
                map(|v| format!("L{v}")),
            )
            .unwrap();
        let right = graph
            .add(
                "right",
                NodeKind::Processor,
                &[upper],
                strings(),
                strings(),
                map(|v| format!("R{v}")),
            )
            .unwrap();
        let (collect_out, collect_made) = (out.clone(), made.clone());
        let collect = processor_build(Arc::new(move || {
            collect_made.fetch_add(1, Ordering::Relaxed);
            Collect(collect_out.clone())
        }));
        graph
            .add(
                "merge",
                NodeKind::Processor,
                &[left, right],
                strings(),
                Some(RecordType::of::<(), ()>()),
                collect,
            )
            .unwrap();
        graph.validate().unwrap();

        let mut builder = TaskBuilder::new(
            &graph,
            Rc::new(TaskState::new("app".into(), 0)),
            Rc::new(Captured::default()),
        );
        let entry = builder.downstream::<String, String>(upper);
        entry
            .process(Record::new("k".into(), "a".into(), 1))
            .unwrap();
        entry
            .process(Record::new("k".into(), "b".into(), 2))
            .unwrap();
        assert_eq!(*out.lock().unwrap(), ["LA", "RA", "LB", "RB"]);
        assert_eq!(
            made.load(Ordering::Relaxed),
            1,
            "one instance of the merge node"
        );
        let names: Vec<_> = builder
            .into_handles()
            .iter()
            .map(|(_, h)| h.name().to_string())
            .collect();
        assert_eq!(names, ["upper", "left", "right", "merge"]);
    }

    #[test]
    fn mistakes_are_errors_that_name_the_nodes() {
        let mut graph = Graph::default();
        let noop = || processor_build(Arc::new(|| MapValues(str::to_owned)));
        let a = graph
            .add("a", NodeKind::Processor, &[], strings(), strings(), noop())
            .unwrap();
        let err = graph
            .add("a", NodeKind::Processor, &[a], strings(), strings(), noop())
            .unwrap_err();
        assert_eq!(err, TopologyError::DuplicateName { name: "a".into() });
        let ints = Some(RecordType::of::<String, i64>());
        graph
            .add("b", NodeKind::Processor, &[a], ints, ints, noop())
            .unwrap();
        let err = graph.validate().unwrap_err().to_string();
        assert!(
            err.contains("a forwards (alloc::string::String, alloc::string::String)"),
            "{err}"
        );
        assert!(
            err.contains("its child b takes (alloc::string::String, i64)"),
            "{err}"
        );
    }

    /// Keeps what sinks send.
    #[derive(Default)]
    struct Captured(std::cell::RefCell<Vec<Sent>>);

    /// Topic, key, value and timestamp of a record a sink sent.
    type Sent = (String, Option<Vec<u8>>, Option<Vec<u8>>, i64);

    impl crate::processor::RecordCollector for Captured {
        fn send(&self, r: crate::processor::OutgoingRecord<'_>) -> Result<(), ProcessError> {
            let record = (
                r.topic.to_string(),
                r.key.map(<[u8]>::to_vec),
                r.value.map(<[u8]>::to_vec),
                r.timestamp,
            );
            self.0.borrow_mut().push(record);
            Ok(())
        }
    }

    static IN: std::sync::LazyLock<Arc<str>> = std::sync::LazyLock::new(|| "in".into());

    fn raw<'a>(
        key: Option<&'a [u8]>,
        value: Option<&'a [u8]>,
        offset: i64,
        headers: &'a crate::header::Headers,
    ) -> crate::processor::RawRecord<'a> {
        crate::processor::RawRecord {
            topic: &IN,
            partition: 2,
            offset,
            timestamp: 100 + offset,
            key,
            value,
            headers,
        }
    }

    #[test]
    fn source_to_sink_deserializes_maps_and_serializes_keeping_nulls() {
        use super::task_builder::{sink_build, source_build};
        use crate::processor::SinkTopic;
        use crate::serde::DefaultSerde;

        let mut graph = Graph::default();
        let source = graph
            .add(
                "source",
                NodeKind::Source {
                    topics: vec!["in".into()],
                },
                &[],
                None,
                strings(),
                source_build(String::default_serde(), String::default_serde(), None),
            )
            .unwrap();
        let upper = processor_build(Arc::new(|| MapValues(str::to_uppercase)));
        let map = graph
            .add(
                "map",
                NodeKind::Processor,
                &[source],
                strings(),
                strings(),
                upper,
            )
            .unwrap();
        let sink = sink_build(
            || {
                SinkTopic::PerRecord(Arc::new(|k: Option<&String>, _: Option<&String>| {
                    if k.is_some() {
                        "out".to_string()
                    } else {
                        "no-key".to_string()
                    }
                }))
            },
            String::default_serde(),
            String::default_serde(),
            None,
        );
        graph
            .add(
                "sink",
                NodeKind::Sink { topic: None },
                &[map],
                strings(),
                None,
                sink,
            )
            .unwrap();
        graph.validate().unwrap();

        let captured = Rc::new(Captured::default());
        let mut builder = TaskBuilder::new(
            &graph,
            Rc::new(TaskState::new("app".into(), 0)),
            captured.clone(),
        );
        let entry = builder.source(source);
        let headers = crate::header::Headers::new();
        entry
            .process_raw(raw(Some(b"k1"), Some(b"abc"), 0, &headers), None)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        entry
            .process_raw(raw(Some(b"k2"), None, 1, &headers), None)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        entry
            .process_raw(raw(None, Some(b"x"), 2, &headers), None)
            .map_err(|e| format!("{e:?}"))
            .unwrap();
        let out = captured.0.borrow();
        assert_eq!(
            out[0],
            (
                "out".into(),
                Some(b"k1".to_vec()),
                Some(b"ABC".to_vec()),
                100
            )
        );
        assert_eq!(
            out[1],
            ("out".into(), Some(b"k2".to_vec()), None, 101),
            "a tombstone stays null"
        );
        assert_eq!(
            out[2],
            ("no-key".into(), None, Some(b"X".to_vec()), 102),
            "a null key stays null"
        );
        drop(out);

        let err = entry
            .process_raw(raw(Some(b"k"), Some(&[0xff]), 3, &headers), None)
            .unwrap_err();
        let crate::processor::SourceError::Deserialization(err) = err else {
            panic!("{err:?}")
        };
        assert_eq!(
            err.to_string(),
            "source source: cannot deserialize the value of in/2@3: String (UTF-8): invalid UTF-8 at byte 0"
        );
        assert_eq!(
            captured.0.borrow().len(),
            3,
            "nothing forwarded for the bad record"
        );
    }
}

//! `describe()`: a topology as text in Kafka Streams' layout, and as a Mermaid flowchart.

use std::fmt::{self, Write as _};

use super::Subtopology;
use super::graph::{Graph, NodeKind};

/// One node as `describe()` shows it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct NodeLine {
    name: String,
    kind: NodeKind,
    stores: Vec<String>,
    children: Vec<String>,
    parents: Vec<String>,
}

/// What a topology is made of: sub-topologies with their sources, processors and sinks.
///
/// `Display` prints Kafka Streams' `TopologyDescription` layout, so golden tests of it catch
/// an accidental rename of a node (and of the state and topics named after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopologyDescription {
    /// By id: whether it is a global table's (which makes no tasks), and its nodes.
    subtopologies: Vec<(u32, bool, Vec<NodeLine>)>,
    /// What each store is (`window store`, `suppression buffer`, ...), by name.
    stores: std::collections::BTreeMap<String, &'static str>,
}

impl TopologyDescription {
    pub(super) fn new(
        graph: &Graph,
        subtopologies: &[Subtopology],
        globals: &[Subtopology],
    ) -> Self {
        let names = |ids: &[super::NodeId]| -> Vec<String> {
            ids.iter()
                .map(|&id| graph.node(id).name.to_string())
                .collect()
        };
        let mut subtopologies: Vec<(u32, bool, Vec<NodeLine>)> = subtopologies
            .iter()
            .map(|sub| (sub, false))
            .chain(globals.iter().map(|sub| (sub, true)))
            .map(|(sub, global)| {
                // Kafka Streams' order: the largest sub-tree first, then by name.
                let mut nodes = sub.nodes.clone();
                nodes.sort_by_cached_key(|&id| {
                    (
                        std::cmp::Reverse(subtree_size(graph, id)),
                        graph.node(id).name.clone(),
                    )
                });
                let lines = nodes
                    .iter()
                    .map(|&id| {
                        let node = graph.node(id);
                        NodeLine {
                            name: node.name.to_string(),
                            kind: node.kind.clone(),
                            stores: node.stores.iter().map(|s| s.to_string()).collect(),
                            children: names(&node.children),
                            parents: names(&node.parents),
                        }
                    })
                    .collect();
                (sub.id, global, lines)
            })
            .collect();
        subtopologies.sort_by_key(|(id, _, _)| *id);
        let stores = graph
            .stores()
            .map(|def| (def.name.to_string(), def.kind.label()))
            .collect();
        Self {
            subtopologies,
            stores,
        }
    }

    /// The same graph as a Mermaid flowchart: a box per sub-topology, topics as stadiums,
    /// state stores as cylinders (named with their kind) joined to their processors.
    pub fn to_mermaid(&self) -> String {
        let mut out = String::from("flowchart TD\n");
        let id = |name: &str| name.replace(|c: char| !c.is_ascii_alphanumeric(), "_");
        let mut topics = std::collections::BTreeSet::new();
        for (sub, _, lines) in &self.subtopologies {
            let _ = writeln!(out, "    subgraph sub{sub}[\"Sub-topology: {sub}\"]");
            for line in lines {
                let _ = writeln!(out, "        {}[\"{}\"]", id(&line.name), line.name);
            }
            let _ = writeln!(out, "    end");
            for line in lines {
                for child in &line.children {
                    let _ = writeln!(out, "    {} --> {}", id(&line.name), id(child));
                }
                match &line.kind {
                    NodeKind::Source { topics: read } => {
                        for topic in read {
                            topics.insert(topic.clone());
                            let _ = writeln!(out, "    topic_{} --> {}", id(topic), id(&line.name));
                        }
                    }
                    NodeKind::Sink { topic: Some(topic) } => {
                        topics.insert(topic.clone());
                        let _ = writeln!(out, "    {} --> topic_{}", id(&line.name), id(topic));
                    }
                    NodeKind::Sink { topic: None } | NodeKind::Processor => {}
                }
                for store in &line.stores {
                    let _ = writeln!(out, "    {} -.- store_{}", id(&line.name), id(store));
                }
            }
        }
        for (store, kind) in &self.stores {
            let _ = writeln!(out, "    store_{}[(\"{store}<br/>{kind}\")]", id(store));
        }
        for topic in topics {
            let _ = writeln!(out, "    topic_{}([\"{topic}\"])", id(&topic));
        }
        out
    }
}

/// The size of the sub-tree under `id`, as Kafka Streams counts it to order a
/// description: the node and, for each child, the child's sub-tree.
fn subtree_size(graph: &Graph, id: super::NodeId) -> usize {
    1 + graph
        .node(id)
        .children
        .iter()
        .map(|&child| subtree_size(graph, child))
        .sum::<usize>()
}

impl fmt::Display for TopologyDescription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "Topologies:")?;
        for (sub, global, lines) in &self.subtopologies {
            match global {
                true => writeln!(
                    f,
                    "   Sub-topology: {sub} for global store (will not generate tasks)"
                )?,
                false => writeln!(f, "   Sub-topology: {sub}")?,
            }
            for line in lines {
                match &line.kind {
                    NodeKind::Source { topics } => {
                        writeln!(
                            f,
                            "    Source: {} (topics: [{}])",
                            line.name,
                            topics.join(", ")
                        )?;
                    }
                    NodeKind::Processor => {
                        writeln!(
                            f,
                            "    Processor: {} (stores: [{}])",
                            line.name,
                            line.stores.join(", ")
                        )?;
                    }
                    NodeKind::Sink { topic: Some(topic) } => {
                        writeln!(f, "    Sink: {} (topic: {topic})", line.name)?;
                    }
                    NodeKind::Sink { topic: None } => {
                        writeln!(
                            f,
                            "    Sink: {} (extractor: topic chosen per record)",
                            line.name
                        )?;
                    }
                }
                if !matches!(line.kind, NodeKind::Sink { .. }) {
                    let children = if line.children.is_empty() {
                        "none".to_string()
                    } else {
                        line.children.join(", ")
                    };
                    writeln!(f, "      --> {children}")?;
                }
                if !line.parents.is_empty() {
                    writeln!(f, "      <-- {}", line.parents.join(", "))?;
                }
            }
            // Kafka Streams ends a global store's block without a blank line.
            if !global {
                writeln!(f)?;
            }
        }
        Ok(())
    }
}

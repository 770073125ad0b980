//! `StreamsBuilder`: records a topology and checks it when it is built.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::{Consumed, KStream, KTable, Materialized, Produced};
use crate::processor::{Processor, SinkTopic};
use crate::serde::DefaultSerde;
use crate::state::{StoreBuilder, StoreDef};
use crate::topology::graph::{Graph, NodeId, NodeKind, RecordType};
use crate::topology::task_builder::{processor_build, sink_build, source_build};
use crate::topology::{Topology, TopologyError};

/// Records a topology: sources, processors and sinks, joined by name.
///
/// ```
/// use homa::dsl::StreamsBuilder;
/// use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
///
/// struct Upper;
///
/// impl Processor<String, String> for Upper {
///     fn process(
///         &mut self,
///         record: Record<String, String>,
///         ctx: &mut ProcessorContext<String, String>,
///     ) -> Result<(), ProcessError> {
///         ctx.forward(record.map_value(|v| v.to_uppercase()))
///     }
/// }
///
/// let mut builder = StreamsBuilder::new();
/// builder.add_source::<String, String>("words", &["words"])?;
/// builder.add_processor("upper", || Upper, &["words"])?;
/// builder.add_sink::<String, String>("shouts", "shouts", &["upper"])?;
/// let topology = builder.build()?;
/// assert!(topology.describe().to_string().contains("Processor: upper (stores: [])"));
/// # Ok::<(), homa::topology::TopologyError>(())
/// ```
#[derive(Debug, Default)]
pub struct StreamsBuilder {
    pub(crate) state: Rc<RefCell<DslState>>,
}

/// The graph being recorded, shared by the builder and every stream handle made from it.
#[derive(Debug, Default)]
pub(crate) struct DslState {
    pub(crate) graph: Graph,
    /// The number of the next generated name, as Kafka Streams counts them.
    next_index: usize,
    /// Mistakes made through stream handles, reported by `build()`.
    pub(crate) errors: Vec<TopologyError>,
    /// The root tables of the DSL's tables: what is known of their stores and old values.
    pub(crate) tables: Vec<super::ktable::TableRoot>,
}

/// Where a sink writes, as the DSL says it.
pub(crate) enum SinkTopicName<K, V> {
    Fixed(String),
    PerRecord(crate::processor::TopicChooser<K, V>),
}

impl DslState {
    /// Adds a processor named `name`, made by `factory` once per task, under `parents`, with
    /// `store` (if any) connected to it.
    pub(crate) fn add_processor<P, KIn, VIn, KOut, VOut>(
        &mut self,
        name: &str,
        parents: &[NodeId],
        factory: impl Fn() -> P + Send + Sync + 'static,
        store: Option<StoreDef>,
    ) -> Result<NodeId, TopologyError>
    where
        P: Processor<KIn, VIn, KOut, VOut>,
        KIn: 'static,
        VIn: 'static,
        KOut: 'static,
        VOut: 'static,
    {
        let build = processor_build::<P, KIn, VIn, KOut, VOut>(Arc::new(factory));
        let (input, output) = (RecordType::of::<KIn, VIn>(), RecordType::of::<KOut, VOut>());
        let node = self.graph.add(
            name,
            NodeKind::Processor,
            parents,
            Some(input),
            Some(output),
            build,
        )?;
        if let Some(store) = store {
            self.graph.add_store(store, &[name])?;
        }
        Ok(node)
    }

    /// Adds a sink writing `(K, V)` records to `topic` (or to the topic chosen per record)
    /// with the serdes of `produced`.
    pub(crate) fn add_sink<K: DefaultSerde, V: DefaultSerde>(
        &mut self,
        name: &str,
        topic: SinkTopicName<K, V>,
        parents: &[NodeId],
        produced: &Produced<K, V>,
    ) -> Result<NodeId, TopologyError> {
        let (key_serde, value_serde) = produced.serdes();
        let partitioner = produced.partitioner.clone();
        let (kind, build) = match topic {
            SinkTopicName::Fixed(topic) => {
                let fixed: Arc<str> = Arc::from(topic.as_str());
                let build = sink_build(
                    move || SinkTopic::Fixed(fixed.clone()),
                    key_serde,
                    value_serde,
                    partitioner,
                );
                (NodeKind::Sink { topic: Some(topic) }, build)
            }
            SinkTopicName::PerRecord(chooser) => {
                let build = sink_build(
                    move || SinkTopic::PerRecord(chooser.clone()),
                    key_serde,
                    value_serde,
                    partitioner,
                );
                (NodeKind::Sink { topic: None }, build)
            }
        };
        self.graph.add(
            name,
            kind,
            parents,
            Some(RecordType::of::<K, V>()),
            None,
            build,
        )
    }

    /// The node `added` made; when adding it failed, the mistake is kept for `build()` to
    /// report (before anything is instantiated from this graph) and `fallback` stands in.
    pub(crate) fn or_report(
        &mut self,
        added: Result<NodeId, TopologyError>,
        fallback: NodeId,
    ) -> NodeId {
        added.unwrap_or_else(|e| {
            self.errors.push(e);
            fallback
        })
    }

    /// A generated node name, `PREFIX-0000000007`, as Kafka Streams makes them.
    pub(crate) fn name(&mut self, prefix: &str) -> String {
        let name = format!("{prefix}-{:010}", self.next_index);
        self.next_index += 1;
        name
    }
}

impl StreamsBuilder {
    /// An empty topology.
    pub fn new() -> Self {
        Self::default()
    }

    /// The graph being recorded.
    #[cfg(test)]
    pub(crate) fn state(&self) -> &Rc<RefCell<DslState>> {
        &self.state
    }

    fn parents(&self, name: &str, parents: &[&str]) -> Result<Vec<NodeId>, TopologyError> {
        parents
            .iter()
            .map(|parent| {
                self.state
                    .borrow()
                    .graph
                    .find(parent)
                    .ok_or_else(|| TopologyError::UnknownNode {
                        name: (*parent).to_string(),
                        referenced_by: name.to_string(),
                    })
            })
            .collect()
    }

    /// A stream of the records of `topic`, read with the default serdes of `K` and `V`.
    pub fn stream<K, V>(&mut self, topic: &str) -> KStream<K, V>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        self.stream_from(&[topic])
    }

    /// One stream of the records of all `topics`, read with the default serdes of `K` and `V`.
    pub fn stream_from<K, V>(&mut self, topics: &[&str]) -> KStream<K, V>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        self.stream_with(topics, Consumed::default())
    }

    /// One stream of the records of all `topics`, read as `consumed` says.
    pub fn stream_with<K, V>(&mut self, topics: &[&str], consumed: Consumed<K, V>) -> KStream<K, V>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        let mut state = self.state.borrow_mut();
        let name = match &consumed.name {
            Some(name) => name.clone(),
            None => state.name("KSTREAM-SOURCE"),
        };
        let kind = NodeKind::Source {
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
        };
        let (key_serde, value_serde) = consumed.serdes();
        let build = source_build(key_serde, value_serde, consumed.timestamp_extractor.clone());
        let node = match state.graph.add(
            &name,
            kind,
            &[],
            None,
            Some(RecordType::of::<K, V>()),
            build,
        ) {
            Ok(node) => node,
            Err(e) => {
                state.errors.push(e);
                NodeId(0)
            }
        };
        KStream::new(self.state.clone(), node)
    }

    /// The table of `topic`: the latest value of each key (deletes by tombstone), read with
    /// the default serdes of `K` and `V`. Kept in the store `materialized` names, where
    /// queries find it; unnamed (`Materialized::default()`), in no store until an operator
    /// needs one, as Kafka Streams does.
    ///
    /// ```
    /// # use homa::prelude::*;
    /// let mut builder = StreamsBuilder::new();
    /// let prices: KTable<String, f64> = builder.table("prices", Materialized::as_("prices-by-item"));
    /// prices.to_stream().to("price-updates");
    /// assert!(builder.build().is_ok());
    /// ```
    pub fn table<K, V>(&mut self, topic: &str, materialized: Materialized<K, V>) -> KTable<K, V>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        // As Kafka Streams: an unnamed store's name is drawn before the source's.
        let store_name = match materialized.name() {
            Some(name) => name.to_string(),
            None => self
                .state
                .borrow_mut()
                .name(&format!("{topic}-STATE-STORE")),
        };
        let stream = self.stream::<K, V>(topic);
        super::ktable::table(&stream, "KTABLE-SOURCE", store_name, materialized)
    }

    /// Adds a source named `name` reading `topics`, with the default serdes of `K` and `V`.
    ///
    /// # Errors
    /// When `name` is taken or empty.
    pub fn add_source<K, V>(
        &mut self,
        name: &str,
        topics: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        let kind = NodeKind::Source {
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
        };
        let build = source_build(K::default_serde(), V::default_serde(), None);
        self.state.borrow_mut().graph.add(
            name,
            kind,
            &[],
            None,
            Some(RecordType::of::<K, V>()),
            build,
        )?;
        Ok(self)
    }

    /// Adds a processor named `name`, made by `factory` once per task, fed by `parents`.
    ///
    /// # Errors
    /// When `name` is taken or empty, or a parent does not exist. A parent forwarding
    /// another record type than the processor takes is an error of [`build`](Self::build).
    pub fn add_processor<P, KIn, VIn, KOut, VOut>(
        &mut self,
        name: &str,
        factory: impl Fn() -> P + Send + Sync + 'static,
        parents: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        P: Processor<KIn, VIn, KOut, VOut>,
        KIn: 'static,
        VIn: 'static,
        KOut: 'static,
        VOut: 'static,
    {
        let parents = self.parents(name, parents)?;
        self.state
            .borrow_mut()
            .add_processor(name, &parents, factory, None)?;
        Ok(self)
    }

    /// Adds a sink named `name` writing to `topic` what `parents` forward, with the default
    /// serdes of `K` and `V`.
    ///
    /// # Errors
    /// When `name` is taken or empty, or a parent does not exist.
    pub fn add_sink<K, V>(
        &mut self,
        name: &str,
        topic: &str,
        parents: &[&str],
    ) -> Result<&mut Self, TopologyError>
    where
        K: DefaultSerde,
        V: DefaultSerde,
    {
        let parents = self.parents(name, parents)?;
        self.state.borrow_mut().add_sink::<K, V>(
            name,
            SinkTopicName::Fixed(topic.to_string()),
            &parents,
            &Produced::default(),
        )?;
        Ok(self)
    }

    /// Adds a state store and connects it to `processors`, which reach it from their
    /// context with [`ProcessorContext::key_value_store`](crate::processor::ProcessorContext::key_value_store)
    /// (Kafka Streams' `addStateStore`). Each task gets a store of its own.
    ///
    /// # Errors
    /// When the store's name is taken or empty, or a processor does not exist.
    pub fn add_state_store<K: 'static, V: 'static>(
        &mut self,
        store: StoreBuilder<K, V>,
        processors: &[&str],
    ) -> Result<&mut Self, TopologyError> {
        self.state
            .borrow_mut()
            .graph
            .add_store(store.into_def(), processors)?;
        Ok(self)
    }

    /// Checks the topology and returns it.
    ///
    /// # Errors
    /// [`TopologyError`] for a parent and child of different record types, or a topic read
    /// by two sources.
    pub fn build(&self) -> Result<Topology, TopologyError> {
        let state = self.state.borrow();
        if let Some(error) = state.errors.first() {
            return Err(error.clone());
        }
        Topology::from_graph(state.graph.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::processor::{ProcessError, ProcessorContext, Record};

    struct Len;

    impl Processor<String, String, String, i64> for Len {
        fn process(
            &mut self,
            r: Record<String, String>,
            ctx: &mut ProcessorContext<String, i64>,
        ) -> Result<(), ProcessError> {
            ctx.forward(r.map_value(|v| i64::try_from(v.len()).unwrap_or(i64::MAX)))
        }
    }

    #[test]
    fn describe_prints_kafka_streams_layout() {
        let mut builder = StreamsBuilder::new();
        builder
            .add_source::<String, String>("src", &["words", "more-words"])
            .unwrap();
        builder.add_processor("len", || Len, &["src"]).unwrap();
        builder
            .add_sink::<String, i64>("out", "lengths", &["len"])
            .unwrap();
        builder
            .add_source::<String, i64>("again", &["lengths"])
            .unwrap();
        builder
            .add_sink::<String, i64>("copy", "copied", &["again"])
            .unwrap();
        let topology = builder.build().unwrap();
        let expected = "\
Topologies:
   Sub-topology: 0
    Source: src (topics: [words, more-words])
      --> len
    Processor: len (stores: [])
      --> out
      <-- src
    Sink: out (topic: lengths)
      <-- len

   Sub-topology: 1
    Source: again (topics: [lengths])
      --> copy
    Sink: copy (topic: copied)
      <-- again

";
        assert_eq!(topology.describe().to_string(), expected);
        assert_eq!(topology.source_topics(), ["words", "more-words", "lengths"]);
        let mermaid = topology.describe().to_mermaid();
        assert!(mermaid.contains("topic_words --> src"), "{mermaid}");
        assert!(mermaid.contains("len --> out"), "{mermaid}");
        assert!(mermaid.contains("out --> topic_lengths"), "{mermaid}");
    }

    #[test]
    fn wiring_mistakes_are_errors_not_panics() {
        let mut builder = StreamsBuilder::new();
        builder.add_source::<String, String>("src", &["a"]).unwrap();
        let err = builder.add_processor("len", || Len, &["nope"]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topology: len refers to nope, which does not exist"
        );
        builder
            .add_source::<String, String>("src2", &["a"])
            .unwrap();
        let err = builder.build().unwrap_err();
        assert!(matches!(err, TopologyError::TopicReadTwice { .. }), "{err}");

        let mut builder = StreamsBuilder::new();
        builder.add_source::<String, i64>("src", &["a"]).unwrap();
        builder.add_processor("len", || Len, &["src"]).unwrap();
        let err = builder.build().unwrap_err().to_string();
        assert!(
            err.contains("src forwards (alloc::string::String, i64) but its child len takes"),
            "{err}"
        );
    }
}

//! `repartition`: send the stream through an internal topic, partitioned by the current key.

use super::KStream;
use crate::dsl::Produced;
use crate::dsl::builder::SinkTopicName;
use crate::processor::StreamPartitioner;
use crate::serde::{DefaultSerde, SharedSerde};
use crate::topology::graph::{NodeId, NodeKind, RecordType};
use crate::topology::task_builder::source_build;

/// Options of [`KStream::repartition`]: the topic's name, partition count and partitioner.
#[non_exhaustive]
pub struct Repartitioned<K, V> {
    name: Option<String>,
    partitions: Option<i32>,
    partitioner: Option<StreamPartitioner<K, V>>,
}

impl<K, V> Default for Repartitioned<K, V> {
    fn default() -> Self {
        Self {
            name: None,
            partitions: None,
            partitioner: None,
        }
    }
}

impl<K, V> Clone for Repartitioned<K, V> {
    fn clone(&self) -> Self {
        Self {
            name: self.name.clone(),
            partitions: self.partitions,
            partitioner: self.partitioner.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for Repartitioned<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Repartitioned")
            .field("name", &self.name)
            .field("partitions", &self.partitions)
            .field("partitioner", &self.partitioner.is_some())
            .finish()
    }
}

impl<K, V> Repartitioned<K, V> {
    /// A repartition named `name`: its topic is `<application.id>-<name>-repartition`.
    /// Name it, so that a change elsewhere in the topology does not rename the topic.
    pub fn as_(name: &str) -> Self {
        Self::default().with_name(name)
    }

    /// Sets the name (default: a generated `KSTREAM-REPARTITION-<n>`).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Sets the partition count of the topic (default: that of the input topics).
    #[must_use]
    pub fn with_number_of_partitions(mut self, partitions: i32) -> Self {
        self.partitions = Some(partitions);
        self
    }

    /// Sets how each record's partition is chosen (Kafka Streams'
    /// `withStreamPartitioner`): as [`Produced::with_partitioner`].
    #[must_use]
    pub fn with_stream_partitioner(
        mut self,
        partitioner: impl Fn(&str, Option<&K>, Option<&V>, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(std::sync::Arc::new(partitioner));
        self
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KStream<K, V> {
    /// This stream, written to the internal topic `<application.id>-<name>-repartition` and
    /// read back from it, so that records with the same key meet in the same task. What
    /// follows runs in a new sub-topology.
    ///
    /// ```
    /// # use homa::dsl::{Repartitioned, StreamsBuilder};
    /// let mut builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, String>("clicks")
    ///     .select_key(|_k, page| page.clone())
    ///     .repartition(Repartitioned::as_("by-page"))
    ///     .to("clicks-by-page");
    /// ```
    pub fn repartition(&self, options: Repartitioned<K, V>) -> KStream<K, V> {
        self.repartition_with_serdes(options, (K::default_serde(), V::default_serde()))
    }

    /// [`repartition`](Self::repartition), the topic written and read with `serdes`.
    pub(crate) fn repartition_with_serdes(
        &self,
        options: Repartitioned<K, V>,
        (keys, values): (SharedSerde<K>, SharedSerde<V>),
    ) -> KStream<K, V> {
        let mut state = self.state.borrow_mut();
        let name = options
            .name
            .unwrap_or_else(|| state.name("KSTREAM-REPARTITION"));
        let topic = format!("{name}-repartition");
        state.graph.add_internal_topic(&topic, options.partitions);
        let sink = state.add_sink::<K, V>(
            &format!("{topic}-sink"),
            SinkTopicName::Fixed(topic.clone()),
            &[self.node],
            &Produced {
                key_serde: Some(keys.clone()),
                value_serde: Some(values.clone()),
                name: None,
                partitioner: options.partitioner,
            },
        );
        let source = sink.and_then(|_| {
            let kind = NodeKind::Source {
                topics: vec![topic.clone()],
            };
            let build = source_build(keys, values, None);
            let types = Some(RecordType::of::<K, V>());
            state
                .graph
                .add(&format!("{topic}-source"), kind, &[], None, types, build)
        });
        let node = state.or_report(source, NodeId(0));
        KStream::new(self.state.clone(), node)
    }
}

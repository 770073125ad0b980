//! `to`: write the stream to a topic.

use std::sync::Arc;

use super::KStream;
use crate::processor::SinkTopic;
use crate::serde::DefaultSerde;
use crate::topology::graph::{NodeKind, RecordType};
use crate::topology::task_builder::sink_build;

impl<K: DefaultSerde, V: DefaultSerde> KStream<K, V> {
    /// Writes every record to `topic` with the default serdes of `K` and `V`, partitioned by
    /// the serialized key as Kafka's default partitioner does.
    pub fn to(&self, topic: &str) {
        let mut state = self.state.borrow_mut();
        let name = state.name("KSTREAM-SINK");
        let fixed: Arc<str> = Arc::from(topic);
        let build = sink_build(
            move || SinkTopic::Fixed(fixed.clone()),
            K::default_serde(),
            V::default_serde(),
        );
        let kind = NodeKind::Sink {
            topic: Some(topic.to_string()),
        };
        if let Err(e) = state.graph.add(
            &name,
            kind,
            &[self.node],
            Some(RecordType::of::<K, V>()),
            None,
            build,
        ) {
            state.errors.push(e);
        }
    }
}

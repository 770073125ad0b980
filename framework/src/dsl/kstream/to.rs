//! `to`: write the stream to a topic, or to a topic chosen per record.

use std::sync::Arc;

use super::KStream;
use crate::dsl::Produced;
use crate::dsl::builder::SinkTopicName;
use crate::serde::DefaultSerde;

impl<K: DefaultSerde, V: DefaultSerde> KStream<K, V> {
    /// Writes every record to `topic` with the default serdes of `K` and `V`, partitioned by
    /// the serialized key as Kafka's default partitioner does.
    pub fn to(&self, topic: &str) {
        self.to_with(topic, Produced::default());
    }

    /// Writes every record to `topic` as `produced` says (serdes, sink name).
    pub fn to_with(&self, topic: &str, produced: Produced<K, V>) {
        self.sink(SinkTopicName::Fixed(topic.to_string()), &produced);
    }

    /// Writes each record to the topic `chooser(key, value)` names, as Kafka Streams'
    /// `to(TopicNameExtractor)`. The topics must exist.
    pub fn to_dynamic(
        &self,
        chooser: impl Fn(Option<&K>, Option<&V>) -> String + Send + Sync + 'static,
        produced: Produced<K, V>,
    ) {
        self.sink(SinkTopicName::PerRecord(Arc::new(chooser)), &produced);
    }

    fn sink(&self, topic: SinkTopicName<K, V>, produced: &Produced<K, V>) {
        let mut state = self.state.borrow_mut();
        let name = match &produced.name {
            Some(name) => name.clone(),
            None => state.name("KSTREAM-SINK"),
        };
        if let Err(e) = state.add_sink::<K, V>(&name, topic, &[self.node], produced) {
            state.errors.push(e);
        }
    }
}

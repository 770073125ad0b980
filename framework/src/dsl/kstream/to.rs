//! `to`: write the stream to a topic.

use super::KStream;
use crate::serde::DefaultSerde;

impl<K: DefaultSerde, V: DefaultSerde> KStream<K, V> {
    /// Writes every record to `topic` with the default serdes of `K` and `V`, partitioned by
    /// the serialized key as Kafka's default partitioner does.
    pub fn to(&self, topic: &str) {
        let mut state = self.state.borrow_mut();
        let name = state.name("KSTREAM-SINK");
        if let Err(e) = state.add_sink::<K, V>(&name, topic, &[self.node]) {
            state.errors.push(e);
        }
    }
}

//! `KTable::to_stream`: the table's updates as a stream.

use super::{Change, KTable};
use crate::dsl::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The table's updates as a stream: each new value of a key, a delete as a tombstone.
    pub fn to_stream(&self) -> KStream<K, V> {
        let node = self.then("KTABLE-TOSTREAM", || ToStream);
        KStream::new(self.state.clone(), node)
    }
}

struct ToStream;

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, Change<V>, K, V> for ToStream {
    fn process(
        &mut self,
        mut record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        let new = record.value.take().and_then(|c| c.new);
        ctx.forward(record.with_value(new))
    }
}

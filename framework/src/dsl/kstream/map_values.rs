//! `map_values`: a new value for each record, the key unchanged.

use std::sync::Arc;

use super::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

struct MapValues<F>(Arc<F>);

impl<K, V, VR, F> Processor<K, V, K, VR> for MapValues<F>
where
    K: Clone + 'static,
    V: 'static,
    VR: Clone + 'static,
    F: Fn(&V) -> VR + 'static,
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let value = record.value.as_ref().map(|v| (self.0)(v));
        ctx.forward(record.with_value(value))
    }
}

impl<K: Clone + 'static, V: 'static> KStream<K, V> {
    /// Each record with its value replaced by `mapper(value)`; the key, timestamp and headers
    /// stay, so no repartition follows. A tombstone stays a tombstone.
    pub fn map_values<VR: Clone + 'static>(
        &self,
        mapper: impl Fn(&V) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        let mapper = Arc::new(mapper);
        self.then("KSTREAM-MAPVALUES", move || MapValues(mapper.clone()))
    }
}

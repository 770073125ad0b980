//! `map_values`: a new value for each record, the key unchanged.

use super::KStream;
use crate::dsl::per_record::each;

impl<K: Clone + 'static, V: 'static> KStream<K, V> {
    /// Each record with its value replaced by `mapper(value)`; the key, timestamp and headers
    /// stay, so no repartition follows. A tombstone stays a tombstone.
    pub fn map_values<VR: Clone + 'static>(
        &self,
        mapper: impl Fn(&V) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR> {
        self.then(
            "KSTREAM-MAPVALUES",
            each(move |record, ctx| {
                let value = record.value.as_ref().map(&mapper);
                ctx.forward(record.with_value(value))
            }),
        )
    }
}

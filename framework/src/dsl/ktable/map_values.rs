//! `KTable::map_values`: each row's value mapped.

use std::sync::Arc;

use super::{Change, KTable};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// Each row's value replaced by `mapper(value)`; a delete stays a delete.
    pub fn map_values<VR: Clone + 'static>(
        &self,
        mapper: impl Fn(&V) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR> {
        let mapper = Arc::new(mapper);
        let for_processor = mapper.clone();
        // Old values are mapped when they come: only when an operator downstream asked its
        // root for them.
        let node = self.then("KTABLE-MAPVALUES", move || MapValues {
            mapper: for_processor.clone(),
        });
        let getter = self
            .getter
            .derived(Arc::new(move |_: &K, value: V| Some(mapper(&value))));
        self.derived(node, getter)
    }
}

struct MapValues<F> {
    mapper: Arc<F>,
}

impl<K, V, VR, F> Processor<K, Change<V>, K, Change<VR>> for MapValues<F>
where
    K: Clone + 'static,
    V: 'static,
    VR: Clone + 'static,
    F: Fn(&V) -> VR + 'static,
{
    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let change = record.value.as_ref().map(|c| Change {
            new: c.new.as_ref().map(|v| (self.mapper)(v)),
            old: c.old.as_ref().map(|v| (self.mapper)(v)),
        });
        ctx.forward(record.with_value(change))
    }
}

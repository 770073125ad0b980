//! `KTable::filter`: the rows for which a predicate holds.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use super::{Change, KTable};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

impl<K: Clone + 'static, V: Clone + 'static> KTable<K, V> {
    /// The rows for which `predicate(key, value)` holds; a row that stops matching is
    /// deleted downstream. Over a table that knows its old values (kept in a store), a row
    /// that neither matched nor matches sends nothing; over one that does not (a source
    /// table without a store), every row that fails is sent as a tombstone, as in Kafka
    /// Streams.
    pub fn filter(&self, predicate: impl Fn(&K, &V) -> bool + Send + Sync + 'static) -> Self {
        let predicate = Arc::new(predicate);
        let old_values = self.old_values();
        let for_processor = predicate.clone();
        let node = self.then("KTABLE-FILTER", move || Filter {
            predicate: for_processor.clone(),
            old_values: old_values.load(Ordering::Relaxed),
        });
        let getter = self.getter.derived(Arc::new(move |key: &K, value: V| {
            predicate(key, &value).then_some(value)
        }));
        self.derived(node, getter)
    }
}

struct Filter<F> {
    predicate: Arc<F>,
    /// Whether the changes coming in carry old values.
    old_values: bool,
}

impl<K, V, F> Processor<K, Change<V>, K, Change<V>> for Filter<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(&K, &V) -> bool + 'static,
{
    fn process(
        &mut self,
        mut record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let (Some(key), Some(change)) = (&record.key, record.value.take()) else {
            return Ok(());
        };
        let keep = |v: Option<V>| v.filter(|v| (self.predicate)(key, v));
        let change = Change {
            new: keep(change.new),
            old: if self.old_values {
                keep(change.old)
            } else {
                None
            },
        };
        if self.old_values && change.new.is_none() && change.old.is_none() {
            return Ok(());
        }
        ctx.forward(record.with_value(Some(change)))
    }
}

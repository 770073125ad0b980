//! `filter` and `filter_not`: keep the records a predicate accepts (or rejects).

use std::sync::Arc;

use super::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

/// Forwards the records whose predicate result is `keep`; tombstones always.
struct Filter<F> {
    predicate: Arc<F>,
    keep: bool,
}

impl<K, V, F> Processor<K, V> for Filter<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(Option<&K>, &V) -> bool + 'static,
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        let pass = match &record.value {
            Some(value) => (self.predicate)(record.key.as_ref(), value) == self.keep,
            None => true,
        };
        if pass { ctx.forward(record) } else { Ok(()) }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// The records for which `predicate(key, value)` is true. Tombstones pass.
    ///
    /// ```
    /// # use homa::dsl::StreamsBuilder;
    /// let mut builder = StreamsBuilder::new();
    /// let big = builder.stream::<String, f64>("totals").filter(|_key, total| *total > 100.0);
    /// # big.to("big-totals");
    /// ```
    pub fn filter(
        &self,
        predicate: impl Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filtered(predicate, true)
    }

    /// The records for which `predicate(key, value)` is false. Tombstones pass.
    pub fn filter_not(
        &self,
        predicate: impl Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.filtered(predicate, false)
    }

    fn filtered(
        &self,
        predicate: impl Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
        keep: bool,
    ) -> Self {
        let predicate = Arc::new(predicate);
        self.then("KSTREAM-FILTER", move || Filter {
            predicate: predicate.clone(),
            keep,
        })
    }
}

//! `filter` and `filter_not`: keep the records a predicate accepts (or rejects).

use super::KStream;
use crate::dsl::per_record::each;

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
        self.then(
            "KSTREAM-FILTER",
            each(move |record, ctx| {
                let pass = match &record.value {
                    Some(value) => predicate(record.key.as_ref(), value) == keep,
                    None => true,
                };
                if pass { ctx.forward(record) } else { Ok(()) }
            }),
        )
    }
}

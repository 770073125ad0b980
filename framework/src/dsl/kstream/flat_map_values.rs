//! `flat_map_values`: zero or more values for each record, the key unchanged.

use super::KStream;
use crate::dsl::per_record::each;
use crate::processor::Record;

impl<K: Clone + 'static, V: 'static> KStream<K, V> {
    /// Each record replaced by one record per value of `mapper(value)`, with the same key. A
    /// tombstone stays one tombstone.
    ///
    /// ```
    /// # use homa::dsl::StreamsBuilder;
    /// let mut builder = StreamsBuilder::new();
    /// let words = builder
    ///     .stream::<String, String>("lines")
    ///     .flat_map_values(|line| line.split_whitespace().map(str::to_owned).collect::<Vec<_>>());
    /// # words.to("words");
    /// ```
    pub fn flat_map_values<VR, I>(
        &self,
        mapper: impl Fn(&V) -> I + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        VR: Clone + 'static,
        I: IntoIterator<Item = VR> + 'static,
    {
        self.then(
            "KSTREAM-FLATMAPVALUES",
            each(move |record, ctx| {
                let Some(value) = &record.value else {
                    return ctx.forward(record.with_value(None));
                };
                for out in mapper(value) {
                    let copy = Record::from_parts(
                        record.key.clone(),
                        Some(out),
                        record.timestamp,
                        record.headers.clone(),
                    );
                    ctx.forward(copy)?;
                }
                Ok(())
            }),
        )
    }
}

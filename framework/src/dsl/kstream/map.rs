//! `map`, `flat_map` and `select_key`: new keys (and values) for each record.

use super::KStream;
use crate::dsl::per_record::each;
use crate::processor::Record;

/// Why these operators drop a tombstone: their closures compute the new key from the value.
const TOMBSTONE: &str = "a null value cannot be mapped to a new key";

impl<K: 'static, V: 'static> KStream<K, V> {
    /// Each record replaced by `mapper(key, value)`, a new key and value. A tombstone cannot
    /// be mapped: it is dropped, counted and logged.
    pub fn map<KR, VR>(
        &self,
        mapper: impl Fn(Option<&K>, &V) -> (KR, VR) + Send + Sync + 'static,
    ) -> KStream<KR, VR>
    where
        KR: Clone + 'static,
        VR: Clone + 'static,
    {
        self.flat_mapped("KSTREAM-MAP", move |k, v| std::iter::once(mapper(k, v)))
    }

    /// Each record replaced by the records `mapper(key, value)` yields, zero or more. A
    /// tombstone is dropped, counted and logged.
    pub fn flat_map<KR, VR, I>(
        &self,
        mapper: impl Fn(Option<&K>, &V) -> I + Send + Sync + 'static,
    ) -> KStream<KR, VR>
    where
        KR: Clone + 'static,
        VR: Clone + 'static,
        I: IntoIterator<Item = (KR, VR)> + 'static,
    {
        self.flat_mapped("KSTREAM-FLATMAP", mapper)
    }

    /// Forwards the records `mapper` makes of each record, with its timestamp and headers,
    /// under a node named `PREFIX-<n>`; a tombstone has no value to map and is dropped.
    fn flat_mapped<KR, VR, I>(
        &self,
        prefix: &str,
        mapper: impl Fn(Option<&K>, &V) -> I + Send + Sync + 'static,
    ) -> KStream<KR, VR>
    where
        KR: Clone + 'static,
        VR: Clone + 'static,
        I: IntoIterator<Item = (KR, VR)>,
    {
        self.then(
            prefix,
            each(move |record, ctx| {
                let Some(value) = &record.value else {
                    ctx.drop_record(TOMBSTONE);
                    return Ok(());
                };
                for (key, value) in mapper(record.key.as_ref(), value) {
                    let out = Record::from_parts(
                        Some(key),
                        Some(value),
                        record.timestamp,
                        record.headers.clone(),
                    );
                    ctx.forward(out)?;
                }
                Ok(())
            }),
        )
        .keys_changed()
    }
}

impl<K: 'static, V: Clone + 'static> KStream<K, V> {
    /// Each record with the key `selector(key, value)`, its value unchanged. A later
    /// grouping or join repartitions by the new key. A tombstone is dropped, counted and
    /// logged.
    pub fn select_key<KR: Clone + 'static>(
        &self,
        selector: impl Fn(Option<&K>, &V) -> KR + Send + Sync + 'static,
    ) -> KStream<KR, V> {
        self.flat_mapped("KSTREAM-KEY-SELECT", move |k, v| {
            std::iter::once((selector(k, v), v.clone()))
        })
    }
}

//! `map`, `flat_map` and `select_key`: new keys (and values) for each record.

use std::sync::Arc;

use super::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

/// Why these operators drop a tombstone: their closures compute the new key from the value.
const TOMBSTONE: &str = "a null value cannot be mapped to a new key";

struct FlatMap<F>(Arc<F>);

impl<K, V, KR, VR, I, F> Processor<K, V, KR, VR> for FlatMap<F>
where
    K: 'static,
    V: 'static,
    KR: Clone + 'static,
    VR: Clone + 'static,
    I: IntoIterator<Item = (KR, VR)>,
    F: Fn(Option<&K>, &V) -> I + 'static,
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<KR, VR>,
    ) -> Result<(), ProcessError> {
        let Some(value) = &record.value else {
            ctx.drop_record(TOMBSTONE);
            return Ok(());
        };
        for (key, value) in (self.0)(record.key.as_ref(), value) {
            let out = Record::from_parts(
                Some(key),
                Some(value),
                record.timestamp,
                record.headers.clone(),
            );
            ctx.forward(out)?;
        }
        Ok(())
    }
}

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
        let mapper = Arc::new(move |k: Option<&K>, v: &V| std::iter::once(mapper(k, v)));
        self.then("KSTREAM-MAP", move || FlatMap(mapper.clone()))
            .keys_changed()
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
        let mapper = Arc::new(mapper);
        self.then("KSTREAM-FLATMAP", move || FlatMap(mapper.clone()))
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
        let selector =
            Arc::new(move |k: Option<&K>, v: &V| std::iter::once((selector(k, v), v.clone())));
        self.then("KSTREAM-KEY-SELECT", move || FlatMap(selector.clone()))
            .keys_changed()
    }
}

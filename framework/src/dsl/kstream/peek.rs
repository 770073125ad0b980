//! `peek` and `foreach`: look at each record, for side effects.

use super::KStream;
use crate::dsl::per_record::each;

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Calls `action(key, value)` on each record and passes it on unchanged. Tombstones pass
    /// without a call.
    pub fn peek(&self, action: impl Fn(Option<&K>, &V) + Send + Sync + 'static) -> Self {
        self.peeked("KSTREAM-PEEK", action, true)
    }

    /// Calls `action(key, value)` on each record; the stream ends here. Tombstones are not
    /// passed to it.
    pub fn foreach(&self, action: impl Fn(Option<&K>, &V) + Send + Sync + 'static) {
        self.peeked("KSTREAM-FOREACH", action, false);
    }

    /// Calls `action` on each record with a value, under a node named `PREFIX-<n>`; forwards
    /// every record when `forward`.
    fn peeked(
        &self,
        prefix: &str,
        action: impl Fn(Option<&K>, &V) + Send + Sync + 'static,
        forward: bool,
    ) -> Self {
        self.then(
            prefix,
            each(move |record, ctx| {
                if let Some(value) = &record.value {
                    action(record.key.as_ref(), value);
                }
                if forward { ctx.forward(record) } else { Ok(()) }
            }),
        )
    }
}

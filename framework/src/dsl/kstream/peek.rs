//! `peek` and `foreach`: look at each record, for side effects.

use std::sync::Arc;

use super::KStream;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

/// Calls the action on each record with a value; forwards every record when `forward`.
struct Peek<F> {
    action: Arc<F>,
    forward: bool,
}

impl<K, V, F> Processor<K, V> for Peek<F>
where
    K: Clone + 'static,
    V: Clone + 'static,
    F: Fn(Option<&K>, &V) + 'static,
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        if let Some(value) = &record.value {
            (self.action)(record.key.as_ref(), value);
        }
        if self.forward {
            ctx.forward(record)
        } else {
            Ok(())
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Calls `action(key, value)` on each record and passes it on unchanged. Tombstones pass
    /// without a call.
    pub fn peek(&self, action: impl Fn(Option<&K>, &V) + Send + Sync + 'static) -> Self {
        let action = Arc::new(action);
        self.then("KSTREAM-PEEK", move || Peek {
            action: action.clone(),
            forward: true,
        })
    }

    /// Calls `action(key, value)` on each record; the stream ends here. Tombstones are not
    /// passed to it.
    pub fn foreach(&self, action: impl Fn(Option<&K>, &V) + Send + Sync + 'static) {
        let action = Arc::new(action);
        let _end: KStream<K, V> = self.then("KSTREAM-FOREACH", move || Peek {
            action: action.clone(),
            forward: false,
        });
    }
}

//! The processor of an operator that keeps no state: a function of each record.

use std::sync::Arc;

use crate::processor::{ProcessError, Processor, ProcessorContext, Record};

/// Runs its function on each record; the function forwards through the context.
pub(crate) struct PerRecord<F>(Arc<F>);

impl<K, V, KOut, VOut, F> Processor<K, V, KOut, VOut> for PerRecord<F>
where
    K: 'static,
    V: 'static,
    KOut: 'static,
    VOut: 'static,
    F: Fn(Record<K, V>, &mut ProcessorContext<KOut, VOut>) -> Result<(), ProcessError> + 'static,
{
    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<KOut, VOut>,
    ) -> Result<(), ProcessError> {
        (self.0)(record, ctx)
    }
}

/// The factory of a processor that runs `handle` on each record: one function, shared by
/// the processors of every task.
pub(crate) fn each<K, V, KOut, VOut, F>(handle: F) -> impl Fn() -> PerRecord<F> + Send + Sync
where
    F: Fn(Record<K, V>, &mut ProcessorContext<KOut, VOut>) -> Result<(), ProcessError>
        + Send
        + Sync
        + 'static,
{
    let handle = Arc::new(handle);
    move || PerRecord(handle.clone())
}

//! The aggregation of time windows, tumbling and hopping (Kafka Streams'
//! `KStreamWindowAggregate`): a record goes into every window that holds its timestamp and
//! is still open; a window closes once the processor's stream time (the largest timestamp it
//! saw) reaches its end plus the grace period, and a record for a closed window is dropped.
//! A window's aggregate is stamped with the largest timestamp of its records.

use super::TimeWindows;
use super::aggregation::{WindowedAggregate, drop_late};
use crate::dsl::ktable::Change;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::state::Windowed;

pub(crate) type TimeWindowAggregate<K, V, VA> = WindowedAggregate<K, V, VA, TimeWindows>;

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for TimeWindowAggregate<K, V, VA>
where
    K: Clone + 'static,
    V: 'static,
    VA: Clone + 'static,
{
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        if self.emit_on_close {
            self.closes.resume(ctx);
        }
        self.store.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        let Some(key) = &record.key else {
            ctx.drop_record("a windowed aggregation needs a key");
            return Ok(());
        };
        if record.value.is_none() && !self.aggregation.takes_no_value {
            ctx.drop_record("a windowed reduce or aggregate needs a value");
            return Ok(());
        }
        let timestamp = record.timestamp;
        self.stream_time = self.stream_time.max(timestamp);
        let close_time = self.stream_time - self.windows.grace_ms();
        let store = self.store.store()?;
        for window in self.windows.windows_for(timestamp) {
            if window.end() <= close_time {
                let window = format!("[{},{})", window.start(), window.end());
                drop_late(ctx, timestamp, &window, (close_time, self.stream_time));
                continue;
            }
            let (old, new_timestamp) = match store.get(key, window.start())? {
                Some(old) => (Some(old.value), old.timestamp.max(timestamp)),
                None => ((self.aggregation.init)(), timestamp),
            };
            // A copy of the old aggregate only when it goes downstream.
            let kept = if self.store.forwards_old() {
                old.clone()
            } else {
                None
            };
            let new = (self.aggregation.add)(key, record.value.as_ref(), old);
            let old = kept;
            self.store.put(
                ctx,
                key,
                window,
                (old, new),
                (new_timestamp, &record.headers),
            )?;
        }
        if self.emit_on_close {
            self.emit_closed(ctx, close_time, &record)?;
        }
        Ok(())
    }
}

impl<K, V, VA> TimeWindowAggregate<K, V, VA>
where
    K: Clone + 'static,
    VA: Clone + 'static,
{
    /// Emits the windows that closed since the last emission, as Kafka Streams' emit on
    /// window close bounds them.
    fn emit_closed(
        &mut self,
        ctx: &mut ProcessorContext<Windowed<K>, Change<VA>>,
        close_time: i64,
        record: &Record<K, V>,
    ) -> Result<(), ProcessError> {
        if !self.closes.due(ctx, close_time) {
            return Ok(());
        }
        let size = self.windows.size_ms();
        let upper = close_time - size;
        if upper < 0 {
            return Ok(());
        }
        let last = self.closes.last_close;
        let lower = if last == -1 {
            0
        } else {
            (last - size).max(0) + 1
        };
        // No window ends between the two bounds: nothing closed since.
        if last != -1 && self.windows.windows_for(upper) == self.windows.windows_for(lower - 1) {
            return Ok(());
        }
        self.store
            .emit_final(ctx, (lower, upper), &record.headers)?;
        self.closes.emitted(ctx, close_time);
        Ok(())
    }
}

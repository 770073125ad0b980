//! The aggregation of sliding windows (KIP-450, Kafka Streams'
//! `KStreamSlidingWindowAggregate`): windows `[start, start + time difference]`, both ends
//! included, made by the records themselves. A record makes its left window (ending at
//! it) and, when a later record is near enough, its right window (starting just after it);
//! it is added to every existing window that holds it, and an out-of-order record also makes
//! the right window of the record before it. A record earlier than the time difference goes
//! into the window `[0, time difference]`.
//!
//! The existing windows are read newest first, as Kafka Streams reads them from its stores,
//! so that updates go downstream in the same order.

use std::collections::HashSet;

use super::SlidingWindows;
use super::aggregation::{WindowedAggregate, drop_late};
use crate::dsl::ktable::Change;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::state::{ValueAndTimestamp, Window, Windowed};

type Context<K, VA> = ProcessorContext<Windowed<K>, Change<VA>>;

pub(crate) type SlidingWindowAggregate<K, V, VA> = WindowedAggregate<K, V, VA, SlidingWindows>;

/// What the windows read around a record say: the aggregates its own windows start from,
/// and which windows exist.
struct Around<VA> {
    starts: HashSet<i64>,
    left: Option<ValueAndTimestamp<VA>>,
    right: Option<ValueAndTimestamp<VA>>,
    left_exists: bool,
    right_exists: bool,
    /// The timestamp of the record before this one, when its right window may be missing.
    previous: Option<i64>,
}

impl<VA> Default for Around<VA> {
    fn default() -> Self {
        Self {
            starts: HashSet::new(),
            left: None,
            right: None,
            left_exists: false,
            right_exists: false,
            previous: None,
        }
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for SlidingWindowAggregate<K, V, VA>
where
    K: Clone + 'static,
    V: 'static,
    VA: Clone + 'static,
{
    fn init(&mut self, ctx: &mut Context<K, VA>) -> Result<(), ProcessError> {
        if self.emit_on_close {
            self.closes.resume(ctx);
        }
        self.store.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut Context<K, VA>,
    ) -> Result<(), ProcessError> {
        let (Some(key), Some(_)) = (&record.key, &record.value) else {
            // As Kafka Streams: a sliding window aggregation skips records without a value.
            ctx.drop_record("a sliding window aggregation needs a key and a value");
            return Ok(());
        };
        let timestamp = record.timestamp;
        self.stream_time = self.stream_time.max(timestamp);
        let close_time = self.stream_time - self.windows.grace_ms();
        let difference = self.windows.time_difference_ms();
        if timestamp.saturating_add(difference) < close_time {
            let window = format!("[{},{}]", timestamp, timestamp + difference);
            drop_late(ctx, timestamp, &window, (close_time, self.stream_time));
            return Ok(());
        }
        if timestamp < difference {
            // Kafka Streams emits no closed windows after an early record.
            return self.process_early(ctx, key, &record, close_time);
        }
        let around = self.read_around(ctx, key, &record, close_time)?;
        if let Some(around) = around {
            self.create_windows(ctx, key, &record, close_time, around)?;
        }
        if self.emit_on_close {
            self.emit_closed(ctx, close_time, &record)?;
        }
        Ok(())
    }
}

impl<K, V, VA> SlidingWindowAggregate<K, V, VA>
where
    K: Clone + 'static,
    VA: Clone + 'static,
{
    fn window(&self, start: i64) -> Window {
        Window::new(start, start + self.windows.time_difference_ms())
    }

    /// Reads `key`'s windows that may hold the record or tell about its neighbours, newest
    /// first, adding the record to those that hold it (Kafka Streams' `processReverse`).
    /// `None` when the record's left window exists and already holds a later record: then
    /// every window the record needs exists.
    fn read_around(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        close_time: i64,
    ) -> Result<Option<Around<VA>>, ProcessError> {
        let (timestamp, difference) = (record.timestamp, self.windows.time_difference_ms());
        let from = (timestamp - 2 * difference).max(0);
        let windows = self
            .store
            .store()?
            .backward_fetch(key, from, timestamp + 1)?;
        let mut around = Around::default();
        for (start, aggregate) in windows {
            around.starts.insert(start);
            let end = start + difference;
            let newest = aggregate.timestamp;
            if start == timestamp + 1 {
                around.right_exists = true;
            } else if end > timestamp {
                if around.right.is_none() {
                    around.right = Some(aggregate.clone());
                }
                self.update(
                    ctx,
                    key,
                    record,
                    self.window(start),
                    Some(aggregate),
                    close_time,
                )?;
            } else if end == timestamp {
                around.left_exists = true;
                self.update(
                    ctx,
                    key,
                    record,
                    self.window(start),
                    Some(aggregate),
                    close_time,
                )?;
                if newest < timestamp {
                    around.previous = Some(newest);
                } else {
                    return Ok(None);
                }
            } else {
                around.left = Some(aggregate);
                around.previous = Some(newest);
                break;
            }
        }
        Ok(Some(around))
    }

    /// Creates the windows the record needs that do not exist yet: the right window of the
    /// record before it, its own left window, and its own right window.
    fn create_windows(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        close_time: i64,
        around: Around<VA>,
    ) -> Result<(), ProcessError> {
        let (timestamp, difference) = (record.timestamp, self.windows.time_difference_ms());
        if let Some(previous) = around.previous {
            let start = previous + 1;
            if !around.starts.contains(&start) && start + difference >= timestamp {
                self.create_empty(ctx, key, record, start, close_time)?;
            }
        }
        if !around.left_exists {
            let left = match (&around.left, around.previous) {
                // The record before falls in this one's left window.
                (Some(left), Some(previous)) if timestamp - difference <= previous => {
                    Some(ValueAndTimestamp::make(left.value.clone(), timestamp))
                }
                _ => (self.aggregation.init)().map(|v| ValueAndTimestamp::make(v, timestamp)),
            };
            let window = self.window(timestamp - difference);
            self.update(ctx, key, record, window, left, close_time)?;
        }
        if !around.right_exists {
            self.create_right(ctx, key, record, around.right)?;
        }
        Ok(())
    }

    /// A record earlier than the time difference: into the window `[0, time difference]`
    /// (Kafka Streams' `processEarly`).
    fn process_early(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        close_time: i64,
    ) -> Result<(), ProcessError> {
        let timestamp = record.timestamp;
        let windows = self.store.store()?.fetch(key, 0, timestamp + 1)?;
        let mut around = Around::default();
        let mut combined = None;
        for (start, aggregate) in windows {
            around.starts.insert(start);
            if start == 0 {
                if aggregate.timestamp < timestamp {
                    around.previous = Some(aggregate.timestamp);
                }
                combined = Some(aggregate);
            } else if start <= timestamp {
                around.right = Some(aggregate.clone());
                self.update(
                    ctx,
                    key,
                    record,
                    self.window(start),
                    Some(aggregate),
                    close_time,
                )?;
            } else if start == timestamp + 1 {
                around.right_exists = true;
            }
        }
        // Without a right window found, the combined window holds only records of this
        // one's right window, if any is later than it.
        if around.right.is_none()
            && let Some(combined) = combined.as_ref().filter(|c| c.timestamp > timestamp)
        {
            around.right = Some(combined.clone());
        }
        if !around.right_exists {
            self.create_right(ctx, key, record, around.right)?;
        }
        if let Some(previous) = around.previous
            && !around.starts.contains(&(previous + 1))
        {
            self.create_empty(ctx, key, record, previous + 1, close_time)?;
        }
        let combined = match combined {
            Some(combined) => Some(combined),
            None => (self.aggregation.init)().map(|v| ValueAndTimestamp::make(v, timestamp)),
        };
        self.update(ctx, key, record, self.window(0), combined, close_time)
    }

    /// The record's right window, with the aggregate `right` of the records after it, when
    /// there are any.
    fn create_right(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        right: Option<ValueAndTimestamp<VA>>,
    ) -> Result<(), ProcessError> {
        let Some(right) = right.filter(|r| r.timestamp > record.timestamp) else {
            return Ok(());
        };
        let window = self.window(record.timestamp + 1);
        self.store.put(
            ctx,
            key,
            window,
            (None, right.value),
            (right.timestamp, &record.headers),
        )
    }

    /// A new window starting at `start`, holding this record alone.
    fn create_empty(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        start: i64,
        close_time: i64,
    ) -> Result<(), ProcessError> {
        let empty = (self.aggregation.init)().map(|v| ValueAndTimestamp::make(v, record.timestamp));
        self.update(ctx, key, record, self.window(start), empty, close_time)
    }

    /// Adds the record to `window`, whose aggregate is `aggregate`, unless it closed.
    fn update(
        &self,
        ctx: &mut Context<K, VA>,
        key: &K,
        record: &Record<K, V>,
        window: Window,
        aggregate: Option<ValueAndTimestamp<VA>>,
        close_time: i64,
    ) -> Result<(), ProcessError> {
        let timestamp = record.timestamp;
        if window.end() < close_time {
            let shown = format!("[{},{}]", window.start(), window.end());
            drop_late(ctx, timestamp, &shown, (close_time, self.stream_time));
            return Ok(());
        }
        let (old, newest) = match aggregate {
            Some(a) => (Some(a.value), a.timestamp.max(timestamp)),
            None => (None, timestamp),
        };
        // A copy of the old aggregate only when it goes downstream.
        let kept = if self.store.forwards_old() {
            old.clone()
        } else {
            None
        };
        let new = (self.aggregation.add)(key, record.value.as_ref(), old);
        let old = kept;
        self.store
            .put(ctx, key, window, (old, new), (newest, &record.headers))
    }

    /// Emits the windows that closed since the last emission.
    fn emit_closed(
        &mut self,
        ctx: &mut Context<K, VA>,
        close_time: i64,
        record: &Record<K, V>,
    ) -> Result<(), ProcessError> {
        if !self.closes.due(ctx, close_time) {
            return Ok(());
        }
        let difference = self.windows.time_difference_ms();
        // Both ends of a sliding window are in it: closed windows end before the close time.
        let upper = close_time - difference - 1;
        if upper < 0 {
            return Ok(());
        }
        let last = self.closes.last_close;
        let lower = if last == -1 {
            0
        } else {
            (last - difference).max(0)
        };
        self.store
            .emit_final(ctx, (lower, upper), &record.headers)?;
        self.closes.emitted(ctx, close_time);
        Ok(())
    }
}

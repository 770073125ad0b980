//! What the windowed aggregation processors share: the aggregation itself (count, reduce or
//! aggregate, as a start and a step), the store of time and sliding windows with how its
//! changes go downstream (at once, or through the record cache's flush listener as Kafka
//! Streams' `TimestampedCacheFlushListener`), and the throttle of emitting on window close.

use std::sync::Arc;

use crate::dsl::ktable::Change;
use crate::dsl::table_store::flushed;
use crate::header::Headers;
use crate::processor::{ProcessError, ProcessorContext, Record};
use crate::state::segmented::split_window_key;
use crate::state::{TimestampedWindowStore, ValueAndTimestamp, Window, Windowed};

/// A window's aggregate after a record's value (`None`: a record without one), from the
/// one before (`None` only for a reduce's first record).
pub(crate) type Add<K, V, VA> = Arc<dyn Fn(&K, Option<&V>, Option<VA>) -> VA + Send + Sync>;

/// How a window's aggregate starts and takes each record (Kafka Streams' initializer and
/// aggregator; a reduce's first value is its first aggregate).
pub(crate) struct Aggregation<K, V, VA> {
    /// The aggregate of a window with no record yet (`None` for a reduce).
    pub(crate) init: Arc<dyn Fn() -> Option<VA> + Send + Sync>,
    /// The aggregate after each record.
    pub(crate) add: Add<K, V, VA>,
    /// Whether records without a value are aggregated (a count counts them, as in Kafka
    /// Streams); else they are dropped.
    pub(crate) takes_no_value: bool,
}

impl<K, V, VA> Clone for Aggregation<K, V, VA> {
    fn clone(&self) -> Self {
        Self {
            init: self.init.clone(),
            add: self.add.clone(),
            takes_no_value: self.takes_no_value,
        }
    }
}

impl<K, V> Aggregation<K, V, i64> {
    /// Counts records, those without a value too.
    pub(crate) fn count() -> Self {
        Self {
            init: Arc::new(|| Some(0)),
            add: Arc::new(|_, _, old| old.unwrap_or(0) + 1),
            takes_no_value: true,
        }
    }
}

impl<K, V: Clone + 'static> Aggregation<K, V, V> {
    /// Combines values with `reducer(aggregate, value)`.
    pub(crate) fn reduce(reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static) -> Self {
        Self {
            init: Arc::new(|| None),
            add: Arc::new(move |_, value, old| {
                let value = value.expect("a reduce is given records with values only");
                match old {
                    Some(old) => reducer(&old, value),
                    None => value.clone(),
                }
            }),
            takes_no_value: false,
        }
    }
}

impl<K, V, VA: 'static> Aggregation<K, V, VA> {
    /// Folds values with `aggregator(key, value, aggregate)` from `initializer()`.
    pub(crate) fn aggregate(
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> Self {
        let initializer = Arc::new(initializer);
        let init = initializer.clone();
        Self {
            init: Arc::new(move || Some(init())),
            add: Arc::new(move |key, value, old| {
                let value = value.expect("an aggregate is given records with values only");
                aggregator(key, value, old.unwrap_or_else(|| initializer()))
            }),
            takes_no_value: false,
        }
    }
}

/// The store of a time or sliding window aggregation processor, opened in its `init`.
pub(crate) struct WindowAggregateStore<K, VA> {
    name: Arc<str>,
    /// The windows' size, for the keys a cache's flush forwards.
    size_ms: i64,
    store: Option<TimestampedWindowStore<K, VA>>,
    /// Whether the store's cache forwards the updates (else the processor does).
    cached: bool,
    /// Whether updates carry old values (an operator downstream reads them).
    sends_old: bool,
    /// Whether windows go downstream only when they close, from the store.
    emit_on_close: bool,
}

impl<K: Clone + 'static, VA: Clone + 'static> WindowAggregateStore<K, VA> {
    pub(crate) fn new(name: Arc<str>, size_ms: i64, sends_old: bool, emit_on_close: bool) -> Self {
        Self {
            name,
            size_ms,
            store: None,
            cached: false,
            sends_old,
            emit_on_close,
        }
    }

    /// Opens the store; a caching store forwards what it flushes, unless windows are only
    /// emitted when they close.
    pub(crate) fn open(
        &mut self,
        ctx: &ProcessorContext<Windowed<K>, Change<VA>>,
    ) -> Result<(), ProcessError> {
        let store = ctx.timestamped_window_store::<K, VA>(&self.name)?;
        if !self.emit_on_close {
            let forwarder = ctx.forwarder();
            let serdes = store.view().clone();
            let (size, sends_old) = (self.size_ms, self.sends_old);
            self.cached =
                store.set_flush_listener(Box::new(move |key, new, old, timestamp, headers| {
                    let (key, start) = split_window_key(key).ok_or("a window store key")?;
                    let window = Window::new(start, start.saturating_add(size));
                    let key = Windowed::new(serdes.key_of(key)?, window);
                    let (change, timestamp) = flushed(&serdes, (new, old), sends_old, timestamp)?;
                    forwarder.forward(Record::from_parts(
                        Some(key),
                        Some(change),
                        timestamp,
                        headers.clone(),
                    ))
                }));
        }
        self.store = Some(store);
        Ok(())
    }

    /// Whether an update's old aggregate goes downstream from here: sent, forwarded by
    /// the processor itself. Else the processor need not keep a copy of it.
    pub(crate) fn forwards_old(&self) -> bool {
        self.sends_old && !self.cached && !self.emit_on_close
    }

    pub(crate) fn store(&self) -> Result<&TimestampedWindowStore<K, VA>, ProcessError> {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }

    /// Sets `key`'s aggregate in `window` to `new` as of `timestamp` and forwards the update
    /// (with `old`, the aggregate it replaces, when old values are sent), unless the cache
    /// will or windows are emitted when they close.
    pub(crate) fn put(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, Change<VA>>,
        key: &K,
        window: Window,
        (old, new): (Option<VA>, VA),
        (timestamp, headers): (i64, &Headers),
    ) -> Result<(), ProcessError> {
        let stored = ValueAndTimestamp::make(new, timestamp);
        self.store()?
            .put_with_headers(key, Some(&stored), window.start(), headers)?;
        if self.cached || self.emit_on_close {
            return Ok(());
        }
        let change = Change {
            new: Some(stored.value),
            old: old.filter(|_| self.sends_old),
        };
        ctx.forward(Record::from_parts(
            Some(Windowed::new(key.clone(), window)),
            Some(change),
            timestamp,
            headers.clone(),
        ))
    }

    /// Forwards the windows starting from `from` to `to` (both included) as final results,
    /// in the order of their starts, then of their keys' bytes (as Kafka Streams' time-ordered
    /// store gives them), each stamped with its aggregate's timestamp, with `headers`.
    pub(crate) fn emit_final(
        &self,
        ctx: &mut ProcessorContext<Windowed<K>, Change<VA>>,
        (from, to): (i64, i64),
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        for (key, value) in self.store()?.fetch_all_by_time(from, to)? {
            let change = Change {
                new: Some(value.value),
                old: None,
            };
            ctx.forward(Record::from_parts(
                Some(key),
                Some(change),
                value.timestamp,
                headers.clone(),
            ))?;
        }
        Ok(())
    }
}

/// A time or sliding window aggregation processor (`W`: its windows), whose `process` is
/// in `time_aggregate` or `sliding_aggregate`.
pub(crate) struct WindowedAggregate<K, V, VA, W> {
    pub(crate) store: WindowAggregateStore<K, VA>,
    pub(crate) windows: W,
    pub(crate) aggregation: Aggregation<K, V, VA>,
    pub(crate) emit_on_close: bool,
    /// The largest timestamp seen, -1 before the first record.
    pub(crate) stream_time: i64,
    pub(crate) closes: CloseTracker,
}

impl<K, V, VA, W> WindowedAggregate<K, V, VA, W> {
    pub(crate) fn new(
        store: WindowAggregateStore<K, VA>,
        windows: W,
        aggregation: Aggregation<K, V, VA>,
        emit_on_close: bool,
    ) -> Self {
        Self {
            closes: CloseTracker::new(store.name.clone()),
            store,
            windows,
            aggregation,
            emit_on_close,
            stream_time: -1,
        }
    }
}

/// How often windows closed are looked for (Kafka Streams' `TimeTracker` of the emit
/// strategy): at most once every `__emit.interval.ms.kstreams.windowed.aggregation__` of
/// wall-clock time, and only when the close time moved; and up to when they were emitted,
/// kept in the task's processor metadata under the store's name, so that a restart does
/// not emit them again.
#[derive(Debug)]
pub(crate) struct CloseTracker {
    /// The store's name: the key of the processor metadata.
    store: Arc<str>,
    /// The close time of the last emission; -1 before the first.
    pub(crate) last_close: i64,
    next_check: i64,
}

impl CloseTracker {
    pub(crate) fn new(store: Arc<str>) -> Self {
        Self {
            store,
            last_close: -1,
            next_check: 0,
        }
    }

    /// In the processor's `init`: goes on from the last emission its task committed.
    pub(crate) fn resume<K, V>(&mut self, ctx: &ProcessorContext<K, V>) {
        if let Some(last) = ctx.processor_metadata(&self.store) {
            self.last_close = last;
        }
    }

    /// Whether to look for windows closed at `close_time` now.
    pub(crate) fn due<K, V>(&mut self, ctx: &ProcessorContext<K, V>, close_time: i64) -> bool {
        let now = ctx.wall_clock_time();
        if now < self.next_check {
            return false;
        }
        self.next_check = now.saturating_add(ctx.emit_interval_ms());
        self.last_close == -1 || self.last_close < close_time
    }

    /// The windows closed at `close_time` are emitted.
    pub(crate) fn emitted<K, V>(&mut self, ctx: &ProcessorContext<K, V>, close_time: i64) {
        self.last_close = close_time;
        ctx.set_processor_metadata(&self.store, close_time);
    }
}

/// Logs and counts a record dropped for a window already closed, as Kafka Streams does.
pub(crate) fn drop_late<K, V>(
    ctx: &ProcessorContext<K, V>,
    timestamp: i64,
    window: &str,
    (close_time, stream_time): (i64, i64),
) {
    ctx.drop_late_record(&format!(
        "its window {window} closed (record time {timestamp}, windows closed up to \
         {close_time}, stream time {stream_time})"
    ));
}

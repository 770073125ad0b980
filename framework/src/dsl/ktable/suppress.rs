//! `suppress`: holds a table's updates back (Kafka Streams' `KTableSuppressProcessor`),
//! either until a window closes, so each window's final result goes downstream once, or for
//! a time limit, so each key's updates are rate-limited. The held updates live in a
//! changelog-backed buffer (`state::buffer`), so a restart emits what was held before it.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::{Change, KTable, ValueGetterSupplier};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::{DefaultSerde, SharedSerde};
use crate::state::{Buffered, BufferedSerde, StoreBuilder, TimeOrderedBuffer, Windowed};

/// What a full suppression buffer does (Kafka Streams' `BufferFullStrategy`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum WhenFull {
    /// Emits the oldest updates early, until the buffer is within its bounds again.
    EmitEarly,
    /// Fails the stream thread: the results would no longer be final.
    ShutDown,
}

/// How much a suppression may hold (Kafka Streams' `Suppressed.BufferConfig`): bounds in
/// records and bytes, and what happens past them.
///
/// ```
/// use homa::dsl::BufferConfig;
///
/// let bounded = BufferConfig::max_records(10_000).with_max_bytes(64 << 20).shut_down_when_full();
/// let unbounded = BufferConfig::unbounded();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BufferConfig {
    max_records: Option<u64>,
    max_bytes: Option<u64>,
    when_full: WhenFull,
}

impl BufferConfig {
    /// No bound: the buffer holds what it must (memory permitting). A bound-less buffer is
    /// never full; one that cannot hold more fails, as Kafka Streams' unbounded buffer does.
    pub fn unbounded() -> Self {
        Self {
            max_records: None,
            max_bytes: None,
            when_full: WhenFull::ShutDown,
        }
    }

    /// At most `records` records, emitting early when full.
    pub fn max_records(records: u64) -> Self {
        Self {
            max_records: Some(records),
            max_bytes: None,
            when_full: WhenFull::EmitEarly,
        }
    }

    /// At most `bytes` bytes, emitting early when full.
    pub fn max_bytes(bytes: u64) -> Self {
        Self {
            max_records: None,
            max_bytes: Some(bytes),
            when_full: WhenFull::EmitEarly,
        }
    }

    /// Also at most `records` records.
    #[must_use]
    pub fn with_max_records(mut self, records: u64) -> Self {
        self.max_records = Some(records);
        self
    }

    /// Also at most `bytes` bytes.
    #[must_use]
    pub fn with_max_bytes(mut self, bytes: u64) -> Self {
        self.max_bytes = Some(bytes);
        self
    }

    /// No bound at all (keeps what to do when full, which then never happens).
    #[must_use]
    pub fn with_no_bound(mut self) -> Self {
        self.max_records = None;
        self.max_bytes = None;
        self
    }

    /// When full, emit the oldest updates early (the results are then not final).
    #[must_use]
    pub fn emit_early_when_full(mut self) -> Self {
        self.when_full = WhenFull::EmitEarly;
        self
    }

    /// When full, fail the stream thread (as a strict buffer does): the results stay
    /// final or none come.
    #[must_use]
    pub fn shut_down_when_full(mut self) -> Self {
        self.when_full = WhenFull::ShutDown;
        self
    }

    /// Whether `records` held and `bytes` charged are past a bound.
    fn over(&self, records: usize, bytes: usize) -> bool {
        let past = |bound: Option<u64>, n: usize| bound.is_some_and(|b| n as u64 > b);
        past(self.max_records, records) || past(self.max_bytes, bytes)
    }
}

/// When held updates leave the buffer.
enum Until<K> {
    /// Their window (whose end this reads) closes: its end plus the grace has passed.
    WindowCloses(fn(&K) -> i64),
    /// This long, in ms of stream time, after the first held update of the key.
    TimeLimit(i64),
}

impl<K> fmt::Debug for Until<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::WindowCloses(_) => f.write_str("WindowCloses"),
            Self::TimeLimit(ms) => write!(f, "TimeLimit({ms} ms)"),
        }
    }
}

/// How a table's updates are suppressed (Kafka Streams' `Suppressed`).
///
/// ```
/// use homa::prelude::*;
/// use std::time::Duration;
///
/// let mut builder = StreamsBuilder::new();
/// builder
///     .stream::<String, String>("clicks")
///     .group_by_key()
///     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5)))
///     .count()
///     .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
///     .to_stream()
///     .map_values(|n| n.to_string())
///     .to("final-counts");
/// ```
pub struct Suppressed<K> {
    until: Until<K>,
    buffer: BufferConfig,
    name: Option<String>,
    _keys: std::marker::PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for Suppressed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Suppressed")
            .field("until", &self.until)
            .field("buffer", &self.buffer)
            .field("name", &self.name)
            .finish()
    }
}

impl<K> Suppressed<Windowed<K>> {
    /// Each window's final result, once, when the window closes (stream time passes its
    /// end plus the grace period of the windowed aggregation upstream). The buffer must be
    /// strict ([`BufferConfig::unbounded`], or bounded and
    /// [`shut_down_when_full`](BufferConfig::shut_down_when_full)): emitting early would
    /// emit results that are not final; the topology fails to build otherwise.
    pub fn until_window_closes(buffer: BufferConfig) -> Self {
        Self::new(Until::WindowCloses(|key| key.window().end()), buffer)
    }
}

impl<K> Suppressed<K> {
    /// At most one update of each key per `time_to_wait` of stream time: the first update
    /// of a key is held that long, and the latest one then goes downstream.
    pub fn until_time_limit(time_to_wait: Duration, buffer: BufferConfig) -> Self {
        let ms = i64::try_from(time_to_wait.as_millis()).unwrap_or(i64::MAX);
        Self::new(Until::TimeLimit(ms), buffer)
    }

    /// Names the suppression's processor `name`, and its buffer's store `<name>-store`
    /// (whose changelog is `<application.id>-<name>-store-changelog`).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    fn new(until: Until<K>, buffer: BufferConfig) -> Self {
        Self {
            until,
            buffer,
            name: None,
            _keys: std::marker::PhantomData,
        }
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KTable<K, V> {
    /// This table's updates held back as `suppressed` says (Kafka Streams' `suppress`).
    pub fn suppress(&self, suppressed: Suppressed<K>) -> KTable<K, V> {
        let (name, store_name) = {
            let mut state = self.state.borrow_mut();
            match &suppressed.name {
                Some(name) => (name.clone(), format!("{name}-store")),
                None => (
                    state.name("KTABLE-SUPPRESS"),
                    state.name("KTABLE-SUPPRESS-STATE-STORE"),
                ),
            }
        };
        let keys: SharedSerde<K> = match &self.windowing {
            Some(windowing) => windowing.keys.clone(),
            None => K::default_serde(),
        };
        let mut store = StoreBuilder::with_serdes(
            store_name.clone(),
            keys,
            BufferedSerde::shared(V::default_serde()),
        )
        .in_memory()
        .suppression_buffer();
        let (wait, window_end) = match suppressed.until {
            Until::TimeLimit(ms) => (ms, None),
            Until::WindowCloses(end) => match &self.windowing {
                Some(windowing) => (windowing.grace_ms, Some(end)),
                None => {
                    store = store.with_problem(
                        "until_window_closes suppresses the tables of windowed aggregations \
                         (and those made from them) only",
                    );
                    (0, Some(end))
                }
            },
        };
        if window_end.is_some() && suppressed.buffer.when_full == WhenFull::EmitEarly {
            store = store.with_problem(
                "until_window_closes needs a strict buffer (BufferConfig::unbounded(), or \
                 bounded and shut_down_when_full()): emitting early would emit results that \
                 are not final",
            );
        }
        let buffer = suppressed.buffer;
        let store_name: Arc<str> = store_name.into();
        let buffer_store = store_name.clone();
        let node = {
            let mut state = self.state.borrow_mut();
            let node_name: Arc<str> = name.clone().into();
            let added = state.add_processor(
                &name,
                &[self.node],
                move || Suppress::<K, V> {
                    node: node_name.clone(),
                    store: store_name.clone(),
                    buffer: None,
                    wait,
                    window_end,
                    config: buffer,
                    stream_time: -1,
                },
                Some(store.into_def()),
            );
            state.or_report(added, self.node)
        };
        // Kafka Streams forwards old values through a suppression from the table upstream.
        self.enable_old_values();
        let getter = ValueGetterSupplier::suppressed(buffer_store, &self.getter);
        self.derived(node, getter)
    }
}

/// Holds updates in its buffer and forwards them when their time comes.
struct Suppress<K, V> {
    node: Arc<str>,
    store: Arc<str>,
    buffer: Option<TimeOrderedBuffer<K, V>>,
    /// How long, in ms of stream time, after its buffer time an update leaves.
    wait: i64,
    /// Reads the window's end of a key, the buffer time of its updates (without it, the
    /// buffer time is the record's timestamp).
    window_end: Option<fn(&K) -> i64>,
    config: BufferConfig,
    /// The largest timestamp seen, -1 before the first record.
    stream_time: i64,
}

impl<K, V> Processor<K, Change<V>, K, Change<V>> for Suppress<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<V>>) -> Result<(), ProcessError> {
        let store = ctx.connected(&self.store)?.buffer::<K, Buffered<V>>()?;
        self.buffer = Some(TimeOrderedBuffer::open(store)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let (Some(key), Some(change)) = (record.key, record.value) else {
            ctx.drop_record("a suppression needs a key and a change");
            return Ok(());
        };
        self.stream_time = self.stream_time.max(record.timestamp);
        let time = self.window_end.map_or(record.timestamp, |end| end(&key));
        let held = Buffered {
            time,
            timestamp: record.timestamp,
            headers: record.headers,
            old: change.old,
            new: change.new,
            prior: None,
        };
        self.buffer()?.put(&key, time, held)?;
        self.enforce(ctx)
    }
}

impl<K, V> Suppress<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    fn buffer(&mut self) -> Result<&mut TimeOrderedBuffer<K, V>, ProcessError> {
        self.buffer
            .as_mut()
            .ok_or_else(|| format!("the buffer of {} is not open", self.node).into())
    }

    /// Emits what is due at stream time, then what the buffer's bounds push out (or fails,
    /// as a strict buffer does).
    fn enforce(&mut self, ctx: &mut ProcessorContext<K, Change<V>>) -> Result<(), ProcessError> {
        let expiry = self.stream_time.saturating_sub(self.wait);
        while self.buffer()?.min_time().is_some_and(|t| t <= expiry) {
            self.emit_oldest(ctx)?;
        }
        let config = self.config;
        let over = |b: &TimeOrderedBuffer<K, V>| config.over(b.len(), b.bytes());
        if !over(self.buffer()?) {
            return Ok(());
        }
        if config.when_full == WhenFull::ShutDown {
            let (records, bytes) = {
                let buffer = self.buffer()?;
                (buffer.len(), buffer.bytes())
            };
            let bound = |b: Option<u64>| b.map_or("unbounded".to_string(), |b| b.to_string());
            return Err(format!(
                "{} buffer exceeded its max capacity: [{records}/{}] records and [{bytes}/{}] \
                 bytes",
                self.node,
                bound(config.max_records),
                bound(config.max_bytes)
            )
            .into());
        }
        while over(self.buffer()?) {
            self.emit_oldest(ctx)?;
        }
        Ok(())
    }

    /// Forwards the update held longest, as its last record made it (timestamp and
    /// headers); a final result's tombstone is dropped, as Kafka Streams drops it.
    fn emit_oldest(
        &mut self,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let Some((key, held)) = self.buffer()?.pop()? else {
            return Ok(());
        };
        if held.new.is_none() && self.window_end.is_some() {
            return Ok(());
        }
        let change = Change {
            new: held.new,
            old: held.old,
        };
        ctx.forward_as_of(Record::from_parts(
            Some(key),
            Some(change),
            held.timestamp,
            held.headers,
        ))
    }
}

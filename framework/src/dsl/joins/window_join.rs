//! The processors of a stream-stream join, as Kafka Streams' `KStreamJoinWindow` and
//! `KStreamKStreamJoin`: each side's records go into its window store, then look up the
//! other side's store for partners within the join windows. A left or outer join holds a
//! record without a partner in the outer store until its window closes (KAFKA-10847), and
//! emits it alone then, unless a partner came first.

use std::cell::Cell;
use std::marker::PhantomData;
use std::rc::Rc;
use std::sync::Arc;

use super::JoinWindows;
use super::outer_store::{LeftOrRight, OuterStore};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::state::WindowStore;

/// What a join makes of a left and a right value, either missing for an unmatched record
/// of a left or outer join.
pub(crate) type Joiner<V1, V2, VR> = Arc<dyn Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync>;

/// An inner join's `joiner` as every join's: it is called with both values only.
pub(crate) fn inner_joiner<V1, V2, VR>(
    joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
) -> Joiner<V1, V2, VR> {
    Arc::new(move |left, right| match (left, right) {
        (Some(left), Some(right)) => joiner(left, right),
        _ => unreachable!("an inner join calls its joiner with two values"),
    })
}

/// A left join's `joiner` as every join's: it is called with a left value always.
pub(crate) fn left_joiner<V1, V2, VR>(
    joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
) -> Joiner<V1, V2, VR> {
    Arc::new(move |left, right| match left {
        Some(left) => joiner(left, right),
        None => unreachable!("a left join calls its joiner with a left value"),
    })
}

/// Puts each record with a key and a value into its side's window store, then passes it
/// on to the join (Kafka Streams' `KStreamJoinWindow`). A record without either joins
/// nothing later, but is passed on: the join decides what becomes of it.
pub(crate) struct JoinWindow<K, V> {
    store_name: Arc<str>,
    store: Option<WindowStore<K, V>>,
}

impl<K, V> JoinWindow<K, V> {
    /// The node of the side whose store is `store_name`.
    pub(crate) fn new(store_name: Arc<str>) -> Self {
        Self {
            store_name,
            store: None,
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> Processor<K, V> for JoinWindow<K, V> {
    fn init(&mut self, ctx: &mut ProcessorContext<K, V>) -> Result<(), ProcessError> {
        self.store = Some(ctx.window_store(&self.store_name)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        // Before it is forwarded, not after as in Kafka Streams: the same, as the join
        // looks up only the other side's store.
        if let (Some(store), Some(key), Some(value)) = (&self.store, &record.key, &record.value) {
            store.put(key, Some(value), record.timestamp)?;
        }
        ctx.forward(record)
    }
}

/// The stream time of both sides of a join in one task (Kafka Streams' `TimeTracker`):
/// the largest timestamp either has seen, the earliest record held in the outer store
/// (as last seen), and when the outer store may be looked through next.
pub(crate) struct TimeTracker {
    stream_time: Cell<i64>,
    min_time: Cell<i64>,
    next_emit: Cell<i64>,
}

impl Default for TimeTracker {
    fn default() -> Self {
        Self {
            stream_time: Cell::new(-1),
            min_time: Cell::new(i64::MAX),
            next_emit: Cell::new(0),
        }
    }
}

/// Which side of the join a processor is: what its records and the other side's are.
pub(crate) trait Side<V1, V2>: 'static {
    /// The values of this side's records.
    type This: 'static;
    /// The values of the other side's records.
    type Other: 'static;
    /// Whether this is the left side.
    const LEFT: bool;

    /// A value of this side and one of the other, as (left, right).
    fn pair<'a>(
        this: Option<&'a Self::This>,
        other: Option<&'a Self::Other>,
    ) -> (Option<&'a V1>, Option<&'a V2>);

    /// A value of this side, to hold in the outer store.
    fn held(value: Self::This) -> LeftOrRight<V1, V2>;
}

/// The stream `join` is called on.
pub(crate) struct LeftSide;
/// The stream given to `join`.
pub(crate) struct RightSide;

impl<V1: 'static, V2: 'static> Side<V1, V2> for LeftSide {
    type This = V1;
    type Other = V2;
    const LEFT: bool = true;

    fn pair<'a>(this: Option<&'a V1>, other: Option<&'a V2>) -> (Option<&'a V1>, Option<&'a V2>) {
        (this, other)
    }

    fn held(value: V1) -> LeftOrRight<V1, V2> {
        LeftOrRight::Left(value)
    }
}

impl<V1: 'static, V2: 'static> Side<V1, V2> for RightSide {
    type This = V2;
    type Other = V1;
    const LEFT: bool = false;

    fn pair<'a>(this: Option<&'a V2>, other: Option<&'a V1>) -> (Option<&'a V1>, Option<&'a V2>) {
        (other, this)
    }

    fn held(value: V2) -> LeftOrRight<V1, V2> {
        LeftOrRight::Right(value)
    }
}

/// What a join processor is made of, the same for every task.
pub(crate) struct JoinSpec<V1, V2, VR> {
    pub(crate) windows: JoinWindows,
    /// Whether this side's records without a partner are emitted alone (the left side of
    /// a left join, both sides of an outer join).
    pub(crate) outer: bool,
    pub(crate) other_store: Arc<str>,
    /// The outer store, of a left or outer join.
    pub(crate) outer_store: Option<Arc<str>>,
    /// The name both sides share their time under.
    pub(crate) tracker: Arc<str>,
    pub(crate) joiner: Joiner<V1, V2, VR>,
}

impl<V1, V2, VR> Clone for JoinSpec<V1, V2, VR> {
    fn clone(&self) -> Self {
        Self {
            windows: self.windows,
            outer: self.outer,
            other_store: self.other_store.clone(),
            outer_store: self.outer_store.clone(),
            tracker: self.tracker.clone(),
            joiner: self.joiner.clone(),
        }
    }
}

/// One side of a stream-stream join (Kafka Streams' `KStreamKStreamJoinLeftSide` or
/// `RightSide`): joins each of its records with the other side's within the windows.
pub(crate) struct StreamStreamJoin<K, V1, V2, VR, S: Side<V1, V2>> {
    spec: JoinSpec<V1, V2, VR>,
    /// How much earlier and later than this side's record the other's may be.
    before: i64,
    after: i64,
    other: Option<WindowStore<K, S::Other>>,
    held: Option<OuterStore<K, V1, V2>>,
    time: Rc<TimeTracker>,
    _side: PhantomData<fn() -> S>,
}

impl<K, V1, V2, VR, S> StreamStreamJoin<K, V1, V2, VR, S>
where
    K: Clone + 'static,
    V1: 'static,
    V2: 'static,
    VR: Clone + 'static,
    S: Side<V1, V2>,
{
    pub(crate) fn new(spec: JoinSpec<V1, V2, VR>) -> Self {
        // The right side looks as far the other way.
        let (before, after) = match S::LEFT {
            true => (spec.windows.before_ms(), spec.windows.after_ms()),
            false => (spec.windows.after_ms(), spec.windows.before_ms()),
        };
        Self {
            spec,
            before,
            after,
            other: None,
            held: None,
            time: Rc::default(),
            _side: PhantomData,
        }
    }

    fn join(&self, this: Option<&S::This>, other: Option<&S::Other>) -> VR {
        let (left, right) = S::pair(this, other);
        (self.spec.joiner)(left, right)
    }

    /// Emits alone the held records whose windows have closed, oldest first (at one time,
    /// the right side's first), as Kafka Streams' `emitNonJoinedOuterRecords`, with its
    /// shortcut: nothing is looked at until the earliest held record (as last seen) could
    /// have closed by this side's window, nor more often than the emit interval.
    fn emit_closed(
        &self,
        held: &OuterStore<K, V1, V2>,
        record: &Record<K, S::This>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let windows = self.spec.windows;
        let stream_time = self.time.stream_time.get();
        // Kafka Streams' arithmetic: it wraps when nothing is held (i64::MAX).
        let earliest_close = (self.time.min_time.get())
            .wrapping_add(self.after)
            .wrapping_add(windows.grace_ms());
        if earliest_close >= stream_time {
            return Ok(());
        }
        let now = ctx.wall_clock_time();
        if now < self.time.next_emit.get() {
            return Ok(());
        }
        let interval = ctx.outer_join_emit_interval_ms();
        self.time.next_emit.set(now.saturating_add(interval));
        let mut min_time = i64::MAX;
        let mut closed = Vec::new();
        let (mut left_open, mut right_open) = (false, false);
        for entry in held.store.all()? {
            let (key, values) = entry?;
            min_time = key.timestamp;
            if left_open && right_open {
                break;
            }
            let lookback = match key.left {
                true => windows.after_ms(),
                false => windows.before_ms(),
            };
            let close = key
                .timestamp
                .wrapping_add(lookback)
                .wrapping_add(windows.grace_ms());
            if close >= stream_time {
                match key.left {
                    true => left_open = true,
                    false => right_open = true,
                }
            } else {
                closed.push((key, values));
            }
        }
        self.time.min_time.set(min_time);
        for (key, values) in closed {
            for value in &values {
                let out = (self.spec.joiner)(value.left(), value.right());
                ctx.forward(Record::from_parts(
                    Some(key.key.clone()),
                    Some(out),
                    key.timestamp,
                    record.headers.clone(),
                ))?;
            }
            held.store.delete(&key)?;
        }
        Ok(())
    }
}

impl<K, V1, V2, VR, S> Processor<K, S::This, K, VR> for StreamStreamJoin<K, V1, V2, VR, S>
where
    K: Clone + 'static,
    V1: 'static,
    V2: 'static,
    VR: Clone + 'static,
    S: Side<V1, V2>,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> Result<(), ProcessError> {
        self.other = Some(ctx.window_store(&self.spec.other_store)?);
        if let Some(name) = &self.spec.outer_store {
            self.held = Some(OuterStore {
                store: ctx.key_value_store(name)?,
            });
        }
        self.time = ctx.task_shared(&self.spec.tracker)?;
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, S::This>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let timestamp = record.timestamp;
        let stream_time = self.time.stream_time.get().max(timestamp);
        self.time.stream_time.set(stream_time);
        if self.spec.outer && record.key.is_none() && record.value.is_some() {
            // KIP-962: a record without a key joins nothing, and goes on alone at once.
            let out = self.join(record.value.as_ref(), None);
            return ctx.forward(record.with_value(Some(out)));
        }
        let (Some(key), Some(value)) = (&record.key, &record.value) else {
            ctx.drop_record("a stream-stream join needs a key and a value");
            return Ok(());
        };
        let Some(other) = &self.other else {
            return Err("the join runs before it was initialized".into());
        };
        if timestamp == stream_time
            && let Some(held) = &self.held
        {
            self.emit_closed(held, &record, ctx)?;
        }
        let from = timestamp.saturating_sub(self.before).max(0);
        let to = timestamp.saturating_add(self.after).max(0);
        let partners = other.fetch(key, from, to)?;
        if partners.is_empty() {
            if !self.spec.outer {
                return Ok(());
            }
            match &self.held {
                Some(held) if to >= stream_time => {
                    let earliest = self.time.min_time.get().min(timestamp);
                    self.time.min_time.set(earliest);
                    let Record { key, value, .. } = record;
                    if let (Some(key), Some(value)) = (key, value) {
                        held.hold(key, timestamp, S::held(value))?;
                    }
                }
                // Its window closed already: alone, at once.
                _ => {
                    let out = self.join(Some(value), None);
                    ctx.forward(record.with_value(Some(out)))?;
                }
            }
            return Ok(());
        }
        for (other_time, other_value) in &partners {
            if let Some(held) = &self.held {
                held.joined(key, *other_time, !S::LEFT)?;
            }
            let out = self.join(Some(value), Some(other_value));
            ctx.forward(Record::from_parts(
                Some(key.clone()),
                Some(out),
                timestamp.max(*other_time),
                record.headers.clone(),
            ))?;
        }
        Ok(())
    }
}

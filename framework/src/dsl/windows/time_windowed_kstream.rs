//! `windowed_by` and `TimeWindowedKStream`: a grouped stream's records by time window
//! (tumbling, hopping or sliding), ready to count, reduce or aggregate into a table keyed
//! by [`Windowed`] keys, kept in a window store.

use std::fmt;
use std::sync::Arc;

use super::aggregation::{Aggregation, WindowAggregateStore};
use super::session_windowed_kstream::SessionWindowedKStream;
use super::sliding_aggregate::SlidingWindowAggregate;
use super::time_aggregate::TimeWindowAggregate;
use super::{EmitStrategy, SessionWindows, SlidingWindows, TimeWindows};
use crate::dsl::Materialized;
use crate::dsl::kstream::KGroupedStream;
use crate::dsl::ktable::{KTable, ValueGetterSupplier, Windowing};
use crate::dsl::table_store::stateful_table;
use crate::serde::DefaultSerde;
use crate::state::{Windowed, WindowedSerde};

/// The windows [`KGroupedStream::windowed_by`] takes: [`TimeWindows`] and
/// [`SlidingWindows`] give a [`TimeWindowedKStream`], [`SessionWindows`] a
/// [`SessionWindowedKStream`].
pub trait WindowsOf<K, V>: sealed::Sealed {
    /// The windowed stream these windows make.
    type Stream;

    #[doc(hidden)]
    fn windowed(self, grouped: &KGroupedStream<K, V>) -> Self::Stream;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TimeWindows {}
    impl Sealed for super::SlidingWindows {}
    impl Sealed for super::SessionWindows {}
}

impl<K: Clone + 'static, V: Clone + 'static> WindowsOf<K, V> for TimeWindows {
    type Stream = TimeWindowedKStream<K, V>;

    fn windowed(self, grouped: &KGroupedStream<K, V>) -> Self::Stream {
        TimeWindowedKStream::new(grouped, TimedWindows::Time(self))
    }
}

impl<K: Clone + 'static, V: Clone + 'static> WindowsOf<K, V> for SlidingWindows {
    type Stream = TimeWindowedKStream<K, V>;

    fn windowed(self, grouped: &KGroupedStream<K, V>) -> Self::Stream {
        TimeWindowedKStream::new(grouped, TimedWindows::Sliding(self))
    }
}

impl<K: Clone + 'static, V: Clone + 'static> WindowsOf<K, V> for SessionWindows {
    type Stream = SessionWindowedKStream<K, V>;

    fn windowed(self, grouped: &KGroupedStream<K, V>) -> Self::Stream {
        SessionWindowedKStream::new(grouped, self)
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KGroupedStream<K, V> {
    /// The records by window, to aggregate per key and window (Kafka Streams'
    /// `windowedBy`): tumbling or hopping [`TimeWindows`], [`SlidingWindows`] or
    /// [`SessionWindows`].
    ///
    /// ```
    /// use homa::prelude::*;
    /// use std::time::Duration;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let counts: KTable<Windowed<String>, i64> = builder
    ///     .stream::<String, String>("clicks")
    ///     .group_by_key()
    ///     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(10), Duration::from_secs(5)))
    ///     .count_with(Materialized::as_("clicks-per-10s"));
    /// ```
    pub fn windowed_by<W: WindowsOf<K, V>>(&self, windows: W) -> W::Stream {
        windows.windowed(self)
    }
}

/// Time or sliding windows.
#[derive(Debug, Clone, Copy)]
pub(crate) enum TimedWindows {
    Time(TimeWindows),
    Sliding(SlidingWindows),
}

/// What a window store of [`TimedWindows`] is made of, in ms.
pub(crate) struct WindowStoreSpan {
    /// The windows' size: a sliding window's is the time difference.
    pub(crate) size: i64,
    pub(crate) grace: i64,
    /// The least retention: the size plus the grace (a sliding window's: twice the time
    /// difference plus the grace), as Kafka Streams' `WindowStoreMaterializer` has it.
    pub(crate) least_retention: i64,
    /// Why the windows cannot be used, if they cannot.
    pub(crate) problem: Option<String>,
}

impl TimedWindows {
    pub(crate) fn span(&self) -> WindowStoreSpan {
        match self {
            Self::Time(w) => WindowStoreSpan {
                size: w.size_ms(),
                grace: w.grace_ms(),
                least_retention: w.size_ms().saturating_add(w.grace_ms()),
                problem: w.problem(),
            },
            Self::Sliding(w) => WindowStoreSpan {
                size: w.time_difference_ms(),
                grace: w.grace_ms(),
                least_retention: (w.time_difference_ms().saturating_mul(2))
                    .saturating_add(w.grace_ms()),
                problem: w.problem(),
            },
        }
    }
}

/// A grouped stream by time window (Kafka Streams' `TimeWindowedKStream`), made by
/// [`KGroupedStream::windowed_by`] with [`TimeWindows`] or [`SlidingWindows`].
pub struct TimeWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: TimedWindows,
    emit: EmitStrategy,
}

impl<K, V> fmt::Debug for TimeWindowedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowedKStream")
            .field("windows", &self.windows)
            .field("emit", &self.emit)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + 'static, V: Clone + 'static> TimeWindowedKStream<K, V> {
    fn new(grouped: &KGroupedStream<K, V>, windows: TimedWindows) -> Self {
        Self {
            grouped: grouped.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }

    /// When the aggregation forwards its results: every update (the default), or each
    /// window once when it closes ([`EmitStrategy::on_window_close`]).
    #[must_use]
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> TimeWindowedKStream<K, V> {
    /// The number of records of each key in each window (records without a value too, as
    /// in Kafka Streams).
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.count_with(Materialized::default())
    }

    /// [`count`](Self::count) into the window store `materialized` describes.
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let (keys, _) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, None);
        self.aggregated(materialized, "KSTREAM-AGGREGATE", Aggregation::count())
    }

    /// Each key's values in each window combined with `reducer(aggregate, value)`; a
    /// window's first value is its first aggregate. Records without a value are dropped.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, V> {
        self.reduce_with(reducer, Materialized::default())
    }

    /// [`reduce`](Self::reduce) into the window store `materialized` describes.
    pub fn reduce_with(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let (keys, values) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, values);
        self.aggregated(materialized, "KSTREAM-REDUCE", Aggregation::reduce(reducer))
    }

    /// Each key's values in each window folded with `aggregator(key, value, aggregate)`,
    /// starting from `initializer()`. Records without a value are dropped.
    pub fn aggregate<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, VA> {
        self.aggregate_with(initializer, aggregator, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the window store `materialized` describes.
    pub fn aggregate_with<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let (keys, _) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, None);
        let aggregation = Aggregation::aggregate(initializer, aggregator);
        self.aggregated(materialized, "KSTREAM-AGGREGATE", aggregation)
    }

    /// The aggregation's processor `prefix-<n>` and its window store, as Kafka Streams'
    /// `WindowStoreMaterializer` makes it: retention the window size plus the grace (a
    /// sliding window's: twice the time difference plus the grace) unless set longer.
    fn aggregated<VA: DefaultSerde + Clone>(
        &self,
        materialized: Materialized<K, VA>,
        prefix: &str,
        aggregation: Aggregation<K, V, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let store_name = self
            .grouped
            .store_name(&materialized, &format!("{prefix}-STATE-STORE"));
        let input = self.grouped.input(&store_name);
        let WindowStoreSpan {
            size,
            grace,
            least_retention: least,
            problem,
        } = self.windows.span();
        let windowing = Windowing {
            keys: Arc::new(WindowedSerde::time_windowed(materialized.key_serde(), size)),
            grace_ms: grace,
        };
        let store = materialized.into_window_store(store_name, size, least);
        let store = match problem {
            Some(problem) => store.with_problem(format!("its windows: {problem}")),
            None => store,
        };
        let name: Arc<str> = store.name().into();
        let getter = ValueGetterSupplier::window_store(name.clone());
        let emit_on_close = self.emit.emits_on_close();
        let state = input.state().clone();
        let open = move |sends_old| {
            WindowAggregateStore::new(name.clone(), size, sends_old, emit_on_close)
        };
        let (def, parent) = (store.into_def(), input.node());
        let table = match self.windows {
            TimedWindows::Time(windows) => {
                stateful_table(&state, parent, prefix, def, getter, move |sends_old| {
                    TimeWindowAggregate::new(
                        open(sends_old),
                        windows,
                        aggregation.clone(),
                        emit_on_close,
                    )
                })
            }
            TimedWindows::Sliding(windows) => {
                stateful_table(&state, parent, prefix, def, getter, move |sends_old| {
                    SlidingWindowAggregate::new(
                        open(sends_old),
                        windows,
                        aggregation.clone(),
                        emit_on_close,
                    )
                })
            }
        };
        table.with_windowing(windowing)
    }
}

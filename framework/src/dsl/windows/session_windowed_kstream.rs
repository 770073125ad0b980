//! `SessionWindowedKStream`: a grouped stream's records by session, ready to count, reduce
//! or aggregate into a table keyed by [`Windowed`] sessions, kept in a session store.

use std::fmt;
use std::sync::Arc;

use super::aggregation::Aggregation;
use super::session_aggregate::{Merge, SessionAggregate};
use super::{EmitStrategy, SessionWindows};
use crate::dsl::Materialized;
use crate::dsl::kstream::KGroupedStream;
use crate::dsl::ktable::{KTable, ValueGetterSupplier, Windowing};
use crate::dsl::table_store::stateful_table;
use crate::serde::DefaultSerde;
use crate::state::{Windowed, WindowedSerde};

/// A grouped stream by session (Kafka Streams' `SessionWindowedKStream`), made by
/// [`KGroupedStream::windowed_by`] with [`SessionWindows`].
///
/// ```
/// use homa::prelude::*;
/// use std::time::Duration;
///
/// let mut builder = StreamsBuilder::new();
/// let actions: KTable<Windowed<String>, i64> = builder
///     .stream::<String, String>("excel-usage")
///     .group_by_key()
///     .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(1800)))
///     .count_with(Materialized::as_("sessions"));
/// ```
pub struct SessionWindowedKStream<K, V> {
    grouped: KGroupedStream<K, V>,
    windows: SessionWindows,
    emit: EmitStrategy,
}

impl<K, V> fmt::Debug for SessionWindowedKStream<K, V> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindowedKStream")
            .field("windows", &self.windows)
            .field("emit", &self.emit)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + 'static, V: Clone + 'static> SessionWindowedKStream<K, V> {
    pub(crate) fn new(grouped: &KGroupedStream<K, V>, windows: SessionWindows) -> Self {
        Self {
            grouped: grouped.clone(),
            windows,
            emit: EmitStrategy::default(),
        }
    }

    /// When the aggregation forwards its results: every update (the default), or each
    /// session once when it closes ([`EmitStrategy::on_window_close`]).
    #[must_use]
    pub fn emit_strategy(mut self, emit: EmitStrategy) -> Self {
        self.emit = emit;
        self
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> SessionWindowedKStream<K, V> {
    /// The number of records of each session (records without a value too, as in Kafka
    /// Streams).
    pub fn count(&self) -> KTable<Windowed<K>, i64> {
        self.count_with(Materialized::default())
    }

    /// [`count`](Self::count) into the session store `materialized` describes.
    pub fn count_with(&self, materialized: Materialized<K, i64>) -> KTable<Windowed<K>, i64> {
        let (keys, _) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, None);
        let merge: Merge<K, i64> = Arc::new(|_, a, b| a.unwrap_or(0) + b);
        self.aggregated(
            materialized,
            "KSTREAM-AGGREGATE",
            (Aggregation::count(), merge),
        )
    }

    /// Each session's values combined with `reducer(aggregate, value)`; merged sessions
    /// combine their aggregates the same way, the earlier first. Records without a value
    /// are dropped.
    pub fn reduce(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, V> {
        self.reduce_with(reducer, Materialized::default())
    }

    /// [`reduce`](Self::reduce) into the session store `materialized` describes.
    pub fn reduce_with(
        &self,
        reducer: impl Fn(&V, &V) -> V + Send + Sync + 'static,
        materialized: Materialized<K, V>,
    ) -> KTable<Windowed<K>, V> {
        let (keys, values) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, values);
        let reducer = Arc::new(reducer);
        let merger = reducer.clone();
        let merge: Merge<K, V> = Arc::new(move |_, a, b| match a {
            Some(a) => merger(&a, &b),
            None => b,
        });
        let aggregation = Aggregation::reduce(move |a: &V, v: &V| reducer(a, v));
        self.aggregated(materialized, "KSTREAM-REDUCE", (aggregation, merge))
    }

    /// Each session's values folded with `aggregator(key, value, aggregate)` from
    /// `initializer()`; when a record bridges sessions, their aggregates are combined with
    /// `merger(key, earlier, later)` (starting from `initializer()`). Records without a
    /// value are dropped.
    pub fn aggregate<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, VA> {
        self.aggregate_with(initializer, aggregator, merger, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the session store `materialized` describes.
    pub fn aggregate_with<VA: DefaultSerde + Clone>(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let (keys, _) = self.grouped.grouped_serdes();
        let materialized = materialized.or_serdes(keys, None);
        let initializer = Arc::new(initializer);
        let start = initializer.clone();
        let merge: Merge<K, VA> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| start()), b));
        let aggregation = Aggregation::aggregate(move || initializer(), aggregator);
        self.aggregated(materialized, "KSTREAM-AGGREGATE", (aggregation, merge))
    }

    /// The aggregation's processor `prefix-<n>` and its session store, kept for the gap
    /// plus the grace unless set longer.
    fn aggregated<VA: DefaultSerde + Clone>(
        &self,
        materialized: Materialized<K, VA>,
        prefix: &str,
        aggregation: (Aggregation<K, V, VA>, Merge<K, VA>),
    ) -> KTable<Windowed<K>, VA> {
        let store_name = self
            .grouped
            .store_name(&materialized, &format!("{prefix}-STATE-STORE"));
        let input = self.grouped.input(&store_name);
        let windows = self.windows;
        let least = windows
            .inactivity_gap_ms()
            .saturating_add(windows.grace_ms());
        let windowing = Windowing {
            keys: Arc::new(WindowedSerde::session_windowed(materialized.key_serde())),
            grace_ms: least,
        };
        let store = materialized.into_session_store(store_name, least);
        let store = match windows.problem() {
            Some(problem) => store.with_problem(format!("its windows: {problem}")),
            None => store,
        };
        let name: Arc<str> = store.name().into();
        let getter = ValueGetterSupplier::session_store(name.clone());
        let emit_on_close = self.emit.emits_on_close();
        let state = input.state().clone();
        stateful_table(
            &state,
            input.node(),
            prefix,
            store.into_def(),
            getter,
            move |sends_old| {
                SessionAggregate::new(
                    name.clone(),
                    windows,
                    aggregation.clone(),
                    (sends_old, emit_on_close),
                )
            },
        )
        .with_windowing(windowing)
    }
}

//! `cogroup`: several grouped streams, each with its own aggregator, folded into one
//! aggregate per key (Kafka Streams' `CogroupedKStream`): a `COGROUPKSTREAM-AGGREGATE`
//! processor per stream, all over one store, and a `COGROUPKSTREAM-MERGE` node that makes
//! one table of their changes.

use std::cell::RefCell;
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{KGroupedStream, PassThrough};
use crate::dsl::Materialized;
use crate::dsl::builder::DslState;
use crate::dsl::ktable::{Change, KTable, ValueGetterSupplier, Windowing};
use crate::dsl::table_store::{Aggregate, Step, TableStore};
use crate::dsl::windows::TimedWindows;
use crate::dsl::windows::aggregation::{Aggregation, WindowAggregateStore};
use crate::dsl::windows::session_aggregate::{Merge, SessionAggregate};
use crate::dsl::windows::sliding_aggregate::SlidingWindowAggregate;
use crate::dsl::windows::time_aggregate::TimeWindowAggregate;
use crate::dsl::{SessionWindows, SlidingWindows, TimeWindows};
use crate::serde::DefaultSerde;
use crate::state::{StoreBuilder, Windowed, WindowedSerde};
use crate::topology::TopologyError;
use crate::topology::graph::NodeId;

/// Makes an aggregate's first value.
type Initializer<VA> = Arc<dyn Fn() -> VA + Send + Sync>;

/// Makes the value getter of a windowed aggregate's store.
type WindowGetter<K, VA> = fn(Arc<str>) -> ValueGetterSupplier<Windowed<K>, VA>;

/// How a cogrouped aggregate is keyed: by key alone, or by key and time window, sliding
/// window or session (whose aggregates merge as the function says).
enum Grouping<K, VA> {
    Keys,
    Timed(TimedWindows),
    Sessions(SessionWindows, Merge<K, VA>),
}

/// Adds one stream's aggregate processor over the store named by the first argument,
/// starting from the initializer, forwarding old values when the flag says, grouped as
/// the last argument says: its name and node.
type AddInput<K, VA> = Rc<
    dyn Fn(
        &str,
        &Initializer<VA>,
        &Arc<AtomicBool>,
        &Grouping<K, VA>,
    ) -> Result<(String, NodeId), TopologyError>,
>;

/// Grouped streams aggregated together into one table (Kafka Streams' `CogroupedKStream`),
/// made by [`KGroupedStream::cogroup`]. Each record of a stream is folded into its key's
/// aggregate by that stream's aggregator.
///
/// ```
/// use homa::prelude::*;
///
/// let mut builder = StreamsBuilder::new();
/// let clicks = builder.stream::<String, String>("clicks").group_by_key();
/// let views = builder.stream::<String, String>("views").group_by_key();
/// let totals: KTable<String, i64> = clicks
///     .cogroup(|_k, v: &String, agg: i64| agg + v.len() as i64)
///     .cogroup(&views, |_k, v: &String, agg: i64| agg + 100 * v.len() as i64)
///     .aggregate(|| 0);
/// totals.to_stream().to("totals");
/// ```
pub struct CogroupedKStream<K, VA> {
    state: Rc<RefCell<DslState>>,
    inputs: Vec<AddInput<K, VA>>,
    _key: std::marker::PhantomData<fn() -> K>,
}

impl<K, VA> fmt::Debug for CogroupedKStream<K, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CogroupedKStream")
            .field("streams", &self.inputs.len())
            .finish()
    }
}

impl<K: DefaultSerde + Clone, V: DefaultSerde + Clone> KGroupedStream<K, V> {
    /// This stream's records folded with `aggregator(key, value, aggregate)` into an
    /// aggregate that other grouped streams add to ([`CogroupedKStream::cogroup`]).
    pub fn cogroup<VA: DefaultSerde + Clone>(
        &self,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> CogroupedKStream<K, VA> {
        CogroupedKStream {
            state: self.state().clone(),
            inputs: vec![self.cogrouped(aggregator)],
            _key: std::marker::PhantomData,
        }
    }

    /// How this stream's aggregate processor is added, once the store is named.
    fn cogrouped<VA: DefaultSerde + Clone>(
        &self,
        aggregator: impl Fn(&K, &V, VA) -> VA + Send + Sync + 'static,
    ) -> AddInput<K, VA> {
        let grouped = self.clone();
        let aggregator = Arc::new(aggregator);
        Rc::new(
            move |store: &str,
                  initializer: &Initializer<VA>,
                  sends_old: &Arc<AtomicBool>,
                  grouping: &Grouping<K, VA>| {
                let input = grouped.input(store);
                let mut state = input.state().borrow_mut();
                let name = state.name("COGROUPKSTREAM-AGGREGATE");
                let (aggregator, initializer) = (aggregator.clone(), initializer.clone());
                let (store, sends_old) = (Arc::<str>::from(store), sends_old.clone());
                let parent = [input.node()];
                let windowed = {
                    let (aggregator, initializer) = (aggregator.clone(), initializer.clone());
                    Aggregation::aggregate(
                        move || initializer(),
                        move |key: &K, value: &V, agg: VA| aggregator(key, value, agg),
                    )
                };
                let node = match grouping {
                    Grouping::Keys => {
                        let step: Step<K, V, VA> = Arc::new(move |key, value, old| {
                            Some(aggregator(key, value, old.unwrap_or_else(|| initializer())))
                        });
                        state.add_processor(
                            &name,
                            &parent,
                            move || Aggregate {
                                store: TableStore::new(
                                    store.clone(),
                                    sends_old.load(Ordering::Relaxed),
                                ),
                                step: step.clone(),
                                unusable: "an aggregation needs a key and a value",
                            },
                            None,
                        )?
                    }
                    Grouping::Timed(windows) => {
                        let (windows, size) = (*windows, windows.span().size);
                        let open = move || {
                            let sends_old = sends_old.load(Ordering::Relaxed);
                            WindowAggregateStore::new(store.clone(), size, sends_old, false)
                        };
                        match windows {
                            TimedWindows::Time(windows) => state.add_processor(
                                &name,
                                &parent,
                                move || {
                                    TimeWindowAggregate::new(
                                        open(),
                                        windows,
                                        windowed.clone(),
                                        false,
                                    )
                                },
                                None,
                            )?,
                            TimedWindows::Sliding(windows) => state.add_processor(
                                &name,
                                &parent,
                                move || {
                                    SlidingWindowAggregate::new(
                                        open(),
                                        windows,
                                        windowed.clone(),
                                        false,
                                    )
                                },
                                None,
                            )?,
                        }
                    }
                    Grouping::Sessions(windows, merge) => {
                        let (windows, merge) = (*windows, merge.clone());
                        state.add_processor(
                            &name,
                            &parent,
                            move || {
                                let sends_old = sends_old.load(Ordering::Relaxed);
                                SessionAggregate::new(
                                    store.clone(),
                                    windows,
                                    (windowed.clone(), merge.clone()),
                                    (sends_old, false),
                                )
                            },
                            None,
                        )?
                    }
                };
                Ok((name, node))
            },
        )
    }
}

impl<K: DefaultSerde + Clone, VA: DefaultSerde + Clone> CogroupedKStream<K, VA> {
    /// Adds `other`'s records, folded with `aggregator(key, value, aggregate)` into the same
    /// aggregates.
    #[must_use]
    pub fn cogroup<V2: DefaultSerde + Clone>(
        mut self,
        other: &KGroupedStream<K, V2>,
        aggregator: impl Fn(&K, &V2, VA) -> VA + Send + Sync + 'static,
    ) -> Self {
        self.inputs.push(other.cogrouped(aggregator));
        self
    }

    /// The aggregate of each key, starting from `initializer()`, in a store with a
    /// generated name.
    pub fn aggregate(&self, initializer: impl Fn() -> VA + Send + Sync + 'static) -> KTable<K, VA> {
        self.aggregate_with(initializer, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the store `materialized` describes. A stream
    /// whose keys may have changed goes through a repartition topic first, named by its
    /// grouping or else after the store.
    pub fn aggregate_with(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<K, VA> {
        let store_name = self.store_name(&materialized);
        let store = materialized.into_store(store_name);
        let (node, store, sends_old) =
            self.aggregated::<K>(Arc::new(initializer), store, &Grouping::Keys);
        let getter = ValueGetterSupplier::store(store.clone());
        KTable::materialized(self.state.clone(), node, store, sends_old, getter)
    }

    /// The aggregates by window: tumbling or hopping [`TimeWindows`] and
    /// [`SlidingWindows`] give a [`TimeWindowedCogroupedKStream`], [`SessionWindows`] a
    /// [`SessionWindowedCogroupedKStream`] (Kafka Streams' `windowedBy`).
    pub fn windowed_by<W: CogroupWindows<K, VA>>(&self, windows: W) -> W::Stream {
        windows.windowed(self)
    }

    /// The name of the store `materialized` describes: its own, or a generated one.
    fn store_name(&self, materialized: &Materialized<K, VA>) -> String {
        match materialized.name() {
            Some(name) => name.to_string(),
            None => (self.state.borrow_mut()).name("COGROUPKSTREAM-AGGREGATE-STATE-STORE"),
        }
    }

    /// The windowed table of the aggregates (from the initializer, grouped as given) in
    /// `store` (unusable for the problem, if any), read with the getter the function makes.
    fn windowed_table(
        &self,
        (initializer, grouping): (Initializer<VA>, Grouping<K, VA>),
        (store, problem, getter): (StoreBuilder<K, VA>, Option<String>, WindowGetter<K, VA>),
        windowing: Windowing<Windowed<K>>,
    ) -> KTable<Windowed<K>, VA> {
        let store = match problem {
            Some(problem) => store.with_problem(format!("its windows: {problem}")),
            None => store,
        };
        let (node, store, sends_old) =
            self.aggregated::<Windowed<K>>(initializer, store, &grouping);
        let getter = getter(store.clone());
        KTable::materialized(self.state.clone(), node, store, sends_old, getter)
            .with_windowing(windowing)
    }

    /// Each stream's aggregate processor over `store` (by `windows`, if any), and the merge
    /// of their changes (`KOut`: the table's keys, windowed or not): the merge's node, the
    /// store's name and the flag that makes them forward old values.
    fn aggregated<KOut: Clone + 'static>(
        &self,
        initializer: Initializer<VA>,
        store: StoreBuilder<K, VA>,
        grouping: &Grouping<K, VA>,
    ) -> (NodeId, Arc<str>, Arc<AtomicBool>) {
        // Set by an operator downstream that reads old values.
        let sends_old = Arc::new(AtomicBool::new(false));
        let store_name: Arc<str> = store.name().into();
        let added = (|| {
            let (mut names, mut nodes) = (Vec::new(), Vec::new());
            for input in &self.inputs {
                let (name, node) = input(&store_name, &initializer, &sends_old, grouping)?;
                names.push(name);
                nodes.push(node);
            }
            let mut dsl = self.state.borrow_mut();
            let names: Vec<&str> = names.iter().map(String::as_str).collect();
            dsl.graph.add_store(store.into_def(), &names)?;
            let merge = dsl.name("COGROUPKSTREAM-MERGE");
            dsl.add_processor::<_, KOut, Change<VA>, KOut, Change<VA>>(
                &merge,
                &nodes,
                || PassThrough,
                None,
            )
        })();
        let node = self.state.borrow_mut().or_report(added, NodeId(0));
        (node, store_name, sends_old)
    }
}

impl<K, VA> Clone for CogroupedKStream<K, VA> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            inputs: self.inputs.clone(),
            _key: std::marker::PhantomData,
        }
    }
}

/// The windows [`CogroupedKStream::windowed_by`] takes: [`TimeWindows`] and
/// [`SlidingWindows`] give a [`TimeWindowedCogroupedKStream`], [`SessionWindows`] a
/// [`SessionWindowedCogroupedKStream`].
pub trait CogroupWindows<K, VA>: sealed::Sealed {
    /// The windowed cogrouped stream these windows make.
    type Stream;

    #[doc(hidden)]
    fn windowed(self, cogrouped: &CogroupedKStream<K, VA>) -> Self::Stream;
}

mod sealed {
    pub trait Sealed {}
    impl Sealed for super::TimeWindows {}
    impl Sealed for super::SlidingWindows {}
    impl Sealed for super::SessionWindows {}
}

impl<K, VA> CogroupWindows<K, VA> for TimeWindows {
    type Stream = TimeWindowedCogroupedKStream<K, VA>;

    fn windowed(self, cogrouped: &CogroupedKStream<K, VA>) -> Self::Stream {
        TimeWindowedCogroupedKStream {
            cogrouped: cogrouped.clone(),
            windows: TimedWindows::Time(self),
        }
    }
}

impl<K, VA> CogroupWindows<K, VA> for SlidingWindows {
    type Stream = TimeWindowedCogroupedKStream<K, VA>;

    fn windowed(self, cogrouped: &CogroupedKStream<K, VA>) -> Self::Stream {
        TimeWindowedCogroupedKStream {
            cogrouped: cogrouped.clone(),
            windows: TimedWindows::Sliding(self),
        }
    }
}

impl<K, VA> CogroupWindows<K, VA> for SessionWindows {
    type Stream = SessionWindowedCogroupedKStream<K, VA>;

    fn windowed(self, cogrouped: &CogroupedKStream<K, VA>) -> Self::Stream {
        SessionWindowedCogroupedKStream {
            cogrouped: cogrouped.clone(),
            windows: self,
        }
    }
}

/// Cogrouped streams by time or sliding window (Kafka Streams'
/// `TimeWindowedCogroupedKStream`), made by [`CogroupedKStream::windowed_by`]: each record
/// goes into every window that holds it and is still open by its own stream's time, as in
/// a windowed aggregate.
pub struct TimeWindowedCogroupedKStream<K, VA> {
    cogrouped: CogroupedKStream<K, VA>,
    windows: TimedWindows,
}

impl<K, VA> fmt::Debug for TimeWindowedCogroupedKStream<K, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TimeWindowedCogroupedKStream")
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl<K: DefaultSerde + Clone, VA: DefaultSerde + Clone> TimeWindowedCogroupedKStream<K, VA> {
    /// The aggregate of each key in each window, starting from `initializer()`, in a window
    /// store with a generated name. Records without a value are dropped.
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, VA> {
        self.aggregate_with(initializer, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the window store `materialized` describes
    /// (retention as in a windowed aggregate of one stream, unless set longer).
    pub fn aggregate_with(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let store_name = self.cogrouped.store_name(&materialized);
        let span = self.windows.span();
        let keys = Arc::new(WindowedSerde::time_windowed(
            materialized.key_serde(),
            span.size,
        ));
        let store = materialized.into_window_store(store_name, span.size, span.least_retention);
        self.cogrouped.windowed_table(
            (Arc::new(initializer), Grouping::Timed(self.windows)),
            (store, span.problem, ValueGetterSupplier::window_store),
            Windowing {
                keys,
                grace_ms: span.grace,
            },
        )
    }
}

/// Cogrouped streams by session (Kafka Streams' `SessionWindowedCogroupedKStream`), made
/// by [`CogroupedKStream::windowed_by`] with [`SessionWindows`]: sessions that a record
/// bridges are merged, as in a session aggregate.
pub struct SessionWindowedCogroupedKStream<K, VA> {
    cogrouped: CogroupedKStream<K, VA>,
    windows: SessionWindows,
}

impl<K, VA> fmt::Debug for SessionWindowedCogroupedKStream<K, VA> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SessionWindowedCogroupedKStream")
            .field("windows", &self.windows)
            .finish_non_exhaustive()
    }
}

impl<K: DefaultSerde + Clone, VA: DefaultSerde + Clone> SessionWindowedCogroupedKStream<K, VA> {
    /// The aggregate of each key's sessions, starting from `initializer()`; when a record
    /// bridges sessions, their aggregates are combined with `merger(key, earlier, later)`.
    /// Kept in a session store with a generated name. Records without a value are dropped.
    pub fn aggregate(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
    ) -> KTable<Windowed<K>, VA> {
        self.aggregate_with(initializer, merger, Materialized::default())
    }

    /// [`aggregate`](Self::aggregate) into the session store `materialized` describes
    /// (kept for the gap plus the grace, unless set longer).
    pub fn aggregate_with(
        &self,
        initializer: impl Fn() -> VA + Send + Sync + 'static,
        merger: impl Fn(&K, VA, VA) -> VA + Send + Sync + 'static,
        materialized: Materialized<K, VA>,
    ) -> KTable<Windowed<K>, VA> {
        let store_name = self.cogrouped.store_name(&materialized);
        let windows = self.windows;
        let least = windows
            .inactivity_gap_ms()
            .saturating_add(windows.grace_ms());
        let keys = Arc::new(WindowedSerde::session_windowed(materialized.key_serde()));
        let store = materialized.into_session_store(store_name, least);
        let initializer: Initializer<VA> = Arc::new(initializer);
        let start = initializer.clone();
        let merge: Merge<K, VA> =
            Arc::new(move |key, a, b| merger(key, a.unwrap_or_else(|| start()), b));
        self.cogrouped.windowed_table(
            (initializer, Grouping::Sessions(windows, merge)),
            (store, windows.problem(), ValueGetterSupplier::session_store),
            Windowing {
                keys,
                grace_ms: least,
            },
        )
    }
}

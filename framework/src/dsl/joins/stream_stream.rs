//! `join`, `left_join` and `outer_join` of two streams within [`JoinWindows`], with
//! [`StreamJoined`] options, as Kafka Streams' `KStreamImplJoin` builds them: each side's
//! records go through a `KSTREAM-WINDOWED` node into its window store, then a join node
//! looks up the other side's store, and a `KSTREAM-MERGE` node makes one stream of both.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use super::JoinWindows;
use super::outer_store;
use super::window_join::{
    JoinSpec, JoinWindow, Joiner, LeftSide, RightSide, StreamStreamJoin, inner_joiner, left_joiner,
};
use crate::dsl::builder::DslState;
use crate::dsl::kstream::PassThrough;
use crate::dsl::{KStream, Repartitioned};
use crate::serde::{DefaultSerde, Serde, SharedSerde};
use crate::state::StoreBuilder;

/// Options of a stream-stream join (Kafka Streams' `StreamJoined`): the name its nodes
/// and repartition topics are named after, the name its stores are named after, serdes
/// other than the types' defaults for the stores, whether the stores are logged and where
/// they keep their data.
pub struct StreamJoined<K, V1, V2> {
    name: Option<String>,
    store_name: Option<String>,
    key_serde: Option<SharedSerde<K>>,
    value_serde: Option<SharedSerde<V1>>,
    other_value_serde: Option<SharedSerde<V2>>,
    logging: bool,
    in_memory: bool,
}

impl<K, V1, V2> Default for StreamJoined<K, V1, V2> {
    fn default() -> Self {
        Self {
            name: None,
            store_name: None,
            key_serde: None,
            value_serde: None,
            other_value_serde: None,
            logging: true,
            in_memory: false,
        }
    }
}

impl<K, V1, V2> fmt::Debug for StreamJoined<K, V1, V2> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StreamJoined")
            .field("name", &self.name)
            .field("store_name", &self.store_name)
            .field("logging", &self.logging)
            .field("in_memory", &self.in_memory)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V1: 'static, V2: 'static> StreamJoined<K, V1, V2> {
    /// Options whose stores are named after `store_name`: `<store_name>-this-join-store`,
    /// `<store_name>-other-join-store` (`-outer-this-join-store`, `-outer-other-join-store`
    /// and `-left-shared-join-store` or `-outer-shared-join-store` as the join needs).
    pub fn with_store_name(store_name: &str) -> Self {
        Self::default().and_store_name(store_name)
    }

    /// Options whose nodes are named after `name` (`<name>-this-windowed`, ...,
    /// `<name>-merge`), and its repartition topics too (`<name>-left-repartition`,
    /// `<name>-right-repartition`); stores keep generated names unless given one.
    pub fn as_(name: &str) -> Self {
        Self::default().with_name(name)
    }

    /// Names the join's nodes and repartition topics after `name`.
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Names the join's stores after `store_name`.
    #[must_use]
    pub fn and_store_name(mut self, store_name: &str) -> Self {
        self.store_name = Some(store_name.to_string());
        self
    }

    /// Sets the key serde of the stores and repartition topics (default: the key type's).
    #[must_use]
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the serde of this stream's values (default: the value type's).
    #[must_use]
    pub fn with_value_serde(mut self, serde: impl Serde<V1>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the serde of the other stream's values (default: the value type's).
    #[must_use]
    pub fn with_other_value_serde(mut self, serde: impl Serde<V2>) -> Self {
        self.other_value_serde = Some(Arc::new(serde));
        self
    }

    /// Whether the stores write changelog topics (default: yes).
    #[must_use]
    pub fn with_logging(mut self, enabled: bool) -> Self {
        self.logging = enabled;
        self
    }

    /// Keeps the stores in memory instead of RocksDB (restored from their changelogs).
    #[must_use]
    pub fn in_memory(mut self) -> Self {
        self.in_memory = true;
        self
    }
}

/// Which records without a partner a join emits alone.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outer {
    /// None (`join`).
    Neither,
    /// The left stream's (`left_join`).
    Left,
    /// Both streams' (`outer_join`).
    Both,
}

impl<K, V1> KStream<K, V1>
where
    K: DefaultSerde + Clone,
    V1: DefaultSerde + Clone,
{
    /// Each record of this stream with each of `other`'s of the same key within `windows`
    /// (an inner join): `joiner(this value, other value)`, stamped with the later of the
    /// two timestamps. Both streams must be partitioned alike (after a key change a
    /// stream first goes through a repartition topic); records without a key or a value
    /// are dropped (counted and logged).
    ///
    /// ```
    /// use homa::prelude::*;
    /// use std::time::Duration;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let left = builder.stream::<String, String>("left");
    /// let right = builder.stream::<String, String>("right");
    /// let windows = JoinWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(2));
    /// left.join(&right, |l, r| format!("{l}+{r}"), windows).to("inner");
    /// ```
    pub fn join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`join`](Self::join) with the options of `joined`.
    pub fn join_with<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.windowed_join(other, inner_joiner(joiner), windows, joined, Outer::Neither)
    }

    /// [`join`](Self::join), and each record of this stream that found no partner once
    /// its window closed (after the grace), alone: `joiner(value, None)`, stamped with its
    /// own timestamp. A record without a key but with a value goes on alone at once.
    pub fn left_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.left_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`left_join`](Self::left_join) with the options of `joined`.
    pub fn left_join_with<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.windowed_join(other, left_joiner(joiner), windows, joined, Outer::Left)
    }

    /// [`left_join`](Self::left_join) both ways: the records of either stream that found
    /// no partner are emitted alone, `joiner(Some(value), None)` or
    /// `joiner(None, Some(value))`.
    pub fn outer_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.outer_join_with(other, joiner, windows, StreamJoined::default())
    }

    /// [`outer_join`](Self::outer_join) with the options of `joined`.
    pub fn outer_join_with<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: impl Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync + 'static,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        self.windowed_join(other, Arc::new(joiner), windows, joined, Outer::Both)
    }

    /// The join's nodes and stores, named as Kafka Streams names them.
    fn windowed_join<V2, VR>(
        &self,
        other: &KStream<K, V2>,
        joiner: Joiner<V1, V2, VR>,
        windows: JoinWindows,
        joined: StreamJoined<K, V1, V2>,
        outer: Outer,
    ) -> KStream<K, VR>
    where
        V2: DefaultSerde + Clone,
        VR: Clone + 'static,
    {
        let keys = joined.key_serde.clone().unwrap_or_else(K::default_serde);
        let lefts = joined.value_serde.clone().unwrap_or_else(V1::default_serde);
        let rights = (joined.other_value_serde.clone()).unwrap_or_else(V2::default_serde);
        let named = |suffix: &str| joined.name.as_ref().map(|name| format!("{name}-{suffix}"));
        let left = self.partitioned(named("left"), (keys.clone(), lefts.clone()));
        let right = other.partitioned(named("right"), (keys.clone(), rights.clone()));

        let state = self.state().clone();
        let mut state = state.borrow_mut();
        let JoinNames {
            this_windowed,
            other_windowed,
            join_this,
            join_other,
            merge,
            this_store,
            other_store,
            outer_store,
        } = JoinNames::draw(&mut state, &joined, outer);

        let spec = |outer, other_store: &Arc<str>| JoinSpec {
            windows,
            outer,
            other_store: other_store.clone(),
            outer_store: outer_store.clone(),
            tracker: Arc::from(format!("{join_this} time")),
            joiner: joiner.clone(),
        };
        let (left_spec, right_spec) = (
            spec(outer != Outer::Neither, &other_store),
            spec(outer == Outer::Both, &this_store),
        );
        let added = (|| {
            let this_node = state.add_processor::<_, K, V1, K, V1>(
                &this_windowed,
                &[left.node()],
                {
                    let store = this_store.clone();
                    move || JoinWindow::new(store.clone())
                },
                None,
            )?;
            let other_node = state.add_processor::<_, K, V2, K, V2>(
                &other_windowed,
                &[right.node()],
                {
                    let store = other_store.clone();
                    move || JoinWindow::new(store.clone())
                },
                None,
            )?;
            let this_join = state.add_processor(
                &join_this,
                &[this_node],
                move || StreamStreamJoin::<K, V1, V2, VR, LeftSide>::new(left_spec.clone()),
                None,
            )?;
            let other_join = state.add_processor(
                &join_other,
                &[other_node],
                move || StreamStreamJoin::<K, V1, V2, VR, RightSide>::new(right_spec.clone()),
                None,
            )?;
            let merged = state.add_processor::<_, K, VR, K, VR>(
                &merge,
                &[this_join, other_join],
                || PassThrough,
                None,
            )?;
            let this = StoreBuilder::with_serdes(&*this_store, keys.clone(), lefts.clone());
            state.graph.add_store(
                stored(&joined, this, windows).into_def(),
                &[&this_windowed, &join_other],
            )?;
            let others = StoreBuilder::with_serdes(&*other_store, keys.clone(), rights.clone());
            state.graph.add_store(
                stored(&joined, others, windows).into_def(),
                &[&other_windowed, &join_this],
            )?;
            if let Some(name) = &outer_store {
                let (held_keys, held_values) = outer_store::serdes(keys, lefts, rights);
                let held = StoreBuilder::with_serdes(&**name, held_keys, held_values)
                    .logging(joined.logging);
                let held = match joined.in_memory {
                    true => held.in_memory(),
                    false => held,
                };
                state
                    .graph
                    .add_store(held.into_def(), &[&join_this, &join_other])?;
            }
            Ok(merged)
        })();
        let node = state.or_report(added, self.node());
        KStream::new(self.state().clone(), node)
    }

    /// This stream where a join reads it: through a repartition topic named `name` (else
    /// after its node) when its keys may have changed, as itself otherwise.
    fn partitioned(&self, name: Option<String>, serdes: (SharedSerde<K>, SharedSerde<V1>)) -> Self {
        if !self.repartition_required() {
            return self.clone();
        }
        let name = name.unwrap_or_else(|| {
            let state = self.state().borrow();
            state.graph.node(self.node()).name.to_string()
        });
        self.repartition_with_serdes(Repartitioned::as_(&name), serdes)
    }
}

/// The names of a stream-stream join's nodes and stores, drawn as Kafka Streams draws
/// them: five indices (each drawn even when `joined` names the node), the stores named
/// after `joined`'s store name, else after the join nodes' generated names.
struct JoinNames {
    this_windowed: String,
    other_windowed: String,
    join_this: String,
    join_other: String,
    merge: String,
    this_store: Arc<str>,
    other_store: Arc<str>,
    /// Of a left or outer join.
    outer_store: Option<Arc<str>>,
}

impl JoinNames {
    fn draw<K, V1, V2>(
        state: &mut DslState,
        joined: &StreamJoined<K, V1, V2>,
        outer: Outer,
    ) -> Self {
        let named = |suffix: &str| joined.name.as_ref().map(|name| format!("{name}-{suffix}"));
        let mut node_name = |prefix: &str, suffix: &str| {
            let generated = state.name(prefix);
            let name = named(suffix).unwrap_or_else(|| generated.clone());
            (generated, name)
        };
        let (_, this_windowed) = node_name("KSTREAM-WINDOWED", "this-windowed");
        let (_, other_windowed) = node_name("KSTREAM-WINDOWED", "other-windowed");
        let (this_generated, join_this) = match outer {
            Outer::Both => node_name("KSTREAM-OUTERTHIS", "outer-this-join"),
            _ => node_name("KSTREAM-JOINTHIS", "this-join"),
        };
        let (other_generated, join_other) = match outer {
            Outer::Neither => node_name("KSTREAM-JOINOTHER", "other-join"),
            _ => node_name("KSTREAM-OUTEROTHER", "outer-other-join"),
        };
        let (_, merge) = node_name("KSTREAM-MERGE", "merge");

        let store_name = |generated: &str, suffix: &str| match &joined.store_name {
            Some(name) => format!("{name}-{suffix}-store"),
            None => format!("{generated}-store"),
        };
        let this_store: Arc<str> = match outer {
            Outer::Both => store_name(&this_generated, "outer-this-join"),
            _ => store_name(&this_generated, "this-join"),
        }
        .into();
        let other_store: Arc<str> = match outer {
            Outer::Neither => store_name(&other_generated, "other-join"),
            _ => store_name(&other_generated, "outer-other-join"),
        }
        .into();
        let outer_store: Option<Arc<str>> = match (outer, &joined.store_name) {
            (Outer::Neither, _) => None,
            (Outer::Left, Some(name)) => Some(format!("{name}-left-shared-join-store").into()),
            (Outer::Both, Some(name)) => Some(format!("{name}-outer-shared-join-store").into()),
            (_, None) => {
                let index = this_generated.rsplit('-').next().unwrap_or_default();
                Some(format!("KSTREAM-OUTERSHARED-{index}-store").into())
            }
        };
        Self {
            this_windowed,
            other_windowed,
            join_this,
            join_other,
            merge,
            this_store,
            other_store,
            outer_store,
        }
    }
}

/// A join's window store of one side's records: every record kept apart, for the
/// windows' span plus the grace.
fn stored<K: 'static, V: 'static>(
    joined: &StreamJoined<K, impl Sized, impl Sized>,
    store: StoreBuilder<K, V>,
    windows: JoinWindows,
) -> StoreBuilder<K, V> {
    let millis = |ms: i64| Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    let store = store
        .windowed(
            millis(windows.retention_ms()),
            millis(windows.size_ms()),
            true,
        )
        .logging(joined.logging);
    match joined.in_memory {
        true => store.in_memory(),
        false => store,
    }
}

//! Foreign-key joins (KIP-213): `KTable::join_on_foreign_key` and
//! `left_join_on_foreign_key`, a table joined with another by a key its rows refer to, as
//! Kafka Streams 4.4 builds them.
//!
//! Each change of a row sends a subscription, keyed by the foreign key, through the
//! subscription topic to the foreign table's task (partitioned as its table), which keeps
//! it in the subscription store and answers with the foreign row; every change of a
//! foreign row answers every row subscribed to it. Answers go back through the response
//! topic to the partition the row came from, where each is joined with the row's current
//! value, unless the row changed since it subscribed (the answer's hash of the row's value
//! is not the current one's: stale, and dropped). `wire` has the formats of both topics,
//! `processors` the five processors.

mod processors;
mod wire;

use std::sync::Arc;

use processors::{
    Extractor, FkJoiner, ForeignTableJoin, PseudoTopics, ResponseJoin, SubscriptionJoin,
    SubscriptionReceive, SubscriptionSend, Subscriptions,
};
use wire::{Response, ResponseSerde, Subscription, SubscriptionSerde};

use crate::dsl::builder::SinkTopicName;
use crate::dsl::ktable::{KTable, table_named};
use crate::dsl::{KStream, Materialized, Produced};
use crate::processor::StreamPartitioner;
use crate::serde::DefaultSerde;
use crate::state::StoreBuilder;
use crate::topology::TopologyError;
use crate::topology::graph::{NodeId, NodeKind, RecordType};
use crate::topology::task_builder::source_build;

/// Chooses the partition of a join's record by its key: `(topic, key, partition count)`.
type KeyPartitioner<K> = Arc<dyn Fn(&str, Option<&K>, i32) -> Option<i32> + Send + Sync>;

/// Options of a foreign-key join (Kafka Streams' `TableJoined`): the name its processors,
/// topics and subscription store are named after, and how its internal topics are
/// partitioned when the tables' topics are not partitioned by the default partitioner
/// (murmur2 of the serialized key).
pub struct TableJoined<K, KO> {
    name: Option<String>,
    /// Of the response topic, by the row's key: as the row's table is partitioned.
    partitioner: Option<KeyPartitioner<K>>,
    /// Of the subscription topic, by the foreign key: as the foreign table is partitioned.
    other_partitioner: Option<KeyPartitioner<KO>>,
}

impl<K, KO> Default for TableJoined<K, KO> {
    fn default() -> Self {
        Self {
            name: None,
            partitioner: None,
            other_partitioner: None,
        }
    }
}

impl<K, KO> std::fmt::Debug for TableJoined<K, KO> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TableJoined")
            .field("name", &self.name)
            .field("partitioner", &self.partitioner.is_some())
            .field("other_partitioner", &self.other_partitioner.is_some())
            .finish()
    }
}

impl<K, KO> TableJoined<K, KO> {
    /// A join named `name`: its nodes are `<name>-subscription-registration-processor` and
    /// so on, its topics `<application.id>-<name>-subscription-registration-topic` and
    /// `...-subscription-response-topic`, its store `<name>-subscription-store`.
    pub fn as_(name: &str) -> Self {
        Self::default().with_name(name)
    }

    /// Sets the name (default: generated names).
    #[must_use]
    pub fn with_name(mut self, name: &str) -> Self {
        self.name = Some(name.to_string());
        self
    }

    /// Sets how the row's table is partitioned, by its key (`(topic, key, partition count)`
    /// to a partition, `None`: the default): the responses go where it says.
    #[must_use]
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&str, Option<&K>, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }

    /// Sets how the foreign table is partitioned, by its key: the subscriptions go where
    /// it says.
    #[must_use]
    pub fn with_other_partitioner(
        mut self,
        partitioner: impl Fn(&str, Option<&KO>, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.other_partitioner = Some(Arc::new(partitioner));
        self
    }
}

impl<K, V> KTable<K, V>
where
    K: DefaultSerde + Clone,
    V: DefaultSerde + Clone,
{
    /// Each row joined with the row of `other` its foreign key names,
    /// `joiner(value, foreign value)` (an inner join, KIP-213): the key is
    /// `extractor(value)` (a row without one, `None`, joins nothing). A change of either
    /// table's row re-joins the rows concerned; a row whose foreign row is gone, or that
    /// refers to another, is deleted from the result.
    ///
    /// ```
    /// use homa::prelude::*;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let orders: KTable<String, String> = builder.table("orders", Materialized::default());
    /// let customers: KTable<String, String> = builder.table("customers", Materialized::default());
    /// // An order is "<customer id>:<item>".
    /// let customer_of = |order: &String| order.split_once(':').map(|(c, _)| c.to_string());
    /// orders
    ///     .join_on_foreign_key(&customers, customer_of, |order, name| format!("{order} for {name}"))
    ///     .to_stream()
    ///     .to("orders-with-customers");
    /// ```
    pub fn join_on_foreign_key<KO, VO, VR, R>(
        &self,
        other: &KTable<KO, VO>,
        extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR>
    where
        KO: DefaultSerde + Clone,
        VO: DefaultSerde + Clone,
        VR: DefaultSerde + Clone,
        R: Into<Option<KO>>,
    {
        self.join_on_foreign_key_with(
            other,
            move |_: &K, value: &V| extractor(value),
            joiner,
            TableJoined::default(),
            Materialized::default(),
        )
    }

    /// [`join_on_foreign_key`](Self::join_on_foreign_key) with a foreign key made of the
    /// row's key and value, `extractor(key, value)`, named and partitioned as
    /// `table_joined` says, into the store `materialized` describes (kept in none unless
    /// named or needed).
    pub fn join_on_foreign_key_with<KO, VO, VR, R>(
        &self,
        other: &KTable<KO, VO>,
        extractor: impl Fn(&K, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &VO) -> VR + Send + Sync + 'static,
        table_joined: TableJoined<K, KO>,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: DefaultSerde + Clone,
        VO: DefaultSerde + Clone,
        VR: DefaultSerde + Clone,
        R: Into<Option<KO>>,
    {
        let joiner: FkJoiner<V, VO, VR> =
            Arc::new(move |value, foreign| foreign.map(|foreign| joiner(value, foreign)));
        let extractor: Extractor<K, V, KO> = Arc::new(move |k, v| extractor(k, v).into());
        self.foreign_key_join(
            other,
            extractor,
            joiner,
            false,
            (table_joined, materialized),
        )
    }

    /// Each row joined with the row of `other` its foreign key names, if any,
    /// `joiner(value, foreign value)` (a left join): as
    /// [`join_on_foreign_key`](Self::join_on_foreign_key), but a row without a foreign row
    /// (or a foreign key) joins with `None`.
    pub fn left_join_on_foreign_key<KO, VO, VR, R>(
        &self,
        other: &KTable<KO, VO>,
        extractor: impl Fn(&V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR>
    where
        KO: DefaultSerde + Clone,
        VO: DefaultSerde + Clone,
        VR: DefaultSerde + Clone,
        R: Into<Option<KO>>,
    {
        self.left_join_on_foreign_key_with(
            other,
            move |_: &K, value: &V| extractor(value),
            joiner,
            TableJoined::default(),
            Materialized::default(),
        )
    }

    /// [`left_join_on_foreign_key`](Self::left_join_on_foreign_key) as
    /// [`join_on_foreign_key_with`](Self::join_on_foreign_key_with) is
    /// [`join_on_foreign_key`](Self::join_on_foreign_key).
    pub fn left_join_on_foreign_key_with<KO, VO, VR, R>(
        &self,
        other: &KTable<KO, VO>,
        extractor: impl Fn(&K, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VO>) -> VR + Send + Sync + 'static,
        table_joined: TableJoined<K, KO>,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        KO: DefaultSerde + Clone,
        VO: DefaultSerde + Clone,
        VR: DefaultSerde + Clone,
        R: Into<Option<KO>>,
    {
        let joiner: FkJoiner<V, VO, VR> =
            Arc::new(move |value, foreign| Some(joiner(value, foreign)));
        let extractor: Extractor<K, V, KO> = Arc::new(move |k, v| extractor(k, v).into());
        self.foreign_key_join(other, extractor, joiner, true, (table_joined, materialized))
    }

    /// The join's nodes, topics and stores, named as Kafka Streams 4.4 names them (13
    /// names drawn, a 14th for an unnamed result store; a `TableJoined` name replaces them
    /// but draws them all the same).
    fn foreign_key_join<KO, VO, VR>(
        &self,
        other: &KTable<KO, VO>,
        extractor: Extractor<K, V, KO>,
        joiner: FkJoiner<V, VO, VR>,
        left: bool,
        (table_joined, materialized): (TableJoined<K, KO>, Materialized<K, VR>),
    ) -> KTable<K, VR>
    where
        KO: DefaultSerde + Clone,
        VO: DefaultSerde + Clone,
        VR: DefaultSerde + Clone,
    {
        // Both tables are read, and send their old values (their roots kept in stores).
        let (this_getter, other_getter) = (self.value_getter(), other.value_getter());
        let state = self.state().clone();
        let mut dsl = state.borrow_mut();
        let base = table_joined.name.clone();
        let mut name = |suffix: &str, prefix: &str| {
            let generated = dsl.name(prefix);
            match &base {
                Some(base) => format!("{base}{suffix}"),
                None => generated,
            }
        };
        let names = Names {
            subscription_topic: name(
                "-subscription-registration",
                "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION",
            ) + "-topic",
            send: name(
                "-subscription-registration-processor",
                "KTABLE-FK-JOIN-SUBSCRIPTION-REGISTRATION",
            ),
            subscription_sink: name("-subscription-registration-sink", "KTABLE-SINK"),
            subscription_source: name("-subscription-registration-source", "KTABLE-SOURCE"),
            store: name(
                "-subscription-store",
                "KTABLE-FK-JOIN-SUBSCRIPTION-STATE-STORE",
            ),
            receive: name(
                "-subscription-receive",
                "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR",
            ),
            join_foreign: name(
                "-subscription-join-foreign",
                "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR",
            ),
            foreign_join: name(
                "-foreign-join-subscription",
                "KTABLE-FK-JOIN-SUBSCRIPTION-PROCESSOR",
            ),
            response_topic: name(
                "-subscription-response",
                "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE",
            ) + "-topic",
            response_sink: name("-subscription-response-sink", "KTABLE-SINK"),
            response_source: name("-subscription-response-source", "KTABLE-SOURCE"),
            resolver: name(
                "-subscription-response-resolver",
                "KTABLE-FK-JOIN-SUBSCRIPTION-RESPONSE-RESOLVER-PROCESSOR",
            ),
            result: name("-result", "KTABLE-FK-JOIN-OUTPUT"),
        };
        let result_store = match materialized.name() {
            Some(store) => store.to_string(),
            None => dsl.name("KTABLE-FK-JOIN-OUTPUT-STATE-STORE"),
        };
        let topic: Arc<str> = Arc::from(names.subscription_topic.as_str());
        let subscriptions = Arc::new(SubscriptionSerde {
            keys: K::default_serde(),
        });
        let added = (|| -> Result<NodeId, TopologyError> {
            // The row's side: its changes to subscriptions.
            let (values, t, x) = (V::default_serde(), topic.clone(), extractor.clone());
            let send = dsl.add_processor(
                &names.send,
                &[self.node()],
                move || SubscriptionSend {
                    extractor: x.clone(),
                    left,
                    foreign_keys: KO::default_serde(),
                    values: values.clone(),
                    topic: t.clone(),
                    topics: PseudoTopics::default(),
                },
                None,
            )?;
            dsl.graph
                .add_internal_topic(&names.subscription_topic, None);
            let other_partitioner = table_joined.other_partitioner.clone().map(|p| {
                let p: StreamPartitioner<KO, Subscription<K>> =
                    Arc::new(move |topic, key, _, count| p(topic, key, count));
                p
            });
            dsl.add_sink::<KO, Subscription<K>>(
                &names.subscription_sink,
                SinkTopicName::Fixed(names.subscription_topic.clone()),
                &[send],
                &Produced {
                    key_serde: None,
                    value_serde: Some(subscriptions.clone()),
                    name: None,
                    partitioner: other_partitioner,
                },
            )?;
            // The foreign side: subscriptions kept and answered, foreign changes answered.
            let source = dsl.graph.add(
                &names.subscription_source,
                NodeKind::Source {
                    topics: vec![names.subscription_topic.clone()],
                },
                &[],
                None,
                Some(RecordType::of::<KO, Subscription<K>>()),
                source_build(KO::default_serde(), subscriptions.clone(), None),
            )?;
            dsl.graph
                .copartition(&names.subscription_topic, other.node());
            let store: Arc<str> = Arc::from(names.store.as_str());
            let (s, serde, t) = (store.clone(), subscriptions.clone(), topic.clone());
            let receive = dsl.add_processor(
                &names.receive,
                &[source],
                move || SubscriptionReceive {
                    subscriptions: Subscriptions::new(s.clone(), t.clone(), KO::default_serde()),
                    serde: serde.clone(),
                },
                None,
            )?;
            let getter = other_getter.clone();
            let join_foreign = dsl.add_processor(
                &names.join_foreign,
                &[receive],
                move || SubscriptionJoin::<K, KO, VO> {
                    supplier: getter.clone(),
                    getter: None,
                    _keys: std::marker::PhantomData,
                },
                None,
            )?;
            for store in &other_getter.stores {
                dsl.graph.connect_store(store, join_foreign);
            }
            let (s, t) = (store.clone(), topic.clone());
            let foreign_join = dsl.add_processor::<_, KO, _, K, Response<VO>>(
                &names.foreign_join,
                &[other.node()],
                move || ForeignTableJoin {
                    subscriptions: Subscriptions::new(s.clone(), t.clone(), KO::default_serde()),
                    primary_keys: K::default_serde(),
                },
                None,
            )?;
            let subscription_store =
                StoreBuilder::<Vec<u8>, Vec<u8>>::timestamped_key_value(names.store.clone());
            dsl.graph.add_store(
                subscription_store.into_def(),
                &[&names.receive, &names.foreign_join],
            )?;
            // Back to the row's side, to the partition each row came from.
            dsl.graph.add_internal_topic(&names.response_topic, None);
            let partitioner: StreamPartitioner<K, Response<VO>> =
                match table_joined.partitioner.clone() {
                    Some(p) => Arc::new(move |topic, key, _, count| p(topic, key, count)),
                    None => Arc::new(|_, _, response: Option<&Response<VO>>, _| {
                        response.and_then(|r| r.primary_partition)
                    }),
                };
            dsl.add_sink::<K, Response<VO>>(
                &names.response_sink,
                SinkTopicName::Fixed(names.response_topic.clone()),
                &[join_foreign, foreign_join],
                &Produced {
                    key_serde: None,
                    value_serde: Some(Arc::new(ResponseSerde {
                        values: VO::default_serde(),
                    })),
                    name: None,
                    partitioner: Some(partitioner),
                },
            )?;
            let source = dsl.graph.add(
                &names.response_source,
                NodeKind::Source {
                    topics: vec![names.response_topic.clone()],
                },
                &[],
                None,
                Some(RecordType::of::<K, Response<VO>>()),
                source_build(K::default_serde(), Response::<VO>::default_serde(), None),
            )?;
            dsl.graph.copartition(&names.response_topic, self.node());
            let (getter, t) = (this_getter.clone(), topic.clone());
            let resolver = dsl.add_processor(
                &names.resolver,
                &[source],
                move || ResponseJoin {
                    supplier: getter.clone(),
                    getter: None,
                    values: V::default_serde(),
                    joiner: joiner.clone(),
                    topic: t.clone(),
                    topics: PseudoTopics::default(),
                },
                None,
            )?;
            for store in &this_getter.stores {
                dsl.graph.connect_store(store, resolver);
            }
            Ok(resolver)
        })();
        let resolver = dsl.or_report(added, self.node());
        drop(dsl);
        let joined = KStream::new(state, resolver);
        table_named(&joined, names.result, result_store, materialized)
    }
}

/// The names of a foreign-key join's nodes, topics and subscription store.
struct Names {
    subscription_topic: String,
    send: String,
    subscription_sink: String,
    subscription_source: String,
    store: String,
    receive: String,
    join_foreign: String,
    foreign_join: String,
    response_topic: String,
    response_sink: String,
    response_source: String,
    resolver: String,
    result: String,
}

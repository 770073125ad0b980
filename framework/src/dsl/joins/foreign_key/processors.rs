//! The processors of a foreign-key join, as Kafka Streams 4.4's (`SubscriptionSend`,
//! `SubscriptionReceive`, `SubscriptionJoin`, `ForeignTableJoin`, `ResponseJoin`). The
//! row's side runs `SubscriptionSend` on its table's changes and `ResponseJoin` on the
//! responses; the foreign side keeps the subscriptions in its store (`SubscriptionReceive`),
//! answers each with its foreign row (`SubscriptionJoin`) and answers every subscriber of a
//! foreign row that changes (`ForeignTableJoin`).

use std::sync::Arc;

use super::wire::{self, Hash, Instruction, Response, Subscription, SubscriptionSerde};
use crate::dsl::ktable::{Change, ValueGetter, ValueGetterSupplier};
use crate::header::Headers;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::{Serde, SharedSerde};
use crate::state::{TimestampedKeyValueStore, ValueAndTimestamp};

/// The foreign key of a row (none: the row refers to no foreign row).
pub(crate) type Extractor<K, V, KO> = Arc<dyn Fn(&K, &V) -> Option<KO> + Send + Sync>;

/// Joins a row with its foreign row (none: there is none): the result, or none for a
/// tombstone (an inner join's when there is no foreign row).
pub(crate) type FkJoiner<V, VO, VR> = Arc<dyn Fn(&V, Option<&VO>) -> Option<VR> + Send + Sync>;

/// The names a join's processors serialize with, from its subscription topic's name on the
/// broker (`<application.id>-<topic>`): `-fk`, `-pk` and `-vh` after it, as Kafka
/// Streams' pseudo-topics.
#[derive(Debug, Clone, Default)]
pub(crate) struct PseudoTopics {
    pub(crate) subscription: String,
    pub(crate) foreign_key: String,
    pub(crate) primary_key: String,
    pub(crate) value_hash: String,
}

impl PseudoTopics {
    /// Those of subscription topic `topic` (without the application id) of the processor's
    /// application.
    pub(crate) fn new<K, V>(topic: &str, ctx: &ProcessorContext<K, V>) -> Self {
        let subscription = format!("{}-{topic}", ctx.application_id());
        Self {
            foreign_key: format!("{subscription}-fk"),
            primary_key: format!("{subscription}-pk"),
            value_hash: format!("{subscription}-vh"),
            subscription,
        }
    }
}

/// The bytes `serde` makes of `value` for `topic`, with a copy of `headers`.
fn bytes_of<T: 'static>(
    serde: &SharedSerde<T>,
    topic: &str,
    headers: &Headers,
    value: &T,
) -> Result<Vec<u8>, ProcessError> {
    let mut out = Vec::new();
    let mut headers = headers.clone();
    serde
        .serialize(topic, &mut headers, value, &mut out)
        .map_err(|e| format!("a foreign-key join cannot serialize for {topic}: {e}"))?;
    Ok(out)
}

/// The hash of `value` as `values` serializes it for the value-hash pseudo-topic.
fn value_hash<V: 'static>(
    values: &SharedSerde<V>,
    topics: &PseudoTopics,
    headers: &Headers,
    value: &V,
) -> Result<Hash, ProcessError> {
    Ok(wire::hash(&bytes_of(
        values,
        &topics.value_hash,
        headers,
        value,
    )?))
}

/// Sends each change of the row's table as subscriptions to the foreign keys it leaves
/// and refers to (Kafka Streams 4.4's `SubscriptionSendProcessorSupplier`).
pub(crate) struct SubscriptionSend<K, V, KO> {
    pub(crate) extractor: Extractor<K, V, KO>,
    pub(crate) left: bool,
    pub(crate) foreign_keys: SharedSerde<KO>,
    pub(crate) values: SharedSerde<V>,
    /// The subscription topic, without the application id.
    pub(crate) topic: Arc<str>,
    pub(crate) topics: PseudoTopics,
}

impl<K, V, KO: 'static> SubscriptionSend<K, V, KO> {
    /// Whether two foreign keys differ, as their bytes do.
    fn changed(&self, new: Option<&KO>, old: &KO, headers: &Headers) -> Result<bool, ProcessError> {
        let old = bytes_of(&self.foreign_keys, &self.topics.foreign_key, headers, old)?;
        Ok(match new {
            Some(new) => {
                bytes_of(&self.foreign_keys, &self.topics.foreign_key, headers, new)? != old
            }
            None => true,
        })
    }
}

impl<K, V, KO> Processor<K, Change<V>, KO, Subscription<K>> for SubscriptionSend<K, V, KO>
where
    K: Clone + 'static,
    V: 'static,
    KO: Clone + 'static,
{
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        self.topics = PseudoTopics::new(&self.topic, ctx);
        Ok(())
    }

    fn process(
        &mut self,
        mut record: Record<K, Change<V>>,
        ctx: &mut ProcessorContext<KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        let Some(key) = record.key.clone() else {
            ctx.drop_record("a foreign-key join needs the row's key");
            return Ok(());
        };
        let Change { new, old } = record.value.take().unwrap_or(Change {
            new: None,
            old: None,
        });
        // Every subscription of one change carries the hash of its new value.
        let hash = match &new {
            Some(value) => Some(value_hash(
                &self.values,
                &self.topics,
                &record.headers,
                value,
            )?),
            None => None,
        };
        // The task's: a cached table forwards its changes when its cache flushes.
        let primary_partition = ctx.task_partition();
        let extract = |value: &Option<V>| value.as_ref().and_then(|v| (self.extractor)(&key, v));
        let old_key = extract(&old);
        let mut sends: Vec<(Option<KO>, Instruction)> = Vec::with_capacity(2);
        if self.left {
            if old.is_some() || new.is_some() {
                let new_key = extract(&new);
                if let Some(old_key) = &old_key
                    && self.changed(new_key.as_ref(), old_key, &record.headers)?
                {
                    sends.push((Some(old_key.clone()), Instruction::DeleteKeyNoPropagate));
                }
                // A row without a foreign key too: it joins with no foreign row (KIP-962).
                sends.push((new_key, Instruction::PropagateNullIfNoFkValAvailable));
            }
        } else if new.is_some() {
            match extract(&new) {
                None => {
                    ctx.drop_record("a foreign-key join needs a foreign key; the row has none");
                    if let Some(old_key) = old_key {
                        sends.push((Some(old_key), Instruction::DeleteKeyAndPropagate));
                    }
                }
                Some(new_key) => match old_key {
                    Some(old_key) if self.changed(Some(&new_key), &old_key, &record.headers)? => {
                        sends.push((Some(old_key), Instruction::DeleteKeyNoPropagate));
                        sends.push((Some(new_key), Instruction::PropagateNullIfNoFkValAvailable));
                    }
                    _ => sends.push((Some(new_key), Instruction::PropagateOnlyIfFkValAvailable)),
                },
            }
        } else if let Some(old_key) = old_key {
            sends.push((Some(old_key), Instruction::DeleteKeyAndPropagate));
        }
        for (foreign_key, instruction) in sends {
            let subscription = Subscription {
                hash,
                instruction,
                primary_key: key.clone(),
                primary_partition,
            };
            ctx.forward(Record::from_parts(
                foreign_key,
                Some(subscription),
                record.timestamp,
                record.headers.clone(),
            ))?;
        }
        Ok(())
    }
}

/// The subscription store of a join: by foreign and primary key's bytes, the
/// subscription's bytes as its topic has them.
type SubscriptionStore = TimestampedKeyValueStore<Vec<u8>, Vec<u8>>;

/// The subscription store as the foreign side's two processors use it, with what its keys
/// are serialized with.
pub(crate) struct Subscriptions<KO> {
    pub(crate) store_name: Arc<str>,
    pub(crate) store: Option<SubscriptionStore>,
    pub(crate) foreign_keys: SharedSerde<KO>,
    /// The subscription topic, without the application id.
    pub(crate) topic: Arc<str>,
    pub(crate) topics: PseudoTopics,
}

impl<KO: 'static> Subscriptions<KO> {
    pub(crate) fn new(
        store_name: Arc<str>,
        topic: Arc<str>,
        foreign_keys: SharedSerde<KO>,
    ) -> Self {
        Self {
            store_name,
            store: None,
            foreign_keys,
            topic,
            topics: PseudoTopics::default(),
        }
    }

    fn open<K, V>(&mut self, ctx: &ProcessorContext<K, V>) -> Result<(), ProcessError> {
        self.topics = PseudoTopics::new(&self.topic, ctx);
        self.store = Some(ctx.timestamped_key_value_store(&self.store_name)?);
        Ok(())
    }

    /// The open store, and the bytes of `foreign_key` as its keys start with.
    fn with_key(
        &self,
        foreign_key: &KO,
        headers: &Headers,
    ) -> Result<(&SubscriptionStore, Vec<u8>), ProcessError> {
        let Some(store) = &self.store else {
            return Err(format!("store {} is not open", self.store_name).into());
        };
        let bytes = bytes_of(
            &self.foreign_keys,
            &self.topics.foreign_key,
            headers,
            foreign_key,
        )?;
        Ok((store, bytes))
    }
}

/// Keeps each subscription in the subscription store (forgets it when it says so), and
/// hands it on to be answered (Kafka Streams' `SubscriptionReceiveProcessorSupplier`).
pub(crate) struct SubscriptionReceive<K, KO> {
    pub(crate) subscriptions: Subscriptions<KO>,
    pub(crate) serde: Arc<SubscriptionSerde<K>>,
}

impl<K, KO> Processor<KO, Subscription<K>, KO, Subscription<K>> for SubscriptionReceive<K, KO>
where
    K: Clone + 'static,
    KO: Clone + 'static,
{
    fn init(
        &mut self,
        ctx: &mut ProcessorContext<KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        self.subscriptions.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<KO, Subscription<K>>,
        ctx: &mut ProcessorContext<KO, Subscription<K>>,
    ) -> Result<(), ProcessError> {
        let Some(subscription) = &record.value else {
            ctx.drop_record("a foreign-key join subscription needs a value");
            return Ok(());
        };
        let Some(foreign_key) = &record.key else {
            // A left join's row without a foreign key: answered, never kept.
            if subscription.instruction == Instruction::PropagateNullIfNoFkValAvailable {
                return ctx.forward(record);
            }
            ctx.drop_record("a foreign-key join subscription needs a foreign key");
            return Ok(());
        };
        let headers = &record.headers;
        let (store, foreign) = self.subscriptions.with_key(foreign_key, headers)?;
        let topics = &self.subscriptions.topics;
        let primary = bytes_of(
            &self.serde.keys,
            &topics.primary_key,
            headers,
            &subscription.primary_key,
        )?;
        let key = wire::combined_key(&foreign, &primary);
        if subscription.instruction.deletes() {
            store.delete(&key)?;
        } else {
            let mut bytes = Vec::new();
            let mut scratch = headers.clone();
            self.serde
                .serialize(&topics.subscription, &mut scratch, subscription, &mut bytes)
                .map_err(|e| format!("a foreign-key join cannot store a subscription: {e}"))?;
            store.put(&key, &ValueAndTimestamp::make(bytes, record.timestamp))?;
        }
        ctx.forward(record)
    }
}

/// Answers each subscription that asks for it with the foreign row, looked up in the
/// foreign table (Kafka Streams' `SubscriptionJoinProcessorSupplier`). An answer is as new
/// as the newer of the subscription and the foreign row.
pub(crate) struct SubscriptionJoin<K, KO, VO> {
    pub(crate) supplier: ValueGetterSupplier<KO, VO>,
    pub(crate) getter: Option<Box<dyn ValueGetter<KO, VO>>>,
    pub(crate) _keys: std::marker::PhantomData<fn() -> K>,
}

impl<K, KO, VO> Processor<KO, Subscription<K>, K, Response<VO>> for SubscriptionJoin<K, KO, VO>
where
    K: Clone + 'static,
    KO: 'static,
    VO: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Response<VO>>) -> Result<(), ProcessError> {
        self.getter = Some(self.supplier.open(ctx)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<KO, Subscription<K>>,
        ctx: &mut ProcessorContext<K, Response<VO>>,
    ) -> Result<(), ProcessError> {
        let Some(getter) = &self.getter else {
            return Err("the join runs before it was initialized".into());
        };
        let Record {
            key,
            value: Some(subscription),
            timestamp,
            headers,
        } = record
        else {
            return Ok(());
        };
        let found = match &key {
            Some(foreign_key) => getter.get(foreign_key)?,
            None => None,
        };
        let timestamp = found
            .as_ref()
            .map_or(timestamp, |f| timestamp.max(f.timestamp));
        let value = match (subscription.instruction, found) {
            (Instruction::DeleteKeyNoPropagate, _)
            | (Instruction::PropagateOnlyIfFkValAvailable, None) => return Ok(()),
            (Instruction::DeleteKeyAndPropagate, _) => None,
            (_, found) => found.map(|f| f.value),
        };
        let response = Response {
            hash: subscription.hash,
            value,
            primary_partition: Some(subscription.primary_partition),
        };
        ctx.forward(Record::from_parts(
            Some(subscription.primary_key),
            Some(response),
            timestamp,
            headers,
        ))
    }
}

/// Answers every subscriber of a foreign row that changes with its new value (Kafka
/// Streams' `ForeignTableJoinProcessorSupplier`), in the order of their primary keys'
/// bytes, stamped with the change's timestamp.
pub(crate) struct ForeignTableJoin<K, KO> {
    pub(crate) subscriptions: Subscriptions<KO>,
    pub(crate) primary_keys: SharedSerde<K>,
}

impl<K, KO, VO> Processor<KO, Change<VO>, K, Response<VO>> for ForeignTableJoin<K, KO>
where
    K: Clone + 'static,
    KO: 'static,
    VO: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Response<VO>>) -> Result<(), ProcessError> {
        self.subscriptions.open(ctx)
    }

    fn process(
        &mut self,
        record: Record<KO, Change<VO>>,
        ctx: &mut ProcessorContext<K, Response<VO>>,
    ) -> Result<(), ProcessError> {
        let Some(foreign_key) = &record.key else {
            ctx.drop_record("a foreign-key join's foreign row needs a key");
            return Ok(());
        };
        let headers = &record.headers;
        let (store, foreign) = self.subscriptions.with_key(foreign_key, headers)?;
        let (name, topics) = (&self.subscriptions.store_name, &self.subscriptions.topics);
        let prefix = wire::prefix(&foreign);
        let mut subscribers = Vec::new();
        for entry in store.range(&prefix, &wire::increment(&prefix))? {
            let (key, stored) = entry?;
            let Some(primary) = key.strip_prefix(prefix.as_slice()) else {
                continue;
            };
            let (hash, partition) = wire::hash_and_partition(&stored.value)
                .map_err(|e| format!("store {name}: {e}"))?;
            let primary_key = self
                .primary_keys
                .deserialize(&topics.primary_key, headers, primary)
                .map_err(|e| format!("store {name}: a primary key: {e}"))?;
            subscribers.push((primary_key, hash, partition));
        }
        let new = record.value.and_then(|change| change.new);
        for (primary_key, hash, partition) in subscribers {
            let response = Response {
                hash,
                value: new.clone(),
                primary_partition: Some(partition),
            };
            ctx.forward(Record::from_parts(
                Some(primary_key),
                Some(response),
                record.timestamp,
                record.headers.clone(),
            ))?;
        }
        Ok(())
    }
}

/// Joins each response with the row's current value, unless the row changed since its
/// subscription (the hashes differ: the response is stale, and dropped), as Kafka Streams'
/// `ResponseJoinProcessorSupplier`.
pub(crate) struct ResponseJoin<K, V, VO, VR> {
    pub(crate) supplier: ValueGetterSupplier<K, V>,
    pub(crate) getter: Option<Box<dyn ValueGetter<K, V>>>,
    pub(crate) values: SharedSerde<V>,
    pub(crate) joiner: FkJoiner<V, VO, VR>,
    pub(crate) topic: Arc<str>,
    pub(crate) topics: PseudoTopics,
}

impl<K, V, VO, VR> Processor<K, Response<VO>, K, VR> for ResponseJoin<K, V, VO, VR>
where
    K: Clone + 'static,
    V: 'static,
    VO: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> Result<(), ProcessError> {
        self.topics = PseudoTopics::new(&self.topic, ctx);
        self.getter = Some(self.supplier.open(ctx)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, Response<VO>>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let Some(getter) = &self.getter else {
            return Err("the join runs before it was initialized".into());
        };
        let Record {
            key: Some(key),
            value: Some(response),
            timestamp,
            headers,
        } = record
        else {
            ctx.drop_record("a foreign-key join response needs a key and a value");
            return Ok(());
        };
        let current = getter.get(&key)?;
        let hash = match &current {
            Some(row) => Some(value_hash(
                &self.values,
                &self.topics,
                &headers,
                &row.value,
            )?),
            None => None,
        };
        if hash != response.hash {
            ctx.drop_record_quietly("the row changed since it subscribed: a stale response");
            return Ok(());
        }
        let joined = match &current {
            Some(row) => (self.joiner)(&row.value, response.value.as_ref()),
            None => None,
        };
        ctx.forward(Record::from_parts(Some(key), joined, timestamp, headers))
    }
}

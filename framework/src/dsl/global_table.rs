//! Global tables: `StreamsBuilder::global_table`, a table every instance keeps whole, fed
//! from all partitions of its topic (Kafka Streams' `GlobalKTable`), and the stream joins
//! that read it by a key chosen from each record, `KStream::join_global` and
//! `left_join_global`: no co-partitioning, no repartition.
//!
//! The table's source and processor form a sub-topology of their own that makes no
//! tasks: the instance restores the store from the topic itself before its stream threads
//! start, then keeps it current (`runtime::global`); the test driver writes each record
//! piped to the topic at once.

use std::sync::Arc;

use super::{KStream, Materialized, StreamsBuilder};
use crate::header::Headers;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::{DefaultSerde, SharedSerde};
use crate::state::{SharedBytesStore, timestamped};
use crate::topology::graph::{GlobalCheck, GlobalTableDef, NodeKind, RecordType};
use crate::topology::task_builder::source_build;

/// A table every instance keeps whole (Kafka Streams' `GlobalKTable`), made by
/// [`StreamsBuilder::global_table`]; streams join it with
/// [`KStream::join_global`] and [`KStream::left_join_global`].
pub struct GlobalKTable<K, V> {
    store: Arc<str>,
    topic: Arc<str>,
    keys: SharedSerde<K>,
    values: SharedSerde<V>,
}

impl<K, V> Clone for GlobalKTable<K, V> {
    fn clone(&self) -> Self {
        Self {
            store: self.store.clone(),
            topic: self.topic.clone(),
            keys: self.keys.clone(),
            values: self.values.clone(),
        }
    }
}

impl<K, V> std::fmt::Debug for GlobalKTable<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GlobalKTable")
            .field("topic", &self.topic)
            .field("store", &self.store)
            .finish_non_exhaustive()
    }
}

impl<K, V> GlobalKTable<K, V> {
    /// The name of its store, to query.
    pub fn queryable_store_name(&self) -> &str {
        &self.store
    }
}

impl StreamsBuilder {
    /// The table of `topic` kept whole by every instance, in the store `materialized`
    /// describes (named `<topic>-STATE-STORE-<n>` unless named; never logged: the topic is
    /// its changelog). An instance restores it from the topic before it processes a
    /// record, then keeps it current; a record without a key is dropped, one without a
    /// value deletes its key.
    ///
    /// ```
    /// use homa::prelude::*;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let products: GlobalKTable<String, String> =
    ///     builder.global_table("products", Materialized::as_("products"));
    /// // An order is "<product id>:<quantity>".
    /// builder
    ///     .stream::<String, String>("orders")
    ///     .join_global(
    ///         &products,
    ///         |_key, order: &String| order.split_once(':').map(|(p, _)| p.to_string()),
    ///         |order, product| format!("{order} of {product}"),
    ///     )
    ///     .to("orders-with-products");
    /// ```
    pub fn global_table<K, V>(
        &mut self,
        topic: &str,
        materialized: Materialized<K, V>,
    ) -> GlobalKTable<K, V>
    where
        K: DefaultSerde + Clone,
        V: DefaultSerde + Clone,
    {
        let mut dsl = self.state.borrow_mut();
        // As Kafka Streams: the store's name (when generated), the source's, the table's.
        let store_name = match materialized.name() {
            Some(name) => name.to_string(),
            None => dsl.name(&format!("{topic}-STATE-STORE")),
        };
        let (source_name, processor_name) = (dsl.name("KSTREAM-SOURCE"), dsl.name("KTABLE-SOURCE"));
        let (keys, values) = (materialized.key_serde(), materialized.value_serde());
        let store = materialized
            .into_store(store_name)
            .logging(false)
            .caching(false)
            .into_def();
        let check: GlobalCheck = {
            let (keys, values) = (keys.clone(), values.clone());
            Arc::new(move |topic, key, value, headers| {
                keys.deserialize(topic, headers, key)?;
                if let Some(value) = value {
                    values.deserialize(topic, headers, value)?;
                }
                Ok(())
            })
        };
        let added = (|| {
            let source = dsl.graph.add(
                &source_name,
                NodeKind::Source {
                    topics: vec![topic.to_string()],
                },
                &[],
                None,
                Some(RecordType::of::<K, V>()),
                source_build(keys.clone(), values.clone(), None),
            )?;
            // Never made into a task: the instance writes the store (`runtime::global`).
            let processor = dsl.add_processor::<_, K, V, K, V>(
                &processor_name,
                &[source],
                || GlobalSource,
                Some(store.clone()),
            )?;
            Ok::<_, crate::topology::TopologyError>([source, processor])
        })();
        match added {
            Ok(nodes) => dsl.graph.add_global(GlobalTableDef {
                topic: topic.to_string(),
                store: store.clone(),
                nodes,
                check,
            }),
            Err(e) => dsl.errors.push(e),
        }
        GlobalKTable {
            store: store.name.clone(),
            topic: Arc::from(topic),
            keys,
            values,
        }
    }
}

/// The processor a global table's description shows; the instance keeps the store itself.
struct GlobalSource;

impl<K: 'static, V: 'static> Processor<K, V, K, V> for GlobalSource {
    fn process(
        &mut self,
        _: Record<K, V>,
        _: &mut ProcessorContext<K, V>,
    ) -> Result<(), ProcessError> {
        Err("a global table's records are written by its instance, not by a task".into())
    }
}

/// Joins a stream record with a global table's row, `None` when it has none: the result,
/// or none to drop the record (an inner join's without a row).
type GlobalJoiner<V, VG, VR> = Arc<dyn Fn(&V, Option<&VG>) -> Option<VR> + Send + Sync>;

/// The key of the global table's row a stream record joins, none for no row.
type KeySelector<K, V, KG> = Arc<dyn Fn(Option<&K>, &V) -> Option<KG> + Send + Sync>;

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Each record joined with the row of `table` that `key_selector(key, value)` names,
    /// `joiner(value, row)`; a record without a value, without a row key or whose row the
    /// table does not have is dropped. The stream keeps its keys: no repartition, whatever
    /// the partitions.
    pub fn join_global<KG, VG, VR, R>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(Option<&K>, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, &VG) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        KG: 'static,
        VG: 'static,
        VR: Clone + 'static,
        R: Into<Option<KG>>,
    {
        let joiner: GlobalJoiner<V, VG, VR> =
            Arc::new(move |value, row| row.map(|row| joiner(value, row)));
        let selector: KeySelector<K, V, KG> = Arc::new(move |k, v| key_selector(k, v).into());
        self.global_join(table, selector, joiner, false)
    }

    /// Each record joined with the row of `table` that `key_selector(key, value)` names,
    /// `joiner(value, row)` (`None`: no row, or no row key); a record without a value is
    /// dropped.
    pub fn left_join_global<KG, VG, VR, R>(
        &self,
        table: &GlobalKTable<KG, VG>,
        key_selector: impl Fn(Option<&K>, &V) -> R + Send + Sync + 'static,
        joiner: impl Fn(&V, Option<&VG>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        KG: 'static,
        VG: 'static,
        VR: Clone + 'static,
        R: Into<Option<KG>>,
    {
        let joiner: GlobalJoiner<V, VG, VR> = Arc::new(move |value, row| Some(joiner(value, row)));
        let selector: KeySelector<K, V, KG> = Arc::new(move |k, v| key_selector(k, v).into());
        self.global_join(table, selector, joiner, true)
    }

    /// The join's processor, `KSTREAM-LEFTJOIN-<n>` for both kinds (as Kafka Streams names
    /// it); it reads the global store, to which it is not connected.
    fn global_join<KG, VG, VR>(
        &self,
        table: &GlobalKTable<KG, VG>,
        selector: KeySelector<K, V, KG>,
        joiner: GlobalJoiner<V, VG, VR>,
        left: bool,
    ) -> KStream<K, VR>
    where
        KG: 'static,
        VG: 'static,
        VR: Clone + 'static,
    {
        let table = table.clone();
        self.then("KSTREAM-LEFTJOIN", move || GlobalJoin {
            table: table.clone(),
            store: None,
            selector: selector.clone(),
            joiner: joiner.clone(),
            left,
        })
    }
}

/// Joins each record with the global table's row its key selector names (Kafka Streams'
/// `KStreamKTableJoinProcessor` over a global store).
struct GlobalJoin<K, V, KG, VG, VR> {
    table: GlobalKTable<KG, VG>,
    store: Option<SharedBytesStore>,
    selector: KeySelector<K, V, KG>,
    joiner: GlobalJoiner<V, VG, VR>,
    left: bool,
}

impl<K, V, KG, VG, VR> GlobalJoin<K, V, KG, VG, VR>
where
    KG: 'static,
    VG: 'static,
{
    /// The table's row of `key`, if any.
    fn row(&self, key: &KG, headers: &Headers) -> Result<Option<VG>, ProcessError> {
        let Some(store) = &self.store else {
            return Err(format!("global store {} is not open", self.table.store).into());
        };
        let (topic, mut scratch) = (&*self.table.topic, headers.clone());
        let mut bytes = Vec::new();
        (self.table.keys)
            .serialize(topic, &mut scratch, key, &mut bytes)
            .map_err(|e| format!("global table {}: a row key: {e}", self.table.store))?;
        let Some(stored) = store.get(&bytes)? else {
            return Ok(None);
        };
        let (_, value) = timestamped::split(&stored).ok_or_else(|| {
            format!(
                "global store {}: a value without its timestamp",
                self.table.store
            )
        })?;
        let row = (self.table.values)
            .deserialize(topic, headers, value)
            .map_err(|e| format!("global store {}: a row: {e}", self.table.store))?;
        Ok(Some(row))
    }
}

impl<K, V, KG, VG, VR> Processor<K, V, K, VR> for GlobalJoin<K, V, KG, VG, VR>
where
    K: Clone + 'static,
    V: 'static,
    KG: 'static,
    VG: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> Result<(), ProcessError> {
        self.store = Some(ctx.global_store(&self.table.store)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let Record {
            key,
            value: Some(value),
            timestamp,
            headers,
        } = record
        else {
            ctx.drop_record("a join with a global table needs a value");
            return Ok(());
        };
        let row = match (self.selector)(key.as_ref(), &value) {
            Some(row_key) => self.row(&row_key, &headers)?,
            // A left join's record without a row key joins no row (KIP-962).
            None if self.left => None,
            None => {
                ctx.drop_record("a join with a global table needs a row key; the record has none");
                return Ok(());
            }
        };
        match (self.joiner)(&value, row.as_ref()) {
            Some(joined) => ctx.forward(Record::from_parts(key, Some(joined), timestamp, headers)),
            None => Ok(()),
        }
    }
}

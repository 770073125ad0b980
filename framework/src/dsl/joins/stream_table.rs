//! `join_table` and `left_join_table`: each record of a stream with a table's current value
//! of its key, as Kafka Streams' `KStreamKTableJoin`. The table's updates join nothing; the
//! stream's records look the table up through its value getter (through the table's cache),
//! so the table must be partitioned as the stream (the task idles on an empty partition for
//! `max.task.idle.ms` so that the table is read up to the stream record's time).

use std::fmt;
use std::sync::Arc;

use crate::dsl::KStream;
use crate::dsl::Repartitioned;
use crate::dsl::ktable::{KTable, ValueGetter, ValueGetterSupplier};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::{DefaultSerde, Serde, SharedSerde};

/// Options of a stream-table join (Kafka Streams' `Joined`): the name of its node (and of
/// the repartition topic of a stream whose keys changed) and the serdes of that topic.
pub struct Joined<K, V, VT> {
    name: Option<String>,
    key_serde: Option<SharedSerde<K>>,
    value_serde: Option<SharedSerde<V>>,
    _table: std::marker::PhantomData<fn() -> VT>,
}

impl<K, V, VT> Default for Joined<K, V, VT> {
    fn default() -> Self {
        Self {
            name: None,
            key_serde: None,
            value_serde: None,
            _table: std::marker::PhantomData,
        }
    }
}

impl<K, V, VT> fmt::Debug for Joined<K, V, VT> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Joined")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

impl<K: 'static, V: 'static, VT: 'static> Joined<K, V, VT> {
    /// Options naming the join's node `name` (and its repartition topic
    /// `<name>-repartition`, when the stream needs one).
    pub fn as_(name: &str) -> Self {
        Self {
            name: Some(name.to_string()),
            ..Self::default()
        }
    }

    /// Sets the key serde of the repartition topic (default: the key type's).
    #[must_use]
    pub fn with_key_serde(mut self, serde: impl Serde<K>) -> Self {
        self.key_serde = Some(Arc::new(serde));
        self
    }

    /// Sets the serde of the stream's values on the repartition topic (default: the
    /// value type's).
    #[must_use]
    pub fn with_value_serde(mut self, serde: impl Serde<V>) -> Self {
        self.value_serde = Some(Arc::new(serde));
        self
    }
}

impl<K, V> KStream<K, V>
where
    K: DefaultSerde + Clone,
    V: DefaultSerde + Clone,
{
    /// Each record of this stream whose key the table `table` has, with the table's
    /// current value: `joiner(value, table value)`, with the record's key, timestamp and
    /// headers. Updates of the table emit nothing. Records without a key or a value are
    /// dropped (counted and logged). After a key change the stream first goes through a
    /// repartition topic.
    ///
    /// ```
    /// use homa::prelude::*;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let customers: KTable<String, String> = builder.table("customers", Materialized::as_("customers"));
    /// let orders = builder.stream::<String, String>("orders");
    /// orders.join_table(&customers, |o, c| format!("{o}/{c}")).to("enriched");
    /// ```
    pub fn join_table<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.join_table_with(table, joiner, Joined::default())
    }

    /// [`join_table`](Self::join_table) with the options of `joined`.
    pub fn join_table_with<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, &VT) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        let joiner: TableJoiner<V, VT, VR> =
            Arc::new(move |value, found| found.map(|found| joiner(value, found)));
        self.table_join(table, joiner, joined, false)
    }

    /// [`join_table`](Self::join_table), and each record whose key the table lacks too:
    /// `joiner(value, None)`. A record without a key but with a value joins `None`.
    pub fn left_join_table<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        self.left_join_table_with(table, joiner, Joined::default())
    }

    /// [`left_join_table`](Self::left_join_table) with the options of `joined`.
    pub fn left_join_table_with<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: impl Fn(&V, Option<&VT>) -> VR + Send + Sync + 'static,
        joined: Joined<K, V, VT>,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        let joiner: TableJoiner<V, VT, VR> =
            Arc::new(move |value, found| Some(joiner(value, found)));
        self.table_join(table, joiner, joined, true)
    }

    /// The join's node, `KSTREAM-JOIN-<n>` or `KSTREAM-LEFTJOIN-<n>` as Kafka Streams names
    /// it, connected to the stores the table is read from.
    fn table_join<VT, VR>(
        &self,
        table: &KTable<K, VT>,
        joiner: TableJoiner<V, VT, VR>,
        joined: Joined<K, V, VT>,
        left: bool,
    ) -> KStream<K, VR>
    where
        VT: Clone + 'static,
        VR: Clone + 'static,
    {
        let input = if self.repartition_required() {
            let name = joined.name.clone().unwrap_or_else(|| {
                let state = self.state().borrow();
                state.graph.node(self.node()).name.to_string()
            });
            let serdes = (
                joined.key_serde.clone().unwrap_or_else(K::default_serde),
                joined.value_serde.clone().unwrap_or_else(V::default_serde),
            );
            self.repartition_with_serdes(Repartitioned::as_(&name), serdes)
        } else {
            self.clone()
        };
        let getter = table.value_getter();
        let state = self.state().clone();
        let mut state = state.borrow_mut();
        let generated = state.name(match left {
            true => "KSTREAM-LEFTJOIN",
            false => "KSTREAM-JOIN",
        });
        let name = joined.name.unwrap_or(generated);
        let stores = getter.stores.clone();
        let added = state.add_processor(
            &name,
            &[input.node()],
            move || StreamTableJoin {
                supplier: getter.clone(),
                getter: None,
                joiner: joiner.clone(),
                left,
            },
            None,
        );
        let node = state.or_report(added, input.node());
        for store in &stores {
            state.graph.connect_store(store, node);
        }
        KStream::new(self.state().clone(), node)
    }
}

/// What a stream-table join makes of a record's value and the table's (`None`: the table
/// has no row), none when the record goes nowhere.
type TableJoiner<V, VT, VR> = Arc<dyn Fn(&V, Option<&VT>) -> Option<VR> + Send + Sync>;

/// Joins each record with the table's current value of its key (Kafka Streams'
/// `KStreamKTableJoinProcessor`).
struct StreamTableJoin<K, V, VT, VR> {
    supplier: ValueGetterSupplier<K, VT>,
    getter: Option<Box<dyn ValueGetter<K, VT>>>,
    joiner: TableJoiner<V, VT, VR>,
    left: bool,
}

impl<K, V, VT, VR> Processor<K, V, K, VR> for StreamTableJoin<K, V, VT, VR>
where
    K: Clone + 'static,
    V: 'static,
    VT: 'static,
    VR: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, VR>) -> Result<(), ProcessError> {
        self.getter = Some(self.supplier.open(ctx)?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, VR>,
    ) -> Result<(), ProcessError> {
        let Some(value) = &record.value else {
            ctx.drop_record("a stream-table join needs a value");
            return Ok(());
        };
        let found = match (&record.key, &self.getter) {
            (Some(key), Some(getter)) => getter.get(key)?.map(|found| found.value),
            (None, _) if self.left => None,
            (None, _) => {
                ctx.drop_record("an inner stream-table join needs a key");
                return Ok(());
            }
            (Some(_), None) => return Err("the join runs before it was initialized".into()),
        };
        match (self.joiner)(value, found.as_ref()) {
            Some(out) => ctx.forward(record.with_value(Some(out))),
            None => Ok(()),
        }
    }
}

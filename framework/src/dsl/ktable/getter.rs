//! Value getters: how a processor of a task reads a table's current value of a key (Kafka
//! Streams' `KTableValueGetter`), for the joins with tables. A table kept in a store reads
//! the store (through its cache); a table made by `filter` or `map_values` reads its parent's
//! and applies its operator; a source table kept in no store gets one when a getter is asked
//! for.

use std::sync::Arc;

use crate::processor::{OpenStore, ProcessError};
use crate::state::{
    Buffered, KeyValueStore, SessionStore, StoreError, TimeOrderedBuffer, TimestampedKeyValueStore,
    TimestampedWindowStore, ValueAndTimestamp, Windowed,
};

/// Reads the current value of a key of a table, with its timestamp.
pub(crate) trait ValueGetter<K, V> {
    fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<V>>, ProcessError>;
}

/// Finds an open store of the task by name (the store must be connected to the processor).
pub(crate) type StoreLookup<'a> = &'a dyn Fn(&str) -> Result<OpenStore, StoreError>;

/// Makes a table's getter in a task.
pub(crate) type MakeGetter<K, V> =
    Arc<dyn Fn(StoreLookup<'_>) -> Result<Box<dyn ValueGetter<K, V>>, StoreError> + Send + Sync>;

/// How a derived table's value of a key follows from its parent's (`None`: no row).
pub(crate) type Derive<K, V, VR> = Arc<dyn Fn(&K, V) -> Option<VR> + Send + Sync>;

/// What a processor needs to read a table: the stores to be connected to, and how to make
/// the getter in each task (Kafka Streams' `KTableValueGetterSupplier`).
pub(crate) struct ValueGetterSupplier<K, V> {
    pub(crate) stores: Vec<Arc<str>>,
    pub(crate) make: MakeGetter<K, V>,
}

impl<K, V> Clone for ValueGetterSupplier<K, V> {
    fn clone(&self) -> Self {
        Self {
            stores: self.stores.clone(),
            make: self.make.clone(),
        }
    }
}

impl<K: 'static, V: 'static> ValueGetterSupplier<K, V> {
    /// The getter in the task of `ctx`, whose processor is connected to the stores.
    pub(crate) fn open<KC, VC>(
        &self,
        ctx: &crate::processor::ProcessorContext<KC, VC>,
    ) -> Result<Box<dyn ValueGetter<K, V>>, StoreError> {
        (self.make)(&|name| ctx.connected(name))
    }

    /// The getter of a table kept in store `name`.
    pub(crate) fn store(name: Arc<str>) -> Self {
        let store = name.clone();
        Self {
            stores: vec![name],
            make: Arc::new(move |lookup: StoreLookup<'_>| {
                let open = lookup(&store)?;
                let store: TimestampedKeyValueStore<K, V> = open.timestamped()?;
                Ok(Box::new(StoreGetter(store)) as Box<dyn ValueGetter<K, V>>)
            }),
        }
    }

    /// The getter of a table computed from this one's rows by `derive`, which maps a key's
    /// value (`None` when the row does not pass).
    pub(crate) fn derived<VR: 'static>(
        &self,
        derive: Derive<K, V, VR>,
    ) -> ValueGetterSupplier<K, VR> {
        let parent = self.make.clone();
        ValueGetterSupplier {
            stores: self.stores.clone(),
            make: Arc::new(move |lookup: StoreLookup<'_>| {
                let getter = Derived {
                    parent: parent(lookup)?,
                    derive: derive.clone(),
                };
                Ok(Box::new(getter) as Box<dyn ValueGetter<K, VR>>)
            }),
        }
    }
}

impl<K: 'static, V: 'static> ValueGetterSupplier<K, V> {
    /// The getter of a suppressed table (Kafka Streams' `KTableSuppressProcessorSupplier`
    /// view): a key its buffer `buffer` holds reads as what went downstream last (its
    /// prior value, of unknown timestamp: -1), any other key as the table upstream reads.
    pub(crate) fn suppressed(buffer: Arc<str>, upstream: &ValueGetterSupplier<K, V>) -> Self {
        let parent = upstream.make.clone();
        let mut stores = vec![buffer.clone()];
        stores.extend(upstream.stores.iter().cloned());
        Self {
            stores,
            make: Arc::new(move |lookup: StoreLookup<'_>| {
                let getter = Suppressed {
                    buffer: lookup(&buffer)?.buffer::<K, Buffered<V>>()?,
                    parent: parent(lookup)?,
                };
                Ok(Box::new(getter) as Box<dyn ValueGetter<K, V>>)
            }),
        }
    }
}

/// Reads a suppressed table: its buffer's prior value of a key held, else upstream's.
struct Suppressed<K, V> {
    buffer: KeyValueStore<K, Buffered<V>>,
    parent: Box<dyn ValueGetter<K, V>>,
}

impl<K: 'static, V: 'static> ValueGetter<K, V> for Suppressed<K, V> {
    fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<V>>, ProcessError> {
        match TimeOrderedBuffer::prior(&self.buffer, key)? {
            Some(prior) => Ok(prior.map(|value| ValueAndTimestamp::make(value, -1))),
            None => self.parent.get(key),
        }
    }
}

impl<K: 'static, V: 'static> ValueGetterSupplier<Windowed<K>, V> {
    /// The getter of a windowed aggregation's table kept in window store `name` (Kafka
    /// Streams' `KStreamWindowAggregateValueGetter`).
    pub(crate) fn window_store(name: Arc<str>) -> Self {
        let store = name.clone();
        Self {
            stores: vec![name],
            make: Arc::new(move |lookup: StoreLookup<'_>| {
                let store = lookup(&store)?.timestamped_window::<K, V>()?;
                Ok(Box::new(WindowGetter(store)) as Box<dyn ValueGetter<Windowed<K>, V>>)
            }),
        }
    }

    /// The getter of a session aggregation's table kept in session store `name`: a
    /// session's value, stamped with its end (Kafka Streams' `KTableSessionWindowValueGetter`).
    pub(crate) fn session_store(name: Arc<str>) -> Self {
        let store = name.clone();
        Self {
            stores: vec![name],
            make: Arc::new(move |lookup: StoreLookup<'_>| {
                let store = lookup(&store)?.session::<K, V>()?;
                Ok(Box::new(SessionGetter(store)) as Box<dyn ValueGetter<Windowed<K>, V>>)
            }),
        }
    }
}

/// Reads a windowed aggregation's window store.
struct WindowGetter<K, V>(TimestampedWindowStore<K, V>);

impl<K: 'static, V: 'static> ValueGetter<Windowed<K>, V> for WindowGetter<K, V> {
    fn get(&self, key: &Windowed<K>) -> Result<Option<ValueAndTimestamp<V>>, ProcessError> {
        Ok(self.0.get(key.key(), key.window().start())?)
    }
}

/// Reads a session aggregation's session store.
struct SessionGetter<K, V>(SessionStore<K, V>);

impl<K: 'static, V: 'static> ValueGetter<Windowed<K>, V> for SessionGetter<K, V> {
    fn get(&self, key: &Windowed<K>) -> Result<Option<ValueAndTimestamp<V>>, ProcessError> {
        let window = key.window();
        let value = self
            .0
            .fetch_session(key.key(), window.start(), window.end())?;
        Ok(value.map(|v| ValueAndTimestamp::make(v, window.end())))
    }
}

/// Reads a table's store.
struct StoreGetter<K, V>(TimestampedKeyValueStore<K, V>);

impl<K: 'static, V: 'static> ValueGetter<K, V> for StoreGetter<K, V> {
    fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<V>>, ProcessError> {
        Ok(self.0.get(key)?)
    }
}

/// Reads the parent table's value and derives this table's from it, keeping its timestamp.
struct Derived<K, V, VR> {
    parent: Box<dyn ValueGetter<K, V>>,
    derive: Derive<K, V, VR>,
}

impl<K, V, VR> ValueGetter<K, VR> for Derived<K, V, VR> {
    fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<VR>>, ProcessError> {
        Ok(self.parent.get(key)?.and_then(|v| {
            (self.derive)(key, v.value).map(|value| ValueAndTimestamp::make(value, v.timestamp))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::StreamsConfig;
    use crate::dsl::{Materialized, StreamsBuilder};
    use crate::processor::{Processor, ProcessorContext, Record};
    use crate::testing::TopologyTestDriver;

    /// For each order, the current price of its item in the table read, `none` when the
    /// table has none: a lookup as a stream-table join makes one.
    struct Lookup {
        supplier: ValueGetterSupplier<String, String>,
        getter: Option<Box<dyn ValueGetter<String, String>>>,
    }

    impl Processor<String, String, String, String> for Lookup {
        fn init(&mut self, ctx: &mut ProcessorContext<String, String>) -> Result<(), ProcessError> {
            self.getter = Some(self.supplier.open(ctx)?);
            Ok(())
        }

        fn process(
            &mut self,
            record: Record<String, String>,
            ctx: &mut ProcessorContext<String, String>,
        ) -> Result<(), ProcessError> {
            let getter = self.getter.as_ref().ok_or("not initialised")?;
            let key = record.key.clone().ok_or("no key")?;
            let found = getter.get(&key)?.map_or("none".to_string(), |v| {
                format!("{}@{}", v.value, v.timestamp)
            });
            ctx.forward(record.with_value(Some(found)))
        }
    }

    #[test]
    fn a_filtered_table_of_an_unmaterialized_source_reads_its_current_values() {
        let mut builder = StreamsBuilder::new();
        let prices = builder
            .table::<String, String>("prices", Materialized::default())
            .filter(|_, price| price != "0")
            .map_values(|price| format!("${price}"));
        let supplier = prices.value_getter();
        assert_eq!(supplier.stores.len(), 1, "the source got a store");
        let driver = lookups(&mut builder, &supplier);
        let prices = driver.create_input_topic::<String, String>("prices");
        let orders = driver.create_input_topic::<String, String>("orders");
        let found = driver.create_output_topic::<String, String>("found");
        prices.pipe_input_with_timestamp("a".into(), "5".into(), 10);
        prices.pipe_input_with_timestamp("b".into(), "0".into(), 11);
        for item in ["a", "b", "c"] {
            orders.pipe_input_with_timestamp(item.into(), "order".into(), 20);
        }
        prices.pipe_record(Record::from_parts(
            Some("a".into()),
            None,
            30,
            Default::default(),
        ));
        orders.pipe_input_with_timestamp("a".into(), "order".into(), 40);
        assert_eq!(
            found.read_key_values_to_list(),
            [
                ("a".to_string(), "$5@10".to_string()),
                ("b".to_string(), "none".to_string()),
                ("c".to_string(), "none".to_string()),
                ("a".to_string(), "none".to_string()),
            ]
        );
    }

    /// A driver of `builder` with a lookup of each `orders` record in the table `supplier`
    /// reads, to `found`.
    fn lookups(
        builder: &mut StreamsBuilder,
        supplier: &ValueGetterSupplier<String, String>,
    ) -> TopologyTestDriver {
        let orders = builder.stream::<String, String>("orders");
        {
            let state = builder_state(builder);
            let mut state = state.borrow_mut();
            let for_lookup = supplier.clone();
            let lookup = state
                .add_processor(
                    "lookup",
                    &[orders.node()],
                    move || Lookup {
                        supplier: for_lookup.clone(),
                        getter: None,
                    },
                    None,
                )
                .unwrap();
            for store in &supplier.stores {
                state.graph.connect_store(store, lookup);
            }
            let sink = crate::dsl::Produced::<String, String>::default();
            state
                .add_sink(
                    "out",
                    crate::dsl::builder::SinkTopicName::Fixed("found".into()),
                    &[lookup],
                    &sink,
                )
                .unwrap();
        }
        let topology = builder.build().unwrap();
        let config = StreamsConfig::builder()
            .application_id("getter")
            .build()
            .unwrap();
        TopologyTestDriver::with_wall_clock(&topology, config, 0).unwrap()
    }

    #[test]
    fn a_suppressed_table_reads_what_went_downstream_while_a_key_is_held() {
        let mut builder = StreamsBuilder::new();
        let prices = builder
            .table::<String, String>("prices", Materialized::as_("prices"))
            .suppress(crate::dsl::Suppressed::until_time_limit(
                std::time::Duration::from_secs(10),
                crate::dsl::BufferConfig::unbounded(),
            ));
        let supplier = prices.value_getter();
        let driver = lookups(&mut builder, &supplier);
        let prices = driver.create_input_topic::<String, String>("prices");
        let orders = driver.create_input_topic::<String, String>("orders");
        let found = driver.create_output_topic::<String, String>("found");
        let order = |at| orders.pipe_input_with_timestamp("a".into(), "order".into(), at);
        // Held, nothing went downstream yet: no value.
        prices.pipe_input_with_timestamp("a".into(), "1".into(), 0);
        order(1);
        // Emitted at 10 s: the table's value.
        prices.pipe_input_with_timestamp("b".into(), "9".into(), 10_000);
        order(10_001);
        // Held again (2, then 3): what went downstream last, of unknown time.
        prices.pipe_input_with_timestamp("a".into(), "2".into(), 10_002);
        prices.pipe_input_with_timestamp("a".into(), "3".into(), 10_003);
        order(10_004);
        assert_eq!(
            found.read_values_to_list(),
            ["none", "1@0", "1@-1"].map(String::from)
        );
    }

    fn builder_state(
        builder: &StreamsBuilder,
    ) -> std::rc::Rc<std::cell::RefCell<crate::dsl::builder::DslState>> {
        builder.state().clone()
    }
}

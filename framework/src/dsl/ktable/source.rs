//! A table made of records keyed as they are: `StreamsBuilder::table` (a topic) and
//! `KStream::to_table` (a stream). Each record is the latest value of its key; a tombstone
//! deletes it.
//!
//! As Kafka Streams: named by its `Materialized`, the table is kept in that store (and can
//! be queried); unnamed, it is kept in no store until an operator needs one, and forwards
//! each record as a change without an old value.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::{Change, KTable, ValueGetterSupplier};
use crate::dsl::table_store::TableStore;
use crate::dsl::{KStream, Materialized};
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::DefaultSerde;

/// The table of `input`'s records, kept by a processor named `prefix-<n>` in the store
/// `materialized` describes, named `store_name` when it names none.
pub(crate) fn table<K, V>(
    input: &KStream<K, V>,
    prefix: &str,
    store_name: String,
    materialized: Materialized<K, V>,
) -> KTable<K, V>
where
    K: DefaultSerde + Clone,
    V: DefaultSerde + Clone,
{
    let name = input.state().borrow_mut().name(prefix);
    table_named(input, name, store_name, materialized)
}

/// [`table`], kept by the processor `name`.
pub(crate) fn table_named<K, V>(
    input: &KStream<K, V>,
    name: String,
    store_name: String,
    materialized: Materialized<K, V>,
) -> KTable<K, V>
where
    K: DefaultSerde + Clone,
    V: DefaultSerde + Clone,
{
    let named = materialized.name().is_some();
    let store = materialized.into_store(store_name);
    let store_name: Arc<str> = store.name().into();
    let state = input.state().clone();
    let mut dsl = state.borrow_mut();
    let materialized = Arc::new(AtomicBool::new(named));
    let sends_old = Arc::new(AtomicBool::new(false));
    let (flag, old_flag, processor_store) =
        (materialized.clone(), sends_old.clone(), store_name.clone());
    let factory = move || TableSource::<K, V> {
        store: flag
            .load(Ordering::Relaxed)
            .then(|| TableStore::new(processor_store.clone(), old_flag.load(Ordering::Relaxed))),
    };
    // An unnamed store waits in the table's root until an operator downstream needs it.
    let (connected, pending) = if named {
        (Some(store.into_def()), None)
    } else {
        (None, Some(store.into_def()))
    };
    let added = dsl.add_processor(&name, &[input.node()], factory, connected);
    let node = dsl.or_report(added, input.node());
    let root = dsl.add_table_root(&name, pending, materialized, sends_old);
    drop(dsl);
    KTable {
        state,
        node,
        store: named.then_some(store_name.clone()),
        root,
        getter: ValueGetterSupplier::store(store_name),
        windowing: None,
        _records: PhantomData,
    }
}

/// Puts each record into the table's store, when it has one, and forwards the change.
pub(crate) struct TableSource<K, V> {
    store: Option<TableStore<K, V>>,
}

impl<K, V> Processor<K, V, K, Change<V>> for TableSource<K, V>
where
    K: Clone + 'static,
    V: Clone + 'static,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<V>>) -> Result<(), ProcessError> {
        match &mut self.store {
            Some(store) => store.open(ctx),
            None => Ok(()),
        }
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut ProcessorContext<K, Change<V>>,
    ) -> Result<(), ProcessError> {
        let Record {
            key: Some(key),
            value,
            timestamp,
            headers,
        } = record
        else {
            ctx.drop_record("a table row needs a key");
            return Ok(());
        };
        match &self.store {
            Some(store) => store.replace(ctx, key, value, (timestamp, headers)),
            // Kept in no store: nothing tells the old value.
            None => {
                let change = Change {
                    new: value,
                    old: None,
                };
                ctx.forward(Record::from_parts(
                    Some(key),
                    Some(change),
                    timestamp,
                    headers,
                ))
            }
        }
    }
}

//! `KTable::join`, `left_join` and `outer_join`: two tables of one key joined into a table,
//! as Kafka Streams' `KTableKTableJoin`s build it: a `KTABLE-JOINTHIS` processor re-joins
//! each change of this table with the other's current value, a `KTABLE-JOINOTHER` each
//! change of the other with this one's, and a `KTABLE-MERGE` processor makes one table of
//! both (kept in a store when materialized). A result is as new as the newer of its two
//! values.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::window_join::{Joiner, LeftSide, RightSide, Side, inner_joiner, left_joiner};
use crate::dsl::Materialized;
use crate::dsl::ktable::{Change, KTable, ValueGetter, ValueGetterSupplier};
use crate::dsl::table_store::TableStore;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::serde::DefaultSerde;
use crate::state::ValueAndTimestamp;

/// Which rows of the two tables make the joined table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Rows {
    /// Keys both have (`join`).
    Both,
    /// Keys this table has (`left_join`).
    This,
    /// Keys either has (`outer_join`).
    Either,
}

/// How one side's processor joins its changes (Kafka Streams' `KTableKTableInnerJoin`,
/// `LeftJoin`, `RightJoin` and `OuterJoin`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Inner,
    /// The left table's side of a left join.
    Left,
    /// The right table's side of a left join.
    Right,
    Outer,
}

impl<K, V1> KTable<K, V1>
where
    K: DefaultSerde + Clone,
    V1: DefaultSerde + Clone,
{
    /// The keys both tables have, each with `joiner(this value, other value)` (an inner
    /// join): a change of either table is joined with the other's current value, and a
    /// key deleted from either is deleted.
    ///
    /// ```
    /// use homa::prelude::*;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// let names: KTable<String, String> = builder.table("names", Materialized::default());
    /// let emails: KTable<String, String> = builder.table("emails", Materialized::default());
    /// names.join(&emails, |n, e| format!("{n} <{e}>")).to_stream().to("contacts");
    /// ```
    pub fn join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, inner_joiner(joiner), Rows::Both, None)
    }

    /// [`join`](Self::join), kept in the store `materialized` describes.
    pub fn join_with<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V1, &V2) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, inner_joiner(joiner), Rows::Both, Some(materialized))
    }

    /// The keys this table has, each with `joiner(value, other table's value if any)`.
    pub fn left_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, left_joiner(joiner), Rows::This, None)
    }

    /// [`left_join`](Self::left_join), kept in the store `materialized` describes.
    pub fn left_join_with<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(&V1, Option<&V2>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, left_joiner(joiner), Rows::This, Some(materialized))
    }

    /// The keys either table has, each with `joiner(this value, other value)`, either
    /// missing.
    pub fn outer_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync + 'static,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, Arc::new(joiner), Rows::Either, None)
    }

    /// [`outer_join`](Self::outer_join), kept in the store `materialized` describes.
    pub fn outer_join_with<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: impl Fn(Option<&V1>, Option<&V2>) -> VR + Send + Sync + 'static,
        materialized: Materialized<K, VR>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        self.table_join(other, Arc::new(joiner), Rows::Either, Some(materialized))
    }

    /// The join's processors, named as Kafka Streams names them: with a store, its name
    /// (`KTABLE-MERGE-STATE-STORE-<n>` unless named) is drawn first, then the merge's, this
    /// side's and the other's.
    fn table_join<V2, VR>(
        &self,
        other: &KTable<K, V2>,
        joiner: Joiner<V1, V2, VR>,
        rows: Rows,
        materialized: Option<Materialized<K, VR>>,
    ) -> KTable<K, VR>
    where
        V2: Clone + 'static,
        VR: DefaultSerde + Clone,
    {
        // Both tables are read (their roots kept in stores, which know old values).
        let (this_getter, other_getter) = (self.value_getter(), other.value_getter());
        let (this_kind, other_kind) = match rows {
            Rows::Both => (Kind::Inner, Kind::Inner),
            Rows::This => (Kind::Left, Kind::Right),
            Rows::Either => (Kind::Outer, Kind::Outer),
        };
        // Set by an operator downstream that reads old values.
        let sends_old = Arc::new(AtomicBool::new(false));
        let state = self.state().clone();
        let mut dsl = state.borrow_mut();
        let store = materialized.map(|materialized| {
            let name = match materialized.name() {
                Some(name) => name.to_string(),
                None => dsl.name("KTABLE-MERGE-STATE-STORE"),
            };
            materialized.into_store(name)
        });
        let merge = dsl.name("KTABLE-MERGE");
        let join_this = dsl.name("KTABLE-JOINTHIS");
        let join_other = dsl.name("KTABLE-JOINOTHER");
        let store_name: Option<Arc<str>> = store.as_ref().map(|s| s.name().into());
        let added = (|| {
            let (flag, supplier, j) = (sends_old.clone(), other_getter.clone(), joiner.clone());
            let this_node = dsl.add_processor(
                &join_this,
                &[self.node()],
                move || {
                    TableTableJoin::<K, V1, V2, VR, LeftSide>::new(this_kind, &j, &supplier, &flag)
                },
                None,
            )?;
            let (flag, supplier, j) = (sends_old.clone(), this_getter.clone(), joiner.clone());
            let other_node = dsl.add_processor(
                &join_other,
                &[other.node()],
                move || {
                    TableTableJoin::<K, V1, V2, VR, RightSide>::new(
                        other_kind, &j, &supplier, &flag,
                    )
                },
                None,
            )?;
            for store in &other_getter.stores {
                dsl.graph.connect_store(store, this_node);
            }
            for store in &this_getter.stores {
                dsl.graph.connect_store(store, other_node);
            }
            let (flag, name) = (sends_old.clone(), store_name.clone());
            dsl.add_processor(
                &merge,
                &[this_node, other_node],
                move || Merge::<K, VR> {
                    store: name
                        .clone()
                        .map(|name| TableStore::new(name, flag.load(Ordering::Relaxed))),
                    sends_old: flag.load(Ordering::Relaxed),
                },
                store.map(|s| s.into_def()),
            )
        })();
        let node = dsl.or_report(added, self.node());
        drop(dsl);
        let getter = match &store_name {
            Some(name) => ValueGetterSupplier::store(name.clone()),
            None => joined_getter(&this_getter, &other_getter, rows, joiner),
        };
        match store_name {
            Some(name) => KTable::materialized(state, node, name, sends_old, getter),
            None => KTable::computed(state, node, sends_old, getter),
        }
    }
}

/// Joins each change of one table with the other's current value of its key.
struct TableTableJoin<K, V1, V2, VR, S: Side<V1, V2>> {
    kind: Kind,
    joiner: Joiner<V1, V2, VR>,
    supplier: ValueGetterSupplier<K, S::Other>,
    getter: Option<Box<dyn ValueGetter<K, S::Other>>>,
    /// Whether the changes forwarded carry old values (an operator downstream reads them).
    sends_old: bool,
    _side: PhantomData<fn() -> S>,
}

impl<K, V1, V2, VR, S: Side<V1, V2>> TableTableJoin<K, V1, V2, VR, S> {
    fn new(
        kind: Kind,
        joiner: &Joiner<V1, V2, VR>,
        supplier: &ValueGetterSupplier<K, S::Other>,
        sends_old: &AtomicBool,
    ) -> Self {
        Self {
            kind,
            joiner: joiner.clone(),
            supplier: supplier.clone(),
            getter: None,
            sends_old: sends_old.load(Ordering::Relaxed),
            _side: PhantomData,
        }
    }

    fn join(&self, this: Option<&S::This>, other: Option<&S::Other>) -> VR {
        let (left, right) = S::pair(this, other);
        (self.joiner)(left, right)
    }
}

impl<K, V1, V2, VR, S> Processor<K, Change<S::This>, K, Change<VR>>
    for TableTableJoin<K, V1, V2, VR, S>
where
    K: Clone + 'static,
    V1: 'static,
    V2: 'static,
    VR: Clone + 'static,
    S: Side<V1, V2>,
{
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<VR>>) -> Result<(), ProcessError> {
        self.getter = Some(self.supplier.open(ctx)?);
        Ok(())
    }

    fn process(
        &mut self,
        mut record: Record<K, Change<S::This>>,
        ctx: &mut ProcessorContext<K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let Some(key) = &record.key else {
            ctx.drop_record("a table-table join needs a key");
            return Ok(());
        };
        let Some(getter) = &self.getter else {
            return Err("the join runs before it was initialized".into());
        };
        let change = record.value.take().unwrap_or(Change {
            new: None,
            old: None,
        });
        let found = getter.get(key)?;
        let (other, other_time) = match &found {
            Some(found) => (Some(&found.value), found.timestamp),
            None => (None, -1),
        };
        let timestamp = record.timestamp.max(other_time);
        let (new, old) = (change.new.as_ref(), change.old.as_ref());
        let sends_old = self.sends_old;
        let (new, old) = match self.kind {
            Kind::Inner => {
                if other.is_none() {
                    return Ok(());
                }
                (
                    new.map(|new| self.join(Some(new), other)),
                    old.filter(|_| sends_old)
                        .map(|old| self.join(Some(old), other)),
                )
            }
            Kind::Left => {
                if other.is_none() && new.is_none() && old.is_none() {
                    return Ok(());
                }
                (
                    new.map(|new| self.join(Some(new), other)),
                    old.filter(|_| sends_old)
                        .map(|old| self.join(Some(old), other)),
                )
            }
            // As Kafka Streams: joined even when this side has no value.
            Kind::Right => {
                if other.is_none() {
                    return Ok(());
                }
                (
                    Some(self.join(new, other)),
                    sends_old.then(|| self.join(old, other)),
                )
            }
            Kind::Outer => {
                if other.is_none() && new.is_none() && old.is_none() {
                    return Ok(());
                }
                (
                    (other.is_some() || new.is_some()).then(|| self.join(new, other)),
                    (sends_old && (other.is_some() || old.is_some()))
                        .then(|| self.join(old, other)),
                )
            }
        };
        ctx.forward(
            record
                .with_value(Some(Change { new, old }))
                .with_timestamp(timestamp),
        )
    }
}

/// Makes one table of the two sides' changes (Kafka Streams' `KTableKTableJoinMerger`),
/// kept in its store when materialized.
struct Merge<K, VR> {
    store: Option<TableStore<K, VR>>,
    sends_old: bool,
}

impl<K: Clone + 'static, VR: Clone + 'static> Processor<K, Change<VR>> for Merge<K, VR> {
    fn init(&mut self, ctx: &mut ProcessorContext<K, Change<VR>>) -> Result<(), ProcessError> {
        match &mut self.store {
            Some(store) => store.open(ctx),
            None => Ok(()),
        }
    }

    fn process(
        &mut self,
        record: Record<K, Change<VR>>,
        ctx: &mut ProcessorContext<K, Change<VR>>,
    ) -> Result<(), ProcessError> {
        let Record {
            key,
            value,
            timestamp,
            headers,
        } = record;
        let change = value.unwrap_or(Change {
            new: None,
            old: None,
        });
        match (&self.store, key) {
            (Some(store), Some(key)) => store.replace(ctx, key, change.new, (timestamp, headers)),
            (_, key) => {
                let change = Change {
                    new: change.new,
                    old: change.old.filter(|_| self.sends_old),
                };
                ctx.forward(Record::from_parts(key, Some(change), timestamp, headers))
            }
        }
    }
}

/// The getter of an unmaterialized join's table: both sides read and joined (Kafka
/// Streams' `KTableKTableInnerJoin`, `LeftJoin` and `OuterJoin` value getters).
fn joined_getter<K: 'static, V1: 'static, V2: 'static, VR: 'static>(
    this: &ValueGetterSupplier<K, V1>,
    other: &ValueGetterSupplier<K, V2>,
    rows: Rows,
    joiner: Joiner<V1, V2, VR>,
) -> ValueGetterSupplier<K, VR> {
    let mut stores = this.stores.clone();
    stores.extend(
        other
            .stores
            .iter()
            .filter(|s| !this.stores.contains(s))
            .cloned(),
    );
    let (this, other) = (this.make.clone(), other.make.clone());
    ValueGetterSupplier {
        stores,
        make: Arc::new(move |lookup| {
            let getter = JoinedGetter {
                this: this(lookup)?,
                other: other(lookup)?,
                rows,
                joiner: joiner.clone(),
            };
            Ok(Box::new(getter) as Box<dyn ValueGetter<K, VR>>)
        }),
    }
}

struct JoinedGetter<K, V1, V2, VR> {
    this: Box<dyn ValueGetter<K, V1>>,
    other: Box<dyn ValueGetter<K, V2>>,
    rows: Rows,
    joiner: Joiner<V1, V2, VR>,
}

impl<K, V1, V2, VR> ValueGetter<K, VR> for JoinedGetter<K, V1, V2, VR> {
    fn get(&self, key: &K) -> Result<Option<ValueAndTimestamp<VR>>, ProcessError> {
        let this = self.this.get(key)?;
        let other = self.other.get(key)?;
        let time = |v: Option<i64>| v.unwrap_or(-1);
        let timestamp =
            time(this.as_ref().map(|v| v.timestamp)).max(time(other.as_ref().map(|v| v.timestamp)));
        let (this, other) = (this.map(|v| v.value), other.map(|v| v.value));
        let present = match self.rows {
            Rows::Both => this.is_some() && other.is_some(),
            Rows::This => this.is_some(),
            Rows::Either => this.is_some() || other.is_some(),
        };
        Ok(present.then(|| {
            ValueAndTimestamp::make((self.joiner)(this.as_ref(), other.as_ref()), timestamp)
        }))
    }
}

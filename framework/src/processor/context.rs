//! `ProcessorContext`: a processor's view of its task.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use super::commit_metadata::ProcessorMetadata;
use super::node::Downstream;
use super::punctuation::Scheduler;
use super::{ProcessError, PunctuationType, Record, RecordMetadata, ScheduleId};
use crate::state::{
    KeyValueStore, SessionStore, StoreDef, StoreError, StoreLayers, TimestampedKeyValueStore,
    TimestampedWindowStore, WindowStore,
};

/// What the processors of one task share: where the current record came from, the task's
/// clocks, and its punctuation schedules. Lives on the task's thread.
#[derive(Debug)]
pub(crate) struct TaskState {
    pub(crate) application_id: Arc<str>,
    /// The partition of the task's input topics (its id's).
    pub(crate) partition: Cell<i32>,
    pub(crate) metadata: RefCell<Option<RecordMetadata>>,
    /// The largest timestamp seen; -1 until the first record, as Kafka Streams.
    pub(crate) stream_time: Cell<i64>,
    pub(crate) wall_clock: Cell<i64>,
    pub(crate) scheduler: RefCell<Scheduler>,
    /// Records an operator could not pass on (e.g. a tombstone reaching `map`).
    pub(crate) dropped: Cell<u64>,
    /// Of those, the records dropped for a window already closed, by the topic they were
    /// read from.
    pub(crate) late: RefCell<std::collections::BTreeMap<Arc<str>, u64>>,
    /// The task's state stores, open, by name.
    pub(crate) stores: RefCell<std::collections::BTreeMap<Arc<str>, OpenStore>>,
    /// The timestamp of the record being processed, which its store writes are logged with
    /// (shared with the stores' change-logging layers).
    pub(crate) record_timestamp: Rc<Cell<i64>>,
    /// How often, at most, in wall-clock ms, a windowed aggregation emitting on window
    /// close looks for closed windows (`__emit.interval.ms.kstreams.windowed.aggregation__`).
    pub(crate) emit_interval_ms: Cell<i64>,
    /// How often, at most, in wall-clock ms, a left or outer stream-stream join looks for
    /// records whose windows closed unmatched
    /// (`__emit.interval.ms.kstreams.outer.join.spurious.results.fix__`).
    pub(crate) outer_join_emit_interval_ms: Cell<i64>,
    /// What processors of the task share, by a name they agree on (the two sides of a
    /// stream-stream join: their stream time).
    pub(crate) shared: RefCell<std::collections::HashMap<Arc<str>, Rc<dyn std::any::Any>>>,
    /// Values processors keep across restarts, committed with the input offsets.
    pub(crate) processor_metadata: RefCell<ProcessorMetadata>,
    /// The instance's global tables' stores, by name, which every task reads.
    pub(crate) globals: RefCell<GlobalStores>,
}

/// The stores of an instance's global tables, by name, shared by its threads.
pub(crate) type GlobalStores = std::collections::BTreeMap<Arc<str>, crate::state::SharedBytesStore>;

/// A store a task has opened: its definition and its layers.
#[derive(Debug, Clone)]
pub(crate) struct OpenStore {
    pub(crate) def: StoreDef,
    /// Its changelog topic, which its serdes are told.
    pub(crate) changelog: Arc<str>,
    pub(crate) layers: Rc<StoreLayers>,
}

impl OpenStore {
    /// The store as queries read it (through its cache), any thread.
    pub(crate) fn read_view(&self) -> crate::state::SharedBytesStore {
        self.layers.read_view()
    }

    /// The store as its task writes it, if it is a timestamped store of `(K, V)`.
    pub(crate) fn timestamped<K: 'static, V: 'static>(
        &self,
    ) -> Result<TimestampedKeyValueStore<K, V>, StoreError> {
        let view = self
            .def
            .timestamped(self.read_view(), self.changelog.clone())?;
        Ok(KeyValueStore::new(view, self.layers.clone()))
    }

    /// The store as its task writes it, if it is a timestamped window store of `(K, V)`.
    pub(crate) fn timestamped_window<K: 'static, V: 'static>(
        &self,
    ) -> Result<TimestampedWindowStore<K, V>, StoreError> {
        let view = self
            .def
            .timestamped_window(self.read_view(), self.changelog.clone())?;
        Ok(self.window_top(view))
    }

    /// The store as its task writes it, if it is a plain window store of `(K, V)`.
    pub(crate) fn window<K: 'static, V: 'static>(&self) -> Result<WindowStore<K, V>, StoreError> {
        let view = self
            .def
            .writable_window(self.read_view(), self.changelog.clone())?;
        Ok(self.window_top(view))
    }

    fn window_top<K: 'static, V: 'static>(
        &self,
        view: crate::state::ReadOnlyKeyValueStore<K, V>,
    ) -> WindowStore<K, V> {
        let store = KeyValueStore::new(view, self.layers.clone());
        WindowStore::new(store, self.def.window_size(), self.def.retains_duplicates())
    }

    /// The store as its task writes it, if it is a suppression buffer of `(K, V)`.
    pub(crate) fn buffer<K: 'static, V: 'static>(&self) -> Result<KeyValueStore<K, V>, StoreError> {
        let view = self
            .def
            .writable_buffer(self.read_view(), self.changelog.clone())?;
        Ok(KeyValueStore::new(view, self.layers.clone()))
    }

    /// The store as its task writes it, if it is a session store of `(K, V)`.
    pub(crate) fn session<K: 'static, V: 'static>(&self) -> Result<SessionStore<K, V>, StoreError> {
        let view = self
            .def
            .writable_session(self.read_view(), self.changelog.clone())?;
        Ok(SessionStore::new(KeyValueStore::new(
            view,
            self.layers.clone(),
        )))
    }
}

impl TaskState {
    pub(crate) fn new(application_id: Arc<str>, wall_clock: i64) -> Self {
        Self {
            application_id,
            partition: Cell::new(0),
            metadata: RefCell::new(None),
            stream_time: Cell::new(-1),
            wall_clock: Cell::new(wall_clock),
            scheduler: RefCell::new(Scheduler::default()),
            dropped: Cell::new(0),
            late: RefCell::default(),
            stores: RefCell::new(std::collections::BTreeMap::new()),
            record_timestamp: Rc::new(Cell::new(-1)),
            emit_interval_ms: Cell::new(1000),
            outer_join_emit_interval_ms: Cell::new(1000),
            shared: RefCell::default(),
            processor_metadata: RefCell::default(),
            globals: RefCell::default(),
        }
    }
}

/// A child a processor forwards to.
pub(crate) struct Child<K, V> {
    pub(crate) name: Arc<str>,
    pub(crate) sink: Rc<dyn Downstream<K, V>>,
}

/// A processor's view of its task: forwards records to the processor's children, tells where
/// the current record came from, and schedules punctuation.
pub struct ProcessorContext<K, V> {
    node: usize,
    name: Arc<str>,
    children: Rc<[Child<K, V>]>,
    task: Rc<TaskState>,
    /// The state stores connected to this processor.
    stores: Vec<Arc<str>>,
}

impl<K, V> std::fmt::Debug for ProcessorContext<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessorContext")
            .field("node", &self.name)
            .field(
                "children",
                &self.children.iter().map(|c| &c.name).collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl<K, V> ProcessorContext<K, V> {
    pub(crate) fn new(
        node: usize,
        name: Arc<str>,
        children: Vec<Child<K, V>>,
        task: Rc<TaskState>,
    ) -> Self {
        Self {
            node,
            name,
            children: children.into(),
            task,
            stores: Vec::new(),
        }
    }

    /// Connects the processor to the state stores named `stores`.
    pub(crate) fn with_stores(mut self, stores: Vec<Arc<str>>) -> Self {
        self.stores = stores;
        self
    }

    /// The key-value store `name`, typed: one of the stores connected to this processor
    /// when it was added, with the key and value types it was declared with. Call it in
    /// `init` and keep the handle.
    ///
    /// # Errors
    /// [`StoreError::NotConnected`] when the store is not connected to this processor,
    /// [`StoreError::WrongTypes`] when `(SK, SV)` are not its types or it is timestamped.
    pub fn key_value_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<KeyValueStore<SK, SV>, StoreError> {
        let open = self.connected(name)?;
        let view = open.def.writable(open.read_view(), open.changelog)?;
        Ok(KeyValueStore::new(view, open.layers))
    }

    /// The timestamped key-value store `name` (its values with the timestamps of their last
    /// update), as [`key_value_store`](Self::key_value_store) gives a plain one.
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store); `WrongTypes` also for a store that is
    /// not timestamped.
    pub fn timestamped_key_value_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<TimestampedKeyValueStore<SK, SV>, StoreError> {
        self.connected(name)?.timestamped()
    }

    /// The window store `name` (Kafka Streams' `WindowStore`), typed, as
    /// [`key_value_store`](Self::key_value_store) gives a key-value store.
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store); `WrongTypes` also for a store that is
    /// no plain window store.
    pub fn window_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<WindowStore<SK, SV>, StoreError> {
        self.connected(name)?.window()
    }

    /// The timestamped window store `name` (its values with the timestamps of their last
    /// update: a windowed aggregation's).
    ///
    /// # Errors
    /// As [`window_store`](Self::window_store), for a store that is no timestamped window
    /// store.
    pub fn timestamped_window_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<TimestampedWindowStore<SK, SV>, StoreError> {
        self.connected(name)?.timestamped_window()
    }

    /// The session store `name` (Kafka Streams' `SessionStore`).
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store), for a store that is no session store.
    pub fn session_store<SK: 'static, SV: 'static>(
        &self,
        name: &str,
    ) -> Result<SessionStore<SK, SV>, StoreError> {
        self.connected(name)?.session()
    }

    /// The store `name`, if it is connected to this processor.
    pub(crate) fn connected(&self, name: &str) -> Result<OpenStore, StoreError> {
        let open = self
            .stores
            .iter()
            .any(|s| &**s == name)
            .then(|| self.task.stores.borrow().get(name).cloned())
            .flatten();
        open.ok_or_else(|| StoreError::NotConnected {
            store: name.to_string(),
            processor: self.name.to_string(),
            connected: self
                .stores
                .iter()
                .map(|s| s.to_string())
                .collect::<Vec<_>>()
                .join(", "),
        })
    }

    /// Forwards `record` as if it were being processed now: what processors downstream
    /// write is stamped with its timestamp (as Kafka Streams restores a buffered record's
    /// context to forward it).
    pub(crate) fn forward_as_of(&mut self, record: Record<K, V>) -> Result<(), ProcessError>
    where
        K: Clone,
        V: Clone,
    {
        let processing = self.task.record_timestamp.get();
        self.task.record_timestamp.set(record.timestamp);
        let forwarded = self.forward(record);
        self.task.record_timestamp.set(processing);
        forwarded
    }

    /// The name of this processor's node in the topology.
    pub fn node_name(&self) -> &str {
        &self.name
    }

    /// The names of the children this processor forwards to, in the order they were added.
    pub fn child_names(&self) -> impl Iterator<Item = &str> {
        self.children.iter().map(|c| &*c.name)
    }

    /// The application's `application.id`.
    pub fn application_id(&self) -> &str {
        &self.task.application_id
    }

    /// Before a commit: the caches of the stores connected to this processor write what
    /// they hold down (handing it to their listeners).
    pub(crate) fn flush_stores(&self) -> Result<(), StoreError> {
        let layers: Vec<Rc<StoreLayers>> = {
            let stores = self.task.stores.borrow();
            self.stores
                .iter()
                .filter_map(|name| stores.get(name).map(|open| open.layers.clone()))
                .collect()
        };
        layers.iter().try_for_each(|layers| layers.flush_cache())
    }

    /// Forwards to this processor's children, for a store's flush listener.
    pub(crate) fn forwarder(&self) -> Forwarder<K, V> {
        Forwarder {
            children: self.children.clone(),
        }
    }

    /// Sets the timestamp of the record about to be processed.
    pub(crate) fn set_record_timestamp(&self, timestamp: i64) {
        self.task.record_timestamp.set(timestamp);
    }

    /// Sets where the record about to be processed came from.
    /// The store of global table `name`, as every task reads it.
    pub(crate) fn global_store(
        &self,
        name: &str,
    ) -> Result<crate::state::SharedBytesStore, StoreError> {
        let globals = self.task.globals.borrow();
        globals
            .get(name)
            .cloned()
            .ok_or_else(|| StoreError::NotConnected {
                store: name.to_string(),
                processor: self.name.to_string(),
                connected: globals
                    .keys()
                    .map(|k| k.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }

    /// The partition of the task's input topics: that of every record it reads, of a
    /// cache's flush too.
    pub(crate) fn task_partition(&self) -> i32 {
        self.task.partition.get()
    }

    pub(crate) fn set_record_metadata(&self, metadata: Option<RecordMetadata>) {
        *self.task.metadata.borrow_mut() = metadata;
    }

    /// Counts and logs a record this processor cannot pass on, naming the processor and the
    /// record's coordinates: no record disappears without a trace.
    pub(crate) fn drop_record(&self, reason: &str) {
        self.task.dropped.set(self.task.dropped.get() + 1);
        tracing::warn!(
            "homa: {} drops the record from {}: {reason}",
            self.name,
            self.at()
        );
    }

    /// [`drop_record`](Self::drop_record) of a record that came after its window closed,
    /// also counted by the topic it was read from.
    pub(crate) fn drop_late_record(&self, reason: &str) {
        let topic = self.record_metadata().map(|m| m.topic);
        let topic = topic.unwrap_or_else(|| Arc::from("a punctuation"));
        *self.task.late.borrow_mut().entry(topic).or_default() += 1;
        self.drop_record(reason);
    }

    /// [`drop_record`](Self::drop_record) of a record dropped in the normal course of
    /// things (a stale foreign-key join response), logged at debug level only.
    pub(crate) fn drop_record_quietly(&self, reason: &str) {
        self.task.dropped.set(self.task.dropped.get() + 1);
        tracing::debug!(
            "homa: {} drops the record from {}: {reason}",
            self.name,
            self.at()
        );
    }

    /// Where the record being processed comes from, for logs.
    fn at(&self) -> String {
        self.record_metadata()
            .map_or_else(|| "a punctuation".to_string(), |m| m.to_string())
    }

    /// How often, at most, in wall-clock ms, a windowed aggregation emitting on window
    /// close looks for closed windows.
    pub(crate) fn emit_interval_ms(&self) -> i64 {
        self.task.emit_interval_ms.get()
    }

    /// How often, at most, in wall-clock ms, a left or outer stream-stream join looks for
    /// records whose windows closed unmatched.
    pub(crate) fn outer_join_emit_interval_ms(&self) -> i64 {
        self.task.outer_join_emit_interval_ms.get()
    }

    /// The task's one `T` shared under `name`, made with `T::default()` by the first
    /// processor that asks: how processors of one task share what is neither a store nor
    /// a record (the two sides of a join, their stream time).
    ///
    /// # Errors
    /// When a value of another type is shared under `name`.
    pub(crate) fn task_shared<T: Default + 'static>(
        &self,
        name: &str,
    ) -> Result<Rc<T>, ProcessError> {
        let shared = self
            .task
            .shared
            .borrow_mut()
            .entry(Arc::from(name))
            .or_insert_with(|| Rc::new(T::default()))
            .clone();
        shared.downcast::<T>().map_err(|_| {
            format!(
                "the task shares {name} as another type than {}",
                std::any::type_name::<T>()
            )
            .into()
        })
    }

    /// The value `key` had in the task's processor metadata as last committed (or set
    /// since): a processor's own key is the name of its store (Kafka Streams'
    /// `processorMetadataForKey`).
    pub(crate) fn processor_metadata(&self, key: &str) -> Option<i64> {
        self.task.processor_metadata.borrow().get(key)
    }

    /// Sets `key` in the task's processor metadata, committed with its next commit
    /// (Kafka Streams' `addProcessorMetadataKeyValue`).
    pub(crate) fn set_processor_metadata(&self, key: &str, value: i64) {
        self.task.processor_metadata.borrow_mut().put(key, value);
    }

    /// Topic, partition and offset of the record being processed; `None` while punctuating.
    pub fn record_metadata(&self) -> Option<RecordMetadata> {
        self.task.metadata.borrow().clone()
    }

    /// The task's stream time: the largest record timestamp seen so far, -1 before any.
    pub fn stream_time(&self) -> i64 {
        self.task.stream_time.get()
    }

    /// The wall-clock time in ms since the epoch (the test driver's clock in tests).
    pub fn wall_clock_time(&self) -> i64 {
        self.task.wall_clock.get()
    }

    /// Asks for [`Processor::punctuate`](super::Processor::punctuate) every `interval` of
    /// `kind`'s clock, until cancelled or the task closes.
    pub fn schedule(&mut self, interval: Duration, kind: PunctuationType) -> ScheduleId {
        let now = self.task.wall_clock.get();
        self.task
            .scheduler
            .borrow_mut()
            .schedule(self.node, kind, interval, now)
    }

    /// Cancels a schedule made with [`schedule`](Self::schedule).
    pub fn cancel(&mut self, schedule: ScheduleId) {
        self.task.scheduler.borrow_mut().cancel(schedule);
    }
}

/// A processor's children, to forward to from outside `process` (a store's flush).
pub(crate) struct Forwarder<K, V> {
    children: Rc<[Child<K, V>]>,
}

/// Forwards `record` to every one of `children`, in order; the first error stops it.
fn forward_to_all<K: Clone, V: Clone>(
    children: &[Child<K, V>],
    record: Record<K, V>,
) -> Result<(), ProcessError> {
    if let Some((last, rest)) = children.split_last() {
        for child in rest {
            child.sink.process(record.clone())?;
        }
        last.sink.process(record)?;
    }
    Ok(())
}

impl<K: Clone, V: Clone> Forwarder<K, V> {
    /// Forwards `record` to every child, in the order they were added.
    pub(crate) fn forward(&self, record: Record<K, V>) -> Result<(), ProcessError> {
        forward_to_all(&self.children, record)
    }
}

impl<K: Clone, V: Clone> ProcessorContext<K, V> {
    /// Forwards `record` to every child, in the order they were added.
    ///
    /// # Errors
    /// The first error of a child; later children do not see the record.
    pub fn forward(&mut self, record: Record<K, V>) -> Result<(), ProcessError> {
        forward_to_all(&self.children, record)
    }

    /// Forwards `record` to the child named `child` only.
    ///
    /// # Errors
    /// When this processor has no child of that name, or the child's error.
    pub fn forward_to(&mut self, child: &str, record: Record<K, V>) -> Result<(), ProcessError> {
        match self.children.iter().find(|c| &*c.name == child) {
            Some(c) => c.sink.process(record),
            None => Err(format!(
                "processor {} has no child {child:?}; its children are {:?}",
                self.name,
                self.child_names().collect::<Vec<_>>()
            )
            .into()),
        }
    }
}

//! What an instance's stream threads share with it: its metrics and the stores its tasks
//! have open, for queries.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::metrics::{Metrics, ThreadMetadata};
use super::task::{TaskCounts, TaskId};
use crate::state::global::GlobalState;
use crate::state::{CompositeBytesStore, RocksDbMemory, SharedBytesStore, StoreDef, StoreError};

/// A store a task has open, as queries reach it.
#[derive(Debug, Clone)]
pub(crate) struct QueryableStore {
    pub(crate) bytes: SharedBytesStore,
    pub(crate) def: StoreDef,
    pub(crate) changelog: Arc<str>,
}

/// What a stream thread's tasks did, as of its last commit.
#[derive(Debug, Clone, Default)]
pub(crate) struct ThreadCounts {
    pub(crate) tasks: TaskCounts,
    /// Records its producer skipped (production handler log-and-continue).
    pub(crate) skipped_sends: u64,
    /// Records waiting in its tasks' queues.
    pub(crate) buffered: u64,
    pub(crate) tasks_created: u64,
    pub(crate) tasks_closed: u64,
    /// What its tasks' stores were asked to do, by store.
    pub(crate) stores: super::task_manager::StoreFigures,
    /// Records its tasks dropped for a window already closed, by source topic.
    pub(crate) late: BTreeMap<String, u64>,
}

/// The instance's side of its stream threads.
#[derive(Debug, Default)]
pub(crate) struct Instance {
    pub(crate) metrics: Mutex<Metrics>,
    /// The memory all RocksDB stores of the instance share (`rocksdb.memory.bytes`).
    pub(crate) rocksdb: Option<RocksDbMemory>,
    /// The stores of the running tasks, by store name and task.
    stores: Mutex<BTreeMap<Arc<str>, BTreeMap<TaskId, QueryableStore>>>,
    /// What each stream thread's tasks did, as of its last commit, and the records its
    /// producer skipped.
    counts: Mutex<BTreeMap<usize, ThreadCounts>>,
    /// What the stream threads that failed and were replaced had done, to keep counting.
    retired: Mutex<Vec<ThreadCounts>>,
    /// Each stream thread's tasks.
    threads: Mutex<BTreeMap<usize, ThreadMetadata>>,
    /// The global tables, once restored (before the stream threads start).
    global: Mutex<Option<Arc<GlobalState>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Instance {
    /// An instance whose RocksDB stores share `rocksdb`.
    pub(crate) fn new(rocksdb: Option<RocksDbMemory>) -> Self {
        Self {
            rocksdb,
            ..Self::default()
        }
    }

    /// The global tables, restored: tasks read them, queries too.
    pub(crate) fn set_global(&self, global: Arc<GlobalState>) {
        *lock(&self.global) = Some(global);
    }

    /// Forgets the global tables (the instance closed).
    pub(crate) fn clear_global(&self) {
        lock(&self.global).take();
    }

    /// The global tables' stores, by name (none before they are restored).
    pub(crate) fn global_stores(&self) -> crate::processor::GlobalStores {
        lock(&self.global)
            .as_ref()
            .map(|g| g.stores())
            .unwrap_or_default()
    }

    /// Makes the stores of task `task` queryable (once it has restored them).
    pub(crate) fn register(&self, task: TaskId, stores: Vec<(Arc<str>, QueryableStore)>) {
        let mut all = lock(&self.stores);
        for (name, store) in stores {
            all.entry(name).or_default().insert(task, store);
        }
    }

    /// Forgets the stores of task `task` (closing, or moving away).
    pub(crate) fn deregister(&self, task: TaskId) {
        let mut all = lock(&self.stores);
        for tasks in all.values_mut() {
            tasks.remove(&task);
        }
        all.retain(|_, tasks| !tasks.is_empty());
    }

    /// The local tasks' stores named `name`, read as one, through `view`: one of the
    /// store definition's typed views.
    pub(crate) fn store<T>(
        &self,
        name: &str,
        view: impl FnOnce(&StoreDef, SharedBytesStore, Arc<str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        // A global table's store: the whole table, on every instance.
        if let Some((def, bytes, topic)) = lock(&self.global).as_ref().and_then(|g| {
            g.store(name)
                .map(|(def, bytes, topic)| (def.clone(), bytes, topic))
        }) {
            return view(&def, bytes, topic);
        }
        let all = lock(&self.stores);
        let tasks = all.get(name);
        let Some(first) = tasks.and_then(|tasks| tasks.values().next()) else {
            return Err(StoreError::NotAvailable {
                store: name.to_string(),
            });
        };
        let bytes: Vec<SharedBytesStore> = tasks
            .into_iter()
            .flat_map(|tasks| tasks.values().map(|s| s.bytes.clone()))
            .collect();
        let composite: SharedBytesStore = Arc::new(CompositeBytesStore::new(name, &bytes));
        view(&first.def, composite, first.changelog.clone())
    }

    /// Records what stream thread `thread`'s tasks have done so far.
    pub(crate) fn publish(&self, thread: usize, counts: ThreadCounts) {
        lock(&self.counts).insert(thread, counts);
    }

    /// Stream thread `thread` failed and is replaced: what it did stays counted, beside
    /// what its successor does (its queues are gone).
    pub(crate) fn retire(&self, thread: usize) {
        if let Some(mut counts) = lock(&self.counts).remove(&thread) {
            counts.buffered = 0;
            lock(&self.retired).push(counts);
        }
    }

    /// Records stream thread `thread`'s tasks now.
    pub(crate) fn publish_tasks(&self, thread: usize, metadata: ThreadMetadata) {
        lock(&self.threads).insert(thread, metadata);
    }

    /// The stream threads and their tasks.
    pub(crate) fn threads(&self) -> Vec<ThreadMetadata> {
        lock(&self.threads).values().cloned().collect()
    }

    pub(crate) fn metrics(&self) -> Metrics {
        let mut metrics = lock(&self.metrics).clone();
        let retired = lock(&self.retired);
        for counts in lock(&self.counts).values().chain(retired.iter()) {
            metrics.processed_records += counts.tasks.processed;
            metrics.skipped_records += counts.tasks.skipped() + counts.skipped_sends;
            metrics.dropped_records += counts.tasks.dropped;
            metrics.buffered_records += counts.buffered;
            metrics.tasks_created += counts.tasks_created;
            metrics.tasks_closed += counts.tasks_closed;
            for (topic, late) in &counts.late {
                *metrics.late_records.entry(topic.clone()).or_default() += late;
            }
            for (store, figures) in &counts.stores {
                metrics
                    .stores
                    .entry(store.clone())
                    .or_default()
                    .add(figures);
            }
        }
        metrics
    }
}

//! `StateManager`: a task's state on disk (Kafka Streams' `ProcessorStateManager`). It
//! locks the task's directory, opens its stores (a logged store without a checkpoint starts
//! empty, its changelog rebuilds it), knows each logged store's changelog partition, and
//! reads and writes the checkpoint of their offsets. Under exactly-once its persistent
//! logged stores hold the open transaction's writes back until it commits (see
//! `state::transactional`), so their checkpoint holds after a crash too.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::Arc;

use super::task::TaskId;
use crate::processor::OpenStore;
use crate::state::{
    CacheBudget, CachingLayer, ChangeLogger, ChangelogSink, RocksDbMemory, SharedBytesStore,
    StoreError, StoreKind, StoreLayers, StoreMeters, TransactionalBytesStore, checkpoint,
};
use crate::topology::{Subtopology, Topology};

/// A checkpoint is written when a changelog has moved this far since the last one (or the
/// task closes), as Kafka Streams does under at-least-once: flushing RocksDB on every commit
/// would make many small files. Kafka Streams' 10,000 made a window store, which writes a
/// changelog record for each window a record updates, flush its memtables every second or
/// so, and then look for its windows in files instead of memory (W3-HOPPING ran a third
/// slower); 100,000 records are still a fraction of a second of restore after a crash.
const CHECKPOINT_DELTA: i64 = 100_000;

/// A changelog topic-partition: `(topic, partition)`.
type ChangelogPartition = (Arc<str>, i32);

/// A logged store of a task, to restore.
pub(crate) struct LoggedStore {
    pub(crate) name: Arc<str>,
    pub(crate) kind: StoreKind,
    pub(crate) changelog: Arc<str>,
    pub(crate) bytes: SharedBytesStore,
    /// Where restoring starts: the checkpoint's offset of a persistent store, else none
    /// (the changelog's beginning).
    pub(crate) start: Option<i64>,
}

/// What a task's stores are opened with.
pub(crate) struct StoreContext<'a> {
    /// `<state.dir>`: the task's directory is `<state.dir>/<application.id>/<task>`.
    pub(crate) state_dir: &'a Path,
    pub(crate) application_id: &'a str,
    /// The memory the instance's RocksDB stores share, if bounded.
    pub(crate) rocksdb: Option<&'a RocksDbMemory>,
    /// Where the stores' changelog records go.
    pub(crate) sink: Rc<dyn ChangelogSink>,
    /// The timestamp of the record the task processes, which plain stores log with.
    pub(crate) record_timestamp: Rc<Cell<i64>>,
    /// The record cache budget of the thread (0: caches off).
    pub(crate) cache: Rc<CacheBudget>,
    /// Whether the stores' operations are timed (`metrics.recording.level` `DEBUG`).
    pub(crate) timed: bool,
    /// Whether the task runs under exactly-once: its persistent logged stores write only
    /// what its transactions commit.
    pub(crate) exactly_once: bool,
}

/// The state of one task.
#[derive(Debug, Default)]
pub(crate) struct StateManager {
    dir: PathBuf,
    /// The lock of the task's directory while it has stores open there.
    _lock: Option<std::fs::File>,
    /// The changelog offsets of the last checkpoint (read at start, then as written).
    checkpointed: checkpoint::Offsets,
    /// The changelog partition of each logged store, by store.
    changelogs: BTreeMap<Arc<str>, ChangelogPartition>,
    /// The next changelog offset each logged store is known to reflect, from its restore.
    restored: BTreeMap<Arc<str>, i64>,
    /// Under exactly-once, the persistent logged stores, whose writes wait for the
    /// transaction to commit, with their changelog partitions.
    transactional: Vec<(Arc<TransactionalBytesStore>, ChangelogPartition)>,
}

impl StateManager {
    /// The state of task `task` of `sub`: its directory locked (when it has stores) and its
    /// stores opened there, by name.
    pub(crate) fn open(
        task: TaskId,
        topology: &Topology,
        sub: &Subtopology,
        cx: &StoreContext<'_>,
    ) -> Result<(Self, BTreeMap<Arc<str>, OpenStore>), StoreError> {
        // A task's stores live in `<state.dir>/<application.id>/<task>`, as Kafka Streams'.
        let dir = cx.state_dir.join(cx.application_id).join(task.to_string());
        let mut manager = Self {
            dir,
            ..Self::default()
        };
        let mut stores = BTreeMap::new();
        if sub.stores.is_empty() {
            return Ok((manager, stores));
        }
        manager._lock = Some(crate::state::lock_dir(&manager.dir)?);
        manager.checkpointed = checkpoint::read(&manager.dir)?;
        for name in &sub.stores {
            let Some(def) = topology.store_def(name) else {
                continue;
            };
            let topic: Arc<str> = crate::topology::changelog_topic(cx.application_id, name).into();
            let changelog = (topic.clone(), task.partition);
            let key = (topic.to_string(), task.partition);
            let mut bytes = None;
            if cx.exactly_once && def.logging {
                // The offset a store keeps with its committed writes is the one its content
                // reflects, a crash or not: the restore starts there.
                let store = def.open(&manager.dir, cx.rocksdb)?;
                if let Some(next) = store.committed_offset()? {
                    manager.checkpointed.insert(key.clone(), next);
                }
                bytes = Some(store);
            }
            // A logged store without a checkpoint may hold anything (a crash before the
            // first commit): it starts empty and its changelog rebuilds it.
            if def.logging && !manager.checkpointed.contains_key(&key) {
                // (Closed first: RocksDB lets go of its directory when dropped.)
                drop(bytes.take());
                def.wipe(&manager.dir)?;
            }
            let mut bytes = match bytes {
                Some(bytes) => bytes,
                None => def.open(&manager.dir, cx.rocksdb)?,
            };
            if cx.exactly_once && def.logging && bytes.persistent() {
                let transactional = Arc::new(TransactionalBytesStore::new(bytes));
                manager
                    .transactional
                    .push((transactional.clone(), changelog.clone()));
                bytes = transactional;
            }
            let logger = def.logging.then(|| {
                ChangeLogger::new(name.clone(), changelog.clone(), def.kind, cx.sink.clone())
            });
            if def.logging {
                manager.changelogs.insert(name.clone(), changelog);
            }
            let cache = (def.caching && cx.cache.max > 0).then(|| {
                CachingLayer::new(name.clone(), cx.cache.clone(), cx.record_timestamp.clone())
            });
            let layers = StoreLayers {
                bytes,
                cache,
                logger,
                meters: StoreMeters::new(cx.timed),
                record_timestamp: cx.record_timestamp.clone(),
                buffers: Default::default(),
            };
            let open = OpenStore {
                def: def.clone(),
                changelog: topic,
                layers: Rc::new(layers),
            };
            stores.insert(name.clone(), open);
        }
        Ok((manager, stores))
    }

    /// The logged stores of `stores`, with where their restore starts.
    pub(crate) fn logged_stores(&self, stores: &BTreeMap<Arc<str>, OpenStore>) -> Vec<LoggedStore> {
        self.changelogs
            .iter()
            .filter_map(|(name, (topic, partition))| {
                let open = stores.get(name)?;
                let key = (topic.to_string(), *partition);
                let bytes = &open.layers.bytes;
                Some(LoggedStore {
                    name: name.clone(),
                    kind: open.def.kind,
                    changelog: topic.clone(),
                    bytes: bytes.clone(),
                    start: self
                        .checkpointed
                        .get(&key)
                        .copied()
                        .filter(|_| bytes.persistent()),
                })
            })
            .collect()
    }

    /// Records that the store logged to `changelog` reflects it up to `next` (exclusive).
    pub(crate) fn set_restored(&mut self, changelog: Arc<str>, next: i64) {
        self.restored.insert(changelog, next);
    }

    /// The thread's transaction committed: the stores write what it held back, with the
    /// changelog offset it brought each to (`produced` gives the last offset written to a
    /// changelog partition).
    pub(crate) fn apply_transaction(
        &self,
        produced: impl Fn(&str, i32) -> Option<i64>,
    ) -> Result<(), StoreError> {
        self.transactional
            .iter()
            .try_for_each(|(store, (topic, partition))| {
                store.apply(produced(topic, *partition).map(|last| last + 1))
            })
    }

    /// After a commit: flushes the persistent logged stores and writes the checkpoint of
    /// their changelog offsets (`produced` gives the last offset written to a changelog
    /// partition), when a changelog moved [`CHECKPOINT_DELTA`] since the last one, or
    /// always with `force` (a closing task). (Under exactly-once the persistent stores keep
    /// their offsets themselves, exact after a crash too; the checkpoint is for the rest.)
    pub(crate) fn checkpoint(
        &mut self,
        stores: &BTreeMap<Arc<str>, OpenStore>,
        produced: impl Fn(&str, i32) -> Option<i64>,
        force: bool,
    ) -> Result<(), StoreError> {
        let mut offsets = checkpoint::Offsets::new();
        for (name, (topic, partition)) in &self.changelogs {
            if !stores
                .get(name)
                .is_some_and(|s| s.layers.bytes.persistent())
            {
                continue;
            }
            let next = produced(topic, *partition)
                .map(|offset| offset + 1)
                .or_else(|| self.restored.get(topic).copied());
            if let Some(next) = next {
                offsets.insert((topic.to_string(), *partition), next);
            }
        }
        let moved = offsets.iter().any(|(key, next)| {
            next - self.checkpointed.get(key).copied().unwrap_or(0) >= CHECKPOINT_DELTA
        });
        if offsets.is_empty() || offsets == self.checkpointed || !(force || moved) {
            return Ok(());
        }
        for store in stores.values() {
            store.layers.bytes.flush()?;
        }
        checkpoint::write(&self.dir, &offsets)?;
        self.checkpointed = offsets;
        Ok(())
    }
}

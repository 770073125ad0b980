//! A stream thread: one consumer and one producer on a plain OS thread, running the tasks
//! of the partitions assigned to it in a synchronous loop: poll, process, commit.

use std::collections::btree_map::Entry;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, Rebalance};
use rdkafka::message::{BorrowedMessage, Headers as _};
use rdkafka::producer::{BaseProducer, Producer};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::clients;
use super::collector::{Deliveries, KafkaCollector, flush};
use super::instance::Instance;
use super::restore;
use super::task::{QueuedRecord, Task, TaskId, TaskResources};
use crate::config::StreamsConfig;
use crate::header::Headers;
use crate::processor::{CacheBudget, RecordCollector};
use crate::topology::Topology;

/// How long a flush may wait for acknowledgements before the commit fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// Records fetched per poll round before they are processed.
const MAX_POLL_RECORDS: usize = 1000;

type Partition = (Arc<str>, i32);

/// Tells the instance that this thread's partitions are moving (`false`) or assigned
/// (`true`), for its state (`Rebalancing` / `Running`).
pub(crate) type OnRebalance = Arc<dyn Fn(bool) + Send + Sync>;

/// What the loop and the rebalance callbacks (which run inside `poll`) share.
struct Rebalancer {
    on_rebalance: OnRebalance,
    producer: Arc<BaseProducer<Deliveries>>,
    /// The last offset processed of each assigned partition, published before each poll.
    processed: Mutex<BTreeMap<Partition, i64>>,
    revoked: Mutex<Vec<Partition>>,
    /// Partitions assigned by the last rebalance, whose tasks the loop makes.
    assigned: Mutex<Vec<Partition>>,
    error: Mutex<Option<String>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClientContext for Rebalancer {}

impl ConsumerContext for Rebalancer {
    fn post_rebalance(&self, _: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        if let Rebalance::Assign(partitions) = rebalance {
            lock(&self.assigned).extend(
                partitions
                    .elements()
                    .iter()
                    .map(|e| (Arc::from(e.topic()), e.partition())),
            );
            (self.on_rebalance)(true);
        }
    }

    fn pre_rebalance(&self, consumer: &BaseConsumer<Self>, rebalance: &Rebalance<'_>) {
        let Rebalance::Revoke(partitions) = rebalance else {
            return;
        };
        (self.on_rebalance)(false);
        // Before the partitions go to another member, what was processed of them is made
        // durable: outputs flushed, then offsets committed (at-least-once).
        let revoked: Vec<Partition> = partitions
            .elements()
            .iter()
            .map(|e| (Arc::from(e.topic()), e.partition()))
            .collect();
        let processed = lock(&self.processed).clone();
        let outcome = flush(&self.producer, FLUSH_TIMEOUT).and_then(|()| {
            let offsets = offsets_of(&processed, |p| revoked.contains(p))?;
            if offsets.count() > 0 {
                consumer
                    .commit(&offsets, CommitMode::Sync)
                    .map_err(|e| format!("committing offsets of revoked partitions: {e}"))?;
            }
            Ok(())
        });
        if let Err(e) = outcome {
            lock(&self.error).get_or_insert(e);
        }
        lock(&self.revoked).extend(revoked);
    }
}

/// The offsets to commit (next to read) of the processed partitions `keep` selects.
fn offsets_of(
    processed: &BTreeMap<Partition, i64>,
    keep: impl Fn(&Partition) -> bool,
) -> Result<TopicPartitionList, String> {
    let mut list = TopicPartitionList::new();
    for (partition, offset) in processed.iter().filter(|(p, _)| keep(p)) {
        list.add_partition_offset(&partition.0, partition.1, Offset::Offset(offset + 1))
            .map_err(|e| format!("offset of {}/{}: {e}", partition.0, partition.1))?;
    }
    Ok(list)
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// A message as a task queues it.
fn queued(message: &BorrowedMessage<'_>) -> QueuedRecord {
    let mut headers = Headers::new();
    if let Some(borrowed) = message.headers() {
        for h in borrowed.iter() {
            match h.value {
                Some(value) => headers.add(h.key, value),
                None => headers.add_null(h.key),
            };
        }
    }
    QueuedRecord {
        offset: message.offset(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        key: message.key().map(<[u8]>::to_vec),
        value: message.payload().map(<[u8]>::to_vec),
        headers,
    }
}

/// Runs one stream thread until `shutdown` is set or a task fails.
pub(crate) fn run(
    index: usize,
    topology: &Topology,
    config: &StreamsConfig,
    bootstrap: &str,
    shutdown: &AtomicBool,
    on_rebalance: OnRebalance,
    instance: &Instance,
) -> Result<(), String> {
    let producer: Arc<BaseProducer<Deliveries>> = Arc::new(
        clients::producer(config, bootstrap, index)
            .create_with_context(Deliveries::default())
            .map_err(|e| format!("creating the producer: {e}"))?,
    );
    let context = Rebalancer {
        on_rebalance,
        producer: producer.clone(),
        processed: Mutex::new(BTreeMap::new()),
        revoked: Mutex::new(Vec::new()),
        assigned: Mutex::new(Vec::new()),
        error: Mutex::new(None),
    };
    let consumer: BaseConsumer<Rebalancer> = clients::consumer(config, bootstrap, index)
        .create_with_context(context)
        .map_err(|e| format!("creating the consumer: {e}"))?;

    let app = config.application_id();
    // Each source topic, with its sub-topology and the name tasks key their queues by.
    let mut readers: BTreeMap<String, (usize, Arc<str>)> = BTreeMap::new();
    for (i, sub) in topology.subtopologies().iter().enumerate() {
        for topic in &sub.source_topics {
            let name = topology.topic_name(topic, app);
            readers.insert(name.clone(), (i, Arc::from(name)));
        }
    }
    let topics: Vec<&str> = readers.keys().map(String::as_str).collect();
    consumer
        .subscribe(&topics)
        .map_err(|e| format!("subscribing to {topics:?}: {e}"))?;

    let collector: Rc<dyn RecordCollector> = Rc::new(KafkaCollector::new(producer.clone()));
    let mut tasks: BTreeMap<TaskId, Task> = BTreeMap::new();
    let mut processed: BTreeMap<Partition, i64> = BTreeMap::new();
    let mut committed: BTreeMap<Partition, i64> = BTreeMap::new();
    let mut last_commit = Instant::now();
    let cached = topology.has_caching_stores();
    let mut factory = TaskFactory {
        index,
        topology,
        config,
        bootstrap,
        collector: collector.clone(),
        cache: CacheBudget::new(
            usize::try_from(config.statestore_cache_max_bytes()).unwrap_or(usize::MAX)
                / config.num_stream_threads().max(1),
        ),
        instance,
        shutdown,
        restorer: None,
    };

    let outcome = (|| -> Result<(), String> {
        while !shutdown.load(Ordering::Relaxed) {
            let mut batch = Vec::new();
            let mut next = consumer.poll(config.poll());
            while let Some(message) = next {
                batch.push(message.map_err(|e| format!("polling: {e}"))?);
                next = if batch.len() < MAX_POLL_RECORDS {
                    consumer.poll(Duration::ZERO)
                } else {
                    None
                };
            }
            if let Some(error) = lock(&consumer.context().error).take() {
                return Err(error);
            }
            let revoked = std::mem::take(&mut *lock(&consumer.context().revoked));
            if !revoked.is_empty() {
                let gone: BTreeSet<i32> = revoked.iter().map(|(_, p)| *p).collect();
                let mut failed = None;
                tasks.retain(|id, task| {
                    let keep = !gone.contains(&id.partition);
                    if !keep {
                        // The revocation flushed and committed: the stores are as far as
                        // their changelogs, which the checkpoint records.
                        if let Err(e) =
                            task.checkpoint(|t, p| producer.context().produced(t, p), true)
                        {
                            failed.get_or_insert(e.to_string());
                        }
                        instance.deregister(*id);
                        task.close();
                    }
                    keep
                });
                if let Some(error) = failed {
                    return Err(error);
                }
                for partition in &revoked {
                    processed.remove(partition);
                    committed.remove(partition);
                }
            }
            // As Kafka Streams: a task is made (and its stores restored) on assignment, so
            // its state is ready, and queryable, before its first record.
            let assigned = std::mem::take(&mut *lock(&consumer.context().assigned));
            let mut new_tasks: Vec<(TaskId, usize)> = Vec::new();
            for (topic, partition) in assigned {
                let Some(&(sub, _)) = readers.get(&*topic) else {
                    continue;
                };
                let id = TaskId {
                    subtopology: topology.subtopologies()[sub].id,
                    partition,
                };
                if !tasks.contains_key(&id) && !new_tasks.iter().any(|(new, _)| *new == id) {
                    new_tasks.push((id, sub));
                }
            }
            if !new_tasks.is_empty() {
                tasks.extend(factory.create(&new_tasks)?);
            }
            // A fetch gives runs of records of one partition: each run is queued at once.
            for run in
                batch.chunk_by(|a, b| a.partition() == b.partition() && a.topic() == b.topic())
            {
                let Some(first) = run.first() else {
                    continue;
                };
                let Some(&(sub, ref shared_topic)) = readers.get(first.topic()) else {
                    continue;
                };
                let id = TaskId {
                    subtopology: topology.subtopologies()[sub].id,
                    partition: first.partition(),
                };
                let task = match tasks.entry(id) {
                    Entry::Occupied(entry) => entry.into_mut(),
                    Entry::Vacant(entry) => {
                        let (_, task) = factory
                            .create(&[(id, sub)])?
                            .pop()
                            .expect("one task is made for one id");
                        entry.insert(task)
                    }
                };
                task.add_records(shared_topic, first.partition(), run.iter().map(queued));
            }
            drop(batch);
            let now = now_ms();
            for task in tasks.values_mut() {
                while let Some((topic, partition, offset)) =
                    task.process_next().map_err(|e| e.to_string())?
                {
                    processed.insert((topic, partition), offset);
                }
                task.advance_wall_clock(now).map_err(|e| e.to_string())?;
            }
            // Kept current for the rebalance callbacks, which run inside poll() and
            // unsubscribe() and commit what was processed of the partitions they revoke.
            // Records a cache holds back are not written yet: with caches, only what the
            // last commit covered may be committed there.
            if !cached {
                *lock(&consumer.context().processed) = processed.clone();
            }
            producer.poll(Duration::ZERO);
            if last_commit.elapsed() >= config.commit_interval() {
                flush_caches(&mut tasks)?;
                commit(&consumer, &producer, &processed, &mut committed)?;
                checkpoint(&mut tasks, &producer, false)?;
                *lock(&consumer.context().processed) = processed.clone();
                last_commit = Instant::now();
            }
        }
        flush_caches(&mut tasks)?;
        commit(&consumer, &producer, &processed, &mut committed)?;
        checkpoint(&mut tasks, &producer, true)
    })();
    for (id, task) in &mut tasks {
        instance.deregister(*id);
        task.close();
    }
    consumer.unsubscribe();
    outcome
}

/// Makes a stream thread's tasks: builds one, restores its stores from their changelogs,
/// then makes them queryable.
struct TaskFactory<'a> {
    index: usize,
    topology: &'a Topology,
    config: &'a StreamsConfig,
    bootstrap: &'a str,
    collector: Rc<dyn RecordCollector>,
    /// The record cache budget of this thread.
    cache: Rc<CacheBudget>,
    instance: &'a Instance,
    shutdown: &'a AtomicBool,
    /// Made when a task first has stores to restore.
    restorer: Option<BaseConsumer>,
}

impl TaskFactory<'_> {
    /// Tasks `ids` (each with its sub-topology's number), their stores restored: the
    /// changelogs of all of them are read at once.
    fn create(&mut self, ids: &[(TaskId, usize)]) -> Result<Vec<(TaskId, Task)>, String> {
        let resources = TaskResources {
            collector: &self.collector,
            state_dir: self.config.state_dir(),
            cache: &self.cache,
            rocksdb: self.instance.rocksdb.as_ref(),
        };
        let mut tasks = ids
            .iter()
            .map(|&(id, sub)| {
                let subtopology = &self.topology.subtopologies()[sub];
                Task::build(
                    id,
                    self.topology,
                    subtopology,
                    self.config,
                    &resources,
                    now_ms(),
                )
                .map_err(|e| e.to_string())
            })
            .collect::<Result<Vec<_>, _>>()?;
        // Their stores catch up with their changelogs before they process.
        if tasks.iter().any(|task| !task.logged_stores().is_empty()) {
            let restorer = match &self.restorer {
                Some(restorer) => restorer,
                None => self.restorer.insert(
                    clients::restore_consumer(self.config, self.bootstrap, self.index)
                        .create()
                        .map_err(|e| format!("creating the restore consumer: {e}"))?,
                ),
            };
            restore::restore(&mut tasks, restorer, &self.instance.metrics, self.shutdown)?;
        }
        Ok(tasks
            .into_iter()
            .map(|task| {
                self.instance.register(task.id(), task.queryable_stores());
                (task.id(), task)
            })
            .collect())
    }
}

/// Before a commit: the tasks' processors write and forward what their caches hold.
fn flush_caches(tasks: &mut BTreeMap<TaskId, Task>) -> Result<(), String> {
    for task in tasks.values_mut() {
        task.flush().map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// After a commit, the checkpoints of the tasks' stores (`force`: whether or not they moved
/// much).
fn checkpoint(
    tasks: &mut BTreeMap<TaskId, Task>,
    producer: &BaseProducer<Deliveries>,
    force: bool,
) -> Result<(), String> {
    for task in tasks.values_mut() {
        task.checkpoint(|t, p| producer.context().produced(t, p), force)
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// At-least-once commit: flush the producer, then commit what was processed since the last
/// commit.
fn commit(
    consumer: &BaseConsumer<Rebalancer>,
    producer: &BaseProducer<Deliveries>,
    processed: &BTreeMap<Partition, i64>,
    committed: &mut BTreeMap<Partition, i64>,
) -> Result<(), String> {
    flush(producer, FLUSH_TIMEOUT)?;
    let offsets = offsets_of(processed, |p| committed.get(p) != processed.get(p))?;
    if offsets.count() == 0 {
        return Ok(());
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .map_err(|e| format!("committing offsets: {e}"))?;
    committed.extend(processed.iter().map(|(p, o)| (p.clone(), *o)));
    Ok(())
}

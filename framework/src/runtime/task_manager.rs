//! `TaskManager`: the tasks of one stream thread, by topic-partition. It makes tasks when
//! their partitions are assigned (restoring their stores first), closes them when their
//! partitions go (clean: committed first; dirty: after an error, nothing committed), routes
//! fetched records to them, and owns the one commit of the thread.
//!
//! The commit, in this order and nowhere else: the processors and caches write what they
//! hold back, the producer makes every record durable, the consumed offsets are committed,
//! then the stores' checkpoints are written.

use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext};
use rdkafka::message::BorrowedMessage;

use super::clients;
use super::error::ThreadError;
use super::restore::ChangelogReader;
use super::stream_thread::{ThreadContext, describe};
use super::streams_producer::{Offsets, StreamsProducer};
use super::task::{CaughtUp, QueuedRecord, Task, TaskCounts, TaskId, TaskResources};
use crate::processor::RecordCollector;
use crate::state::{CacheBudget, StoreMetrics};

/// How long reading the committed offsets of new tasks' partitions may take.
const COMMITTED_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// A topic-partition: `(topic, partition)`.
pub(crate) type Partition = (Arc<str>, i32);

/// Which tasks a commit covers.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Scope<'s> {
    /// Every task of the thread.
    All,
    /// These tasks.
    Tasks(&'s BTreeSet<TaskId>),
}

/// The tasks of one stream thread and what they share.
pub(crate) struct TaskManager<'a> {
    /// The thread's number, topology, settings and instance.
    cx: &'a ThreadContext<'a>,
    producer: Rc<StreamsProducer>,
    /// The record cache budget of this thread.
    cache: Rc<CacheBudget>,
    /// Each source topic (its name on the broker): its sub-topology (index), and the name
    /// tasks key their queues by.
    readers: BTreeMap<String, (usize, Arc<str>)>,
    tasks: BTreeMap<TaskId, Task>,
    /// Tasks whose stores are restoring: they process nothing, and their partitions are
    /// paused, until restored.
    restoring: BTreeSet<TaskId>,
    /// The partitions paused on the consumer: of restoring tasks, and those whose task
    /// has `buffered.records.per.partition` records queued.
    paused: BTreeSet<Partition>,
    /// The counts of the tasks closed so far, for metrics.
    closed_counts: TaskCounts,
    /// Records the closed tasks dropped for a window already closed, by source topic.
    closed_late: BTreeMap<String, u64>,
    /// What the stores of the tasks closed so far were asked to do, by store.
    closed_stores: StoreFigures,
    tasks_created: u64,
    tasks_closed: u64,
    /// Made when a task first has stores to restore.
    restorer: Option<ChangelogReader>,
}

impl std::fmt::Debug for TaskManager<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TaskManager")
            .field("thread", &self.cx.index)
            .field("tasks", &self.tasks.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl<'a> TaskManager<'a> {
    /// The task manager of the stream thread `cx` describes, writing through `producer`.
    pub(crate) fn new(cx: &'a ThreadContext<'a>, producer: StreamsProducer) -> Self {
        let (topology, config) = (cx.topology, cx.config);
        let app = config.application_id();
        let mut readers = BTreeMap::new();
        for (i, sub) in topology.subtopologies().iter().enumerate() {
            for topic in &sub.source_topics {
                let name = topology.topic_name(topic, app);
                readers.insert(name.clone(), (i, Arc::from(name)));
            }
        }
        let producer = Rc::new(producer);
        let cache = CacheBudget::new(
            usize::try_from(config.statestore_cache_max_bytes()).unwrap_or(usize::MAX)
                / config.num_stream_threads().max(1),
        );
        Self {
            cx,
            producer,
            cache,
            readers,
            tasks: BTreeMap::new(),
            restoring: BTreeSet::new(),
            paused: BTreeSet::new(),
            closed_counts: TaskCounts::default(),
            closed_late: BTreeMap::new(),
            closed_stores: StoreFigures::new(),
            tasks_created: 0,
            tasks_closed: 0,
            restorer: None,
        }
    }

    /// The topics the thread's consumer subscribes to.
    pub(crate) fn source_topics(&self) -> Vec<&str> {
        self.readers.keys().map(String::as_str).collect()
    }

    /// The producer of the thread.
    pub(crate) fn producer(&self) -> &StreamsProducer {
        &self.producer
    }

    /// The task that reads `topic`'s `partition`, with the index of its sub-topology.
    fn task_of(&self, topic: &str, partition: i32) -> Option<(TaskId, usize)> {
        let &(sub, _) = self.readers.get(topic)?;
        let id = TaskId {
            subtopology: self.cx.topology.subtopologies()[sub].id,
            partition,
        };
        Some((id, sub))
    }

    /// The tasks of `partitions`.
    fn tasks_of(&self, partitions: &[Partition]) -> BTreeMap<TaskId, usize> {
        partitions
            .iter()
            .filter_map(|(topic, partition)| self.task_of(topic, *partition))
            .collect()
    }

    /// `partitions` are this thread's now (eager: all it has; cooperative: added to what it
    /// has): their new tasks are made, their stores restored.
    pub(crate) fn handle_assignment<C: ConsumerContext>(
        &mut self,
        partitions: &[Partition],
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ThreadError> {
        let assigned = self.tasks_of(partitions);
        let new: Vec<(TaskId, usize)> = assigned
            .into_iter()
            .filter(|(id, _)| !self.tasks.contains_key(id))
            .collect();
        if new.is_empty() {
            return Ok(());
        }
        let mut committed = self.committed_metadata(partitions, &new, consumer)?;
        for (id, sub) in new {
            self.create(id, sub, committed.remove(&id).unwrap_or_default())?;
        }
        self.publish_tasks();
        Ok(())
    }

    /// The metadata of the last commit of each of `partitions` that a task of `new` reads,
    /// by task, read from the group in one request (Kafka Streams reads it as a task
    /// starts): what a task starts from (see [`Task::resume_from_commit`]).
    fn committed_metadata<C: ConsumerContext>(
        &self,
        partitions: &[Partition],
        new: &[(TaskId, usize)],
        consumer: &BaseConsumer<C>,
    ) -> Result<BTreeMap<TaskId, Vec<(Partition, String)>>, ThreadError> {
        let mut list = rdkafka::TopicPartitionList::new();
        for (topic, partition) in partitions {
            if self
                .task_of(topic, *partition)
                .is_some_and(|task| new.contains(&task))
            {
                list.add_partition(topic, *partition);
            }
        }
        let committed = consumer
            .committed_offsets(list, COMMITTED_TIMEOUT)
            .map_err(|source| ThreadError::Committed {
                partitions: describe(partitions),
                source,
            })?;
        let mut by_task: BTreeMap<TaskId, Vec<(Partition, String)>> = BTreeMap::new();
        for element in committed.elements() {
            let (topic, partition) = (element.topic(), element.partition());
            if let Some((id, _)) = self.task_of(topic, partition)
                && !element.metadata().is_empty()
            {
                let metadata = element.metadata().to_string();
                by_task
                    .entry(id)
                    .or_default()
                    .push(((Arc::from(topic), partition), metadata));
            }
        }
        Ok(by_task)
    }

    /// Whether tasks are restoring their stores.
    pub(crate) fn is_restoring(&self) -> bool {
        !self.restoring.is_empty()
    }

    /// `partitions` are being taken from this thread: their tasks are committed and closed
    /// (their stores checkpointed), so that whichever thread gets them next, of this
    /// instance or another, opens them from the changelog's end.
    pub(crate) fn handle_revocation<C: ConsumerContext>(
        &mut self,
        partitions: &[Partition],
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ThreadError> {
        self.unpause(partitions, consumer);
        let revoked: BTreeSet<TaskId> = self
            .tasks_of(partitions)
            .into_keys()
            .filter(|id| self.tasks.contains_key(id))
            .collect();
        if revoked.is_empty() {
            return Ok(());
        }
        self.commit(consumer, Scope::Tasks(&revoked))?;
        let mut first_error = None;
        for id in revoked {
            if let Some(task) = self.tasks.remove(&id)
                && let Err(e) = self.close_task(id, task, true)
            {
                first_error.get_or_insert(e);
            }
        }
        self.publish_tasks();
        first_error.map_or(Ok(()), Err)
    }

    /// Resumes those of `partitions` this thread paused: librdkafka keeps an application's
    /// pause of a partition through its unassignment, so a partition paused when it goes
    /// would stay paused when it comes back.
    fn unpause<C: ConsumerContext>(
        &mut self,
        partitions: &[Partition],
        consumer: &BaseConsumer<C>,
    ) {
        let mut list = rdkafka::TopicPartitionList::new();
        for partition in partitions {
            if self.paused.remove(partition) {
                list.add_partition(&partition.0, partition.1);
            }
        }
        if list.count() > 0
            && let Err(e) = consumer.resume(&list)
        {
            tracing::warn!(
                "homa: thread {}: resuming partitions that go: {e}",
                self.cx.index
            );
        }
    }

    /// `partitions` were lost (the group went on without this member): their tasks close
    /// without a commit, which another member may already have made. Under exactly-once
    /// the thread's transaction holds the writes of its other tasks too: the membership
    /// ends ([`ThreadError::PartitionsLost`]), and every task closes dirty.
    pub(crate) fn handle_lost<C: ConsumerContext>(
        &mut self,
        partitions: &[Partition],
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ThreadError> {
        self.unpause(partitions, consumer);
        if self.cx.config.exactly_once() {
            return Err(ThreadError::PartitionsLost {
                partitions: describe(partitions),
            });
        }
        let lost: Vec<TaskId> = self.tasks_of(partitions).into_keys().collect();
        for id in lost {
            if let Some(task) = self.tasks.remove(&id) {
                tracing::warn!(
                    "homa: thread {}: task {id} lost its partitions",
                    self.cx.index
                );
                self.close_dirty(id, task);
            }
        }
        self.publish_tasks();
        Ok(())
    }

    /// Makes task `id` of sub-topology `sub`: restoring when it has changelog records to
    /// replay (it processes once they are), else initialised and queryable at once.
    fn create(
        &mut self,
        id: TaskId,
        sub: usize,
        committed: Vec<(Partition, String)>,
    ) -> Result<(), ThreadError> {
        // The tasks write through the thread's producer.
        let collector: Rc<dyn RecordCollector> = self.producer.clone();
        let globals = self.cx.instance.global_stores();
        let resources = TaskResources {
            collector: &collector,
            state_dir: self.cx.config.state_dir(),
            cache: &self.cache,
            rocksdb: self.cx.instance.rocksdb.as_ref(),
            globals: &globals,
        };
        let subtopology = &self.cx.topology.subtopologies()[sub];
        let mut task = Task::build(
            id,
            self.cx.topology,
            subtopology,
            self.cx.config,
            &resources,
            super::now_ms(),
        )?;
        for ((topic, partition), metadata) in &committed {
            task.resume_from_commit(topic, *partition, metadata);
        }
        tracing::info!("homa: thread {}: task {id} created", self.cx.index);
        self.tasks_created += 1;
        let restoring = if task.logged_stores().is_empty() {
            false
        } else {
            let reader = match &mut self.restorer {
                Some(reader) => reader,
                None => self.restorer.insert(ChangelogReader::new(
                    clients::restore_consumer(self.cx.config, self.cx.bootstrap, self.cx.index)
                        .create()
                        .map_err(|source| ThreadError::Client {
                            client: "restore consumer",
                            source,
                        })?,
                )),
            };
            reader.add(&mut task)?
        };
        if restoring {
            self.restoring.insert(id);
        } else {
            self.start_task(&mut task)?;
        }
        self.tasks.insert(id, task);
        Ok(())
    }

    /// A task whose stores are ready: its processors are initialised and its stores made
    /// queryable.
    fn start_task(&self, task: &mut Task) -> Result<(), ThreadError> {
        task.init()?;
        self.cx
            .instance
            .register(task.id(), task.queryable_stores());
        Ok(())
    }

    /// Restores for about `budget`; the tasks it finishes start processing.
    pub(crate) fn restore(&mut self, budget: std::time::Duration) -> Result<(), ThreadError> {
        let Some(reader) = &mut self.restorer else {
            return Ok(());
        };
        if self.restoring.is_empty() {
            return Ok(());
        }
        let done = reader.restore(&mut self.tasks, &self.cx.instance.metrics, budget)?;
        for id in done {
            self.restoring.remove(&id);
            if let Some(mut task) = self.tasks.remove(&id) {
                let started = self.start_task(&mut task);
                self.tasks.insert(id, task);
                started?;
                tracing::info!("homa: thread {}: task {id} restored", self.cx.index);
            }
        }
        self.publish_tasks();
        Ok(())
    }

    /// Pauses the partitions whose tasks cannot take records now (restoring, or with
    /// `buffered.records.per.partition` queued), and resumes the others.
    pub(crate) fn update_pauses<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ThreadError> {
        let max = self.cx.config.buffered_records_per_partition();
        let mut wanted = BTreeSet::new();
        for (id, task) in &self.tasks {
            if self.restoring.contains(id) {
                wanted.extend(task.input_partitions().map(|(t, p)| (t.clone(), p)));
            } else {
                wanted.extend(task.full_partitions(max).map(|(t, p)| (t.clone(), p)));
            }
        }
        if wanted == self.paused {
            return Ok(());
        }
        let list = |partitions: &mut dyn Iterator<Item = &Partition>| {
            let mut list = rdkafka::TopicPartitionList::new();
            for (topic, partition) in partitions {
                list.add_partition(topic, *partition);
            }
            list
        };
        let pause = list(&mut wanted.difference(&self.paused));
        let resume = list(&mut self.paused.difference(&wanted));
        let failed = |what| move |source| ThreadError::Rebalance { what, source };
        if pause.count() > 0 {
            consumer
                .pause(&pause)
                .map_err(failed("pausing partitions"))?;
        }
        if resume.count() > 0 {
            consumer
                .resume(&resume)
                .map_err(failed("resuming partitions"))?;
        }
        self.paused = wanted;
        Ok(())
    }

    /// Queues fetched records in their tasks. A fetch gives runs of records of one
    /// partition: each run is queued at once.
    pub(crate) fn add_records(&mut self, batch: &[BorrowedMessage<'_>]) {
        for run in batch.chunk_by(|a, b| a.partition() == b.partition() && a.topic() == b.topic()) {
            let Some(first) = run.first() else {
                continue;
            };
            let Some(&(sub, ref topic)) = self.readers.get(first.topic()) else {
                continue;
            };
            let id = TaskId {
                subtopology: self.cx.topology.subtopologies()[sub].id,
                partition: first.partition(),
            };
            // Records of a partition whose task is not here (revoked in this poll) are
            // fetched again by whoever has it, from the committed offset.
            if let Some(task) = self.tasks.get_mut(&id) {
                task.add_records(
                    topic,
                    first.partition(),
                    run.iter().map(QueuedRecord::copied_from),
                );
            }
        }
    }

    /// Processes every queued record of every task (as far as their idling lets them,
    /// told which partitions are caught up by `caught_up`), then fires the wall-clock
    /// punctuations due at `now`.
    pub(crate) fn process(&mut self, now: i64, caught_up: CaughtUp<'_>) -> Result<(), ThreadError> {
        for (id, task) in &mut self.tasks {
            if self.restoring.contains(id) {
                continue;
            }
            while task.is_processable(now, caught_up) && task.process_next()? {}
            task.advance_wall_clock(now)?;
        }
        Ok(())
    }

    /// The commit of the tasks `scope` names (of every task under exactly-once, whose one
    /// transaction holds the writes of all): their processors and caches write what they
    /// hold back, the producer makes every record durable and the consumed offsets are
    /// committed (in the transaction, which commits), the stores take the writes they held
    /// for it, then their checkpoints are written (`force`d for tasks that close).
    pub(crate) fn commit<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        scope: Scope<'_>,
    ) -> Result<(), ThreadError> {
        // A restoring task has processed nothing, and its stores are not yet written to
        // their changelogs' ends: it has nothing to commit or checkpoint.
        let restoring = &self.restoring;
        let every_task = self.cx.config.exactly_once();
        let in_scope = |id: &TaskId| {
            !restoring.contains(id)
                && match scope {
                    Scope::All => true,
                    Scope::Tasks(ids) => every_task || ids.contains(id),
                }
        };
        let mut offsets = Offsets::new();
        for (_, task) in self.tasks.iter_mut().filter(|(id, _)| in_scope(id)) {
            task.flush()?;
            for (topic, partition, next, metadata) in task.uncommitted() {
                offsets.insert((topic.clone(), partition), (next, metadata));
            }
        }
        self.producer.commit(&offsets, consumer)?;
        let shutdown = self.cx.shutdown.load(std::sync::atomic::Ordering::Relaxed);
        let closing = |id: &TaskId| match scope {
            Scope::All => shutdown,
            Scope::Tasks(ids) => shutdown || ids.contains(id),
        };
        let producer = &self.producer;
        for (id, task) in self.tasks.iter_mut().filter(|(id, _)| in_scope(id)) {
            task.mark_committed(|t, p| producer.changelog_offset(t, p))?;
            task.checkpoint(|t, p| producer.changelog_offset(t, p), closing(id))?;
        }
        if !offsets.is_empty() {
            super::crash_points::crash_at(super::crash_points::AFTER_APPLY);
        }
        self.publish_counts();
        Ok(())
    }

    /// The offsets committed for the input partitions of the tasks that process: (topic,
    /// partition, next offset to read).
    pub(crate) fn committed(&self) -> impl Iterator<Item = (&Arc<str>, i32, i64)> {
        (self.tasks.iter())
            .filter(|(id, _)| !self.restoring.contains(id))
            .flat_map(|(_, task)| task.committed())
    }

    /// Closes task `id`: its last checkpoint (`clean`: it was committed), then its
    /// processors and stores.
    fn close_task(&mut self, id: TaskId, mut task: Task, clean: bool) -> Result<(), ThreadError> {
        // A task closing while it restores keeps the checkpoint it had: the restore starts
        // over from there next time. The writer is done with its stores first.
        let mut clean = clean;
        let mut removed = Ok(());
        if self.restoring.remove(&id) {
            clean = false;
            if let Some(reader) = &mut self.restorer {
                removed = reader.remove(id);
            }
        }
        let outcome = if clean {
            let producer = &self.producer;
            task.checkpoint(|t, p| producer.changelog_offset(t, p), true)
        } else {
            Ok(())
        };
        self.cx.instance.deregister(id);
        // Its stores' figures, before they close.
        add_store_metrics(&mut self.closed_stores, &task);
        task.close();
        self.closed_counts += task.counts();
        add_late_records(&mut self.closed_late, &task);
        self.tasks_closed += 1;
        tracing::info!("homa: thread {}: task {id} closed", self.cx.index);
        removed.and(outcome.map_err(Into::into))
    }

    /// Closes task `id` after a failure: no commit, no checkpoint.
    fn close_dirty(&mut self, id: TaskId, task: Task) {
        // Only a clean close can fail.
        let _ = self.close_task(id, task, false);
    }

    /// Closes every task: `clean`, after a last commit (on shutdown); otherwise as they
    /// are, after an error. Returns the commit's error, if it failed (the tasks are then
    /// closed dirty).
    pub(crate) fn close_all<C: ConsumerContext>(
        &mut self,
        consumer: &BaseConsumer<C>,
        clean: bool,
    ) -> Result<(), ThreadError> {
        let committed = if clean {
            self.commit(consumer, Scope::All)
        } else {
            self.producer.abort();
            Ok(())
        };
        let clean = clean && committed.is_ok();
        let tasks = std::mem::take(&mut self.tasks);
        let mut first_error = committed.err();
        for (id, task) in tasks {
            if let Err(e) = self.close_task(id, task, clean) {
                first_error.get_or_insert(e);
            }
        }
        self.publish_counts();
        self.publish_tasks();
        first_error.map_or(Ok(()), Err)
    }

    /// Tells the instance which tasks this thread runs.
    fn publish_tasks(&self) {
        let metadata = super::ThreadMetadata {
            thread_name: format!(
                "{}-StreamThread-{}",
                self.cx.config.client_id(),
                self.cx.index
            ),
            active_tasks: self.tasks.keys().copied().collect(),
            assigned_partitions: self
                .tasks
                .values()
                .flat_map(|t| t.input_partitions().map(|(t, p)| (t.to_string(), p)))
                .collect(),
            restoring_tasks: self.restoring.iter().copied().collect(),
        };
        self.cx.instance.publish_tasks(self.cx.index, metadata);
    }

    /// Tells the instance what this thread's tasks processed, skipped and dropped so far.
    fn publish_counts(&self) {
        let mut tasks = self.closed_counts;
        let mut stores = self.closed_stores.clone();
        let mut late = self.closed_late.clone();
        let mut buffered = 0;
        for task in self.tasks.values() {
            tasks += task.counts();
            add_store_metrics(&mut stores, task);
            add_late_records(&mut late, task);
            buffered += task.queued() as u64;
        }
        let counts = super::instance::ThreadCounts {
            tasks,
            skipped_sends: self.producer.skipped(),
            buffered,
            tasks_created: self.tasks_created,
            tasks_closed: self.tasks_closed,
            stores,
            late,
        };
        self.cx.instance.publish(self.cx.index, counts);
    }
}

/// Adds the records `task` dropped for a window already closed to `late`, by topic.
fn add_late_records(late: &mut BTreeMap<String, u64>, task: &Task) {
    for (topic, count) in task.late_records().iter() {
        *late.entry(topic.to_string()).or_default() += count;
    }
}

/// Store figures by store name.
pub(crate) type StoreFigures = BTreeMap<String, StoreMetrics>;

/// Adds what `task`'s stores were asked to do to `figures`.
fn add_store_metrics(figures: &mut StoreFigures, task: &Task) {
    for (name, metrics) in task.store_metrics() {
        figures.entry(name.to_string()).or_default().add(&metrics);
    }
}

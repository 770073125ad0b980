//! `Task`: one sub-topology on one partition number, processing its records in timestamp
//! order across its input partitions.

use std::collections::{BTreeMap, VecDeque};
use std::fmt;
use std::rc::Rc;
use std::sync::Arc;

use rdkafka::Message;
use rdkafka::message::{BorrowedMessage, Headers as _};

use super::state_manager::{LoggedStore, StateManager, StoreContext};
use crate::config::{DeserializationHandler, ProcessingHandler, RecordingLevel, StreamsConfig};
use crate::header::Headers;
use crate::processor::commit_metadata;
use crate::processor::{
    DeserializationError, NodeHandle, OutgoingRecord, ProcessError, PunctuationType, RawRecord,
    ReadRecord, RecordCollector, RecordMetadata, SourceEntry, SourceError, TaskState,
};
use crate::topology::{Subtopology, Topology};

/// Names a task: sub-topology and partition, shown as `0_3` as in Kafka Streams.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TaskId {
    /// The sub-topology's number.
    pub subtopology: u32,
    /// The partition number of its input topics.
    pub partition: i32,
}

impl fmt::Display for TaskId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}_{}", self.subtopology, self.partition)
    }
}

/// A record read from Kafka, waiting in its partition's queue.
#[derive(Debug)]
pub(crate) struct QueuedRecord {
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) headers: Headers,
    /// The record deserialized, when its source's timestamp extractor read it already.
    pub(crate) read: Option<ReadRecord>,
}

impl QueuedRecord {
    /// A record to queue.
    pub(crate) fn new(
        offset: i64,
        timestamp: i64,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        headers: Headers,
    ) -> Self {
        Self {
            offset,
            timestamp,
            key,
            value,
            headers,
            read: None,
        }
    }

    /// A copy of `message`, which the consumer owns.
    pub(crate) fn copied_from(message: &BorrowedMessage<'_>) -> Self {
        let headers = headers_of(message);
        Self::new(
            message.offset(),
            message.timestamp().to_millis().unwrap_or(-1),
            message.key().map(<[u8]>::to_vec),
            message.payload().map(<[u8]>::to_vec),
            headers,
        )
    }

    /// The record as its source reads it.
    fn raw<'a>(&'a self, topic: &'a Arc<str>, partition: i32) -> RawRecord<'a> {
        RawRecord {
            topic,
            partition,
            offset: self.offset,
            timestamp: self.timestamp,
            key: self.key.as_deref(),
            value: self.value.as_deref(),
            headers: &self.headers,
        }
    }
}

/// Why a task stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TaskError {
    /// A record could not be deserialized and the handler is log-and-fail.
    #[error(
        "task {task}: {source} (set deserialization.exception.handler=log_and_continue to skip \
         such records, and errors.dead.letter.queue.topic.name to keep them)"
    )]
    Deserialization {
        /// The task.
        task: TaskId,
        /// Which record, and why.
        #[source]
        source: Box<DeserializationError>,
    },
    /// A processor failed on a record, or in `init`, a punctuation or a flush.
    #[error("task {task}: processing {at} failed: {source}")]
    Process {
        /// The task.
        task: TaskId,
        /// The record, or the init, punctuation or flush that failed.
        at: Location,
        /// The processor's error.
        #[source]
        source: ProcessError,
    },
    /// A state store of the task failed.
    #[error("task {task}: {source}")]
    Store {
        /// The task.
        task: TaskId,
        /// What failed.
        #[source]
        source: crate::state::StoreError,
    },
}

/// Where in a task a processor failed.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Location {
    /// While processing the record read at these coordinates.
    Record(RecordMetadata),
    /// In the `init` of processor `node`.
    Init {
        /// The processor.
        node: String,
    },
    /// In a punctuation of processor `node` at `timestamp`.
    Punctuation {
        /// The processor.
        node: String,
        /// The punctuation's time.
        timestamp: i64,
    },
    /// In the flush of processor `node` before a commit.
    Flush {
        /// The processor.
        node: String,
    },
    /// Writing the record read at these coordinates to the dead-letter topic.
    DeadLetter {
        /// The record.
        record: RecordMetadata,
        /// The dead-letter topic.
        topic: String,
    },
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Record(at) => write!(f, "{at}"),
            Self::Init { node } => write!(f, "init of {node}"),
            Self::Punctuation { node, timestamp } => {
                write!(f, "punctuation of {node} at {timestamp}")
            }
            Self::Flush { node } => write!(f, "flush of {node}"),
            Self::DeadLetter { record, topic } => write!(f, "dead-lettering {record} to {topic}"),
        }
    }
}

/// What the task has skipped, for metrics and logs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) struct TaskCounts {
    pub(crate) processed: u64,
    /// Records dropped by log-and-continue after a deserialization error.
    pub(crate) skipped_deserialization: u64,
    /// Records dropped for a negative timestamp.
    pub(crate) skipped_timestamp: u64,
    /// Records a processor failed on, skipped by log-and-continue.
    pub(crate) skipped_processing: u64,
    /// Records an operator could not pass on (e.g. a tombstone reaching `map`).
    pub(crate) dropped: u64,
}

impl std::ops::AddAssign for TaskCounts {
    fn add_assign(&mut self, other: Self) {
        self.processed += other.processed;
        self.skipped_deserialization += other.skipped_deserialization;
        self.skipped_timestamp += other.skipped_timestamp;
        self.skipped_processing += other.skipped_processing;
        self.dropped += other.dropped;
    }
}

impl TaskCounts {
    /// Records skipped for an error: unreadable, with a negative timestamp, or failed.
    pub(crate) fn skipped(&self) -> u64 {
        self.skipped_deserialization + self.skipped_timestamp + self.skipped_processing
    }
}

/// One sub-topology on one partition number.
pub(crate) struct Task {
    id: TaskId,
    state: Rc<TaskState>,
    /// The source entered for each input topic.
    sources: BTreeMap<Arc<str>, Rc<dyn SourceEntry>>,
    /// Records fetched but not processed, per input partition, in (topic, partition) order.
    /// A task has a handful of input partitions: a search of this short list costs less per
    /// record than hashing or comparing topic names in a map.
    queues: Vec<PartitionQueue>,
    /// The processor nodes, in graph order, for init, punctuation and close.
    nodes: Vec<(usize, Rc<dyn NodeHandle>)>,
    handler: DeserializationHandler,
    processing: ProcessingHandler,
    /// Where records that fail to deserialize go first, when set.
    dead_letter_topic: Option<Arc<str>>,
    collector: Rc<dyn RecordCollector>,
    counts: TaskCounts,
    /// `max.task.idle.ms`: how long an empty input partition holds back the others.
    max_idle: i64,
    /// The task's stores on disk: directory, changelogs, checkpoint.
    state_manager: StateManager,
}

/// What a stream thread (or the test driver) gives each task it makes.
pub(crate) struct TaskResources<'a> {
    /// Where the task's records go.
    pub(crate) collector: &'a Rc<dyn RecordCollector>,
    /// `<state.dir>`: the task's directory is `<state.dir>/<application.id>/<task>`.
    pub(crate) state_dir: &'a std::path::Path,
    /// The record cache budget of the thread.
    pub(crate) cache: &'a Rc<crate::state::CacheBudget>,
    /// The memory the instance's RocksDB stores share, if bounded.
    pub(crate) rocksdb: Option<&'a crate::state::RocksDbMemory>,
    /// The instance's global tables' stores, which the task reads.
    pub(crate) globals: &'a crate::processor::GlobalStores,
}

/// How a task treats records it cannot read.
#[derive(Clone)]
pub(crate) struct ErrorPolicy {
    pub(crate) handler: DeserializationHandler,
    pub(crate) processing: ProcessingHandler,
    pub(crate) dead_letter_topic: Option<Arc<str>>,
    /// Takes dead-lettered records (the task's record collector).
    pub(crate) collector: Rc<dyn RecordCollector>,
}

/// The headers of a dead-lettered record, as Kafka Streams names them (KIP-1034).
pub(crate) mod dlq_headers {
    pub(crate) const EXCEPTION: &str = "__streams.errors.exception";
    pub(crate) const MESSAGE: &str = "__streams.errors.message";
    pub(crate) const TOPIC: &str = "__streams.errors.topic";
    pub(crate) const PARTITION: &str = "__streams.errors.partition";
    pub(crate) const OFFSET: &str = "__streams.errors.offset";
    pub(crate) const NODE: &str = "__streams.errors.processor.node.id";
}

/// How long an empty input partition whose records are on the broker, not yet fetched,
/// holds back the task's other partitions at most, in ms (Kafka Streams waits as long as
/// it takes; records processed out of order are the price of going on).
const FETCH_WAIT_MS: i64 = 30_000;

/// Whether an input partition is caught up: `(topic, partition, next offset to read (-1:
/// none read yet))`, true when the broker holds no record past it (as far as known).
pub(crate) type CaughtUp<'a> = &'a dyn Fn(&str, i32, i64) -> bool;

/// The headers of `message`, copied.
pub(crate) fn headers_of(message: &BorrowedMessage<'_>) -> Headers {
    let mut headers = Headers::new();
    if let Some(borrowed) = message.headers() {
        for h in borrowed.iter() {
            match h.value {
                Some(value) => headers.add(h.key, value),
                None => headers.add_null(h.key),
            };
        }
    }
    headers
}

/// The records of one input partition of a task that wait to be processed.
struct PartitionQueue {
    topic: Arc<str>,
    partition: i32,
    /// The source node of `topic`.
    source: Option<Rc<dyn SourceEntry>>,
    /// The largest timestamp queued so far, for timestamp extractors.
    partition_time: i64,
    /// The largest timestamp processed so far: the partition time a commit keeps.
    processed_time: i64,
    records: VecDeque<QueuedRecord>,
    /// The next offset to read after the records processed so far (-1: none processed).
    consumed: i64,
    /// `consumed` as of the last commit.
    committed: i64,
    /// While the queue is empty and others are not: until when it holds them back.
    idle_deadline: Option<i64>,
    /// While the queue is empty, with records on the broker not yet here: until when it
    /// waits for them.
    fetch_deadline: Option<i64>,
}

impl PartitionQueue {
    fn new(topic: Arc<str>, partition: i32, source: Option<Rc<dyn SourceEntry>>) -> Self {
        Self {
            topic,
            partition,
            source,
            partition_time: -1,
            processed_time: -1,
            records: VecDeque::new(),
            consumed: -1,
            committed: -1,
            idle_deadline: None,
            fetch_deadline: None,
        }
    }
}

impl fmt::Debug for Task {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Task")
            .field("id", &self.id)
            .field("queued", &self.queued())
            .field("counts", &self.counts)
            .finish_non_exhaustive()
    }
}

impl Task {
    pub(crate) fn new(
        id: TaskId,
        state: Rc<TaskState>,
        sources: BTreeMap<Arc<str>, Rc<dyn SourceEntry>>,
        nodes: Vec<(usize, Rc<dyn NodeHandle>)>,
        policy: ErrorPolicy,
    ) -> Self {
        let queues = sources
            .iter()
            .map(|(topic, source)| {
                PartitionQueue::new(topic.clone(), id.partition, Some(source.clone()))
            })
            .collect();
        Self {
            id,
            state,
            sources,
            queues,
            nodes,
            handler: policy.handler,
            processing: policy.processing,
            dead_letter_topic: policy.dead_letter_topic,
            collector: policy.collector,
            counts: TaskCounts::default(),
            max_idle: 0,
            state_manager: StateManager::default(),
        }
    }

    /// Builds task `id` of `sub`, with `config`'s error handling, writing to `collector`,
    /// its wall clock at `wall_clock` (ms since the epoch), its stores opened under
    /// `state_dir`. The runtime and the test driver make their tasks this way, and call
    /// [`init`](Self::init) once the stores are restored.
    pub(crate) fn build(
        id: TaskId,
        topology: &Topology,
        sub: &Subtopology,
        config: &StreamsConfig,
        resources: &TaskResources<'_>,
        wall_clock: i64,
    ) -> Result<Self, TaskError> {
        let collector = resources.collector;
        let state = Rc::new(TaskState::new(
            Arc::from(config.application_id()),
            wall_clock,
        ));
        let millis =
            |interval: std::time::Duration| i64::try_from(interval.as_millis()).unwrap_or(i64::MAX);
        state.partition.set(id.partition);
        state.globals.borrow_mut().clone_from(resources.globals);
        (state.emit_interval_ms).set(millis(config.emit_interval_windowed_aggregation()));
        (state.outer_join_emit_interval_ms).set(millis(config.emit_interval_outer_join()));
        let store_error = |source| TaskError::Store { task: id, source };
        let stores = StoreContext {
            state_dir: resources.state_dir,
            application_id: config.application_id(),
            rocksdb: resources.rocksdb,
            sink: Rc::new(crate::processor::CollectorSink(collector.clone())),
            record_timestamp: state.record_timestamp.clone(),
            cache: resources.cache.clone(),
            timed: config.metrics_recording_level() >= RecordingLevel::Debug,
            exactly_once: config.exactly_once(),
        };
        let (state_manager, open) =
            StateManager::open(id, topology, sub, &stores).map_err(store_error)?;
        *state.stores.borrow_mut() = open;
        let (sources, nodes) = topology.instantiate(sub, state.clone(), collector.clone());
        let policy = ErrorPolicy {
            handler: config.deserialization_handler(),
            processing: config.processing_handler(),
            dead_letter_topic: config.dead_letter_queue_topic().map(Arc::from),
            collector: collector.clone(),
        };
        let mut task = Self::new(id, state, sources, nodes, policy);
        task.state_manager = state_manager;
        task.max_idle = i64::try_from(config.max_task_idle().as_millis()).unwrap_or(i64::MAX);
        Ok(task)
    }

    /// Calls `init` on every processor, in graph order.
    pub(crate) fn init(&mut self) -> Result<(), TaskError> {
        for (_, node) in &self.nodes {
            node.init().map_err(|source| TaskError::Process {
                task: self.id,
                at: Location::Init {
                    node: node.name().to_string(),
                },
                source,
            })?;
        }
        Ok(())
    }

    /// Queues records fetched from `topic`/`partition`, in offset order.
    pub(crate) fn add_records(
        &mut self,
        topic: &Arc<str>,
        partition: i32,
        records: impl IntoIterator<Item = QueuedRecord>,
    ) {
        let queue = self.queue(topic, partition);
        for mut record in records {
            if let Some(source) = &queue.source {
                // The timestamp that orders the record is the extractor's, as in Kafka
                // Streams, given the partition time (the largest timestamp seen before).
                (record.timestamp, record.read) =
                    source.timestamp(record.raw(topic, partition), queue.partition_time);
                queue.partition_time = queue.partition_time.max(record.timestamp);
            }
            queue.records.push_back(record);
        }
    }

    /// The queue of `topic`/`partition`, made if it has none yet.
    fn queue(&mut self, topic: &Arc<str>, partition: i32) -> &mut PartitionQueue {
        let index = match self
            .queues
            .binary_search_by(|q| (&*q.topic, q.partition).cmp(&(&**topic, partition)))
        {
            Ok(index) => index,
            Err(index) => {
                let source = self.sources.get(topic).cloned();
                let queue = PartitionQueue::new(topic.clone(), partition, source);
                self.queues.insert(index, queue);
                index
            }
        };
        &mut self.queues[index]
    }

    /// Takes what the last commit of input partition `topic`/`partition` kept with its
    /// offset (`metadata`, Kafka Streams' encoding): the partition's time, which the task's
    /// stream time starts from, and the processors' values, before the processors start.
    /// Metadata this cannot read is left out, with a warning, as Kafka Streams does.
    pub(crate) fn resume_from_commit(&mut self, topic: &Arc<str>, partition: i32, metadata: &str) {
        let (time, processors) = match commit_metadata::decode(metadata) {
            Ok(decoded) => decoded,
            Err(problem) => {
                tracing::warn!(
                    "homa: task {}: the committed offset of {topic}/{partition} has metadata \
                     that is left out: {problem}",
                    self.id
                );
                return;
            }
        };
        let queue = self.queue(topic, partition);
        queue.partition_time = queue.partition_time.max(time);
        queue.processed_time = queue.processed_time.max(time);
        let stream_time = &self.state.stream_time;
        stream_time.set(stream_time.get().max(time));
        self.state
            .processor_metadata
            .borrow_mut()
            .merge(&processors);
    }

    /// The store `name` of this task, if it has one.
    #[cfg_attr(not(feature = "test-utils"), allow(dead_code))]
    pub(crate) fn store(&self, name: &str) -> Option<crate::processor::OpenStore> {
        self.state.stores.borrow().get(name).cloned()
    }

    /// Records queued and not yet processed.
    pub(crate) fn queued(&self) -> usize {
        self.queues.iter().map(|q| q.records.len()).sum()
    }

    /// What the task processed, skipped and dropped so far.
    pub(crate) fn counts(&self) -> TaskCounts {
        TaskCounts {
            dropped: self.state.dropped.get(),
            ..self.counts
        }
    }

    /// The records dropped for a window already closed, by the topic they were read from.
    pub(crate) fn late_records(&self) -> std::cell::Ref<'_, BTreeMap<Arc<str>, u64>> {
        self.state.late.borrow()
    }

    /// What each of the task's stores has been asked to do, by store name.
    pub(crate) fn store_metrics(&self) -> Vec<(Arc<str>, crate::state::StoreMetrics)> {
        self.state
            .stores
            .borrow()
            .iter()
            .map(|(name, open)| (name.clone(), open.layers.metrics()))
            .collect()
    }

    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) fn stream_time(&self) -> i64 {
        self.state.stream_time.get()
    }

    /// Whether the task may process its next record at wall-clock time `now`: it has one,
    /// and no input partition is empty, or each empty one is caught up (`caught_up(topic,
    /// partition, consumed)`: no record on the broker past the next offset to read, as far
    /// as the consumer knows) and has been empty (while others were not) for
    /// `max.task.idle.ms`, so that records of co-partitioned topics are processed in
    /// timestamp order (Kafka Streams' task idling). An empty partition with records on the
    /// broker, or whose end is not known yet, holds the others back until they come.
    pub(crate) fn is_processable(&mut self, now: i64, caught_up: CaughtUp<'_>) -> bool {
        if self.queues.iter().all(|q| q.records.is_empty()) {
            return false;
        }
        let mut ready = true;
        for queue in &mut self.queues {
            if !queue.records.is_empty() {
                (queue.idle_deadline, queue.fetch_deadline) = (None, None);
                continue;
            }
            if !caught_up(&queue.topic, queue.partition, queue.consumed) {
                // Its records are to be fetched first: the idle time starts once they are.
                // Should they not come (the broker unreachable), the others wait no longer
                // than FETCH_WAIT_MS, then the idle time (started once, not again).
                let deadline = *queue
                    .fetch_deadline
                    .get_or_insert(now.saturating_add(FETCH_WAIT_MS));
                if now < deadline {
                    queue.idle_deadline = None;
                    ready = false;
                    continue;
                }
            }
            let deadline = *queue
                .idle_deadline
                .get_or_insert(now.saturating_add(self.max_idle));
            if now < deadline {
                ready = false;
            }
        }
        ready
    }

    /// Processes the queued record with the smallest timestamp across the task's
    /// partitions (ties to the first partition), then fires the stream-time punctuations it
    /// made due. Returns whether there was a record to process.
    pub(crate) fn process_next(&mut self) -> Result<bool, TaskError> {
        let Some(index) = self
            .queues
            .iter()
            .enumerate()
            .filter_map(|(i, q)| q.records.front().map(|r| (i, r.timestamp)))
            .min_by_key(|&(_, timestamp)| timestamp)
            .map(|(i, _)| i)
        else {
            return Ok(false);
        };
        let queue = &mut self.queues[index];
        let Some(mut record) = queue.records.pop_front() else {
            return Ok(false);
        };
        queue.consumed = record.offset + 1;
        queue.processed_time = queue.processed_time.max(record.timestamp);
        let partition = queue.partition;
        if record.timestamp < 0 {
            // As Kafka Streams: a record without a valid timestamp cannot be ordered.
            self.counts.skipped_timestamp += 1;
            tracing::warn!(
                "homa: task {}: skipping {}/{partition}@{} with negative timestamp {}",
                self.id,
                queue.topic,
                record.offset,
                record.timestamp
            );
            return Ok(true);
        }
        let source = queue
            .source
            .clone()
            .expect("a task is only given records of its own source topics");
        if record.timestamp > self.state.stream_time.get() {
            self.state.stream_time.set(record.timestamp);
        }
        let topic = &self.queues[index].topic;
        let read = record.read.take();
        match source.process_raw(record.raw(topic, partition), read) {
            Ok(()) => self.counts.processed += 1,
            Err(SourceError::Deserialization(e)) => {
                let at = e.metadata.clone();
                self.dead_letter(
                    &at,
                    &record,
                    "DeserializationError",
                    &e.to_string(),
                    &e.node,
                )?;
                match self.handler {
                    DeserializationHandler::LogAndContinue => {
                        self.counts.skipped_deserialization += 1;
                        tracing::warn!("homa: task {}: skipping a record: {e}", self.id);
                    }
                    DeserializationHandler::LogAndFail => {
                        return Err(TaskError::Deserialization {
                            task: self.id,
                            source: Box::new(e),
                        });
                    }
                }
            }
            Err(SourceError::Process(error)) => {
                let at = RecordMetadata {
                    topic: topic.clone(),
                    partition,
                    offset: record.offset,
                };
                if self.processing == ProcessingHandler::LogAndFail {
                    return Err(TaskError::Process {
                        task: self.id,
                        at: Location::Record(at),
                        source: error,
                    });
                }
                let node = crate::processor::failed_node(&*error).unwrap_or_else(|| source.name());
                self.dead_letter(&at, &record, "ProcessError", &error.to_string(), &node)?;
                self.counts.skipped_processing += 1;
                tracing::warn!(
                    "homa: task {}: skipping {at}: processor {node} failed: {error}",
                    self.id
                );
            }
        }
        *self.state.metadata.borrow_mut() = None;
        let now = self.state.stream_time.get();
        self.punctuate(PunctuationType::StreamTime, now)?;
        Ok(true)
    }

    /// Writes a record that failed (`exception`, `message`, in `node`), as read, to the
    /// dead-letter topic if one is set, with the error and its coordinates in headers
    /// (Kafka Streams' names, KIP-1034).
    fn dead_letter(
        &self,
        at: &RecordMetadata,
        record: &QueuedRecord,
        exception: &str,
        message: &str,
        node: &str,
    ) -> Result<(), TaskError> {
        let Some(topic) = &self.dead_letter_topic else {
            return Ok(());
        };
        let mut headers = record.headers.clone();
        headers
            .add(dlq_headers::EXCEPTION, exception)
            .add(dlq_headers::MESSAGE, message)
            .add(dlq_headers::TOPIC, &*at.topic)
            .add(dlq_headers::PARTITION, at.partition.to_string())
            .add(dlq_headers::OFFSET, at.offset.to_string())
            .add(dlq_headers::NODE, node);
        let sent = self.collector.send(OutgoingRecord {
            topic,
            partition: None,
            key: record.key.as_deref(),
            value: record.value.as_deref(),
            timestamp: record.timestamp,
            headers: &headers,
            node,
        });
        sent.map_err(|source| TaskError::Process {
            task: self.id,
            at: Location::DeadLetter {
                record: at.clone(),
                topic: topic.to_string(),
            },
            source,
        })
    }

    /// The input partitions of the task: each source topic on the task's partition.
    pub(crate) fn input_partitions(&self) -> impl Iterator<Item = (&Arc<str>, i32)> {
        self.sources
            .keys()
            .map(move |topic| (topic, self.id.partition))
    }

    /// The input partitions with at least `max` records queued.
    pub(crate) fn full_partitions(&self, max: usize) -> impl Iterator<Item = (&Arc<str>, i32)> {
        self.queues
            .iter()
            .filter(move |q| q.records.len() >= max)
            .map(|q| (&q.topic, q.partition))
    }

    /// The offsets to commit of the partitions processed since the last commit (of every
    /// partition processed, when the processors' values changed, as Kafka Streams does):
    /// `(topic, partition, next offset to read, metadata)`, the metadata the partition's
    /// time and the processors' values (see [`commit_metadata`]).
    pub(crate) fn uncommitted(&self) -> impl Iterator<Item = (&Arc<str>, i32, i64, String)> {
        let processors = self.state.processor_metadata.borrow();
        let changed = processors.changed();
        let offsets: Vec<_> = self
            .queues
            .iter()
            .filter(|q| q.consumed > q.committed || (changed && q.consumed >= 0))
            .map(|q| {
                let metadata = commit_metadata::encode(q.processed_time, &processors);
                (&q.topic, q.partition, q.consumed, metadata)
            })
            .collect();
        offsets.into_iter()
    }

    /// The offsets committed for its input partitions: (topic, partition, next offset to
    /// read), for those it has committed.
    pub(crate) fn committed(&self) -> impl Iterator<Item = (&Arc<str>, i32, i64)> {
        (self.queues.iter())
            .filter(|q| q.committed >= 0)
            .map(|q| (&q.topic, q.partition, q.committed))
    }

    /// Records that the offsets [`uncommitted`](Self::uncommitted) gave are committed, and
    /// (under exactly-once) with them the writes the stores held back for the transaction
    /// (`produced` gives the last offset written to a changelog partition).
    pub(crate) fn mark_committed(
        &mut self,
        produced: impl Fn(&str, i32) -> Option<i64>,
    ) -> Result<(), TaskError> {
        for queue in &mut self.queues {
            queue.committed = queue.consumed;
        }
        self.state.processor_metadata.borrow_mut().committed();
        let task = self.id;
        self.state_manager
            .apply_transaction(produced)
            .map_err(|source| TaskError::Store { task, source })
    }

    /// Advances the wall clock to `now` and fires the wall-clock punctuations due.
    pub(crate) fn advance_wall_clock(&mut self, now: i64) -> Result<(), TaskError> {
        self.state.wall_clock.set(now);
        self.punctuate(PunctuationType::WallClockTime, now)
    }

    fn punctuate(&mut self, kind: PunctuationType, now: i64) -> Result<(), TaskError> {
        let due = self.state.scheduler.borrow_mut().due(kind, now);
        for (node_index, schedule, timestamp) in due {
            let Some((_, node)) = self.nodes.iter().find(|(i, _)| *i == node_index) else {
                continue;
            };
            let outcome = node.punctuate(schedule, timestamp);
            if let Err(source) = outcome {
                let node = node.name().to_string();
                if self.processing == ProcessingHandler::LogAndContinue {
                    self.counts.skipped_processing += 1;
                    tracing::warn!(
                        "homa: task {}: punctuation of {node} at {timestamp} failed, going on: \
                         {source}",
                        self.id
                    );
                    continue;
                }
                return Err(TaskError::Process {
                    task: self.id,
                    at: Location::Punctuation { node, timestamp },
                    source,
                });
            }
        }
        Ok(())
    }

    /// Before a commit: every processor writes and forwards what it holds back (record
    /// caches), parents before children.
    pub(crate) fn flush(&mut self) -> Result<(), TaskError> {
        for (_, node) in &self.nodes {
            node.flush().map_err(|source| TaskError::Process {
                task: self.id,
                at: Location::Flush {
                    node: node.name().to_string(),
                },
                source,
            })?;
        }
        Ok(())
    }

    /// The task's id.
    pub(crate) fn id(&self) -> TaskId {
        self.id
    }

    /// The task's logged stores, with where their restore starts.
    pub(crate) fn logged_stores(&self) -> Vec<LoggedStore> {
        self.state_manager
            .logged_stores(&self.state.stores.borrow())
    }

    /// The task's stores, as queries reach them.
    pub(crate) fn queryable_stores(&self) -> Vec<(Arc<str>, super::instance::QueryableStore)> {
        self.state
            .stores
            .borrow()
            .iter()
            .map(|(name, open)| {
                let store = super::instance::QueryableStore {
                    bytes: open.read_view(),
                    def: open.def.clone(),
                    changelog: open.changelog.clone(),
                };
                (name.clone(), store)
            })
            .collect()
    }

    /// Records that the store logged to `changelog` reflects it up to `next` (exclusive).
    pub(crate) fn set_restored(&mut self, changelog: Arc<str>, next: i64) {
        self.state_manager.set_restored(changelog, next);
    }

    /// After a commit: the checkpoint of the task's stores (see
    /// [`StateManager::checkpoint`]).
    pub(crate) fn checkpoint(
        &mut self,
        produced: impl Fn(&str, i32) -> Option<i64>,
        force: bool,
    ) -> Result<(), TaskError> {
        let task = self.id;
        self.state_manager
            .checkpoint(&self.state.stores.borrow(), produced, force)
            .map_err(|source| TaskError::Store { task, source })
    }

    /// Calls `close` on every processor and closes the task's stores.
    pub(crate) fn close(&mut self) {
        for (_, node) in &self.nodes {
            node.close();
        }
        // The stores close when the last handle goes: the processors' go with the task.
        for store in self.state.stores.borrow().values() {
            crate::state::StateStore::close(&*store.layers.bytes);
        }
        self.state.stores.borrow_mut().clear();
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::processor::{
        OutgoingRecord, Processor, ProcessorContext, Record, RecordCollector, ScheduleId,
    };
    use crate::serde::DefaultSerde;
    use crate::topology::graph::{Graph, NodeKind, RecordType};
    use crate::topology::task_builder::{TaskBuilder, processor_build, source_build};

    /// Writes "value@timestamp (stream time, topic)" for each record, and "tick@t" on each
    /// stream-time punctuation every 10 ms, to a shared log.
    struct Log(Arc<std::sync::Mutex<Vec<String>>>);

    impl Processor<String, i32, (), ()> for Log {
        fn init(&mut self, ctx: &mut ProcessorContext<(), ()>) -> Result<(), ProcessError> {
            ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime);
            Ok(())
        }

        fn process(
            &mut self,
            r: Record<String, i32>,
            ctx: &mut ProcessorContext<(), ()>,
        ) -> Result<(), ProcessError> {
            let topic = ctx.record_metadata().map(|m| m.topic).unwrap_or_default();
            if r.value == Some(-1) {
                return Err("minus one".into());
            }
            let line = format!(
                "{}@{} ({}, {topic})",
                r.value.unwrap_or(0),
                r.timestamp,
                ctx.stream_time()
            );
            self.0.lock().unwrap().push(line);
            Ok(())
        }

        fn punctuate(
            &mut self,
            _: ScheduleId,
            t: i64,
            _: &mut ProcessorContext<(), ()>,
        ) -> Result<(), ProcessError> {
            self.0.lock().unwrap().push(format!("tick@{t}"));
            Ok(())
        }
    }

    struct NoOutput;

    impl RecordCollector for NoOutput {
        fn send(&self, _: OutgoingRecord<'_>) -> Result<(), ProcessError> {
            Err("this topology has no sinks".into())
        }
    }

    fn new_task(handler: DeserializationHandler) -> (Task, Arc<std::sync::Mutex<Vec<String>>>) {
        let log = Arc::new(std::sync::Mutex::new(Vec::new()));
        let mut graph = Graph::default();
        let ints = Some(RecordType::of::<String, i32>());
        let mut sources = Vec::new();
        for topic in ["a", "b"] {
            let build = source_build(String::default_serde(), i32::default_serde(), None);
            let kind = NodeKind::Source {
                topics: vec![topic.into()],
            };
            sources.push((
                topic,
                graph
                    .add(&format!("source-{topic}"), kind, &[], None, ints, build)
                    .unwrap(),
            ));
        }
        let shared = log.clone();
        let build = processor_build(Arc::new(move || Log(shared.clone())));
        let parents: Vec<_> = sources.iter().map(|(_, id)| *id).collect();
        graph
            .add(
                "log",
                NodeKind::Processor,
                &parents,
                ints,
                Some(RecordType::of::<(), ()>()),
                build,
            )
            .unwrap();
        graph.validate().unwrap();

        let state = Rc::new(TaskState::new("app".into(), 0));
        let mut builder = TaskBuilder::new(&graph, state.clone(), Rc::new(NoOutput));
        let entries = sources
            .iter()
            .map(|(topic, id)| (Arc::from(*topic), builder.source(*id)))
            .collect();
        let nodes = builder
            .into_handles()
            .into_iter()
            .map(|(id, h)| (id.0, h))
            .collect();
        let id = TaskId {
            subtopology: 0,
            partition: 1,
        };
        let policy = ErrorPolicy {
            handler,
            processing: ProcessingHandler::LogAndFail,
            dead_letter_topic: None,
            collector: Rc::new(NoOutput),
        };
        (Task::new(id, state, entries, nodes, policy), log)
    }

    fn record(offset: i64, timestamp: i64, value: &[u8]) -> QueuedRecord {
        QueuedRecord::new(
            offset,
            timestamp,
            Some(b"k".to_vec()),
            Some(value.to_vec()),
            Headers::new(),
        )
    }

    fn int(offset: i64, timestamp: i64, value: i32) -> QueuedRecord {
        record(offset, timestamp, &value.to_be_bytes())
    }

    fn drain(task: &mut Task) -> Result<(), TaskError> {
        while task.process_next()? {}
        Ok(())
    }

    #[test]
    fn a_partition_whose_fetch_wait_ran_out_idles_once_then_lets_the_others_go() {
        let (mut task, _) = new_task(DeserializationHandler::LogAndFail);
        task.max_idle = 100;
        let (a, b): (Arc<str>, Arc<str>) = (Arc::from("a"), Arc::from("b"));
        task.add_records(&b, 1, [int(0, 1, 1)]);
        drain(&mut task).unwrap();
        task.add_records(&a, 1, [int(0, 5, 2)]);
        // `b` is empty, its records on the broker never fetched.
        let behind: CaughtUp<'_> = &|_, _, _| false;
        assert!(!task.is_processable(0, behind));
        assert!(!task.is_processable(FETCH_WAIT_MS - 1, behind));
        assert!(!task.is_processable(FETCH_WAIT_MS, behind), "then idles");
        assert!(!task.is_processable(FETCH_WAIT_MS + 99, behind));
        assert!(task.is_processable(FETCH_WAIT_MS + 100, behind));
    }

    #[test]
    fn records_are_processed_in_timestamp_order_across_partitions() {
        let (mut task, log) = new_task(DeserializationHandler::LogAndFail);
        task.init().unwrap();
        let (a, b): (Arc<str>, Arc<str>) = ("a".into(), "b".into());
        task.add_records(&a, 1, [int(0, 5, 1), int(1, 12, 3), int(2, 30, 5)]);
        task.add_records(&b, 1, [int(0, 8, 2), int(1, 3, 4)]);
        drain(&mut task).unwrap();
        let expected = [
            "1@5 (5, a)",
            "tick@5",
            "2@8 (8, b)",
            // b's next record is older than stream time: processed next, stream time stays.
            "4@3 (8, b)",
            "3@12 (12, a)",
            "tick@12",
            "5@30 (30, a)",
            "tick@30",
        ];
        assert_eq!(*log.lock().unwrap(), expected);
        assert_eq!(task.stream_time(), 30);
        assert_eq!(task.counts().processed, 5);
    }

    #[test]
    fn bad_records_fail_or_are_skipped_and_counted_as_the_handler_says() {
        let (mut task, _) = new_task(DeserializationHandler::LogAndFail);
        let a: Arc<str> = "a".into();
        task.add_records(&a, 1, [record(7, 1, b"xy")]);
        let err = task.process_next().unwrap_err().to_string();
        assert_eq!(
            err,
            "task 0_1: source source-a: cannot deserialize the value of a/1@7: i32 (big-endian): \
             2 bytes, expected 4 (set deserialization.exception.handler=log_and_continue to skip \
             such records, and errors.dead.letter.queue.topic.name to keep them)"
        );

        let (mut task, log) = new_task(DeserializationHandler::LogAndContinue);
        task.add_records(&a, 1, [record(7, 1, b"xy"), int(8, 2, 9), int(9, -1, 10)]);
        drain(&mut task).unwrap();
        assert_eq!(*log.lock().unwrap(), ["9@2 (2, a)"]);
        let counts = task.counts();
        assert_eq!(
            (
                counts.processed,
                counts.skipped_deserialization,
                counts.skipped_timestamp
            ),
            (1, 1, 1)
        );
    }

    #[test]
    fn processor_errors_name_the_record_and_the_wall_clock_fires_no_stream_time_schedule() {
        let (mut task, log) = new_task(DeserializationHandler::LogAndFail);
        task.init().unwrap();
        let b: Arc<str> = "b".into();
        task.add_records(&b, 1, [int(4, 1, -1)]);
        let err = task.process_next().unwrap_err().to_string();
        assert_eq!(err, "task 0_1: processing b/1@4 failed: minus one");
        task.advance_wall_clock(1_000).unwrap();
        assert!(log.lock().unwrap().is_empty(), "{:?}", log.lock().unwrap());
    }
}

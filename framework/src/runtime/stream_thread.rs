//! A stream thread: one consumer and one producer on a plain OS thread, running the tasks
//! of the partitions assigned to it in a synchronous loop: poll, hand rebalances to the
//! task manager, process, commit every `commit.interval.ms`.
//!
//! Rebalances are reported inside `poll` by the consumer's context, which only records
//! them: librdkafka waits (the assigned partitions paused, heartbeats going on) until the
//! thread, back from `poll`, has committed or made the tasks concerned and completes the
//! rebalance with `assign`/`unassign` (their incremental forms under the cooperative
//! protocol). So the revocation commits through the one commit of the task manager, with
//! the tasks at hand, before the partitions move.
//!
//! The consumer's statistics (every 100 ms, when a sub-topology reads several topics)
//! tell where each partition's fetch stands against the broker's end, so that a task
//! waits for records it knows to be on the broker before it processes its other
//! partitions' (Kafka Streams' task idling with a known lag).
//!
//! After a commit, the records of the repartition topics it reads are deleted up to the
//! committed offsets, every `repartition.purge.interval.ms` (see `purge`).
//!
//! Under exactly-once, an error that means the thread's tasks may have moved to another
//! member, or its producer was fenced (see [`ThreadError::is_task_migrated`]), ends its
//! membership rather than the thread: the transaction is aborted, the tasks closed dirty,
//! and the thread joins the group again with a new consumer and a new producer, whose
//! tasks start from the committed offsets and the stores' committed state (Kafka Streams'
//! handling of a `TaskMigratedException`).

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer, ConsumerContext, RebalanceProtocol};
use rdkafka::types::RDKafkaRespErr;
use rdkafka::{ClientContext, TopicPartitionList};

use super::clients;
use super::error::{ThreadError, is_transient};
use super::instance::Instance;
use super::purge::Purger;
use super::streams_producer::StreamsProducer;
use super::task_manager::{Partition, Scope, TaskManager};
use crate::config::StreamsConfig;
use crate::topology::Topology;

/// Records fetched per poll round before they are processed.
const MAX_POLL_RECORDS: usize = 1000;

/// How long the interval's commits may keep failing with transient errors before the
/// thread stops (Kafka Streams' `task.timeout.ms` default).
const COMMIT_RETRY_TIMEOUT: Duration = Duration::from_secs(300);

/// Where a stream thread's partitions stand, for the instance's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Assignment {
    /// Partitions are moving: revoked, or not yet assigned.
    Moving,
    /// The thread's tasks are made and ready to process.
    Ready,
}

/// Tells the instance where a thread's partitions stand.
pub(crate) type AssignmentListener = Arc<dyn Fn(Assignment) + Send + Sync>;

/// A rebalance the consumer reported, for the thread to complete.
#[derive(Debug)]
enum RebalanceEvent {
    Assign(TopicPartitionList),
    Revoke(TopicPartitionList),
}

/// The consumer's context: records rebalances for the thread (see the module's doc), and
/// where the fetch of each partition stands, from the consumer's statistics.
struct RebalanceRecorder {
    events: Mutex<Vec<RebalanceEvent>>,
    /// Set once the thread has closed its tasks: rebalances of the consumer's close are
    /// completed at once.
    closing: AtomicBool,
    /// Where the fetch of each partition stands, by topic, as of the last statistics.
    fetches: Mutex<HashMap<String, HashMap<i32, Fetch>>>,
    /// Whether statistics come: else every partition counts as caught up.
    statistics: bool,
}

/// Where the fetch of a partition stands, as of the consumer's last statistics.
#[derive(Debug, Clone, Copy)]
struct Fetch {
    /// The broker's end of the partition (its high watermark), -1 while unknown.
    end: i64,
    /// The next offset the consumer fetches.
    next: i64,
    /// Records fetched and not yet polled.
    queued: i64,
}

impl RebalanceRecorder {
    /// Whether `topic`/`partition` is caught up, the thread having read it up to `consumed`
    /// (-1: nothing yet): the broker's end is known, and the thread has read up to it, or
    /// the consumer has fetched up to it and holds nothing back (the last offsets are
    /// transaction markers, which are never delivered).
    fn caught_up(&self, topic: &str, partition: i32, consumed: i64) -> bool {
        if !self.statistics {
            return true;
        }
        let fetches = self.fetches.lock().unwrap_or_else(PoisonError::into_inner);
        match fetches.get(topic).and_then(|p| p.get(&partition)) {
            Some(f) if f.end >= 0 => consumed >= f.end || (f.queued == 0 && f.next >= f.end),
            _ => false,
        }
    }
}

impl ClientContext for RebalanceRecorder {
    fn stats(&self, statistics: rdkafka::Statistics) {
        let mut fetches = self.fetches.lock().unwrap_or_else(PoisonError::into_inner);
        for (name, topic) in statistics.topics {
            let partitions = fetches.entry(name).or_default();
            // Partition -1 is librdkafka's internal unassigned one.
            for (id, p) in topic.partitions.into_iter().filter(|(id, _)| *id >= 0) {
                let fetch = Fetch {
                    end: p.hi_offset,
                    next: p.next_offset,
                    queued: p.fetchq_cnt,
                };
                partitions.insert(id, fetch);
            }
        }
    }
}

impl ConsumerContext for RebalanceRecorder {
    fn rebalance(
        &self,
        consumer: &BaseConsumer<Self>,
        err: RDKafkaRespErr,
        partitions: &mut TopicPartitionList,
    ) {
        let event = match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                RebalanceEvent::Assign(partitions.clone())
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                RebalanceEvent::Revoke(partitions.clone())
            }
            _ => {
                // An error of the rebalance itself: librdkafka's own handling (unassign).
                let error: rdkafka::types::RDKafkaErrorCode = err.into();
                tracing::warn!("homa: rebalance failed: {error}");
                if let Err(e) = consumer.unassign() {
                    tracing::warn!("homa: unassigning after a failed rebalance: {e}");
                }
                return;
            }
        };
        if self.closing.load(Ordering::Relaxed) {
            if let Err(e) = complete(consumer, &event) {
                tracing::warn!("homa: completing a rebalance while closing: {e}");
            }
            return;
        }
        self.events
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(event);
    }
}

/// Completes a rebalance: librdkafka takes the new assignment.
fn complete<C: ConsumerContext>(
    consumer: &BaseConsumer<C>,
    event: &RebalanceEvent,
) -> Result<(), ThreadError> {
    let cooperative = matches!(
        consumer.rebalance_protocol(),
        RebalanceProtocol::Cooperative
    );
    let failed = |what| move |source| ThreadError::Rebalance { what, source };
    match event {
        RebalanceEvent::Assign(partitions) if cooperative => consumer
            .incremental_assign(partitions)
            .map_err(failed("incremental assign")),
        RebalanceEvent::Assign(partitions) => consumer.assign(partitions).map_err(failed("assign")),
        RebalanceEvent::Revoke(partitions) if cooperative => consumer
            .incremental_unassign(partitions)
            .map_err(failed("incremental unassign")),
        RebalanceEvent::Revoke(_) => consumer.unassign().map_err(failed("unassign")),
    }
}

fn partitions_of(list: &TopicPartitionList) -> Vec<Partition> {
    list.elements()
        .iter()
        .map(|e| (Arc::from(e.topic()), e.partition()))
        .collect()
}

/// What a stream thread runs with.
pub(crate) struct ThreadContext<'a> {
    pub(crate) index: usize,
    pub(crate) topology: &'a Topology,
    pub(crate) config: &'a StreamsConfig,
    pub(crate) bootstrap: &'a str,
    pub(crate) shutdown: &'a AtomicBool,
    pub(crate) on_assignment: AssignmentListener,
    pub(crate) instance: &'a Instance,
    /// Under exactly-once, the instance's process id, which the producer's
    /// `transactional.id` carries.
    pub(crate) process_id: Option<&'a str>,
}

/// How long a thread waits before it joins the group again after its membership ended
/// under exactly-once, so that a failure that repeats at once does not spin.
const REJOIN_BACKOFF: Duration = Duration::from_millis(200);

/// Runs one stream thread until `shutdown` is set or it fails; its tasks are closed
/// either way (clean after a last commit, or dirty after an error). Under exactly-once it
/// joins the group again after an error that only ended its membership (see the module's
/// doc).
pub(crate) fn run(cx: &ThreadContext<'_>) -> Result<(), ThreadError> {
    loop {
        match run_member(cx) {
            Err(e)
                if cx.config.exactly_once()
                    && e.is_task_migrated()
                    && !cx.shutdown.load(Ordering::Relaxed) =>
            {
                tracing::warn!(
                    "homa: stream thread {}: {e}; its transaction is aborted, and it joins \
                     the group again, its tasks starting from their committed offsets",
                    cx.index
                );
                (cx.on_assignment)(Assignment::Moving);
                // What the tasks did stays counted, beside what the next ones do.
                cx.instance.retire(cx.index);
                std::thread::sleep(REJOIN_BACKOFF);
            }
            outcome => return outcome,
        }
    }
}

/// One membership of the thread in the group: its clients made, its tasks run until
/// `shutdown` is set or an error, then closed.
fn run_member(cx: &ThreadContext<'_>) -> Result<(), ThreadError> {
    let app = cx.config.application_id();
    let changelogs = cx
        .topology
        .changelog_topics(app)
        .into_iter()
        .map(|(topic, _)| topic);
    let transactional_id = cx
        .process_id
        .filter(|_| cx.config.exactly_once())
        .map(|process| clients::transactional_id(cx.config, process, cx.index));
    let producer = StreamsProducer::new(
        cx.config,
        cx.bootstrap,
        cx.index,
        transactional_id,
        changelogs,
    )?;
    let mut client = clients::consumer(cx.config, cx.bootstrap, cx.index);
    // A task of several input topics idles for the records on the broker (see the
    // module's doc), which the statistics tell.
    let idles = cx
        .topology
        .subtopologies()
        .iter()
        .any(|s| s.source_topics.len() > 1);
    if idles && client.get("statistics.interval.ms").is_none() {
        client.set("statistics.interval.ms", "100");
    }
    let statistics = client
        .get("statistics.interval.ms")
        .is_some_and(|ms| ms.trim() != "0");
    let consumer: BaseConsumer<RebalanceRecorder> = client
        .create_with_context(RebalanceRecorder {
            events: Mutex::new(Vec::new()),
            closing: AtomicBool::new(false),
            fetches: Mutex::new(HashMap::new()),
            statistics,
        })
        .map_err(|source| ThreadError::Client {
            client: "consumer",
            source,
        })?;
    let mut tasks = TaskManager::new(cx, producer);
    let topics = tasks.source_topics();
    consumer
        .subscribe(&topics)
        .map_err(|source| ThreadError::Subscribe {
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            source,
        })?;
    tracing::info!("homa: stream thread {} subscribed to {topics:?}", cx.index);

    // However the thread ends (a panic too), the rebalance of the consumer's close is
    // completed at once: else dropping the consumer would wait for it forever. Closing the
    // consumer leaves the group; a static member (`group.instance.id`) keeps its place and
    // partitions until its session times out, as KIP-345 has it (an unsubscribe would
    // leave the group even then).
    let _closing = ClosingOnDrop(&consumer.context().closing);
    let mut purger = Purger::new(cx.topology, cx.config, cx.bootstrap, cx.index)?;
    let outcome = run_loop(cx, &consumer, &mut tasks, purger.as_mut())
        // A record or call that failed because the producer was fenced is the fencing.
        .map_err(|e| tasks.producer().fenced().unwrap_or(e));
    let closed = tasks.close_all(&consumer, outcome.is_ok());
    tracing::info!("homa: stream thread {} stopping", cx.index);
    outcome.and(closed)
}

/// Sets the consumer's `closing` flag when dropped, before the consumer is.
struct ClosingOnDrop<'a>(&'a AtomicBool);

impl Drop for ClosingOnDrop<'_> {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Polls, completes rebalances, restores, processes and commits until `shutdown` is set.
fn run_loop(
    cx: &ThreadContext<'_>,
    consumer: &BaseConsumer<RebalanceRecorder>,
    tasks: &mut TaskManager<'_>,
    mut purger: Option<&mut Purger>,
) -> Result<(), ThreadError> {
    let mut last_commit = Instant::now();
    // Since when the interval's commits fail with errors the client may recover from.
    let mut failing_since: Option<Instant> = None;
    let mut batch = Vec::with_capacity(MAX_POLL_RECORDS);
    // Whether an assignment is waiting for its tasks' restoration to be reported ready.
    let mut assigned = false;
    while !cx.shutdown.load(Ordering::Relaxed) {
        // While stores restore, the consumer is only polled to keep the thread in its group.
        let wait = if tasks.is_restoring() {
            Duration::ZERO
        } else {
            cx.config.poll()
        };
        let mut next = consumer.poll(wait);
        while let Some(message) = next {
            match message {
                Ok(message) => batch.push(message),
                Err(source) if is_transient(&source) => {
                    tracing::warn!("homa: stream thread {}: consumer: {source}", cx.index);
                }
                Err(source) => return Err(ThreadError::Poll { source }),
            }
            next = if batch.len() < MAX_POLL_RECORDS {
                consumer.poll(Duration::ZERO)
            } else {
                None
            };
        }
        let events = std::mem::take(
            &mut *consumer
                .context()
                .events
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        // Records fetched before the rebalance go to their tasks first; those of revoked
        // partitions are dropped with their tasks' queues, and whoever gets the partitions
        // reads them again from the committed offset.
        tasks.add_records(&batch);
        batch.clear();
        for event in &events {
            rebalance(cx, consumer, tasks, event)?;
            assigned |= matches!(event, RebalanceEvent::Assign(_));
        }
        if tasks.is_restoring() {
            tasks.restore(cx.config.poll())?;
        }
        if assigned && !tasks.is_restoring() {
            (cx.on_assignment)(Assignment::Ready);
            assigned = false;
        }
        let recorder = consumer.context();
        tasks.process(super::now_ms(), &|topic, partition, consumed| {
            recorder.caught_up(topic, partition, consumed)
        })?;
        tasks.update_pauses(consumer)?;
        tasks.producer().poll();
        if last_commit.elapsed() >= cx.config.commit_interval() {
            interval_commit(cx, consumer, tasks, &mut failing_since)?;
            last_commit = Instant::now();
            if let Some(purger) = purger.as_deref_mut() {
                purger.after_commit(tasks.committed());
            }
        }
    }
    Ok(())
}

/// The commit of the interval. One that fails with an error the client may recover from
/// leaves the offsets uncommitted (at-least-once: nothing is lost) for the next interval
/// to commit, unless the commits have failed so for `COMMIT_RETRY_TIMEOUT`.
fn interval_commit(
    cx: &ThreadContext<'_>,
    consumer: &BaseConsumer<RebalanceRecorder>,
    tasks: &mut TaskManager<'_>,
    failing_since: &mut Option<Instant>,
) -> Result<(), ThreadError> {
    match tasks.commit(consumer, Scope::All) {
        Ok(()) => {
            *failing_since = None;
            Ok(())
        }
        Err(ThreadError::Commit { partitions, source })
            if is_transient(&source)
                && failing_since.get_or_insert_with(Instant::now).elapsed()
                    < COMMIT_RETRY_TIMEOUT =>
        {
            tracing::warn!(
                "homa: stream thread {}: committing {partitions} failed, to retry: {source}",
                cx.index
            );
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// Hands one rebalance to the task manager, then completes it.
fn rebalance(
    cx: &ThreadContext<'_>,
    consumer: &BaseConsumer<RebalanceRecorder>,
    tasks: &mut TaskManager<'_>,
    event: &RebalanceEvent,
) -> Result<(), ThreadError> {
    // The rebalance is completed whether its handling failed or not: librdkafka waits for
    // it, and closing the consumer would wait forever.
    match event {
        RebalanceEvent::Revoke(list) => {
            let partitions = partitions_of(list);
            (cx.on_assignment)(Assignment::Moving);
            let handled = if consumer.assignment_lost() {
                tracing::warn!(
                    "homa: stream thread {}: partitions lost: {}",
                    cx.index,
                    describe(&partitions)
                );
                tasks.handle_lost(&partitions, consumer)
            } else {
                tracing::info!(
                    "homa: stream thread {}: partitions revoked: {}",
                    cx.index,
                    describe(&partitions)
                );
                tasks.handle_revocation(&partitions, consumer)
            };
            let completed = complete(consumer, event);
            handled.and(completed)
        }
        RebalanceEvent::Assign(list) => {
            let partitions = partitions_of(list);
            tracing::info!(
                "homa: stream thread {}: partitions assigned: {}",
                cx.index,
                describe(&partitions)
            );
            let handled = tasks.handle_assignment(&partitions, consumer);
            let completed = complete(consumer, event);
            handled.and(completed)?;
            // The partitions of restoring tasks are paused once librdkafka has them.
            tasks.update_pauses(consumer)
        }
    }
}

/// `topic/partition, ...` for logs.
pub(crate) fn describe(partitions: &[Partition]) -> String {
    if partitions.is_empty() {
        return "none".to_string();
    }
    partitions
        .iter()
        .map(|(topic, partition)| format!("{topic}/{partition}"))
        .collect::<Vec<_>>()
        .join(", ")
}

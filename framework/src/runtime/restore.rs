//! Restoration: before a task processes anything, each of its logged stores replays its
//! changelog partition, from the checkpoint (persistent stores) or the beginning, to the
//! end it has when the restore starts.
//!
//! The `ChangelogReader` of a stream thread reads the changelogs of all its restoring tasks
//! at once, with a consumer of its own (partitions assigned by hand), in chunks between
//! the thread's polls (as Kafka Streams does), so a long restore never keeps the thread
//! from its group. A writer thread sorts each batch by key and writes it to its store while
//! the reading goes on; a task is restored once every batch of it is written.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, SyncSender};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::error::{RestoreError, RestoreFailure, ThreadError, is_transient};
use super::metrics::Metrics;
use super::state_manager::LoggedStore;
use super::task::{Task, TaskId};
use crate::state::{SharedBytesStore, WriteBatch};

/// Records of one changelog partition written to its store at once, at most.
const BATCH_RECORDS: usize = 50_000;
/// Bytes of keys and values of one changelog partition written at once, at most.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches read ahead of the writer, at most (each up to `BATCH_BYTES`).
const WRITES_IN_FLIGHT: usize = 2;
/// How often a long restore says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);
/// How long to wait for the end offset of a changelog partition.
const WATERMARK_TIMEOUT: Duration = Duration::from_secs(30);

/// One changelog partition being replayed into its store.
struct Replay {
    task: TaskId,
    store: LoggedStore,
    partition: i32,
    /// The changelog's end when the restore started: replayed up to here.
    end: i64,
    /// The next offset to read.
    position: i64,
    batch: WriteBatch,
    restored: u64,
    started: Instant,
    /// Whether every record up to `end` was read (and sent to the writer).
    read: bool,
    /// Whether the consumer has the partition assigned.
    assigned: bool,
}

impl Replay {
    /// The partition is no longer to be read: it goes from the consumer's assignment.
    fn stop_reading(&mut self, unassign: &mut Vec<(Arc<str>, i32)>) {
        if std::mem::take(&mut self.assigned) {
            unassign.push((self.store.changelog.clone(), self.partition));
        }
    }

    fn failure(&self, reason: impl Into<RestoreFailure>) -> ThreadError {
        RestoreError {
            task: self.task,
            store: self.store.name.to_string(),
            topic: self.store.changelog.to_string(),
            partition: self.partition,
            reason: reason.into(),
        }
        .into()
    }
}

/// A batch on its way to its store.
struct Write {
    task: TaskId,
    store: SharedBytesStore,
    name: Arc<str>,
    changelog: (Arc<str>, i32),
    batch: WriteBatch,
}

/// What the writer did with a batch.
struct Written {
    task: TaskId,
    store: Arc<str>,
    records: u64,
    outcome: Result<(), ThreadError>,
}

impl Write {
    /// Sorts the batch and writes it to the store.
    fn apply(mut self) -> Written {
        let records = self.batch.len() as u64;
        self.batch.sort_by_key();
        let outcome = self.store.restore_batch(&self.batch).map_err(|e| {
            ThreadError::from(RestoreError {
                task: self.task,
                store: self.name.to_string(),
                topic: self.changelog.0.to_string(),
                partition: self.changelog.1,
                reason: e.into(),
            })
        });
        Written {
            task: self.task,
            store: self.name,
            records,
            outcome,
        }
    }
}

/// The writer thread and its two channels.
struct Writer {
    writes: SyncSender<Write>,
    written: Receiver<Written>,
    thread: JoinHandle<()>,
}

/// Reads the changelogs of a stream thread's restoring tasks into their stores.
pub(crate) struct ChangelogReader {
    consumer: BaseConsumer,
    work: Replays,
}

/// What a [`ChangelogReader`] is restoring.
struct Replays {
    replays: Vec<Replay>,
    /// Batches sent to the writer and not yet written, by task.
    in_flight: BTreeMap<TaskId, usize>,
    writer: Option<Writer>,
    /// Changelog partitions to take from the consumer: read to their ends, or of tasks
    /// that went. The others keep what the consumer has fetched of them.
    unassign: Vec<(Arc<str>, i32)>,
    last_progress: Instant,
}

impl std::fmt::Debug for ChangelogReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChangelogReader")
            .field("replays", &self.work.replays.len())
            .finish_non_exhaustive()
    }
}

impl ChangelogReader {
    /// A reader with `consumer` (no group subscription; partitions assigned by hand).
    pub(crate) fn new(consumer: BaseConsumer) -> Self {
        Self {
            consumer,
            work: Replays {
                replays: Vec::new(),
                in_flight: BTreeMap::new(),
                writer: None,
                unassign: Vec::new(),
                last_progress: Instant::now(),
            },
        }
    }

    /// Registers the logged stores of `task` to restore. Returns whether any has records
    /// to replay; those that have none are restored at once.
    pub(crate) fn add(&mut self, task: &mut Task) -> Result<bool, ThreadError> {
        let id = task.id();
        let mut any = false;
        for store in task.logged_stores() {
            let (topic, partition) = (&*store.changelog, id.partition);
            let failure = |reason: RestoreFailure| {
                ThreadError::from(RestoreError {
                    task: id,
                    store: store.name.to_string(),
                    topic: topic.to_string(),
                    partition,
                    reason,
                })
            };
            let (low, high) = self
                .consumer
                .fetch_watermarks(topic, partition, WATERMARK_TIMEOUT)
                .map_err(|e| failure(e.into()))?;
            let start = match store.start {
                Some(start) if (low..=high).contains(&start) => start,
                Some(start) => {
                    tracing::warn!(
                        "homa: task {id}: checkpoint of {topic}/{partition} at {start} is \
                         outside the changelog ({low}..{high}); restoring {} from the start",
                        store.name
                    );
                    wipe(&store).map_err(|e| failure(e.into()))?;
                    low
                }
                None => low,
            };
            if start >= high {
                task.set_restored(store.changelog.clone(), high);
                continue;
            }
            tracing::info!(
                "homa: task {id}: restoring store {} from {topic}/{partition}, offsets {start} \
                 to {high}",
                store.name
            );
            self.work.replays.push(Replay {
                task: id,
                store,
                partition,
                end: high,
                position: start,
                batch: WriteBatch::new(),
                restored: 0,
                started: Instant::now(),
                read: false,
                assigned: false,
            });
            any = true;
        }
        Ok(any)
    }

    /// Forgets task `id` (it closes while restoring), once the writer has written what it
    /// was sent of it.
    pub(crate) fn remove(&mut self, id: TaskId) -> Result<(), ThreadError> {
        self.work.remove(id)?;
        self.work.update_assignment(&self.consumer)
    }

    /// Reads for about `budget`, hands full batches to the writer, and returns the tasks
    /// whose stores are now all restored (their restored offsets set).
    pub(crate) fn restore(
        &mut self,
        tasks: &mut BTreeMap<TaskId, Task>,
        metrics: &Mutex<Metrics>,
        budget: Duration,
    ) -> Result<Vec<TaskId>, ThreadError> {
        let work = &mut self.work;
        work.update_assignment(&self.consumer)?;
        let deadline = Instant::now() + budget;
        // Fetches come in runs of one partition: the last replay found is tried first.
        let mut last = 0;
        while work.replays.iter().any(|r| !r.read) && Instant::now() < deadline {
            match self.consumer.poll(Duration::from_millis(10)) {
                Some(Ok(message)) => {
                    let Some(index) = find(&work.replays, &message, last) else {
                        continue;
                    };
                    last = index;
                    work.read(index, &message)?;
                }
                Some(Err(source)) if is_transient(&source) => {
                    tracing::warn!("homa: restore consumer: {source}");
                }
                Some(Err(source)) => return Err(ThreadError::Poll { source }),
                None => {
                    if let Ok(positions) = self.consumer.position() {
                        work.catch_up(&positions)?;
                    }
                }
            }
        }
        // Read to the end, the last batches being written: wait for them rather than poll
        // again at once.
        if work.replays.iter().all(|r| r.read) {
            work.wait_written(deadline, metrics)?;
        }
        work.collect_written(metrics)?;
        work.report_progress();
        // The partitions read to their ends stop being fetched.
        work.update_assignment(&self.consumer)?;
        work.finished(tasks, metrics)
    }
}

impl Replays {
    fn remove(&mut self, id: TaskId) -> Result<(), ThreadError> {
        for replay in self.replays.iter_mut().filter(|r| r.task == id) {
            replay.stop_reading(&mut self.unassign);
        }
        self.replays.retain(|r| r.task != id);
        while self.in_flight.get(&id).is_some_and(|n| *n > 0) {
            let Some(writer) = &self.writer else {
                break;
            };
            match writer.written.recv() {
                Ok(written) => self.acknowledge(written, None)?,
                Err(_) => break,
            }
        }
        self.in_flight.remove(&id);
        Ok(())
    }

    /// Takes in one changelog record of replay `index`.
    fn read(&mut self, index: usize, message: &BorrowedMessage<'_>) -> Result<(), ThreadError> {
        let replay = &mut self.replays[index];
        if replay.read {
            return Ok(());
        }
        if message.offset() < replay.end {
            replay.position = message.offset() + 1;
            if let Some(key) = message.key() {
                // A timestamped store keeps the record's timestamp before the value.
                match message.payload() {
                    Some(value) if replay.store.kind.timestamped() => {
                        let timestamp = message.timestamp().to_millis().unwrap_or(-1);
                        replay.batch.put_timestamped(key, timestamp, value);
                    }
                    value => replay.batch.push(key, value),
                }
                replay.restored += 1;
            }
            if replay.batch.len() >= BATCH_RECORDS || replay.batch.bytes() >= BATCH_BYTES {
                self.send(index)?;
            }
        } else {
            // Written after the restore began (compaction may have removed the record at
            // the end): not part of it.
            replay.position = replay.end;
        }
        if self.replays[index].position >= self.replays[index].end {
            self.finish_reading(index)?;
        }
        Ok(())
    }

    /// The end may be a transaction marker, or compacted away: no message shows it, the
    /// consumer's `positions` do.
    fn catch_up(&mut self, positions: &TopicPartitionList) -> Result<(), ThreadError> {
        for element in positions.elements() {
            let Offset::Offset(at) = element.offset() else {
                continue;
            };
            let Some(index) = self.replays.iter().position(|r| {
                !r.read
                    && r.partition == element.partition()
                    && *r.store.changelog == *element.topic()
            }) else {
                continue;
            };
            let replay = &mut self.replays[index];
            replay.position = replay.position.max(at);
            if replay.position >= replay.end {
                self.finish_reading(index)?;
            }
        }
        Ok(())
    }

    /// Replay `index` has read to its end: the rest of its batch goes to the writer.
    fn finish_reading(&mut self, index: usize) -> Result<(), ThreadError> {
        self.send(index)?;
        let replay = &mut self.replays[index];
        replay.read = true;
        replay.stop_reading(&mut self.unassign);
        Ok(())
    }

    /// Sends the batch of replay `index` to the writer (started on first use).
    fn send(&mut self, index: usize) -> Result<(), ThreadError> {
        let replay = &mut self.replays[index];
        if replay.batch.is_empty() {
            return Ok(());
        }
        let writer = match &self.writer {
            Some(writer) => writer,
            None => self.writer.insert(start_writer().map_err(|e| {
                replay.failure(crate::state::StoreError::Io {
                    store: replay.store.name.to_string(),
                    path: std::path::PathBuf::new(),
                    operation: "starting the restore writer thread",
                    source: e,
                })
            })?),
        };
        let write = Write {
            task: replay.task,
            store: replay.store.bytes.clone(),
            name: replay.store.name.clone(),
            changelog: (replay.store.changelog.clone(), replay.partition),
            batch: std::mem::take(&mut replay.batch),
        };
        *self.in_flight.entry(replay.task).or_default() += 1;
        // It fails only when the writer has stopped, which it does only on panic.
        writer
            .writes
            .send(write)
            .map_err(|_| replay.failure(RestoreFailure::Writer))
    }

    /// Waits until `deadline` for the writer to write a batch, if it has any.
    fn wait_written(
        &mut self,
        deadline: Instant,
        metrics: &Mutex<Metrics>,
    ) -> Result<(), ThreadError> {
        if self.in_flight.values().all(|n| *n == 0) {
            return Ok(());
        }
        let Some(writer) = &self.writer else {
            return Ok(());
        };
        let wait = deadline.saturating_duration_since(Instant::now());
        match writer.written.recv_timeout(wait) {
            Ok(written) => self.acknowledge(written, Some(metrics)),
            Err(_) => Ok(()),
        }
    }

    /// Takes in what the writer has written so far, without waiting.
    fn collect_written(&mut self, metrics: &Mutex<Metrics>) -> Result<(), ThreadError> {
        while let Some(written) = self.writer.as_ref().and_then(|w| w.written.try_recv().ok()) {
            self.acknowledge(written, Some(metrics))?;
        }
        Ok(())
    }

    fn acknowledge(
        &mut self,
        written: Written,
        metrics: Option<&Mutex<Metrics>>,
    ) -> Result<(), ThreadError> {
        if let Some(n) = self.in_flight.get_mut(&written.task) {
            *n = n.saturating_sub(1);
        }
        written.outcome?;
        if let Some(metrics) = metrics {
            *lock(metrics)
                .restored_records
                .entry(written.store.to_string())
                .or_default() += written.records;
        }
        Ok(())
    }

    /// The tasks whose replays are all read and written: their stores flushed to files
    /// (restoration writes without RocksDB's write-ahead log, which the commits of
    /// exactly-once write through: a crash must not keep a commit and lose the records
    /// restored before it), their restored offsets set and their replays forgotten.
    fn finished(
        &mut self,
        tasks: &mut BTreeMap<TaskId, Task>,
        metrics: &Mutex<Metrics>,
    ) -> Result<Vec<TaskId>, ThreadError> {
        let done: Vec<TaskId> = tasks
            .keys()
            .copied()
            .filter(|id| {
                self.replays.iter().any(|r| r.task == *id)
                    && self
                        .replays
                        .iter()
                        .filter(|r| r.task == *id)
                        .all(|r| r.read)
                    && self.in_flight.get(id).is_none_or(|n| *n == 0)
            })
            .collect();
        for id in &done {
            let Some(task) = tasks.get_mut(id) else {
                continue;
            };
            for replay in self.replays.iter().filter(|r| r.task == *id) {
                if replay.restored > 0 {
                    replay.store.bytes.flush().map_err(|e| replay.failure(e))?;
                }
                task.set_restored(replay.store.changelog.clone(), replay.end);
                *lock(metrics)
                    .restorations
                    .entry(replay.store.name.to_string())
                    .or_default() += 1;
                tracing::info!(
                    "homa: task {id}: restored store {} from {}/{}: {} records in {:.1} s",
                    replay.store.name,
                    replay.store.changelog,
                    replay.partition,
                    replay.restored,
                    replay.started.elapsed().as_secs_f64()
                );
            }
            self.in_flight.remove(id);
        }
        self.replays.retain(|r| !done.contains(&r.task));
        Ok(done)
    }

    /// Takes from `consumer` the changelog partitions no longer read and gives it the new
    /// ones, at their positions, leaving the others and what was fetched of them alone.
    fn update_assignment(&mut self, consumer: &BaseConsumer) -> Result<(), ThreadError> {
        let failed = |what| {
            move |source| ThreadError::Client {
                client: what,
                source,
            }
        };
        if !self.unassign.is_empty() {
            let mut gone = TopicPartitionList::new();
            for (topic, partition) in self.unassign.drain(..) {
                gone.add_partition(&topic, partition);
            }
            consumer
                .incremental_unassign(&gone)
                .map_err(failed("restore consumer (unassigning changelogs)"))?;
        }
        let mut new = TopicPartitionList::new();
        for replay in self.replays.iter_mut().filter(|r| !r.read && !r.assigned) {
            new.add_partition_offset(
                &replay.store.changelog,
                replay.partition,
                Offset::Offset(replay.position),
            )
            .map_err(|e| replay.failure(e))?;
            replay.assigned = true;
        }
        if new.count() > 0 {
            consumer
                .incremental_assign(&new)
                .map_err(failed("restore consumer (assigning changelogs)"))?;
        }
        Ok(())
    }

    fn report_progress(&mut self) {
        if self.replays.is_empty() || self.last_progress.elapsed() < PROGRESS_EVERY {
            return;
        }
        let left = self.replays.iter().filter(|r| !r.read).count();
        let restored: u64 = self.replays.iter().map(|r| r.restored).sum();
        let to_go: i64 = self.replays.iter().map(|r| r.end - r.position).sum();
        tracing::info!(
            "homa: restoring: {left} of {} changelog partitions to go, {restored} records \
             restored, {to_go} offsets left",
            self.replays.len()
        );
        self.last_progress = Instant::now();
    }
}

impl Drop for ChangelogReader {
    fn drop(&mut self) {
        if let Some(writer) = self.work.writer.take() {
            drop(writer.writes);
            let _ = writer.thread.join();
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Starts the thread that sorts and writes batches while the reading goes on.
fn start_writer() -> std::io::Result<Writer> {
    let (writes, batches) = std::sync::mpsc::sync_channel::<Write>(WRITES_IN_FLIGHT);
    let (done, written) = std::sync::mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("homa-restore-writer".into())
        .spawn(move || {
            for write in batches {
                if done.send(write.apply()).is_err() {
                    return;
                }
            }
        })?;
    Ok(Writer {
        writes,
        written,
        thread,
    })
}

/// The replay `message` belongs to, trying `hint` first.
fn find(replays: &[Replay], message: &BorrowedMessage<'_>, hint: usize) -> Option<usize> {
    let matches =
        |r: &Replay| r.partition == message.partition() && *r.store.changelog == *message.topic();
    if replays.get(hint).is_some_and(matches) {
        return Some(hint);
    }
    replays.iter().position(matches)
}

/// Removes every entry of `store` (its checkpoint does not match its changelog).
fn wipe(store: &LoggedStore) -> Result<(), crate::state::StoreError> {
    let mut deletes = WriteBatch::new();
    for entry in store.bytes.range(None, None)? {
        deletes.delete(&entry?.0);
    }
    store.bytes.restore_batch(&deletes)
}

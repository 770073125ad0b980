//! Restoration: before a task processes anything, each of its logged stores replays its
//! changelog partition, from the checkpoint (persistent stores) or the beginning, to the
//! end it has when the restore starts. The changelogs of all the tasks a rebalance gives a
//! thread are read at once; a writer thread sorts each batch by key and writes it to its
//! store while the reading goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::BorrowedMessage;
use rdkafka::{Message, Offset, TopicPartitionList};

use super::metrics::Metrics;
use super::task::{LoggedStore, Task};
use crate::state::{SharedBytesStore, WriteBatch};

/// Records of one changelog partition written to its store at once, at most.
const BATCH_RECORDS: usize = 50_000;
/// Bytes of keys and values of one changelog partition written at once, at most.
const BATCH_BYTES: usize = 4 * 1024 * 1024;
/// Batches read ahead of the writer, at most (each up to `BATCH_BYTES`).
const WRITES_IN_FLIGHT: usize = 2;
/// How often a long restore says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// One changelog partition being replayed into its store.
struct Replay {
    /// Index of its task in the slice restored.
    task: usize,
    store: LoggedStore,
    partition: i32,
    /// The changelog's end when the restore started: replayed up to here.
    end: i64,
    /// The next offset to read.
    position: i64,
    batch: WriteBatch,
    restored: u64,
    done: bool,
}

impl Replay {
    fn what(&self, tasks: &[Task]) -> String {
        format!(
            "task {}: store {} from {}/{}",
            tasks[self.task].id(),
            self.store.name,
            self.store.changelog,
            self.partition
        )
    }

    /// Sends the batch to the writer.
    fn write(&mut self, tasks: &[Task], writes: &SyncSender<Write>) -> Result<(), String> {
        if self.batch.is_empty() {
            return Ok(());
        }
        let write = Write {
            store: self.store.bytes.clone(),
            name: self.store.name.clone(),
            what: self.what(tasks),
            batch: std::mem::take(&mut self.batch),
        };
        // It fails only when the writer has stopped on an error, which the restore reports.
        writes
            .send(write)
            .map_err(|_| "the restore writer stopped".to_string())
    }
}

/// A batch on its way to its store.
struct Write {
    store: SharedBytesStore,
    name: Arc<str>,
    /// The task, store and changelog partition, for errors.
    what: String,
    batch: WriteBatch,
}

impl Write {
    /// Sorts the batch and writes it to the store.
    fn apply(mut self, metrics: &Mutex<Metrics>) -> Result<(), String> {
        let records = self.batch.len() as u64;
        self.batch.sort_by_key();
        self.store
            .write_batch(&self.batch)
            .map_err(|e| format!("{}: restoring: {e}", self.what))?;
        *metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restored_records
            .entry(self.name.to_string())
            .or_default() += records;
        Ok(())
    }
}

/// Restores every logged store of `tasks` with `consumer` (manually assigned, no group).
/// Returns early, leaving the tasks unrestored, when `shutdown` is set.
pub(crate) fn restore(
    tasks: &mut [Task],
    consumer: &BaseConsumer,
    metrics: &Mutex<Metrics>,
    shutdown: &AtomicBool,
) -> Result<(), String> {
    let mut replays = Vec::new();
    for (index, task) in tasks.iter_mut().enumerate() {
        let id = task.id();
        for store in task.logged_stores() {
            let (topic, partition) = (&*store.changelog, id.partition);
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, Duration::from_secs(30))
                .map_err(|e| {
                    format!("task {id}: end offset of changelog {topic}/{partition}: {e}")
                })?;
            let start = match store.start {
                Some(start) if (low..=high).contains(&start) => start,
                Some(start) => {
                    tracing::warn!(
                        "homa: task {id}: checkpoint of {topic}/{partition} at {start} is \
                         outside the changelog ({low}..{high}); restoring {} from the start",
                        store.name
                    );
                    wipe(&store).map_err(|e| format!("task {id}: {e}"))?;
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
            replays.push(Replay {
                task: index,
                store,
                partition,
                end: high,
                position: start,
                batch: WriteBatch::new(),
                restored: 0,
                done: false,
            });
        }
    }
    if replays.is_empty() {
        return Ok(());
    }

    let mut assignment = TopicPartitionList::new();
    for replay in &replays {
        assignment
            .add_partition_offset(
                &replay.store.changelog,
                replay.partition,
                Offset::Offset(replay.position),
            )
            .map_err(|e| format!("{}: assigning: {e}", replay.what(tasks)))?;
    }
    consumer
        .assign(&assignment)
        .map_err(|e| format!("assigning changelogs to restore: {e}"))?;
    // Batches are sorted and written by a thread of their own while this one reads on.
    let outcome = std::thread::scope(|scope| {
        let (writes, batches) = std::sync::mpsc::sync_channel::<Write>(WRITES_IN_FLIGHT);
        let writer = std::thread::Builder::new()
            .name("homa-restore-writer".into())
            .spawn_scoped(scope, move || {
                batches
                    .into_iter()
                    .try_for_each(|write| write.apply(metrics))
            })
            .map_err(|e| format!("starting the restore writer: {e}"))?;
        let read = replay_all(tasks, &mut replays, consumer, &writes, metrics, shutdown);
        drop(writes);
        let written = writer
            .join()
            .unwrap_or_else(|_| Err("the restore writer panicked".to_string()));
        // A writer's error is the cause of a read that stopped for it.
        written.and(read)
    });
    consumer.unassign().ok();
    outcome
}

/// Reads the assigned changelogs until every replay reached its end (or `shutdown`).
fn replay_all(
    tasks: &mut [Task],
    replays: &mut [Replay],
    consumer: &BaseConsumer,
    writes: &SyncSender<Write>,
    metrics: &Mutex<Metrics>,
    shutdown: &AtomicBool,
) -> Result<(), String> {
    let started = Instant::now();
    let mut last_progress = started;
    let mut left = replays.len();
    // Fetches come in runs of one partition: the last replay found is tried first.
    let mut last = 0;
    while left > 0 {
        if shutdown.load(Ordering::Relaxed) {
            return Ok(());
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                let Some(index) = find(replays, &message, last) else {
                    continue;
                };
                last = index;
                let replay = &mut replays[index];
                if replay.done {
                    continue;
                }
                if message.offset() < replay.end {
                    replay.position = message.offset() + 1;
                    if let Some(key) = message.key() {
                        replay.batch.push(key, message.payload());
                        replay.restored += 1;
                    }
                    if replay.batch.len() >= BATCH_RECORDS || replay.batch.bytes() >= BATCH_BYTES {
                        replay.write(tasks, writes)?;
                    }
                } else {
                    // Written after the restore began (compaction may have removed the
                    // record at the end): not part of it.
                    replay.position = replay.end;
                }
                if replay.position >= replay.end {
                    finish(tasks, replay, writes, metrics, started)?;
                    left -= 1;
                }
            }
            Some(Err(e)) => return Err(format!("reading changelogs to restore: {e}")),
            None => {
                // The end may be a transaction marker no message shows.
                let Ok(positions) = consumer.position() else {
                    continue;
                };
                for element in positions.elements() {
                    let Offset::Offset(at) = element.offset() else {
                        continue;
                    };
                    let Some(replay) = replays.iter_mut().find(|r| {
                        !r.done
                            && r.partition == element.partition()
                            && *r.store.changelog == *element.topic()
                    }) else {
                        continue;
                    };
                    replay.position = replay.position.max(at);
                    if replay.position >= replay.end {
                        finish(tasks, replay, writes, metrics, started)?;
                        left -= 1;
                    }
                }
            }
        }
        if last_progress.elapsed() >= PROGRESS_EVERY {
            let restored: u64 = replays.iter().map(|r| r.restored).sum();
            let to_go: i64 = replays.iter().map(|r| r.end - r.position).sum();
            tracing::info!(
                "homa: restoring: {left} of {} changelog partitions to go, {restored} records \
                 restored, {to_go} offsets left",
                replays.len()
            );
            last_progress = Instant::now();
        }
    }
    Ok(())
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

/// A replay reached its end: the rest of its batch goes to the writer and its task is told.
/// The writer has written it before `restore` returns.
fn finish(
    tasks: &mut [Task],
    replay: &mut Replay,
    writes: &SyncSender<Write>,
    metrics: &Mutex<Metrics>,
    started: Instant,
) -> Result<(), String> {
    replay.write(tasks, writes)?;
    replay.done = true;
    *metrics
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .restorations
        .entry(replay.store.name.to_string())
        .or_default() += 1;
    tracing::info!(
        "homa: {}: restored {} records in {:.1} s",
        replay.what(tasks),
        replay.restored,
        started.elapsed().as_secs_f64()
    );
    tasks[replay.task].set_restored(replay.store.changelog.clone(), replay.end);
    Ok(())
}

/// Removes every entry of `store` (its checkpoint does not match its changelog).
fn wipe(store: &LoggedStore) -> Result<(), crate::state::StoreError> {
    let mut deletes = WriteBatch::new();
    for entry in store.bytes.range(None, None)? {
        deletes.delete(&entry?.0);
    }
    store.bytes.write_batch(&deletes)
}

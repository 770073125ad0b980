//! Restoration: before a task processes anything, each of its logged stores replays its
//! changelog partition, from the checkpoint (persistent stores) or the beginning, to the
//! end it has when the restore starts, in batches.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::metrics::Metrics;
use super::task::Task;

/// Records written to a store at once.
const BATCH: usize = 10_000;
/// How often a long restore says how far it is.
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Restores every logged store of `task` with `consumer` (manually assigned, no group).
/// Returns early, leaving the task unrestored, when `shutdown` is set.
pub(crate) fn restore(
    task: &mut Task,
    consumer: &BaseConsumer,
    metrics: &Mutex<Metrics>,
    shutdown: &AtomicBool,
) -> Result<(), String> {
    let id = task.id();
    let partition = id.partition;
    for store in task.logged_stores() {
        let topic = &*store.changelog;
        let (low, high) = consumer
            .fetch_watermarks(topic, partition, Duration::from_secs(30))
            .map_err(|e| format!("task {id}: end offset of changelog {topic}/{partition}: {e}"))?;
        let start = match store.start {
            Some(start) if (low..=high).contains(&start) => start,
            Some(start) => {
                tracing::warn!(
                    "homa: task {id}: checkpoint of {topic}/{partition} at {start} is outside \
                     the changelog ({low}..{high}); restoring {} from the start",
                    store.name
                );
                store
                    .bytes
                    .range(None, None)
                    .and_then(|all| {
                        let keys: Vec<(Vec<u8>, Option<Vec<u8>>)> =
                            all.filter_map(Result::ok).map(|(k, _)| (k, None)).collect();
                        store.bytes.write_batch(&keys)
                    })
                    .map_err(|e| format!("task {id}: {e}"))?;
                low
            }
            None => low,
        };
        if start >= high {
            task.set_restored(store.changelog.clone(), high);
            continue;
        }
        tracing::info!(
            "homa: task {id}: restoring store {} from {topic}/{partition}, offsets {start} to {high}",
            store.name
        );
        let mut assignment = TopicPartitionList::new();
        assignment
            .add_partition_offset(topic, partition, Offset::Offset(start))
            .map_err(|e| format!("task {id}: assigning {topic}/{partition}: {e}"))?;
        consumer
            .assign(&assignment)
            .map_err(|e| format!("task {id}: assigning {topic}/{partition}: {e}"))?;
        let started = Instant::now();
        let mut last_progress = started;
        let mut position = start;
        let mut restored = 0_u64;
        let mut batch: Vec<(Vec<u8>, Option<Vec<u8>>)> = Vec::with_capacity(BATCH);
        let write = |batch: &mut Vec<(Vec<u8>, Option<Vec<u8>>)>| -> Result<(), String> {
            store
                .bytes
                .write_batch(batch)
                .map_err(|e| format!("task {id}: restoring: {e}"))?;
            let mut metrics = metrics.lock().unwrap_or_else(PoisonError::into_inner);
            *metrics
                .restored_records
                .entry(store.name.to_string())
                .or_default() += batch.len() as u64;
            batch.clear();
            Ok(())
        };
        while position < high {
            if shutdown.load(Ordering::Relaxed) {
                consumer.unassign().ok();
                return Ok(());
            }
            match consumer.poll(Duration::from_millis(100)) {
                Some(Ok(message)) => {
                    position = message.offset() + 1;
                    if let Some(key) = message.key() {
                        batch.push((key.to_vec(), message.payload().map(<[u8]>::to_vec)));
                        restored += 1;
                    }
                    if batch.len() >= BATCH {
                        write(&mut batch)?;
                    }
                }
                Some(Err(e)) => return Err(format!("task {id}: reading {topic}/{partition}: {e}")),
                None => {
                    // The end may be a transaction marker no message shows.
                    if let Ok(positions) = consumer.position()
                        && let Some(Offset::Offset(at)) =
                            positions.elements().first().map(|e| e.offset())
                    {
                        position = position.max(at);
                    }
                }
            }
            if last_progress.elapsed() >= PROGRESS_EVERY {
                tracing::info!(
                    "homa: task {id}: restoring {}: at offset {position} of {high} ({restored} records)",
                    store.name
                );
                last_progress = Instant::now();
            }
        }
        write(&mut batch)?;
        consumer
            .unassign()
            .map_err(|e| format!("task {id}: unassigning {topic}/{partition}: {e}"))?;
        *metrics
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .restorations
            .entry(store.name.to_string())
            .or_default() += 1;
        tracing::info!(
            "homa: task {id}: restored store {} from {topic}/{partition}: {restored} records in {:.1} s",
            store.name,
            started.elapsed().as_secs_f64()
        );
        task.set_restored(store.changelog.clone(), high);
    }
    Ok(())
}

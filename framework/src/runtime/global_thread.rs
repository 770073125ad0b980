//! The global thread: keeps an instance's global tables (Kafka Streams'
//! `GlobalStreamThread`). `start()` restores them before any stream thread starts: its
//! consumer, in no group, is assigned every partition of their topics, from where the
//! last checkpoint left each (else the start), and reads up to the ends the partitions
//! had then. The thread then keeps reading, writing every record to its table's store,
//! and checkpoints every `commit.interval.ms`. A record that cannot be read stops it under
//! log-and-fail (the instance goes to `Error`), and is skipped under log-and-continue.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{BorrowedMessage, Message};
use rdkafka::{Offset, TopicPartitionList};

use super::clients;
use crate::config::StreamsConfig;
use crate::state::checkpoint::Offsets;
use crate::state::global::{GlobalError, GlobalRecord, GlobalState};
use crate::state::{RocksDbMemory, StoreError};
use crate::topology::Topology;

/// How long the restore may take (Kafka Streams' `task.timeout.ms` default).
const RESTORE_TIMEOUT: Duration = Duration::from_secs(300);

/// How long the restore waits for a record before it takes the partitions it has not read
/// to their ends as read: their last offsets are transaction markers, never delivered.
const RESTORE_QUIET: Duration = Duration::from_secs(5);

/// The global tables restored, and what keeps them current.
pub(crate) struct Restored {
    pub(crate) state: Arc<GlobalState>,
    consumer: BaseConsumer,
    /// The next offset of each partition.
    positions: Offsets,
}

/// Opens and restores `topology`'s global tables (none without), in
/// `<state.dir>/<application.id>/global`.
///
/// # Errors
/// When a store cannot be opened, the topics cannot be read, the restore does not reach
/// the ends within 5 minutes (`task.timeout.ms`'s default), or a record cannot be read under log-and-fail.
pub(crate) fn restore(
    topology: &Topology,
    config: &StreamsConfig,
    bootstrap: &str,
    memory: Option<&RocksDbMemory>,
) -> Result<Option<Restored>, GlobalError> {
    if topology.globals().is_empty() {
        return Ok(None);
    }
    let dir = config
        .state_dir()
        .join(config.application_id())
        .join("global");
    std::fs::create_dir_all(&dir).map_err(|source| StoreError::Io {
        store: String::new(),
        path: dir.clone(),
        operation: "creating the global tables' directory",
        source,
    })?;
    let Some(state) = GlobalState::open(topology, &dir, memory)? else {
        return Ok(None);
    };
    let consumer: BaseConsumer = clients::global_consumer(config, bootstrap)
        .create()
        .map_err(|e| GlobalError::Consumer(e.to_string()))?;
    let checkpointed = state.checkpointed()?;
    let timeout = config.poll().max(Duration::from_secs(30));
    let mut assignment = TopicPartitionList::new();
    let mut positions = Offsets::new();
    let mut ends: BTreeMap<(String, i32), i64> = BTreeMap::new();
    for topic in state.topics() {
        let partitions = clients::partition_count(consumer.client(), topic, timeout)
            .map_err(|e| GlobalError::Consumer(format!("global table topic: {e}")))?;
        for partition in 0..partitions {
            let key = (topic.to_string(), partition);
            let (low, high) = consumer
                .fetch_watermarks(topic, partition, timeout)
                .map_err(|e| {
                    GlobalError::Consumer(format!("the end of {topic}/{partition}: {e}"))
                })?;
            let start = checkpointed
                .get(&key)
                .copied()
                .filter(|o| *o >= low)
                .unwrap_or(low);
            assignment
                .add_partition_offset(topic, partition, Offset::Offset(start))
                .map_err(|e| GlobalError::Consumer(e.to_string()))?;
            positions.insert(key.clone(), start);
            ends.insert(key, high);
        }
    }
    consumer
        .assign(&assignment)
        .map_err(|e| GlobalError::Consumer(format!("assigning the global topics: {e}")))?;
    let handler = config.deserialization_handler();
    let deadline = Instant::now() + RESTORE_TIMEOUT;
    let mut quiet_since = Instant::now();
    let behind = |positions: &Offsets| {
        ends.iter()
            .any(|(key, end)| positions.get(key).is_some_and(|p| p < end))
    };
    let mut restored = 0_u64;
    while behind(&positions) {
        if Instant::now() > deadline {
            return Err(GlobalError::Consumer(format!(
                "the global tables were not restored within {RESTORE_TIMEOUT:?}"
            )));
        }
        match consumer.poll(Duration::from_millis(100)) {
            Some(Ok(message)) => {
                write(&state, &message, handler, &mut positions)?;
                restored += 1;
                quiet_since = Instant::now();
            }
            Some(Err(e)) => return Err(GlobalError::Consumer(e.to_string())),
            None if quiet_since.elapsed() > RESTORE_QUIET => break,
            None => {}
        }
    }
    state.checkpoint(&positions)?;
    tracing::info!("homa: restored the global tables from {restored} records");
    Ok(Some(Restored {
        state: Arc::new(state),
        consumer,
        positions,
    }))
}

/// Writes `message` to its table's store and moves its partition's position past it.
fn write(
    state: &GlobalState,
    message: &BorrowedMessage<'_>,
    handler: crate::config::DeserializationHandler,
    positions: &mut Offsets,
) -> Result<(), GlobalError> {
    let headers = super::task::headers_of(message);
    let record = GlobalRecord {
        topic: message.topic(),
        partition: message.partition(),
        offset: message.offset(),
        key: message.key(),
        value: message.payload(),
        timestamp: message.timestamp().to_millis().unwrap_or(-1),
        headers: &headers,
    };
    state.apply(&record, handler)?;
    positions.insert(
        (message.topic().to_string(), message.partition()),
        message.offset() + 1,
    );
    Ok(())
}

/// Keeps the restored tables current on a thread of their own until `shutdown` says;
/// `failed` is told why, if it stops before.
pub(crate) fn spawn(
    restored: Restored,
    config: &StreamsConfig,
    shutdown: impl Fn() -> bool + Send + 'static,
    failed: impl FnOnce(GlobalError) + Send + 'static,
) -> std::io::Result<JoinHandle<()>> {
    let handler = config.deserialization_handler();
    let interval = config.commit_interval();
    std::thread::Builder::new()
        .name(format!("{}-GlobalStreamThread", config.client_id()))
        .spawn(move || {
            let Restored {
                state,
                consumer,
                mut positions,
            } = restored;
            let mut last = (Instant::now(), positions.clone());
            let outcome = (|| {
                while !shutdown() {
                    match consumer.poll(Duration::from_millis(100)) {
                        Some(Ok(message)) => write(&state, &message, handler, &mut positions)?,
                        Some(Err(e)) if super::error::is_transient(&e) => {
                            tracing::warn!("homa: the global consumer: {e}");
                        }
                        Some(Err(e)) => return Err(GlobalError::Consumer(e.to_string())),
                        None => {}
                    }
                    if last.0.elapsed() >= interval && last.1 != positions {
                        state.checkpoint(&positions)?;
                        last = (Instant::now(), positions.clone());
                    }
                }
                state.checkpoint(&positions)?;
                Ok(())
            })();
            if let Err(e) = outcome {
                failed(e);
            }
        })
}

//! `StreamsProducer`: the only owner of a stream thread's Kafka producer, and its record
//! collector. Every record the thread's tasks write (sinks, changelogs, dead letters) goes
//! through [`send`](StreamsProducer::send); a commit goes through
//! [`commit`](StreamsProducer::commit), which makes the records durable before the offsets
//! that cover them.
//!
//! At-least-once: `commit` flushes the producer, then commits the offsets with the
//! consumer. Exactly-once (KIP-447, one transactional producer per thread): the producer is
//! initialised for transactions when made (which fences an older producer of the same
//! `transactional.id` and aborts what it left open); the first send after a commit begins
//! a transaction; `commit` sends the offsets into it, with the consumer's group metadata
//! (so a member the group has moved on from cannot commit), and commits it; `abort` drops
//! it after a failure, and nothing of it is ever read by a `read_committed` reader.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext};
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Message, Offset, TopicPartitionList};

use super::clients;
use super::error::{ProduceError, ThreadError};
use crate::config::{ProductionHandler, StreamsConfig};
use crate::processor::{OutgoingRecord, ProcessError, RecordCollector};

/// How long a commit's flush may wait for acknowledgements before it fails.
const FLUSH_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a step of a transaction may block (Kafka Streams' `max.block.ms` default).
const TRANSACTION_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a flush sleeps when no acknowledgement has arrived since it last looked.
///
/// rdkafka's `flush(timeout)` serves delivery reports in polls of up to 100 ms that run to
/// their end whatever arrives, so a flush with anything in flight took at least 100 ms, and
/// every commit stalled the stream thread that long; and a poll shorter than a millisecond
/// does not wait at all (librdkafka counts whole milliseconds), it spins, taking the CPU
/// the brokers and the client's own threads need. So a flush serves what has arrived, and
/// sleeps this long when nothing has.
const FLUSH_WAIT: Duration = Duration::from_micros(100);

/// At most how many delivery reports (each for a batch of records) one
/// [`poll`](StreamsProducer::poll) serves.
const POLL_EVENTS: usize = 64;

/// Consumed offsets to commit: `(topic, partition)` to the next offset to read, with the
/// commit's metadata (see [`commit_metadata`](crate::processor::commit_metadata)).
pub(crate) type Offsets = BTreeMap<(std::sync::Arc<str>, i32), (i64, String)>;

/// What the producer's delivery reports tell the thread.
#[derive(Debug)]
pub(crate) struct Deliveries {
    handler: ProductionHandler,
    /// The first delivery that failed since the last commit, under log-and-fail.
    failed: Mutex<Option<ProduceError>>,
    /// Records skipped under log-and-continue.
    skipped: std::sync::atomic::AtomicU64,
    /// The last offset acknowledged of each changelog partition, by changelog topic (each
    /// known from the start: a delivery never allocates, and one to another topic takes no
    /// lock), then partition.
    changelogs: BTreeMap<String, Mutex<BTreeMap<i32, i64>>>,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        match result {
            Ok(message) => {
                if let Some(partitions) = self.changelogs.get(message.topic()) {
                    let mut partitions = lock(partitions);
                    let last = partitions.entry(message.partition()).or_insert(-1);
                    *last = (*last).max(message.offset());
                }
            }
            Err((error, message)) => {
                let failure = ProduceError::Delivery {
                    topic: message.topic().to_string(),
                    partition: message.partition(),
                    source: error.clone(),
                };
                match self.handler {
                    ProductionHandler::LogAndFail => {
                        lock(&self.failed).get_or_insert(failure);
                    }
                    ProductionHandler::LogAndContinue => {
                        self.skipped
                            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        tracing::warn!("homa: skipping a record: {failure}");
                    }
                }
            }
        }
    }
}

/// The producer of one stream thread.
pub(crate) struct StreamsProducer {
    producer: BaseProducer<Deliveries>,
    /// The partition counts of the topics partitioners chose for, asked of the broker once.
    partitions: Mutex<BTreeMap<String, i32>>,
    /// Under exactly-once: the producer's `transactional.id`, and whether a transaction
    /// is open (begun by the first send since the last commit).
    transaction: Option<(String, Cell<bool>)>,
}

impl std::fmt::Debug for StreamsProducer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamsProducer").finish_non_exhaustive()
    }
}

impl StreamsProducer {
    /// The producer of stream thread `thread`, which writes (among others) the changelog
    /// topics `changelogs`; transactional, initialised, with `transactional_id` (under
    /// exactly-once).
    pub(crate) fn new(
        config: &StreamsConfig,
        bootstrap: &str,
        thread: usize,
        transactional_id: Option<String>,
        changelogs: impl IntoIterator<Item = String>,
    ) -> Result<Self, ThreadError> {
        // (Under exactly-once the config refuses log-and-continue: a record not delivered
        // in a transaction leaves it to abort.)
        let deliveries = Deliveries {
            handler: config.production_handler(),
            failed: Mutex::new(None),
            skipped: std::sync::atomic::AtomicU64::new(0),
            changelogs: changelogs
                .into_iter()
                .map(|topic| (topic, Mutex::new(BTreeMap::new())))
                .collect(),
        };
        let producer: BaseProducer<Deliveries> =
            clients::producer(config, bootstrap, thread, transactional_id.as_deref())
                .create_with_context(deliveries)
                .map_err(|source| ThreadError::Client {
                    client: "producer",
                    source,
                })?;
        if let Some(id) = &transactional_id {
            producer
                .init_transactions(TRANSACTION_TIMEOUT)
                .map_err(|source| ThreadError::Transaction {
                    operation: "initialising",
                    transactional_id: id.clone(),
                    source,
                })?;
            tracing::info!("homa: stream thread {thread}: transactional producer {id} ready");
        }
        Ok(Self {
            producer,
            partitions: Mutex::new(BTreeMap::new()),
            transaction: transactional_id.map(|id| (id, Cell::new(false))),
        })
    }

    /// Under exactly-once, begins a transaction unless one is open.
    fn begin(&self) -> Result<(), ThreadError> {
        let Some((id, open)) = &self.transaction else {
            return Ok(());
        };
        if !open.get() {
            self.producer
                .begin_transaction()
                .map_err(|source| ThreadError::Transaction {
                    operation: "beginning",
                    transactional_id: id.clone(),
                    source,
                })?;
            open.set(true);
        }
        Ok(())
    }

    /// Hands `record` to the producer. A record librdkafka refuses at once (too large, an
    /// unknown partition) fails, or is skipped and logged under log-and-continue.
    // The error is rare and goes straight up; boxing it would not make the send faster.
    #[allow(clippy::result_large_err)]
    pub(crate) fn send(&self, r: OutgoingRecord<'_>) -> Result<(), ProduceError> {
        if let Some((id, open)) = &self.transaction
            && !open.get()
        {
            self.producer
                .begin_transaction()
                .map_err(|source| ProduceError::Begin {
                    topic: r.topic.to_string(),
                    transactional_id: id.clone(),
                    source,
                })?;
            open.set(true);
        }
        let mut record = BaseRecord::<[u8], [u8], ()>::to(r.topic).timestamp(r.timestamp);
        // librdkafka allocates a header list even when it is empty: most records have none.
        if !r.headers.is_empty() {
            let mut headers = OwnedHeaders::new_with_capacity(r.headers.len());
            for h in r.headers {
                headers = headers.insert(Header {
                    key: &h.key,
                    value: h.value.as_deref(),
                });
            }
            record = record.headers(headers);
        }
        if let Some(key) = r.key {
            record = record.key(key);
        }
        if let Some(value) = r.value {
            record = record.payload(value);
        }
        if let Some(partition) = r.partition {
            record = record.partition(partition);
        }
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    // The local queue is full: serve delivery reports until there is room.
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((source, _)) => {
                    let error = ProduceError::Send {
                        node: r.node.to_string(),
                        topic: r.topic.to_string(),
                        source,
                    };
                    return match self.producer.context().handler {
                        ProductionHandler::LogAndFail => Err(error),
                        ProductionHandler::LogAndContinue => {
                            self.producer
                                .context()
                                .skipped
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                            tracing::warn!("homa: skipping a record: {error}");
                            Ok(())
                        }
                    };
                }
            }
        }
    }

    /// Serves delivery reports that have arrived, without waiting.
    pub(crate) fn poll(&self) {
        for _ in 0..POLL_EVENTS {
            if !self.serve_one() {
                break;
            }
        }
    }

    /// Serves one delivery report if one has arrived; returns whether one had.
    fn serve_one(&self) -> bool {
        let before = self.producer.in_flight_count();
        // A poll without a timeout serves at most one event.
        self.producer.poll(Duration::ZERO);
        self.producer.in_flight_count() < before
    }

    /// Makes every record sent so far durable, then commits `offsets` (the next offset to
    /// read of each consumed partition): with `consumer` (at-least-once), or in the
    /// transaction with the consumer's group metadata, committing it (exactly-once). Fails
    /// with the first record that was not delivered since the last commit (unless the
    /// production handler skips it), and then commits nothing.
    pub(crate) fn commit<C: ConsumerContext>(
        &self,
        offsets: &Offsets,
        consumer: &BaseConsumer<C>,
    ) -> Result<(), ThreadError> {
        if let Some((id, open)) = &self.transaction {
            if !open.get() && offsets.is_empty() {
                return Ok(());
            }
            self.begin()?;
            // Delivered first: the commit would wait for them in polls of 100 ms (see
            // `FLUSH_WAIT`), and fail without saying which record was not delivered.
            self.flush()?;
            let failed = |operation| {
                move |source| ThreadError::Transaction {
                    operation,
                    transactional_id: id.clone(),
                    source,
                }
            };
            if !offsets.is_empty() {
                // Only a consumer without a group has none.
                let group = consumer.group_metadata().ok_or_else(|| {
                    failed("sending the offsets of")(KafkaError::ConsumerCommit(
                        RDKafkaErrorCode::State,
                    ))
                })?;
                let list = offset_list(offsets)?;
                self.producer
                    .send_offsets_to_transaction(&list, &group, TRANSACTION_TIMEOUT)
                    .map_err(failed("sending the offsets of"))?;
            }
            super::crash_points::crash_at(super::crash_points::BEFORE_COMMIT);
            super::crash_points::crash_soon_after(super::crash_points::DURING_COMMIT);
            self.producer
                .commit_transaction(TRANSACTION_TIMEOUT)
                .map_err(failed("committing"))?;
            open.set(false);
            super::crash_points::crash_at(super::crash_points::AFTER_COMMIT);
            return Ok(());
        }
        self.flush()?;
        if offsets.is_empty() {
            return Ok(());
        }
        consumer
            .commit(&offset_list(offsets)?, CommitMode::Sync)
            .map_err(|source| ThreadError::Commit {
                partitions: describe(offsets),
                source,
            })
    }

    /// Waits until every record sent is acknowledged; fails with the first delivery error.
    #[allow(clippy::result_large_err)]
    fn flush(&self) -> Result<(), ProduceError> {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        loop {
            // Without a timeout, rdkafka's flush tells librdkafka to send what lingers at
            // once and says whether anything is still unacknowledged, without serving.
            match self.producer.flush(Duration::ZERO) {
                Ok(()) => break,
                Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                    if Instant::now() < deadline => {}
                Err(source) => return Err(ProduceError::Flush { source }),
            }
            if !self.serve_one() {
                std::thread::sleep(FLUSH_WAIT);
            }
        }
        match lock(&self.producer.context().failed).take() {
            Some(error) => Err(error),
            None => Ok(()),
        }
    }

    /// After a failure: drops what was sent since the last commit, where the guarantee
    /// can (the open transaction is aborted); at-least-once has nothing to take back. An
    /// abort that fails is left to the next producer of the `transactional.id`, whose
    /// initialisation aborts it.
    pub(crate) fn abort(&self) {
        lock(&self.producer.context().failed).take();
        if let Some((id, open)) = &self.transaction
            && open.replace(false)
        {
            // librdkafka's abort purges what is not delivered, then waits until none of it
            // is left, delivery reports included, which only polls serve.
            self.producer
                .purge(rdkafka::producer::PurgeConfig::default().queue().inflight());
            let deadline = Instant::now() + FLUSH_TIMEOUT;
            while self.producer.in_flight_count() > 0 && Instant::now() < deadline {
                if !self.serve_one() {
                    std::thread::sleep(FLUSH_WAIT);
                }
            }
            lock(&self.producer.context().failed).take();
            match self.producer.abort_transaction(TRANSACTION_TIMEOUT) {
                Ok(()) => tracing::info!("homa: transaction of {id} aborted"),
                Err(e) => tracing::warn!(
                    "homa: aborting the transaction of {id}: {e}; the next producer of \
                     {id} aborts it"
                ),
            }
        }
    }

    /// The last offset acknowledged of changelog `topic`'s `partition`, if any.
    pub(crate) fn changelog_offset(&self, topic: &str, partition: i32) -> Option<i64> {
        let partitions = self.producer.context().changelogs.get(topic)?;
        lock(partitions).get(&partition).copied()
    }

    /// Under exactly-once, the error of a producer that a newer one fenced (librdkafka's
    /// fatal error, which fails every record and call after it), if it was.
    pub(crate) fn fenced(&self) -> Option<ThreadError> {
        let (id, _) = self.transaction.as_ref()?;
        let (code, reason) = self.producer.client().fatal_error()?;
        let source = KafkaError::MessageProduction(code);
        if !super::error::is_fenced(&source) {
            return None;
        }
        tracing::warn!("homa: the producer of {id} was fenced: {reason}");
        Some(ThreadError::Transaction {
            operation: "going on with",
            transactional_id: id.clone(),
            source,
        })
    }

    /// Records skipped by the production handler so far.
    pub(crate) fn skipped(&self) -> u64 {
        self.producer
            .context()
            .skipped
            .load(std::sync::atomic::Ordering::Relaxed)
    }
}

/// `offsets` as a list to commit.
fn offset_list(offsets: &Offsets) -> Result<TopicPartitionList, ThreadError> {
    let mut list = TopicPartitionList::with_capacity(offsets.len());
    for ((topic, partition), (next, metadata)) in offsets {
        let mut element = list.add_partition(topic, *partition);
        element
            .set_offset(Offset::Offset(*next))
            .map_err(|source| ThreadError::Commit {
                partitions: format!("{topic}/{partition}"),
                source,
            })?;
        element.set_metadata(metadata.as_str());
    }
    Ok(list)
}

/// `topic/partition@offset, ...`, for errors.
fn describe(offsets: &Offsets) -> String {
    offsets
        .iter()
        .map(|((topic, partition), (next, _))| format!("{topic}/{partition}@{next}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// A stream thread's tasks write through its producer.
impl RecordCollector for StreamsProducer {
    fn send(&self, record: OutgoingRecord<'_>) -> Result<(), ProcessError> {
        StreamsProducer::send(self, record).map_err(Into::into)
    }

    fn partitions(&self, topic: &str) -> Result<i32, ProcessError> {
        if let Some(count) = lock(&self.partitions).get(topic) {
            return Ok(*count);
        }
        let count =
            super::clients::partition_count(self.producer.client(), topic, Duration::from_secs(30))
                .map_err(|e| format!("the partition count for a partitioner: {e}"))?;
        lock(&self.partitions).insert(topic.to_string(), count);
        Ok(count)
    }
}

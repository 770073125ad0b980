//! The record collector of a stream thread: a Kafka producer.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::processor::{OutgoingRecord, ProcessError, RecordCollector};
use crate::topology::CHANGELOG_SUFFIX;

/// Remembers the first failed delivery, so the next flush fails the thread with it.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    first_error: Mutex<Option<String>>,
    /// The last offset acknowledged of each changelog partition, for checkpoints: by topic
    /// (looked up by `&str`, so a delivery allocates only for a new topic), then partition.
    changelogs: Mutex<BTreeMap<String, BTreeMap<i32, i64>>>,
}

impl Deliveries {
    /// The last offset acknowledged of changelog `topic`'s `partition`, if any.
    pub(crate) fn produced(&self, topic: &str, partition: i32) -> Option<i64> {
        self.changelogs
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(topic)
            .and_then(|partitions| partitions.get(&partition))
            .copied()
    }
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
        if let Ok(message) = result
            && message.topic().ends_with(CHANGELOG_SUFFIX)
        {
            let mut changelogs = self
                .changelogs
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            let partitions = match changelogs.get_mut(message.topic()) {
                Some(partitions) => partitions,
                None => changelogs.entry(message.topic().to_string()).or_default(),
            };
            let last = partitions.entry(message.partition()).or_insert(-1);
            *last = (*last).max(message.offset());
        }
        if let Err((error, message)) = result {
            let mut first = self
                .first_error
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            first.get_or_insert_with(|| {
                format!("{}/{}: {error}", message.topic(), message.partition())
            });
        }
    }
}

/// Sends a task's records with one producer per stream thread.
pub(crate) struct KafkaCollector {
    producer: Arc<BaseProducer<Deliveries>>,
}

impl KafkaCollector {
    pub(crate) fn new(producer: Arc<BaseProducer<Deliveries>>) -> Self {
        Self { producer }
    }
}

/// How long one round of [`flush`] waits for acknowledgements.
const FLUSH_ROUND: Duration = Duration::from_millis(1);

/// Waits until every record sent is acknowledged; fails with the first delivery error.
///
/// rdkafka's `flush(timeout)` serves delivery reports in polls of up to 100 ms that run to
/// their end whatever arrives, so a flush with anything in flight took at least 100 ms,
/// and every commit stalled the stream thread that long. Flushing in 1 ms rounds ends as
/// soon as the last acknowledgement is served (each round also tells librdkafka to send
/// what lingers at once).
pub(crate) fn flush(producer: &BaseProducer<Deliveries>, timeout: Duration) -> Result<(), String> {
    let deadline = std::time::Instant::now() + timeout;
    loop {
        match producer.flush(FLUSH_ROUND) {
            Ok(()) => break,
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if std::time::Instant::now() < deadline => {}
            Err(e) => return Err(format!("flushing the producer: {e}")),
        }
    }
    let first = producer
        .context()
        .first_error
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match first {
        Some(error) => Err(format!("a record was not delivered to {error}")),
        None => Ok(()),
    }
}

impl RecordCollector for KafkaCollector {
    fn send(&self, r: OutgoingRecord<'_>) -> Result<(), ProcessError> {
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
                Err((e, _)) => {
                    return Err(format!("sink {}: sending to {}: {e}", r.node, r.topic).into());
                }
            }
        }
    }
}

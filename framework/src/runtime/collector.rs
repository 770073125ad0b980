//! The record collector of a stream thread: a Kafka producer.

use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use rdkafka::message::{DeliveryResult, Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::{ClientContext, Message};

use crate::processor::{OutgoingRecord, ProcessError, RecordCollector};

/// Remembers the first failed delivery, so the next flush fails the thread with it.
#[derive(Debug, Default)]
pub(crate) struct Deliveries {
    first_error: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, (): ()) {
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

/// Waits until every record sent is acknowledged; fails with the first delivery error.
pub(crate) fn flush(producer: &BaseProducer<Deliveries>, timeout: Duration) -> Result<(), String> {
    producer
        .flush(timeout)
        .map_err(|e| format!("flushing the producer: {e}"))?;
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

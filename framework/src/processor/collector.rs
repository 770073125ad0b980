//! Where sinks hand their serialized records: a Kafka producer in the runtime, a list in
//! the test driver.

use crate::header::Headers;

use super::ProcessError;

/// A serialized record on its way to a topic.
#[derive(Debug, Clone, Copy)]
pub(crate) struct OutgoingRecord<'a> {
    pub(crate) topic: &'a str,
    /// `None` leaves the partition to the producer's partitioner (murmur2 of the key).
    pub(crate) partition: Option<i32>,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) timestamp: i64,
    pub(crate) headers: &'a Headers,
    /// The sink node that wrote it, for error messages.
    pub(crate) node: &'a str,
}

/// Takes a task's outgoing records.
pub(crate) trait RecordCollector {
    fn send(&self, record: OutgoingRecord<'_>) -> Result<(), ProcessError>;

    /// How many partitions `topic` has, for a partitioner to choose from (the test
    /// driver's topics have one).
    fn partitions(&self, topic: &str) -> Result<i32, ProcessError> {
        let _ = topic;
        Ok(1)
    }
}

/// A task's collector as the changelog sink of its stores.
pub(crate) struct CollectorSink(pub(crate) std::rc::Rc<dyn RecordCollector>);

impl crate::state::ChangelogSink for CollectorSink {
    fn send_changelog(&self, r: crate::state::ChangelogRecord<'_>) -> Result<(), ProcessError> {
        let headers = Headers::new();
        self.0.send(OutgoingRecord {
            topic: r.topic,
            partition: Some(r.partition),
            key: Some(r.key),
            value: r.value,
            timestamp: r.timestamp,
            headers: &headers,
            node: r.store,
        })
    }
}

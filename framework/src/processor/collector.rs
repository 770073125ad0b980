//! Where sinks hand their serialized records: a Kafka producer in the runtime, a list in
//! the test driver.

use crate::header::Headers;

use super::ProcessError;

/// A serialized record on its way to a topic.
// `partition` and `node` are for the Kafka producer's collector in the runtime.
#[allow(dead_code)]
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
}

//! Source nodes: records from a topic, deserialized and forwarded into the topology.

use std::fmt;
use std::sync::Arc;

use super::{ProcessError, ProcessorContext, Record, RecordMetadata};
use crate::header::Headers;
use crate::serde::{SerdeError, SharedSerde};

/// A record as read from a topic, before deserialization.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RawRecord<'a> {
    pub(crate) topic: &'a Arc<str>,
    pub(crate) partition: i32,
    pub(crate) offset: i64,
    pub(crate) timestamp: i64,
    pub(crate) key: Option<&'a [u8]>,
    pub(crate) value: Option<&'a [u8]>,
    pub(crate) headers: &'a Headers,
}

/// Which part of a record failed to deserialize.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordPart {
    /// The key.
    Key,
    /// The value.
    Value,
}

impl fmt::Display for RecordPart {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Key => "key",
            Self::Value => "value",
        })
    }
}

/// A record whose key or value its source's serde could not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("source {node}: cannot deserialize the {part} of {metadata}: {source}")]
pub struct DeserializationError {
    /// The source node.
    pub node: String,
    /// Where the record is: topic, partition, offset.
    pub metadata: RecordMetadata,
    /// Key or value.
    pub part: RecordPart,
    /// The serde's error.
    #[source]
    pub source: SerdeError,
}

/// What reading a raw record led to.
#[derive(Debug)]
pub(crate) enum SourceError {
    /// The record could not be deserialized; the task's handler decides.
    Deserialization(DeserializationError),
    /// A processor downstream failed.
    Process(ProcessError),
}

/// The entry point of a task for the records of one source.
pub(crate) trait SourceEntry {
    /// The source node's name.
    fn name(&self) -> String;

    /// Deserializes `raw` (unless `read` has it read already, by
    /// [`timestamp`](Self::timestamp)) and forwards it.
    fn process_raw(&self, raw: RawRecord<'_>, read: Option<ReadRecord>) -> Result<(), SourceError>;

    /// The timestamp the task orders `raw` by: its own, or what the source's timestamp
    /// extractor makes of it given the partition's largest timestamp so far. An extractor
    /// needs the record read: it is returned too, to be processed without being read again.
    fn timestamp(&self, raw: RawRecord<'_>, partition_time: i64) -> (i64, Option<ReadRecord>);
}

/// A record its source has deserialized before it is processed: a `Record<K, V>` of the
/// source's types.
pub(crate) type ReadRecord = Box<dyn std::any::Any>;

/// Chooses a record's timestamp from its content, as Kafka Streams' `TimestampExtractor`:
/// `(record, partition time) -> timestamp`. A negative result drops the record (counted).
pub type TimestampExtractor<K, V> = Arc<dyn Fn(&Record<K, V>, i64) -> i64 + Send + Sync>;

/// A source: deserializes with its serdes and forwards to its children.
pub(crate) struct SourceNode<K, V> {
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    extractor: Option<TimestampExtractor<K, V>>,
    ctx: std::cell::RefCell<ProcessorContext<K, V>>,
}

impl<K, V> SourceNode<K, V> {
    pub(crate) fn new(
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        extractor: Option<TimestampExtractor<K, V>>,
        ctx: ProcessorContext<K, V>,
    ) -> Self {
        Self {
            key_serde,
            value_serde,
            extractor,
            ctx: std::cell::RefCell::new(ctx),
        }
    }
}

impl<K: 'static, V: 'static> SourceNode<K, V> {
    /// The typed record of `raw`, or which part could not be read and why.
    fn read(&self, raw: &RawRecord<'_>) -> Result<Record<K, V>, (RecordPart, SerdeError)> {
        let key = read_part(&self.key_serde, raw, raw.key, RecordPart::Key)?;
        let value = read_part(&self.value_serde, raw, raw.value, RecordPart::Value)?;
        Ok(Record::from_parts(
            key,
            value,
            raw.timestamp,
            raw.headers.clone(),
        ))
    }
}

/// `part` of `raw`, its `bytes` (`None`: null) read with `serde`.
fn read_part<T: 'static>(
    serde: &SharedSerde<T>,
    raw: &RawRecord<'_>,
    bytes: Option<&[u8]>,
    part: RecordPart,
) -> Result<Option<T>, (RecordPart, SerdeError)> {
    bytes
        .map(|bytes| serde.deserialize(raw.topic, raw.headers, bytes))
        .transpose()
        .map_err(|e| (part, e))
}

impl<K: Clone + 'static, V: Clone + 'static> SourceEntry for SourceNode<K, V> {
    fn name(&self) -> String {
        self.ctx.borrow().node_name().to_string()
    }

    fn process_raw(&self, raw: RawRecord<'_>, read: Option<ReadRecord>) -> Result<(), SourceError> {
        let ctx = &mut *self.ctx.borrow_mut();
        let metadata = RecordMetadata {
            topic: raw.topic.clone(),
            partition: raw.partition,
            offset: raw.offset,
        };
        let read = read.and_then(|read| read.downcast::<Record<K, V>>().ok());
        let mut record = match read {
            Some(record) => *record,
            None => self.read(&raw).map_err(|(part, source)| {
                SourceError::Deserialization(DeserializationError {
                    node: ctx.node_name().to_string(),
                    metadata: metadata.clone(),
                    part,
                    source,
                })
            })?,
        };
        // The timestamp the extractor chose, if any.
        record.timestamp = raw.timestamp;
        ctx.set_record_metadata(Some(metadata));
        ctx.set_record_timestamp(record.timestamp);
        ctx.forward(record).map_err(SourceError::Process)
    }

    fn timestamp(&self, raw: RawRecord<'_>, partition_time: i64) -> (i64, Option<ReadRecord>) {
        // Only an extractor needs the record read: without one, it is read when processed.
        let Some(extract) = &self.extractor else {
            return (raw.timestamp, None);
        };
        match self.read(&raw) {
            Ok(record) => (extract(&record, partition_time), Some(Box::new(record))),
            // Unreadable records keep their own timestamp; processing reports them.
            Err(_) => (raw.timestamp, None),
        }
    }
}

//! Sink nodes: records serialized and handed to the task's record collector.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;

use super::collector::{OutgoingRecord, RecordCollector};
use super::node::Downstream;
use super::{ProcessError, Record};
use crate::serde::SharedSerde;

/// Chooses the topic of each record, for `to` with a topic per record.
pub(crate) type TopicChooser<K, V> = Arc<dyn Fn(Option<&K>, Option<&V>) -> String + Send + Sync>;

/// Chooses the partition of each record a sink writes (Kafka Streams' `StreamPartitioner`):
/// given the topic, the record's key and value and the topic's partition count, a partition
/// in `0..count`, or `None` for the default (murmur2 of the serialized key, as Kafka's
/// producer partitions).
pub type StreamPartitioner<K, V> =
    Arc<dyn Fn(&str, Option<&K>, Option<&V>, i32) -> Option<i32> + Send + Sync>;

/// Where a sink writes.
pub(crate) enum SinkTopic<K, V> {
    Fixed(Arc<str>),
    PerRecord(TopicChooser<K, V>),
}

/// A sink: serializes with its serdes into reused buffers and hands the bytes on.
pub(crate) struct SinkNode<K, V> {
    name: Arc<str>,
    topic: SinkTopic<K, V>,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
    collector: Rc<dyn RecordCollector>,
    partitioner: Option<StreamPartitioner<K, V>>,
    buffers: RefCell<(Vec<u8>, Vec<u8>)>,
}

impl<K, V> SinkNode<K, V> {
    pub(crate) fn new(
        name: Arc<str>,
        topic: SinkTopic<K, V>,
        (key_serde, value_serde): (SharedSerde<K>, SharedSerde<V>),
        partitioner: Option<StreamPartitioner<K, V>>,
        collector: Rc<dyn RecordCollector>,
    ) -> Self {
        Self {
            name,
            topic,
            key_serde,
            value_serde,
            collector,
            partitioner,
            buffers: RefCell::new((Vec::new(), Vec::new())),
        }
    }

    /// The partition the partitioner chooses for `record` in `topic`, if it has one.
    fn partition(&self, topic: &str, record: &Record<K, V>) -> Result<Option<i32>, ProcessError> {
        let Some(partitioner) = &self.partitioner else {
            return Ok(None);
        };
        let count = self.collector.partitions(topic)?;
        match partitioner(topic, record.key.as_ref(), record.value.as_ref(), count) {
            Some(p) if !(0..count).contains(&p) => Err(format!(
                "sink {}: the partitioner chose partition {p} of topic {topic}, which has \
                 {count} partitions",
                self.name
            )
            .into()),
            chosen => Ok(chosen),
        }
    }
}

impl<K: 'static, V: 'static> Downstream<K, V> for SinkNode<K, V> {
    fn process(&self, mut record: Record<K, V>) -> Result<(), ProcessError> {
        let chosen;
        let topic: &str = match &self.topic {
            SinkTopic::Fixed(topic) => topic,
            SinkTopic::PerRecord(choose) => {
                chosen = choose(record.key.as_ref(), record.value.as_ref());
                &chosen
            }
        };
        let partition = self.partition(topic, &record)?;
        let (key_buf, value_buf) = &mut *self.buffers.borrow_mut();
        let failed = |part: &str, e| {
            format!(
                "sink {}: cannot serialize the {part} for topic {topic}: {e}",
                self.name
            )
        };
        key_buf.clear();
        value_buf.clear();
        if let Some(key) = &record.key {
            self.key_serde
                .serialize(topic, &mut record.headers, key, key_buf)
                .map_err(|e| failed("key", e))?;
        }
        if let Some(value) = &record.value {
            self.value_serde
                .serialize(topic, &mut record.headers, value, value_buf)
                .map_err(|e| failed("value", e))?;
        }
        self.collector.send(OutgoingRecord {
            topic,
            partition,
            key: record.key.is_some().then_some(key_buf.as_slice()),
            value: record.value.is_some().then_some(value_buf.as_slice()),
            timestamp: record.timestamp,
            headers: &record.headers,
            node: &self.name,
        })
    }
}

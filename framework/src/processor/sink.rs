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
    buffers: RefCell<(Vec<u8>, Vec<u8>)>,
}

impl<K, V> SinkNode<K, V> {
    pub(crate) fn new(
        name: Arc<str>,
        topic: SinkTopic<K, V>,
        key_serde: SharedSerde<K>,
        value_serde: SharedSerde<V>,
        collector: Rc<dyn RecordCollector>,
    ) -> Self {
        Self {
            name,
            topic,
            key_serde,
            value_serde,
            collector,
            buffers: RefCell::new((Vec::new(), Vec::new())),
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
            partition: None,
            key: record.key.is_some().then_some(key_buf.as_slice()),
            value: record.value.is_some().then_some(value_buf.as_slice()),
            timestamp: record.timestamp,
            headers: &record.headers,
            node: &self.name,
        })
    }
}

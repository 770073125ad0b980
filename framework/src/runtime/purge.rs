//! The purge of repartition topics, as Kafka Streams does it: a repartition topic keeps
//! its records for ever (`retention.ms=-1`, so that records with old event times are not
//! deleted before they are read), and a stream thread deletes them up to the offsets it
//! has committed for them, every `repartition.purge.interval.ms`.
//!
//! The deletion runs in the background; the thread only looks whether the last one is
//! done before it asks for the next.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions};
use rdkafka::client::DefaultClientContext;
use rdkafka::error::KafkaResult;
use rdkafka::{Offset, TopicPartitionList};

use super::clients;
use super::error::ThreadError;
use crate::config::StreamsConfig;
use crate::topology::Topology;

/// The topic configs of a repartition topic, Kafka Streams' (`RepartitionTopicConfig`).
pub(crate) const REPARTITION_TOPIC_CONFIGS: &[(&str, &str)] = &[
    ("cleanup.policy", "delete"),
    ("retention.ms", "-1"),
    ("segment.bytes", "52428800"),
    ("message.timestamp.type", "CreateTime"),
];

type Deletion = Pin<Box<dyn Future<Output = KafkaResult<TopicPartitionList>>>>;

/// Deletes the records of a stream thread's repartition topics up to its commits.
pub(crate) struct Purger {
    admin: AdminClient<DefaultClientContext>,
    /// The repartition topics, by their full names.
    topics: HashSet<String>,
    interval: Duration,
    last: Instant,
    /// The deletion asked for last, while it runs.
    running: Option<Deletion>,
    /// The offset each partition was purged up to, not to be asked again.
    purged: HashMap<(Arc<str>, i32), i64>,
    thread: usize,
}

impl Purger {
    /// The purger of stream thread `thread`, or none when the topology has no repartition
    /// topic.
    pub(crate) fn new(
        topology: &Topology,
        config: &StreamsConfig,
        bootstrap: &str,
        thread: usize,
    ) -> Result<Option<Self>, ThreadError> {
        let app = config.application_id();
        let topics: HashSet<String> = (topology.internal_topics().into_iter())
            .map(|(topic, _)| topology.topic_name(topic, app))
            .collect();
        // The embedded Kafka keeps its topics in memory, and has no DeleteRecords.
        if topics.is_empty() || super::embedded::is_embedded(bootstrap) {
            return Ok(None);
        }
        let admin = clients::admin(config, bootstrap)
            .create()
            .map_err(|source| ThreadError::Client {
                client: "admin",
                source,
            })?;
        Ok(Some(Self {
            admin,
            topics,
            interval: config.repartition_purge_interval(),
            last: Instant::now(),
            running: None,
            purged: HashMap::new(),
            thread,
        }))
    }

    /// After a commit: once the interval has passed and the last deletion is done, asks
    /// for the records of the repartition partitions among `committed` (topic, partition,
    /// next offset to read) to be deleted up to those offsets.
    pub(crate) fn after_commit<'a>(
        &mut self,
        committed: impl Iterator<Item = (&'a Arc<str>, i32, i64)>,
    ) {
        if let Some(running) = &mut self.running {
            match running
                .as_mut()
                .poll(&mut Context::from_waker(Waker::noop()))
            {
                Poll::Pending => return,
                Poll::Ready(outcome) => {
                    self.running = None;
                    self.report(outcome);
                }
            }
        }
        if self.last.elapsed() < self.interval {
            return;
        }
        self.last = Instant::now();
        let mut list = TopicPartitionList::new();
        for (topic, partition, offset) in committed {
            if offset <= 0 || !self.topics.contains(&**topic) {
                continue;
            }
            let key = (topic.clone(), partition);
            if self.purged.get(&key).is_some_and(|&done| done >= offset) {
                continue;
            }
            if list
                .add_partition_offset(topic, partition, Offset::Offset(offset))
                .is_ok()
            {
                self.purged.insert(key, offset);
            }
        }
        if list.count() == 0 {
            return;
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        self.running = Some(Box::pin(self.admin.delete_records(&list, &options)));
    }

    /// Logs what failed of a deletion; the next one asks again.
    fn report(&mut self, outcome: KafkaResult<TopicPartitionList>) {
        let failed: Vec<String> = match outcome {
            Err(e) => {
                self.purged.clear();
                vec![e.to_string()]
            }
            Ok(list) => (list.elements().iter())
                .filter_map(|e| {
                    let error = e.error().err()?;
                    self.purged.remove(&(Arc::from(e.topic()), e.partition()));
                    Some(format!("{}/{}: {error}", e.topic(), e.partition()))
                })
                .collect(),
        };
        if !failed.is_empty() {
            tracing::warn!(
                "homa: stream thread {}: purging repartition topics failed, to retry: {}",
                self.thread,
                failed.join(", ")
            );
        }
    }
}

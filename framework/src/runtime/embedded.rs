//! An embedded Kafka: librdkafka's in-process mock cluster, for a first run without a
//! broker to install.
//!
//! It speaks enough of Kafka's protocol for an at-least-once application (produce, fetch,
//! offsets, consumer groups), but it has no CreateTopics API: while an
//! [`EmbeddedKafka`] runs, a [`KafkaStreams`](super::KafkaStreams) whose
//! `bootstrap.servers` are its own creates its internal topics through it instead, and
//! does not purge repartition topics (no DeleteRecords either). Its transactions are not
//! real (a `read_committed` reader sees aborted records), so `KafkaStreams::start` refuses
//! exactly-once on it; and it keeps everything in memory: never the proof that an
//! application works with Kafka.
//!
//! ```
//! use homa::runtime::EmbeddedKafka;
//!
//! let kafka = EmbeddedKafka::start(1)?;
//! kafka.create_topic("orders", 4)?;
//! // kafka.bootstrap_servers() is what clients and StreamsConfig connect to.
//! # Ok::<(), homa::runtime::EmbeddedError>(())
//! ```

use std::collections::HashMap;
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock, PoisonError};
use std::thread::JoinHandle;

use rdkafka::mocking::MockCluster;

/// Why the embedded Kafka failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EmbeddedError {
    /// librdkafka could not make the mock cluster.
    #[error("starting the embedded Kafka (librdkafka's mock cluster): {0}")]
    Start(String),
    /// A topic could not be created.
    #[error("creating topic {topic} on the embedded Kafka: {reason}")]
    CreateTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// The embedded Kafka has stopped.
    #[error("the embedded Kafka has stopped")]
    Stopped,
}

/// What the thread that owns the mock cluster is asked to do.
enum Request {
    CreateTopic {
        name: String,
        partitions: i32,
        reply: mpsc::Sender<Result<(), String>>,
    },
    Stop,
}

/// The running embedded clusters, by bootstrap servers.
fn clusters() -> &'static Mutex<HashMap<String, mpsc::Sender<Request>>> {
    static CLUSTERS: OnceLock<Mutex<HashMap<String, mpsc::Sender<Request>>>> = OnceLock::new();
    CLUSTERS.get_or_init(Mutex::default)
}

/// librdkafka's mock cluster, run on a thread of its own, until dropped.
#[derive(Debug)]
pub struct EmbeddedKafka {
    bootstrap: String,
    requests: mpsc::Sender<Request>,
    thread: Option<JoinHandle<()>>,
}

impl EmbeddedKafka {
    /// Starts a mock cluster of `brokers` brokers.
    pub fn start(brokers: i32) -> Result<Self, EmbeddedError> {
        let (requests, incoming) = mpsc::channel();
        let (started, bootstrap) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("homa-embedded-kafka".into())
            .spawn(move || {
                let cluster = match MockCluster::new(brokers) {
                    Ok(cluster) => cluster,
                    Err(e) => {
                        let _ = started.send(Err(e.to_string()));
                        return;
                    }
                };
                let _ = started.send(Ok(cluster.bootstrap_servers()));
                for request in incoming {
                    match request {
                        Request::CreateTopic {
                            name,
                            partitions,
                            reply,
                        } => {
                            let outcome = cluster
                                .create_topic(&name, partitions, 1)
                                .map_err(|e| e.to_string());
                            let _ = reply.send(outcome);
                        }
                        Request::Stop => break,
                    }
                }
            })
            .map_err(|e| EmbeddedError::Start(e.to_string()))?;
        let bootstrap = match bootstrap.recv() {
            Ok(Ok(bootstrap)) => bootstrap,
            Ok(Err(reason)) => return Err(EmbeddedError::Start(reason)),
            Err(_) => return Err(EmbeddedError::Start("its thread ended".into())),
        };
        (clusters().lock().unwrap_or_else(PoisonError::into_inner))
            .insert(bootstrap.clone(), requests.clone());
        Ok(Self {
            bootstrap,
            requests,
            thread: Some(thread),
        })
    }

    /// The `bootstrap.servers` of the cluster.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap
    }

    /// Creates `topic` with `partitions` partitions (nothing happens if it exists).
    pub fn create_topic(&self, topic: &str, partitions: i32) -> Result<(), EmbeddedError> {
        create(&self.requests, topic, partitions)
    }
}

fn create(
    requests: &mpsc::Sender<Request>,
    topic: &str,
    partitions: i32,
) -> Result<(), EmbeddedError> {
    let (reply, outcome) = mpsc::channel();
    let request = Request::CreateTopic {
        name: topic.to_string(),
        partitions,
        reply,
    };
    requests.send(request).map_err(|_| EmbeddedError::Stopped)?;
    match outcome.recv() {
        Ok(Ok(())) => Ok(()),
        Ok(Err(reason)) => Err(EmbeddedError::CreateTopic {
            topic: topic.to_string(),
            reason,
        }),
        Err(_) => Err(EmbeddedError::Stopped),
    }
}

/// When `bootstrap` is an embedded Kafka's: creates `topic` with `partitions` partitions
/// on it. None when it is not (a real cluster).
pub(crate) fn create_topic(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
) -> Option<Result<(), EmbeddedError>> {
    let requests = (clusters().lock().unwrap_or_else(PoisonError::into_inner))
        .get(bootstrap)
        .cloned()?;
    Some(create(&requests, topic, partitions))
}

/// Whether `bootstrap` is an embedded Kafka's.
pub(crate) fn is_embedded(bootstrap: &str) -> bool {
    (clusters().lock().unwrap_or_else(PoisonError::into_inner)).contains_key(bootstrap)
}

impl Drop for EmbeddedKafka {
    fn drop(&mut self) {
        (clusters().lock().unwrap_or_else(PoisonError::into_inner)).remove(&self.bootstrap);
        let _ = self.requests.send(Request::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

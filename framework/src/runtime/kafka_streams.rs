//! `KafkaStreams`: a topology running against Kafka as a consumer group.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::types::RDKafkaErrorCode;

use super::instance::Instance;
use super::metrics::Metrics;
use super::{clients, stream_thread};
use crate::config::{ConfigError, StreamsConfig};
use crate::state::{ReadOnlyKeyValueStore, RocksDbMemory, StoreError};

/// The share of the RocksDB memory budget that memtables may take.
const ROCKSDB_WRITE_BUFFER_SHARE: f64 = 0.5;
use crate::topology::Topology;

/// The life of a `KafkaStreams` instance, as Kafka Streams names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum State {
    /// Made, not started.
    Created,
    /// Started; the group is assigning partitions.
    Rebalancing,
    /// Processing.
    Running,
    /// `close()` was called; threads are finishing.
    PendingShutdown,
    /// Closed.
    NotRunning,
    /// A stream thread failed; the instance stopped.
    Error,
}

/// An error of a running instance, as its uncaught-error handler sees it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stream thread {thread}: {message}")]
pub struct StreamThreadError {
    /// The thread's number.
    pub thread: usize,
    /// What failed, with the task and record coordinates where there are some.
    pub message: String,
}

/// Why an instance could not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartError {
    /// `start()` was called on an instance that is not new.
    #[error("start() needs a new instance; this one is {0:?}")]
    NotCreated(State),
    /// A topic the topology reads does not exist, or its metadata could not be read.
    #[error("source topic {topic}: {reason}")]
    SourceTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
    /// Topics read by one sub-topology have different partition counts.
    #[error(
        "topics {topics:?} are read together (co-partitioned) but have {partitions:?} partitions"
    )]
    CoPartitioning {
        /// The topics.
        topics: Vec<String>,
        /// Their partition counts, in the same order.
        partitions: Vec<i32>,
    },
    /// An internal topic could not be created.
    #[error("creating internal topic {topic}: {reason}")]
    InternalTopic {
        /// The topic.
        topic: String,
        /// Why.
        reason: String,
    },
}

type Listener = Arc<dyn Fn(State, State) + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&StreamThreadError) + Send + Sync>;

/// What the instance and its threads share.
struct Shared {
    state: Mutex<State>,
    listener: Mutex<Option<Listener>>,
    handler: Mutex<Option<ErrorHandler>>,
    shutdown: AtomicBool,
    /// Stream threads whose partitions are being (re)assigned.
    rebalancing: std::sync::atomic::AtomicUsize,
    instance: Instance,
}

impl Shared {
    /// A thread's partitions start moving (`assigned == false`) or are assigned: the
    /// instance is `Rebalancing` while any thread waits for its assignment, else `Running`.
    fn rebalance(&self, assigned: bool, waiting: &AtomicBool) {
        if assigned {
            if waiting.swap(false, Ordering::SeqCst)
                && self.rebalancing.fetch_sub(1, Ordering::SeqCst) == 1
            {
                self.transition(State::Running);
            }
        } else if !waiting.swap(true, Ordering::SeqCst) {
            self.rebalancing.fetch_add(1, Ordering::SeqCst);
            self.transition(State::Rebalancing);
        }
    }

    fn transition(&self, to: State) {
        let from = {
            let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
            let from = *state;
            if from == to || from == State::NotRunning {
                return;
            }
            *state = to;
            from
        };
        let listener = self
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        if let Some(listener) = listener {
            listener(from, to);
        }
    }
}

/// Runs a [`Topology`] against Kafka: `num.stream.threads` threads, each a member of the
/// consumer group `application.id`, processing the tasks of its partitions.
pub struct KafkaStreams {
    topology: Topology,
    config: StreamsConfig,
    bootstrap: String,
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl fmt::Debug for KafkaStreams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KafkaStreams")
            .field("application_id", &self.config.application_id())
            .field("state", &self.state())
            .finish_non_exhaustive()
    }
}

impl KafkaStreams {
    /// An instance of `topology`, not started.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] without `bootstrap.servers`.
    pub fn new(topology: &Topology, config: StreamsConfig) -> Result<Self, ConfigError> {
        let bootstrap = config
            .bootstrap_servers()
            .ok_or(ConfigError::Missing {
                key: "bootstrap.servers",
            })?
            .to_string();
        let rocksdb = RocksDbMemory::new(
            usize::try_from(config.rocksdb_memory_bytes()).unwrap_or(usize::MAX),
            ROCKSDB_WRITE_BUFFER_SHARE,
        );
        Ok(Self {
            topology: topology.clone(),
            config,
            bootstrap,
            shared: Arc::new(Shared {
                state: Mutex::new(State::Created),
                listener: Mutex::new(None),
                handler: Mutex::new(None),
                shutdown: AtomicBool::new(false),
                rebalancing: std::sync::atomic::AtomicUsize::new(0),
                instance: Instance::new(Some(rocksdb)),
            }),
            threads: Vec::new(),
        })
    }

    /// Calls `listener(old, new)` on every change of state.
    pub fn set_state_listener(&self, listener: impl Fn(State, State) + Send + Sync + 'static) {
        *self
            .shared
            .listener
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(listener));
    }

    /// Calls `handler` when a stream thread fails; the instance then stops (state `Error`).
    pub fn set_uncaught_error_handler(
        &self,
        handler: impl Fn(&StreamThreadError) + Send + Sync + 'static,
    ) {
        *self
            .shared
            .handler
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = Some(Arc::new(handler));
    }

    /// What the instance has done so far: restorations, for now.
    pub fn metrics(&self) -> Metrics {
        self.shared.instance.metrics()
    }

    /// A read-only view of the key-value store `name` across this instance's tasks (Kafka
    /// Streams' interactive queries): `get`, `range`, `all`, `approximate_num_entries` over
    /// the partitions this instance has. Ask again after a rebalance.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when the topology has no such store,
    /// [`StoreError::NotAvailable`] while no local task has it (not running, rebalancing),
    /// [`StoreError::WrongTypes`] when `(K, V)` are not its types.
    pub fn store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        if !self.topology.has_store(name) {
            return Err(StoreError::Unknown {
                store: name.to_string(),
            });
        }
        self.shared.instance.store(name)
    }

    /// The current state.
    pub fn state(&self) -> State {
        *self
            .shared
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }

    /// Checks the source topics, creates the internal topics and starts the stream threads.
    ///
    /// # Errors
    /// [`StartError`] naming the topic that is missing, not co-partitioned, or could not be
    /// created.
    pub fn start(&mut self) -> Result<(), StartError> {
        let state = self.state();
        if state != State::Created {
            return Err(StartError::NotCreated(state));
        }
        self.prepare_topics()?;
        self.shared.transition(State::Rebalancing);
        let threads = self.config.num_stream_threads();
        // Every thread starts waiting for its first assignment.
        self.shared.rebalancing.store(threads, Ordering::SeqCst);
        for index in 0..threads {
            let (topology, config, bootstrap) = (
                self.topology.clone(),
                self.config.clone(),
                self.bootstrap.clone(),
            );
            let shared = self.shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("{}-StreamThread-{index}", config.client_id()))
                .spawn(move || {
                    let waiting = AtomicBool::new(true);
                    let on_rebalance: stream_thread::OnRebalance = {
                        let shared = shared.clone();
                        Arc::new(move |assigned| shared.rebalance(assigned, &waiting))
                    };
                    let outcome = stream_thread::run(
                        index,
                        &topology,
                        &config,
                        &bootstrap,
                        &shared.shutdown,
                        on_rebalance,
                        &shared.instance,
                    );
                    if let Err(message) = outcome {
                        let error = StreamThreadError {
                            thread: index,
                            message,
                        };
                        tracing::error!("homa: {error}");
                        let handler = shared
                            .handler
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner)
                            .clone();
                        if let Some(handler) = handler {
                            handler(&error);
                        }
                        shared.shutdown.store(true, Ordering::Relaxed);
                        shared.transition(State::Error);
                    }
                });
            match thread {
                Ok(handle) => self.threads.push(handle),
                Err(e) => {
                    tracing::error!("homa: cannot start stream thread {index}: {e}");
                    self.shared.shutdown.store(true, Ordering::Relaxed);
                    self.shared.transition(State::Error);
                }
            }
        }
        Ok(())
    }

    /// Stops the threads, each after a last commit, waiting up to `timeout`. Returns whether
    /// all stopped in time.
    pub fn close(&mut self, timeout: Duration) -> bool {
        if self.state() != State::Error {
            self.shared.transition(State::PendingShutdown);
        }
        self.shared.shutdown.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let all = self.threads.iter().all(JoinHandle::is_finished);
        for thread in std::mem::take(&mut self.threads) {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        if self.state() != State::Error {
            self.shared.transition(State::NotRunning);
        }
        all
    }

    /// Creates internal topic `name` with `count` partitions and `configs` (it may exist
    /// already, from an earlier run), and waits until its partitions have leaders.
    fn create_internal_topic(
        &self,
        admin: &AdminClient<DefaultClientContext>,
        probe: &BaseConsumer,
        name: &str,
        count: i32,
        configs: &[(&str, &str)],
    ) -> Result<(), StartError> {
        let replication = match self.config.replication_factor() {
            -1 => TopicReplication::Fixed(-1),
            n => TopicReplication::Fixed(i32::from(n)),
        };
        let mut new_topic = NewTopic::new(name, count, replication);
        for (key, value) in configs {
            new_topic = new_topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
        let created = futures_executor::block_on(admin.create_topics([&new_topic], &options))
            .map_err(|e| StartError::InternalTopic {
                topic: name.to_string(),
                reason: e.to_string(),
            })?;
        for result in created {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
                Err((_, code)) => {
                    return Err(StartError::InternalTopic {
                        topic: name.to_string(),
                        reason: code.to_string(),
                    });
                }
            }
        }
        wait_for_topic(probe, name, count)
    }

    fn prepare_topics(&self) -> Result<(), StartError> {
        let app = self.config.application_id();
        let probe: BaseConsumer = clients::admin(&self.config, &self.bootstrap)
            .create()
            .map_err(|e| StartError::SourceTopic {
                topic: String::new(),
                reason: e.to_string(),
            })?;
        let mut partitions: BTreeMap<String, i32> = BTreeMap::new();
        let internal: Vec<String> = self
            .topology
            .internal_topics()
            .iter()
            .map(|(t, _)| self.topology.topic_name(t, app))
            .collect();
        for topic in self.topology.source_topics() {
            let topic = self.topology.topic_name(topic, app);
            if internal.contains(&topic) {
                continue;
            }
            let count = partition_count(&probe, &topic)?;
            partitions.insert(topic, count);
        }
        let input_partitions = partitions.values().copied().max().unwrap_or(1);
        let admin: AdminClient<DefaultClientContext> =
            clients::admin(&self.config, &self.bootstrap)
                .create()
                .map_err(|e| StartError::InternalTopic {
                    topic: String::new(),
                    reason: e.to_string(),
                })?;
        for (topic, asked) in self.topology.internal_topics() {
            let name = self.topology.topic_name(topic, app);
            let count = asked.unwrap_or(input_partitions);
            self.create_internal_topic(&admin, &probe, &name, count, &[])?;
            partitions.insert(name, count);
        }
        // A changelog has a partition per task of the sub-topology that writes it.
        for (name, sub) in self.topology.changelog_topics(app) {
            let count = self
                .topology
                .subtopologies()
                .iter()
                .filter(|s| s.id == sub)
                .flat_map(|s| &s.source_topics)
                .filter_map(|t| partitions.get(&self.topology.topic_name(t, app)).copied())
                .max()
                .unwrap_or(input_partitions);
            let compact = [("cleanup.policy", "compact")];
            self.create_internal_topic(&admin, &probe, &name, count, &compact)?;
        }
        for sub in self.topology.subtopologies() {
            let topics: Vec<String> = sub
                .source_topics
                .iter()
                .map(|t| self.topology.topic_name(t, app))
                .collect();
            let counts: Vec<i32> = topics
                .iter()
                .map(|t| partitions.get(t).copied().unwrap_or(0))
                .collect();
            if counts.windows(2).any(|w| w[0] != w[1]) {
                return Err(StartError::CoPartitioning {
                    topics,
                    partitions: counts,
                });
            }
        }
        Ok(())
    }
}

fn partition_count(probe: &BaseConsumer, topic: &str) -> Result<i32, StartError> {
    let failed = |reason: String| StartError::SourceTopic {
        topic: topic.to_string(),
        reason,
    };
    let metadata = probe
        .fetch_metadata(Some(topic), Duration::from_secs(30))
        .map_err(|e| failed(e.to_string()))?;
    let meta = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .ok_or_else(|| failed("not in the broker's metadata".into()))?;
    if let Some(error) = meta.error() {
        return Err(failed(format!(
            "does not exist or cannot be read ({error:?})"
        )));
    }
    i32::try_from(meta.partitions().len()).map_err(|e| failed(e.to_string()))
}

fn wait_for_topic(probe: &BaseConsumer, topic: &str, count: i32) -> Result<(), StartError> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match partition_count(probe, topic) {
            Ok(n) if n == count => return Ok(()),
            Ok(n) if n != count && Instant::now() >= deadline => {
                return Err(StartError::InternalTopic {
                    topic: topic.to_string(),
                    reason: format!("has {n} partitions, {count} expected"),
                });
            }
            Err(e) if Instant::now() >= deadline => return Err(e),
            _ => std::thread::sleep(Duration::from_millis(100)),
        }
    }
}

impl Drop for KafkaStreams {
    fn drop(&mut self) {
        if !self.threads.is_empty() {
            self.close(Duration::from_secs(30));
        }
    }
}

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

use super::clients;
use super::error::{StreamThreadError, ThreadError};
use super::global_thread;
use super::instance::Instance;
use super::metrics::Metrics;
use super::shutdown_requests;
use super::stream_thread::{self, Assignment, ThreadContext};
use crate::config::{ConfigError, StreamsConfig};
use crate::state::{
    ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore, RocksDbMemory,
    SharedBytesStore, StoreDef, StoreError,
};
use crate::topology::Topology;

/// The share of the RocksDB memory budget that memtables may take.
const ROCKSDB_WRITE_BUFFER_SHARE: f64 = 0.5;

/// How long `start()` waits for the brokers to answer.
const METADATA_TIMEOUT: Duration = Duration::from_secs(30);

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

impl State {
    /// Whether the instance may go from this state to `to`, as Kafka Streams allows
    /// (`Error` and `NotRunning` are final).
    fn may_become(self, to: State) -> bool {
        use State::*;
        matches!(
            (self, to),
            (Created, Rebalancing | PendingShutdown | Error)
                | (Rebalancing, Running | Rebalancing | PendingShutdown | Error)
                | (Running, Rebalancing | PendingShutdown | Error)
                | (PendingShutdown, NotRunning)
        )
    }
}

/// What an instance does when one of its stream threads fails, as its uncaught-error
/// handler answers (Kafka Streams' `StreamThreadExceptionResponse`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum StreamThreadResponse {
    /// Start a new stream thread in place of the failed one, which gets its partitions
    /// (after a rebalance); the instance goes on.
    ReplaceThread,
    /// Stop every stream thread of this instance (the default): its state becomes
    /// `Error`, and `close()` reports the failure.
    #[default]
    ShutdownClient,
    /// Stop every instance of the application: this one as `ShutdownClient` does, and the
    /// others, told through the internal topic `<application.id>-shutdown-requests`, go to
    /// `Error` too, their `close()` naming the instance that asked and why.
    ShutdownApplication,
}

/// A handler that returns nothing leaves the default response.
impl From<()> for StreamThreadResponse {
    fn from((): ()) -> Self {
        Self::ShutdownClient
    }
}

/// Why `close()` did not end cleanly.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum CloseError {
    /// Some stream threads were still running when the timeout passed.
    #[error("{running} stream thread(s) had not stopped after {timeout:?}")]
    Timeout {
        /// How many.
        running: usize,
        /// The timeout given to `close()`.
        timeout: Duration,
    },
    /// A stream thread failed (before or while closing), and the instance stopped.
    #[error("{0}")]
    Failed(Arc<StreamThreadError>),
    /// Another instance of the application asked every instance to shut down
    /// ([`StreamThreadResponse::ShutdownApplication`]), and this one stopped.
    #[error("instance {by} shut the application down after an error: {reason}")]
    ApplicationShutdown {
        /// The `client.id` of the instance that asked.
        by: String,
        /// Its error.
        reason: String,
    },
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
    /// No broker answered within the time waited.
    #[error(
        "no broker at bootstrap.servers={bootstrap_servers} answered within {waited:?}: \
         {reason}; check that Kafka runs there and the address and port are right"
    )]
    BrokerUnreachable {
        /// The `bootstrap.servers` tried.
        bootstrap_servers: String,
        /// How long `start()` waited.
        waited: Duration,
        /// librdkafka's last word.
        reason: String,
    },
    /// The dead-letter topic (`errors.dead.letter.queue.topic.name`) does not exist: every
    /// record sent to it would fail.
    #[error(
        "dead-letter topic {topic} (errors.dead.letter.queue.topic.name): {reason}; create \
         it before the application starts"
    )]
    DeadLetterTopic {
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
    /// The global tables could not be restored (a topic missing, a store, a record that
    /// cannot be read under log-and-fail).
    #[error("restoring the global tables: {reason}")]
    GlobalTables {
        /// Why.
        reason: String,
    },
    /// Exactly-once asked of an embedded Kafka, whose transactions are not real.
    #[error(
        "processing.guarantee=exactly_once_v2 needs a real Kafka: the embedded Kafka \
         (librdkafka's mock cluster) only pretends to run transactions (a read_committed \
         reader sees aborted records)"
    )]
    ExactlyOnceOnEmbedded,
    /// Under exactly-once, the process id kept in the state directory could not be read or
    /// written.
    #[error("the process id in {path} (state.dir): {reason}")]
    ProcessId {
        /// The file.
        path: String,
        /// Why.
        reason: String,
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

/// The file of `<state.dir>/<application.id>` that keeps the instance's process id across
/// restarts (Kafka Streams' `kafka-streams-process-metadata`).
const PROCESS_ID_FILE: &str = "homa-process-id";

/// The process id kept in `dir`, made (a random UUID) when there is none yet.
fn persistent_process_id(dir: &std::path::Path) -> std::io::Result<String> {
    let path = dir.join(PROCESS_ID_FILE);
    match std::fs::read_to_string(&path) {
        Ok(text) => {
            let id = text.trim();
            return uuid::Uuid::parse_str(id)
                .map(|_| id.to_string())
                .map_err(|e| {
                    std::io::Error::new(
                        std::io::ErrorKind::InvalidData,
                        format!("{id:?} is no process id ({e}); delete the file to make a new one"),
                    )
                });
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    std::fs::create_dir_all(dir)?;
    let id = uuid::Uuid::new_v4().to_string();
    // Written whole or not at all: a crash never leaves half an id.
    let partial = dir.join(format!("{PROCESS_ID_FILE}.partial"));
    std::fs::write(&partial, &id)?;
    std::fs::rename(&partial, &path)?;
    Ok(id)
}

type Listener = Arc<dyn Fn(State, State) + Send + Sync>;
type ErrorHandler = Arc<dyn Fn(&StreamThreadError) -> StreamThreadResponse + Send + Sync>;

/// What the instance and its threads share.
struct Shared {
    state: Mutex<State>,
    listener: Mutex<Option<Listener>>,
    handler: Mutex<Option<ErrorHandler>>,
    shutdown: AtomicBool,
    /// Stream threads whose partitions are being (re)assigned.
    rebalancing: std::sync::atomic::AtomicUsize,
    /// The first error of a thread that stopped the instance.
    failure: Mutex<Option<Arc<StreamThreadError>>>,
    /// The request of another instance that shut this one down.
    shut_down_by: Mutex<Option<shutdown_requests::Request>>,
    /// This instance's id among all of the application (Kafka Streams' process id): its
    /// shutdown requests carry it, so that it tells them from other instances'.
    process: String,
    /// What a shutdown request is sent with.
    config: StreamsConfig,
    bootstrap: String,
    instance: Instance,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// A thread's partitions start moving or are ready: the instance is `Rebalancing`
    /// while any thread waits for its assignment, else `Running`.
    fn rebalance(&self, assignment: Assignment, waiting: &AtomicBool) {
        match assignment {
            Assignment::Ready => {
                if waiting.swap(false, Ordering::SeqCst)
                    && self.rebalancing.fetch_sub(1, Ordering::SeqCst) == 1
                {
                    self.transition(State::Running);
                }
            }
            Assignment::Moving => {
                if !waiting.swap(true, Ordering::SeqCst) {
                    self.rebalancing.fetch_add(1, Ordering::SeqCst);
                    self.transition(State::Rebalancing);
                }
            }
        }
    }

    /// Moves to state `to` if Kafka Streams' state machine allows it from the current one.
    fn transition(&self, to: State) {
        let from = {
            let mut state = lock(&self.state);
            let from = *state;
            if !from.may_become(to) {
                return;
            }
            *state = to;
            from
        };
        tracing::info!("homa: state {from:?} -> {to:?}");
        let listener = lock(&self.listener).clone();
        if let Some(listener) = listener {
            listener(from, to);
        }
    }

    /// A stream thread failed with `error`: the handler decides whether it is replaced or
    /// the instance stops. Returns whether to replace it.
    fn thread_failed(&self, error: StreamThreadError) -> bool {
        tracing::error!("homa: {error}");
        let handler = lock(&self.handler).clone();
        let response = handler.map_or(StreamThreadResponse::ShutdownClient, |h| h(&error));
        if response == StreamThreadResponse::ReplaceThread && !self.shutdown.load(Ordering::Relaxed)
        {
            tracing::info!("homa: replacing stream thread {}", error.thread);
            return true;
        }
        let reason = error.to_string();
        lock(&self.failure).get_or_insert_with(|| Arc::new(error));
        // A failure while the instance stops anyway (its close's last commit) asks no one.
        let stopping = self.shutdown.swap(true, Ordering::Relaxed);
        self.transition(State::Error);
        if response == StreamThreadResponse::ShutdownApplication && !stopping {
            let request = shutdown_requests::Request {
                process: self.process.clone(),
                by: self.config.client_id().to_string(),
                reason,
            };
            match shutdown_requests::send(&self.config, &self.bootstrap, &request) {
                Ok(()) => tracing::error!(
                    "homa: asked every instance of {} to shut down",
                    self.config.application_id()
                ),
                Err(e) => tracing::error!(
                    "homa: could not ask the other instances to shut down ({e}); this one stops"
                ),
            }
        }
        false
    }

    /// The global thread failed: the instance stops, to `Error` (its tables would go stale;
    /// no handler replaces it, as in Kafka Streams).
    fn global_failed(&self, source: crate::state::global::GlobalError) {
        let error = StreamThreadError {
            thread: super::GLOBAL_THREAD,
            source: ThreadError::GlobalTables { source },
        };
        tracing::error!("homa: {error}");
        lock(&self.failure).get_or_insert_with(|| Arc::new(error));
        self.shutdown.store(true, Ordering::Relaxed);
        self.transition(State::Error);
    }

    /// Another instance asked the application to shut down: this one stops, to `Error`.
    fn shutdown_requested(&self, request: shutdown_requests::Request) {
        if self.shutdown.load(Ordering::Relaxed) || request.process == self.process {
            // Stopping already, or the request is this instance's own.
            return;
        }
        tracing::error!(
            "homa: instance {} asked every instance of {} to shut down after an error: {}",
            request.by,
            self.config.application_id(),
            request.reason
        );
        lock(&self.shut_down_by).get_or_insert(request);
        self.shutdown.store(true, Ordering::Relaxed);
        self.transition(State::Error);
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
    /// Watches the application's shutdown requests while the instance runs.
    watcher: Option<JoinHandle<()>>,
    /// Under exactly-once, the process id kept in the state directory, which the stream
    /// threads' `transactional.id`s carry: a restarted instance fences, and aborts, what
    /// its previous run left open.
    process_id: Option<Arc<str>>,
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
            config: config.clone(),
            bootstrap: bootstrap.clone(),
            shared: Arc::new(Shared {
                state: Mutex::new(State::Created),
                listener: Mutex::new(None),
                handler: Mutex::new(None),
                shutdown: AtomicBool::new(false),
                rebalancing: std::sync::atomic::AtomicUsize::new(0),
                failure: Mutex::new(None),
                shut_down_by: Mutex::new(None),
                process: uuid::Uuid::new_v4().to_string(),
                config,
                bootstrap,
                instance: Instance::new(Some(rocksdb)),
            }),
            threads: Vec::new(),
            watcher: None,
            process_id: None,
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

    /// Calls `handler` when a stream thread fails; what it returns decides what follows
    /// (Kafka Streams' uncaught exception handler): [`StreamThreadResponse::ReplaceThread`]
    /// starts a new thread in its place, [`StreamThreadResponse::ShutdownClient`] (also what
    /// a handler returning `()` means, and what happens without a handler) stops the
    /// instance, whose state becomes `Error`, and
    /// [`StreamThreadResponse::ShutdownApplication`] stops every instance of the
    /// application so.
    pub fn set_uncaught_error_handler<R: Into<StreamThreadResponse>>(
        &self,
        handler: impl Fn(&StreamThreadError) -> R + Send + Sync + 'static,
    ) {
        *lock(&self.shared.handler) = Some(Arc::new(move |e| handler(e).into()));
    }

    /// What the instance has done so far: records processed, skipped and dropped, and
    /// restorations.
    pub fn metrics(&self) -> Metrics {
        self.shared.instance.metrics()
    }

    /// This instance's stream threads and their tasks (Kafka Streams'
    /// `metadataForLocalThreads`).
    pub fn metadata_for_local_threads(&self) -> Vec<super::ThreadMetadata> {
        self.shared.instance.threads()
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
        self.query(name, StoreDef::typed)
    }

    /// A read-only view of the window store `name` across this instance's tasks (a
    /// windowed aggregation's, values alone): `get`, `fetch`, `fetch_all`, `all`.
    ///
    /// # Errors
    /// As [`store`](Self::store); `WrongTypes` also for a store that is no window store.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, StoreError> {
        self.query(name, StoreDef::window_view)
    }

    /// A read-only view of the session store `name` across this instance's tasks:
    /// `fetch`, `find_sessions`, `fetch_session`, `all`.
    ///
    /// # Errors
    /// As [`store`](Self::store); `WrongTypes` also for a store that is no session store.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlySessionStore<K, V>, StoreError> {
        self.query(name, StoreDef::session_view)
    }

    fn query<T>(
        &self,
        name: &str,
        view: impl FnOnce(&StoreDef, SharedBytesStore, Arc<str>) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        if !self.topology.has_store(name) {
            return Err(StoreError::Unknown {
                store: name.to_string(),
            });
        }
        self.shared.instance.store(name, view)
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
        if self.config.exactly_once() {
            if super::embedded::is_embedded(&self.bootstrap) {
                return Err(StartError::ExactlyOnceOnEmbedded);
            }
            let dir = self.config.state_dir().join(self.config.application_id());
            let id = persistent_process_id(&dir).map_err(|e| StartError::ProcessId {
                path: dir.join(PROCESS_ID_FILE).display().to_string(),
                reason: e.to_string(),
            })?;
            self.process_id = Some(id.into());
        }
        tracing::info!(
            "homa: starting {} ({} stream thread(s), bootstrap.servers={})",
            self.config.application_id(),
            self.config.num_stream_threads(),
            self.bootstrap
        );
        self.prepare_topics()?;
        self.start_global_thread()?;
        let (stop, requested) = (self.shared.clone(), self.shared.clone());
        match shutdown_requests::watch(
            &self.config,
            &self.bootstrap,
            move || stop.shutdown.load(Ordering::Relaxed),
            move |request| requested.shutdown_requested(request),
        ) {
            Ok(watcher) => self.watcher = Some(watcher),
            Err(e) => tracing::warn!(
                "homa: not watching {}: {e}; a request of another instance to shut the \
                 application down will not stop this one",
                shutdown_requests::topic(self.config.application_id())
            ),
        }
        self.shared.transition(State::Rebalancing);
        let threads = self.config.num_stream_threads();
        // Every thread starts waiting for its first assignment.
        self.shared.rebalancing.store(threads, Ordering::SeqCst);
        for index in 0..threads {
            self.spawn_thread(index);
        }
        Ok(())
    }

    /// Restores the global tables, if the topology has any, and starts the thread that
    /// keeps them current: before any stream thread, so that every task reads them whole.
    fn start_global_thread(&mut self) -> Result<(), StartError> {
        let memory = self.shared.instance.rocksdb.as_ref();
        let restored =
            global_thread::restore(&self.topology, &self.config, &self.bootstrap, memory).map_err(
                |e| StartError::GlobalTables {
                    reason: e.to_string(),
                },
            );
        let restored = match restored {
            Ok(Some(restored)) => restored,
            Ok(None) => return Ok(()),
            Err(e) => {
                self.shared.transition(State::Error);
                return Err(e);
            }
        };
        self.shared.instance.set_global(restored.state.clone());
        let (stop, failed) = (self.shared.clone(), self.shared.clone());
        let thread = global_thread::spawn(
            restored,
            &self.config,
            move || stop.shutdown.load(Ordering::Relaxed),
            move |source| failed.global_failed(source),
        );
        match thread {
            Ok(handle) => {
                self.threads.push(handle);
                Ok(())
            }
            Err(e) => {
                self.shared.transition(State::Error);
                Err(StartError::GlobalTables {
                    reason: format!("starting the global thread: {e}"),
                })
            }
        }
    }

    /// Starts stream thread `index`, and again in its place whenever it fails and the
    /// handler says to replace it.
    fn spawn_thread(&mut self, index: usize) {
        let (topology, config, bootstrap) = (
            self.topology.clone(),
            self.config.clone(),
            self.bootstrap.clone(),
        );
        let shared = self.shared.clone();
        let process_id = self.process_id.clone();
        let thread = std::thread::Builder::new()
            .name(format!("{}-StreamThread-{index}", config.client_id()))
            .spawn(move || {
                loop {
                    let waiting = Arc::new(AtomicBool::new(true));
                    let on_assignment: stream_thread::AssignmentListener = {
                        let (shared, waiting) = (shared.clone(), waiting.clone());
                        Arc::new(move |assignment| shared.rebalance(assignment, &waiting))
                    };
                    let cx = ThreadContext {
                        index,
                        topology: &topology,
                        config: &config,
                        bootstrap: &bootstrap,
                        shutdown: &shared.shutdown,
                        on_assignment,
                        instance: &shared.instance,
                        process_id: process_id.as_deref(),
                    };
                    // A panic is a failure of the thread like an error: the handler decides,
                    // rather than the thread vanishing while the instance looks healthy.
                    let run = std::panic::AssertUnwindSafe(|| stream_thread::run(&cx));
                    let source = match std::panic::catch_unwind(run) {
                        Ok(Ok(())) => return,
                        Ok(Err(source)) => source,
                        Err(payload) => ThreadError::panic(&*payload),
                    };
                    // A replaced thread starts waiting for its assignment again.
                    if !waiting.load(Ordering::SeqCst) {
                        shared.rebalance(Assignment::Moving, &waiting);
                    }
                    if !shared.thread_failed(StreamThreadError {
                        thread: index,
                        source,
                    }) {
                        return;
                    }
                    shared.instance.retire(index);
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

    /// Stops the threads, each after a last commit, waiting up to `timeout`.
    ///
    /// # Errors
    /// [`CloseError::Failed`] with the first error of a stream thread that stopped the
    /// instance (before or while closing: a last commit that failed is one);
    /// [`CloseError::Timeout`] when threads were still running after `timeout`.
    pub fn close(&mut self, timeout: Duration) -> Result<(), CloseError> {
        self.shared.transition(State::PendingShutdown);
        self.shared.shutdown.store(true, Ordering::Relaxed);
        let deadline = Instant::now() + timeout;
        while self.threads.iter().any(|t| !t.is_finished()) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        let running = self.threads.iter().filter(|t| !t.is_finished()).count();
        for thread in std::mem::take(&mut self.threads) {
            if thread.is_finished() {
                let _ = thread.join();
            }
        }
        // It stops within one poll of the shutdown flag.
        if let Some(watcher) = self.watcher.take() {
            let _ = watcher.join();
        }
        // The global stores close once no query holds them either.
        if running == 0 {
            self.shared.instance.clear_global();
        }
        self.shared.transition(State::NotRunning);
        if let Some(failure) = lock(&self.shared.failure).clone() {
            return Err(CloseError::Failed(failure));
        }
        if let Some(request) = lock(&self.shared.shut_down_by).clone() {
            return Err(CloseError::ApplicationShutdown {
                by: request.by,
                reason: request.reason,
            });
        }
        if running > 0 {
            return Err(CloseError::Timeout { running, timeout });
        }
        tracing::info!("homa: {} closed", self.config.application_id());
        Ok(())
    }

    /// Deletes this application's local state: the directory `<state.dir>/<application.id>`
    /// with every task's stores and checkpoints (Kafka Streams' `cleanUp()`). The next start
    /// restores the stores from their changelogs. Allowed before `start()` or after
    /// `close()`; a directory that does not exist is nothing to do.
    ///
    /// ```no_run
    /// # use homa::prelude::*;
    /// # fn run(topology: &Topology, config: StreamsConfig) -> homa::Result<()> {
    /// let mut streams = KafkaStreams::new(topology, config)?;
    /// // Start from the changelogs, not from what an earlier run left on this machine.
    /// streams.clean_up()?;
    /// streams.start()?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`crate::Error::WrongState`] when the instance is not [`State::Created`] or
    /// [`State::NotRunning`]; [`crate::Error::Io`] when the directory cannot be deleted; [`StoreError::Locked`] (in [`crate::Error::State`]) when a task directory
    /// is in use, by a thread that did not stop in `close()` or another instance given the
    /// same `state.dir`.
    pub fn clean_up(&self) -> crate::Result<()> {
        let dir = self.config.state_dir().join(self.config.application_id());
        let io = |source| crate::Error::Io {
            operation: format!("deleting state directory {}", dir.display()),
            source,
        };
        let state = self.state();
        if !matches!(state, State::Created | State::NotRunning) {
            return Err(crate::Error::WrongState {
                operation: "clean_up()",
                needs: "an instance not started or closed (Created or NotRunning)",
                state: format!("{state:?}"),
            });
        }
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io(e)),
        };
        // Each task directory's lock is held while it is deleted, as a task holds it while
        // its stores are open: the stores of a running task are never deleted under it.
        let mut locks = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io)?;
            if entry.file_type().map_err(io)?.is_dir() {
                locks.push(crate::state::lock_dir(&entry.path())?);
            }
        }
        std::fs::remove_dir_all(&dir).map_err(io)?;
        drop(locks);
        tracing::info!("homa: state directory {} deleted", dir.display());
        Ok(())
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
        if let Some(created) = super::embedded::create_topic(&self.bootstrap, name, count) {
            // The embedded Kafka has no CreateTopics (nor topic configs).
            created.map_err(|e| StartError::InternalTopic {
                topic: name.to_string(),
                reason: e.to_string(),
            })?;
            return wait_for_topic(probe, name, count);
        }
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
        let unreachable = |reason: String| StartError::BrokerUnreachable {
            bootstrap_servers: self.bootstrap.clone(),
            waited: METADATA_TIMEOUT,
            reason,
        };
        let probe: BaseConsumer = clients::admin(&self.config, &self.bootstrap)
            .create()
            .map_err(|e| unreachable(e.to_string()))?;
        // One look at the cluster first: a broker that does not answer is not a topic's fault.
        let started = Instant::now();
        probe.fetch_metadata(None, METADATA_TIMEOUT).map_err(|e| {
            StartError::BrokerUnreachable {
                bootstrap_servers: self.bootstrap.clone(),
                waited: started.elapsed(),
                reason: e.to_string(),
            }
        })?;
        if let Some(topic) = self.config.dead_letter_queue_topic() {
            partition_count(&probe, topic).map_err(|e| StartError::DeadLetterTopic {
                topic: topic.to_string(),
                reason: match e {
                    StartError::SourceTopic { reason, .. } => reason,
                    other => other.to_string(),
                },
            })?;
        }
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
        // Best-effort: an application may run without it (a principal that may not
        // create it), only unable to hear or send requests to shut all instances down.
        let requests = shutdown_requests::topic(app);
        if let Err(e) = self.create_internal_topic(
            &admin,
            &probe,
            &requests,
            1,
            shutdown_requests::TOPIC_CONFIGS,
        ) {
            tracing::warn!(
                "homa: {e}; StreamThreadResponse::ShutdownApplication will stop this instance only"
            );
        }
        for (topic, asked) in self.topology.internal_topics() {
            let name = self.topology.topic_name(topic, app);
            // Co-partitioned with the topics a table reads (a foreign-key join's).
            let like = (self.topology.copartitioned_with(topic).iter())
                .filter_map(|t| partitions.get(&self.topology.topic_name(t, app)).copied())
                .max();
            let count = asked.or(like).unwrap_or(input_partitions);
            let configs = super::purge::REPARTITION_TOPIC_CONFIGS;
            self.create_internal_topic(&admin, &probe, &name, count, configs)?;
            partitions.insert(name, count);
        }
        // A changelog has a partition per task of the sub-topology that writes it.
        let additional = self.config.windowstore_changelog_additional_retention_ms();
        for (name, sub, def) in self.topology.changelogs(app) {
            let count = self
                .topology
                .subtopologies()
                .iter()
                .filter(|s| s.id == sub)
                .flat_map(|s| &s.source_topics)
                .filter_map(|t| partitions.get(&self.topology.topic_name(t, app)).copied())
                .max()
                .unwrap_or(input_partitions);
            let configs = def.changelog_configs(additional);
            let configs: Vec<(&str, &str)> =
                configs.iter().map(|(k, v)| (*k, v.as_str())).collect();
            self.create_internal_topic(&admin, &probe, &name, count, &configs)?;
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
        if !self.threads.is_empty() || self.watcher.is_some() {
            // Dropped without `close()`: the outcome has no one to go to but the log.
            if let Err(e) = self.close(Duration::from_secs(30)) {
                tracing::error!("homa: closing on drop: {e}");
            }
        }
    }
}

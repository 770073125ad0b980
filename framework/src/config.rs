//! `StreamsConfig`: the settings of a HOMA application, under Kafka Streams' names.
//!
//! Settings come from code (the builder's setters) or from `key = value` pairs, e.g. a
//! properties file, through [`StreamsConfigBuilder::set`]. Either way they are checked when
//! the config is built: an unknown key or an invalid value is an error that names the key.
//!
//! Client settings pass through to librdkafka: `consumer.`, `producer.` and `admin.`
//! prefixed keys go to that client alone (`main.consumer.` and `restore.consumer.` to one
//! of a stream thread's two consumers, `global.consumer.` to the global tables' consumer,
//! over `consumer.`); `security.protocol`, `ssl.*` and `sasl.*` go to every client. Serdes and timestamp extractors are not settings: they come from the types
//! and operators of the topology.
//!
//! ```
//! use std::time::Duration;
//! use homa::config::{ProcessingGuarantee, StreamsConfig};
//!
//! let config = StreamsConfig::builder()
//!     .application_id("burger-revenue")
//!     .bootstrap_servers("localhost:9092")
//!     .num_stream_threads(2)
//!     .set("commit.interval.ms", "1000")
//!     .set("consumer.fetch.min.bytes", "1024")
//!     .build()?;
//! assert_eq!(config.commit_interval(), Duration::from_secs(1));
//! assert_eq!(config.processing_guarantee(), ProcessingGuarantee::AtLeastOnce);
//! assert_eq!(config.consumer_settings()["fetch.min.bytes"], "1024");
//!
//! let err = StreamsConfig::builder().application_id("a").set("num.stream.thread", "2").build();
//! assert!(err.unwrap_err().to_string().contains("num.stream.thread"));
//! # Ok::<(), homa::config::ConfigError>(())
//! ```

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

/// What a settings error is about; every variant names the key.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A required setting has no value.
    #[error("config `{key}` is required")]
    Missing {
        /// The setting.
        key: &'static str,
    },
    /// A key that is neither a HOMA setting nor a client setting.
    #[error("config `{key}` is not a HOMA setting{hint}")]
    Unknown {
        /// The key as given.
        key: String,
        /// A hint on what was probably meant, starting with "; ", or empty.
        hint: String,
    },
    /// A value that does not fit its setting.
    #[error("config `{key}` = {value:?}: {reason}")]
    Invalid {
        /// The setting.
        key: String,
        /// The value as given.
        value: String,
        /// What a valid value looks like.
        reason: String,
    },
}

/// How much processing a record may see after a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProcessingGuarantee {
    /// `at_least_once` (the default): outputs are flushed before offsets are committed, so a
    /// failure may process some records again but never loses one.
    #[default]
    AtLeastOnce,
    /// `exactly_once_v2` (KIP-447): each stream thread writes its outputs, store changelogs
    /// and dead letters in one Kafka transaction with the consumed offsets, committed every
    /// `commit.interval.ms` (default 100 under it); every consumer reads `read_committed`.
    /// A record's effects on output topics and on state happen once, whatever crashes.
    ExactlyOnceV2,
}

/// What happens to a record whose key or value cannot be deserialized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum DeserializationHandler {
    /// `log_and_fail` (the default, as in Kafka Streams): log the record's coordinates and
    /// stop the stream thread with an error.
    #[default]
    LogAndFail,
    /// `log_and_continue`: log the record's coordinates, count it as skipped and go on.
    LogAndContinue,
}

/// How the stream threads' consumers share the partitions (`group.protocol`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum GroupProtocol {
    /// `classic` (the default): the client-side `range` assignor, eager rebalances (every
    /// task is suspended, and those given back resume).
    #[default]
    Classic,
    /// `consumer`: the broker-side protocol of KIP-848 (Kafka 4.0 and later) with the
    /// broker's `range` assignor, which keeps co-partitioned topics together; rebalances
    /// are incremental, so only the tasks that move close. Session timeout and heartbeat
    /// interval are then the broker's (`group.consumer.session.timeout.ms`, ...).
    Consumer,
}

/// What happens when a processor fails on a record (Kafka Streams'
/// `processing.exception.handler`, KIP-1033).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProcessingHandler {
    /// `log_and_fail` (the default): the stream thread stops with the error.
    #[default]
    LogAndFail,
    /// `log_and_continue`: the record is logged with its coordinates, counted as skipped,
    /// written to the dead-letter topic if one is set, and processing goes on.
    LogAndContinue,
}

/// What happens when the producer cannot write a record, e.g. one larger than the broker
/// takes (Kafka Streams' `production.exception.handler`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum ProductionHandler {
    /// `log_and_fail` (the default): the commit that covers the record fails, and with it
    /// the stream thread; the offsets of the records after the last commit stay uncommitted.
    #[default]
    LogAndFail,
    /// `log_and_continue`: the record is logged and counted as skipped; the commit goes on.
    LogAndContinue,
}

/// Which metrics are recorded (`metrics.recording.level`, Kafka Streams' names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
#[non_exhaustive]
pub enum RecordingLevel {
    /// `INFO` (the default): operations are counted; stores' operations are not timed.
    #[default]
    Info,
    /// `DEBUG`: every store operation is timed as well (two clock reads each).
    Debug,
    /// `TRACE`: as `DEBUG` (HOMA records nothing more at this level).
    Trace,
}

/// The settings of a HOMA application. Built, and checked, by [`StreamsConfig::builder`].
#[derive(Debug, Clone)]
pub struct StreamsConfig {
    application_id: String,
    bootstrap_servers: Option<String>,
    client_id: Option<String>,
    group_instance_id: Option<String>,
    group_protocol: GroupProtocol,
    num_stream_threads: usize,
    commit_interval: Duration,
    poll: Duration,
    processing_guarantee: ProcessingGuarantee,
    state_dir: PathBuf,
    statestore_cache_max_bytes: u64,
    rocksdb_memory_bytes: u64,
    replication_factor: i16,
    max_task_idle: Duration,
    buffered_records_per_partition: usize,
    repartition_purge_interval: Duration,
    deserialization_handler: DeserializationHandler,
    processing_handler: ProcessingHandler,
    production_handler: ProductionHandler,
    dead_letter_queue_topic: Option<String>,
    metrics_recording_level: RecordingLevel,
    windowstore_changelog_additional_retention: Duration,
    emit_interval_windowed_aggregation: Duration,
    emit_interval_outer_join: Duration,
    consumer: BTreeMap<String, String>,
    main_consumer: BTreeMap<String, String>,
    restore_consumer: BTreeMap<String, String>,
    global_consumer: BTreeMap<String, String>,
    producer: BTreeMap<String, String>,
    admin: BTreeMap<String, String>,
}

/// Collects settings for a [`StreamsConfig`]; [`build`](Self::build) checks them.
#[derive(Debug, Clone, Default)]
pub struct StreamsConfigBuilder {
    settings: Vec<(String, String)>,
}

/// The keys of HOMA's own settings, with Kafka Streams' names.
pub mod keys {
    /// Identifies the application: the consumer group, and the prefix of internal topics.
    pub const APPLICATION_ID: &str = "application.id";
    /// The brokers to connect to, `host:port,...`.
    pub const BOOTSTRAP_SERVERS: &str = "bootstrap.servers";
    /// Prefix of the clients' ids (default: the application id).
    pub const CLIENT_ID: &str = "client.id";
    /// Static membership: the same id after a restart gets the same tasks back.
    pub const GROUP_INSTANCE_ID: &str = "group.instance.id";
    /// `classic` (default) or `consumer` (KIP-848, the broker assigns partitions).
    pub const GROUP_PROTOCOL: &str = "group.protocol";
    /// Stream threads of this instance (default 1).
    pub const NUM_STREAM_THREADS: &str = "num.stream.threads";
    /// How often progress is committed, in ms (default 30000; 100 under exactly-once).
    pub const COMMIT_INTERVAL_MS: &str = "commit.interval.ms";
    /// The longest a stream thread blocks waiting for records, in ms (default 100).
    pub const POLL_MS: &str = "poll.ms";
    /// `at_least_once` (the default) or `exactly_once_v2`.
    pub const PROCESSING_GUARANTEE: &str = "processing.guarantee";
    /// Where state stores live (default `<temp dir>/homa`).
    pub const STATE_DIR: &str = "state.dir";
    /// Bytes of record cache shared by the tasks of an instance (default 10 MiB; 0 = off).
    pub const STATESTORE_CACHE_MAX_BYTES: &str = "statestore.cache.max.bytes";
    /// Bytes of memory all RocksDB stores of an instance share: one block cache, with the
    /// memtables charged to it (HOMA's; default 128 MiB).
    pub const ROCKSDB_MEMORY_BYTES: &str = "rocksdb.memory.bytes";
    /// Replication factor of internal topics (default -1: the broker's default).
    pub const REPLICATION_FACTOR: &str = "replication.factor";
    /// How long a task waits for data on all its partitions before processing, in ms (default 0).
    pub const MAX_TASK_IDLE_MS: &str = "max.task.idle.ms";
    /// Records buffered per partition before its fetching pauses (default 1000).
    pub const BUFFERED_RECORDS_PER_PARTITION: &str = "buffered.records.per.partition";
    /// How often, at most, the records of repartition topics are deleted up to the offsets
    /// committed for them, in ms (default 30000).
    pub const REPARTITION_PURGE_INTERVAL_MS: &str = "repartition.purge.interval.ms";
    /// `log_and_fail` (default) or `log_and_continue`: a record that cannot be read.
    pub const DESERIALIZATION_EXCEPTION_HANDLER: &str = "deserialization.exception.handler";
    /// `log_and_fail` (default) or `log_and_continue`: a processor's error on a record.
    pub const PROCESSING_EXCEPTION_HANDLER: &str = "processing.exception.handler";
    /// `log_and_fail` (default) or `log_and_continue`: a record the producer cannot write
    /// (under exactly-once only `log_and_fail`: such a record aborts the transaction).
    pub const PRODUCTION_EXCEPTION_HANDLER: &str = "production.exception.handler";
    /// A dead-letter topic: a record that fails to deserialize is written there with the
    /// error and its source topic, partition and offset in headers, then the handler decides.
    pub const DEAD_LETTER_QUEUE_TOPIC: &str = "errors.dead.letter.queue.topic.name";
    /// `INFO` (default), `DEBUG` or `TRACE`: at `DEBUG` and above, store operations are
    /// timed (`KafkaStreams::metrics().stores`).
    pub const METRICS_RECORDING_LEVEL: &str = "metrics.recording.level";
    /// How much longer than its store keeps them a window or session store's changelog
    /// keeps its records (its topic's `retention.ms` is the store's retention plus this),
    /// in ms (default 86400000, a day).
    pub const WINDOWSTORE_CHANGELOG_ADDITIONAL_RETENTION_MS: &str =
        "windowstore.changelog.additional.retention.ms";
    /// Kafka Streams' internal setting: how often, at most, a windowed aggregation that
    /// emits on window close looks for closed windows, in wall-clock ms (default 1000;
    /// the test driver sets 0, as Kafka Streams' does).
    pub const EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION: &str =
        "__emit.interval.ms.kstreams.windowed.aggregation__";
    /// Kafka Streams' internal setting: how often, at most, a left or outer stream-stream
    /// join looks for records whose windows closed without a match, in wall-clock ms
    /// (default 1000; the test driver sets 0, as Kafka Streams' does).
    pub const EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX: &str =
        "__emit.interval.ms.kstreams.outer.join.spurious.results.fix__";
}

/// The transaction timeout of the stream threads' producers under exactly-once unless
/// `producer.transaction.timeout.ms` says otherwise (Kafka Streams' default).
pub(crate) const DEFAULT_TRANSACTION_TIMEOUT_MS: u64 = 10_000;

/// Under exactly-once, a transaction stays open from one commit to the next: the broker
/// aborts one open longer than `transaction.timeout.ms` and fences its producer, so the
/// commit interval must be shorter (Kafka Streams refuses the same).
fn check_transaction_timeout(
    producer: &BTreeMap<String, String>,
    commit_interval: Duration,
) -> Result<(), ConfigError> {
    let key = "producer.transaction.timeout.ms";
    let timeout = match producer.get("transaction.timeout.ms") {
        None => DEFAULT_TRANSACTION_TIMEOUT_MS,
        Some(value) => value.trim().parse().map_err(|_| ConfigError::Invalid {
            key: key.to_string(),
            value: value.clone(),
            reason: "expected a whole number of ms".to_string(),
        })?,
    };
    if u128::from(timeout) < commit_interval.as_millis() {
        return Err(ConfigError::Invalid {
            key: key.to_string(),
            value: timeout.to_string(),
            reason: format!(
                "under exactly_once_v2 a transaction stays open between commits, and the \
                 broker aborts one open longer than this: raise it above commit.interval.ms \
                 ({} ms), or commit more often",
                commit_interval.as_millis()
            ),
        });
    }
    Ok(())
}

/// Client settings given unprefixed that apply to every client, as in Kafka Streams.
fn is_shared_client_setting(key: &str) -> bool {
    key == "security.protocol" || key.starts_with("ssl.") || key.starts_with("sasl.")
}

/// Settings HOMA sets itself on its clients; a user value would break its guarantees.
const RESERVED_CLIENT_SETTINGS: &[&str] = &[
    "bootstrap.servers",
    "group.id",
    "enable.auto.commit",
    "enable.auto.offset.store",
    "transactional.id",
    "isolation.level",
    "partition.assignment.strategy",
    "group.protocol",
    "group.remote.assignor",
];

impl StreamsConfig {
    /// A builder with no settings.
    pub fn builder() -> StreamsConfigBuilder {
        StreamsConfigBuilder::default()
    }

    /// `application.id`.
    pub fn application_id(&self) -> &str {
        &self.application_id
    }

    /// `bootstrap.servers`, if set (a broker-less test driver needs none).
    pub fn bootstrap_servers(&self) -> Option<&str> {
        self.bootstrap_servers.as_deref()
    }

    /// `client.id`, defaulting to the application id.
    pub fn client_id(&self) -> &str {
        self.client_id.as_deref().unwrap_or(&self.application_id)
    }

    /// `group.instance.id`, for static membership.
    pub fn group_instance_id(&self) -> Option<&str> {
        self.group_instance_id.as_deref()
    }

    /// `group.protocol`.
    pub fn group_protocol(&self) -> GroupProtocol {
        self.group_protocol
    }

    /// `num.stream.threads`.
    pub fn num_stream_threads(&self) -> usize {
        self.num_stream_threads
    }

    /// `commit.interval.ms`.
    pub fn commit_interval(&self) -> Duration {
        self.commit_interval
    }

    /// `poll.ms`.
    pub fn poll(&self) -> Duration {
        self.poll
    }

    /// `metrics.recording.level`.
    pub fn metrics_recording_level(&self) -> RecordingLevel {
        self.metrics_recording_level
    }

    /// `processing.guarantee`.
    pub fn processing_guarantee(&self) -> ProcessingGuarantee {
        self.processing_guarantee
    }

    /// Whether `processing.guarantee` is `exactly_once_v2`.
    pub fn exactly_once(&self) -> bool {
        self.processing_guarantee == ProcessingGuarantee::ExactlyOnceV2
    }

    /// `state.dir`.
    pub fn state_dir(&self) -> &std::path::Path {
        &self.state_dir
    }

    /// `windowstore.changelog.additional.retention.ms`, in ms.
    pub fn windowstore_changelog_additional_retention_ms(&self) -> i64 {
        i64::try_from(self.windowstore_changelog_additional_retention.as_millis())
            .unwrap_or(i64::MAX)
    }

    /// `__emit.interval.ms.kstreams.windowed.aggregation__`.
    pub fn emit_interval_windowed_aggregation(&self) -> Duration {
        self.emit_interval_windowed_aggregation
    }

    /// `__emit.interval.ms.kstreams.outer.join.spurious.results.fix__`.
    pub fn emit_interval_outer_join(&self) -> Duration {
        self.emit_interval_outer_join
    }

    /// The config with Kafka Streams' internal emit throttles at 0, as its test driver
    /// sets them.
    #[cfg(any(test, feature = "test-utils"))]
    pub(crate) fn without_emit_throttles(mut self) -> Self {
        self.emit_interval_windowed_aggregation = Duration::ZERO;
        self.emit_interval_outer_join = Duration::ZERO;
        self
    }

    /// `statestore.cache.max.bytes`.
    pub fn statestore_cache_max_bytes(&self) -> u64 {
        self.statestore_cache_max_bytes
    }

    /// `rocksdb.memory.bytes`: the memory the instance's RocksDB stores share.
    pub fn rocksdb_memory_bytes(&self) -> u64 {
        self.rocksdb_memory_bytes
    }

    /// `replication.factor` of internal topics; -1 takes the broker's default.
    pub fn replication_factor(&self) -> i16 {
        self.replication_factor
    }

    /// `max.task.idle.ms`.
    pub fn max_task_idle(&self) -> Duration {
        self.max_task_idle
    }

    /// `buffered.records.per.partition`.
    pub fn buffered_records_per_partition(&self) -> usize {
        self.buffered_records_per_partition
    }

    /// `repartition.purge.interval.ms`.
    pub fn repartition_purge_interval(&self) -> Duration {
        self.repartition_purge_interval
    }

    /// `deserialization.exception.handler`.
    pub fn deserialization_handler(&self) -> DeserializationHandler {
        self.deserialization_handler
    }

    /// `processing.exception.handler`.
    pub fn processing_handler(&self) -> ProcessingHandler {
        self.processing_handler
    }

    /// `production.exception.handler`.
    pub fn production_handler(&self) -> ProductionHandler {
        self.production_handler
    }

    /// `errors.dead.letter.queue.topic.name`, if set.
    pub fn dead_letter_queue_topic(&self) -> Option<&str> {
        self.dead_letter_queue_topic.as_deref()
    }

    /// The librdkafka settings of the consumers: shared client settings, then `consumer.*`.
    pub fn consumer_settings(&self) -> &BTreeMap<String, String> {
        &self.consumer
    }

    /// The librdkafka settings of the stream threads' group consumers: the consumer
    /// settings, then `main.consumer.*`.
    pub fn main_consumer_settings(&self) -> &BTreeMap<String, String> {
        &self.main_consumer
    }

    /// The librdkafka settings of the consumers that restore stores from changelogs: the
    /// consumer settings, then `restore.consumer.*`.
    pub fn restore_consumer_settings(&self) -> &BTreeMap<String, String> {
        &self.restore_consumer
    }

    /// The settings of the consumer that keeps the global tables: the shared and
    /// consumer settings, then `global.consumer.*`.
    pub fn global_consumer_settings(&self) -> &BTreeMap<String, String> {
        &self.global_consumer
    }

    /// The librdkafka settings of the producers: shared client settings, then `producer.*`.
    pub fn producer_settings(&self) -> &BTreeMap<String, String> {
        &self.producer
    }

    /// The librdkafka settings of the admin client: shared client settings, then `admin.*`.
    pub fn admin_settings(&self) -> &BTreeMap<String, String> {
        &self.admin
    }
}

impl StreamsConfigBuilder {
    /// Sets `key` to `value`, as in a properties file. Checked by [`build`](Self::build).
    #[must_use]
    pub fn set(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.settings.push((key.into(), value.into()));
        self
    }

    /// Sets every `(key, value)` of `settings`, in order (a later value wins).
    #[must_use]
    pub fn set_all<K: Into<String>, V: Into<String>>(
        mut self,
        settings: impl IntoIterator<Item = (K, V)>,
    ) -> Self {
        self.settings
            .extend(settings.into_iter().map(|(k, v)| (k.into(), v.into())));
        self
    }

    /// `application.id` (required): the consumer group and the prefix of internal topics.
    #[must_use]
    pub fn application_id(self, id: impl Into<String>) -> Self {
        self.set(keys::APPLICATION_ID, id)
    }

    /// `bootstrap.servers` (required to run against Kafka): `host:port,...`.
    #[must_use]
    pub fn bootstrap_servers(self, servers: impl Into<String>) -> Self {
        self.set(keys::BOOTSTRAP_SERVERS, servers)
    }

    /// `num.stream.threads` (default 1).
    #[must_use]
    pub fn num_stream_threads(self, threads: usize) -> Self {
        self.set(keys::NUM_STREAM_THREADS, threads.to_string())
    }

    /// `commit.interval.ms` (default 30 s; 100 ms under exactly-once).
    #[must_use]
    pub fn commit_interval(self, interval: Duration) -> Self {
        self.set(keys::COMMIT_INTERVAL_MS, interval.as_millis().to_string())
    }

    /// `processing.guarantee` (default at-least-once).
    #[must_use]
    pub fn processing_guarantee(self, guarantee: ProcessingGuarantee) -> Self {
        let value = match guarantee {
            ProcessingGuarantee::AtLeastOnce => "at_least_once",
            ProcessingGuarantee::ExactlyOnceV2 => "exactly_once_v2",
        };
        self.set(keys::PROCESSING_GUARANTEE, value)
    }

    /// `state.dir` (default `<temp dir>/homa`).
    #[must_use]
    pub fn state_dir(self, dir: impl Into<PathBuf>) -> Self {
        self.set(keys::STATE_DIR, dir.into().to_string_lossy().into_owned())
    }

    /// `deserialization.exception.handler` (default log-and-fail).
    #[must_use]
    pub fn deserialization_handler(self, handler: DeserializationHandler) -> Self {
        let value = match handler {
            DeserializationHandler::LogAndFail => "log_and_fail",
            DeserializationHandler::LogAndContinue => "log_and_continue",
        };
        self.set(keys::DESERIALIZATION_EXCEPTION_HANDLER, value)
    }

    /// Checks every setting and builds the config.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first key that is missing, unknown or invalid.
    pub fn build(self) -> Result<StreamsConfig, ConfigError> {
        let mut values: BTreeMap<&str, &str> = BTreeMap::new();
        let mut shared = BTreeMap::new();
        let (mut consumer, mut producer, mut admin) =
            (BTreeMap::new(), BTreeMap::new(), BTreeMap::new());
        let (mut main_consumer, mut restore_consumer) = (BTreeMap::new(), BTreeMap::new());
        let mut global_consumer = BTreeMap::new();
        for (key, value) in &self.settings {
            let key = key.trim();
            let client = [
                ("main.consumer.", &mut main_consumer),
                ("restore.consumer.", &mut restore_consumer),
                ("global.consumer.", &mut global_consumer),
                ("consumer.", &mut consumer),
                ("producer.", &mut producer),
                ("admin.", &mut admin),
            ]
            .into_iter()
            .find_map(|(prefix, map)| key.strip_prefix(prefix).map(|k| (k, map)));
            if let Some((client_key, map)) = client {
                check_client_key(key, client_key, value)?;
                map.insert(client_key.to_string(), value.clone());
            } else if is_shared_client_setting(key) {
                check_client_key(key, key, value)?;
                shared.insert(key.to_string(), value.clone());
            } else if is_streams_key(key) {
                values.insert(key, value.as_str());
            } else {
                return Err(unknown(key));
            }
        }

        let processing_guarantee = match values.get(keys::PROCESSING_GUARANTEE).copied() {
            None | Some("at_least_once") => ProcessingGuarantee::AtLeastOnce,
            Some("exactly_once_v2") => ProcessingGuarantee::ExactlyOnceV2,
            Some(other) => {
                return Err(invalid(
                    keys::PROCESSING_GUARANTEE,
                    other,
                    "expected at_least_once or exactly_once_v2 (Kafka Streams' exactly_once \
                     and exactly_once_beta are gone since 4.0)",
                ));
            }
        };
        let metrics_recording_level =
            match values.get(keys::METRICS_RECORDING_LEVEL).map(|v| v.trim()) {
                None | Some("INFO") => RecordingLevel::Info,
                Some("DEBUG") => RecordingLevel::Debug,
                Some("TRACE") => RecordingLevel::Trace,
                Some(other) => {
                    return Err(invalid(
                        keys::METRICS_RECORDING_LEVEL,
                        other,
                        "expected INFO, DEBUG or TRACE",
                    ));
                }
            };
        // Kafka Streams' defaults: a transaction is committed often, so that the records it
        // holds back from `read_committed` readers show soon.
        let default_commit_ms = match processing_guarantee {
            ProcessingGuarantee::AtLeastOnce => 30_000,
            ProcessingGuarantee::ExactlyOnceV2 => 100,
        };
        let group_protocol = match values.get(keys::GROUP_PROTOCOL).map(|v| v.trim()) {
            None | Some("classic") => GroupProtocol::Classic,
            Some("consumer") => GroupProtocol::Consumer,
            Some(other) => {
                return Err(invalid(
                    keys::GROUP_PROTOCOL,
                    other,
                    "expected classic or consumer",
                ));
            }
        };
        if group_protocol == GroupProtocol::Consumer {
            // The broker owns these under KIP-848; librdkafka refuses them.
            for key in ["session.timeout.ms", "heartbeat.interval.ms"] {
                let given = [("consumer.", &consumer), ("main.consumer.", &main_consumer)]
                    .into_iter()
                    .find_map(|(prefix, map)| map.get(key).map(|v| (format!("{prefix}{key}"), v)));
                if let Some((full, value)) = given {
                    return Err(invalid(
                        &full,
                        value,
                        &format!(
                            "with group.protocol=consumer the broker sets this \
                             (group.consumer.{key}); remove it"
                        ),
                    ));
                }
            }
        }
        // The three record-error handlers take the same two values.
        let handler = |key: &str| match values.get(key).copied() {
            None | Some("log_and_fail") => Ok(false),
            Some("log_and_continue") => Ok(true),
            Some(other) => Err(invalid(
                key,
                other,
                "expected log_and_fail or log_and_continue",
            )),
        };
        let deserialization_handler = if handler(keys::DESERIALIZATION_EXCEPTION_HANDLER)? {
            DeserializationHandler::LogAndContinue
        } else {
            DeserializationHandler::LogAndFail
        };
        let processing_handler = if handler(keys::PROCESSING_EXCEPTION_HANDLER)? {
            ProcessingHandler::LogAndContinue
        } else {
            ProcessingHandler::LogAndFail
        };
        let production_handler = if handler(keys::PRODUCTION_EXCEPTION_HANDLER)? {
            if processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
                return Err(invalid(
                    keys::PRODUCTION_EXCEPTION_HANDLER,
                    "log_and_continue",
                    "under processing.guarantee=exactly_once_v2 a record that is not written \
                     leaves its transaction to abort, so it cannot be skipped; use log_and_fail",
                ));
            }
            ProductionHandler::LogAndContinue
        } else {
            ProductionHandler::LogAndFail
        };
        let text = |key: &str| {
            values
                .get(key)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let application_id = text(keys::APPLICATION_ID).ok_or(ConfigError::Missing {
            key: keys::APPLICATION_ID,
        })?;
        if let Some(bad) = application_id
            .chars()
            .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-')))
        {
            return Err(invalid(
                keys::APPLICATION_ID,
                &application_id,
                &format!(
                    "{bad:?} cannot be part of a topic name; use letters, digits, '.', '_' and '-'"
                ),
            ));
        }
        let number = |key: &str, default: u64, min: u64| -> Result<u64, ConfigError> {
            match values.get(key) {
                None => Ok(default),
                Some(v) => match v.trim().parse::<u64>() {
                    Ok(n) if n >= min => Ok(n),
                    _ => Err(invalid(
                        key,
                        v,
                        &format!("expected a whole number of at least {min}"),
                    )),
                },
            }
        };
        let millis = |key: &str, default: u64| number(key, default, 0).map(Duration::from_millis);
        let replication_factor = match values.get(keys::REPLICATION_FACTOR) {
            None => -1,
            Some(v) => match v.trim().parse::<i16>() {
                Ok(n) if n == -1 || n >= 1 => n,
                _ => {
                    return Err(invalid(
                        keys::REPLICATION_FACTOR,
                        v,
                        "expected -1 (the broker's default) or a number of at least 1",
                    ));
                }
            },
        };

        let with_shared = |own: BTreeMap<String, String>| {
            let mut all = shared.clone();
            all.extend(own);
            all
        };
        let commit_interval = millis(keys::COMMIT_INTERVAL_MS, default_commit_ms)?;
        if processing_guarantee == ProcessingGuarantee::ExactlyOnceV2 {
            check_transaction_timeout(&producer, commit_interval)?;
        }
        Ok(StreamsConfig {
            bootstrap_servers: text(keys::BOOTSTRAP_SERVERS),
            client_id: text(keys::CLIENT_ID),
            group_instance_id: text(keys::GROUP_INSTANCE_ID),
            group_protocol,
            num_stream_threads: to_usize(number(keys::NUM_STREAM_THREADS, 1, 1)?),
            commit_interval,
            poll: millis(keys::POLL_MS, 100)?,
            processing_guarantee,
            state_dir: text(keys::STATE_DIR)
                .map_or_else(|| std::env::temp_dir().join("homa"), PathBuf::from),
            statestore_cache_max_bytes: number(
                keys::STATESTORE_CACHE_MAX_BYTES,
                10 * 1024 * 1024,
                0,
            )?,
            rocksdb_memory_bytes: number(
                keys::ROCKSDB_MEMORY_BYTES,
                128 * 1024 * 1024,
                1024 * 1024,
            )?,
            replication_factor,
            max_task_idle: millis(keys::MAX_TASK_IDLE_MS, 0)?,
            buffered_records_per_partition: to_usize(number(
                keys::BUFFERED_RECORDS_PER_PARTITION,
                1000,
                1,
            )?),
            repartition_purge_interval: millis(keys::REPARTITION_PURGE_INTERVAL_MS, 30_000)?,
            deserialization_handler,
            processing_handler,
            production_handler,
            dead_letter_queue_topic: text(keys::DEAD_LETTER_QUEUE_TOPIC),
            metrics_recording_level,
            windowstore_changelog_additional_retention: millis(
                keys::WINDOWSTORE_CHANGELOG_ADDITIONAL_RETENTION_MS,
                86_400_000,
            )?,
            emit_interval_windowed_aggregation: millis(
                keys::EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION,
                1000,
            )?,
            emit_interval_outer_join: millis(
                keys::EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX,
                1000,
            )?,
            main_consumer: {
                let mut all = with_shared(consumer.clone());
                all.extend(main_consumer);
                all
            },
            restore_consumer: {
                let mut all = with_shared(consumer.clone());
                all.extend(restore_consumer);
                all
            },
            global_consumer: {
                let mut all = with_shared(consumer.clone());
                all.extend(global_consumer);
                all
            },
            consumer: with_shared(consumer),
            producer: with_shared(producer),
            admin: with_shared(admin),
            application_id,
        })
    }
}

fn to_usize(n: u64) -> usize {
    usize::try_from(n).unwrap_or(usize::MAX)
}

fn is_streams_key(key: &str) -> bool {
    use keys::*;
    [
        APPLICATION_ID,
        BOOTSTRAP_SERVERS,
        CLIENT_ID,
        GROUP_INSTANCE_ID,
        GROUP_PROTOCOL,
        NUM_STREAM_THREADS,
        COMMIT_INTERVAL_MS,
        POLL_MS,
        PROCESSING_GUARANTEE,
        STATE_DIR,
        STATESTORE_CACHE_MAX_BYTES,
        ROCKSDB_MEMORY_BYTES,
        REPLICATION_FACTOR,
        MAX_TASK_IDLE_MS,
        BUFFERED_RECORDS_PER_PARTITION,
        REPARTITION_PURGE_INTERVAL_MS,
        WINDOWSTORE_CHANGELOG_ADDITIONAL_RETENTION_MS,
        EMIT_INTERVAL_MS_KSTREAMS_WINDOWED_AGGREGATION,
        EMIT_INTERVAL_MS_KSTREAMS_OUTER_JOIN_SPURIOUS_RESULTS_FIX,
        DESERIALIZATION_EXCEPTION_HANDLER,
        PROCESSING_EXCEPTION_HANDLER,
        PRODUCTION_EXCEPTION_HANDLER,
        DEAD_LETTER_QUEUE_TOPIC,
        METRICS_RECORDING_LEVEL,
    ]
    .contains(&key)
}

/// Checks a client setting: not one HOMA owns, and accepted by librdkafka.
fn check_client_key(key: &str, client_key: &str, value: &str) -> Result<(), ConfigError> {
    if RESERVED_CLIENT_SETTINGS.contains(&client_key) {
        return Err(invalid(
            key,
            value,
            "HOMA sets this client setting itself (use the HOMA setting where there is one)",
        ));
    }
    let mut probe = rdkafka::ClientConfig::new();
    probe.set(client_key, value);
    match probe.create_native_config() {
        Ok(_) => Ok(()),
        Err(rdkafka::error::KafkaError::ClientConfig(_, description, _, _)) => {
            Err(invalid(key, value, &format!("librdkafka: {description}")))
        }
        Err(e) => Err(invalid(key, value, &format!("librdkafka: {e}"))),
    }
}

fn invalid(key: &str, value: &str, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_string(),
        value: value.to_string(),
        reason: reason.to_string(),
    }
}

fn unknown(key: &str) -> ConfigError {
    let hint = if key.contains("serde") {
        "; serdes come from the types of the topology, or Consumed/Produced/Materialized"
            .to_string()
    } else if key.contains("timestamp.extractor") {
        "; set a TimestampExtractor on the source with Consumed".to_string()
    } else if looks_like_client_key(key) {
        format!("; for a Kafka client setting write consumer.{key}, producer.{key} or admin.{key}")
    } else {
        String::new()
    };
    ConfigError::Unknown {
        key: key.to_string(),
        hint,
    }
}

/// Whether librdkafka knows `key` (an empty value may still be rejected as invalid).
fn looks_like_client_key(key: &str) -> bool {
    let mut probe = rdkafka::ClientConfig::new();
    probe.set(key, "0");
    match probe.create_native_config() {
        Ok(_) => true,
        Err(rdkafka::error::KafkaError::ClientConfig(code, ..)) => {
            code != rdkafka::types::RDKafkaConfRes::RD_KAFKA_CONF_UNKNOWN
        }
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> StreamsConfigBuilder {
        StreamsConfig::builder().application_id("app")
    }

    /// The error of a config that sets `key` to `value`, which it must refuse.
    fn refused(key: &str, value: &str) -> ConfigError {
        base().set(key, value).build().unwrap_err()
    }

    #[test]
    fn defaults_are_kafka_streams_defaults() {
        let config = base().build().unwrap();
        assert_eq!(config.num_stream_threads(), 1);
        assert_eq!(config.commit_interval(), Duration::from_secs(30));
        assert_eq!(config.poll(), Duration::from_millis(100));
        assert_eq!(config.statestore_cache_max_bytes(), 10 * 1024 * 1024);
        assert_eq!(config.replication_factor(), -1);
        assert_eq!(config.client_id(), "app");
        assert_eq!(
            config.deserialization_handler(),
            DeserializationHandler::LogAndFail
        );
        assert!(config.bootstrap_servers().is_none());
    }

    #[test]
    fn exactly_once_commits_every_100_ms_unless_told_otherwise() {
        let config = base()
            .processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
            .build()
            .unwrap();
        assert_eq!(
            config.processing_guarantee(),
            ProcessingGuarantee::ExactlyOnceV2
        );
        assert!(config.exactly_once());
        assert_eq!(config.commit_interval(), Duration::from_millis(100));
        let config = base()
            .set("processing.guarantee", "exactly_once_v2")
            .set("commit.interval.ms", "250")
            .build()
            .unwrap();
        assert_eq!(config.commit_interval(), Duration::from_millis(250));
        assert!(!base().build().unwrap().exactly_once());
        let err = refused("processing.guarantee", "exactly_once_beta").to_string();
        assert!(err.contains("at_least_once or exactly_once_v2"), "{err}");
        let err = base()
            .set("processing.guarantee", "exactly_once_v2")
            .set("production.exception.handler", "log_and_continue")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("production.exception.handler"), "{err}");
        assert!(err.contains("cannot be skipped"), "{err}");
        let err = base()
            .set("processing.guarantee", "exactly_once_v2")
            .set("commit.interval.ms", "30000")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("producer.transaction.timeout.ms"), "{err}");
        base()
            .set("processing.guarantee", "exactly_once_v2")
            .set("commit.interval.ms", "30000")
            .set("producer.transaction.timeout.ms", "60000")
            .build()
            .unwrap();
    }

    #[test]
    fn the_consumer_group_protocol_leaves_the_session_to_the_broker() {
        let config = base().set("group.protocol", "consumer").build().unwrap();
        assert_eq!(config.group_protocol(), GroupProtocol::Consumer);
        assert_eq!(
            base().build().unwrap().group_protocol(),
            GroupProtocol::Classic
        );
        let err = base()
            .set("group.protocol", "consumer")
            .set("consumer.session.timeout.ms", "10000")
            .build()
            .unwrap_err()
            .to_string();
        assert!(err.contains("consumer.session.timeout.ms"), "{err}");
        assert!(err.contains("group.consumer.session.timeout.ms"), "{err}");
        let err = refused("group.protocol", "streams");
        assert!(err.to_string().contains("classic or consumer"), "{err}");
    }

    #[test]
    fn the_record_error_handlers_take_fail_or_continue() {
        let config = base()
            .set("processing.exception.handler", "log_and_continue")
            .set("production.exception.handler", "log_and_continue")
            .build()
            .unwrap();
        assert_eq!(
            config.processing_handler(),
            ProcessingHandler::LogAndContinue
        );
        assert_eq!(
            config.production_handler(),
            ProductionHandler::LogAndContinue
        );
        let defaults = base().build().unwrap();
        assert_eq!(defaults.processing_handler(), ProcessingHandler::LogAndFail);
        assert_eq!(defaults.production_handler(), ProductionHandler::LogAndFail);
        let err = refused("production.exception.handler", "retry");
        assert!(
            err.to_string().contains("production.exception.handler"),
            "{err}"
        );
    }

    #[test]
    fn errors_name_the_key() {
        let missing = StreamsConfig::builder().build().unwrap_err();
        assert_eq!(missing.to_string(), "config `application.id` is required");

        let err = refused("num.stream.threads", "zero");
        assert!(
            err.to_string()
                .starts_with("config `num.stream.threads` = \"zero\""),
            "{err}"
        );
        let err = refused("num.stream.threads", "0");
        assert!(err.to_string().contains("at least 1"), "{err}");

        let err = refused("processing.guarantee", "exactly_once");
        assert!(err.to_string().contains("exactly_once_v2"), "{err}");

        let err = refused("application.id", "my app");
        assert!(err.to_string().contains("application.id"), "{err}");

        let err = refused("metrics.recording.level", "debug");
        assert!(err.to_string().contains("INFO, DEBUG or TRACE"), "{err}");
        let debug = base().set("metrics.recording.level", "DEBUG").build();
        assert_eq!(
            debug.unwrap().metrics_recording_level(),
            RecordingLevel::Debug
        );
    }

    #[test]
    fn unknown_keys_are_errors_with_a_hint() {
        let err = refused("default.key.serde", "x");
        assert!(matches!(&err, ConfigError::Unknown { key, .. } if key == "default.key.serde"));
        assert!(
            err.to_string().contains("serdes come from the types"),
            "{err}"
        );

        let err = refused("fetch.min.bytes", "1");
        assert!(
            err.to_string().contains("consumer.fetch.min.bytes"),
            "{err}"
        );

        let err = refused("colour", "blue");
        assert_eq!(err.to_string(), "config `colour` is not a HOMA setting");
    }

    #[test]
    fn client_settings_pass_through_and_are_checked_by_librdkafka() {
        let config = base()
            .set("security.protocol", "plaintext")
            .set("consumer.fetch.min.bytes", "1024")
            .set("producer.linger.ms", "20")
            .set("admin.socket.timeout.ms", "10000")
            .build()
            .unwrap();
        assert_eq!(config.consumer_settings()["fetch.min.bytes"], "1024");
        assert_eq!(config.consumer_settings()["security.protocol"], "plaintext");
        assert!(!config.consumer_settings().contains_key("linger.ms"));
        let split = base()
            .set("consumer.fetch.min.bytes", "1024")
            .set("restore.consumer.fetch.min.bytes", "1")
            .set("main.consumer.max.poll.interval.ms", "60000")
            .build()
            .unwrap();
        assert_eq!(split.main_consumer_settings()["fetch.min.bytes"], "1024");
        assert_eq!(
            split.main_consumer_settings()["max.poll.interval.ms"],
            "60000"
        );
        assert_eq!(split.restore_consumer_settings()["fetch.min.bytes"], "1");
        assert!(
            !split
                .restore_consumer_settings()
                .contains_key("max.poll.interval.ms")
        );
        assert_eq!(config.producer_settings()["linger.ms"], "20");
        assert_eq!(config.admin_settings()["security.protocol"], "plaintext");

        let err = refused("consumer.fetch.min.byte", "1");
        assert!(err.to_string().contains("consumer.fetch.min.byte"), "{err}");
        let err = refused("producer.linger.ms", "soon");
        assert!(err.to_string().contains("producer.linger.ms"), "{err}");
        let err = refused("consumer.enable.auto.commit", "true");
        assert!(
            err.to_string()
                .contains("HOMA sets this client setting itself"),
            "{err}"
        );
    }
}

//! The harness for tests against a real Apache Kafka broker.
//!
//! [`kafka()`] gives the broker every test of a run shares: the one at
//! `HOMA_BOOTSTRAP_SERVERS` when that is set (as the project's test command sets it),
//! otherwise one this test binary starts through `scripts/kafka` on free ports, which the
//! script stops as soon as the binary exits, however it ends.
//!
//! Tests never share topics or groups: [`Kafka::create_topic`] and [`unique_name`] add a
//! random suffix, so tests run in parallel against one broker.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Command;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::config::ClientConfig;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::BorrowedMessage;
use rdkafka::message::DeliveryResult;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientContext, Message};
use rdkafka::{Offset, TopicPartitionList};

pub mod summing;

/// The variable that points the tests at a running broker instead of starting one.
pub const BOOTSTRAP_ENV: &str = "HOMA_BOOTSTRAP_SERVERS";

/// How long admin calls and waits on the broker may take before a test fails.
pub const TIMEOUT: Duration = Duration::from_secs(60);

/// A broker the tests talk to.
#[derive(Debug, Clone)]
pub struct Kafka {
    bootstrap_servers: String,
}

/// The broker of this test run, started on first use unless `HOMA_BOOTSTRAP_SERVERS` is set.
///
/// # Panics
/// When no broker can be started: every test of the run needs one, and the message says why.
pub fn kafka() -> &'static Kafka {
    static KAFKA: OnceLock<Result<Kafka, String>> = OnceLock::new();
    // HOMA logs through `tracing`: `RUST_LOG=homa=info` shows them in a test's output.
    if std::env::var_os("RUST_LOG").is_some() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_test_writer()
            .try_init();
    }
    let kafka = KAFKA.get_or_init(|| {
        match std::env::var(BOOTSTRAP_ENV) {
            Ok(servers) if !servers.trim().is_empty() => Ok(servers),
            _ => start_broker().map_err(|e| format!("{e:#}")),
        }
        .map(|bootstrap_servers| Kafka { bootstrap_servers })
    });
    match kafka {
        Ok(kafka) => kafka,
        Err(e) => panic!("no Kafka broker for the integration tests: {e}"),
    }
}

/// The root of the repository this test runs from.
///
/// Read at run time (cargo sets `CARGO_MANIFEST_DIR` for the tests it runs): a test binary
/// reused from a shared target dir may have been compiled in another checkout.
pub fn repo_root() -> PathBuf {
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from);
    manifest_dir.join("..")
}

/// Starts a broker through `scripts/kafka` on two free ports, owned by this process (it
/// stops when the process ends); returns its `bootstrap.servers`. For a test that needs a
/// broker of its own, to restart it.
pub fn start_broker() -> anyhow::Result<String> {
    let script = repo_root().join("scripts/kafka");
    let (port, controller_port) = (free_port()?, free_port()?);
    let output = Command::new("bash")
        .arg(&script)
        .args(["start", "--port", &port.to_string()])
        .args(["--controller-port", &controller_port.to_string()])
        .args(["--owner-pid", &std::process::id().to_string()])
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} start failed ({}): {}{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(format!("127.0.0.1:{port}"))
}

/// Restarts the broker of [`start_broker`] at `bootstrap` on its data (`kill`: with
/// SIGKILL, a crash), through `scripts/kafka restart`.
pub fn restart_broker(bootstrap: &str, kill: bool) -> anyhow::Result<()> {
    let script = repo_root().join("scripts/kafka");
    let port = bootstrap.rsplit(':').next().unwrap_or_default();
    let mut command = Command::new("bash");
    command.arg(&script).args(["restart", "--port", port]);
    if kill {
        command.arg("--kill");
    }
    let output = command
        .output()
        .with_context(|| format!("running {}", script.display()))?;
    if !output.status.success() {
        bail!(
            "{} restart failed ({}): {}{}",
            script.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(())
}

/// The end offsets of partitions `0..partitions` of `topic`, as `consumer` sees them.
fn end_offsets_of(
    consumer: &BaseConsumer,
    topic: &str,
    partitions: i32,
) -> anyhow::Result<Vec<i64>> {
    (0..partitions)
        .map(|p| {
            let (_, high) = consumer
                .fetch_watermarks(topic, p, TIMEOUT)
                .with_context(|| format!("end offset of {topic}/{p}"))?;
            Ok(high)
        })
        .collect()
}

/// A port that nothing listens on right now.
fn free_port() -> anyhow::Result<u16> {
    let listener = TcpListener::bind("127.0.0.1:0").context("binding a free local port")?;
    Ok(listener.local_addr()?.port())
}

/// Waits until `streams` is in state `state`; fails after [`TIMEOUT`].
///
/// # Errors
/// When it is not there in time.
pub fn wait_for_state(
    streams: &homa::runtime::KafkaStreams,
    state: homa::runtime::State,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    while streams.state() != state {
        ensure!(
            Instant::now() < deadline,
            "state {:?}, not {state:?}, after {TIMEOUT:?}",
            streams.state()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    Ok(())
}

/// `prefix` followed by a random suffix, for topics, groups and application ids that no
/// other test (or earlier run against the same broker) uses.
pub fn unique_name(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

impl Kafka {
    /// The broker at `bootstrap_servers`, started by someone else.
    pub fn at(bootstrap_servers: impl Into<String>) -> Self {
        Kafka {
            bootstrap_servers: bootstrap_servers.into(),
        }
    }

    /// The `bootstrap.servers` of this broker.
    pub fn bootstrap_servers(&self) -> &str {
        &self.bootstrap_servers
    }

    /// A client configuration pointing at this broker.
    pub fn client_config(&self) -> ClientConfig {
        let mut config = ClientConfig::new();
        config.set("bootstrap.servers", &self.bootstrap_servers);
        config
    }

    /// Creates a topic named `prefix-<random>` with `partitions` partitions and waits until
    /// the broker reports its partitions; returns the name.
    pub fn create_topic(&self, prefix: &str, partitions: i32) -> anyhow::Result<String> {
        self.create_topic_with(prefix, partitions, &[])
    }

    /// [`create_topic`](Self::create_topic) with topic-level `configs`, such as
    /// `("message.timestamp.type", "LogAppendTime")`.
    pub fn create_topic_with(
        &self,
        prefix: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<String> {
        let name = unique_name(prefix);
        self.create_named_topic_with(&name, partitions, configs)?;
        Ok(name)
    }

    /// Creates the topic `name` with `partitions` partitions and waits until the broker
    /// reports its partitions.
    pub fn create_topic_named(&self, name: &str, partitions: i32) -> anyhow::Result<()> {
        self.create_named_topic_with(name, partitions, &[])
    }

    fn create_named_topic_with(
        &self,
        name: &str,
        partitions: i32,
        configs: &[(&str, &str)],
    ) -> anyhow::Result<()> {
        let admin = self.admin()?;
        let mut topic = NewTopic::new(name, partitions, TopicReplication::Fixed(1));
        // The tests' records carry event times from 1970, as Kafka Streams' own tests do:
        // under the broker's time-based retention (7 days by default, checked every minute)
        // they would be deleted before they are read.
        if !configs.iter().any(|(key, _)| *key == "retention.ms") {
            topic = topic.set("retention.ms", "-1");
        }
        for (key, value) in configs {
            topic = topic.set(key, value);
        }
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let results = futures_executor::block_on(admin.create_topics([&topic], &options))
            .with_context(|| format!("creating topic {name}"))?;
        for result in results {
            if let Err((topic, code)) = result {
                bail!("creating topic {topic} with {partitions} partitions: {code}");
            }
        }
        self.wait_for_partitions(name, partitions)?;
        Ok(())
    }

    /// Deletes `topics`; a topic that does not exist is no error.
    pub fn delete_topics(&self, topics: &[&str]) -> anyhow::Result<()> {
        if topics.is_empty() {
            return Ok(());
        }
        let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
        let results = futures_executor::block_on(self.admin()?.delete_topics(topics, &options))
            .with_context(|| format!("deleting topics {topics:?}"))?;
        for result in results {
            match result {
                Ok(_) | Err((_, RDKafkaErrorCode::UnknownTopicOrPartition)) => {}
                Err((topic, code)) => bail!("deleting topic {topic}: {code}"),
            }
        }
        Ok(())
    }

    /// The configs of `topic` set on it (not the broker's defaults), by name.
    pub fn topic_configs(
        &self,
        topic: &str,
    ) -> anyhow::Result<std::collections::BTreeMap<String, String>> {
        let options = AdminOptions::new().request_timeout(Some(TIMEOUT));
        let resource = rdkafka::admin::ResourceSpecifier::Topic(topic);
        let results =
            futures_executor::block_on(self.admin()?.describe_configs([&resource], &options))
                .with_context(|| format!("describing the configs of {topic}"))?;
        let mut configs = std::collections::BTreeMap::new();
        for result in results {
            let resource = result.with_context(|| format!("the configs of {topic}"))?;
            for entry in resource.entries {
                if entry.source == rdkafka::admin::ConfigSource::DynamicTopic
                    && let Some(value) = entry.value
                {
                    configs.insert(entry.name, value);
                }
            }
        }
        Ok(configs)
    }

    /// The names of the topics that start with `prefix`.
    pub fn topics_with_prefix(&self, prefix: &str) -> anyhow::Result<Vec<String>> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let metadata = consumer
            .fetch_metadata(None, TIMEOUT)
            .context("listing topics")?;
        Ok(metadata
            .topics()
            .iter()
            .map(|t| t.name().to_string())
            .filter(|name| name.starts_with(prefix))
            .collect())
    }

    /// The end offsets (high watermarks) of partitions `0..partitions` of `topic`.
    pub fn end_offsets(&self, topic: &str, partitions: i32) -> anyhow::Result<Vec<i64>> {
        end_offsets_of(&self.offsets_client()?, topic, partitions)
    }

    /// The end offsets of partitions `0..partitions` of `topic` as a consumer of `config`
    /// sees them: a `read_committed` one (librdkafka's default) stops before the first open
    /// transaction, a `read_uncommitted` one sees every record written.
    pub fn end_offsets_with(
        &self,
        config: &ClientConfig,
        topic: &str,
        partitions: i32,
    ) -> anyhow::Result<Vec<i64>> {
        let consumer: BaseConsumer = config.create().context("creating a consumer")?;
        end_offsets_of(&consumer, topic, partitions)
    }

    /// The offsets consumer group `group` has committed for partitions `0..partitions` of
    /// `topic` (-1 where it has none), looked up without joining the group.
    pub fn committed_offsets(
        &self,
        group: &str,
        topic: &str,
        partitions: i32,
    ) -> anyhow::Result<Vec<i64>> {
        let consumer: BaseConsumer = self
            .client_config()
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .create()
            .context("creating a consumer")?;
        let mut list = TopicPartitionList::new();
        for p in 0..partitions {
            list.add_partition(topic, p);
        }
        let committed = consumer
            .committed_offsets(list, TIMEOUT)
            .with_context(|| format!("committed offsets of {group} on {topic}"))?;
        Ok(committed
            .elements()
            .iter()
            .map(|e| match e.offset() {
                Offset::Offset(at) => at,
                _ => -1,
            })
            .collect())
    }

    /// A client for [`end_offsets`](Self::end_offsets)-style look-ups; keep one for calls in
    /// a loop.
    pub fn offsets_client(&self) -> anyhow::Result<BaseConsumer> {
        self.client_config()
            .create()
            .context("creating a metadata client")
    }

    /// Reads partitions `0..partitions` of `topic` from the start up to their end offsets
    /// as they are now, handing each record to `each`; returns how many were read.
    pub fn read_to_end(
        &self,
        topic: &str,
        partitions: i32,
        each: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        // Tuned as fast readers are: large prefetch, refilled without librdkafka's 1 s wait.
        let mut config = self.consumer_config(&unique_name("homa-reader"));
        config
            .set("enable.auto.commit", "false")
            .set("queued.min.messages", "50000")
            .set("fetch.queue.backoff.ms", "10");
        self.read_to_end_with(&config, topic, partitions, each)
    }

    /// [`read_to_end`](Self::read_to_end) with a consumer of `config` (its own group, no
    /// auto commit).
    pub fn read_to_end_with(
        &self,
        config: &ClientConfig,
        topic: &str,
        partitions: i32,
        mut each: impl FnMut(&BorrowedMessage<'_>) -> anyhow::Result<()>,
    ) -> anyhow::Result<u64> {
        let consumer: BaseConsumer = config.create().context("creating a consumer")?;
        // Up to the end this consumer's isolation sees.
        let ends = end_offsets_of(&consumer, topic, partitions)?;
        let mut assignment = TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(topic, p, Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let mut positions = vec![0_i64; ends.len()];
        let mut read = 0_u64;
        let mut last_progress = Instant::now();
        while positions.iter().zip(&ends).any(|(at, end)| at < end) {
            match consumer.poll(Duration::from_millis(100)) {
                Some(message) => {
                    let message = message.with_context(|| format!("consuming {topic}"))?;
                    let partition = usize::try_from(message.partition())?;
                    if let Some(at) = positions.get_mut(partition) {
                        *at = message.offset() + 1;
                    }
                    each(&message)?;
                    read += 1;
                    last_progress = Instant::now();
                }
                None => {
                    // The position passes transaction markers, which no message shows.
                    for element in consumer.position()?.elements() {
                        if let (Offset::Offset(at), Ok(p)) =
                            (element.offset(), usize::try_from(element.partition()))
                            && let Some(position) = positions.get_mut(p)
                        {
                            *position = (*position).max(at);
                        }
                    }
                    ensure!(
                        last_progress.elapsed() < TIMEOUT,
                        "{topic}: read {read} records, up to offsets {positions:?} of {ends:?}, then nothing for {TIMEOUT:?}"
                    );
                }
            }
        }
        Ok(read)
    }

    fn admin(&self) -> anyhow::Result<AdminClient<DefaultClientContext>> {
        self.client_config()
            .create()
            .context("creating an admin client")
    }

    /// Waits until the metadata of `topic` shows `partitions` partitions with leaders.
    fn wait_for_partitions(&self, topic: &str, partitions: i32) -> anyhow::Result<()> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let metadata = consumer.fetch_metadata(Some(topic), Duration::from_secs(5));
            let ready = metadata.as_ref().is_ok_and(|m| {
                m.topics().iter().any(|t| {
                    t.name() == topic
                        && t.error().is_none()
                        && t.partitions().len() == partitions as usize
                        && t.partitions().iter().all(|p| p.leader() >= 0)
                })
            });
            if ready {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "topic {topic} did not show {partitions} partitions with leaders within {TIMEOUT:?}: {metadata:?}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Produces `records` (key, value) to `topic`, partitioned by key as Kafka's default
    /// partitioner does, and returns once every record is acknowledged by the broker.
    pub fn produce<K, V>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (K, V)>,
    ) -> anyhow::Result<u64>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.produce_timed(topic, records.into_iter().map(|(k, v)| (k, v, None)))
    }

    /// [`produce`](Self::produce) with each record's timestamp (ms since the epoch; `None`:
    /// the time of sending).
    pub fn produce_timed<K, V>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (K, V, Option<i64>)>,
    ) -> anyhow::Result<u64>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.produce_all(topic, records.into_iter().map(|(k, v, t)| (k, Some(v), t)))
    }

    /// [`produce`](Self::produce) of rows of a table: a row without a value is a
    /// tombstone.
    pub fn produce_rows<K, V>(
        &self,
        topic: &str,
        rows: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> anyhow::Result<u64>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        self.produce_all(topic, rows.into_iter().map(|(k, v)| (k, v, None)))
    }

    fn produce_all<K, V>(
        &self,
        topic: &str,
        records: impl IntoIterator<Item = (K, Option<V>, Option<i64>)>,
    ) -> anyhow::Result<u64>
    where
        K: AsRef<[u8]>,
        V: AsRef<[u8]>,
    {
        // Kafka's Java partitioner (murmur2), as HOMA's and Kafka Streams' sinks partition:
        // librdkafka's own default (CRC32) would put keys where no join looks for them.
        let producer: BaseProducer<DeliveryCounter> = self
            .client_config()
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
            .set("partitioner", "murmur2_random")
            .create_with_context(DeliveryCounter::default())
            .context("creating a producer")?;
        let mut sent = 0_u64;
        for (key, value, timestamp) in records {
            let mut record = BaseRecord::<[u8], [u8]>::to(topic).key(key.as_ref());
            if let Some(value) = &value {
                record = record.payload(value.as_ref());
            }
            if let Some(timestamp) = timestamp {
                record = record.timestamp(timestamp);
            }
            loop {
                match producer.send(record) {
                    Ok(()) => break,
                    Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                        record = back;
                        producer.poll(Duration::from_millis(10));
                    }
                    Err((e, _)) => bail!("producing record {sent} to {topic}: {e}"),
                }
            }
            sent += 1;
        }
        producer
            .flush(TIMEOUT)
            .with_context(|| format!("flushing {sent} records to {topic}"))?;
        let context = producer.context();
        if let Some(error) = context.first_error() {
            bail!(
                "{} of {sent} records to {topic} failed; the first: {error}",
                context.failed()
            );
        }
        ensure!(
            context.delivered() == sent,
            "{sent} records sent to {topic}, {} acknowledged",
            context.delivered()
        );
        Ok(sent)
    }

    /// A consumer in `group`, reading from the earliest offset, with the range assignor
    /// (as HOMA's runtime uses). Further settings can be added before `create()`.
    pub fn consumer_config(&self, group: &str) -> ClientConfig {
        let mut config = self.client_config();
        config
            .set("group.id", group)
            .set("auto.offset.reset", "earliest")
            .set("partition.assignment.strategy", "range")
            .set("enable.partition.eof", "false");
        config
    }

    /// The number of members of consumer group `group` right now.
    pub fn group_members(&self, group: &str) -> anyhow::Result<usize> {
        let consumer: BaseConsumer = self.client_config().create()?;
        let groups = consumer
            .fetch_group_list(Some(group), Duration::from_secs(10))
            .with_context(|| format!("describing group {group}"))?;
        Ok(groups
            .groups()
            .iter()
            .find(|g| g.name() == group)
            .map_or(0, |g| g.members().len()))
    }

    /// Waits until consumer group `group` has `members` members.
    pub fn wait_for_members(&self, group: &str, members: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            // Until the group's coordinator knows it, describing it fails: that is 0 members.
            let now = self.group_members(group);
            if now.as_ref().is_ok_and(|n| *n == members) {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "group {group} has {now:?} members, not {members}, after {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// A [`Reader`] of `topic` from its start.
    pub fn reader(&self, topic: &str) -> anyhow::Result<Reader> {
        let consumer: BaseConsumer = self
            .consumer_config(&unique_name("homa-test-reader"))
            .create()
            .context("creating a consumer")?;
        consumer.subscribe(&[topic])?;
        Ok(Reader {
            consumer,
            topic: topic.to_string(),
            records: Vec::new(),
            keys: std::collections::BTreeSet::new(),
        })
    }

    /// Reads `count` records of `topic` as a member of `group` (from its committed offsets,
    /// else the start), commits what it read and leaves; returns their keys.
    pub fn consume_committing(
        &self,
        topic: &str,
        group: &str,
        count: usize,
    ) -> anyhow::Result<Vec<String>> {
        let consumer: BaseConsumer = self
            .consumer_config(group)
            .set("enable.auto.commit", "false")
            .create()
            .context("creating a consumer")?;
        consumer.subscribe(&[topic])?;
        let deadline = Instant::now() + TIMEOUT;
        let mut keys = Vec::with_capacity(count);
        while keys.len() < count {
            ensure!(
                Instant::now() < deadline,
                "read {} of {count} records from {topic} within {TIMEOUT:?}",
                keys.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.with_context(|| format!("consuming {topic}"))?;
                keys.push(String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned());
            }
        }
        consumer
            .commit_consumer_state(rdkafka::consumer::CommitMode::Sync)
            .with_context(|| format!("committing {group}'s offsets of {topic}"))?;
        Ok(keys)
    }

    /// Reads `topic` from the start until `count` records have arrived, as a consumer of a
    /// fresh group; returns (key, value) pairs in the order each partition gave them.
    pub fn consume(&self, topic: &str, count: usize) -> anyhow::Result<Vec<(Vec<u8>, Vec<u8>)>> {
        let consumer: BaseConsumer = self
            .consumer_config(&unique_name("homa-test-reader"))
            .create()
            .context("creating a consumer")?;
        consumer.subscribe(&[topic])?;
        let deadline = Instant::now() + TIMEOUT;
        let mut records = Vec::with_capacity(count);
        while records.len() < count {
            ensure!(
                Instant::now() < deadline,
                "read {} of {count} records from {topic} within {TIMEOUT:?}",
                records.len()
            );
            if let Some(message) = consumer.poll(Duration::from_millis(100)) {
                let message = message.with_context(|| format!("consuming {topic}"))?;
                records.push((
                    message.key().unwrap_or_default().to_vec(),
                    message.payload().unwrap_or_default().to_vec(),
                ));
            }
        }
        Ok(records)
    }
}

/// A consumer of one topic (from its start, in a fresh group) that keeps what it read, for
/// tests that watch an output grow.
pub struct Reader {
    consumer: BaseConsumer,
    topic: String,
    records: Vec<(Vec<u8>, Vec<u8>)>,
    keys: std::collections::BTreeSet<Vec<u8>>,
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("topic", &self.topic)
            .field("read", &self.records.len())
            .finish_non_exhaustive()
    }
}

impl Reader {
    /// Reads until `keys` distinct keys have arrived; fails after [`TIMEOUT`].
    pub fn read_distinct(&mut self, keys: usize) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        while self.keys.len() < keys {
            ensure!(
                Instant::now() < deadline,
                "{}: {} distinct keys of {keys} after {TIMEOUT:?} ({} records)",
                self.topic,
                self.keys.len(),
                self.records.len()
            );
            self.poll(Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// Reads whatever arrives within `period`.
    pub fn read_for(&mut self, period: Duration) -> anyhow::Result<()> {
        let end = Instant::now() + period;
        while Instant::now() < end {
            self.poll(Duration::from_millis(100))?;
        }
        Ok(())
    }

    /// Every record read so far, as (key, value).
    pub fn records(&self) -> &[(Vec<u8>, Vec<u8>)] {
        &self.records
    }

    /// How many distinct keys were read.
    pub fn distinct_keys(&self) -> usize {
        self.keys.len()
    }

    /// How many records repeated a key read before.
    pub fn duplicates(&self) -> usize {
        self.records.len() - self.keys.len()
    }

    fn poll(&mut self, timeout: Duration) -> anyhow::Result<()> {
        if let Some(message) = self.consumer.poll(timeout) {
            let message = message.with_context(|| format!("consuming {}", self.topic))?;
            let key = message.key().unwrap_or_default().to_vec();
            self.keys.insert(key.clone());
            self.records
                .push((key, message.payload().unwrap_or_default().to_vec()));
        }
        Ok(())
    }
}

/// Counts the delivery reports of a producer and keeps the first error.
#[derive(Debug, Default)]
pub struct DeliveryCounter {
    delivered: AtomicU64,
    failed: AtomicU64,
    first_error: Mutex<Option<String>>,
}

impl DeliveryCounter {
    /// Records acknowledged by the broker.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Relaxed)
    }

    /// Records whose delivery failed.
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// The first delivery error, if any.
    pub fn first_error(&self) -> Option<String> {
        self.first_error
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl ClientContext for DeliveryCounter {}

impl ProducerContext for DeliveryCounter {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: Self::DeliveryOpaque) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((error, message)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                let mut first = self
                    .first_error
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner);
                first.get_or_insert_with(|| {
                    format!("{error} ({}/{})", message.topic(), message.partition())
                });
            }
        }
    }
}

/// A Processor API count of records per key in a logged store, for the state tests.
pub mod counting {
    use std::collections::BTreeMap;
    use std::path::Path;
    use std::time::Duration;

    use anyhow::Context;
    use homa::prelude::*;
    use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
    use homa::state::{KeyValueStore, StoreBuilder};
    use rdkafka::Message;

    use super::{kafka, unique_name};

    /// The name of the counts store.
    pub const STORE: &str = "counts";
    /// Distinct keys of a batch.
    pub const KEYS: usize = 40;
    /// Records of a batch: each key `BATCH / KEYS` times.
    pub const BATCH: usize = 2_000;

    /// Counts records per key in the store [`STORE`]; forwards nothing.
    #[derive(Debug, Default)]
    pub struct CountKeys(Option<KeyValueStore<String, i64>>);

    impl Processor<String, String, String, i64> for CountKeys {
        fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> Result<(), ProcessError> {
            self.0 = Some(ctx.key_value_store(STORE)?);
            Ok(())
        }

        fn process(
            &mut self,
            record: Record<String, String>,
            _: &mut ProcessorContext<String, i64>,
        ) -> Result<(), ProcessError> {
            let store = self.0.as_ref().ok_or("not initialised")?;
            if let Some(key) = &record.key {
                let count = store.get(key)?.unwrap_or(0) + 1;
                store.put(key, &count)?;
            }
            Ok(())
        }
    }

    /// The topology: `input` into [`CountKeys`] over a RocksDB store [`STORE`].
    ///
    /// # Errors
    /// None expected; the builder's errors are passed on.
    pub fn topology(input: &str) -> Result<Topology, homa::topology::TopologyError> {
        let mut builder = StreamsBuilder::new();
        builder
            .add_source::<String, String>("in", &[input])?
            .add_processor("count", CountKeys::default, &["in"])?
            .add_state_store(StoreBuilder::<String, i64>::key_value(STORE), &["count"])?;
        builder.build()
    }

    /// The last value of each key of a topic of big-endian `i64` counts (a count changelog).
    ///
    /// # Errors
    /// When the topic cannot be read, or holds a tombstone or a value of another size.
    pub fn last_counts(topic: &str, partitions: i32) -> anyhow::Result<BTreeMap<String, i64>> {
        let mut last = BTreeMap::new();
        kafka().read_to_end(topic, partitions, |message| {
            let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
            let value = message
                .payload()
                .context("a tombstone in a count changelog")?;
            last.insert(key, i64::from_be_bytes(value.try_into()?));
            Ok(())
        })?;
        Ok(last)
    }

    /// A counting application on a fresh 4-partition input topic.
    #[derive(Debug)]
    pub struct CountApp {
        /// The input topic.
        pub input: String,
        /// The application id.
        pub id: String,
        /// The store's changelog topic.
        pub changelog: String,
        /// Its topology.
        pub topology: Topology,
    }

    impl CountApp {
        /// A new application, its id starting with `prefix`.
        ///
        /// # Errors
        /// When the input topic cannot be made.
        pub fn new(prefix: &str) -> anyhow::Result<Self> {
            let input = kafka().create_topic(&format!("{prefix}-in"), 4)?;
            let id = unique_name(prefix);
            Ok(Self {
                topology: topology(&input)?,
                changelog: format!("{id}-{STORE}-changelog"),
                input,
                id,
            })
        }

        /// Produces batch number `batch`: [`BATCH`] records over [`KEYS`] keys.
        ///
        /// # Errors
        /// When a record is not acknowledged.
        pub fn produce(&self, batch: usize) -> anyhow::Result<()> {
            let records: Vec<(String, String)> = (0..BATCH)
                .map(|i| (format!("key-{}", i % KEYS), format!("{batch}-{i}")))
                .collect();
            kafka().produce(
                &self.input,
                records.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            )?;
            Ok(())
        }

        /// A started instance with its state in `state`.
        ///
        /// # Errors
        /// When it cannot start.
        pub fn instance(&self, state: &Path) -> anyhow::Result<KafkaStreams> {
            self.instance_with(state, &[])
        }

        /// [`instance`](Self::instance) with further `settings`.
        ///
        /// # Errors
        /// When it cannot start.
        pub fn instance_with(
            &self,
            state: &Path,
            settings: &[(&str, &str)],
        ) -> anyhow::Result<KafkaStreams> {
            let config = StreamsConfig::builder()
                .application_id(&self.id)
                .bootstrap_servers(kafka().bootstrap_servers())
                .state_dir(state)
                .commit_interval(Duration::from_millis(200))
                .set("consumer.session.timeout.ms", "10000")
                .set_all(settings.iter().copied())
                .build()?;
            let mut streams = KafkaStreams::new(&self.topology, config)?;
            streams.set_uncaught_error_handler(|e| eprintln!("stream thread failed: {e}"));
            streams.start()?;
            Ok(streams)
        }

        /// Records in the changelog now (0 until the application has made it).
        pub fn changelog_records(&self) -> i64 {
            kafka()
                .end_offsets(&self.changelog, 4)
                .map_or(0, |ends| ends.iter().sum())
        }

        /// Waits until the changelog's last count of every key is `per_key`; fails at once
        /// if one goes past it (a record counted twice, as in a handover that lost a
        /// commit).
        ///
        /// # Errors
        /// When a count goes past `per_key`, or they are not all there in time.
        pub fn wait_for_counts(&self, per_key: i64) -> anyhow::Result<()> {
            let deadline = std::time::Instant::now() + super::TIMEOUT;
            loop {
                let last = self.counts()?;
                if last.len() == KEYS && last.values().all(|n| *n == per_key) {
                    return Ok(());
                }
                anyhow::ensure!(
                    last.values().all(|n| *n <= per_key),
                    "a count went past {per_key}: records counted twice: {last:?}"
                );
                anyhow::ensure!(
                    std::time::Instant::now() < deadline,
                    "counts not all {per_key} after {:?}: {last:?}",
                    super::TIMEOUT
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }

        /// The last count of each key in the changelog.
        ///
        /// # Errors
        /// As [`last_counts`].
        pub fn counts(&self) -> anyhow::Result<BTreeMap<String, i64>> {
            last_counts(&self.changelog, 4)
        }
    }

    /// Records `streams` has restored into [`STORE`].
    pub fn restored(streams: &KafkaStreams) -> u64 {
        streams
            .metrics()
            .restored_records
            .get(STORE)
            .copied()
            .unwrap_or(0)
    }
}

/// Kills `child` with SIGKILL (no commit, no flush, no checkpoint) and reaps it.
///
/// # Errors
/// When the signal cannot be sent or the child not waited for.
pub fn kill(mut child: std::process::Child) -> anyhow::Result<()> {
    child.kill()?;
    child.wait()?;
    Ok(())
}

/// A child process that is killed (SIGKILL) when dropped: a test that fails half-way
/// leaves no process behind (one would also hold the test's output open).
#[derive(Debug)]
pub struct ChildGuard(Option<std::process::Child>);

impl ChildGuard {
    /// Guards `child`.
    pub fn new(child: std::process::Child) -> Self {
        Self(Some(child))
    }

    /// The child, while it is guarded.
    ///
    /// # Panics
    /// Never: it is only taken by [`kill`](Self::kill), which consumes the guard.
    pub fn child(&mut self) -> &mut std::process::Child {
        self.0
            .as_mut()
            .expect("a guard holds its child until killed")
    }

    /// Kills the child now, as [`kill`].
    ///
    /// # Errors
    /// As [`kill`].
    pub fn kill(mut self) -> anyhow::Result<()> {
        match self.0.take() {
            Some(child) => kill(child),
            None => Ok(()),
        }
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Runs `topology` as application `app` against `bootstrap` with its state in `state_dir`
/// (commits every 500 ms, a 10 s session), until it fails or is killed: the main loop of
/// the apps that tests kill. `name` prefixes what it prints of an error.
///
/// # Errors
/// When the instance cannot start, or stops.
pub fn run_until_killed(
    name: &str,
    topology: &homa::prelude::Topology,
    [bootstrap, app, state_dir]: [&str; 3],
) -> anyhow::Result<()> {
    let config = homa::prelude::StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(bootstrap)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(500))
        .set("consumer.session.timeout.ms", "10000")
        .build()?;
    let mut streams = homa::runtime::KafkaStreams::new(topology, config)?;
    let prefix = name.to_string();
    streams.set_uncaught_error_handler(move |e| eprintln!("{prefix}: {e}"));
    streams.start()?;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        let state = streams.state();
        if matches!(
            state,
            homa::runtime::State::Error | homa::runtime::State::NotRunning
        ) {
            bail!("{name} stopped: {state:?}");
        }
    }
}

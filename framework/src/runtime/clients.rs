//! librdkafka settings of a stream thread's clients, from the `StreamsConfig`.

use std::collections::BTreeMap;

use rdkafka::ClientConfig;

use crate::config::{GroupProtocol, StreamsConfig};

/// Kafka Streams' defaults, then the user's settings, then the ones HOMA owns.
fn client(
    defaults: &[(&str, &str)],
    own: &BTreeMap<String, String>,
    bootstrap: &str,
    client_id: String,
) -> ClientConfig {
    let mut client = ClientConfig::new();
    for (key, value) in defaults {
        client.set(*key, *value);
    }
    for (key, value) in own {
        client.set(key, value);
    }
    client
        .set("bootstrap.servers", bootstrap)
        .set("client.id", client_id);
    client
}

/// The consumer of stream thread `thread`: the application's group, no auto commit, a range
/// assignor (the same partition numbers of co-partitioned topics to one member).
pub(crate) fn consumer(config: &StreamsConfig, bootstrap: &str, thread: usize) -> ClientConfig {
    // librdkafka prefetches each partition until queued.min.messages are waiting, and then
    // checks again only after fetch.queue.backoff.ms (1 s by default): a stream thread that
    // drains the queue sooner sits idle until then. Kafka Streams' consumer fetches again as
    // soon as its buffer is used up; 10 ms comes close to that at no cost when idle. A queue
    // of 10,000 records a partition keeps a thread busy and bounds the memory prefetched.
    let defaults = [
        ("auto.offset.reset", "earliest"),
        ("max.poll.interval.ms", "300000"),
        ("queued.min.messages", "10000"),
        ("fetch.queue.backoff.ms", "10"),
    ];
    let id = format!("{}-StreamThread-{thread}-consumer", config.client_id());
    let mut client = client(&defaults, config.main_consumer_settings(), bootstrap, id);
    client
        .set("isolation.level", isolation(config))
        .set("group.id", config.application_id())
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    match config.group_protocol() {
        GroupProtocol::Classic => client.set("partition.assignment.strategy", "range"),
        // The broker's range assignor gives a member the same partition numbers of every
        // topic it subscribes to, as long as all subscribe to the same topics (every stream
        // thread subscribes to all source topics); its default (`uniform`) does not.
        GroupProtocol::Consumer => client
            .set("group.protocol", "consumer")
            .set("group.remote.assignor", "range"),
    };
    if let Some(instance) = config.group_instance_id() {
        client.set("group.instance.id", format!("{instance}-{thread}"));
    }
    client
}

/// The consumer that keeps the global tables: no group (it assigns every partition
/// itself, positioned where the tables were written up to), no commits.
pub(crate) fn global_consumer(config: &StreamsConfig, bootstrap: &str) -> ClientConfig {
    let defaults = [
        ("queued.min.messages", "10000"),
        ("fetch.queue.backoff.ms", "10"),
    ];
    let id = format!("{}-global-consumer", config.client_id());
    let mut client = client(&defaults, config.global_consumer_settings(), bootstrap, id);
    // librdkafka assigns partitions only to a consumer with a group; this one never joins
    // it (no subscribe) and never commits.
    let group = format!("{}-global", config.client_id());
    client
        .set("isolation.level", isolation(config))
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false")
        // A position out of range is an error, as Kafka Streams' `none`: the tables are
        // restored again from the start on the next start.
        .set("auto.offset.reset", "error");
    client
}

/// The restore consumer of stream thread `thread`: partitions assigned by hand, the
/// consumer settings otherwise.
pub(crate) fn restore_consumer(
    config: &StreamsConfig,
    bootstrap: &str,
    thread: usize,
) -> ClientConfig {
    // A changelog offset out of range (compacted or deleted since it was looked up) starts
    // the replay at the earliest record, never at the end.
    let defaults = [
        ("auto.offset.reset", "earliest"),
        ("queued.min.messages", "10000"),
        ("fetch.queue.backoff.ms", "10"),
    ];
    let id = format!(
        "{}-StreamThread-{thread}-restore-consumer",
        config.client_id()
    );
    let mut client = client(&defaults, config.restore_consumer_settings(), bootstrap, id);
    // librdkafka assigns partitions only to a consumer with a group; this one never joins
    // it (no subscribe) and never commits.
    let group = format!("{}-StreamThread-{thread}-restore", config.client_id());
    client
        .set("isolation.level", isolation(config))
        .set("group.id", group)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("enable.partition.eof", "false");
    client
}

/// What the consumers read: under exactly-once only committed records (a transaction's
/// once it commits, an aborted one's never), as Kafka Streams; else everything, as Java's
/// default (librdkafka's is `read_committed`).
fn isolation(config: &StreamsConfig) -> &'static str {
    if config.exactly_once() {
        "read_committed"
    } else {
        "read_uncommitted"
    }
}

/// The producer of stream thread `thread`, with Java's partitioner, so a key lands where
/// Kafka Streams (and any Java producer) would put it; transactional with
/// `transactional_id` (under exactly-once), whose transactions time out after 10 s, as
/// Kafka Streams sets (librdkafka's default is a minute: a crashed instance would hold
/// back every `read_committed` reader of its partitions that long).
pub(crate) fn producer(
    config: &StreamsConfig,
    bootstrap: &str,
    thread: usize,
    transactional_id: Option<&str>,
) -> ClientConfig {
    let timeout = crate::config::DEFAULT_TRANSACTION_TIMEOUT_MS.to_string();
    let mut defaults = vec![("linger.ms", "100"), ("enable.idempotence", "true")];
    if transactional_id.is_some() {
        defaults.push(("transaction.timeout.ms", &timeout));
    }
    let id = format!("{}-StreamThread-{thread}-producer", config.client_id());
    let mut client = client(&defaults, config.producer_settings(), bootstrap, id);
    client.set("partitioner", "murmur2_random");
    if let Some(transactional_id) = transactional_id {
        client.set("transactional.id", transactional_id);
    }
    client
}

/// The `transactional.id` of stream thread `thread` of process `process` (Kafka Streams'
/// `<application.id>-<process id>-<thread>`).
pub(crate) fn transactional_id(config: &StreamsConfig, process: &str, thread: usize) -> String {
    format!("{}-{process}-{thread}", config.application_id())
}

/// The admin client of the instance.
pub(crate) fn admin(config: &StreamsConfig, bootstrap: &str) -> ClientConfig {
    client(
        &[],
        config.admin_settings(),
        bootstrap,
        format!("{}-admin", config.client_id()),
    )
}

/// How many partitions the broker says `topic` has, asked through `client`.
pub(crate) fn partition_count<C: rdkafka::ClientContext>(
    client: &rdkafka::client::Client<C>,
    topic: &str,
    timeout: std::time::Duration,
) -> Result<i32, String> {
    let metadata = client
        .fetch_metadata(Some(topic), timeout)
        .map_err(|e| format!("the metadata of topic {topic}: {e}"))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
        .map(|t| t.partitions().len())
        .filter(|n| *n > 0)
        .ok_or_else(|| format!("topic {topic} does not exist"))?;
    i32::try_from(count).map_err(|e| format!("topic {topic}: {e}"))
}

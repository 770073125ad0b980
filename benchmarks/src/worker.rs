//! The processes the harness measures: `homa-bench worker`, running one workload on HOMA or
//! on the raw rdkafka loop until it is killed (or its parent, the harness, is gone).

use std::collections::HashMap;
use std::os::unix::process::parent_id;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use clap::Args;
use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::DeliveryCounter;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::workload::{self, System};

/// What a measured process is told; the Kafka Streams reference takes the same flags.
#[derive(Debug, Clone, Args)]
pub struct WorkerArgs {
    /// The workload id.
    #[arg(long)]
    pub workload: String,
    /// Kafka's bootstrap servers.
    #[arg(long)]
    pub bootstrap: String,
    /// The input topic.
    #[arg(long)]
    pub input: String,
    /// The output topic.
    #[arg(long)]
    pub output: String,
    /// The application id (and consumer group).
    #[arg(long = "app-id")]
    pub app_id: String,
    /// The state directory.
    #[arg(long = "state-dir")]
    pub state_dir: String,
    /// Settings as in a properties file (`KEY=VALUE`; `consumer.`/`producer.` prefixes).
    #[arg(long = "set", value_parser = parse_setting)]
    pub settings: Vec<(String, String)>,
}

impl WorkerArgs {
    /// The arguments as flags, to start a process with.
    pub fn to_flags(&self) -> Vec<String> {
        let mut flags = vec![
            "--workload".into(),
            self.workload.clone(),
            "--bootstrap".into(),
            self.bootstrap.clone(),
            "--input".into(),
            self.input.clone(),
            "--output".into(),
            self.output.clone(),
            "--app-id".into(),
            self.app_id.clone(),
            "--state-dir".into(),
            self.state_dir.clone(),
        ];
        for (key, value) in &self.settings {
            flags.push("--set".into());
            flags.push(format!("{key}={value}"));
        }
        flags
    }

    fn setting(&self, key: &str) -> Option<&str> {
        self.settings
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }
}

/// Parses `KEY=VALUE`.
pub fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// Runs `system` on the workload until killed or orphaned.
pub fn run(system: System, args: &WorkerArgs) -> anyhow::Result<()> {
    match system {
        System::Homa => run_homa(args),
        System::Rdkafka => run_rdkafka(args),
        System::KafkaStreams => bail!("Kafka Streams runs in its own JVM, not in homa-bench"),
    }
}

/// True once the process that started this one has exited.
fn orphaned(parent: u32) -> bool {
    parent_id() != parent
}

fn run_homa(args: &WorkerArgs) -> anyhow::Result<()> {
    let workload = workload::find(&args.workload)?;
    let mut builder = StreamsBuilder::new();
    (workload.homa)(&mut builder, &args.input, &args.output);
    let topology = builder.build()?;
    let config = StreamsConfig::builder()
        .application_id(&args.app_id)
        .bootstrap_servers(&args.bootstrap)
        .state_dir(&args.state_dir)
        .set_all(args.settings.iter().cloned())
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;
    let parent = parent_id();
    while !orphaned(parent) {
        let state = streams.state();
        ensure!(
            !matches!(state, State::Error | State::NotRunning),
            "HOMA stopped: {state:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    streams.close(Duration::from_secs(10))?;
    Ok(())
}

/// The ceiling: consume, produce each record as it comes, and every commit interval flush
/// the producer and commit the consumed offsets (at-least-once, as the systems measured
/// against it). Tuned as fast rdkafka programs are: large fetch queues refilled without
/// librdkafka's 1 s back-off, big producer batches and queues, linger.
fn run_rdkafka(args: &WorkerArgs) -> anyhow::Result<()> {
    let mut consumer_config = ClientConfig::new();
    consumer_config
        .set("bootstrap.servers", &args.bootstrap)
        .set("group.id", &args.app_id)
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false")
        .set("queued.min.messages", "50000")
        .set("fetch.queue.backoff.ms", "10")
        .set("fetch.message.max.bytes", "4194304");
    let mut producer_config = ClientConfig::new();
    producer_config
        .set("bootstrap.servers", &args.bootstrap)
        .set("linger.ms", "100")
        .set("batch.num.messages", "100000")
        .set("queue.buffering.max.messages", "1000000")
        .set("queue.buffering.max.kbytes", "1048576")
        .set("enable.idempotence", "true")
        .set("partitioner", "murmur2_random");
    for (key, value) in &args.settings {
        if let Some(key) = key.strip_prefix("consumer.") {
            consumer_config.set(key, value);
        } else if let Some(key) = key.strip_prefix("producer.") {
            producer_config.set(key, value);
        }
    }
    let commit_interval = Duration::from_millis(
        args.setting("commit.interval.ms")
            .unwrap_or("30000")
            .parse()
            .context("commit.interval.ms")?,
    );
    let consumer: BaseConsumer = consumer_config.create().context("creating the consumer")?;
    let producer: BaseProducer<DeliveryCounter> = producer_config
        .create_with_context(DeliveryCounter::default())
        .context("creating the producer")?;
    consumer.subscribe(&[&args.input])?;

    let parent = parent_id();
    let mut next_offsets: HashMap<i32, i64> = HashMap::new();
    let mut last_commit = Instant::now();
    let mut since_poll = 0_u32;
    while !orphaned(parent) {
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.context("consuming")?;
            // The input's timestamp goes on, as the stream processors do.
            let mut record = BaseRecord::to(&args.output);
            if let Some(timestamp) = message.timestamp().to_millis() {
                record = record.timestamp(timestamp);
            }
            if let Some(key) = message.key() {
                record = record.key(key);
            }
            if let Some(value) = message.payload() {
                record = record.payload(value);
            }
            if let Some(headers) = message.headers() {
                record = record.headers(headers.detach());
            }
            send(&producer, record)?;
            next_offsets.insert(message.partition(), message.offset() + 1);
            since_poll += 1;
            if since_poll >= 1000 {
                producer.poll(Duration::ZERO);
                since_poll = 0;
            }
        }
        if last_commit.elapsed() >= commit_interval {
            commit(&consumer, &producer, &args.input, &next_offsets)?;
            last_commit = Instant::now();
        }
    }
    Ok(())
}

pub(crate) fn send<'a>(
    producer: &BaseProducer<DeliveryCounter>,
    mut record: BaseRecord<'a, [u8], [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => return Ok(()),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((error, _)) => bail!("producing: {error}"),
        }
    }
}

/// Flushes the producer, checks every delivery, then commits what was consumed.
fn commit(
    consumer: &BaseConsumer,
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    next_offsets: &HashMap<i32, i64>,
) -> anyhow::Result<()> {
    // rdkafka's flush(timeout) polls 100 ms at a time to the end of each poll: in 1 ms rounds
    // the flush ends when the last acknowledgement arrives (as HOMA flushes).
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.flush(Duration::from_millis(1)) {
            Ok(()) => break,
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline => {}
            Err(error) => bail!("flushing the producer: {error}"),
        }
    }
    if let Some(error) = producer.context().first_error() {
        bail!("a record was not delivered: {error}");
    }
    if next_offsets.is_empty() {
        return Ok(());
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next_offsets {
        offsets.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
    }
    consumer
        .commit(&offsets, CommitMode::Sync)
        .context("committing offsets")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_parse_back_into_the_same_arguments() {
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            args: WorkerArgs,
        }
        let args = WorkerArgs {
            workload: "w1".into(),
            bootstrap: "localhost:9092".into(),
            input: "in".into(),
            output: "out".into(),
            app_id: "app".into(),
            state_dir: "/tmp/s".into(),
            settings: vec![("commit.interval.ms".into(), "100".into())],
        };
        let flags = std::iter::once("worker".to_string()).chain(args.to_flags());
        let parsed = <Cli as clap::Parser>::try_parse_from(flags).unwrap().args;
        assert_eq!(parsed.to_flags(), args.to_flags());
        assert_eq!(parsed.setting("commit.interval.ms"), Some("100"));
        assert!(parse_setting("=x").is_err());
    }
}

//! The processes the harness measures: `homa-bench worker`, running one workload on HOMA or
//! on the raw rdkafka loop until it is killed (or its parent, the harness, is gone).

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
use rdkafka::{Offset, TopicPartitionList};

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
}

impl WorkerArgs {
    /// HOMA's configuration for these arguments.
    fn config(&self) -> anyhow::Result<StreamsConfig> {
        Ok(StreamsConfig::builder()
            .application_id(&self.app_id)
            .bootstrap_servers(&self.bootstrap)
            .state_dir(&self.state_dir)
            .set_all(self.settings.iter().cloned())
            .build()?)
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
    let config = args.config()?;
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
/// against it). It runs HOMA's own clients (`homa::runtime::ClientConfigs`: the same
/// settings, the user's included), polls in rounds of up to 1,000 records as a stream
/// thread does, keeps the next offsets in a vector by partition, and flushes as HOMA does,
/// so that HOMA can come close to it but not pass it.
fn run_rdkafka(args: &WorkerArgs) -> anyhow::Result<()> {
    let config = args.config()?;
    let clients = homa::runtime::ClientConfigs::new(&config, &args.bootstrap);
    let consumer: BaseConsumer = clients.consumer.create().context("creating the consumer")?;
    let producer: BaseProducer<DeliveryCounter> = clients
        .producer
        .create_with_context(DeliveryCounter::default())
        .context("creating the producer")?;
    consumer.subscribe(&[&args.input])?;

    let parent = parent_id();
    let mut next_offsets: Vec<Option<i64>> = Vec::new();
    let mut last_commit = Instant::now();
    let mut batch = Vec::with_capacity(POLL_RECORDS);
    while !orphaned(parent) {
        let mut next = consumer.poll(config.poll());
        while let Some(message) = next {
            batch.push(message.context("consuming")?);
            next = if batch.len() < POLL_RECORDS {
                consumer.poll(Duration::ZERO)
            } else {
                None
            };
        }
        for message in &batch {
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
            let partition = usize::try_from(message.partition()).context("partition")?;
            if next_offsets.len() <= partition {
                next_offsets.resize(partition + 1, None);
            }
            next_offsets[partition] = Some(message.offset() + 1);
        }
        batch.clear();
        serve_deliveries(&producer);
        if last_commit.elapsed() >= config.commit_interval() {
            commit(&consumer, &producer, &args.input, &next_offsets)?;
            last_commit = Instant::now();
        }
    }
    Ok(())
}

/// Records a poll round takes, as a HOMA stream thread's.
const POLL_RECORDS: usize = 1000;

/// Serves the delivery reports that have arrived (at most 64), as a stream thread does.
fn serve_deliveries(producer: &BaseProducer<DeliveryCounter>) {
    for _ in 0..64 {
        if !serve_one(producer) {
            break;
        }
    }
}

/// Serves one delivery report if one has arrived; returns whether one had.
fn serve_one(producer: &BaseProducer<DeliveryCounter>) -> bool {
    let before = producer.in_flight_count();
    producer.poll(Duration::ZERO);
    producer.in_flight_count() < before
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

/// Flushes the producer as a stream thread does (serving acknowledgements as they come,
/// sleeping 100 µs when none has), checks every delivery, then commits what was consumed.
fn commit(
    consumer: &BaseConsumer,
    producer: &BaseProducer<DeliveryCounter>,
    topic: &str,
    next_offsets: &[Option<i64>],
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match producer.flush(Duration::ZERO) {
            Ok(()) => break,
            Err(KafkaError::Flush(RDKafkaErrorCode::OperationTimedOut))
                if Instant::now() < deadline => {}
            Err(error) => bail!("flushing the producer: {error}"),
        }
        if !serve_one(producer) {
            std::thread::sleep(Duration::from_micros(100));
        }
    }
    if let Some(error) = producer.context().first_error() {
        bail!("a record was not delivered: {error}");
    }
    let mut offsets = TopicPartitionList::new();
    for (partition, offset) in next_offsets.iter().enumerate() {
        if let Some(offset) = offset {
            let partition = i32::try_from(partition).context("partition")?;
            offsets.add_partition_offset(topic, partition, Offset::Offset(*offset))?;
        }
    }
    if offsets.count() == 0 {
        return Ok(());
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
        assert_eq!(parsed.settings, args.settings);
        assert!(parse_setting("=x").is_err());
    }
}

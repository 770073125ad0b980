//! The application of the exactly-once tests: a running sum per key and a windowed count,
//! and what its output must be for a given input.
//!
//! Input records are `key` = decimal number, stamped in order. [`topology`] parses each
//! value (a value that is no number fails the processor: the tests' poison pill),
//! repartitions them (topic `numbers`), writes
//! each key's new sum to the sums topic (store [`SUMS`], uncached, so every sum goes out)
//! and each key's count per [`WINDOW`] window to the counts topic as `key@start` (store
//! [`COUNTS`], cached).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
use rdkafka::Message;

use super::{Kafka, TIMEOUT, unique_name};

/// The sums store.
pub const SUMS: &str = "sums";
/// The windowed counts store.
pub const COUNTS: &str = "window-counts";
/// The size of the counted windows (tumbling, no grace).
pub const WINDOW: Duration = Duration::from_secs(1);
/// The timestamp of input record 0; record `n` is stamped `BASE_TIMESTAMP + n`.
pub const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// Parses values into numbers; fails on one that is not.
#[derive(Debug, Default)]
pub struct Parse;

impl Processor<String, String, String, i64> for Parse {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<String, i64>,
    ) -> Result<(), ProcessError> {
        let number = match record.value.as_deref().map(str::parse::<i64>) {
            Some(Ok(number)) => number,
            other => return Err(format!("not a number: {other:?}").into()),
        };
        ctx.forward(record.with_value(Some(number)))
    }
}

/// The topology: `input` parsed, summed per key to `sums`, counted per key and window to
/// `counts`.
///
/// # Errors
/// None expected; the builder's errors are passed on.
pub fn topology(
    input: &str,
    sums: &str,
    counts: &str,
) -> Result<Topology, homa::topology::TopologyError> {
    let mut builder = StreamsBuilder::new();
    let numbers = builder
        .stream::<String, String>(input)
        .process(|| Parse)
        // One repartition both aggregations read (the processor may have changed keys, as
        // far as the DSL knows): written in the transaction, read `read_committed`.
        .repartition(Repartitioned::as_("numbers"));
    numbers
        .group_by_key()
        .aggregate_with(
            || 0_i64,
            |_, n, sum| sum + n,
            Materialized::as_(SUMS).with_caching_disabled(),
        )
        .to_stream()
        .to(sums);
    numbers
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(WINDOW))
        .count_with(Materialized::as_(COUNTS))
        .to_stream()
        .map(|key, count| {
            let key = key.map_or_else(String::new, |k| {
                format!("{}@{}", k.key(), k.window().start())
            });
            (key, *count)
        })
        .to(counts);
    builder.build()
}

/// Input record `n` (of `keys` keys): its key and value.
pub fn record(n: usize, keys: usize) -> (String, String) {
    (format!("k{}", n % keys), ((n % 7) + 1).to_string())
}

/// What the output must be for input records `0..records` of `keys` keys.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Expected {
    /// Each key's sums, in order.
    pub sums: BTreeMap<String, Vec<i64>>,
    /// The count of each `key@window start`.
    pub counts: BTreeMap<String, i64>,
}

impl Expected {
    /// The output of records `0..records`.
    pub fn of(records: usize, keys: usize) -> Self {
        let mut expected = Self::default();
        let window = i64::try_from(WINDOW.as_millis()).unwrap_or(i64::MAX);
        for n in 0..records {
            let (key, value) = record(n, keys);
            let value: i64 = value.parse().unwrap_or_default();
            let sums = expected.sums.entry(key.clone()).or_default();
            sums.push(sums.last().copied().unwrap_or(0) + value);
            let timestamp = timestamp(n);
            let start = timestamp - timestamp.rem_euclid(window);
            *expected.counts.entry(format!("{key}@{start}")).or_default() += 1;
        }
        expected
    }
}

/// The timestamp of input record `n`.
pub fn timestamp(n: usize) -> i64 {
    BASE_TIMESTAMP + i64::try_from(n).unwrap_or(i64::MAX)
}

/// The output as a `read_committed` reader (or, `committed` false, any reader) sees it now.
///
/// # Errors
/// When a topic cannot be read, or holds a record that is not the app's.
pub fn output(
    kafka: &Kafka,
    [sums, counts]: [&str; 2],
    committed: bool,
) -> anyhow::Result<Expected> {
    let mut config = kafka.consumer_config(&unique_name("homa-eos-reader"));
    config.set("enable.auto.commit", "false").set(
        "isolation.level",
        if committed {
            "read_committed"
        } else {
            "read_uncommitted"
        },
    );
    let mut output = Expected::default();
    let key = |message: &rdkafka::message::BorrowedMessage<'_>| {
        String::from_utf8(message.key().unwrap_or_default().to_vec()).context("a key")
    };
    let value = |message: &rdkafka::message::BorrowedMessage<'_>| -> anyhow::Result<i64> {
        let bytes = message.payload().context("a tombstone")?;
        Ok(i64::from_be_bytes(bytes.try_into()?))
    };
    kafka.read_to_end_with(&config, sums, 4, |message| {
        let sum = value(message)?;
        output.sums.entry(key(message)?).or_default().push(sum);
        Ok(())
    })?;
    kafka.read_to_end_with(&config, counts, 4, |message| {
        output.counts.insert(key(message)?, value(message)?);
        Ok(())
    })?;
    Ok(output)
}

/// How `output` differs from `expected`: keys whose sums are not exactly the expected ones
/// (missing, or repeated), windows whose count is off; empty when they are the same.
pub fn differences(output: &Expected, expected: &Expected) -> Vec<String> {
    let mut found = Vec::new();
    for (key, sums) in &expected.sums {
        let got = output.sums.get(key).map_or(&[][..], Vec::as_slice);
        if got != sums.as_slice() {
            let first = got.iter().zip(sums).position(|(a, b)| a != b);
            found.push(format!(
                "sums of {key}: {} of {} (first difference at {first:?})",
                got.len(),
                sums.len()
            ));
        }
    }
    found.extend(
        (output.sums.keys())
            .filter(|key| !expected.sums.contains_key(*key))
            .map(|key| format!("sums of an unknown key {key}")),
    );
    for (window, count) in &expected.counts {
        let got = output.counts.get(window);
        if got != Some(count) {
            found.push(format!("count of {window}: {got:?}, not {count}"));
        }
    }
    found
}

/// Sums that were written more than once (at-least-once after a crash): for each key, how
/// many of its sums repeat one written before it.
pub fn duplicates(output: &Expected) -> usize {
    output
        .sums
        .values()
        .map(|sums| {
            let mut seen = std::collections::BTreeSet::new();
            sums.iter().filter(|sum| !seen.insert(**sum)).count()
        })
        .sum()
}

/// The summing application on fresh 4-partition topics of a broker: its input, its two
/// outputs, its id, and the ways tests run it (in this process, or as a child process).
#[derive(Debug, Clone)]
pub struct SummingApp {
    /// The broker.
    pub kafka: Kafka,
    /// The input topic.
    pub input: String,
    /// The sums topic.
    pub sums: String,
    /// The windowed counts topic.
    pub counts: String,
    /// The application id.
    pub id: String,
    /// The number of distinct keys of the input.
    pub keys: usize,
}

impl SummingApp {
    /// A new application on `kafka`, its names starting with `prefix`, its input of `keys`
    /// keys.
    ///
    /// # Errors
    /// When the topics cannot be made.
    pub fn new(kafka: &Kafka, prefix: &str, keys: usize) -> anyhow::Result<Self> {
        Ok(Self {
            input: kafka.create_topic(&format!("{prefix}-in"), 4)?,
            sums: kafka.create_topic(&format!("{prefix}-sums"), 4)?,
            counts: kafka.create_topic(&format!("{prefix}-counts"), 4)?,
            id: unique_name(prefix),
            kafka: kafka.clone(),
            keys,
        })
    }

    /// Produces input records `range`, with `poison` in place of record `poison.0`.
    ///
    /// # Errors
    /// When a record is not acknowledged.
    pub fn produce(
        &self,
        range: std::ops::Range<usize>,
        poison: Option<(usize, &str)>,
    ) -> anyhow::Result<()> {
        let records: Vec<(String, String, Option<i64>)> = range
            .map(|n| {
                let (key, value) = record(n, self.keys);
                let value = match poison {
                    Some((at, bad)) if at == n => bad.to_string(),
                    _ => value,
                };
                (key, value, Some(timestamp(n)))
            })
            .collect();
        self.kafka.produce_timed(&self.input, records)?;
        Ok(())
    }

    /// The topology.
    ///
    /// # Errors
    /// None expected.
    pub fn topology(&self) -> Result<Topology, homa::topology::TopologyError> {
        topology(&self.input, &self.sums, &self.counts)
    }

    /// The settings of an instance in this process under `guarantee`, its state in
    /// `state` (a static member `<id>-a` when `static_member`).
    pub fn config(
        &self,
        state: &Path,
        guarantee: &str,
        static_member: bool,
    ) -> homa::config::StreamsConfigBuilder {
        let config = StreamsConfig::builder()
            .application_id(&self.id)
            .bootstrap_servers(self.kafka.bootstrap_servers())
            .state_dir(state)
            .set("processing.guarantee", guarantee)
            .set("consumer.session.timeout.ms", "6000");
        if static_member {
            config.set("group.instance.id", self.static_id())
        } else {
            config
        }
    }

    /// The `group.instance.id` of the static member.
    fn static_id(&self) -> String {
        format!("{}-a", self.id)
    }

    /// The application as a child process (`summing-app`, at `binary`) under `guarantee`,
    /// its state in `state`, logging its restores to `log` (see the binary's doc).
    pub fn command(
        &self,
        binary: &str,
        [state, log]: [&Path; 2],
        guarantee: &str,
        static_member: bool,
    ) -> Command {
        let mut command = Command::new(binary);
        command
            .args([
                self.kafka.bootstrap_servers(),
                &self.input,
                &self.sums,
                &self.counts,
                &self.id,
            ])
            .arg(state)
            .arg(guarantee)
            .arg(log)
            .env_remove("FAILPOINTS");
        if static_member {
            command.arg(self.static_id());
        }
        command
    }

    /// The output as a `read_committed` reader (`committed`), or any reader, sees it now.
    ///
    /// # Errors
    /// As [`output`].
    pub fn output(&self, committed: bool) -> anyhow::Result<Expected> {
        output(&self.kafka, [&self.sums, &self.counts], committed)
    }

    /// Waits up to `timeout` until the committed output is the expected one for input
    /// records `0..records`.
    ///
    /// # Errors
    /// When it is not, with the first differences.
    pub fn wait_for(&self, records: usize, timeout: Duration) -> anyhow::Result<()> {
        let expected = Expected::of(records, self.keys);
        let deadline = Instant::now() + timeout;
        loop {
            let differences = differences(&self.output(true)?, &expected);
            if differences.is_empty() {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the committed output is not the expected one after {timeout:?}: {} \
                 differences, the first: {:?}",
                differences.len(),
                &differences[..differences.len().min(5)]
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    /// The sums the store holds, read from `instances` (together running every task).
    ///
    /// # Errors
    /// When a store cannot be read.
    pub fn stored_sums(instances: &[KafkaStreams]) -> anyhow::Result<BTreeMap<String, i64>> {
        let mut sums = BTreeMap::new();
        for streams in instances {
            let store = streams.store::<String, i64>(SUMS)?;
            for entry in store.all()? {
                let (key, sum) = entry?;
                sums.insert(key, sum);
            }
        }
        Ok(sums)
    }

    /// Waits until `instances` run, all 8 tasks among them.
    ///
    /// # Errors
    /// When they do not within [`TIMEOUT`].
    pub fn wait_for_tasks(instances: &[KafkaStreams]) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let tasks: usize = instances
                .iter()
                .flat_map(KafkaStreams::metadata_for_local_threads)
                .map(|thread| thread.active_tasks.len())
                .sum();
            let running = instances
                .iter()
                .all(|s| s.state() == homa::runtime::State::Running);
            if running && tasks == 8 {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "the instances did not run the 8 tasks within {TIMEOUT:?} ({tasks} running)"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

/// The last sum of each key of `output`.
pub fn last_sums(output: &Expected) -> BTreeMap<String, i64> {
    (output.sums.iter())
        .filter_map(|(key, sums)| Some((key.clone(), *sums.last()?)))
        .collect()
}

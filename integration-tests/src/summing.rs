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
use std::time::Duration;

use anyhow::Context;
use homa::prelude::*;
use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
use rdkafka::Message;

use super::{Kafka, unique_name};

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

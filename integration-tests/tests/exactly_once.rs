//! Exactly-once (`exactly_once_v2`) against the real broker, in this process: the output a
//! `read_committed` reader sees is exactly the expected one, a processing error aborts the
//! transaction (nothing of it is committed), and a restarted instance restores only the
//! changelog's tail.

use std::time::Duration;

use anyhow::ensure;
use homa::config::ProcessingGuarantee;
use homa::prelude::*;
use homa::runtime::State;
use homa_integration_tests::summing::{self, Expected};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};

const KEYS: usize = 20;

struct App {
    input: String,
    sums: String,
    counts: String,
    id: String,
}

impl App {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        Ok(Self {
            input: kafka().create_topic(&format!("{prefix}-in"), 4)?,
            sums: kafka().create_topic(&format!("{prefix}-sums"), 4)?,
            counts: kafka().create_topic(&format!("{prefix}-counts"), 4)?,
            id: unique_name(prefix),
        })
    }

    /// Produces input records `range`, with `poison` in place of record `poison.0`.
    fn produce(
        &self,
        range: std::ops::Range<usize>,
        poison: Option<(usize, &str)>,
    ) -> anyhow::Result<()> {
        let records: Vec<(String, String, Option<i64>)> = range
            .map(|n| {
                let (key, value) = summing::record(n, KEYS);
                let value = match poison {
                    Some((at, bad)) if at == n => bad.to_string(),
                    _ => value,
                };
                (key, value, Some(summing::timestamp(n)))
            })
            .collect();
        kafka().produce_timed(&self.input, records)?;
        Ok(())
    }

    fn instance(
        &self,
        state: &std::path::Path,
        settings: &[(&str, &str)],
    ) -> anyhow::Result<KafkaStreams> {
        let topology = summing::topology(&self.input, &self.sums, &self.counts)?;
        let config = StreamsConfig::builder()
            .application_id(&self.id)
            .bootstrap_servers(kafka().bootstrap_servers())
            .state_dir(state)
            .processing_guarantee(ProcessingGuarantee::ExactlyOnceV2)
            .set("consumer.session.timeout.ms", "6000")
            .set_all(settings.iter().copied())
            .build()?;
        let mut streams = KafkaStreams::new(&topology, config)?;
        streams.set_uncaught_error_handler(|e| eprintln!("stream thread failed: {e}"));
        streams.start()?;
        Ok(streams)
    }

    fn output(&self, committed: bool) -> anyhow::Result<Expected> {
        summing::output(kafka(), [&self.sums, &self.counts], committed)
    }

    /// Waits until the committed output is `expected`.
    fn wait_for(&self, expected: &Expected) -> anyhow::Result<()> {
        let deadline = std::time::Instant::now() + TIMEOUT;
        loop {
            let output = self.output(true)?;
            let differences = summing::differences(&output, expected);
            if differences.is_empty() {
                return Ok(());
            }
            ensure!(
                std::time::Instant::now() < deadline,
                "the committed output is not the expected one after {TIMEOUT:?}: {differences:?}"
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

#[test]
fn the_committed_output_is_exact_and_a_restart_restores_only_the_tail() -> anyhow::Result<()> {
    let app = App::new("eos-exact")?;
    let state = tempfile::tempdir()?;
    app.produce(0..5_000, None)?;
    let mut streams = app.instance(state.path(), &[])?;
    wait_for_state(&streams, State::Running)?;
    app.wait_for(&Expected::of(5_000, KEYS))?;
    streams.close(TIMEOUT)?;

    // The second run starts from the checkpoint the close wrote: it restores nothing.
    app.produce(5_000..10_000, None)?;
    let mut streams = app.instance(state.path(), &[])?;
    wait_for_state(&streams, State::Running)?;
    app.wait_for(&Expected::of(10_000, KEYS))?;
    let restored: u64 = streams.metrics().restored_records.values().sum();
    eprintln!("restored after a clean close: {restored} records");
    ensure!(
        restored == 0,
        "restored {restored} records after a clean close"
    );
    streams.close(TIMEOUT)?;
    Ok(())
}

#[test]
fn a_processing_error_aborts_the_transaction_and_commits_nothing_of_it() -> anyhow::Result<()> {
    let app = App::new("eos-abort")?;
    let state = tempfile::tempdir()?;
    // No commit comes within the test (one a minute): the poison pill, produced once the
    // records before it are written, fails the thread with them in the open transaction.
    app.produce(0..2_000, None)?;
    let streams = app.instance(
        state.path(),
        &[("commit.interval.ms", "60000"), ("producer.linger.ms", "0")],
    )?;
    // The sums come after the repartition, whose records no `read_committed` reader (the
    // sums' task either) ever sees: they are the output that was written.
    let repartition = format!("{}-numbers-repartition", app.id);
    let read = |isolation| -> anyhow::Result<u64> {
        let mut config = kafka().consumer_config(&unique_name("homa-eos-reader"));
        config.set("isolation.level", isolation);
        kafka().read_to_end_with(&config, &repartition, 4, |_| Ok(()))
    };
    let deadline = std::time::Instant::now() + TIMEOUT;
    while kafka()
        .end_offsets(&repartition, 4)
        .map_or(0, |e| e.iter().sum::<i64>())
        < 2_000
    {
        ensure!(
            std::time::Instant::now() < deadline,
            "the records before the poison pill were not written within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    app.produce(2_000..2_500, Some((2_000, "poison")))?;
    wait_for_state(&streams, State::Error)?;
    let written = read("read_uncommitted")?;
    eprintln!("records written to {repartition} before the error: {written}");
    ensure!(written >= 2_000, "only {written} records were written");
    let committed = read("read_committed")?;
    ensure!(
        committed == 0,
        "a read_committed reader sees {committed} records of the aborted transaction"
    );
    let output = app.output(true)?;
    ensure!(
        output == Expected::default(),
        "the output holds {} sums, {} counts",
        output.sums.values().map(Vec::len).sum::<usize>(),
        output.counts.len()
    );
    let offsets = kafka().committed_offsets(&app.id, &app.input, 4)?;
    eprintln!("committed offsets of the input: {offsets:?}");
    ensure!(
        offsets.iter().all(|o| *o < 0),
        "offsets were committed: {offsets:?}"
    );
    Ok(())
}

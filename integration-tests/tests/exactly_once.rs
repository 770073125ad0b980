//! Exactly-once (`exactly_once_v2`) against the real broker, in this process: the output a
//! `read_committed` reader sees is exactly the expected one, a processing error aborts the
//! transaction (nothing of it is committed), and a restarted instance restores only the
//! changelog's tail.

use std::time::Duration;

use anyhow::ensure;
use homa::prelude::*;
use homa::runtime::State;
use homa_integration_tests::summing::{Expected, SummingApp};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};

const KEYS: usize = 20;

fn app(prefix: &str) -> anyhow::Result<SummingApp> {
    SummingApp::new(kafka(), prefix, KEYS)
}

/// A started instance of `app` under exactly-once, with further `settings`.
fn instance(
    app: &SummingApp,
    state: &std::path::Path,
    settings: &[(&str, &str)],
) -> anyhow::Result<KafkaStreams> {
    let config = app
        .config(state, "exactly_once_v2", false)
        .set_all(settings.iter().copied())
        .build()?;
    let mut streams = KafkaStreams::new(&app.topology()?, config)?;
    streams.set_uncaught_error_handler(|e| eprintln!("stream thread failed: {e}"));
    streams.start()?;
    Ok(streams)
}

#[test]
fn the_committed_output_is_exact_and_a_restart_restores_only_the_tail() -> anyhow::Result<()> {
    let app = app("eos-exact")?;
    let state = tempfile::tempdir()?;
    app.produce(0..5_000, None)?;
    let mut streams = instance(&app, state.path(), &[])?;
    wait_for_state(&streams, State::Running)?;
    app.wait_for(5_000, TIMEOUT)?;
    streams.close(TIMEOUT)?;

    // The second run starts from the checkpoint the close wrote: it restores nothing.
    app.produce(5_000..10_000, None)?;
    let mut streams = instance(&app, state.path(), &[])?;
    wait_for_state(&streams, State::Running)?;
    app.wait_for(10_000, TIMEOUT)?;
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
    let app = app("eos-abort")?;
    let dead_letters = kafka().create_topic("eos-abort-dlq", 1)?;
    let state = tempfile::tempdir()?;
    // No commit comes within the test (one a minute): the poison pill, produced once the
    // records before it are written, fails the thread with them in the open transaction.
    // A record that cannot be read goes to the dead-letter topic, in that transaction too.
    app.produce(0..2_000, None)?;
    kafka().produce(&app.input, [("k0", &b"\xff not UTF-8"[..])])?;
    let streams = instance(
        &app,
        state.path(),
        &[
            ("commit.interval.ms", "60000"),
            ("producer.transaction.timeout.ms", "120000"),
            ("producer.linger.ms", "0"),
            ("deserialization.exception.handler", "log_and_continue"),
            ("errors.dead.letter.queue.topic.name", &dead_letters),
        ],
    )?;
    // The sums come after the repartition, whose records no `read_committed` reader (the
    // sums' task either) ever sees: they are the output that was written.
    let repartition = format!("{}-numbers-repartition", app.id);
    let reader = |isolation| {
        let mut config = kafka().consumer_config(&unique_name("homa-eos-reader"));
        config.set("isolation.level", isolation);
        config
    };
    let read = |topic: &str, partitions, isolation| -> anyhow::Result<u64> {
        kafka().read_to_end_with(&reader(isolation), topic, partitions, |_| Ok(()))
    };
    let deadline = std::time::Instant::now() + TIMEOUT;
    let uncommitted = reader("read_uncommitted");
    while kafka()
        .end_offsets_with(&uncommitted, &repartition, 4)
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
    let written = read(&repartition, 4, "read_uncommitted")?;
    eprintln!("records written to {repartition} before the error: {written}");
    ensure!(written >= 2_000, "only {written} records were written");
    let committed = read(&repartition, 4, "read_committed")?;
    ensure!(
        committed == 0,
        "a read_committed reader sees {committed} records of the aborted transaction"
    );
    let dead = read(&dead_letters, 1, "read_uncommitted")?;
    ensure!(dead == 1, "{dead} dead letters written, not 1");
    let dead = read(&dead_letters, 1, "read_committed")?;
    ensure!(
        dead == 0,
        "a read_committed reader sees {dead} dead letters of the aborted transaction"
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

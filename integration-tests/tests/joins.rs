//! Joins against the real broker: a stream-table enrichment over four partitions whose
//! stream is on the broker before the table, which `max.task.idle.ms` still has read first
//! (its records are older), and whose table is on the broker too, which the task waits
//! for by default; a stream-stream join killed with SIGKILL and restarted with its
//! state directory wiped, its window stores restored from their changelogs.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};

use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};

const CUSTOMERS: usize = 100;
const ORDERS: usize = 1_000;

/// Each order of `orders` with its customer's name from the table of `customers`, or
/// `none`, to `output`.
fn enrichment(customers: &str, orders: &str, output: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    let names = builder.table::<String, String>(customers, Materialized::as_("customers"));
    builder
        .stream::<String, String>(orders)
        .left_join_table(&names, |order, name: Option<&String>| {
            format!("{order}/{}", name.map_or("none", String::as_str))
        })
        .to(output);
    Ok(builder.build()?)
}

#[test]
fn a_stream_table_join_waits_for_the_table_records_older_than_its_orders() -> anyhow::Result<()> {
    // The customers come half a second after the start: only an idle time waits for them.
    enrich_orders(
        Some(Duration::from_millis(500)),
        &[("max.task.idle.ms", "5000")],
    )
}

#[test]
fn a_stream_table_join_reads_the_table_on_the_broker_first_by_default() -> anyhow::Result<()> {
    // Both sides are on the broker at the start: with the default max.task.idle.ms (0) the
    // task still waits for the customers' records it knows to be there.
    enrich_orders(None, &[])
}

/// Runs [`enrichment`] over orders on the broker before the instance starts, and
/// customers (older) produced `customers_after` it started, else before: every order must
/// be joined with its customer.
fn enrich_orders(
    customers_after: Option<Duration>,
    settings: &[(&str, &str)],
) -> anyhow::Result<()> {
    let kafka = kafka();
    let customers = kafka.create_topic("customers", 4)?;
    let orders = kafka.create_topic("orders", 4)?;
    let output = kafka.create_topic("enriched", 4)?;
    let rows: Vec<(String, String, Option<i64>)> = (0..ORDERS)
        .map(|i| {
            let at = 2_000 + i64::try_from(i).expect("few orders");
            (format!("c{}", i % CUSTOMERS), format!("o{i}"), Some(at))
        })
        .collect();
    let names = || (0..CUSTOMERS).map(|i| (format!("c{i}"), format!("name{i}"), Some(1_000)));
    kafka.produce_timed(&orders, rows)?;
    if customers_after.is_none() {
        kafka.produce_timed(&customers, names())?;
    }
    let config = StreamsConfig::builder()
        .application_id(unique_name("enrich"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .set_all(settings.iter().copied())
        .build()?;
    let mut streams = KafkaStreams::new(&enrichment(&customers, &orders, &output)?, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    if let Some(after) = customers_after {
        std::thread::sleep(after);
        kafka.produce_timed(&customers, names())?;
    }
    let enriched = kafka.consume(&output, ORDERS)?;
    streams.close(TIMEOUT)?;
    let missed: Vec<String> = enriched
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .filter(|v| v.ends_with("/none"))
        .collect();
    assert!(
        missed.is_empty(),
        "orders joined before their customer: {missed:?}"
    );
    for (key, value) in &enriched {
        let (key, value) = (String::from_utf8_lossy(key), String::from_utf8_lossy(value));
        let customer = key.trim_start_matches('c');
        assert!(
            value.ends_with(&format!("/name{customer}")),
            "{key} = {value}"
        );
    }
    assert_eq!(enriched.len(), ORDERS);
    Ok(())
}

const USERS: usize = 40;

#[test]
fn a_stream_stream_join_restores_its_windows_after_a_crash() -> anyhow::Result<()> {
    let kafka = kafka();
    let (left, right) = (
        kafka.create_topic("lefts", 4)?,
        kafka.create_topic("rights", 4)?,
    );
    let output = kafka.create_topic("pairs", 4)?;
    let id = unique_name("stream-join");
    let spawn = |state: &std::path::Path| {
        Command::new(env!("CARGO_BIN_EXE_stream-join-app"))
            .args([kafka.bootstrap_servers(), &left, &right, &output, &id])
            .arg(state)
            .spawn()
            .context("starting stream-join-app")
    };
    // An hour ago, so that the broker keeps the records and the changelogs.
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let t0 = i64::try_from(now.as_millis())? - 3_600_000;
    let users = || (0..USERS).map(|u| (u, format!("u{u}"), t0 + i64::try_from(u).expect("few")));
    let state = tempfile::tempdir()?;
    let app = spawn(state.path())?;
    kafka.produce_timed(
        &left,
        users().map(|(u, k, at)| (k, format!("l{u}"), Some(at))),
    )?;
    let committed = wait_until_committed(&id, &left);
    // No commit, no flush, no checkpoint; then the state is gone too.
    homa_integration_tests::kill(app)?;
    committed?;
    drop(state);
    let state = tempfile::tempdir()?;
    let app = spawn(state.path())?;
    // Each right record 5 s after its user's left one: joined only with what was restored.
    kafka.produce_timed(
        &right,
        users().map(|(u, k, at)| (k, format!("r{u}"), Some(at + 5_000))),
    )?;
    let pairs = kafka
        .consume(&output, USERS)
        .and_then(|pairs| wait_until_committed(&id, &right).map(|()| pairs));
    homa_integration_tests::kill(app)?;
    let pairs = pairs?;
    let mut seen: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (key, value) in &pairs {
        let key = String::from_utf8_lossy(key).into_owned();
        seen.entry(key)
            .or_default()
            .push(String::from_utf8_lossy(value).into_owned());
    }
    let expected: BTreeMap<String, Vec<String>> = users()
        .map(|(u, k, _)| (k, vec![format!("l{u}+r{u}")]))
        .collect();
    assert_eq!(seen, expected);
    let more = kafka.end_offsets(&output, 4)?.iter().sum::<i64>();
    assert_eq!(more, i64::try_from(USERS)?, "no pair written twice");
    Ok(())
}

/// Waits until the group `id` has committed every record of `topic`.
fn wait_until_committed(id: &str, topic: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if kafka().committed_offsets(id, topic, 4)? == kafka().end_offsets(topic, 4)? {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{topic} not committed within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

//! A global table against the real broker: restored from all partitions of its topic
//! before the first stream record is processed (the orders, on the broker first and
//! older, all find their customer), kept current while the instance runs, queryable
//! whole, and restored from its checkpoint by the next instance, with what was written to
//! its topic meanwhile.

use std::time::{Duration, Instant};

use anyhow::ensure;
use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};
use rdkafka::Message;

const CUSTOMERS: usize = 100;

/// Orders (`c<n>:item<i>`) joined with their customer's name from the global table of
/// `customers` (store `customers`), `none` when it has none.
fn enrichment(orders: &str, customers: &str, output: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    let names = builder.global_table::<String, String>(customers, Materialized::as_("customers"));
    builder
        .stream::<String, String>(orders)
        .left_join_global(
            &names,
            |_, order: &String| order.split_once(':').map(|(c, _)| c.to_string()),
            |order, name| format!("{order}/{}", name.map_or("none", String::as_str)),
        )
        .to(output);
    Ok(builder.build()?)
}

/// Waits for `count` records on the 4 partitions of `topic`; returns all the values.
fn values(topic: &str, count: i64) -> anyhow::Result<Vec<String>> {
    let started = Instant::now();
    while kafka().end_offsets(topic, 4)?.iter().sum::<i64>() < count {
        ensure!(
            started.elapsed() < TIMEOUT,
            "fewer than {count} records on {topic}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let mut values = Vec::new();
    kafka().read_to_end(topic, 4, |m| {
        values.push(String::from_utf8_lossy(m.payload().unwrap_or_default()).into_owned());
        Ok(())
    })?;
    Ok(values)
}

#[test]
fn a_global_table_is_restored_before_the_first_record_and_kept_current() -> anyhow::Result<()> {
    let kafka = kafka();
    let customers = kafka.create_topic("global-customers", 4)?;
    let orders = kafka.create_topic("global-orders", 4)?;
    let output = kafka.create_topic("global-enriched", 4)?;
    // The orders are on the broker first, and older than their customers.
    kafka.produce_timed(
        &orders,
        (0..CUSTOMERS).map(|i| (format!("o{i}"), format!("c{i}:item{i}"), Some(1_000))),
    )?;
    let names = (0..CUSTOMERS).map(|i| (format!("c{i}"), format!("name{i}"), Some(2_000)));
    kafka.produce_timed(&customers, names)?;
    let id = unique_name("global");
    let state = tempfile::tempdir()?;
    let topology = enrichment(&orders, &customers, &output)?;
    let config = || {
        StreamsConfig::builder()
            .application_id(&id)
            .bootstrap_servers(kafka.bootstrap_servers())
            .state_dir(state.path())
            .commit_interval(Duration::from_millis(100))
            .build()
    };
    let mut streams = KafkaStreams::new(&topology, config()?)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    let first = values(&output, 100)?;
    let missed: Vec<&String> = first.iter().filter(|v| v.ends_with("/none")).collect();
    assert!(
        missed.is_empty(),
        "joined before the table was restored: {missed:?}"
    );
    assert_eq!(first.len(), CUSTOMERS);
    // The whole table on this instance, whatever its partitions.
    let store = streams.store::<String, String>("customers")?;
    assert_eq!(store.all()?.count(), CUSTOMERS);

    // A customer renamed while running: later orders see the new name.
    kafka.produce(&customers, [("c7".to_string(), "renamed".to_string())])?;
    let started = Instant::now();
    while store.get(&"c7".to_string())? != Some("renamed".to_string()) {
        ensure!(
            started.elapsed() < TIMEOUT,
            "the global table did not take the update"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kafka.produce(&orders, [("o-late".to_string(), "c7:late".to_string())])?;
    let second = values(&output, 101)?;
    assert!(
        second.contains(&"c7:late/renamed".to_string()),
        "{second:?}"
    );
    streams.close(TIMEOUT)?;
    // Its stores close once nothing holds them.
    drop((store, streams));

    // Meanwhile: a customer deleted; the next instance restores from its checkpoint.
    kafka.produce_rows(&customers, [("c8".to_string(), None::<String>)])?;
    let mut streams = KafkaStreams::new(&topology, config()?)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    let store = streams.store::<String, String>("customers")?;
    assert_eq!(
        store.get(&"c8".to_string())?,
        None,
        "the delete was restored"
    );
    assert_eq!(store.get(&"c7".to_string())?, Some("renamed".to_string()));
    assert_eq!(store.all()?.count(), CUSTOMERS - 1);
    streams.close(TIMEOUT)?;
    Ok(())
}

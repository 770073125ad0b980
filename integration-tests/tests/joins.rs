//! Joins against the real broker: a stream-table enrichment over four partitions whose
//! stream is on the broker before the table, which `max.task.idle.ms` still has read first
//! (its records are older).

use std::time::Duration;

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
    // The orders are all there when the instance starts; the customers, older, come later.
    kafka.produce_timed(&orders, rows)?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("enrich"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .set("max.task.idle.ms", "5000")
        .build()?;
    let mut streams = KafkaStreams::new(&enrichment(&customers, &orders, &output)?, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    std::thread::sleep(Duration::from_millis(500));
    let names = (0..CUSTOMERS).map(|i| (format!("c{i}"), format!("name{i}"), Some(1_000)));
    kafka.produce_timed(&customers, names)?;
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

//! A foreign-key join across two instances against the real broker: orders joined with
//! their customers over four partitions, the subscriptions and responses crossing from
//! one instance's tasks to the other's; orders that change customer, a customer deleted
//! and orders deleted all end as the join of the final tables. And a sink's partitioner
//! choosing the partition of each record.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::ensure;
use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};
use rdkafka::Message;

const CUSTOMERS: usize = 10;
const ORDERS: usize = 100;

/// Orders (`c<n>:item<i>`) joined with the name of the customer they name.
fn orders_with_customers(orders: &str, customers: &str, output: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    let orders = builder.table::<String, String>(orders, Materialized::default());
    let customers = builder.table::<String, String>(customers, Materialized::default());
    orders
        .join_on_foreign_key(
            &customers,
            |order: &String| order.split_once(':').map(|(c, _)| c.to_string()),
            |order, name| format!("{order}/{name}"),
        )
        .to_stream()
        .to(output);
    Ok(builder.build()?)
}

/// The last value of each key of `topic` (none: a tombstone).
fn latest(topic: &str) -> anyhow::Result<BTreeMap<String, Option<String>>> {
    let mut latest = BTreeMap::new();
    kafka().read_to_end(topic, 4, |m| {
        let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
        let value = m.payload().map(|v| String::from_utf8_lossy(v).into_owned());
        latest.insert(key, value);
        Ok(())
    })?;
    Ok(latest)
}

/// Waits until the joined rows of `topic` (its keys' last values, tombstones left out) are
/// `expected`.
fn wait_for_rows(topic: &str, expected: &BTreeMap<String, String>) -> anyhow::Result<()> {
    let started = Instant::now();
    loop {
        let rows: BTreeMap<String, String> = latest(topic)?
            .into_iter()
            .filter_map(|(k, v)| v.map(|v| (k, v)))
            .collect();
        if rows == *expected {
            return Ok(());
        }
        ensure!(
            started.elapsed() < TIMEOUT,
            "the join's rows are not the final tables' join after {TIMEOUT:?}: \
             {} rows, {} expected; first difference: {:?}",
            rows.len(),
            expected.len(),
            expected.iter().find(|(k, v)| rows.get(*k) != Some(*v))
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn a_foreign_key_join_across_two_instances_ends_as_the_join_of_the_final_tables()
-> anyhow::Result<()> {
    let kafka = kafka();
    let orders = kafka.create_topic("fk-orders", 4)?;
    let customers = kafka.create_topic("fk-customers", 4)?;
    let output = kafka.create_topic("fk-joined", 4)?;
    let id = unique_name("fk-join");
    let topology = orders_with_customers(&orders, &customers, &output)?;
    let states = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut instances = Vec::new();
    for state in &states {
        let config = StreamsConfig::builder()
            .application_id(&id)
            .bootstrap_servers(kafka.bootstrap_servers())
            .state_dir(state.path())
            .commit_interval(Duration::from_millis(100))
            .build()?;
        let mut streams = KafkaStreams::new(&topology, config)?;
        streams.start()?;
        instances.push(streams);
    }
    kafka.wait_for_members(&id, 2)?;
    for streams in &instances {
        wait_for_state(streams, State::Running)?;
    }
    let name = |c: usize| format!("name{c}");
    kafka.produce(
        &customers,
        (0..CUSTOMERS).map(|c| (format!("c{c}"), name(c))),
    )?;
    kafka.produce(
        &orders,
        (0..ORDERS).map(|i| (format!("o{i}"), format!("c{}:item{i}", i % CUSTOMERS))),
    )?;
    let mut expected: BTreeMap<String, String> = (0..ORDERS)
        .map(|i| {
            let c = i % CUSTOMERS;
            (format!("o{i}"), format!("c{c}:item{i}/{}", name(c)))
        })
        .collect();
    wait_for_rows(&output, &expected)?;

    // Orders move to the next customer, customer 9 goes, the last ten orders go.
    kafka.produce(
        &orders,
        (0..20).map(|i| (format!("o{i}"), format!("c{}:item{i}", (i + 1) % CUSTOMERS))),
    )?;
    kafka.produce_rows(&customers, [("c9".to_string(), None::<String>)])?;
    kafka.produce_rows(
        &orders,
        (90..ORDERS).map(|i| (format!("o{i}"), None::<String>)),
    )?;
    expected = (0..90)
        .filter_map(|i| {
            let c = if i < 20 {
                (i + 1) % CUSTOMERS
            } else {
                i % CUSTOMERS
            };
            (c != 9).then(|| (format!("o{i}"), format!("c{c}:item{i}/{}", name(c))))
        })
        .collect();
    wait_for_rows(&output, &expected)?;
    // Every order that lost its row (deleted, or its customer gone) ends with a tombstone.
    let last = latest(&output)?;
    for i in 0..ORDERS {
        let key = format!("o{i}");
        if !expected.contains_key(&key) {
            assert_eq!(last.get(&key), Some(&None), "{key} ends with a tombstone");
        }
    }
    for mut streams in instances {
        streams.close(TIMEOUT)?;
    }
    Ok(())
}

#[test]
fn a_partitioner_chooses_the_partition_of_each_record() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("numbers", 1)?;
    let output = kafka.create_topic("by-remainder", 4)?;
    let mut builder = StreamsBuilder::new();
    builder.stream::<String, String>(&input).to_with(
        &output,
        Produced::default().with_partitioner(|_, _, value: Option<&String>, count| {
            let n: i32 = value?.parse().ok()?;
            Some(n % count)
        }),
    );
    let config = StreamsConfig::builder()
        .application_id(unique_name("partitioner"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .build()?;
    let mut streams = KafkaStreams::new(&builder.build()?, config)?;
    streams.start()?;
    kafka.produce(&input, (0..40).map(|n| (format!("k{n}"), n.to_string())))?;
    let started = Instant::now();
    while kafka.end_offsets(&output, 4)?.iter().sum::<i64>() < 40 {
        ensure!(started.elapsed() < TIMEOUT, "the output is incomplete");
        std::thread::sleep(Duration::from_millis(100));
    }
    streams.close(TIMEOUT)?;
    let mut misplaced = Vec::new();
    kafka.read_to_end(&output, 4, |m| {
        let n: i32 = String::from_utf8_lossy(m.payload().unwrap_or_default()).parse()?;
        if n % 4 != m.partition() {
            misplaced.push((n, m.partition()));
        }
        Ok(())
    })?;
    assert!(
        misplaced.is_empty(),
        "in the wrong partition: {misplaced:?}"
    );
    Ok(())
}

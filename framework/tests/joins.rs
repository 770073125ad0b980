//! Joins through the test driver, beyond the cases compared with Kafka Streams
//! (`joins_oracle.rs`): state that survives a restart, joins after a key change, a
//! foreign-key response for a row that changed since (which the driver cannot make).

mod common;

use std::time::Duration;

use homa::prelude::*;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn values(driver: &TopologyTestDriver) -> Vec<(String, String, i64)> {
    driver
        .create_output_topic::<String, String>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| {
            let key = r.key.unwrap_or_default();
            (key, r.value.unwrap_or_default(), r.timestamp)
        })
        .collect()
}

#[test]
fn a_left_join_emits_what_it_held_before_a_restart() {
    let mut builder = StreamsBuilder::new();
    let left = builder.stream::<String, String>("left");
    let right = builder.stream::<String, String>("right");
    left.left_join(
        &right,
        |l, r: Option<&String>| format!("{l}+{}", r.map_or("null", String::as_str)),
        JoinWindows::of_time_difference_and_grace(ms(10), ms(5)),
    )
    .to("out");
    let driver = common::driver(&builder, "joins");
    let lefts = driver.create_input_topic::<String, String>("left");
    lefts.pipe_input_with_timestamp("a".into(), "a1".into(), 100);
    lefts.pipe_input_with_timestamp("b".into(), "b1".into(), 101);
    assert_eq!(values(&driver), [], "held until their windows close");
    // Both windows and the stores' contents come back from the changelogs.
    let driver = driver.restart().expect("a restart");
    let rights = driver.create_input_topic::<String, String>("right");
    rights.pipe_input_with_timestamp("b".into(), "x".into(), 105);
    let lefts = driver.create_input_topic::<String, String>("left");
    // At 117, a1's window (100 + 10, grace 5) has closed. (At 116 it would not be looked
    // for: as in Kafka Streams, the scan at 105 left the earliest held time at 101.)
    lefts.pipe_input_with_timestamp("c".into(), "c1".into(), 117);
    assert_eq!(
        values(&driver),
        [
            ("b".into(), "b1+x".into(), 105),
            ("a".into(), "a1+null".into(), 100),
        ]
    );
}

#[test]
fn streams_whose_keys_changed_are_repartitioned_before_they_join() {
    let mut builder = StreamsBuilder::new();
    let orders = builder
        .stream::<String, String>("orders")
        .select_key(|_, v| v.split(':').next().unwrap_or_default().to_string());
    let payments = builder.stream::<String, String>("payments");
    orders
        .join_with(
            &payments,
            |o, p| format!("{o}/{p}"),
            JoinWindows::of_time_difference_with_no_grace(ms(50)),
            StreamJoined::as_("paid"),
        )
        .to("out");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    assert!(described.contains("paid-left-repartition"), "{described}");
    assert!(!described.contains("paid-right-repartition"), "{described}");
    let driver = common::driver(&builder, "joins");
    let orders = driver.create_input_topic::<String, String>("orders");
    let payments = driver.create_input_topic::<String, String>("payments");
    orders.pipe_input_with_timestamp("o1".into(), "alice:burger".into(), 10);
    payments.pipe_input_with_timestamp("alice".into(), "5 EUR".into(), 20);
    assert_eq!(
        values(&driver),
        [("alice".into(), "alice:burger/5 EUR".into(), 20)]
    );
}

/// Kafka Streams' hash of a foreign-key join row's value: Murmur3 x64 128, seed 104729, its
/// halves big-endian.
fn row_hash(value: &str) -> Vec<u8> {
    let both = murmur3::murmur3_x64_128(&mut std::io::Cursor::new(value), 104_729)
        .expect("a hash of bytes in memory");
    [
        (both as u64).to_be_bytes(),
        ((both >> 64) as u64).to_be_bytes(),
    ]
    .concat()
}

#[test]
fn a_foreign_key_response_for_a_row_that_changed_since_is_dropped() {
    let mut builder = StreamsBuilder::new();
    let orders = builder.table::<String, String>("orders", Materialized::default());
    let customers = builder.table::<String, String>("customers", Materialized::default());
    orders
        .join_on_foreign_key_with(
            &customers,
            |_, order: &String| order.split_once(':').map(|(c, _)| c.to_string()),
            |order, name| format!("{order}/{name}"),
            TableJoined::as_("oc"),
            Materialized::default(),
        )
        .to_stream()
        .to("out");
    let config = StreamsConfig::builder()
        .application_id("app")
        .build()
        .unwrap();
    let driver = TopologyTestDriver::new(&builder.build().unwrap(), config).unwrap();
    driver
        .create_input_topic::<String, String>("orders")
        .pipe_input_with_timestamp("o1".to_string(), "c2:b".to_string(), 5);
    assert_eq!(driver.dropped_records(), 0);
    // Answers as the customers' side writes them: version 0, the row's hash, the customer.
    let responses =
        driver.create_input_topic::<String, Vec<u8>>("app-oc-subscription-response-topic");
    let response =
        |row: &str, customer: &str| [&[0][..], &row_hash(row), customer.as_bytes()].concat();
    // An answer to the row as it was before (`c1:a`): stale.
    responses.pipe_input_with_timestamp("o1".to_string(), response("c1:a", "alice"), 3);
    assert!(values(&driver).is_empty());
    assert_eq!(driver.dropped_records(), 1);
    responses.pipe_input_with_timestamp("o1".to_string(), response("c2:b", "bob"), 6);
    assert_eq!(
        values(&driver),
        [("o1".to_string(), "c2:b/bob".to_string(), 6)]
    );
}

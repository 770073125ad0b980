//! The test driver's output topics read as a map: the latest value of each key.

mod common;

use std::collections::HashMap;

use homa::header::Headers;
use homa::prelude::*;

/// `words` upper-cased into `shouted`.
fn driver() -> TopologyTestDriver {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("words")
        .map_values(|word| word.to_uppercase())
        .to("shouted");
    common::driver(&builder, "driver-topics")
}

#[test]
fn read_key_values_to_map_keeps_the_latest_value_and_drops_tombstoned_keys() {
    let driver = driver();
    let input = driver.create_input_topic::<String, String>("words");
    let output = driver.create_output_topic::<String, String>("shouted");
    input.pipe_input("a".into(), "one".into());
    input.pipe_input("b".into(), "two".into());
    input.pipe_input("a".into(), "three".into());
    input.pipe_input("c".into(), "four".into());
    input.pipe_record(Record::from_parts(
        Some("b".to_string()),
        None,
        5,
        Headers::new(),
    ));
    assert_eq!(output.queue_size(), 5);

    assert_eq!(
        output.read_key_values_to_map(),
        HashMap::from([
            ("a".to_string(), "THREE".to_string()),
            ("c".to_string(), "FOUR".to_string()),
        ])
    );
    assert!(output.is_empty(), "every record was read");

    // A key written again after its tombstone is back.
    input.pipe_input("b".into(), "five".into());
    assert_eq!(
        output.read_key_values_to_map(),
        HashMap::from([("b".to_string(), "FIVE".to_string())])
    );
    assert!(output.read_key_values_to_map().is_empty());
}

#[test]
#[should_panic(expected = "has a null key")]
fn read_key_values_to_map_refuses_a_null_key() {
    let driver = driver();
    let input = driver.create_input_topic::<String, String>("words");
    let output = driver.create_output_topic::<String, String>("shouted");
    input.pipe_record(Record::from_parts(
        None,
        Some("keyless".to_string()),
        1,
        Headers::new(),
    ));
    output.read_key_values_to_map();
}

//! The first topology of the docs, written against the public API only.

use homa::prelude::*;

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Order {
    id: String,
    total: f64,
}

fn order(id: &str, total: f64) -> Json<Order> {
    Json(Order {
        id: id.to_string(),
        total,
    })
}

#[test]
fn big_order_totals() -> Result<(), homa::Error> {
    let mut builder = StreamsBuilder::new();
    let orders = builder.stream::<String, Json<Order>>("orders");
    let big = orders
        .filter(|_k, o| o.0.total > 100.0)
        .map_values(|o| o.0.total);
    big.to("big-order-totals");
    let topology = builder.build()?;
    let description = topology.describe().to_string();
    assert_eq!(
        description,
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [orders])
      --> KSTREAM-FILTER-0000000001
    Processor: KSTREAM-FILTER-0000000001 (stores: [])
      --> KSTREAM-MAPVALUES-0000000002
      <-- KSTREAM-SOURCE-0000000000
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- KSTREAM-FILTER-0000000001
    Sink: KSTREAM-SINK-0000000003 (topic: big-order-totals)
      <-- KSTREAM-MAPVALUES-0000000002

"
    );

    let config = StreamsConfig::builder().application_id("test").build()?;
    let driver = TopologyTestDriver::new(&topology, config)?;
    let input = driver.create_input_topic::<String, Json<Order>>("orders");
    let output = driver.create_output_topic::<String, f64>("big-order-totals");
    input.pipe_input("k1".to_string(), order("o1", 120.0));
    input.pipe_input("k2".to_string(), order("o2", 99.0));
    input.pipe_input_with_timestamp("k3".to_string(), order("o3", 250.5), 42);
    assert_eq!(output.read_key_value(), Some(("k1".to_string(), 120.0)));
    let third = output.read_record().expect("the third order is big");
    assert_eq!(
        (third.key.as_deref(), third.value, third.timestamp),
        (Some("k3"), Some(250.5), 42)
    );
    assert!(output.is_empty());
    Ok(())
}

#[test]
fn one_stream_feeds_several_operators_and_tombstones_pass() -> Result<(), homa::Error> {
    let mut builder = StreamsBuilder::new();
    let numbers = builder.stream::<String, i64>("numbers");
    numbers.filter(|_k, n| n % 2 == 0).to("even");
    numbers
        .filter_not(|_k, n| n % 2 == 0)
        .map_values(|n| n * 10)
        .to("odd-times-ten");
    let topology = builder.build()?;

    let config = StreamsConfig::builder().application_id("test").build()?;
    let driver = TopologyTestDriver::new(&topology, config)?;
    let input = driver.create_input_topic::<String, i64>("numbers");
    let even = driver.create_output_topic::<String, i64>("even");
    let odd = driver.create_output_topic::<String, i64>("odd-times-ten");
    for n in 1..=4 {
        input.pipe_input(format!("k{n}"), n);
    }
    input.pipe_record(Record::from_parts(
        Some("gone".to_string()),
        None,
        7,
        Default::default(),
    ));
    let values = |out: &homa::testing::TestOutputTopic<'_, String, i64>| -> Vec<Option<i64>> {
        out.read_records_to_list()
            .into_iter()
            .map(|r| r.value)
            .collect()
    };
    // The tombstone skips both predicates and the mapper, and reaches both topics.
    assert_eq!(values(&even), [Some(2), Some(4), None]);
    assert_eq!(values(&odd), [Some(10), Some(30), None]);
    Ok(())
}

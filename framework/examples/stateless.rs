//! A stateless topology of burger orders, run on the `TopologyTestDriver`:
//!
//! ```sh
//! cargo run -p homa --features test-utils --example stateless
//! ```
//!
//! or against a broker, for `--seconds` (default 30), reading the topic `orders` and
//! writing `orders-large` and `orders-small` (all three must exist):
//!
//! ```sh
//! cargo run -p homa --features test-utils --example stateless -- --bootstrap localhost:9092
//! ```
//!
//! Orders over 20.00 are kept, priced with tax, and split by size into two topics; orders
//! that cannot be read are skipped and counted instead of stopping the application.

use homa::config::DeserializationHandler;
use homa::prelude::*;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Order {
    burger: String,
    quantity: u32,
    total: f64,
}

/// The topology: pure, so the same function runs on the driver and against Kafka.
fn topology() -> Result<Topology, homa::Error> {
    let mut builder = StreamsBuilder::new();
    let priced = builder
        .stream::<String, Json<Order>>("orders")
        .filter(|_store, order| order.total > 20.0)
        .map_values(|order| {
            Json(Order {
                total: (order.total * 1.2 * 100.0).round() / 100.0,
                ..order.0.clone()
            })
        });
    let sizes = priced
        .split("orders-")
        .branch("large", |_store, order| order.quantity >= 10)
        .default_branch("small");
    for (topic, stream) in sizes {
        stream.to(&topic);
    }
    Ok(builder.build()?)
}

/// Runs the topology against the broker at `bootstrap` for `seconds`.
fn run_on_kafka(
    topology: &Topology,
    bootstrap: &str,
    seconds: u64,
) -> Result<(), Box<dyn std::error::Error>> {
    let config = StreamsConfig::builder()
        .application_id("burger-orders-example")
        .bootstrap_servers(bootstrap)
        .deserialization_handler(DeserializationHandler::LogAndContinue)
        .build()?;
    let mut streams = KafkaStreams::new(topology, config)?;
    streams.set_state_listener(|from, to| println!("state: {from:?} -> {to:?}"));
    streams.start()?;
    std::thread::sleep(std::time::Duration::from_secs(seconds));
    streams.close(std::time::Duration::from_secs(30))?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let topology = topology()?;
    println!("{}", topology.describe());
    let args: Vec<String> = std::env::args().collect();
    let option = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(bootstrap) = option("--bootstrap") {
        let seconds = option("--seconds").map_or(Ok(30), |s| s.parse())?;
        return run_on_kafka(&topology, bootstrap, seconds);
    }

    let config = StreamsConfig::builder()
        .application_id("burger-orders")
        .deserialization_handler(DeserializationHandler::LogAndContinue)
        .build()?;
    let driver = TopologyTestDriver::with_wall_clock(&topology, config, 0)?;
    let orders = driver.create_input_topic::<String, Json<Order>>("orders");
    let order = |burger: &str, quantity, total| {
        Json(Order {
            burger: burger.into(),
            quantity,
            total,
        })
    };
    orders.pipe_input("store-1".into(), order("classic", 2, 18.0));
    orders.pipe_input("store-1".into(), order("double", 3, 31.5));
    orders.pipe_input("store-2".into(), order("veggie", 12, 96.0));
    orders.pipe_bytes(Some(b"store-3"), Some(b"{not json"), 0);

    for topic in ["orders-large", "orders-small"] {
        let output = driver.create_output_topic::<String, Json<Order>>(topic);
        for (store, order) in output.read_key_values_to_list() {
            println!(
                "{topic}: {store} {} x{} {:.2}",
                order.burger, order.quantity, order.total
            );
        }
    }
    println!("skipped records: {}", driver.skipped_records());
    Ok(())
}

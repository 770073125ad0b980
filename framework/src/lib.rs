//! HOMA: Kafka Streams-style stream processing for Rust.
//!
//! HOMA runs a topology of typed stream operators as an Apache Kafka consumer group,
//! keeps operator state in RocksDB backed by compacted changelog topics, and scales out by
//! starting more instances, as Kafka Streams does.
//!
//! A topology is written with the typed DSL of [`dsl`] (or the Processor API of
//! [`processor`]); serdes come from the types, and `build()` checks it. The
//! `TopologyTestDriver` (feature `test-utils`) runs it without a broker:
//!
//! ```
//! use homa::prelude::*;
//!
//! #[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
//! struct Order { total: f64 }
//!
//! let mut builder = StreamsBuilder::new();
//! builder
//!     .stream::<String, Json<Order>>("orders")
//!     .filter(|_key, order| order.total > 100.0)
//!     .map_values(|order| order.total)
//!     .to("big-order-totals");
//! let topology = builder.build()?;
//! println!("{}", topology.describe());
//!
//! let config = StreamsConfig::builder().application_id("first-topology").build()?;
//! let driver = TopologyTestDriver::new(&topology, config)?;
//! let orders = driver.create_input_topic::<String, Json<Order>>("orders");
//! let totals = driver.create_output_topic::<String, f64>("big-order-totals");
//! orders.pipe_input("o1".to_string(), Json(Order { total: 120.0 }));
//! orders.pipe_input("o2".to_string(), Json(Order { total: 80.0 }));
//! assert_eq!(totals.read_key_values_to_list(), [("o1".to_string(), 120.0)]);
//! # Ok::<(), homa::Error>(())
//! ```
//!
//! Against Kafka, [`runtime::KafkaStreams`] runs the same topology as a consumer group, with
//! `num.stream.threads` threads per instance and at-least-once commits. The native libraries
//! HOMA links, librdkafka and RocksDB, can be checked with [`native`].

pub mod config;
pub mod dsl;
pub mod error;
pub mod header;
pub mod native;
pub mod prelude;
pub mod processor;
pub mod runtime;
pub mod serde;
pub mod state;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod topology;

pub use error::Error;

/// The result type of HOMA's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

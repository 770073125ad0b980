//! HOMA: Kafka Streams-style stream processing for Rust.
//!
//! HOMA runs a topology of typed stream operators as an Apache Kafka consumer group,
//! keeps operator state in RocksDB backed by compacted changelog topics, and scales out by
//! starting more instances, as Kafka Streams does.
//!
//! This release holds the foundation that the engine is built on: the native libraries
//! HOMA links (librdkafka for Kafka, RocksDB for state) and a self-check of both in
//! [`native`]. The typed DSL, the Processor API and the runtime follow.
//!
//! ```
//! let version = homa::native::librdkafka_version();
//! assert!(version.starts_with('2'));
//! ```

pub mod config;
pub mod dsl;
pub mod error;
pub mod header;
pub mod native;
pub mod processor;
pub mod runtime;
pub mod serde;
#[cfg(any(test, feature = "test-utils"))]
pub mod testing;
pub mod topology;

pub use error::Error;

/// The result type of HOMA's fallible operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

//! What the driver tests share.

// Each test crate compiles this module whole and uses a part of it.
#![allow(dead_code)]

use homa::header::Headers;
use homa::prelude::*;
use homa::serde::{Serde, SerdeError, StringSerde};

/// A test driver of `builder`'s topology, application `application_id`.
pub fn driver(builder: &StreamsBuilder, application_id: &str) -> TopologyTestDriver {
    let topology = builder.build().expect("a valid topology");
    let config = StreamsConfig::builder()
        .application_id(application_id)
        .build()
        .expect("a valid config");
    TopologyTestDriver::new(&topology, config).expect("a driver")
}

/// Strings in UTF-8 as [`StringSerde`] has them, through two hooks that show what went
/// through the serde: each value is written as `write` makes it, and `read` is called
/// before each value is read.
pub struct HookedStrings {
    write: Box<dyn Fn(&str) -> String + Send + Sync>,
    read: Box<dyn Fn() + Send + Sync>,
}

impl HookedStrings {
    /// Writes `write(value)` for each value; calls `read` as each value is read.
    pub fn new(
        write: impl Fn(&str) -> String + Send + Sync + 'static,
        read: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        Self {
            write: Box::new(write),
            read: Box::new(read),
        }
    }
}

impl Serde<String> for HookedStrings {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &String,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        StringSerde.serialize(topic, headers, &(self.write)(value), out)
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<String, SerdeError> {
        (self.read)();
        StringSerde.deserialize(topic, headers, bytes)
    }
}

//! What the driver tests share.

use homa::prelude::*;

/// A test driver of `builder`'s topology, application `application_id`.
pub fn driver(builder: &StreamsBuilder, application_id: &str) -> TopologyTestDriver {
    let topology = builder.build().expect("a valid topology");
    let config = StreamsConfig::builder()
        .application_id(application_id)
        .build()
        .expect("a valid config");
    TopologyTestDriver::new(&topology, config).expect("a driver")
}

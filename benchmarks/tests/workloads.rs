//! Every workload's HOMA topology writes what the harness expects of it, on the test driver:
//! the check every benchmark run applies to every system's output starts from the same rule.

use std::collections::HashMap;

use homa::prelude::*;
use homa::testing::TopologyTestDriver;
use homa_benchmarks::data::{
    DataSpec, Digest, Expectation, Generator, KeyDistribution, side_records,
};
use homa_benchmarks::workload::{Bytes, Side, System, WORKLOADS};

/// The first input record's timestamp (a table's rows are stamped before it).
const START: i64 = 1_000;

#[test]
fn homa_topologies_write_what_each_workload_expects() {
    let spec = DataSpec {
        records: 2_000,
        keys: 50,
        value_bytes: 32,
        distribution: KeyDistribution::Uniform,
        partitions: 4,
        seed: 1,
        event_span_ms: 600_000,
    };
    for workload in WORKLOADS
        .iter()
        .filter(|w| w.systems.contains(&System::Homa))
    {
        let mut builder = StreamsBuilder::new();
        (workload.homa)(&mut builder, "in", "out");
        let topology = builder.build().expect("a topology");
        let config = StreamsConfig::builder()
            .application_id("bench-workloads")
            .set_all(workload.settings.iter().copied())
            .build()
            .expect("a config");
        let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
        let input = driver.create_input_topic::<Bytes, Bytes>("in");
        let output = driver.create_output_topic::<Bytes, Bytes>("out");

        let mut generator = Generator::new(&spec).expect("a generator");
        let mut expected = Expectation::new(workload);
        // A table is piped first; a second stream record by record with the input.
        let mut side = workload.side.map(|side| {
            let topic = driver.create_input_topic::<Bytes, Bytes>(&side.topic("in"));
            let records = side_records(&spec, side, START).expect("side records");
            (side, topic, records)
        });
        if let Some((Side::Table, topic, records)) = &mut side {
            for (key, value, timestamp) in records {
                topic.pipe_input_with_timestamp(key.to_vec(), value, timestamp);
            }
        }
        for i in 0..spec.records {
            let (key, value) = generator.next_record();
            let timestamp = spec.timestamp(START, i);
            expected.add(workload, key, value, timestamp);
            input.pipe_input_with_timestamp(key.to_vec(), value.to_vec(), timestamp);
            if let Some((Side::Stream, topic, records)) = &mut side {
                let (key, value, timestamp) = records.next().expect("as many records");
                expected.add_right(key, &value, timestamp);
                topic.pipe_input_with_timestamp(key.to_vec(), value, timestamp);
            }
        }
        let mut written = Digest::default();
        let mut latest: HashMap<Bytes, Bytes> = HashMap::new();
        for (key, value) in output.read_key_values_to_list() {
            if workload.expect.aggregates() {
                latest.insert(key, value);
            } else {
                written.add(&key, &value);
            }
        }
        for (key, value) in &latest {
            written.add(key, value);
        }
        let expected = expected.digest();
        assert!(expected.records > 0, "{}: expects no output", workload.id);
        assert_eq!(written, expected, "{}", workload.id);
    }
}

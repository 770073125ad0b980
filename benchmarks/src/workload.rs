//! The workloads: what each system does to the input, and what it must write.
//!
//! A workload is an entry of [`WORKLOADS`]: its HOMA topology, the output it must write for
//! each input record (the harness checks every run against it), and the systems that run
//! it. Its Kafka Streams twin is the `case` of the same id in
//! `kafka-streams/src/main/java/dev/homa/bench/KafkaStreamsBench.java`.

use std::fmt;

use anyhow::bail;
use homa::prelude::*;

/// A program under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum System {
    /// A hand-written rdkafka consume-to-produce loop: the ceiling.
    Rdkafka,
    /// HOMA.
    Homa,
    /// Kafka Streams (Java), the reference.
    KafkaStreams,
}

impl System {
    /// Every system, in the order runs alternate.
    pub const ALL: [System; 3] = [System::Rdkafka, System::Homa, System::KafkaStreams];

    /// The name on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            System::Rdkafka => "rdkafka",
            System::Homa => "homa",
            System::KafkaStreams => "kafka-streams",
        }
    }

    /// The system named `name`.
    pub fn parse(name: &str) -> anyhow::Result<Self> {
        match System::ALL.into_iter().find(|s| s.name() == name) {
            Some(system) => Ok(system),
            None => bail!("unknown system '{name}' (known: rdkafka, homa, kafka-streams)"),
        }
    }
}

impl fmt::Display for System {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A record as a workload sees it: raw key and value bytes.
pub type Bytes = Vec<u8>;

/// The record a workload writes for an input (key, value), if any.
pub type Expect = fn(&[u8], &[u8]) -> Option<(Bytes, Bytes)>;

/// One workload.
#[derive(Debug)]
pub struct Workload {
    /// Its id on the command line and in the tables ("w1").
    pub id: &'static str,
    /// What it does, in a few words.
    pub title: &'static str,
    /// The systems that run it.
    pub systems: &'static [System],
    /// The record it writes for input (key, value), if any.
    pub expect: Expect,
    /// Adds its HOMA topology from `input` to `output` to a builder.
    pub homa: fn(&mut StreamsBuilder, input: &str, output: &str),
}

/// Every workload. W0 is the ceiling every other is compared with.
pub static WORKLOADS: &[Workload] = &[
    Workload {
        id: "w0",
        title: "passthrough",
        systems: &System::ALL,
        expect: |key, value| Some((key.to_vec(), value.to_vec())),
        homa: |builder, input, output| builder.stream::<Bytes, Bytes>(input).to(output),
    },
    Workload {
        id: "w1",
        title: "filter, map_values",
        systems: &[System::Homa, System::KafkaStreams],
        expect: |key, value| keep(value).then(|| (key.to_vec(), invert(value))),
        homa: |builder, input, output| {
            builder
                .stream::<Bytes, Bytes>(input)
                .filter(|_, value| keep(value))
                .map_values(|value| invert(value))
                .to(output);
        },
    },
];

/// The workload with id `id`.
pub fn find(id: &str) -> anyhow::Result<&'static Workload> {
    match WORKLOADS.iter().find(|w| w.id == id) {
        Some(workload) => Ok(workload),
        None => {
            let known: Vec<&str> = WORKLOADS.iter().map(|w| w.id).collect();
            bail!("unknown workload '{id}' (known: {})", known.join(", "))
        }
    }
}

/// W1's filter: keeps a value whose first byte is below 128, about half of random values.
fn keep(value: &[u8]) -> bool {
    value.first().is_some_and(|b| *b < 128)
}

/// W1's mapping: every byte inverted, into a new value.
fn invert(value: &[u8]) -> Bytes {
    value.iter().map(|b| !b).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workload_ids_are_unique_and_found() {
        for workload in WORKLOADS {
            assert_eq!(find(workload.id).unwrap().id, workload.id);
        }
        assert!(find("w99").unwrap_err().to_string().contains("w0, w1"));
    }

    #[test]
    fn w1_keeps_low_first_bytes_and_inverts() {
        let w1 = find("w1").unwrap();
        assert_eq!(
            (w1.expect)(b"k", &[127, 0]),
            Some((b"k".to_vec(), vec![128, 255]))
        );
        assert_eq!((w1.expect)(b"k", &[128, 0]), None);
        assert_eq!((w1.expect)(b"k", &[]), None);
    }

    #[test]
    fn every_homa_topology_builds() {
        for workload in WORKLOADS {
            let mut builder = StreamsBuilder::new();
            (workload.homa)(&mut builder, "in", "out");
            builder.build().unwrap();
        }
    }

    #[test]
    fn systems_parse_by_name() {
        for system in System::ALL {
            assert_eq!(System::parse(system.name()).unwrap(), system);
        }
        assert!(System::parse("flink").is_err());
    }
}

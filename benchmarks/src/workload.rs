//! The workloads: what each system does to the input, and what it must write.
//!
//! A workload is an entry of [`WORKLOADS`]: its HOMA topology, the output it must write for
//! each input record (the harness checks every run against it), and the systems that run
//! it. Its Kafka Streams twin is the `case` of the same id in
//! `kafka-streams/src/main/java/dev/homa/bench/KafkaStreamsBench.java`.

use std::fmt;
use std::time::Duration;

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

/// A key's aggregate after one more input value: `(aggregate so far, key, value)`.
pub type Fold = fn(Option<&[u8]>, &[u8], &[u8]) -> Bytes;

/// The windows of a windowed workload, in ms of event time: tumbling when the advance is the
/// size. Their output keys are the record key, then the window's start (8 bytes,
/// big-endian), as both systems write time-windowed keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Windows {
    /// How long a window is.
    pub size: i64,
    /// How far apart windows start.
    pub advance: i64,
}

impl Windows {
    /// The starts of the windows that hold `timestamp`, as Kafka Streams' `windowsFor`.
    pub fn starts(self, timestamp: i64) -> impl Iterator<Item = i64> {
        let first = (timestamp - self.size + self.advance).max(0) / self.advance * self.advance;
        (0..)
            .map(move |i| first + i * self.advance)
            .take_while(move |start| *start <= timestamp)
    }
}

/// A second input a workload reads besides its input topic, in a topic named after the
/// input's ([`Side::topic`]) and loaded with it, with as many partitions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// A table of [`TABLE_ROWS`] rows, one per key of the key space, [`row`]'s values, all
    /// stamped before the first input record (so that both systems load it first).
    Table,
    /// A second stream made as the input is (as many records, the same timestamps, keys of
    /// the same distribution), from another seed.
    Stream,
}

impl Side {
    /// The side input's topic, for input topic `input`.
    pub fn topic(self, input: &str) -> String {
        match self {
            Side::Table => format!("{input}-table"),
            Side::Stream => format!("{input}-right"),
        }
    }
}

/// The rows of W4's table: the keys `0..TABLE_ROWS` of the key space.
pub const TABLE_ROWS: u64 = 100_000;

/// The value of the table row of `key`: 16 bytes made from the key.
pub fn row(key: &[u8]) -> Bytes {
    let mut value: Bytes = key.iter().rev().copied().collect();
    value.extend_from_slice(b"customer");
    value
}

/// What a workload must write.
#[derive(Debug, Clone, Copy)]
pub enum Expected {
    /// One output record (or none) per input record, as `Expect` says.
    PerRecord(Expect),
    /// Per key, a last output record with the aggregate of all of the key's values (an
    /// aggregation: how many updates it writes before depends on its cache). Such a run
    /// is complete when its consumer group has committed all of the input.
    LatestPerKey(Fold),
    /// Per key and window, a last output record with the aggregate of the key's values in
    /// the window (a windowed aggregation without grace over input in time order: no
    /// record is late). Complete when the consumer group has committed all of the input.
    LatestPerWindow(Windows, Fold),
    /// A record for each pair of an input record and a [`Side::Stream`] record of the same
    /// key at most this many ms apart: the key, and the input's value then the other's (an
    /// inner stream-stream join).
    WindowJoin(i64),
}

impl Expected {
    /// Whether the workload aggregates: its output's last record per key counts.
    pub fn aggregates(self) -> bool {
        matches!(
            self,
            Expected::LatestPerKey(_) | Expected::LatestPerWindow(..)
        )
    }
}

/// One workload.
#[derive(Debug)]
pub struct Workload {
    /// Its id on the command line and in the tables ("w1").
    pub id: &'static str,
    /// What it does, in a few words.
    pub title: &'static str,
    /// The systems that run it.
    pub systems: &'static [System],
    /// What it must write for the input.
    pub expect: Expected,
    /// Settings of its own, for every system (over the harness's).
    pub settings: &'static [(&'static str, &'static str)],
    /// Its second input, if it has one.
    pub side: Option<Side>,
    /// Adds its HOMA topology from `input` to `output` to a builder.
    pub homa: fn(&mut StreamsBuilder, input: &str, output: &str),
}

/// Every workload. W0 is the ceiling every other is compared with.
pub static WORKLOADS: &[Workload] = &[
    Workload {
        id: "w0",
        title: "passthrough",
        systems: &System::ALL,
        expect: Expected::PerRecord(|key, value| Some((key.to_vec(), value.to_vec()))),
        settings: &[],
        side: None,
        homa: |builder, input, output| builder.stream::<Bytes, Bytes>(input).to(output),
    },
    Workload {
        id: "w1",
        title: "filter, map_values",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::PerRecord(filtered),
        settings: &[],
        side: None,
        homa: filter_map,
    },
    Workload {
        id: "w1-eos",
        title: "W1 under exactly_once_v2",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::PerRecord(filtered),
        settings: EXACTLY_ONCE,
        side: None,
        homa: filter_map,
    },
    Workload {
        id: "w2",
        title: "group_by_key, aggregate(sum)",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerKey(sum),
        settings: &[],
        side: None,
        homa: sums,
    },
    Workload {
        id: "w2-eos",
        title: "W2 under exactly_once_v2",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerKey(sum),
        settings: EXACTLY_ONCE,
        side: None,
        homa: sums,
    },
    Workload {
        id: "w2-nocache",
        title: "W2, record cache off",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerKey(sum),
        settings: &[("statestore.cache.max.bytes", "0")],
        side: None,
        homa: sums,
    },
    Workload {
        id: "w3",
        title: "tumbling 60 s windows, count",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerWindow(MINUTE, count),
        settings: &[],
        side: None,
        homa: counts_per_minute,
    },
    Workload {
        id: "w3-nocache",
        title: "W3, record cache off",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerWindow(MINUTE, count),
        settings: &[("statestore.cache.max.bytes", "0")],
        side: None,
        homa: counts_per_minute,
    },
    Workload {
        id: "w3-hopping",
        title: "hopping 60 s windows every 10 s, sum",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerWindow(HOPPING, sum),
        settings: &[],
        side: None,
        homa: hopping_sums,
    },
    Workload {
        id: "w3-hopping-nocache",
        title: "W3-HOPPING, record cache off",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::LatestPerWindow(HOPPING, sum),
        settings: &[("statestore.cache.max.bytes", "0")],
        side: None,
        homa: hopping_sums,
    },
    Workload {
        id: "w4-table",
        title: "stream-table join, 100,000-row table",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::PerRecord(|key, value| Some((key.to_vec(), joined(value, &row(key))))),
        settings: &[],
        side: Some(Side::Table),
        homa: enriched,
    },
    Workload {
        id: "w4-streams",
        title: "stream-stream join, 10 s windows",
        systems: &[System::Homa, System::KafkaStreams],
        expect: Expected::WindowJoin(JOIN_WINDOW_MS),
        settings: &[],
        side: Some(Side::Stream),
        homa: stream_joined,
    },
];

/// The settings of the exactly-once workloads: Kafka Streams' defaults under
/// `exactly_once_v2` (a commit every 100 ms).
const EXACTLY_ONCE: &[(&str, &str)] = &[
    ("processing.guarantee", "exactly_once_v2"),
    ("commit.interval.ms", "100"),
];

impl Workload {
    /// Whether it runs under exactly-once: its output is read as committed, and a run is
    /// complete when its group has committed all of the input.
    pub fn exactly_once(&self) -> bool {
        self.settings
            .iter()
            .any(|&(key, value)| key == "processing.guarantee" && value == "exactly_once_v2")
    }
}

/// W1's output for an input record: kept values, inverted.
fn filtered(key: &[u8], value: &[u8]) -> Option<(Bytes, Bytes)> {
    keep(value).then(|| (key.to_vec(), invert(value)))
}

/// W1 on HOMA: `filter`, then `map_values`.
fn filter_map(builder: &mut StreamsBuilder, input: &str, output: &str) {
    builder
        .stream::<Bytes, Bytes>(input)
        .filter(|_, value| keep(value))
        .map_values(|value| invert(value))
        .to(output);
}

/// W4-STREAMS' windows: records at most 10 s apart join.
pub const JOIN_WINDOW_MS: i64 = 10_000;

/// W4's joiner: the two values one after the other.
pub fn joined(left: &[u8], right: &[u8]) -> Bytes {
    [left, right].concat()
}

/// W4-TABLE on HOMA: each input record joined with its key's row of the table, kept in the
/// store `w4-table`.
fn enriched(builder: &mut StreamsBuilder, input: &str, output: &str) {
    let table =
        builder.table::<Bytes, Bytes>(&Side::Table.topic(input), Materialized::as_("w4-table"));
    builder
        .stream::<Bytes, Bytes>(input)
        .join_table(&table, |order: &Bytes, row: &Bytes| joined(order, row))
        .to(output);
}

/// W4-STREAMS on HOMA: the input joined with the second stream, records of a key at most
/// 10 s apart (a grace of 30 s, for the little disorder between the two topics).
fn stream_joined(builder: &mut StreamsBuilder, input: &str, output: &str) {
    let right = builder.stream::<Bytes, Bytes>(&Side::Stream.topic(input));
    let windows = JoinWindows::of_time_difference_and_grace(
        Duration::from_millis(JOIN_WINDOW_MS as u64),
        Duration::from_secs(30),
    );
    builder
        .stream::<Bytes, Bytes>(input)
        .join(&right, |l: &Bytes, r: &Bytes| joined(l, r), windows)
        .to(output);
}

/// W3's tumbling windows.
const MINUTE: Windows = Windows {
    size: 60_000,
    advance: 60_000,
};

/// W3-HOPPING's windows.
const HOPPING: Windows = Windows {
    size: 60_000,
    advance: 10_000,
};

/// W3's aggregate: how many values, as a big-endian `i64`.
fn count(old: Option<&[u8]>, _key: &[u8], _value: &[u8]) -> Bytes {
    (old.map_or(0, number) + 1).to_be_bytes().to_vec()
}

/// W3 on HOMA: each key's records per minute, in the window store `w3-counts`.
fn counts_per_minute(builder: &mut StreamsBuilder, input: &str, output: &str) {
    builder
        .stream::<Bytes, Bytes>(input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(60)))
        .count_with(Materialized::as_("w3-counts"))
        .to_stream()
        .to(output);
}

/// W3-HOPPING on HOMA: the sum of each key's numbers in hopping windows, in the window
/// store `w3-sums`.
fn hopping_sums(builder: &mut StreamsBuilder, input: &str, output: &str) {
    builder
        .stream::<Bytes, Bytes>(input)
        .group_by_key()
        .windowed_by(
            TimeWindows::of_size_with_no_grace(Duration::from_secs(60))
                .advance_by(Duration::from_secs(10)),
        )
        .aggregate_with(
            || 0_i64,
            |_, value, sum: i64| sum.wrapping_add(number(value)),
            Materialized::as_("w3-sums"),
        )
        .to_stream()
        .to(output);
}

/// W2's value: the first 8 bytes of the input value, a big-endian `i64`.
fn number(value: &[u8]) -> i64 {
    value
        .get(..8)
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map_or(0, i64::from_be_bytes)
}

/// W2's aggregate: the wrapping sum of a key's numbers, as a big-endian `i64`.
fn sum(old: Option<&[u8]>, _key: &[u8], value: &[u8]) -> Bytes {
    old.map_or(0, number)
        .wrapping_add(number(value))
        .to_be_bytes()
        .to_vec()
}

/// W2 on HOMA: the sum per key, in the store `w2-sums`.
fn sums(builder: &mut StreamsBuilder, input: &str, output: &str) {
    builder
        .stream::<Bytes, Bytes>(input)
        .group_by_key()
        .aggregate_with(
            || 0_i64,
            |_, value, sum: i64| sum.wrapping_add(number(value)),
            Materialized::as_("w2-sums"),
        )
        .to_stream()
        .to(output);
}

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
    fn windows_are_those_kafka_streams_puts_a_record_in() {
        assert_eq!(MINUTE.starts(59_999).collect::<Vec<_>>(), [0]);
        assert_eq!(MINUTE.starts(60_000).collect::<Vec<_>>(), [60_000]);
        assert_eq!(
            HOPPING.starts(65_000).collect::<Vec<_>>(),
            [10_000, 20_000, 30_000, 40_000, 50_000, 60_000]
        );
        assert_eq!(HOPPING.starts(5_000).collect::<Vec<_>>(), [0]);
    }

    #[test]
    fn workload_ids_are_unique_and_found() {
        for workload in WORKLOADS {
            assert_eq!(find(workload.id).unwrap().id, workload.id);
        }
        assert!(find("w99").unwrap_err().to_string().contains("w0, w1"));
    }

    #[test]
    fn w1_keeps_low_first_bytes_and_inverts() {
        let Expected::PerRecord(expect) = find("w1").unwrap().expect else {
            panic!("w1 writes a record per input record");
        };
        assert_eq!(
            expect(b"k", &[127, 0]),
            Some((b"k".to_vec(), vec![128, 255]))
        );
        assert_eq!(expect(b"k", &[128, 0]), None);
        assert_eq!(expect(b"k", &[]), None);
    }

    #[test]
    fn w2_sums_the_first_eight_bytes_wrapping() {
        let one = 1_i64.to_be_bytes();
        let max = i64::MAX.to_be_bytes();
        assert_eq!(sum(None, b"k", &one), one.to_vec());
        assert_eq!(sum(Some(&max), b"k", &one), i64::MIN.to_be_bytes().to_vec());
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

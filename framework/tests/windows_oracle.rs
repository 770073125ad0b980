//! The windowed aggregations record for record as Kafka Streams 4.4: each case runs the
//! same topology and input as the case of the same name of `benchmarks/kafka-streams`'
//! `dev.homa.oracle.Oracle`, and must print exactly what Kafka Streams' own
//! `TopologyTestDriver` printed there (kept in its `oracle-output.txt`): every record of
//! topic `out` in order (key `key@start/end`, value, timestamp; tombstones included), the
//! final contents of the store (sorted), and the records dropped.
//!
//! Kafka Streams hands a record without a value to a windowed reduce's or aggregate's
//! closure (which fails, or takes the null); HOMA's closures take values, so HOMA drops such
//! a record. The reduce and aggregate cases are fed input without one, for both.

mod common;

use std::time::Duration;

use homa::dsl::WindowedSerde;
use homa::header::Headers;
use homa::prelude::*;
use homa::serde::{DefaultSerde, Serde};
use homa::testing::TopologyTestDriver;

const ORACLE: &str = include_str!("../../benchmarks/kafka-streams/oracle-output.txt");

/// Out of order within the grace, late for a closed window, a null key, a null value.
const WINDOW_INPUT: &str = "a=1@1000 b=2@2000 a=3@11000 a=4@9000 a=5@16000 b=6@4000 \
    a=7@26000 a=8@14000 a=9@21500 null=10@27000 a=null@27500 b=11@40000 a=12@24999";

/// Sessions that one record bridges, late records, a null key, a null value.
const SESSION_INPUT: &str = "a=1@1000 a=2@12000 b=3@2000 a=3@7000 a=4@4000 b=5@30000 \
    a=6@20000 a=7@17500 a=8@5000 null=9@31000 a=null@31500 b=10@60000 a=11@40000";

/// `input` without its record with a null value.
fn values_only(input: &str) -> String {
    input
        .split_whitespace()
        .filter(|row| !row.contains("=null@"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The lines the oracle printed for case `name`.
fn oracle(name: &str) -> Vec<String> {
    let header = format!("## {name}");
    let mut lines = ORACLE.lines().skip_while(|l| *l != header);
    assert!(
        lines.next().is_some(),
        "case {name} is in oracle-output.txt"
    );
    lines
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_string)
        .collect()
}

/// How the case's windowed keys are read back from `out`.
#[derive(Clone, Copy)]
enum Keys {
    /// Time windows of this size (sliding: the time difference).
    Time(i64),
    Sessions,
}

/// The window store's entries, or the session store's, as the oracle prints them.
fn store_lines(driver: &TopologyTestDriver, keys: Keys) -> Vec<String> {
    let mut lines: Vec<String> = match keys {
        Keys::Time(_) => driver
            .timestamped_window_store::<String, i64>("w")
            .expect("the window store")
            .all()
            .expect("a scan")
            .into_iter()
            .map(|(k, v)| format!("{}={}@{}", show(&k), v.value, v.timestamp))
            .collect(),
        Keys::Sessions => driver
            .session_store::<String, i64>("w")
            .expect("the session store")
            .all()
            .expect("a scan")
            .into_iter()
            .map(|(k, v)| format!("{}={v}", show(&k)))
            .collect(),
    };
    lines.sort();
    if lines.is_empty() {
        return vec!["store w (empty)".into()];
    }
    lines.into_iter().map(|l| format!("store w {l}")).collect()
}

fn show(key: &Windowed<String>) -> String {
    format!(
        "{}@{}/{}",
        key.key(),
        key.window().start(),
        key.window().end()
    )
}

/// Runs `table` (a windowed aggregation into store `w`) on `input`, its changes written
/// to `out` with the default serde of windowed keys, and compares what it printed with the
/// oracle's case `name`.
fn case(
    name: &str,
    keys: Keys,
    input: &str,
    table: impl FnOnce(KGroupedStream<String, i64>) -> KTable<Windowed<String>, i64>,
) {
    let mut builder = StreamsBuilder::new();
    table(builder.stream::<String, i64>("in").group_by_key())
        .to_stream()
        .to("out");
    let driver = common::driver(&builder, "homa-oracle");
    pipe(&driver, input);
    let serde: Box<dyn Serde<Windowed<String>>> = match keys {
        Keys::Time(size) => Box::new(WindowedSerde::time_windowed(String::default_serde(), size)),
        Keys::Sessions => Box::new(WindowedSerde::session_windowed(String::default_serde())),
    };
    let mut printed: Vec<String> = driver
        .create_output_topic::<Vec<u8>, i64>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| {
            let key = r.key.expect("a windowed key");
            let key = serde
                .deserialize("out", &Headers::new(), &key)
                .expect("a windowed key");
            let value = r.value.map_or("null".to_string(), |v| v.to_string());
            format!("out key={} value={value} ts={}", show(&key), r.timestamp)
        })
        .collect();
    printed.extend(store_lines(&driver, keys));
    printed.push(format!("dropped {}", driver.dropped_records()));
    assert_eq!(printed, oracle(name), "case {name}");
}

/// Pipes `key=value@timestamp ...` (`null` for none) into topic `in`.
fn pipe(driver: &TopologyTestDriver, input: &str) {
    let topic = driver.create_input_topic::<String, i64>("in");
    for row in input.split_whitespace() {
        let (record, timestamp) = row.rsplit_once('@').expect("a timestamp");
        let (key, value) = record.split_once('=').expect("a key and a value");
        topic.pipe_record(homa::processor::Record::from_parts(
            (key != "null").then(|| key.to_string()),
            (value != "null").then(|| value.parse().expect("a number")),
            timestamp.parse().expect("a timestamp"),
            Headers::new(),
        ));
    }
}

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

fn store(cached: bool) -> Materialized<String, i64> {
    let store = Materialized::as_("w");
    if cached {
        store
    } else {
        store.with_caching_disabled()
    }
}

fn suffix(cached: bool) -> &'static str {
    if cached { "-cached" } else { "" }
}

#[test]
fn tumbling_count() {
    for cached in [false, true] {
        let name = format!("tumbling-count{}", suffix(cached));
        case(&name, Keys::Time(10_000), WINDOW_INPUT, |grouped| {
            grouped
                .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
                .count_with(store(cached))
        });
    }
}

#[test]
fn hopping_reduce() {
    for cached in [false, true] {
        let name = format!("hopping-reduce{}", suffix(cached));
        case(
            &name,
            Keys::Time(10_000),
            &values_only(WINDOW_INPUT),
            |grouped| {
                grouped
                    .windowed_by(
                        TimeWindows::of_size_and_grace(secs(10), secs(5)).advance_by(secs(5)),
                    )
                    .reduce_with(|a, b| a + b, store(cached))
            },
        );
    }
}

#[test]
fn tumbling_aggregate_without_grace() {
    let input = values_only(WINDOW_INPUT);
    case(
        "tumbling-aggregate-no-grace",
        Keys::Time(10_000),
        &input,
        |grouped| {
            grouped
                .windowed_by(TimeWindows::of_size_with_no_grace(secs(10)))
                .aggregate_with(|| 100, |_, v, agg| agg + v, store(false))
        },
    );
}

#[test]
fn emit_on_window_close() {
    case(
        "tumbling-emit-final",
        Keys::Time(10_000),
        WINDOW_INPUT,
        |grouped| {
            grouped
                .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
                .emit_strategy(EmitStrategy::on_window_close())
                .count_with(store(false))
        },
    );
    case(
        "hopping-emit-final-cached",
        Keys::Time(10_000),
        WINDOW_INPUT,
        |grouped| {
            grouped
                .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)).advance_by(secs(5)))
                .emit_strategy(EmitStrategy::on_window_close())
                .count_with(store(true))
        },
    );
}

#[test]
fn sliding_count() {
    for cached in [false, true] {
        let name = format!("sliding-count{}", suffix(cached));
        case(&name, Keys::Time(5_000), WINDOW_INPUT, |grouped| {
            grouped
                .windowed_by(SlidingWindows::of_time_difference_and_grace(
                    secs(5),
                    secs(10),
                ))
                .count_with(store(cached))
        });
    }
}

#[test]
fn sliding_reduce_without_grace() {
    let input = values_only(WINDOW_INPUT);
    case(
        "sliding-reduce-no-grace",
        Keys::Time(5_000),
        &input,
        |grouped| {
            grouped
                .windowed_by(SlidingWindows::of_time_difference_with_no_grace(secs(5)))
                .reduce_with(|a, b| a + b, store(false))
        },
    );
}

#[test]
fn session_count() {
    for cached in [false, true] {
        let name = format!("session-count{}", suffix(cached));
        case(&name, Keys::Sessions, SESSION_INPUT, |grouped| {
            grouped
                .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
                    secs(5),
                    secs(10),
                ))
                .count_with(store(cached))
        });
    }
}

#[test]
fn session_aggregate_merges_sessions() {
    let input = values_only(SESSION_INPUT);
    case("session-aggregate", Keys::Sessions, &input, |grouped| {
        grouped
            .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(secs(5)))
            .aggregate_with(
                || 0,
                |_, v, agg| agg * 10 + v,
                |_, x, y| x * 1000 + y,
                store(false),
            )
    });
}

#[test]
fn suppress_until_window_closes() {
    for cached in [false, true] {
        let name = format!("suppress-window-close{}", suffix(cached));
        case(&name, Keys::Time(10_000), WINDOW_INPUT, |grouped| {
            grouped
                .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
                .count_with(store(cached))
                .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        });
    }
}

#[test]
fn suppress_until_time_limit() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, i64>("in")
        .group_by_key()
        .count_with(Materialized::as_("s").with_caching_disabled())
        .suppress(Suppressed::until_time_limit(
            secs(10),
            BufferConfig::max_records(100),
        ))
        .to_stream()
        .to("out");
    let driver = common::driver(&builder, "homa-oracle");
    pipe(&driver, WINDOW_INPUT);
    let mut printed: Vec<String> = driver
        .create_output_topic::<String, i64>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| {
            let key = r.key.expect("a key");
            let value = r.value.map_or("null".to_string(), |v| v.to_string());
            format!("out key={key} value={value} ts={}", r.timestamp)
        })
        .collect();
    let store = driver
        .timestamped_key_value_store::<String, i64>("s")
        .expect("the store");
    for entry in store.all().expect("a scan") {
        let (key, value) = entry.expect("an entry");
        printed.push(format!("store s {key}={}@{}", value.value, value.timestamp));
    }
    assert_eq!(printed, oracle("suppress-time-limit"));
}

/// The nodes and stores of windowed aggregations and suppressions are named as Kafka
/// Streams names them, so that their state and changelogs are found under the same names.
#[test]
fn describe_names_window_stores_and_suppression_buffers_as_kafka_streams() {
    let mut builder = StreamsBuilder::new();
    let grouped = builder.stream::<String, i64>("in").group_by_key();
    grouped
        .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
        .count_with(Materialized::as_("w"))
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_stream()
        .to("out");
    grouped
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(secs(5)))
        .count()
        .to_stream()
        .to("sessions");
    grouped
        .windowed_by(SlidingWindows::of_time_difference_with_no_grace(secs(5)))
        .reduce(|a, b| a + b)
        .suppress(
            Suppressed::until_time_limit(secs(1), BufferConfig::max_records(10))
                .with_name("limited"),
        )
        .to_stream()
        .to("sliding");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    let mut expected: Vec<String> = oracle("describe-windowed");
    while expected.last().is_some_and(|l| l.is_empty()) {
        expected.pop();
    }
    let described: Vec<&str> = described.trim_end().lines().collect();
    assert_eq!(described, expected);
    let mermaid = topology.describe().to_mermaid();
    for drawn in [
        "KSTREAM_AGGREGATE_0000000001 -.- store_w",
        "store_w[(\"w<br/>window store\")]",
        "store_KTABLE_SUPPRESS_STATE_STORE_0000000003[(\"KTABLE-SUPPRESS-STATE-STORE-0000000003<br/>suppression buffer\")]",
        "session store",
    ] {
        assert!(mermaid.contains(drawn), "{drawn} in {mermaid}");
    }
}

#[test]
fn sliding_and_session_windows_emit_on_close() {
    case(
        "sliding-emit-final",
        Keys::Time(5_000),
        WINDOW_INPUT,
        |grouped| {
            grouped
                .windowed_by(SlidingWindows::of_time_difference_and_grace(
                    secs(5),
                    secs(10),
                ))
                .emit_strategy(EmitStrategy::on_window_close())
                .count_with(store(false))
        },
    );
    case(
        "session-emit-final",
        Keys::Sessions,
        SESSION_INPUT,
        |grouped| {
            grouped
                .windowed_by(SessionWindows::of_inactivity_gap_and_grace(
                    secs(5),
                    secs(10),
                ))
                .emit_strategy(EmitStrategy::on_window_close())
                .count_with(store(false))
        },
    );
}

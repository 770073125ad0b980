//! The DSL's tables and aggregations record for record as Kafka Streams 4.4: every expected
//! record (key, value, timestamp, order, tombstones) and store entry below is what Kafka
//! Streams' own `TopologyTestDriver` gave for the same inputs and topology, as printed by
//! `benchmarks/kafka-streams`' `dev.homa.oracle.Oracle` (kept in `oracle-output.txt` there,
//! under the case's name).
//!
//! Records and store entries are written `key=value@timestamp`, `null` for a missing key or
//! value (the oracle's own notation for store entries), one after another on a line: a case
//! reads against the oracle's output record for record.

mod common;

use std::fmt::Display;
use std::str::FromStr;

use homa::prelude::*;
use homa::processor::Record;
use homa::serde::DefaultSerde;
use homa::testing::TopologyTestDriver;

/// `key=value@timestamp` of a record or store entry, `null` for `None`.
fn row<K: Display, V: Display>(key: Option<K>, value: Option<V>, timestamp: i64) -> String {
    let show = |part: Option<String>| part.unwrap_or_else(|| "null".into());
    let (key, value) = (
        show(key.map(|k| k.to_string())),
        show(value.map(|v| v.to_string())),
    );
    format!("{key}={value}@{timestamp}")
}

/// The key, value and timestamp of a row written as [`row`] writes it.
fn parse<V: FromStr>(row: &str) -> (Option<String>, Option<V>, i64) {
    let (record, timestamp) = row.rsplit_once('@').expect("a timestamp");
    let (key, value) = record.split_once('=').expect("a key and a value");
    let value = (value != "null").then(|| value.parse().ok().expect("a value"));
    let key = (key != "null").then(|| key.to_string());
    (key, value, timestamp.parse().expect("a timestamp"))
}

/// Runs case `name` of the oracle: the table `topology` makes, its changes written to `out`,
/// fed the rows of `input` (values of `I`), must write the rows of `out` there and leave
/// each store of `stores` (name, rows) as it says. The driver is returned for anything else
/// the case checks.
fn case<I, O>(
    name: &str,
    topology: impl FnOnce(&mut StreamsBuilder) -> KTable<String, O>,
    input: &str,
    out: &str,
    stores: &[(&str, &str)],
) -> TopologyTestDriver
where
    I: DefaultSerde + FromStr,
    O: DefaultSerde + Clone + Display,
{
    let mut builder = StreamsBuilder::new();
    topology(&mut builder).to_stream().to("out");
    let driver = common::driver(&builder, "oracle");
    let topic = driver.create_input_topic::<String, I>("in");
    for (key, value, timestamp) in input.split_whitespace().map(parse) {
        topic.pipe_record(Record::from_parts(
            key,
            value,
            timestamp,
            Default::default(),
        ));
    }
    let written: Vec<String> = driver
        .create_output_topic::<String, O>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| row(r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(written.join(" "), out, "{name}");
    for (store, want) in stores {
        assert_eq!(
            self::store::<O>(&driver, store),
            *want,
            "{name}: store {store}"
        );
    }
    driver
}

/// The entries of timestamped store `name`, as rows on a line.
fn store<V: Display + 'static>(driver: &TopologyTestDriver, name: &str) -> String {
    let rows: Vec<String> = driver
        .timestamped_key_value_store::<String, V>(name)
        .expect("the store")
        .all()
        .expect("a scan")
        .map(|e| {
            let (k, v) = e.expect("an entry");
            row(Some(k), Some(v.value), v.timestamp)
        })
        .collect();
    rows.join(" ")
}

/// The store `name`, with the record cache when `cached`.
fn store_named<V>(name: &str, cached: bool) -> Materialized<String, V> {
    let materialized = Materialized::as_(name);
    if cached {
        materialized
    } else {
        materialized.with_caching_disabled()
    }
}

/// The store `name`, without the record cache.
fn uncached<V>(name: &str) -> Materialized<String, V> {
    store_named(name, false)
}

/// Out of order, a null key and a tombstone, for the stream aggregations.
const STREAM_INPUT: &str = "a=1@10 a=2@5 b=3@7 a=4@20 a=5@3 null=6@8 a=null@9";

#[test]
fn stream_count() {
    for cached in [false, true] {
        let name = if cached {
            "stream-count-cached"
        } else {
            "stream-count"
        };
        let driver = case::<i64, _>(
            name,
            |builder| {
                builder
                    .stream::<String, i64>("in")
                    .group_by_key()
                    .count_with(store_named("s", cached))
            },
            STREAM_INPUT,
            "a=1@10 a=2@10 b=1@7 a=3@20 a=4@20",
            &[("s", "a=4@20 b=1@7")],
        );
        assert_eq!(
            driver.dropped_records(),
            2,
            "the null key and the null value"
        );
    }
}

#[test]
fn stream_reduce_and_aggregate() {
    let reduced = |builder: &mut StreamsBuilder| {
        builder
            .stream::<String, i64>("in")
            .group_by_key()
            .reduce_with(|a, b| a + b, uncached("s"))
    };
    let aggregated = |builder: &mut StreamsBuilder| {
        builder
            .stream::<String, i64>("in")
            .group_by_key()
            .aggregate_with(|| 0, |_k, v, agg| agg + v, uncached("s"))
    };
    for (name, make) in [
        (
            "stream-reduce",
            &reduced as &dyn Fn(&mut StreamsBuilder) -> KTable<String, i64>,
        ),
        ("stream-aggregate", &aggregated),
    ] {
        let out = "a=1@10 a=3@10 b=3@7 a=7@20 a=12@20";
        case::<i64, _>(name, make, STREAM_INPUT, out, &[("s", "a=12@20 b=3@7")]);
    }
}

#[test]
fn table_count_takes_rows_back_from_their_old_group() {
    case::<String, _>(
        "table-count",
        |builder| {
            builder
                .table::<String, String>("in", uncached("t"))
                .group_by(|_k, v| (v.clone(), v.clone()))
                .count_with(uncached("s"))
        },
        "x=red@10 y=red@5 x=blue@20 z=blue@3 y=null@30 x=null@1",
        "red=1@10 red=2@10 red=1@20 blue=1@20 blue=2@20 red=0@30 blue=1@20",
        &[("s", "blue=1@20 red=0@30")],
    );
}

#[test]
fn table_reduce_and_aggregate_with_adder_and_subtractor() {
    for aggregate in [false, true] {
        let name = if aggregate {
            "table-aggregate"
        } else {
            "table-reduce"
        };
        case::<i64, _>(
            name,
            |builder| {
                let grouped = builder
                    .table::<String, i64>("in", uncached("t"))
                    .group_by(|key, value| (key[..1].to_string(), *value));
                if aggregate {
                    grouped.aggregate_with(|| 0, |_k, v, a| a + v, |_k, v, a| a - v, uncached("s"))
                } else {
                    grouped.reduce_with(|a, v| a + v, |a, v| a - v, uncached("s"))
                }
            },
            "a1=1@10 a2=2@5 a1=3@20 b1=4@3 a2=null@1",
            "a=1@10 a=3@10 a=5@20 b=4@3 a=3@20",
            &[("s", "a=3@20 b=4@3")],
        );
    }
}

#[test]
fn a_row_regrouped_under_its_own_key_is_one_change() {
    case::<i64, _>(
        "table-regroup-same-key",
        |builder| {
            builder
                .table::<String, i64>("in", uncached("t"))
                .group_by(|k, v| (k.clone(), *v))
                .reduce_with(|a, v| a + v, |a, v| a - v, uncached("s"))
        },
        "a=1@10 a=5@20 a=2@15 a=null@30",
        "a=1@10 a=5@20 a=2@20 a=0@30",
        &[("s", "a=0@30")],
    );
}

#[test]
fn a_table_source_forwards_deletes_of_absent_keys_unless_it_caches() {
    let input = "a=1@10 b=null@11 a=null@12 a=null@13";
    for cached in [false, true] {
        let (name, out) = if cached {
            ("table-source-delete-absent-cached", "a=1@10 a=null@12")
        } else {
            ("table-source-delete-absent", input)
        };
        let topology = |builder: &mut StreamsBuilder| {
            builder.table::<String, String>("in", store_named("t", cached))
        };
        case::<String, _>(name, topology, input, out, &[("t", "")]);
    }
}

#[test]
fn a_stream_to_a_table_keeps_the_latest_record_of_each_key() {
    case::<String, _>(
        "to-table",
        |builder| {
            builder
                .stream::<String, String>("in")
                .to_table_with(uncached("t"))
        },
        "a=1@10 a=2@5 b=null@7 a=null@8 null=3@9",
        "a=1@10 a=2@5 b=null@7 a=null@8",
        &[("t", "")],
    );
}

/// Rows that pass `keep…` and rows that do not, a key that never was, a tombstone.
const FILTER_INPUT: &str = "a=keep1@1 b=drop@2 a=drop@3 c=null@4 b=keep2@5";

#[test]
fn a_filter_of_a_materialized_table_sends_no_needless_tombstones() {
    case::<String, _>(
        "table-materialized-filter",
        |builder| {
            builder
                .table::<String, String>("in", uncached("t"))
                .filter(|_k, v| v.starts_with("keep"))
        },
        FILTER_INPUT,
        "a=keep1@1 a=null@3 b=keep2@5",
        &[("t", "a=drop@3 b=keep2@5")],
    );
}

#[test]
fn a_filter_of_a_table_kept_in_no_store_turns_each_failing_row_into_a_tombstone() {
    case::<String, _>(
        "table-unmaterialized-filter",
        |builder| {
            builder
                .table::<String, String>("in", Materialized::default())
                .filter(|_k, v| v.starts_with("keep"))
        },
        FILTER_INPUT,
        "a=keep1@1 b=null@2 a=null@3 c=null@4 b=keep2@5",
        &[],
    );
}

#[test]
fn a_grouping_after_a_filter_gives_the_table_a_store_for_its_old_values() {
    case::<String, _>(
        "table-filter-then-count",
        |builder| {
            builder
                .table::<String, String>("in", Materialized::default())
                .filter(|_k, v| v.starts_with("keep"))
                .group_by(|_k, v| (v[..4].to_string(), v.clone()))
                .count_with(uncached("s"))
        },
        FILTER_INPUT,
        "keep=1@1 keep=0@3 keep=1@5",
        &[("s", "keep=1@5")],
    );
}

#[test]
fn mapped_values_of_a_table_kept_in_no_store_pass_every_delete_on() {
    case::<String, _>(
        "table-mapvalues-unmaterialized",
        |builder| {
            builder
                .table::<String, String>("in", Materialized::default())
                .map_values(|v| v.to_uppercase())
        },
        "a=x@1 a=null@2 b=null@3",
        "a=X@1 a=null@2 b=null@3",
        &[],
    );
}

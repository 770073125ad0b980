//! The DSL's tables and aggregations record for record as Kafka Streams 4.4: every expected
//! record (key, value, timestamp, order, tombstones) and store entry below is what Kafka
//! Streams' own `TopologyTestDriver` gave for the same inputs and topology, as printed by
//! `benchmarks/kafka-streams`' `dev.homa.oracle.Oracle` (kept in `oracle-output.txt` there,
//! under the case's name).

mod common;

use homa::prelude::*;
use homa::processor::Record;
use homa::testing::TopologyTestDriver;

fn driver(builder: &StreamsBuilder) -> TopologyTestDriver {
    common::driver(builder, "oracle")
}

/// A record of a case: key, value, timestamp; `None` is null.
type Row<V> = (Option<&'static str>, Option<V>, i64);

fn pipe<V: homa::serde::DefaultSerde + Clone>(driver: &TopologyTestDriver, rows: &[Row<V>]) {
    let input = driver.create_input_topic::<String, V>("in");
    for (key, value, timestamp) in rows {
        input.pipe_record(Record::from_parts(
            key.map(str::to_string),
            value.clone(),
            *timestamp,
            Default::default(),
        ));
    }
}

fn out<V: homa::serde::DefaultSerde>(
    driver: &TopologyTestDriver,
) -> Vec<(Option<String>, Option<V>, i64)> {
    driver
        .create_output_topic::<String, V>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

fn expected<V>(rows: &[Row<V>]) -> Vec<(Option<String>, Option<V>, i64)>
where
    V: Clone,
{
    rows.iter()
        .map(|(k, v, t)| (k.map(str::to_string), v.clone(), *t))
        .collect()
}

/// The entries of timestamped store `name`: key, value, timestamp.
fn store<V: 'static>(driver: &TopologyTestDriver, name: &str) -> Vec<(String, V, i64)> {
    driver
        .timestamped_key_value_store::<String, V>(name)
        .expect("the store")
        .all()
        .expect("a scan")
        .map(|e| {
            let (k, v) = e.expect("an entry");
            (k, v.value, v.timestamp)
        })
        .collect()
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

/// Out of order, a null key and a tombstone, for the stream aggregations.
const STREAM_INPUT: [Row<i64>; 7] = [
    (Some("a"), Some(1), 10),
    (Some("a"), Some(2), 5),
    (Some("b"), Some(3), 7),
    (Some("a"), Some(4), 20),
    (Some("a"), Some(5), 3),
    (None, Some(6), 8),
    (Some("a"), None, 9),
];

#[test]
fn stream_count() {
    for cached in [false, true] {
        let mut builder = StreamsBuilder::new();
        let materialized = store_named("s", cached);
        builder
            .stream::<String, i64>("in")
            .group_by_key()
            .count_with(materialized)
            .to_stream()
            .to("out");
        let driver = driver(&builder);
        pipe(&driver, &STREAM_INPUT);
        assert_eq!(
            out::<i64>(&driver),
            expected(&[
                (Some("a"), Some(1), 10),
                (Some("a"), Some(2), 10),
                (Some("b"), Some(1), 7),
                (Some("a"), Some(3), 20),
                (Some("a"), Some(4), 20),
            ]),
            "cached: {cached}"
        );
        assert_eq!(
            store::<i64>(&driver, "s"),
            [("a".into(), 4, 20), ("b".into(), 1, 7)]
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
            .reduce_with(|a, b| a + b, Materialized::as_("s").with_caching_disabled())
    };
    let aggregated = |builder: &mut StreamsBuilder| {
        builder
            .stream::<String, i64>("in")
            .group_by_key()
            .aggregate_with(
                || 0,
                |_k, v, agg| agg + v,
                Materialized::as_("s").with_caching_disabled(),
            )
    };
    for make in [
        &reduced as &dyn Fn(&mut StreamsBuilder) -> KTable<String, i64>,
        &aggregated,
    ] {
        let mut builder = StreamsBuilder::new();
        make(&mut builder).to_stream().to("out");
        let driver = driver(&builder);
        pipe(&driver, &STREAM_INPUT);
        assert_eq!(
            out::<i64>(&driver),
            expected(&[
                (Some("a"), Some(1), 10),
                (Some("a"), Some(3), 10),
                (Some("b"), Some(3), 7),
                (Some("a"), Some(7), 20),
                (Some("a"), Some(12), 20),
            ])
        );
        assert_eq!(
            store::<i64>(&driver, "s"),
            [("a".into(), 12, 20), ("b".into(), 3, 7)]
        );
    }
}

#[test]
fn table_count_takes_rows_back_from_their_old_group() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in", Materialized::as_("t").with_caching_disabled())
        .group_by(|_k, v| (v.clone(), v.clone()))
        .count_with(Materialized::as_("s").with_caching_disabled())
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    let rows: [Row<String>; 6] = [
        (Some("x"), Some("red".into()), 10),
        (Some("y"), Some("red".into()), 5),
        (Some("x"), Some("blue".into()), 20),
        (Some("z"), Some("blue".into()), 3),
        (Some("y"), None, 30),
        (Some("x"), None, 1),
    ];
    pipe(&driver, &rows);
    assert_eq!(
        out::<i64>(&driver),
        expected(&[
            (Some("red"), Some(1), 10),
            (Some("red"), Some(2), 10),
            (Some("red"), Some(1), 20),
            (Some("blue"), Some(1), 20),
            (Some("blue"), Some(2), 20),
            (Some("red"), Some(0), 30),
            (Some("blue"), Some(1), 20),
        ])
    );
    assert_eq!(
        store::<i64>(&driver, "s"),
        [("blue".into(), 1, 20), ("red".into(), 0, 30)]
    );
}

#[test]
fn table_reduce_and_aggregate_with_adder_and_subtractor() {
    let input: [Row<i64>; 5] = [
        (Some("a1"), Some(1), 10),
        (Some("a2"), Some(2), 5),
        (Some("a1"), Some(3), 20),
        (Some("b1"), Some(4), 3),
        (Some("a2"), None, 1),
    ];
    for aggregate in [false, true] {
        let mut builder = StreamsBuilder::new();
        let grouped = builder
            .table::<String, i64>("in", Materialized::as_("t").with_caching_disabled())
            .group_by(|key, value| (key[..1].to_string(), *value));
        let store = Materialized::as_("s").with_caching_disabled();
        let table = if aggregate {
            grouped.aggregate_with(|| 0, |_k, v, a| a + v, |_k, v, a| a - v, store)
        } else {
            grouped.reduce_with(|a, v| a + v, |a, v| a - v, store)
        };
        table.to_stream().to("out");
        let driver = driver(&builder);
        pipe(&driver, &input);
        assert_eq!(
            out::<i64>(&driver),
            expected(&[
                (Some("a"), Some(1), 10),
                (Some("a"), Some(3), 10),
                (Some("a"), Some(5), 20),
                (Some("b"), Some(4), 3),
                (Some("a"), Some(3), 20),
            ]),
            "aggregate: {aggregate}"
        );
        assert_eq!(
            self::store::<i64>(&driver, "s"),
            [("a".into(), 3, 20), ("b".into(), 4, 3)]
        );
    }
}

#[test]
fn a_row_regrouped_under_its_own_key_is_one_change() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, i64>("in", Materialized::as_("t").with_caching_disabled())
        .group_by(|k, v| (k.clone(), *v))
        .reduce_with(
            |a, v| a + v,
            |a, v| a - v,
            Materialized::as_("s").with_caching_disabled(),
        )
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    let rows: [Row<i64>; 4] = [
        (Some("a"), Some(1), 10),
        (Some("a"), Some(5), 20),
        (Some("a"), Some(2), 15),
        (Some("a"), None, 30),
    ];
    pipe(&driver, &rows);
    assert_eq!(
        out::<i64>(&driver),
        expected(&[
            (Some("a"), Some(1), 10),
            (Some("a"), Some(5), 20),
            (Some("a"), Some(2), 20),
            (Some("a"), Some(0), 30),
        ])
    );
    assert_eq!(store::<i64>(&driver, "s"), [("a".into(), 0, 30)]);
}

#[test]
fn a_table_source_forwards_deletes_of_absent_keys_unless_it_caches() {
    let input: [Row<String>; 4] = [
        (Some("a"), Some("1".into()), 10),
        (Some("b"), None, 11),
        (Some("a"), None, 12),
        (Some("a"), None, 13),
    ];
    for cached in [false, true] {
        let mut builder = StreamsBuilder::new();
        let materialized = store_named("t", cached);
        builder
            .table::<String, String>("in", materialized)
            .to_stream()
            .to("out");
        let driver = driver(&builder);
        pipe(&driver, &input);
        let want: &[Row<String>] = if cached {
            &[(Some("a"), Some("1".into()), 10), (Some("a"), None, 12)]
        } else {
            &[
                (Some("a"), Some("1".into()), 10),
                (Some("b"), None, 11),
                (Some("a"), None, 12),
                (Some("a"), None, 13),
            ]
        };
        assert_eq!(out::<String>(&driver), expected(want), "cached: {cached}");
        assert!(store::<String>(&driver, "t").is_empty());
    }
}

#[test]
fn a_stream_to_a_table_keeps_the_latest_record_of_each_key() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("in")
        .to_table_with(Materialized::as_("t").with_caching_disabled())
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    pipe(
        &driver,
        &[
            (Some("a"), Some("1".to_string()), 10),
            (Some("a"), Some("2".into()), 5),
            (Some("b"), None, 7),
            (Some("a"), None, 8),
            (None, Some("3".into()), 9),
        ],
    );
    assert_eq!(
        out::<String>(&driver),
        expected(&[
            (Some("a"), Some("1".into()), 10),
            (Some("a"), Some("2".into()), 5),
            (Some("b"), None, 7),
            (Some("a"), None, 8),
        ])
    );
    assert!(store::<String>(&driver, "t").is_empty());
}

#[test]
fn a_filter_of_a_materialized_table_sends_no_needless_tombstones() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in", Materialized::as_("t").with_caching_disabled())
        .filter(|_k, v| v.starts_with("keep"))
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    pipe(
        &driver,
        &[
            (Some("a"), Some("keep1".to_string()), 1),
            (Some("b"), Some("drop".into()), 2),
            (Some("a"), Some("drop".into()), 3),
            (Some("c"), None, 4),
            (Some("b"), Some("keep2".into()), 5),
        ],
    );
    assert_eq!(
        out::<String>(&driver),
        expected(&[
            (Some("a"), Some("keep1".into()), 1),
            (Some("a"), None, 3),
            (Some("b"), Some("keep2".into()), 5),
        ])
    );
    assert_eq!(
        store::<String>(&driver, "t"),
        [
            ("a".into(), "drop".into(), 3),
            ("b".into(), "keep2".into(), 5)
        ]
    );
}

/// Rows that pass `keep…` and rows that do not, a key that never was, a tombstone.
fn filter_input() -> [Row<String>; 5] {
    [
        (Some("a"), Some("keep1".to_string()), 1),
        (Some("b"), Some("drop".into()), 2),
        (Some("a"), Some("drop".into()), 3),
        (Some("c"), None, 4),
        (Some("b"), Some("keep2".into()), 5),
    ]
}

#[test]
fn a_filter_of_a_table_kept_in_no_store_turns_each_failing_row_into_a_tombstone() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in", Materialized::default())
        .filter(|_k, v| v.starts_with("keep"))
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    pipe(&driver, &filter_input());
    assert_eq!(
        out::<String>(&driver),
        expected(&[
            (Some("a"), Some("keep1".into()), 1),
            (Some("b"), None, 2),
            (Some("a"), None, 3),
            (Some("c"), None, 4),
            (Some("b"), Some("keep2".into()), 5),
        ])
    );
}

#[test]
fn a_grouping_after_a_filter_gives_the_table_a_store_for_its_old_values() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in", Materialized::default())
        .filter(|_k, v| v.starts_with("keep"))
        .group_by(|_k, v| (v[..4].to_string(), v.clone()))
        .count_with(Materialized::as_("s").with_caching_disabled())
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    pipe(&driver, &filter_input());
    assert_eq!(
        out::<i64>(&driver),
        expected(&[
            (Some("keep"), Some(1), 1),
            (Some("keep"), Some(0), 3),
            (Some("keep"), Some(1), 5),
        ])
    );
    assert_eq!(store::<i64>(&driver, "s"), [("keep".into(), 1, 5)]);
}

#[test]
fn mapped_values_of_a_table_kept_in_no_store_pass_every_delete_on() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("in", Materialized::default())
        .map_values(|v| v.to_uppercase())
        .to_stream()
        .to("out");
    let driver = driver(&builder);
    pipe(
        &driver,
        &[
            (Some("a"), Some("x".to_string()), 1),
            (Some("a"), None, 2),
            (Some("b"), None, 3),
        ],
    );
    assert_eq!(
        out::<String>(&driver),
        expected(&[
            (Some("a"), Some("X".into()), 1),
            (Some("a"), None, 2),
            (Some("b"), None, 3),
        ])
    );
}

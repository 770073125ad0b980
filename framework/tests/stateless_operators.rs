//! Every stateless operator of `KStream`, through the test driver: values, null keys,
//! tombstones, timestamps and headers.

mod common;

use std::sync::{Arc, Mutex};

use homa::header::Headers;
use homa::prelude::*;
use homa::testing::TestOutputTopic;

fn driver(builder: &StreamsBuilder) -> TopologyTestDriver {
    common::driver(builder, "ops")
}

/// (key, value, timestamp) of every waiting record.
fn records<K: homa::serde::DefaultSerde, V: homa::serde::DefaultSerde>(
    out: &TestOutputTopic<'_, K, V>,
) -> Vec<(Option<K>, Option<V>, i64)> {
    out.read_records_to_list()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect()
}

/// (key, value, timestamp) of a record, `None` for null.
type Stamped = (Option<String>, Option<String>, i64);

/// Pipes `(key, value, timestamp)` rows through a stream that `consumed` reads from `in` and
/// writes to `stamped`; returns the driver and what it wrote.
fn stamped(
    consumed: homa::dsl::Consumed<String, String>,
    rows: &[(&str, &str, i64)],
) -> (TopologyTestDriver, Vec<Stamped>) {
    let mut builder = StreamsBuilder::new();
    builder.stream_with(&["in"], consumed).to("stamped");
    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, String>("in");
    for &(key, value, timestamp) in rows {
        input.pipe_input_with_timestamp(key.into(), value.into(), timestamp);
    }
    let written = records(&driver.create_output_topic("stamped"));
    (driver, written)
}

fn tombstone(key: &str, timestamp: i64) -> Record<String, String> {
    Record::from_parts(Some(key.to_string()), None, timestamp, Headers::new())
}

#[test]
fn map_and_select_key_rekey_and_drop_tombstones_with_a_count() {
    let mut builder = StreamsBuilder::new();
    let lines = builder.stream::<String, String>("in");
    lines
        .map(|_k, v| (v.len() as i64, v.to_uppercase()))
        .to("mapped");
    lines
        .select_key(|k, v| format!("{}/{v}", k.map_or("-", String::as_str)))
        .to("rekeyed");
    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, String>("in");
    input.pipe_input_with_timestamp("k".into(), "abc".into(), 5);
    input.pipe_record(Record::from_parts(
        None,
        Some("xy".to_string()),
        6,
        Headers::new(),
    ));
    input.pipe_record(tombstone("k", 7));

    let mapped = driver.create_output_topic::<i64, String>("mapped");
    assert_eq!(
        records(&mapped),
        [
            (Some(3), Some("ABC".into()), 5),
            (Some(2), Some("XY".into()), 6)
        ]
    );
    let rekeyed = driver.create_output_topic::<String, String>("rekeyed");
    assert_eq!(
        records(&rekeyed),
        [
            (Some("k/abc".into()), Some("abc".into()), 5),
            (Some("-/xy".into()), Some("xy".into()), 6)
        ]
    );
    assert_eq!(
        driver.dropped_records(),
        2,
        "the tombstone, once by map and once by select_key"
    );
}

#[test]
fn flat_map_and_flat_map_values_fan_out_keeping_timestamp_and_headers() {
    let mut builder = StreamsBuilder::new();
    let lines = builder.stream::<String, String>("in");
    lines
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .to("words");
    lines
        .flat_map(|k, line| {
            line.chars()
                .map(|c| (c.to_string(), k.cloned().unwrap_or_default()))
                .collect::<Vec<_>>()
        })
        .to("chars");
    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, String>("in");
    let mut headers = Headers::new();
    headers.add("trace", "t1");
    input.pipe_record(Record::from_parts(
        Some("k".into()),
        Some("a b".into()),
        9,
        headers,
    ));
    input.pipe_record(tombstone("k", 10));

    let words = driver.create_output_topic::<String, String>("words");
    let out = words.read_records_to_list();
    let got: Vec<_> = out
        .iter()
        .map(|r| (r.key.clone(), r.value.clone(), r.timestamp))
        .collect();
    assert_eq!(
        got,
        [
            (Some("k".into()), Some("a".into()), 9),
            (Some("k".into()), Some("b".into()), 9),
            (Some("k".into()), None, 10)
        ]
    );
    assert_eq!(out[1].headers.last_value("trace"), Some(&b"t1"[..]));
    let chars = driver.create_output_topic::<String, String>("chars");
    assert_eq!(
        chars.read_key_values_to_list(),
        [
            ("a".into(), "k".into()),
            (" ".into(), "k".into()),
            ("b".into(), "k".into())
        ]
    );
    assert_eq!(
        driver.dropped_records(),
        1,
        "the tombstone reaching flat_map"
    );
}

#[test]
fn peek_foreach_merge_and_process() {
    struct Count(i64);
    impl Processor<String, String, String, i64> for Count {
        fn process(
            &mut self,
            r: Record<String, String>,
            ctx: &mut ProcessorContext<String, i64>,
        ) -> Result<(), ProcessError> {
            self.0 += 1;
            ctx.forward(r.with_value(Some(self.0)))
        }
    }

    let peeked = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let mut builder = StreamsBuilder::new();
    let a = builder.stream::<String, String>("a");
    let b = builder.stream::<String, String>("b");
    let (p, s) = (peeked.clone(), seen.clone());
    let merged = a
        .merge(&b)
        .peek(move |_k, v| p.lock().unwrap().push(v.clone()));
    merged.foreach(move |k, v| s.lock().unwrap().push((k.cloned(), v.clone())));
    merged.process(|| Count(0)).to("counted");
    let driver = driver(&builder);
    driver
        .create_input_topic::<String, String>("a")
        .pipe_input_with_timestamp("x".into(), "1".into(), 1);
    driver
        .create_input_topic::<String, String>("b")
        .pipe_input_with_timestamp("y".into(), "2".into(), 2);
    driver
        .create_input_topic::<String, String>("b")
        .pipe_record(tombstone("z", 3));

    assert_eq!(*peeked.lock().unwrap(), ["1", "2"], "peek sees values only");
    assert_eq!(
        *seen.lock().unwrap(),
        [
            (Some("x".into()), "1".into()),
            (Some("y".into()), "2".into())
        ]
    );
    let counted = driver.create_output_topic::<String, i64>("counted");
    assert_eq!(
        records(&counted),
        [
            (Some("x".into()), Some(1), 1),
            (Some("y".into()), Some(2), 2),
            (Some("z".into()), Some(3), 3)
        ]
    );
    assert_eq!(driver.dropped_records(), 0);
}

#[test]
fn split_sends_each_record_to_the_first_matching_branch() {
    let mut builder = StreamsBuilder::new();
    let amounts = builder.stream::<String, i64>("amounts");
    let branches = amounts
        .split("amount-")
        .branch("small", |_k, v| *v < 10)
        .branch("medium", |_k, v| *v < 1_000)
        .default_branch("large");
    let mut names: Vec<_> = branches.keys().cloned().collect();
    names.sort();
    assert_eq!(names, ["amount-large", "amount-medium", "amount-small"]);
    for (name, stream) in &branches {
        stream.to(name);
    }
    let strict = amounts
        .split("strict-")
        .branch("even", |_k, v| v % 2 == 0)
        .no_default_branch();
    strict["strict-even"].to("even");
    let description = builder.build().expect("valid").describe().to_string();
    assert!(
        description.contains("Processor: amount-small (stores: [])"),
        "{description}"
    );

    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, i64>("amounts");
    for (i, amount) in [5, 500, 5_000, 8].into_iter().enumerate() {
        input.pipe_input_with_timestamp(format!("k{i}"), amount, 1);
    }
    input.pipe_record(Record::from_parts(
        Some("gone".to_string()),
        None,
        2,
        Headers::new(),
    ));
    let values = |topic: &str| -> Vec<Option<i64>> {
        let out = driver.create_output_topic::<String, i64>(topic);
        out.read_records_to_list()
            .into_iter()
            .map(|r| r.value)
            .collect()
    };
    assert_eq!(values("amount-small"), [Some(5), Some(8)]);
    assert_eq!(values("amount-medium"), [Some(500)]);
    assert_eq!(
        values("amount-large"),
        [Some(5_000), None],
        "the tombstone goes to the default branch"
    );
    assert_eq!(values("even"), [Some(500), Some(5_000), Some(8)]);
    assert_eq!(
        driver.dropped_records(),
        1,
        "the tombstone at the split without a default branch"
    );
}

#[test]
fn repartition_goes_through_an_internal_topic_within_one_pipe() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .select_key(|_k, page| page.clone())
        .repartition(homa::dsl::Repartitioned::as_("by-page"))
        .map_values(|page| page.len() as i64)
        .to("page-lengths");
    let topology = builder.build().expect("valid");
    assert_eq!(
        topology.topic_name("by-page-repartition", "ops"),
        "ops-by-page-repartition"
    );
    assert_eq!(topology.topic_name("clicks", "ops"), "clicks");
    assert_eq!(
        topology.describe().to_string(),
        "Topologies:
   Sub-topology: 0
    Source: KSTREAM-SOURCE-0000000000 (topics: [clicks])
      --> KSTREAM-KEY-SELECT-0000000001
    Processor: KSTREAM-KEY-SELECT-0000000001 (stores: [])
      --> by-page-repartition-sink
      <-- KSTREAM-SOURCE-0000000000
    Sink: by-page-repartition-sink (topic: by-page-repartition)
      <-- KSTREAM-KEY-SELECT-0000000001

   Sub-topology: 1
    Source: by-page-repartition-source (topics: [by-page-repartition])
      --> KSTREAM-MAPVALUES-0000000002
    Processor: KSTREAM-MAPVALUES-0000000002 (stores: [])
      --> KSTREAM-SINK-0000000003
      <-- by-page-repartition-source
    Sink: KSTREAM-SINK-0000000003 (topic: page-lengths)
      <-- KSTREAM-MAPVALUES-0000000002

"
    );

    let driver = driver(&builder);
    let clicks = driver.create_input_topic::<String, String>("clicks");
    let lengths = driver.create_output_topic::<String, i64>("page-lengths");
    clicks.pipe_input_with_timestamp("user-1".into(), "/home".into(), 3);
    // Read back from the repartition topic within the same pipe: the output is there.
    assert_eq!(records(&lengths), [(Some("/home".into()), Some(5), 3)]);
    let internal = driver.create_output_topic::<String, String>("ops-by-page-repartition");
    assert!(
        internal.is_empty(),
        "the driver consumed the repartition topic"
    );
}

#[test]
fn consumed_and_produced_override_serdes_and_names_and_topics_can_be_chosen_per_record() {
    use homa::dsl::{Consumed, Produced};
    use homa::serde::{Json, JsonSerde, RawBytesSerde};

    let mut builder = StreamsBuilder::new();
    let raw = builder.stream_with(
        &["raw"],
        Consumed::<Vec<u8>, Vec<u8>>::as_("raw-source").with_value_serde(RawBytesSerde),
    );
    raw.map_values(|bytes| Json(bytes.len())).to_with(
        "sizes",
        Produced::as_("sizes-sink").with_value_serde(JsonSerde::<usize>::default()),
    );
    let words = builder.stream::<String, String>("words");
    words.to_dynamic(
        |_k, v| format!("words-{}", v.map_or(0, String::len)),
        Produced::default(),
    );
    let description = builder.build().expect("valid").describe().to_string();
    assert!(
        description.contains("Source: raw-source (topics: [raw])"),
        "{description}"
    );
    assert!(
        description.contains("Sink: sizes-sink (topic: sizes)"),
        "{description}"
    );
    assert!(
        description.contains("(extractor: topic chosen per record)"),
        "{description}"
    );

    let driver = driver(&builder);
    driver
        .create_input_topic::<Vec<u8>, Vec<u8>>("raw")
        .pipe_input_with_timestamp(b"k".to_vec(), vec![1, 2, 3], 1);
    let sizes = driver.create_output_topic::<Vec<u8>, Vec<u8>>("sizes");
    assert_eq!(sizes.read_value(), Some(b"3".to_vec()), "written as JSON");
    let input = driver.create_input_topic::<String, String>("words");
    input.pipe_input("a".into(), "hi".into());
    input.pipe_input("b".into(), "hey".into());
    assert_eq!(
        driver
            .create_output_topic::<String, String>("words-2")
            .read_values_to_list(),
        ["hi"]
    );
    assert_eq!(
        driver
            .create_output_topic::<String, String>("words-3")
            .read_values_to_list(),
        ["hey"]
    );
}

#[test]
fn a_timestamp_extractor_sets_the_time_records_are_ordered_and_stamped_by() {
    use homa::dsl::Consumed;

    // Values are "<event time>:<text>"; the event time becomes the record's timestamp.
    let consumed =
        Consumed::<String, String>::default().with_timestamp_extractor(|record, partition_time| {
            let from_value = record
                .value
                .as_deref()
                .and_then(|v| v.split(':').next())
                .and_then(|t| t.parse().ok());
            from_value.unwrap_or(partition_time)
        });
    let rows = [
        ("a", "500:first", 1),
        ("b", "no time", 2),
        ("c", "-5:invalid", 3),
    ];
    let (driver, written) = stamped(consumed, &rows);
    let got: Vec<_> = written.into_iter().map(|(k, _, t)| (k, t)).collect();
    // "b" has no time in its value: it takes the partition time; "c" is negative: dropped.
    assert_eq!(got, [(Some("a".into()), 500), (Some("b".into()), 500)]);
    assert_eq!(driver.skipped_records(), 1);
}

#[test]
fn a_record_read_for_its_timestamp_is_not_read_again() {
    use homa::dsl::Consumed;
    use std::sync::atomic::{AtomicUsize, Ordering};

    let reads = Arc::new(AtomicUsize::new(0));
    let counted = reads.clone();
    let consumed = Consumed::<String, String>::default()
        .with_value_serde(common::HookedStrings::new(str::to_owned, move || {
            counted.fetch_add(1, Ordering::Relaxed);
        }))
        .with_timestamp_extractor(|record, _| {
            record.value.as_deref().map_or(0, |v| v.len() as i64 * 10)
        });
    let (_driver, written) = stamped(consumed, &[("a", "four", 1), ("b", "sixsix", 2)]);
    let got: Vec<_> = written.into_iter().map(|(_, v, t)| (v, t)).collect();
    assert_eq!(
        got,
        [(Some("four".into()), 40), (Some("sixsix".into()), 60)]
    );
    assert_eq!(reads.load(Ordering::Relaxed), 2, "each value read once");
}

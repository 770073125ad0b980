//! The joins record for record as Kafka Streams 4.4: each case runs the same topology and
//! input as the case of the same name of `benchmarks/kafka-streams`'
//! `dev.homa.oracle.JoinOracle`, and must print exactly what Kafka Streams' own
//! `TopologyTestDriver` printed there (kept in its `join-oracle-output.txt`): every record
//! of topic `out` in order (key, value, timestamp), then the records dropped.

mod common;

use std::time::Duration;

use homa::dsl::CogroupedKStream;
use homa::header::Headers;
use homa::prelude::*;

const ORACLE: &str = include_str!("../../benchmarks/kafka-streams/join-oracle-output.txt");

/// The lines the oracle printed for case `name`.
fn oracle(name: &str) -> Vec<String> {
    let header = format!("## {name}");
    let mut lines = ORACLE.lines().skip_while(|l| *l != header);
    assert!(
        lines.next().is_some(),
        "case {name} is in join-oracle-output.txt"
    );
    lines
        .take_while(|l| !l.starts_with("## "))
        .map(str::to_string)
        .collect()
}

/// A join of the streams `left` and `right`.
type Join = fn(
    &KStream<String, String>,
    &KStream<String, String>,
    JoinWindows,
    bool,
) -> KStream<String, String>;

fn show(value: Option<&String>) -> &str {
    value.map_or("null", String::as_str)
}

fn options(in_memory: bool) -> StreamJoined<String, String, String> {
    match in_memory {
        true => StreamJoined::default().in_memory(),
        false => StreamJoined::default(),
    }
}

fn inner(
    l: &KStream<String, String>,
    r: &KStream<String, String>,
    w: JoinWindows,
    in_memory: bool,
) -> KStream<String, String> {
    l.join_with(r, |a, b| format!("{a}+{b}"), w, options(in_memory))
}

fn left(
    l: &KStream<String, String>,
    r: &KStream<String, String>,
    w: JoinWindows,
    in_memory: bool,
) -> KStream<String, String> {
    l.left_join_with(r, |a, b| format!("{a}+{}", show(b)), w, options(in_memory))
}

fn outer(
    l: &KStream<String, String>,
    r: &KStream<String, String>,
    w: JoinWindows,
    in_memory: bool,
) -> KStream<String, String> {
    l.outer_join_with(
        r,
        |a, b| format!("{}+{}", show(a), show(b)),
        w,
        options(in_memory),
    )
}

/// Runs `join` within `windows` on `input` (`L:key=value@ts` into `left`, `R:...` into
/// `right`), its stores in RocksDB and in memory, and compares what it printed with the
/// oracle's case `name`.
fn case(name: &str, join: Join, windows: JoinWindows, input: &str) {
    for in_memory in [false, true] {
        let label = format!("{name} (in memory: {in_memory})");
        run(name, &label, input, |builder| {
            let l = builder.stream::<String, String>("left");
            let r = builder.stream::<String, String>("right");
            join(&l, &r, windows, in_memory)
        });
    }
}

/// Runs the topology `build` makes (its output written to `out`) on `input`, and compares
/// what it printed with the oracle's case `name`.
fn run(
    name: &str,
    label: &str,
    input: &str,
    build: impl FnOnce(&mut StreamsBuilder) -> KStream<String, String>,
) {
    run_with(name, label, input, true, None, build);
}

/// [`run`], the record caches on or off, then printing the timestamped store `store`.
fn run_with(
    name: &str,
    label: &str,
    input: &str,
    cached: bool,
    store: Option<&str>,
    build: impl FnOnce(&mut StreamsBuilder) -> KStream<String, String>,
) {
    let mut builder = StreamsBuilder::new();
    build(&mut builder).to("out");
    let mut config = StreamsConfig::builder().application_id("homa-oracle");
    if !cached {
        config = config.set("statestore.cache.max.bytes", "0");
    }
    let topology = builder.build().expect("a topology");
    let config = config.build().expect("a config");
    let driver = TopologyTestDriver::new(&topology, config).expect("a driver");
    let topics = [
        driver.create_input_topic::<String, String>("left"),
        driver.create_input_topic::<String, String>("right"),
    ];
    for row in input.split_whitespace() {
        let (side, row) = row.split_once(':').expect("a side");
        let (record, timestamp) = row.rsplit_once('@').expect("a timestamp");
        let (key, value) = record.split_once('=').expect("a key and a value");
        topics[usize::from(side == "R")].pipe_record(Record::from_parts(
            (key != "null").then(|| key.to_string()),
            (value != "null").then(|| value.to_string()),
            timestamp.parse().expect("a timestamp"),
            Headers::new(),
        ));
    }
    let mut printed: Vec<String> = driver
        .create_output_topic::<String, String>("out")
        .read_records_to_list()
        .into_iter()
        .map(|r| {
            format!(
                "out key={} value={} ts={}",
                show(r.key.as_ref()),
                show(r.value.as_ref()),
                r.timestamp
            )
        })
        .collect();
    if let Some(store) = store {
        let entries = driver
            .timestamped_key_value_store::<String, String>(store)
            .expect("the store")
            .all()
            .expect("a scan")
            .map(|entry| entry.expect("an entry"))
            .map(|(k, v)| format!("store {store} {k}={}@{}", v.value, v.timestamp))
            .collect::<Vec<_>>();
        printed.extend(entries);
    }
    printed.push(format!("dropped {}", driver.dropped_records()));
    assert_eq!(printed, oracle(name), "case {label}");
}

/// Runs the stream `left` joined (`left_join`: left-joined) with the table of `right` on
/// `input`, and compares with the oracle's case `name`.
fn table_case(name: &str, left_join: bool, input: &str) {
    run(name, name, input, |builder| {
        let l = builder.stream::<String, String>("left");
        let r = builder.table::<String, String>("right", Materialized::default());
        match left_join {
            true => l.left_join_table(&r, |a, c| format!("{a}+{}", show(c))),
            false => l.join_table(&r, |a, c| format!("{a}+{c}")),
        }
    });
}

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn no_grace(difference: u64) -> JoinWindows {
    JoinWindows::of_time_difference_with_no_grace(ms(difference))
}

fn with_grace(difference: u64, grace: u64) -> JoinWindows {
    JoinWindows::of_time_difference_and_grace(ms(difference), ms(grace))
}

#[test]
fn inner_joins_pair_records_within_the_windows() {
    case(
        "ss-inner-both-ways",
        inner,
        no_grace(100),
        "L:A=a1@10 R:A=b1@50 R:A=b2@120 L:A=a2@200",
    );
    case(
        "ss-inner-out-of-order-grace",
        inner,
        with_grace(100, 50),
        "L:A=a1@100 L:A=a2@50 L:A=a3@100 R:A=b1@80",
    );
    case(
        "ss-inner-asymmetric",
        inner,
        no_grace(50).before(ms(10)),
        "L:A=a1@100 R:A=b1@89 R:A=b2@90 R:A=b3@150 R:A=b4@151 L:A=a2@140",
    );
    case(
        "ss-inner-bounds",
        inner,
        no_grace(10),
        "L:A=a1@100 R:A=b1@110 R:A=b2@90 R:A=b3@89 R:A=b4@111 L:A=a2@95",
    );
}

#[test]
fn late_records_join_what_the_other_store_still_shows() {
    case(
        "ss-inner-late",
        inner,
        no_grace(10),
        "L:A=a1@0 L:A=a2@30 R:A=b1@5 L:A=a3@8 R:A=b2@9",
    );
    case(
        "ss-inner-zero-window",
        inner,
        no_grace(0),
        "L:A=a@5 R:A=b@5",
    );
    case(
        "ss-inner-zero-window-grace",
        inner,
        with_grace(0, 1),
        "L:A=a@5 R:A=b@5",
    );
}

#[test]
fn records_without_a_key_or_value_are_dropped_or_go_on_alone() {
    case(
        "ss-inner-nulls",
        inner,
        no_grace(100),
        "L:null=a@10 L:A=null@20 R:A=b@20",
    );
    case(
        "ss-left-nulls",
        left,
        no_grace(100),
        "L:null=a@10 R:null=b@10 L:A=null@10",
    );
    case(
        "ss-left-dropped-moves-time",
        left,
        no_grace(10),
        "L:A=a1@0 L:A=null@100 R:B=b@50 L:C=c@100",
    );
    case(
        "ss-outer-null-key",
        outer,
        no_grace(10),
        "R:null=b@5 L:null=a@6",
    );
}

#[test]
fn unmatched_records_are_emitted_once_their_windows_close() {
    case(
        "ss-left-after-close",
        left,
        with_grace(100, 10),
        "L:A=a1@0 R:B=b1@105 L:C=c1@110 R:B=b2@111 R:A=b3@50",
    );
    case(
        "ss-left-out-of-order-in-grace",
        left,
        with_grace(10, 20),
        "L:A=a1@100 L:B=b1@95 L:C=c1@85 R:C=x@90 R:Z=z@131",
    );
    case(
        "ss-outer-both-unmatched",
        outer,
        no_grace(10),
        "L:A=a1@5 R:B=b1@5 L:C=c1@6 R:D=d1@30",
    );
    case(
        "ss-left-zero-window",
        left,
        no_grace(0),
        "L:A=a@5 R:A=b@5 L:B=x@6",
    );
    case(
        "ss-outer-match-removes-held",
        outer,
        no_grace(10),
        "L:A=a1@0 R:A=b1@5 R:A=b2@30 L:X=x@41",
    );
    case(
        "ss-left-after-zero",
        left,
        no_grace(100).after(ms(0)),
        "L:A=a1@10 R:B=x@11 L:C=y@12",
    );
    case(
        "ss-outer-many",
        outer,
        with_grace(20, 5),
        "L:A=a1@10 L:B=b1@12 R:A=x1@15 R:C=c1@16 L:A=a2@14 R:A=x2@40 L:B=b2@44 R:B=y1@30 \
         L:D=d1@70 R:A=x3@71 L:C=c2@20 R:D=z1@100 L:E=e1@100 R:E=e2@100 L:A=a3@60 R:F=f1@200",
    );
}

/// A description's node lines with the lists in them sorted: Kafka Streams prints a
/// node's stores and neighbours from sets.
fn normalized(description: &str) -> Vec<String> {
    let sort = |list: &str| {
        let mut items: Vec<&str> = list.split(", ").collect();
        items.sort_unstable();
        items.join(", ")
    };
    description
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|line| {
            if let Some((head, list)) = line.split_once("(stores: [") {
                let list = list.trim_end_matches("])");
                return format!("{head}(stores: [{}])", sort(list));
            }
            for arrow in ["--> ", "<-- "] {
                if let Some(list) = line.strip_prefix(arrow) {
                    return format!("{arrow}{}", sort(list));
                }
            }
            line.to_string()
        })
        .collect()
}

#[test]
fn describe_names_join_nodes_and_stores_as_kafka_streams() {
    let mut builder = StreamsBuilder::new();
    let l = builder.stream::<String, String>("left");
    let r = builder.stream::<String, String>("right");
    let w = with_grace(100, 10);
    inner(&l, &r, w, false).to("inner");
    left(&l, &r, w, false).to("left-out");
    outer(&l, &r, w, false).to("outer");
    l.join_with(
        &r,
        |x, y| format!("{x}{y}"),
        w,
        StreamJoined::as_("named").and_store_name("stored"),
    )
    .to("named");
    l.outer_join_with(
        &r,
        |x, y| format!("{}{}", show(x), show(y)),
        w,
        StreamJoined::with_store_name("kept"),
    )
    .to("kept");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    let expected = oracle("ss-describe").join("\n");
    assert_eq!(normalized(&described), normalized(&expected));
}

#[test]
fn stream_records_join_the_tables_current_values() {
    let missing = "R:A=a1@10 L:A=x1@5 L:B=x2@6";
    let updates = "R:A=a1@1 L:A=x@2 R:A=a2@3 R:A=null@4 L:A=y@5 R:B=b1@9 L:B=z@3";
    let nulls = "R:A=a1@1 L:null=x@7 L:A=null@8 L:A=w@9";
    table_case("st-inner-missing", false, missing);
    table_case("st-left-missing", true, missing);
    table_case("st-inner-updates", false, updates);
    table_case("st-left-updates", true, updates);
    table_case("st-inner-nulls", false, nulls);
    table_case("st-left-nulls", true, nulls);
}

#[test]
fn describe_names_stream_table_joins_as_kafka_streams() {
    let mut builder = StreamsBuilder::new();
    let l = builder.stream::<String, String>("left");
    let r = builder.table::<String, String>("right", Materialized::default());
    l.join_table(&r, |x, y| format!("{x}{y}")).to("inner");
    l.left_join_table_with(&r, |x, y| format!("{x}{}", show(y)), Joined::as_("named"))
        .to("named");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    let expected = oracle("st-describe").join("\n");
    assert_eq!(normalized(&described), normalized(&expected));
}

/// The tables of `left` and `right` joined as `kind` says, into store `j` when
/// `materialized`, the caches on or off.
fn table_table_case(kind: &str, cached: bool, materialized: bool) {
    let tables = "L:A=a1@10 R:A=b1@5 L:A=a2@3 R:B=c1@7 R:A=null@20 L:A=null@15 L:B=null@8 \
        R:C=null@9 R:B=null@30 L:D=d1@40 R:D=d2@41 L:D=d3@42 R:D=d4@43 R:D=null@44 L:D=null@45";
    let mut name = format!("tt-{kind}{}", if cached { "" } else { "-uncached" });
    if materialized {
        name.push_str("-materialized");
    }
    let store = materialized.then_some("j");
    run_with(&name, &name, tables, cached, store, |builder| {
        let l = builder.table::<String, String>("left", Materialized::default());
        let r = builder.table::<String, String>("right", Materialized::default());
        let both = |x: &String, y: &String| format!("{x}+{y}");
        let left = |x: &String, y: Option<&String>| format!("{x}+{}", show(y));
        let either = |x: Option<&String>, y: Option<&String>| format!("{}+{}", show(x), show(y));
        let joined = match (kind, store) {
            ("inner", None) => l.join(&r, both),
            ("inner", Some(store)) => l.join_with(&r, both, Materialized::as_(store)),
            ("left", None) => l.left_join(&r, left),
            ("left", Some(store)) => l.left_join_with(&r, left, Materialized::as_(store)),
            (_, None) => l.outer_join(&r, either),
            (_, Some(store)) => l.outer_join_with(&r, either, Materialized::as_(store)),
        };
        joined.to_stream()
    });
}

#[test]
fn tables_join_into_a_table_of_both_sides_changes() {
    for kind in ["inner", "left", "outer"] {
        for cached in [true, false] {
            for materialized in [false, true] {
                table_table_case(kind, cached, materialized);
            }
        }
    }
}

#[test]
fn describe_names_table_table_joins_as_kafka_streams() {
    let mut builder = StreamsBuilder::new();
    let l = builder.table::<String, String>("left", Materialized::default());
    let r = builder.table::<String, String>("right", Materialized::default());
    l.join(&r, |x, y| format!("{x}{y}")).to_stream().to("inner");
    l.left_join_with(&r, |x, y| format!("{x}{}", show(y)), Materialized::as_("j"))
        .to_stream()
        .to("left-out");
    l.outer_join_with(
        &r,
        |x, y| format!("{}{}", show(x), show(y)),
        Materialized::default(),
    )
    .to_stream()
    .to("outer");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    let expected = oracle("tt-describe").join("\n");
    assert_eq!(normalized(&described), normalized(&expected));
}

/// Two streams cogrouped into one aggregate per key, into store `c`.
fn cogrouped(builder: &mut StreamsBuilder) -> KStream<String, String> {
    cogroup_of(builder)
        .aggregate_with(|| "0".to_string(), Materialized::as_("c"))
        .to_stream()
}

#[test]
fn cogrouped_streams_fold_into_one_aggregate() {
    let input = "L:A=1@10 R:A=2@5 L:B=3@7 R:A=4@20 L:null=5@21 R:B=null@22 L:A=6@3 R:C=7@30";
    run_with("cogroup", "cogroup", input, true, Some("c"), cogrouped);
    run_with(
        "cogroup-uncached",
        "cogroup-uncached",
        input,
        false,
        Some("c"),
        cogrouped,
    );
}

#[test]
fn describe_names_cogroups_as_kafka_streams() {
    let mut builder = StreamsBuilder::new();
    let one = builder.stream::<String, String>("left").group_by_key();
    let two = builder.stream::<String, String>("right").group_by_key();
    one.cogroup(|_k, v: &String, agg: String| format!("{agg}{v}"))
        .cogroup(&two, |_k, v: &String, agg: String| format!("{agg}{v}"))
        .aggregate(|| "0".to_string())
        .to_stream()
        .to("out");
    let topology = builder.build().expect("a topology");
    let described = topology.describe().to_string();
    let expected = oracle("cogroup-describe").join("\n");
    assert_eq!(normalized(&described), normalized(&expected));
}

/// The streams `left` and `right` cogrouped: `+` and `*` before each of their values.
fn cogroup_of(builder: &mut StreamsBuilder) -> CogroupedKStream<String, String> {
    let one = builder.stream::<String, String>("left").group_by_key();
    let two = builder.stream::<String, String>("right").group_by_key();
    one.cogroup(|_k, v: &String, agg: String| format!("{agg}+{v}"))
        .cogroup(&two, |_k, v: &String, agg: String| format!("{agg}*{v}"))
}

/// A windowed table's changes keyed `key@start/end`.
fn shown(table: KTable<Windowed<String>, String>) -> KStream<String, String> {
    table.to_stream().process(|| ShowWindow)
}

/// [`cogroup_of`] by tumbling windows of 10 ms with a grace of 5 ms.
fn cogrouped_by_window(builder: &mut StreamsBuilder) -> KStream<String, String> {
    shown(
        cogroup_of(builder)
            .windowed_by(TimeWindows::of_size_and_grace(ms(10), ms(5)))
            .aggregate_with(|| "0".to_string(), Materialized::as_("w")),
    )
}

#[test]
fn cogrouped_streams_fold_into_one_aggregate_per_window() {
    // A record is late by its own stream's time: the right stream's `A=6@8` goes into a
    // window the left stream's time has closed, and the left stream's `A=7@4` is dropped.
    let input = "L:A=1@1 R:A=2@5 L:A=3@12 R:B=4@3 L:A=5@30 R:A=6@8 L:A=7@4";
    run_with(
        "cogroup-tumbling",
        "cogroup-tumbling",
        input,
        true,
        None,
        cogrouped_by_window,
    );
    run_with(
        "cogroup-tumbling-uncached",
        "cogroup-tumbling-uncached",
        input,
        false,
        None,
        cogrouped_by_window,
    );
}

/// [`cogroup_of`] by sliding windows of 10 ms with a grace of 5 ms.
fn cogrouped_by_sliding_window(builder: &mut StreamsBuilder) -> KStream<String, String> {
    shown(
        cogroup_of(builder)
            .windowed_by(SlidingWindows::of_time_difference_and_grace(ms(10), ms(5)))
            .aggregate_with(|| "0".to_string(), Materialized::as_("w")),
    )
}

#[test]
fn cogrouped_streams_fold_into_one_aggregate_per_sliding_window() {
    let input = "L:A=1@1 R:A=2@5 L:A=3@12 R:B=4@3 L:A=5@30 R:A=6@20 L:A=7@14 R:A=8@26";
    for (case, cached) in [
        ("cogroup-sliding", true),
        ("cogroup-sliding-uncached", false),
    ] {
        run_with(case, case, input, cached, None, cogrouped_by_sliding_window);
    }
}

/// [`cogroup_of`] by sessions of a 5 ms gap and a grace of 5 ms, merged with `|`.
fn cogrouped_by_session(builder: &mut StreamsBuilder) -> KStream<String, String> {
    shown(
        cogroup_of(builder)
            .windowed_by(SessionWindows::of_inactivity_gap_and_grace(ms(5), ms(5)))
            .aggregate_with(
                || "0".to_string(),
                |_k, x, y| format!("{x}|{y}"),
                Materialized::as_("s"),
            ),
    )
}

#[test]
fn cogrouped_streams_fold_into_one_aggregate_per_session() {
    // The left stream's `A=7@2` is on time by its own stream's time (12) but not by the
    // store's (40): uncached, the store has dropped the session it would merge with.
    let input = "L:A=1@1 R:A=2@4 L:B=3@3 R:A=4@20 L:A=5@12 R:A=6@40 L:A=7@2 R:B=8@9";
    for (case, cached) in [
        ("cogroup-session", true),
        ("cogroup-session-uncached", false),
    ] {
        run_with(case, case, input, cached, None, cogrouped_by_session);
    }
}

/// Shows a windowed key as `key@start/end`, and a tombstone as `null`.
struct ShowWindow;

impl Processor<Windowed<String>, String, String, String> for ShowWindow {
    fn process(
        &mut self,
        record: Record<Windowed<String>, String>,
        ctx: &mut ProcessorContext<String, String>,
    ) -> Result<(), ProcessError> {
        let shown = record.key.as_ref().map(|key| {
            let window = key.window();
            format!("{}@{}/{}", key.key(), window.start(), window.end())
        });
        let value = Some(record.value.clone().unwrap_or_else(|| "null".to_string()));
        ctx.forward(record.with_key(shown).with_value(value))
    }
}

/// The oracle's foreign-key join inputs: the tables of `left` (orders, `customer:item`; no
/// customer without a colon) and `right` (customers).
const FK_INPUTS: [(&str, &str); 15] = [
    ("order-then-customer", "L:o1=c1:burger@10 R:c1=alice@20"),
    ("customer-newer", "R:c1=alice@30 L:o1=c1:burger@20"),
    (
        "fan-out",
        "R:c1=alice@1 L:o2=c1:fries@2 L:o1=c1:burger@3 L:o3=c2:soda@4 R:c1=alicia@5 R:c3=x@6 \
         L:o10=c1:tea@7 R:c1=al@8",
    ),
    (
        "fk-change",
        "R:c1=alice@1 R:c2=bob@2 L:o1=c1:burger@3 L:o1=c2:burger@4 R:c1=alice2@5 R:c2=bob2@6",
    ),
    (
        "fk-change-missing",
        "R:c1=alice@1 L:o1=c1:burger@2 L:o1=c9:burger@3 R:c9=zed@4",
    ),
    (
        "customer-deleted",
        "R:c1=alice@1 L:o1=c1:burger@2 L:o2=c1:fries@3 R:c1=null@4 R:c1=null@5 R:c1=alice3@6",
    ),
    (
        "order-deleted",
        "R:c1=alice@50 L:o1=c1:burger@10 L:o1=null@20 L:o1=null@30",
    ),
    (
        "no-foreign-key",
        "R:c1=alice@1 L:o1=burger@2 L:o1=c1:burger@3 L:o1=fries@4 L:o1=null@5",
    ),
    (
        "out-of-order",
        "R:c1=alice@100 L:o1=c1:burger@50 L:o1=c1:fries@200 R:c1=alex@60 L:o1=c1:soda@10",
    ),
    ("missing-customers", "L:o1=c8:a@1 L:o1=c8:b@2 L:o1=c9:b@3"),
    (
        "same-again",
        "R:c1=alice@1 L:o1=c1:burger@2 L:o1=c1:burger@3 R:c1=alice@4",
    ),
    ("empty-customer", "R:c1=@1 L:o1=c1:burger@2"),
    (
        "absent-deletes",
        "L:o1=null@1 R:c1=alice@2 L:o1=null@3 R:c2=null@4 L:o2=c2:a@5 R:c2=null@6",
    ),
    (
        "fk-change-and-back",
        "R:c1=alice@1 R:c2=bob@2 L:o1=c1:a@3 L:o1=c2:a@4 L:o1=c1:a@5 R:c2=bob2@6 R:c1=alice2@7",
    ),
    (
        "null-keys",
        "L:null=c1:a@1 R:null=x@2 R:c1=alice@3 L:o1=c1:b@4",
    ),
];

/// An order's customer: what comes before its colon, none without one.
fn customer_of(order: &str) -> Option<String> {
    order
        .split_once(':')
        .map(|(customer, _)| customer.to_string())
}

/// The orders of `left` joined (`left_join`: left-joined) by their customer with the
/// customers of `right`, kept in store `res` when `store` says.
fn foreign_key_joined(
    builder: &mut StreamsBuilder,
    left_join: bool,
    store: bool,
) -> KStream<String, String> {
    let orders = builder.table::<String, String>("left", Materialized::default());
    let customers = builder.table::<String, String>("right", Materialized::default());
    let materialized = match store {
        true => Materialized::as_("res"),
        false => Materialized::default(),
    };
    let extractor = |_: &String, order: &String| customer_of(order);
    let joined = match left_join {
        true => orders.left_join_on_foreign_key_with(
            &customers,
            extractor,
            |o, c| format!("{o}/{}", show(c)),
            TableJoined::default(),
            materialized,
        ),
        false => orders.join_on_foreign_key_with(
            &customers,
            extractor,
            |o, c| format!("{o}/{c}"),
            TableJoined::default(),
            materialized,
        ),
    };
    joined.to_stream()
}

#[test]
fn foreign_key_joins_join_as_kafka_streams() {
    for (input_name, input) in FK_INPUTS {
        for left_join in [false, true] {
            for cached in [true, false] {
                for store in [false, true] {
                    let case = format!(
                        "fk-{input_name}{}{}{}",
                        if left_join { "-left" } else { "" },
                        if cached { "" } else { "-uncached" },
                        if store { "-materialized" } else { "" }
                    );
                    run_with(
                        &case,
                        &case,
                        input,
                        cached,
                        store.then_some("res"),
                        |builder| foreign_key_joined(builder, left_join, store),
                    );
                }
            }
        }
    }
}

#[test]
fn describe_names_foreign_key_joins_as_kafka_streams() {
    for (case, named) in [("fk-describe", false), ("fk-describe-named", true)] {
        let mut builder = StreamsBuilder::new();
        let orders = builder.table::<String, String>("orders", Materialized::default());
        let customers = builder.table::<String, String>("customers", Materialized::default());
        let joined = match named {
            true => orders.join_on_foreign_key_with(
                &customers,
                |_, order| customer_of(order),
                |o, c| format!("{o}/{c}"),
                TableJoined::as_("oc"),
                Materialized::as_("res"),
            ),
            false => orders.left_join_on_foreign_key(
                &customers,
                |o: &String| customer_of(o),
                |o, c| format!("{o}/{}", show(c)),
            ),
        };
        joined.to_stream().to("out");
        let topology = builder.build().expect("a topology");
        let described = topology.describe().to_string();
        let expected = oracle(case).join("\n");
        assert_eq!(normalized(&described), normalized(&expected), "{case}");
    }
}

/// A record's customer: what comes before its bar, none for one starting `nomap`.
fn customer_key(order: &str) -> Option<String> {
    (!order.starts_with("nomap")).then(|| order.split('|').next().unwrap_or_default().to_string())
}

/// The stream `left` joined (`left_join`: left-joined) with the global table of `right`
/// (store `g`) by customer.
fn global_joined(builder: &mut StreamsBuilder, left_join: bool) -> KStream<String, String> {
    let orders = builder.stream::<String, String>("left");
    let customers = builder.global_table::<String, String>("right", Materialized::as_("g"));
    let selector = |_: Option<&String>, order: &String| customer_key(order);
    match left_join {
        true => orders.left_join_global(&customers, selector, |o, c| format!("{o}/{}", show(c))),
        false => orders.join_global(&customers, selector, |o, c| format!("{o}/{c}")),
    }
}

#[test]
fn streams_join_global_tables_as_kafka_streams() {
    let input = "L:o1=c1|a@10 R:c1=Alice@5 L:o2=c1|b@20 R:c1=null@30 L:o3=c1|c@25 R:c2=Bob@40 \
                 L:null=c2|d@41 L:o5=nomap|e@50 L:o6=null@60 R:null=NullKeyCust@70 R:c3=X@100 \
                 R:c3=Y@50 L:o7=c3|f@7 L:o8=c9|g@80";
    for (case, left_join) in [("global-inner", false), ("global-left", true)] {
        run_with(case, case, input, true, Some("g"), |builder| {
            global_joined(builder, left_join)
        });
    }
}

#[test]
fn describe_names_global_tables_as_kafka_streams() {
    for (case, stream_first) in [
        ("global-describe-stream-first", true),
        ("global-describe-table-first", false),
    ] {
        let mut builder = StreamsBuilder::new();
        let orders = stream_first.then(|| builder.stream::<String, String>("orders"));
        let customers =
            builder.global_table::<String, String>("customers", Materialized::default());
        let orders = orders.unwrap_or_else(|| builder.stream::<String, String>("orders"));
        orders
            .join_global(
                &customers,
                |_, order: &String| customer_key(order),
                |o, c| format!("{o}/{c}"),
            )
            .to("out");
        let topology = builder.build().expect("a topology");
        let described = topology.describe().to_string();
        let expected = oracle(case).join("\n");
        assert_eq!(normalized(&described), normalized(&expected), "{case}");
    }
}

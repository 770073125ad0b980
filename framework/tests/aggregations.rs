//! Tables and aggregations on the test driver: the word count of the state API, tables
//! from topics with tombstones, table filters and mapped values, reduce and aggregate, and
//! records an aggregation cannot use (null keys) dropped with a count.

mod common;

use homa::prelude::*;
use homa::testing::TopologyTestDriver;

fn driver(builder: &StreamsBuilder) -> TopologyTestDriver {
    common::driver(builder, "agg")
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
struct Store {
    city: String,
}

#[test]
fn word_count_with_the_state_api() {
    let mut builder = StreamsBuilder::new();
    let counts: KTable<String, i64> = builder
        .stream::<String, String>("words")
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by_with(|_k, word| word.clone(), Grouped::as_("by-word"))
        .count_with(Materialized::as_("word-counts"));
    counts.to_stream().to("word-counts-out");
    assert_eq!(counts.queryable_store_name(), Some("word-counts"));
    let stores: KTable<String, Json<Store>> =
        builder.table("stores", Materialized::as_("stores-by-id"));
    stores.to_stream().to("stores-out");

    let topology = builder.build().unwrap();
    assert_eq!(topology.internal_topics(), [("by-word-repartition", None)]);
    let changelogs: Vec<String> = topology
        .changelog_topics("agg")
        .into_iter()
        .map(|(t, _)| t)
        .collect();
    assert_eq!(
        changelogs,
        ["agg-word-counts-changelog", "agg-stores-by-id-changelog"]
    );

    let driver = driver(&builder);
    let words = driver.create_input_topic::<String, String>("words");
    words.pipe_input("a".into(), "the cat the hat".into());
    words.pipe_input("b".into(), "the end".into());
    let out = driver.create_output_topic::<String, i64>("word-counts-out");
    assert_eq!(
        out.read_key_values_to_list(),
        [
            ("the".to_string(), 1),
            ("cat".to_string(), 1),
            ("the".to_string(), 2),
            ("hat".to_string(), 1),
            ("the".to_string(), 3),
            ("end".to_string(), 1),
        ]
    );
    let store = driver
        .key_value_store::<String, i64>("word-counts")
        .unwrap();
    assert_eq!(store.get(&"the".to_string()).unwrap(), Some(3));
    let all: Vec<(String, i64)> = store.all().unwrap().map(Result::unwrap).collect();
    assert_eq!(all.len(), 4);
    let some: Vec<String> = store
        .range(&"cat".to_string(), &"hat".to_string())
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(some, ["cat", "end", "hat"]);

    // A table: the latest row per key; a tombstone deletes it and goes on as one.
    let input = driver.create_input_topic::<String, Json<Store>>("stores");
    let row = |city: &str| Json(Store { city: city.into() });
    input.pipe_input("s1".into(), row("Lyon"));
    input.pipe_input("s2".into(), row("Oslo"));
    input.pipe_input("s1".into(), row("Porto"));
    input.pipe_bytes(Some(b"s2"), None, 0);
    let rows = driver
        .key_value_store::<String, Json<Store>>("stores-by-id")
        .unwrap();
    assert_eq!(rows.get(&"s1".to_string()).unwrap(), Some(row("Porto")));
    assert_eq!(rows.get(&"s2".to_string()).unwrap(), None);
    let updates = driver
        .create_output_topic::<String, Json<Store>>("stores-out")
        .read_records_to_list();
    let values: Vec<Option<String>> = updates
        .into_iter()
        .map(|r| r.value.map(|s| s.0.city))
        .collect();
    assert_eq!(
        values,
        [
            Some("Lyon".to_string()),
            Some("Oslo".to_string()),
            Some("Porto".to_string()),
            None
        ]
    );
}

#[test]
fn reduce_and_aggregate_per_key_and_drop_null_keys_with_a_count() {
    let mut builder = StreamsBuilder::new();
    let amounts = builder.stream::<String, i64>("amounts");
    amounts
        .group_by_key()
        .reduce(|a, b| *a.max(b))
        .to_stream()
        .to("max");
    amounts
        .group_by_key()
        .aggregate_with(
            || 0_i64,
            |_k, v, sum| sum + v,
            Materialized::as_("sums").in_memory(),
        )
        .to_stream()
        .to("sums");
    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, i64>("amounts");
    input.pipe_input("x".into(), 5);
    input.pipe_input("y".into(), 1);
    input.pipe_input("x".into(), 3);
    input.pipe_input("x".into(), 9);
    // A null key has no group: dropped, counted.
    input.pipe_bytes(None, Some(&7_i64.to_be_bytes()), 0);
    let max = driver.create_output_topic::<String, i64>("max");
    assert_eq!(
        max.read_key_values_to_list(),
        [
            ("x".to_string(), 5),
            ("y".to_string(), 1),
            ("x".to_string(), 5),
            ("x".to_string(), 9)
        ]
    );
    let sums = driver.key_value_store::<String, i64>("sums").unwrap();
    assert_eq!(sums.get(&"x".to_string()).unwrap(), Some(17));
    assert_eq!(
        driver.dropped_records(),
        2,
        "the null key, once per aggregation"
    );
}

#[test]
fn table_filter_and_map_values_follow_each_row() {
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, i64>("stock", Materialized::as_("stock"))
        .filter(|_k, units| *units > 0)
        .map_values(|units| format!("{units} in stock"))
        .to_stream()
        .to("available");
    let driver = driver(&builder);
    let stock = driver.create_input_topic::<String, i64>("stock");
    stock.pipe_input("pen".into(), 3);
    stock.pipe_input("cup".into(), 0);
    stock.pipe_input("pen".into(), 0);
    let out = driver.create_output_topic::<String, String>("available");
    let rows: Vec<(Option<String>, Option<String>)> = out
        .read_records_to_list()
        .into_iter()
        .map(|r| (r.key, r.value))
        .collect();
    // The cup never matched: nothing. The pen stopped matching: a delete.
    assert_eq!(
        rows,
        [
            (Some("pen".to_string()), Some("3 in stock".to_string())),
            (Some("pen".to_string()), None)
        ]
    );
}

#[test]
fn a_stream_becomes_a_table_of_its_latest_values() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("status")
        .to_table_with(Materialized::as_("latest-status"))
        .to_stream()
        .to("status-changes");
    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, String>("status");
    input.pipe_input("a".into(), "up".into());
    input.pipe_input("b".into(), "up".into());
    input.pipe_input("a".into(), "down".into());
    input.pipe_bytes(Some(b"b"), None, 0);
    let latest = driver
        .key_value_store::<String, String>("latest-status")
        .unwrap();
    assert_eq!(
        latest.get(&"a".to_string()).unwrap().as_deref(),
        Some("down")
    );
    assert_eq!(latest.get(&"b".to_string()).unwrap(), None);
    let changes = driver.create_output_topic::<String, String>("status-changes");
    assert_eq!(changes.queue_size(), 4);
}

#[test]
fn the_record_cache_forwards_the_latest_value_per_key_per_commit() {
    let count = |materialized: Materialized<String, i64>| {
        let mut builder = StreamsBuilder::new();
        builder
            .stream::<String, String>("lines")
            .flat_map_values(|line| {
                line.split_whitespace()
                    .map(str::to_owned)
                    .collect::<Vec<_>>()
            })
            .group_by_key()
            .count_with(materialized)
            .to_stream()
            .to("words-per-key");
        let driver = driver(&builder);
        let lines = driver.create_input_topic::<String, String>("lines");
        lines.pipe_input("k".into(), "a b c".into());
        lines.pipe_input("j".into(), "d".into());
        let out = driver.create_output_topic::<String, i64>("words-per-key");
        let changelog = driver.create_output_topic::<String, i64>("agg-words-changelog");
        (out.read_key_values_to_list(), changelog.queue_size())
    };
    // The driver commits after each input record: the cache sends one update per key.
    let (cached, logged) = count(Materialized::as_("words"));
    assert_eq!(cached, [("k".to_string(), 3), ("j".to_string(), 1)]);
    assert_eq!(logged, 2, "one changelog write per key and commit");
    // Without a cache, every update goes downstream and to the changelog.
    let (uncached, logged) = count(Materialized::as_("words").with_caching_disabled());
    assert_eq!(
        uncached,
        [
            ("k".to_string(), 1),
            ("k".to_string(), 2),
            ("k".to_string(), 3),
            ("j".to_string(), 1)
        ]
    );
    assert_eq!(logged, 4);
}

#[test]
fn a_grouped_table_moves_rows_between_keys() {
    // Users and their region; the number of users per region follows every move.
    let mut builder = StreamsBuilder::new();
    let per_region = builder
        .table::<String, String>("users", Materialized::as_("users"))
        .group_by_with(
            |_user, region| (region.clone(), 1_i64),
            Grouped::as_("users-by-region"),
        )
        .count_with(Materialized::as_("users-per-region"));
    per_region.to_stream().to("region-counts");
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.internal_topics(),
        [("users-by-region-repartition", None)]
    );

    let driver = driver(&builder);
    let users = driver.create_input_topic::<String, String>("users");
    users.pipe_input("ann".into(), "north".into());
    users.pipe_input("bob".into(), "north".into());
    users.pipe_input("ann".into(), "south".into());
    users.pipe_bytes(Some(b"bob"), None, 0);
    let counts = driver
        .key_value_store::<String, i64>("users-per-region")
        .unwrap();
    assert_eq!(counts.get(&"north".to_string()).unwrap(), Some(0));
    assert_eq!(counts.get(&"south".to_string()).unwrap(), Some(1));
    let updates = driver.create_output_topic::<String, i64>("region-counts");
    assert_eq!(
        updates.read_key_values_to_list(),
        [
            ("north".to_string(), 1),
            ("north".to_string(), 2),
            ("north".to_string(), 1),
            ("south".to_string(), 1),
            ("north".to_string(), 0),
        ]
    );
}

#[test]
fn a_grouped_table_aggregates_with_adder_and_subtractor() {
    // Order totals per customer: an order whose amount changes replaces its old amount.
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, i64>("orders", Materialized::as_("orders"))
        .group_by(|order, amount| (order[..1].to_string(), *amount))
        .aggregate(|| 0_i64, |_, v, sum| sum + v, |_, v, sum| sum - v)
        .to_stream()
        .to("totals");
    let driver = driver(&builder);
    let orders = driver.create_input_topic::<String, i64>("orders");
    orders.pipe_input("a1".into(), 10);
    orders.pipe_input("a2".into(), 5);
    orders.pipe_input("a1".into(), 7);
    orders.pipe_input("b1".into(), 3);
    let totals = driver.create_output_topic::<String, i64>("totals");
    let last: std::collections::BTreeMap<String, i64> =
        totals.read_key_values_to_list().into_iter().collect();
    assert_eq!(last["a"], 12);
    assert_eq!(last["b"], 3);
}

#[test]
fn a_grouped_table_reduces_with_adder_and_subtractor() {
    // Each team's members in one string: a member who moves or leaves is taken out of the
    // old team's value.
    let mut builder = StreamsBuilder::new();
    builder
        .table::<String, String>("members", Materialized::as_("members"))
        .group_by(|name, team| (team.clone(), format!("{name};")))
        .reduce_with(
            |all, name| format!("{all}{name}"),
            |all, name| all.replacen(name.as_str(), "", 1),
            Materialized::as_("team-members").with_caching_disabled(),
        )
        .to_stream()
        .to("teams");
    let driver = driver(&builder);
    let members = driver.create_input_topic::<String, String>("members");
    members.pipe_input("ann".into(), "red".into());
    members.pipe_input("bob".into(), "red".into());
    members.pipe_input("ann".into(), "blue".into());
    members.pipe_bytes(Some(b"bob"), None, 0);
    let teams = driver.create_output_topic::<String, String>("teams");
    assert_eq!(
        teams.read_key_values_to_list(),
        [
            ("red".to_string(), "ann;".to_string()),
            ("red".to_string(), "ann;bob;".to_string()),
            ("red".to_string(), "bob;".to_string()),
            ("blue".to_string(), "ann;".to_string()),
            // The last member leaves: the reduced value stays (an empty team), as Kafka
            // Streams' reduce never deletes.
            ("red".to_string(), String::new()),
        ]
    );
    let store = driver
        .key_value_store::<String, String>("team-members")
        .unwrap();
    assert_eq!(
        store.get(&"blue".to_string()).unwrap().as_deref(),
        Some("ann;")
    );
    assert_eq!(store.get(&"red".to_string()).unwrap().as_deref(), Some(""));
}

#[test]
fn grouping_or_tabling_re_keyed_records_repartitions_them() {
    // Page views keyed by user, counted per page: `map` gives new keys, so `group_by_key`
    // must move the records to their page's partition first, as Kafka Streams does.
    let mut builder = StreamsBuilder::new();
    let views = builder.stream::<String, String>("views");
    views
        .map(|_user, page| (page.clone(), 1_i64))
        .filter(|_page, _one| true)
        .group_by_key_with(Grouped::as_("views-by-page"))
        .count_with(Materialized::as_("page-views"))
        .to_stream()
        .to("page-view-counts");
    // The latest page of each user, from records re-keyed by user name length: a table of
    // them repartitions too, named after its store.
    views
        .select_key(|user, _page| user.map_or(0, String::len) as i64)
        .to_table_with(Materialized::as_("latest-by-name-length"));
    // Records read with their key, or put back in place by `repartition`, need none.
    views
        .group_by_key()
        .count_with(Materialized::as_("views-per-user"));
    views
        .select_key(|_user, page| page.clone())
        .repartition(homa::dsl::Repartitioned::as_("by-page"))
        .group_by_key()
        .count_with(Materialized::as_("views-per-page-2"));

    let topology = builder.build().unwrap();
    let mut internal: Vec<&str> = topology.internal_topics().iter().map(|(t, _)| *t).collect();
    internal.sort_unstable();
    assert_eq!(
        internal,
        [
            "by-page-repartition",
            "latest-by-name-length-repartition",
            "views-by-page-repartition",
        ]
    );

    let driver = driver(&builder);
    let input = driver.create_input_topic::<String, String>("views");
    input.pipe_input("ann".into(), "home".into());
    input.pipe_input("bob".into(), "home".into());
    input.pipe_input("ann".into(), "cart".into());
    input.pipe_input("carol".into(), "home".into());
    let counts: std::collections::BTreeMap<String, i64> = driver
        .create_output_topic::<String, i64>("page-view-counts")
        .read_key_values_to_list()
        .into_iter()
        .collect();
    assert_eq!(counts["home"], 3);
    assert_eq!(counts["cart"], 1);
    let latest = driver
        .key_value_store::<i64, String>("latest-by-name-length")
        .unwrap();
    assert_eq!(latest.get(&3).unwrap().as_deref(), Some("cart"));
    assert_eq!(latest.get(&5).unwrap().as_deref(), Some("home"));
    let per_page = driver
        .key_value_store::<String, i64>("views-per-page-2")
        .unwrap();
    assert_eq!(per_page.get(&"home".to_string()).unwrap(), Some(3));
}

/// Writes strings upper-cased, reads them as they are: what went through it shows.
fn upper() -> common::HookedStrings {
    common::HookedStrings::new(str::to_uppercase, || ())
}

#[test]
fn grouped_serdes_write_the_repartition_and_key_the_store() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("words")
        .group_by_with(
            |_k, word| word.clone(),
            Grouped::as_("by-word").with_key_serde(upper()),
        )
        .count_with(Materialized::as_("counts"))
        .to_stream()
        .to("counts-out");
    // A table's grouping: its serdes write the changes through the repartition topic.
    builder
        .table::<String, String>("users", Materialized::as_("users"))
        .group_by_with(
            |_user, region| (region.clone(), region.clone()),
            Grouped::with(upper(), upper()),
        )
        .reduce_with(
            |a, b| format!("{a}+{b}").to_lowercase(),
            |a, _| a.clone(),
            Materialized::as_("regions"),
        )
        .to_stream()
        .to("regions-out");

    let driver = driver(&builder);
    let words = driver.create_input_topic::<String, String>("words");
    words.pipe_input("a".into(), "cat".into());
    words.pipe_input("b".into(), "cat".into());
    // The key came back from the repartition topic upper-cased.
    assert_eq!(
        driver
            .create_output_topic::<String, i64>("counts-out")
            .read_key_values_to_list(),
        [("CAT".to_string(), 1), ("CAT".to_string(), 2)]
    );
    // The store keys with the grouping's serde: "cat" is looked up as "CAT".
    let counts = driver.key_value_store::<String, i64>("counts").unwrap();
    assert_eq!(counts.get(&"cat".to_string()).unwrap(), Some(2));
    let raw: Vec<Vec<u8>> = counts
        .bytes()
        .range(None, None)
        .unwrap()
        .map(|e| e.unwrap().0)
        .collect();
    assert_eq!(raw, [b"CAT".to_vec()]);

    let users = driver.create_input_topic::<String, String>("users");
    users.pipe_input("ann".into(), "north".into());
    users.pipe_input("bob".into(), "north".into());
    assert_eq!(
        driver
            .create_output_topic::<String, String>("regions-out")
            .read_key_values_to_list(),
        // The record cache forwards what it stored, read back: written upper-cased.
        [
            ("NORTH".to_string(), "NORTH".to_string()),
            ("NORTH".to_string(), "NORTH+NORTH".to_string())
        ]
    );
    // `reduce` also keeps its values with the grouping's value serde.
    let regions = driver.key_value_store::<String, String>("regions").unwrap();
    let raw: Vec<Vec<u8>> = regions
        .bytes()
        .range(None, None)
        .unwrap()
        .map(|e| e.unwrap().1)
        .collect();
    assert_eq!(raw.len(), 1);
    assert!(raw[0].ends_with(b"NORTH+NORTH"), "{:?}", raw[0]);
}

#[test]
fn a_cached_aggregation_forwards_with_the_headers_of_the_last_update() {
    use homa::header::Headers;
    use homa::processor::Record;

    for cached in [true, false] {
        let mut builder = StreamsBuilder::new();
        let store = Materialized::as_("counts");
        let store = if cached {
            store
        } else {
            store.with_caching_disabled()
        };
        builder
            .stream::<String, String>("clicks")
            .group_by_key()
            .count_with(store)
            .to_stream()
            .to("counts-out");
        let driver = driver(&builder);
        let input = driver.create_input_topic::<String, String>("clicks");
        for (value, trace) in [("x", "t1"), ("y", "t2")] {
            let mut headers = Headers::new();
            headers.add("trace", trace);
            input.pipe_record(Record::from_parts(
                Some("a".to_string()),
                Some(value.to_string()),
                1,
                headers,
            ));
        }
        let traces: Vec<Option<Vec<u8>>> = driver
            .create_output_topic::<String, i64>("counts-out")
            .read_records_to_list()
            .into_iter()
            .map(|r| r.headers.last_value("trace").map(<[u8]>::to_vec))
            .collect();
        assert_eq!(
            traces,
            [Some(b"t1".to_vec()), Some(b"t2".to_vec())],
            "cached: {cached}"
        );
    }
}

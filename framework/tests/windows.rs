//! Windowed aggregations on the driver beyond the oracle's cases: the program as a
//! user writes it, store queries, the Processor API's window and session stores,
//! suppression across a restart and at its bounds, and the settings refused.

mod common;

use std::time::Duration;

use homa::prelude::*;
use homa::processor::Record;
use homa::state::StoreBuilder;
use homa::testing::TopologyTestDriver;

fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

/// Clicks per user in tumbling 10 s windows (grace 5 s), final counts suppressed.
fn clicks(builder: &mut StreamsBuilder) {
    let counts: KTable<Windowed<String>, i64> = builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
        .count_with(Materialized::as_("clicks-per-10s"));
    counts
        .suppress(Suppressed::until_window_closes(BufferConfig::unbounded()))
        .to_stream()
        .map(|wk, n| {
            let wk = wk.expect("a windowed key");
            (
                format!("{}@{}/{}", wk.key(), wk.window().start(), wk.window().end()),
                *n,
            )
        })
        .to("final-click-counts");
}

fn click(driver: &TopologyTestDriver, user: &str, at: i64) {
    driver
        .create_input_topic::<String, String>("clicks")
        .pipe_input_with_timestamp(user.to_string(), "click".to_string(), at);
}

fn finals(driver: &TopologyTestDriver) -> Vec<(String, i64)> {
    driver
        .create_output_topic::<String, i64>("final-click-counts")
        .read_key_values_to_list()
}

#[test]
fn final_counts_come_once_per_window_and_the_store_answers_queries() {
    let mut builder = StreamsBuilder::new();
    clicks(&mut builder);
    let driver = common::driver(&builder, "clicks");
    for (user, at) in [
        ("ann", 1_000),
        ("bob", 2_000),
        ("ann", 9_999),
        ("ann", 12_000),
    ] {
        click(&driver, user, at);
    }
    assert!(finals(&driver).is_empty(), "no window closed yet");
    // Stream time 15 s closes [0, 10 s) (end + grace); [10 s, 20 s) stays open.
    click(&driver, "bob", 15_000);
    assert_eq!(
        finals(&driver),
        [
            ("ann@0/10000".to_string(), 2),
            ("bob@0/10000".to_string(), 1)
        ]
    );
    let store = driver
        .window_store::<String, i64>("clicks-per-10s")
        .expect("the window store");
    assert_eq!(
        store.fetch(&"ann".to_string(), 0, 20_000).unwrap(),
        [(0, 2), (10_000, 1)]
    );
    assert_eq!(store.get(&"bob".to_string(), 10_000).unwrap(), Some(1));
    let all: Vec<(String, i64, i64)> = store
        .fetch_all(10_000, 10_000)
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.key().clone(), k.window().end(), v))
        .collect();
    assert_eq!(all, [("ann".into(), 20_000, 1), ("bob".into(), 20_000, 1)]);
    assert_eq!(store.all().unwrap().len(), 4);
    let timestamped = driver
        .timestamped_window_store::<String, i64>("clicks-per-10s")
        .unwrap();
    assert_eq!(
        timestamped
            .get(&"ann".to_string(), 0)
            .unwrap()
            .map(|v| v.timestamp),
        Some(9_999),
        "a window's aggregate is as new as its newest record"
    );
}

#[test]
fn suppressed_windows_survive_a_restart_and_still_come_once() {
    let mut builder = StreamsBuilder::new();
    clicks(&mut builder);
    let driver = common::driver(&builder, "clicks");
    click(&driver, "ann", 1_000);
    click(&driver, "ann", 2_000);
    click(&driver, "bob", 12_000);
    // Restarted on empty state: the store and the suppression buffer come back from their
    // changelogs.
    let driver = driver.restart().expect("a restart");
    click(&driver, "ann", 3_000);
    assert!(finals(&driver).is_empty());
    click(&driver, "bob", 15_000);
    assert_eq!(finals(&driver), [("ann@0/10000".to_string(), 3)]);
    let driver = driver.restart().expect("a second restart");
    click(&driver, "ann", 25_000);
    assert_eq!(finals(&driver), [("bob@10000/20000".to_string(), 2)]);
    assert!(finals(&driver).is_empty(), "each window once");
}

/// Counts of `windows` emitted when they close, kept an hour in the store, to
/// `final-click-counts` as `key@start/end`.
fn emitted_on_close(builder: &mut StreamsBuilder, windows: Windows) {
    let store = Materialized::as_("kept").with_retention(secs(3600));
    let grouped = builder.stream::<String, String>("clicks").group_by_key();
    let counts: KTable<Windowed<String>, i64> = match windows {
        Windows::Time(windows) => grouped
            .windowed_by(windows)
            .emit_strategy(EmitStrategy::on_window_close())
            .count_with(store),
        Windows::Sliding(windows) => grouped
            .windowed_by(windows)
            .emit_strategy(EmitStrategy::on_window_close())
            .count_with(store),
        Windows::Session(windows) => grouped
            .windowed_by(windows)
            .emit_strategy(EmitStrategy::on_window_close())
            .count_with(store),
    };
    counts
        .to_stream()
        .map(|wk, n| {
            let wk = wk.expect("a windowed key");
            let window = wk.window();
            (
                format!("{}@{}/{}", wk.key(), window.start(), window.end()),
                *n,
            )
        })
        .to("final-click-counts");
}

enum Windows {
    Time(TimeWindows),
    Sliding(SlidingWindows),
    Session(SessionWindows),
}

#[test]
fn windows_emitted_on_close_are_not_emitted_again_after_a_restart() {
    // The store keeps windows an hour: what was emitted is still there after the restart,
    // and only the close time the task committed keeps it from going out again.
    for (name, windows, first) in [
        (
            "tumbling",
            Windows::Time(TimeWindows::of_size_with_no_grace(secs(10))),
            "ann@0/10000",
        ),
        (
            "sliding",
            Windows::Sliding(SlidingWindows::of_time_difference_with_no_grace(secs(10))),
            "ann@0/10000",
        ),
        (
            "session",
            Windows::Session(SessionWindows::of_inactivity_gap_with_no_grace(secs(3))),
            "ann@1000/1000",
        ),
    ] {
        let mut builder = StreamsBuilder::new();
        emitted_on_close(&mut builder, windows);
        let mut driver = common::driver(&builder, "emit-final");
        click(&driver, "ann", 1_000);
        click(&driver, "bob", 30_000);
        assert_eq!(finals(&driver), [(first.to_string(), 1)], "{name}");
        let mut emitted = vec![first.to_string()];
        for restart in 0..3 {
            driver = driver.restart().expect("a restart");
            click(&driver, "carl", 31_000 + restart * 20_000);
            emitted.extend(finals(&driver).into_iter().map(|(k, _)| k));
        }
        let bob = match name {
            "tumbling" => "bob@30000/40000",
            "sliding" => "bob@20000/30000",
            _ => "bob@30000/30000",
        };
        let mut once = emitted.clone();
        once.sort();
        once.dedup();
        assert_eq!(once.len(), emitted.len(), "{name}: each once: {emitted:?}");
        assert!(emitted.contains(&bob.to_string()), "{name}: {emitted:?}");
    }
}

#[test]
fn a_full_buffer_emits_early_or_fails_as_configured() {
    // Rate-limited counts, at most one key held: the oldest leaves early.
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .count()
        .suppress(Suppressed::until_time_limit(
            secs(60),
            BufferConfig::max_records(1),
        ))
        .to_stream()
        .to("limited");
    let driver = common::driver(&builder, "limited");
    click(&driver, "ann", 1_000);
    click(&driver, "ann", 2_000);
    let limited = driver.create_output_topic::<String, i64>("limited");
    assert!(limited.is_empty(), "one key held, within the bound");
    click(&driver, "bob", 3_000);
    assert_eq!(limited.read_key_values_to_list(), [("ann".to_string(), 2)]);

    // Final results with a strict bound of one window: the second fails the task.
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_with_no_grace(secs(10)))
        .count()
        .suppress(Suppressed::until_window_closes(
            BufferConfig::max_records(1).shut_down_when_full(),
        ))
        .to_stream()
        .to("finals");
    let driver = common::driver(&builder, "strict");
    click(&driver, "ann", 1_000);
    let failed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        click(&driver, "bob", 2_000);
    }))
    .expect_err("the strict buffer is full");
    let message = failed.downcast_ref::<String>().cloned().unwrap_or_default();
    assert!(
        message.contains("buffer exceeded its max capacity: [2/1] records"),
        "{message}"
    );
}

#[test]
fn settings_that_cannot_hold_are_refused_when_the_topology_is_built() {
    let build = |f: &dyn Fn(&mut StreamsBuilder)| {
        let mut builder = StreamsBuilder::new();
        f(&mut builder);
        builder.build().expect_err("refused").to_string()
    };
    let err = build(&|b| {
        b.stream::<String, String>("in")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_and_grace(secs(10), secs(5)))
            .count_with(Materialized::as_("short").with_retention(secs(12)));
    });
    assert!(
        err.contains("state store short: its retention (12000 ms) must be at least")
            && err.contains("15000 ms"),
        "{err}"
    );
    let err = build(&|b| {
        b.stream::<String, String>("in")
            .group_by_key()
            .count_with(Materialized::as_("plain").with_retention(secs(12)));
    });
    assert!(
        err.contains("with_retention applies to the stores of windowed"),
        "{err}"
    );
    let err = build(&|b| {
        b.stream::<String, String>("in")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(secs(10)))
            .count()
            .suppress(Suppressed::until_window_closes(BufferConfig::max_records(
                5,
            )));
    });
    assert!(
        err.contains("until_window_closes needs a strict buffer"),
        "{err}"
    );
    let err = build(&|b| {
        b.stream::<String, String>("in")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(Duration::ZERO))
            .count_with(Materialized::as_("zero"));
    });
    assert!(err.contains("state store zero: its windows:"), "{err}");
}

#[test]
fn a_longer_retention_keeps_closed_windows_for_queries_and_in_memory_stores_work_alike() {
    for in_memory in [false, true] {
        let mut builder = StreamsBuilder::new();
        let store = Materialized::as_("kept").with_retention(secs(3600));
        let store = if in_memory { store.in_memory() } else { store };
        builder
            .stream::<String, String>("clicks")
            .group_by_key()
            .windowed_by(TimeWindows::of_size_with_no_grace(secs(10)))
            .count_with(store);
        let driver = common::driver(&builder, "kept");
        for at in [1_000, 11_000, 21_000, 500_000] {
            click(&driver, "ann", at);
        }
        // A late record for a closed window is dropped and counted, but the window stays.
        click(&driver, "ann", 2_000);
        assert_eq!(driver.dropped_records(), 1);
        let store = driver.window_store::<String, i64>("kept").unwrap();
        let starts: Vec<i64> = store
            .fetch(&"ann".to_string(), 0, i64::MAX)
            .unwrap()
            .into_iter()
            .map(|(start, _)| start)
            .collect();
        assert_eq!(
            starts,
            [0, 10_000, 20_000, 500_000],
            "in memory: {in_memory}"
        );
    }
}

#[test]
fn sessions_merge_and_are_queried_by_key() {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("usage")
        .group_by_key()
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(secs(5)))
        .aggregate_with(
            String::new,
            |_, action: &String, acc| acc + action,
            |_, a, b| a + &b,
            Materialized::as_("sessions"),
        )
        .to_stream()
        .to("session-actions");
    let driver = common::driver(&builder, "sessions");
    let usage = driver.create_input_topic::<String, String>("usage");
    usage.pipe_input_with_timestamp("u".into(), "o".into(), 1_000);
    usage.pipe_input_with_timestamp("u".into(), "s".into(), 12_000);
    usage.pipe_input_with_timestamp("u".into(), "e".into(), 7_000);
    let store = driver.session_store::<String, String>("sessions").unwrap();
    let sessions: Vec<(i64, i64, String)> = store
        .fetch(&"u".to_string())
        .unwrap()
        .into_iter()
        .map(|(k, v)| (k.window().start(), k.window().end(), v))
        .collect();
    assert_eq!(
        sessions,
        [(1_000, 1_000, "o".into()), (7_000, 12_000, "se".into())]
    );
    assert_eq!(
        store
            .fetch_session(&"u".to_string(), 7_000, 12_000)
            .unwrap(),
        Some("se".to_string())
    );
    // Written with the default serde of windowed keys, sessions keep Kafka Streams' layout
    // (key, end, start).
    let written = driver
        .create_output_topic::<Vec<u8>, String>("session-actions")
        .read_records_to_list();
    let merged = written.last().expect("the merged session");
    let mut expected = b"u".to_vec();
    expected.extend_from_slice(&12_000_i64.to_be_bytes());
    expected.extend_from_slice(&7_000_i64.to_be_bytes());
    assert_eq!(merged.key.as_deref(), Some(&expected[..]));
    assert_eq!(merged.timestamp, 12_000, "stamped with the session's end");
}

/// Keeps each reading in the window store `readings`, 10 s windows, duplicates kept, and
/// the sessions of each key in `visits`: the Processor API's stores.
struct Keep;

impl Processor<String, String, (), ()> for Keep {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<(), ()>,
    ) -> Result<(), ProcessError> {
        let key = record.key.clone().ok_or("a key")?;
        let readings = ctx.window_store::<String, String>("readings")?;
        let start = record.timestamp - record.timestamp % 10_000;
        readings.put(&key, record.value.as_ref(), start)?;
        let visits = ctx.session_store::<String, i64>("visits")?;
        let session = Windowed::new(key, Window::session(record.timestamp, record.timestamp));
        visits.put(&session, &1)?;
        Ok(())
    }
}

#[test]
fn the_processor_api_builds_window_and_session_stores() {
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("src", &["readings"])
        .unwrap();
    builder.add_processor("keep", || Keep, &["src"]).unwrap();
    builder
        .add_state_store(
            StoreBuilder::<String, String>::window("readings", secs(60), secs(10), true),
            &["keep"],
        )
        .unwrap();
    builder
        .add_state_store(
            StoreBuilder::<String, i64>::session("visits", secs(60)).in_memory(),
            &["keep"],
        )
        .unwrap();
    let driver = common::driver(&builder, "papi");
    let input = driver.create_input_topic::<String, String>("readings");
    input.pipe_input_with_timestamp("t".into(), "20.5".into(), 1_000);
    input.pipe_input_with_timestamp("t".into(), "21.0".into(), 2_000);
    input.pipe_input_with_timestamp("t".into(), "30.0".into(), 75_000);
    let readings = driver.window_store::<String, String>("readings").unwrap();
    let kept: Vec<(i64, String)> = readings.fetch(&"t".to_string(), 0, 100_000).unwrap();
    // Retention 60 s after stream time 75 s: the window of 0 s is gone.
    assert_eq!(kept, [(70_000, "30.0".to_string())]);
    let visits = driver.session_store::<String, i64>("visits").unwrap();
    assert_eq!(visits.fetch(&"t".to_string()).unwrap().len(), 1);
    let err = driver
        .key_value_store::<String, String>("readings")
        .expect_err("not a key-value store")
        .to_string();
    assert!(err.contains("holds a window store"), "{err}");
}

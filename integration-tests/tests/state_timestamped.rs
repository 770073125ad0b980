//! The DSL's timestamped stores against the real broker: an aggregation's changelog holds
//! the value alone with the aggregate's timestamp as the record's (Kafka Streams' layout),
//! and a store restored from it has the same values and timestamps.

use std::time::Duration;

use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};
use rdkafka::Message;

fn instance(
    topology: &Topology,
    app: &str,
    state: &std::path::Path,
) -> anyhow::Result<KafkaStreams> {
    let config = StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(kafka().bootstrap_servers())
        .state_dir(state)
        .commit_interval(Duration::from_millis(100))
        .build()?;
    let mut streams = KafkaStreams::new(topology, config)?;
    streams.start()?;
    Ok(streams)
}

#[test]
fn an_aggregations_changelog_and_restore_keep_kafka_streams_layout() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("stamped-in", 1)?;
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(&input)
        .group_by_key()
        .count_with(Materialized::as_("counts").with_caching_disabled());
    let topology = builder.build()?;
    let app = unique_name("stamped");
    let changelog = format!("{app}-counts-changelog");
    // Out of order: the count of `a` is as new as its newest record.
    kafka.produce_timed(
        &input,
        [
            ("a", "x", Some(1_000)),
            ("a", "x", Some(500)),
            ("b", "x", Some(700)),
        ],
    )?;
    let first_state = tempfile::tempdir()?;
    let mut first = instance(&topology, &app, first_state.path())?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while kafka.end_offsets(&changelog, 1).map_or(0, |e| e[0]) < 3 {
        anyhow::ensure!(std::time::Instant::now() < deadline, "no changelog records");
        std::thread::sleep(Duration::from_millis(50));
    }
    first.close(TIMEOUT)?;
    let mut logged = Vec::new();
    kafka.read_to_end(&changelog, 1, |m| {
        let key = String::from_utf8(m.key().unwrap_or_default().to_vec())?;
        let value = i64::from_be_bytes(m.payload().unwrap_or_default().try_into()?);
        logged.push((key, value, m.timestamp().to_millis().unwrap_or(-1)));
        Ok(())
    })?;
    assert_eq!(
        logged,
        [
            ("a".to_string(), 1, 1_000),
            ("a".to_string(), 2, 1_000),
            ("b".to_string(), 1, 700)
        ],
        "the value alone, the aggregate's timestamp as the record's"
    );

    // A fresh state directory: the store comes back from the changelog alone.
    let state = tempfile::tempdir()?;
    let mut restored = instance(&topology, &app, state.path())?;
    wait_for_state(&restored, State::Running)?;
    assert_eq!(restored.metrics().restored_records.get("counts"), Some(&3));
    let store = restored.store::<String, i64>("counts")?;
    let counts: Vec<(String, i64)> = store.all()?.collect::<Result<_, _>>()?;
    assert_eq!(counts, [("a".to_string(), 2), ("b".to_string(), 1)]);
    // The restored timestamps order what follows: a later record at 600 keeps `a` at 1000.
    kafka.produce_timed(&input, [("a", "x", Some(600))])?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    while kafka.end_offsets(&changelog, 1)?[0] < 4 {
        anyhow::ensure!(
            std::time::Instant::now() < deadline,
            "no fourth changelog record"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    restored.close(TIMEOUT)?;
    let mut last = None;
    kafka.read_to_end(&changelog, 1, |m| {
        last = Some((
            i64::from_be_bytes(m.payload().unwrap_or_default().try_into()?),
            m.timestamp().to_millis().unwrap_or(-1),
        ));
        Ok(())
    })?;
    assert_eq!(last, Some((3, 1_000)));
    Ok(())
}

#[test]
fn queries_read_through_the_record_cache_before_the_commit() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("cached-in", 1)?;
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(&input)
        .group_by_key()
        .count_with(Materialized::as_("counts"));
    let topology = builder.build()?;
    let app = unique_name("cached");
    let state = tempfile::tempdir()?;
    let config = StreamsConfig::builder()
        .application_id(&app)
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state.path())
        // No commit while the test looks: the counts are in the cache only.
        .commit_interval(Duration::from_secs(600))
        .set("metrics.recording.level", "DEBUG")
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    kafka.produce(&input, [("a", "x"), ("a", "x"), ("b", "x"), ("a", "x")])?;
    let deadline = std::time::Instant::now() + TIMEOUT;
    loop {
        let counts: Vec<(String, i64)> = streams
            .store::<String, i64>("counts")?
            .all()?
            .collect::<Result<_, _>>()?;
        if counts == [("a".to_string(), 3), ("b".to_string(), 1)] {
            break;
        }
        anyhow::ensure!(std::time::Instant::now() < deadline, "counts {counts:?}");
        std::thread::sleep(Duration::from_millis(50));
    }
    let changelog = format!("{app}-counts-changelog");
    assert_eq!(
        kafka.end_offsets(&changelog, 1)?,
        [0],
        "nothing written down yet"
    );
    streams.close(TIMEOUT)?;
    // The close's commit flushed the latest count of each key, once.
    assert_eq!(kafka.end_offsets(&changelog, 1)?, [2]);
    // The metered layer saw a read and a write per record, and timed each (DEBUG).
    let figures = streams.metrics().stores["counts"];
    assert_eq!(
        (figures.get.count, figures.put.count, figures.delete.count),
        (4, 4, 0),
        "{figures:?}"
    );
    assert_eq!(figures.get.timed, 4);
    assert!(figures.flush.count >= 1 && figures.flush.timed == figures.flush.count);
    assert!(figures.put.max_time >= figures.put.average_time().unwrap_or_default());
    Ok(())
}

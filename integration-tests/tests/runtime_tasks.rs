//! How the runtime runs its tasks, against the real broker: two stream threads in one
//! instance, static membership across a restart, `max.task.idle.ms` across co-partitioned
//! topics, pausing a partition whose task cannot take more records, and a restoration
//! longer than `max.poll.interval.ms`.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::counting::{BATCH, CountApp, KEYS, restored};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};

#[test]
fn two_stream_threads_share_an_instances_tasks() -> anyhow::Result<()> {
    let app = CountApp::new("two-threads")?;
    let state = tempfile::tempdir()?;
    let mut streams = app.instance_with(state.path(), &[("num.stream.threads", "2")])?;
    app.produce(0)?;
    app.wait_for_counts((BATCH / KEYS) as i64)?;
    wait_for_state(&streams, State::Running)?;
    let threads = streams.metadata_for_local_threads();
    assert_eq!(threads.len(), 2, "{threads:?}");
    let mut tasks: Vec<_> = threads
        .iter()
        .flat_map(|t| t.active_tasks.clone())
        .collect();
    assert!(
        threads.iter().all(|t| !t.active_tasks.is_empty()),
        "{threads:?}"
    );
    tasks.sort();
    assert_eq!(
        tasks.len(),
        4,
        "each of the 4 tasks on one thread: {threads:?}"
    );
    assert_eq!(kafka().group_members(&app.id)?, 2);
    streams.close(TIMEOUT)?;
    assert_eq!(streams.metrics().processed_records, BATCH as u64);
    Ok(())
}

#[test]
fn a_static_member_restarted_within_its_session_gets_its_tasks_and_state_back() -> anyhow::Result<()>
{
    let app = CountApp::new("static")?;
    let (state_a, state_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let settings = |id: &'static str| {
        [
            ("group.instance.id", id),
            ("consumer.session.timeout.ms", "30000"),
        ]
    };
    let mut a = app.instance_with(state_a.path(), &settings("a"))?;
    let b = app.instance_with(state_b.path(), &settings("b"))?;
    let b_states = Arc::new(Mutex::new(Vec::new()));
    let seen = b_states.clone();
    wait_for_state(&a, State::Running)?;
    wait_for_state(&b, State::Running)?;
    // Both members in, their assignment settled.
    kafka().wait_for_members(&app.id, 2)?;
    let deadline = Instant::now() + TIMEOUT;
    let tasks = |s: &KafkaStreams| -> Vec<_> {
        s.metadata_for_local_threads()
            .iter()
            .flat_map(|t| t.active_tasks.clone())
            .collect()
    };
    while tasks(&a).len() + tasks(&b).len() != 4 || a.state() != State::Running {
        ensure!(Instant::now() < deadline, "{:?} {:?}", tasks(&a), tasks(&b));
        std::thread::sleep(Duration::from_millis(50));
    }
    b.set_state_listener(move |from, to| seen.lock().expect("not poisoned").push((from, to)));
    app.produce(0)?;
    app.wait_for_counts((BATCH / KEYS) as i64)?;
    let a_tasks = tasks(&a);
    let b_tasks = tasks(&b);

    a.close(TIMEOUT)?;
    let mut a = app.instance_with(state_a.path(), &settings("a"))?;
    wait_for_state(&a, State::Running)?;
    let deadline = Instant::now() + TIMEOUT;
    while tasks(&a) != a_tasks {
        ensure!(
            Instant::now() < deadline,
            "restarted a has {:?}, had {a_tasks:?}",
            tasks(&a)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    app.produce(1)?;
    app.wait_for_counts(2 * (BATCH / KEYS) as i64)?;
    assert_eq!(restored(&a), 0, "its local state was used, not rebuilt");
    assert_eq!(tasks(&b), b_tasks, "b kept its tasks");
    let b_states = b_states.lock().expect("not poisoned").clone();
    assert!(b_states.is_empty(), "b never rebalanced: {b_states:?}");
    a.close(TIMEOUT)?;
    drop(b);
    Ok(())
}

/// A stream of the records of both `topics` (one source: co-partitioned), written to
/// `output` in the order they are processed.
fn merged(topics: [&str; 2], output: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    builder.stream_from::<String, String>(&topics).to(output);
    Ok(builder.build()?)
}

/// Runs [`merged`] with `idle` ms of `max.task.idle.ms`: `a` holds records at 10 and 30
/// when the instance starts, `b` gets one at 20 half a second later. Returns the values
/// in the order processed.
fn idle_order(idle: &str) -> anyhow::Result<Vec<String>> {
    let kafka = kafka();
    let (a, b) = (
        kafka.create_topic("idle-a", 1)?,
        kafka.create_topic("idle-b", 1)?,
    );
    let output = kafka.create_topic("idle-out", 1)?;
    kafka.produce_timed(&a, [("k", "a10", Some(10)), ("k", "a30", Some(30))])?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("idle"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .set("max.task.idle.ms", idle)
        .build()?;
    let mut streams = KafkaStreams::new(&merged([&a, &b], &output)?, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    std::thread::sleep(Duration::from_millis(500));
    kafka.produce_timed(&b, [("k", "b20", Some(20))])?;
    let values = kafka
        .consume(&output, 3)?
        .into_iter()
        .map(|(_, v)| String::from_utf8_lossy(&v).into_owned())
        .collect();
    streams.close(TIMEOUT)?;
    Ok(values)
}

#[test]
fn max_task_idle_holds_records_back_until_the_other_topic_has_some() -> anyhow::Result<()> {
    assert_eq!(idle_order("10000")?, ["a10", "b20", "a30"]);
    // Without idling, what is there is processed at once.
    assert_eq!(idle_order("0")?, ["a10", "a30", "b20"]);
    Ok(())
}

#[test]
fn a_partition_whose_task_waits_is_paused_at_the_buffer() -> anyhow::Result<()> {
    let kafka = kafka();
    let (a, b) = (
        kafka.create_topic("pause-a", 1)?,
        kafka.create_topic("pause-b", 1)?,
    );
    let output = kafka.create_topic("pause-out", 1)?;
    let records: Vec<(String, String)> = (0..20_000)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    kafka.produce(&a, records.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("pause"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(50))
        // The task waits for `b` all along, so `a`'s records pile up in its queue.
        .set("max.task.idle.ms", "600000")
        .set("buffered.records.per.partition", "100")
        .build()?;
    let mut streams = KafkaStreams::new(&merged([&a, &b], &output)?, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    let mut most = 0;
    let until = Instant::now() + Duration::from_secs(3);
    while Instant::now() < until {
        most = most.max(streams.metrics().buffered_records);
        std::thread::sleep(Duration::from_millis(20));
    }
    // Once 100 wait, the partition is paused: what one poll brought in (up to 1,000) is the
    // most that can be queued on top.
    assert!(most >= 100, "the queue filled up to the buffer: {most}");
    assert!(
        most <= 1_100,
        "{most} records queued, past the buffer and one poll"
    );
    assert_eq!(
        kafka.end_offsets(&output, 1)?,
        [0],
        "nothing processed while waiting"
    );
    kafka.produce(&b, [("k", "b")])?;
    // Once `b` has a record the task goes on, and `a` is resumed and fetched to its end:
    // every record of `a` is older than `b`'s. Then `a` is empty, and `b`'s record waits.
    let deadline = Instant::now() + TIMEOUT;
    let mut out = 0;
    while out < 20_000 {
        ensure!(Instant::now() < deadline, "{out} of 20000 records out");
        out = kafka.end_offsets(&output, 1)?[0];
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(kafka.end_offsets(&output, 1)?, [20_000]);
    streams.close(TIMEOUT)?;
    Ok(())
}

#[test]
fn a_restore_longer_than_max_poll_interval_keeps_the_thread_in_its_group() -> anyhow::Result<()> {
    let app = CountApp::new("long-restore")?;
    let first_state = tempfile::tempdir()?;
    // Each changelog record in a batch of its own, so that the restore below, fetching one
    // batch at a time, is slow.
    let mut first = app.instance_with(
        first_state.path(),
        &[
            ("producer.linger.ms", "0"),
            ("producer.batch.num.messages", "1"),
        ],
    )?;
    for batch in 0..6 {
        app.produce(batch)?;
    }
    app.wait_for_counts(6 * (BATCH / KEYS) as i64)?;
    first.close(TIMEOUT)?;
    let changelog = app.changelog_records();
    ensure!(
        changelog >= 6 * BATCH as i64,
        "{changelog} changelog records"
    );

    let state = tempfile::tempdir()?;
    let started = Instant::now();
    let streams = app.instance_with(
        state.path(),
        &[
            ("consumer.session.timeout.ms", "1000"),
            ("consumer.heartbeat.interval.ms", "300"),
            ("main.consumer.max.poll.interval.ms", "1000"),
            // One changelog batch of a partition per fetch, at most 1,000 bytes in all.
            ("restore.consumer.message.max.bytes", "1000"),
            ("restore.consumer.fetch.max.bytes", "1000"),
            ("restore.consumer.max.partition.fetch.bytes", "1"),
        ],
    )?;
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    streams.set_state_listener(move |from, to| seen.lock().expect("not poisoned").push((from, to)));
    wait_for_state(&streams, State::Running)?;
    let took = started.elapsed();
    assert!(
        took > Duration::from_secs(2),
        "the restore is meant to outlast max.poll.interval.ms twice; it took {took:?}"
    );
    // Restored once: a thread put out of its group would have started over.
    assert_eq!(restored(&streams), changelog as u64);
    assert_eq!(streams.metrics().restorations.get("counts"), Some(&4));
    let states = states.lock().expect("not poisoned").clone();
    assert!(
        !states.iter().any(|(_, to)| *to == State::Rebalancing),
        "the thread never left its group: {states:?}"
    );
    app.produce(6)?;
    app.wait_for_counts(7 * (BATCH / KEYS) as i64)?;
    drop(streams);
    Ok(())
}

/// The partition numbers of `topic` among `streams`' assigned partitions.
fn partitions_of(streams: &KafkaStreams, topic: &str) -> Vec<i32> {
    let mut partitions: Vec<i32> = streams
        .metadata_for_local_threads()
        .iter()
        .flat_map(|t| t.assigned_partitions.clone())
        .filter(|(t, _)| t == topic)
        .map(|(_, p)| p)
        .collect();
    partitions.sort_unstable();
    partitions
}

#[test]
fn the_consumer_group_protocol_keeps_co_partitioned_topics_together() -> anyhow::Result<()> {
    // KIP-848: the broker assigns the partitions. Its `range` assignor (which HOMA asks
    // for) gives each member the same partition numbers of every topic all members
    // subscribe to; its default (`uniform`) would not.
    let kafka = kafka();
    let (a, b) = (
        kafka.create_topic("kip848-a", 4)?,
        kafka.create_topic("kip848-b", 4)?,
    );
    let output = kafka.create_topic("kip848-out", 4)?;
    let topology = merged([&a, &b], &output)?;
    let app = unique_name("kip848");
    let instance = || -> anyhow::Result<KafkaStreams> {
        let config = StreamsConfig::builder()
            .application_id(&app)
            .bootstrap_servers(kafka.bootstrap_servers())
            .commit_interval(Duration::from_millis(100))
            .set("group.protocol", "consumer")
            .build()?;
        let mut streams = KafkaStreams::new(&topology, config)?;
        streams.start()?;
        Ok(streams)
    };
    let mut first = instance()?;
    wait_for_state(&first, State::Running)?;
    let mut second = instance()?;
    // Settled: every partition of both topics on one of the two, none on both.
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let (one, two) = (partitions_of(&first, &a), partitions_of(&second, &a));
        let mut all: Vec<i32> = one.iter().chain(&two).copied().collect();
        all.sort_unstable();
        if !one.is_empty() && !two.is_empty() && all == [0, 1, 2, 3] {
            break;
        }
        ensure!(Instant::now() < deadline, "not settled: {one:?} {two:?}");
        std::thread::sleep(Duration::from_millis(100));
    }
    for streams in [&first, &second] {
        assert_eq!(partitions_of(streams, &a), partitions_of(streams, &b));
    }
    let records: Vec<(String, String)> = (0..400)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    kafka.produce(&a, records.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    kafka.produce(&b, records.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    kafka.reader(&output)?.read_distinct(400)?;
    // Only what moved to the second instance closed on the first (incremental).
    let moved = 4 - partitions_of(&first, &a).len() as u64;
    first.close(TIMEOUT)?;
    second.close(TIMEOUT)?;
    let (one, two) = (first.metrics(), second.metrics());
    assert_eq!(one.tasks_created, 4, "{one:?}");
    assert_eq!(
        one.tasks_closed, 4,
        "moved {moved} and closed the rest at the end: {one:?}"
    );
    assert_eq!(two.tasks_created, moved, "{two:?}");
    assert_eq!(one.processed_records + two.processed_records, 800);
    Ok(())
}

#[test]
fn partitions_paused_when_revoked_are_fetched_again_after_the_rebalance() -> anyhow::Result<()> {
    let kafka = kafka();
    let (a, b) = (
        kafka.create_topic("repause-a", 2)?,
        kafka.create_topic("repause-b", 2)?,
    );
    let output = kafka.create_topic("repause-out", 2)?;
    let records: Vec<(String, String)> = (0..4_000)
        .map(|i| (format!("k{i}"), format!("v{i}")))
        .collect();
    kafka.produce(&a, records.iter().map(|(k, v)| (k.as_str(), v.as_str())))?;
    let app = unique_name("repause");
    let topology = merged([&a, &b], &output)?;
    let instance = |dir: &std::path::Path| -> anyhow::Result<KafkaStreams> {
        let config = StreamsConfig::builder()
            .application_id(&app)
            .bootstrap_servers(kafka.bootstrap_servers())
            .state_dir(dir)
            .commit_interval(Duration::from_millis(50))
            .set("consumer.session.timeout.ms", "6000")
            // The tasks wait for `b`, so `a`'s partitions fill their queues and pause.
            .set("max.task.idle.ms", "600000")
            .set("buffered.records.per.partition", "100")
            .build()?;
        Ok(KafkaStreams::new(&topology, config)?)
    };
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut first = instance(dirs[0].path())?;
    first.start()?;
    wait_for_state(&first, State::Running)?;
    let deadline = Instant::now() + TIMEOUT;
    while first.metrics().buffered_records < 200 {
        ensure!(Instant::now() < deadline, "the queues did not fill");
        std::thread::sleep(Duration::from_millis(20));
    }
    // A second instance joins: the first one's paused partitions are revoked, and it gets
    // one of them back. librdkafka would keep it paused; the task must fetch it again.
    let mut second = instance(dirs[1].path())?;
    second.start()?;
    wait_for_state(&second, State::Running)?;
    wait_for_state(&first, State::Running)?;
    // Records on both partitions of `b`, newer than all of `a`'s: `a` is processed to its
    // end, then `b`'s records wait for it.
    let keys: Vec<String> = (0..20).map(|i| format!("b{i}")).collect();
    kafka.produce(&b, keys.iter().map(|k| (k.as_str(), "b")))?;
    let mut out = 0;
    while out < 4_000 {
        ensure!(Instant::now() < deadline, "{out} of 4000 records of a out");
        out = kafka.end_offsets(&output, 2)?.iter().sum::<i64>();
        std::thread::sleep(Duration::from_millis(100));
    }
    second.close(TIMEOUT)?;
    first.close(TIMEOUT)?;
    Ok(())
}

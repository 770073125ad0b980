//! A stateless topology run by `KafkaStreams` against the real broker: 100,000 records of a
//! 4-partition topic filtered, mapped and split into two topics by two instances of one
//! application, each record landing in the right topic exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::ensure;
use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name};

const RECORDS: u64 = 100_000;

/// Keeps numbers not divisible by 10, doubles them, and splits them by the last digit of
/// the original: below 5 to `low`, the rest to `high`.
fn topology(input: &str, low: &str, high: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    let numbers = builder
        .stream::<String, String>(input)
        .filter(|_k, v| v.parse::<u64>().is_ok_and(|n| !n.is_multiple_of(10)))
        .map_values(|v| (v.parse::<u64>().unwrap_or(0) * 2).to_string());
    let branches = numbers
        .split("digit-")
        .branch("low", |_k, v| {
            v.parse::<u64>().is_ok_and(|n| (n / 2) % 10 < 5)
        })
        .default_branch("high");
    branches["digit-low"].to(low);
    branches["digit-high"].to(high);
    Ok(builder.build()?)
}

fn instance(
    topology: &Topology,
    app: &str,
    states: Arc<Mutex<Vec<State>>>,
) -> anyhow::Result<KafkaStreams> {
    let config = StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(kafka().bootstrap_servers())
        .commit_interval(Duration::from_millis(200))
        .set("consumer.session.timeout.ms", "10000")
        .build()?;
    let mut streams = KafkaStreams::new(topology, config)?;
    streams.set_state_listener(move |_, to| states.lock().expect("not poisoned").push(to));
    streams.set_uncaught_error_handler(|e| eprintln!("stream thread failed: {e}"));
    streams.start()?;
    Ok(streams)
}

/// Fresh topics (a 4-partition input, two outputs), an application id and its topology.
struct Setup {
    input: String,
    low: String,
    high: String,
    app: String,
    topology: Topology,
    states: Arc<Mutex<Vec<State>>>,
}

fn setup(app: &str) -> anyhow::Result<Setup> {
    let kafka = kafka();
    let input = kafka.create_topic("numbers", 4)?;
    let (low, high) = (
        kafka.create_topic("low", 4)?,
        kafka.create_topic("high", 4)?,
    );
    let topology = topology(&input, &low, &high)?;
    Ok(Setup {
        input,
        low,
        high,
        app: unique_name(app),
        topology,
        states: Arc::default(),
    })
}

#[test]
fn two_instances_filter_map_and_split_every_record_exactly_once() -> anyhow::Result<()> {
    let kafka = kafka();
    let Setup {
        input,
        low,
        high,
        app,
        topology,
        states,
    } = setup("stateless-app")?;
    let mut first = instance(&topology, &app, states.clone())?;
    let mut second = instance(&topology, &app, states.clone())?;
    // Both instances are members before the records come, so no rebalance happens while
    // they are processed and "exactly once" is a fair demand.
    kafka.wait_for_members(&app, 2)?;
    let deadline = Instant::now() + TIMEOUT;
    while [first.state(), second.state()] != [State::Running; 2] {
        ensure!(
            Instant::now() < deadline,
            "states {:?}",
            [first.state(), second.state()]
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    kafka.produce(
        &input,
        (0..RECORDS).map(|i| (format!("k{i}"), i.to_string())),
    )?;

    // Every 10th number is dropped; of the rest, last digits 1-4 go low and 5-9 high.
    let expected_low = RECORDS / 10 * 4;
    let expected_high = RECORDS / 10 * 5;
    let low_records = kafka.consume(&low, usize::try_from(expected_low)?)?;
    let high_records = kafka.consume(&high, usize::try_from(expected_high)?)?;
    assert!(
        first.close(TIMEOUT).is_ok() && second.close(TIMEOUT).is_ok(),
        "both instances stop in time"
    );

    let mut seen: BTreeMap<String, u32> = BTreeMap::new();
    for (records, is_low) in [(&low_records, true), (&high_records, false)] {
        for (key, value) in records {
            let key = String::from_utf8(key.clone())?;
            let n: u64 = key.trim_start_matches('k').parse()?;
            let doubled: u64 = String::from_utf8(value.clone())?.parse()?;
            ensure!(doubled == n * 2, "{key} has value {doubled}");
            ensure!(!n.is_multiple_of(10), "{key} should have been filtered out");
            ensure!(((n % 10) < 5) == is_low, "{key} is in the wrong topic");
            *seen.entry(key).or_default() += 1;
        }
    }
    assert_eq!(
        seen.len() as u64,
        expected_low + expected_high,
        "every kept record arrived"
    );
    let duplicates = seen.values().filter(|n| **n > 1).count();
    assert_eq!(duplicates, 0, "no record arrived twice");
    let states = states.lock().expect("not poisoned");
    assert!(states.contains(&State::Running), "{states:?}");
    assert_eq!(states.last(), Some(&State::NotRunning), "{states:?}");
    Ok(())
}

#[test]
fn a_missing_source_topic_is_an_error_naming_it() -> anyhow::Result<()> {
    let topology = topology("no-such-topic-anywhere", "a", "b")?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("missing"))
        .bootstrap_servers(kafka().bootstrap_servers())
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    let started = Instant::now();
    let err = streams
        .start()
        .expect_err("the topic does not exist")
        .to_string();
    assert!(err.contains("no-such-topic-anywhere"), "{err}");
    assert!(started.elapsed() < TIMEOUT);
    Ok(())
}

#[test]
fn a_closed_instance_hands_over_and_a_restart_resumes_from_committed_offsets() -> anyhow::Result<()>
{
    let kafka = kafka();
    let Setup {
        input,
        low,
        high,
        app,
        topology,
        states,
    } = setup("handover-app")?;
    let (low_count, high_count) = (
        usize::try_from(RECORDS / 10 * 4)?,
        usize::try_from(RECORDS / 10 * 5)?,
    );

    let mut first = instance(&topology, &app, states.clone())?;
    let mut second = instance(&topology, &app, states.clone())?;
    kafka.wait_for_members(&app, 2)?;
    kafka.produce(
        &input,
        (0..RECORDS).map(|i| (format!("k{i}"), i.to_string())),
    )?;
    let (mut low_reader, mut high_reader) = (kafka.reader(&low)?, kafka.reader(&high)?);
    // Mid-stream: once part of the output is there, the first instance leaves.
    low_reader.read_distinct(1)?;
    assert!(
        first.close(TIMEOUT).is_ok(),
        "the first instance stops in time"
    );
    kafka.wait_for_members(&app, 1)?;
    low_reader.read_distinct(low_count)?;
    high_reader.read_distinct(high_count)?;
    let (low_dups, high_dups) = (low_reader.duplicates(), high_reader.duplicates());
    // The first instance committed everything it had processed when it closed.
    assert_eq!(
        (low_dups, high_dups),
        (0, 0),
        "records processed twice after a clean handover"
    );
    assert!(
        second.close(TIMEOUT).is_ok(),
        "the second instance stops in time"
    );

    // A restart reads on from the committed offsets: of 1,000 new numbers 900 come out, and
    // nothing of the first 100,000 again.
    kafka.produce(
        &input,
        (RECORDS..RECORDS + 1_000).map(|i| (format!("k{i}"), i.to_string())),
    )?;
    let mut restarted = instance(&topology, &app, states.clone())?;
    low_reader.read_distinct(low_count + 400)?;
    high_reader.read_distinct(high_count + 500)?;
    low_reader.read_for(Duration::from_secs(2))?;
    high_reader.read_for(Duration::from_millis(100))?;
    assert!(
        restarted.close(TIMEOUT).is_ok(),
        "the restarted instance stops in time"
    );
    assert_eq!(
        low_reader.duplicates(),
        low_dups,
        "no reprocessing after a clean restart"
    );
    assert_eq!(
        high_reader.duplicates(),
        high_dups,
        "no reprocessing after a clean restart"
    );
    Ok(())
}

/// Visits (user, page) re-keyed by page through the repartition topic `by-page`.
fn by_page(input: &str, output: &str) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input)
        .select_key(|_user, page| page.clone())
        .repartition(homa::dsl::Repartitioned::as_("by-page"))
        .to(output);
    Ok(builder.build()?)
}

#[test]
fn a_repartition_creates_its_topic_and_groups_keys_by_partition() -> anyhow::Result<()> {
    use rdkafka::Message;
    use rdkafka::consumer::{BaseConsumer, Consumer};

    let kafka = kafka();
    let input = kafka.create_topic("visits", 4)?;
    let output = kafka.create_topic("visits-by-page", 4)?;
    let topology = by_page(&input, &output)?;
    let app = unique_name("repartition-app");
    let mut streams = instance(&topology, &app, Arc::default())?;
    kafka.produce(
        &input,
        (0..1_000).map(|i| (format!("user-{i}"), format!("/page-{}", i % 7))),
    )?;

    // Every record arrives re-keyed by page, and each page in exactly one partition.
    let consumer: BaseConsumer = kafka.consumer_config(&unique_name("check")).create()?;
    consumer.subscribe(&[&output])?;
    let mut partitions: BTreeMap<String, std::collections::BTreeSet<i32>> = BTreeMap::new();
    let mut count = 0;
    let deadline = Instant::now() + TIMEOUT;
    while count < 1_000 {
        ensure!(
            Instant::now() < deadline,
            "{count} of 1000 records after {TIMEOUT:?}"
        );
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message?;
            let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
            partitions
                .entry(key)
                .or_default()
                .insert(message.partition());
            count += 1;
        }
    }
    assert!(streams.close(TIMEOUT).is_ok());
    assert_eq!(partitions.len(), 7, "{partitions:?}");
    assert!(partitions.values().all(|p| p.len() == 1), "{partitions:?}");
    let internal = format!("{app}-by-page-repartition");
    let metadata = consumer.fetch_metadata(Some(&internal), Duration::from_secs(10))?;
    let topic = metadata
        .topics()
        .iter()
        .find(|t| t.name() == internal)
        .expect("listed");
    assert_eq!(
        (topic.error(), topic.partitions().len()),
        (None, 4),
        "{internal}"
    );
    Ok(())
}

/// A repartition topic is made as Kafka Streams makes it: records kept whatever their
/// timestamps (these are from 1970), and deleted by the application once it has committed
/// past them, every `repartition.purge.interval.ms`.
#[test]
fn a_repartition_topic_keeps_old_records_until_they_are_committed_then_is_purged()
-> anyhow::Result<()> {
    use rdkafka::consumer::Consumer;

    let kafka = kafka();
    let input = kafka.create_topic("old-visits", 2)?;
    let output = kafka.create_topic("old-visits-by-page", 2)?;
    let app = unique_name("purge-app");
    let config = StreamsConfig::builder()
        .application_id(&app)
        .bootstrap_servers(kafka.bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .set("repartition.purge.interval.ms", "200")
        .build()?;
    let mut streams = KafkaStreams::new(&by_page(&input, &output)?, config)?;
    streams.start()?;
    kafka.produce_timed(
        &input,
        (0..500).map(|i| (format!("user-{i}"), format!("/page-{}", i % 7), Some(i))),
    )?;
    assert_eq!(kafka.consume(&output, 500)?.len(), 500);

    let internal = format!("{app}-by-page-repartition");
    let configs = kafka.topic_configs(&internal)?;
    let expected = [
        ("cleanup.policy", "delete"),
        ("message.timestamp.type", "CreateTime"),
        ("retention.ms", "-1"),
        ("segment.bytes", "52428800"),
    ];
    for (key, value) in expected {
        assert_eq!(
            configs.get(key).map(String::as_str),
            Some(value),
            "{configs:?}"
        );
    }
    let ends = kafka.end_offsets(&internal, 2)?;
    assert_eq!(
        ends.iter().sum::<i64>(),
        500,
        "every record went through {internal}"
    );
    let watermarks = kafka.offsets_client()?;
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let starts = (0..2)
            .map(|p| Ok(watermarks.fetch_watermarks(&internal, p, TIMEOUT)?.0))
            .collect::<anyhow::Result<Vec<i64>>>()?;
        if starts == ends {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{internal} starts at {starts:?}, ends at {ends:?}: not purged"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    streams.close(TIMEOUT)?;
    Ok(())
}

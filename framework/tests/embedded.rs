//! `KafkaStreams` on the embedded Kafka (librdkafka's mock cluster): a count by a new key,
//! whose repartition topic and changelog the runtime creates through the embedded Kafka,
//! which has no CreateTopics API.

use std::time::{Duration, Instant};

use homa::prelude::*;
use homa::runtime::{EmbeddedKafka, KafkaStreams, State};
use rdkafka::ClientConfig;
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};

/// `builder`'s topology started as `app` on `kafka`, its state in `state`.
fn start(
    kafka: &EmbeddedKafka,
    builder: StreamsBuilder,
    app: &str,
    state: &std::path::Path,
) -> KafkaStreams {
    let config = StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state)
        .commit_interval(Duration::from_millis(100))
        .build()
        .expect("a config");
    let topology = builder.build().expect("a topology");
    let mut streams = KafkaStreams::new(&topology, config).expect("an instance");
    streams.start().expect("started");
    streams
}

fn producer(kafka: &EmbeddedKafka) -> ThreadedProducer<DefaultProducerContext> {
    ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .expect("a producer")
}

#[test]
fn an_aggregation_with_a_repartition_runs_on_the_embedded_kafka() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    kafka.create_topic("words", 2).unwrap();
    kafka.create_topic("counts", 2).unwrap();
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("words")
        .select_key(|_, word| word.clone())
        .group_by_key()
        .count()
        .to_stream()
        .to("counts");
    let state = tempfile::tempdir().unwrap();
    let mut streams = start(&kafka, builder, "embedded-count", state.path());

    let producer = producer(&kafka);
    for (i, word) in ["a", "b", "a", "c", "a", "b"].iter().enumerate() {
        let key = i.to_string();
        producer
            .send(BaseRecord::to("words").key(&key).payload(*word))
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();

    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .set("group.id", "embedded-count-check")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&["counts"]).unwrap();
    let mut last = std::collections::BTreeMap::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while last.values().sum::<i64>() != 6 {
        assert!(Instant::now() < deadline, "counts so far: {last:?}");
        if let Some(message) = consumer.poll(Duration::from_millis(100)) {
            let message = message.unwrap();
            let word = String::from_utf8(message.key().unwrap().to_vec()).unwrap();
            let count = i64::from_be_bytes(message.payload().unwrap().try_into().unwrap());
            last.insert(word, count);
        }
    }
    assert_eq!(streams.state(), State::Running);
    let expected = [("a", 3), ("b", 2), ("c", 1)].map(|(w, c)| (w.to_string(), c));
    assert_eq!(last, expected.into_iter().collect());
    streams.close(Duration::from_secs(30)).unwrap();
}

#[test]
fn records_later_than_their_windows_grace_are_counted_by_topic() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    kafka.create_topic("clicks", 1).unwrap();
    kafka.create_topic("clicks-per-minute", 1).unwrap();
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>("clicks")
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(60),
            Duration::from_secs(10),
        ))
        .count()
        .to_stream()
        .map(|k, v| (k.map(|w| w.key().clone()).unwrap_or_default(), *v))
        .to("clicks-per-minute");
    let state = tempfile::tempdir().unwrap();
    let mut streams = start(&kafka, builder, "embedded-late", state.path());
    let producer = producer(&kafka);
    // The third is 2 minutes behind stream time: its window closed 10 s after it ended.
    for time in [1_000_000, 1_200_000, 1_080_000, 1_195_000] {
        producer
            .send(
                BaseRecord::to("clicks")
                    .key("u")
                    .payload("c")
                    .timestamp(time),
            )
            .unwrap();
    }
    producer.flush(Duration::from_secs(10)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while streams.metrics().processed_records < 4 {
        assert!(Instant::now() < deadline, "{:?}", streams.metrics());
        std::thread::sleep(Duration::from_millis(50));
    }
    streams.close(Duration::from_secs(30)).unwrap();
    let metrics = streams.metrics();
    assert_eq!(metrics.dropped_records, 1, "{metrics:?}");
    let late: Vec<_> = metrics.late_records.into_iter().collect();
    assert_eq!(late, [("clicks".to_string(), 1)]);
}

#[test]
fn exactly_once_is_refused_on_the_embedded_kafka_whose_transactions_are_not_real() {
    let kafka = EmbeddedKafka::start(1).unwrap();
    kafka.create_topic("eos-in", 1).unwrap();
    let mut builder = StreamsBuilder::new();
    builder.stream::<String, String>("eos-in").to("eos-out");
    let state = tempfile::tempdir().unwrap();
    let config = StreamsConfig::builder()
        .application_id("embedded-eos")
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state.path())
        .set("processing.guarantee", "exactly_once_v2")
        .build()
        .expect("a config");
    let topology = builder.build().expect("a topology");
    let mut streams = KafkaStreams::new(&topology, config).expect("an instance");
    let err = streams.start().unwrap_err().to_string();
    assert!(err.contains("needs a real Kafka"), "{err}");
}

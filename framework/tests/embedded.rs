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
    let config = StreamsConfig::builder()
        .application_id("embedded-count")
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state.path())
        .commit_interval(Duration::from_millis(100))
        .build()
        .unwrap();
    let mut streams = KafkaStreams::new(&builder.build().unwrap(), config).unwrap();
    streams.start().unwrap();

    let producer: ThreadedProducer<DefaultProducerContext> = ClientConfig::new()
        .set("bootstrap.servers", kafka.bootstrap_servers())
        .create()
        .unwrap();
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

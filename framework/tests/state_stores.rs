//! State stores through the Processor API, on the test driver: a processor connected to a
//! store reaches it typed from its context; stores are per task, queried from the driver,
//! and shown by `describe()`.

use homa::prelude::*;
use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
use homa::state::{KeyValueStore, StoreBuilder, StoreError};
use homa::testing::TopologyTestDriver;

/// Counts words in a store and forwards each new count.
#[derive(Default)]
struct CountWords {
    counts: Option<KeyValueStore<String, i64>>,
}

impl Processor<String, String, String, i64> for CountWords {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> Result<(), ProcessError> {
        self.counts = Some(ctx.key_value_store("word-counts")?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<String, i64>,
    ) -> Result<(), ProcessError> {
        let counts = self.counts.as_ref().ok_or("not initialised")?;
        for word in record.value.iter().flat_map(|line| line.split_whitespace()) {
            let word = word.to_string();
            let count = counts.get(&word)?.unwrap_or(0) + 1;
            counts.put(&word, &count)?;
            ctx.forward(Record::new(word, count, record.timestamp))?;
        }
        Ok(())
    }
}

fn topology(store: StoreBuilder<String, i64>) -> Topology {
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("lines", &["lines"])
        .expect("the word-count example")
        .add_processor("count", CountWords::default, &["lines"])
        .expect("the word-count example")
        .add_state_store(store, &["count"])
        .expect("the word-count example")
        .add_sink::<String, i64>("out", "counts", &["count"])
        .expect("the word-count example");
    builder.build().expect("the word-count example")
}

fn driver(topology: &Topology) -> TopologyTestDriver {
    let config = StreamsConfig::builder()
        .application_id("words")
        .build()
        .expect("the word-count example");
    TopologyTestDriver::new(topology, config).expect("the word-count example")
}

fn count_words(store: StoreBuilder<String, i64>) {
    let topology = topology(store);
    let driver = driver(&topology);
    let lines = driver.create_input_topic::<String, String>("lines");
    let out = driver.create_output_topic::<String, i64>("counts");
    lines.pipe_input("l1".into(), "the cat and the hat".into());
    lines.pipe_input("l2".into(), "the end".into());
    assert_eq!(
        out.read_key_values_to_list(),
        [
            ("the".to_string(), 1),
            ("cat".to_string(), 1),
            ("and".to_string(), 1),
            ("the".to_string(), 2),
            ("hat".to_string(), 1),
            ("the".to_string(), 3),
            ("end".to_string(), 1),
        ]
    );
    // Every write went to the changelog, in order, on the task's partition.
    let changelog = driver.create_output_topic::<String, i64>("words-word-counts-changelog");
    let logged: Vec<(String, i64)> = changelog.read_key_values_to_list();
    assert_eq!(logged.len(), 7);
    assert_eq!(logged.last(), Some(&("end".to_string(), 1)));
    let counts = driver
        .key_value_store::<String, i64>("word-counts")
        .expect("the word-count example");
    assert_eq!(
        counts
            .get(&"the".to_string())
            .expect("the word-count example"),
        Some(3)
    );
    let all: Vec<(String, i64)> = counts
        .all()
        .expect("the word-count example")
        .map(Result::unwrap)
        .collect();
    assert_eq!(
        all,
        [
            ("and".to_string(), 1),
            ("cat".to_string(), 1),
            ("end".to_string(), 1),
            ("hat".to_string(), 1),
            ("the".to_string(), 3),
        ]
    );
}

#[test]
fn a_processor_counts_in_a_rocksdb_store() {
    count_words(StoreBuilder::key_value("word-counts"));
}

#[test]
fn a_processor_counts_in_an_in_memory_store() {
    count_words(StoreBuilder::key_value("word-counts").in_memory());
}

#[test]
fn describe_shows_the_store_of_the_processor() {
    let topology = topology(StoreBuilder::key_value("word-counts"));
    let text = topology.describe().to_string();
    assert!(
        text.contains("Processor: count (stores: [word-counts])"),
        "{text}"
    );
}

#[test]
fn stores_are_asked_for_with_their_types_and_by_connected_processors() {
    let topology = topology(StoreBuilder::key_value("word-counts"));
    let driver = driver(&topology);
    let err = driver
        .key_value_store::<String, String>("word-counts")
        .unwrap_err();
    assert!(matches!(err, StoreError::WrongTypes { .. }), "{err}");
    assert!(
        err.to_string()
            .starts_with("state store word-counts holds (alloc::string::String, i64)"),
        "{err}"
    );
    let err = driver.key_value_store::<String, i64>("nope").unwrap_err();
    assert_eq!(err.to_string(), "no state store nope in the topology");

    // A processor that asks for a store not connected to it fails its init, by name.
    struct Peeker;
    impl Processor<String, String, String, String> for Peeker {
        fn init(&mut self, ctx: &mut ProcessorContext<String, String>) -> Result<(), ProcessError> {
            ctx.key_value_store::<String, i64>("word-counts")?;
            Ok(())
        }
        fn process(
            &mut self,
            _: Record<String, String>,
            _: &mut ProcessorContext<String, String>,
        ) -> Result<(), ProcessError> {
            Ok(())
        }
    }
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("lines", &["lines"])
        .unwrap()
        .add_processor("count", CountWords::default, &["lines"])
        .unwrap()
        .add_processor("peek", || Peeker, &["lines"])
        .unwrap()
        .add_state_store(
            StoreBuilder::<String, i64>::key_value("word-counts"),
            &["count"],
        )
        .unwrap();
    let topology = builder.build().unwrap();
    let config = StreamsConfig::builder()
        .application_id("w")
        .build()
        .unwrap();
    let err = TopologyTestDriver::new(&topology, config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("processor peek has no state store word-counts"),
        "{err}"
    );
}

#[test]
fn a_store_needs_a_unique_name_and_existing_processors() {
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("lines", &["lines"])
        .unwrap()
        .add_processor("count", CountWords::default, &["lines"])
        .unwrap();
    let err = builder
        .add_state_store(StoreBuilder::<String, i64>::key_value("s"), &["missing"])
        .unwrap_err();
    assert!(err.to_string().contains("processor missing"), "{err}");
    let err = builder
        .add_state_store(StoreBuilder::<String, i64>::key_value("count"), &["count"])
        .unwrap_err();
    assert!(err.to_string().contains("\"count\" is used twice"), "{err}");
}

#[test]
fn an_unlogged_store_writes_no_changelog() {
    let topology = topology(StoreBuilder::key_value("word-counts").logging(false));
    let driver = driver(&topology);
    let lines = driver.create_input_topic::<String, String>("lines");
    lines.pipe_input("l1".into(), "a b".into());
    let changelog = driver.create_output_topic::<String, i64>("words-word-counts-changelog");
    assert!(changelog.is_empty());
    assert!(topology.changelog_topics("words").is_empty());
}

/// Writes 1 for the key of every record, then deletes it.
#[derive(Default)]
struct Forget(Option<KeyValueStore<String, i64>>);

impl Processor<String, String, String, i64> for Forget {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> Result<(), ProcessError> {
        self.0 = Some(ctx.key_value_store("word-counts")?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        _: &mut ProcessorContext<String, i64>,
    ) -> Result<(), ProcessError> {
        let store = self.0.as_ref().ok_or("not initialised")?;
        if let Some(key) = &record.key {
            store.put(key, &1)?;
            store.delete(key)?;
        }
        Ok(())
    }
}

#[test]
fn a_delete_logs_a_tombstone_with_the_record_timestamp() {
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("lines", &["lines"])
        .unwrap()
        .add_processor("forget", Forget::default, &["lines"])
        .unwrap()
        .add_state_store(
            StoreBuilder::<String, i64>::key_value("word-counts"),
            &["forget"],
        )
        .unwrap();
    let topology = builder.build().unwrap();
    assert_eq!(
        topology.changelog_topics("words"),
        [("words-word-counts-changelog".to_string(), 0)]
    );
    let driver = driver(&topology);
    driver
        .create_input_topic::<String, String>("lines")
        .pipe_input_with_timestamp("k".into(), "v".into(), 42);
    let logged: Vec<(Option<String>, Option<i64>, i64)> = driver
        .create_output_topic::<String, i64>("words-word-counts-changelog")
        .read_records_to_list()
        .into_iter()
        .map(|r| (r.key, r.value, r.timestamp))
        .collect();
    assert_eq!(
        logged,
        [
            (Some("k".to_string()), Some(1), 42),
            (Some("k".to_string()), None, 42)
        ]
    );
    let store = driver
        .key_value_store::<String, i64>("word-counts")
        .unwrap();
    assert_eq!(store.get(&"k".to_string()).unwrap(), None);
}

#[test]
fn a_caching_store_of_the_processor_api_writes_the_latest_of_each_key_at_the_commit() {
    // "a a a b" counts `a` three times in one record: cached, the changelog (which the
    // driver's commit after each record flushes to) gets each key's last count once.
    let changelog = |caching: bool| {
        let topology = topology(StoreBuilder::key_value("word-counts").caching(caching));
        let driver = driver(&topology);
        driver
            .create_input_topic::<String, String>("lines")
            .pipe_input_with_timestamp("l1".into(), "a a a b".into(), 7);
        let counts = driver
            .key_value_store::<String, i64>("word-counts")
            .unwrap();
        assert_eq!(counts.get(&"a".to_string()).unwrap(), Some(3));
        driver
            .create_output_topic::<String, i64>("words-word-counts-changelog")
            .read_records_to_list()
            .into_iter()
            .map(|r| {
                (
                    r.key.unwrap_or_default(),
                    r.value.unwrap_or(-1),
                    r.timestamp,
                )
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        changelog(false),
        [
            ("a".to_string(), 1, 7),
            ("a".to_string(), 2, 7),
            ("a".to_string(), 3, 7),
            ("b".to_string(), 1, 7)
        ]
    );
    assert_eq!(
        changelog(true),
        [("a".to_string(), 3, 7), ("b".to_string(), 1, 7)]
    );
}

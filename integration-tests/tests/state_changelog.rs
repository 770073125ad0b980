//! A Processor API count over a logged RocksDB store, run by `KafkaStreams` against the real
//! broker: the application creates the store's changelog topic (compacted, a partition per
//! task) and every write lands in it, on the partition of the task that made it.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
use homa::runtime::KafkaStreams;
use homa::state::{KeyValueStore, StoreBuilder};
use homa_integration_tests::{TIMEOUT, kafka, unique_name};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

const RECORDS: usize = 2_000;
const KEYS: usize = 40;

/// Counts records per key in the store `counts`.
#[derive(Default)]
struct CountKeys(Option<KeyValueStore<String, i64>>);

impl Processor<String, String, String, i64> for CountKeys {
    fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> Result<(), ProcessError> {
        self.0 = Some(ctx.key_value_store("counts")?);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<String, String>,
        _: &mut ProcessorContext<String, i64>,
    ) -> Result<(), ProcessError> {
        let store = self.0.as_ref().ok_or("not initialised")?;
        if let Some(key) = &record.key {
            let count = store.get(key)?.unwrap_or(0) + 1;
            store.put(key, &count)?;
        }
        Ok(())
    }
}

#[test]
fn every_store_write_lands_in_a_compacted_changelog() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("keyed", 4)?;
    let app = unique_name("counting");
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("in", &[input.as_str()])?
        .add_processor("count", CountKeys::default, &["in"])?
        .add_state_store(StoreBuilder::<String, i64>::key_value("counts"), &["count"])?;
    let topology = builder.build()?;

    let records: Vec<(String, String)> = (0..RECORDS)
        .map(|i| (format!("key-{}", i % KEYS), i.to_string()))
        .collect();
    kafka.produce(
        &input,
        records.iter().map(|(k, v)| (k.as_str(), v.as_str())),
    )?;

    let state = tempfile::tempdir()?;
    let config = StreamsConfig::builder()
        .application_id(&app)
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state.path())
        .commit_interval(Duration::from_millis(200))
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;

    let changelog = format!("{app}-counts-changelog");
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let written: i64 = kafka.end_offsets(&changelog, 4)?.iter().sum();
        if written >= RECORDS as i64 {
            break;
        }
        ensure!(
            Instant::now() < deadline,
            "{changelog} has {written} of {RECORDS} records after {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    streams.close(Duration::from_secs(30));

    // The last count logged for each key is its number of records, and a key's writes are
    // all on one partition: that of its task.
    let mut last: BTreeMap<String, (i64, i32)> = BTreeMap::new();
    let mut moved = 0;
    kafka.read_to_end(&changelog, 4, |message| {
        let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
        let value = message
            .payload()
            .context("a tombstone in a count changelog")?;
        let count = i64::from_be_bytes(value.try_into()?);
        if let Some((_, partition)) = last.get(&key)
            && *partition != message.partition()
        {
            moved += 1;
        }
        last.insert(key, (count, message.partition()));
        Ok(())
    })?;
    assert_eq!(moved, 0, "a key's writes went to two partitions");
    assert_eq!(last.len(), KEYS);
    for (key, (count, _)) in &last {
        assert_eq!(*count, (RECORDS / KEYS) as i64, "{key}");
    }

    // Created by the application: compacted, a partition per task.
    let admin: AdminClient<DefaultClientContext> = kafka.client_config().create()?;
    let configs = futures_executor::block_on(admin.describe_configs(
        &[ResourceSpecifier::Topic(&changelog)],
        &AdminOptions::new().request_timeout(Some(TIMEOUT)),
    ))?;
    let policy = configs
        .into_iter()
        .flatten()
        .flat_map(|resource| resource.entries)
        .find(|entry| entry.name == "cleanup.policy")
        .and_then(|entry| entry.value);
    assert_eq!(policy.as_deref(), Some("compact"));
    Ok(())
}

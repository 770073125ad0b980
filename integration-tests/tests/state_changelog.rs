//! A Processor API count over a logged RocksDB store, run by `KafkaStreams` against the real
//! broker: the application creates the store's changelog topic (compacted, a partition per
//! task) and every write lands in it, on the partition of the task that made it; queries
//! of the running instance read the store across its tasks.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa_integration_tests::counting::{self, BATCH, CountApp, KEYS};
use homa_integration_tests::{TIMEOUT, kafka};
use rdkafka::Message;
use rdkafka::admin::{AdminClient, AdminOptions, ResourceSpecifier};
use rdkafka::client::DefaultClientContext;

const RECORDS: usize = BATCH;

#[test]
fn every_store_write_lands_in_a_compacted_changelog() -> anyhow::Result<()> {
    let kafka = kafka();
    let app = CountApp::new("counting")?;
    app.produce(0)?;
    let state = tempfile::tempdir()?;
    let mut streams = app.instance(state.path())?;
    let changelog = app.changelog.clone();
    let deadline = Instant::now() + TIMEOUT;
    while app.changelog_records() < RECORDS as i64 {
        ensure!(
            Instant::now() < deadline,
            "{changelog} has {} of {RECORDS} records after {TIMEOUT:?}",
            app.changelog_records()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // The instance answers queries of the store across its four tasks.
    let counts = streams.store::<String, i64>(counting::STORE)?;
    assert_eq!(
        counts.get(&"key-7".to_string())?,
        Some((RECORDS / KEYS) as i64)
    );
    let all: Vec<(String, i64)> = counts.all()?.collect::<Result<_, _>>()?;
    assert_eq!(all.len(), KEYS);
    assert!(all.iter().all(|(_, n)| *n == (RECORDS / KEYS) as i64));
    assert!(streams.store::<String, i64>("nope").is_err());
    streams.close(Duration::from_secs(30))?;
    // Closed, its tasks' stores are gone: a query says so.
    assert!(counts.get(&"key-7".to_string()).is_err());

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

//! Restoration against the real broker: a count over a logged RocksDB store restarts with
//! its state directory (a) as a clean close left it: nothing to restore; (b) as an earlier
//! checkpoint left it: only the changelog's tail is restored; (c) wiped: the whole changelog
//! is restored. Each time the counts go on from the right values.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::runtime::KafkaStreams;
use homa_integration_tests::counting;
use homa_integration_tests::{TIMEOUT, kafka, unique_name};
use rdkafka::Message;

const KEYS: usize = 40;
const BATCH: usize = 2_000;

struct App {
    input: String,
    id: String,
    changelog: String,
    topology: Topology,
}

impl App {
    fn new() -> anyhow::Result<Self> {
        let input = kafka().create_topic("restore-in", 4)?;
        let id = unique_name("restoring");
        let changelog = format!("{id}-{}-changelog", counting::STORE);
        Ok(Self {
            topology: counting::topology(&input)?,
            input,
            id,
            changelog,
        })
    }

    fn produce(&self, batch: usize) -> anyhow::Result<()> {
        let records: Vec<(String, String)> = (0..BATCH)
            .map(|i| (format!("key-{}", i % KEYS), format!("{batch}-{i}")))
            .collect();
        kafka().produce(
            &self.input,
            records.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        )?;
        Ok(())
    }

    /// Runs an instance on `state` until the changelog holds `writes` records, closes it,
    /// and returns the records it restored.
    fn run(&self, state: &Path, writes: usize) -> anyhow::Result<u64> {
        let config = StreamsConfig::builder()
            .application_id(&self.id)
            .bootstrap_servers(kafka().bootstrap_servers())
            .state_dir(state)
            .commit_interval(Duration::from_millis(200))
            .set("consumer.session.timeout.ms", "10000")
            .build()?;
        let mut streams = KafkaStreams::new(&self.topology, config)?;
        streams.set_uncaught_error_handler(|e| eprintln!("stream thread failed: {e}"));
        streams.start()?;
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let written: i64 = kafka().end_offsets(&self.changelog, 4)?.iter().sum();
            if written >= writes as i64 {
                break;
            }
            ensure!(
                Instant::now() < deadline,
                "{} has {written} of {writes} records after {TIMEOUT:?}",
                self.changelog
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        streams.close(Duration::from_secs(30));
        Ok(streams
            .metrics()
            .restored_records
            .get(counting::STORE)
            .copied()
            .unwrap_or(0))
    }

    /// The last count the changelog holds for each key.
    fn counts(&self) -> anyhow::Result<BTreeMap<String, i64>> {
        let mut last = BTreeMap::new();
        kafka().read_to_end(&self.changelog, 4, |message| {
            let key = String::from_utf8(message.key().unwrap_or_default().to_vec())?;
            let value = message
                .payload()
                .context("a tombstone in a count changelog")?;
            last.insert(key, i64::from_be_bytes(value.try_into()?));
            Ok(())
        })?;
        Ok(last)
    }
}

fn copy_dir(from: &Path, to: &Path) -> anyhow::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else if entry.file_name() != ".lock" {
            std::fs::copy(entry.path(), target)?;
        }
    }
    Ok(())
}

#[test]
fn a_restart_restores_what_its_state_directory_lacks() -> anyhow::Result<()> {
    let app = App::new()?;
    let state = tempfile::tempdir()?;
    let snapshot = tempfile::tempdir()?;

    // The first run starts from nothing: no changelog yet, nothing restored.
    app.produce(1)?;
    assert_eq!(app.run(state.path(), BATCH)?, 0);
    // A clean close left a checkpoint at the changelog's end.
    copy_dir(state.path(), snapshot.path())?;

    // (a) Restarted as it was closed: nothing to restore.
    app.produce(2)?;
    assert_eq!(app.run(state.path(), 2 * BATCH)?, 0);

    // (b) Back to the first run's directory: only the second run's writes are restored.
    std::fs::remove_dir_all(state.path())?;
    copy_dir(snapshot.path(), state.path())?;
    app.produce(3)?;
    assert_eq!(app.run(state.path(), 3 * BATCH)?, BATCH as u64);

    // (c) Wiped: the whole changelog is restored.
    std::fs::remove_dir_all(state.path())?;
    std::fs::create_dir_all(state.path())?;
    app.produce(4)?;
    assert_eq!(app.run(state.path(), 4 * BATCH)?, 3 * BATCH as u64);

    // Every run counted on from the restored values.
    let counts = app.counts()?;
    assert_eq!(counts.len(), KEYS);
    for (key, count) in counts {
        assert_eq!(count, (4 * BATCH / KEYS) as i64, "{key}");
    }
    Ok(())
}

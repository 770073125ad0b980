//! Restoration against the real broker: a count over a logged RocksDB store restarts with
//! its state directory (a) as a clean close left it: nothing to restore; (b) as an earlier
//! checkpoint left it: only the changelog's tail is restored; (c) wiped: the whole changelog
//! is restored. Each time the counts go on from the right values.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::ensure;
use homa_integration_tests::TIMEOUT;
use homa_integration_tests::counting::{self, BATCH, CountApp, KEYS};

/// Runs an instance on `state` until the changelog holds `writes` records, closes it, and
/// returns the records it restored.
fn run(app: &CountApp, state: &Path, writes: usize) -> anyhow::Result<u64> {
    let mut streams = app.instance(state)?;
    let deadline = Instant::now() + TIMEOUT;
    while app.changelog_records() < writes as i64 {
        ensure!(
            Instant::now() < deadline,
            "{} has {} of {writes} records after {TIMEOUT:?}",
            app.changelog,
            app.changelog_records()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    streams.close(Duration::from_secs(30))?;
    Ok(counting::restored(&streams))
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
    let app = CountApp::new("restoring")?;
    let state = tempfile::tempdir()?;
    let snapshot = tempfile::tempdir()?;

    // The first run starts from nothing: no changelog yet, nothing restored.
    app.produce(1)?;
    assert_eq!(run(&app, state.path(), BATCH)?, 0);
    // A clean close left a checkpoint at the changelog's end.
    copy_dir(state.path(), snapshot.path())?;

    // (a) Restarted as it was closed: nothing to restore.
    app.produce(2)?;
    assert_eq!(run(&app, state.path(), 2 * BATCH)?, 0);

    // (b) Back to the first run's directory: only the second run's writes are restored.
    std::fs::remove_dir_all(state.path())?;
    copy_dir(snapshot.path(), state.path())?;
    app.produce(3)?;
    assert_eq!(run(&app, state.path(), 3 * BATCH)?, BATCH as u64);

    // (c) Wiped: the whole changelog is restored.
    std::fs::remove_dir_all(state.path())?;
    std::fs::create_dir_all(state.path())?;
    app.produce(4)?;
    assert_eq!(run(&app, state.path(), 4 * BATCH)?, 3 * BATCH as u64);

    // Every run counted on from the restored values.
    let counts = app.counts()?;
    assert_eq!(counts.len(), KEYS);
    for (key, count) in counts {
        assert_eq!(count, (4 * BATCH / KEYS) as i64, "{key}");
    }
    Ok(())
}

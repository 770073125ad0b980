//! `KafkaStreams::clean_up()` against the real broker: it is refused while the instance
//! runs; after `close()` it deletes the application's state directory, and the next start
//! restores every count from the changelog and counts on from there.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::runtime::State;
use homa_integration_tests::counting::{self, BATCH, CountApp, KEYS, STORE};
use homa_integration_tests::{TIMEOUT, wait_for_state};

/// Waits until `done()` holds; fails after [`TIMEOUT`] with `what` and its last error.
fn wait_until(what: &str, mut done: impl FnMut() -> anyhow::Result<bool>) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        let now = done();
        if now.as_ref().is_ok_and(|done| *done) {
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "{what}: not after {TIMEOUT:?} ({now:?})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Every entry of the counts store of `streams`, in the order `all()` gives them.
fn queried_counts(streams: &KafkaStreams) -> anyhow::Result<Vec<(String, i64)>> {
    let store = streams.store::<String, i64>(STORE)?;
    Ok(store.all()?.collect::<Result<_, _>>()?)
}

/// Task directories under `app_dir`.
fn task_dirs(app_dir: &Path) -> anyhow::Result<usize> {
    let mut dirs = 0;
    for entry in std::fs::read_dir(app_dir).with_context(|| app_dir.display().to_string())? {
        dirs += usize::from(entry?.file_type()?.is_dir());
    }
    Ok(dirs)
}

#[test]
fn clean_up_deletes_the_state_directory_and_a_restart_restores_from_the_changelog()
-> anyhow::Result<()> {
    let app = CountApp::new("clean-up")?;
    let state = tempfile::tempdir()?;
    let app_dir = state.path().join(&app.id);
    let per_batch = (BATCH / KEYS) as i64;

    app.produce(1)?;
    let mut streams = app.instance(state.path())?;
    app.wait_for_counts(per_batch)?;
    wait_for_state(&streams, State::Running)?;

    // Running: refused, naming the state, and the stores stay.
    let err = streams
        .clean_up()
        .expect_err("clean_up() of a running instance")
        .to_string();
    assert!(
        err.contains("(Created or NotRunning); the instance is Running"),
        "{err}"
    );
    assert_eq!(task_dirs(&app_dir)?, 4, "one directory per task, kept");

    streams.close(Duration::from_secs(30))?;
    assert_eq!(streams.state(), State::NotRunning);
    streams.clean_up()?;
    assert!(!app_dir.exists(), "{} is still there", app_dir.display());
    // Nothing left to delete is no error.
    streams.clean_up()?;

    // A restart has nothing local: it restores the whole changelog.
    let changelog = app.changelog_records();
    ensure!(changelog >= BATCH as i64, "{changelog} changelog records");
    let mut streams = app.instance(state.path())?;
    wait_until("the whole changelog restored", || {
        Ok(counting::restored(&streams) == changelog as u64)
    })?;
    let restored = streams.metrics().restored_records;
    assert_eq!(restored.get(STORE).copied(), Some(changelog as u64));
    // The restored stores hold every count, and a query reads them in key order.
    let expected: Vec<(String, i64)> = app.counts()?.into_iter().collect();
    assert_eq!(expected.len(), KEYS);
    wait_until("the restored counts queryable", || {
        Ok(queried_counts(&streams)? == expected)
    })?;

    // Counting goes on from the restored values, not from zero.
    app.produce(2)?;
    app.wait_for_counts(2 * per_batch)?;
    streams.close(Duration::from_secs(30))?;
    Ok(())
}

#[test]
fn a_new_instance_cleans_up_before_it_starts() -> anyhow::Result<()> {
    let state = tempfile::tempdir()?;
    let app_dir = state.path().join("clean-up-before-start");
    std::fs::create_dir_all(app_dir.join("0_0"))?;
    std::fs::write(app_dir.join("0_0/.checkpoint"), "stale")?;
    let config = StreamsConfig::builder()
        .application_id("clean-up-before-start")
        // Never contacted: the instance is not started.
        .bootstrap_servers("127.0.0.1:9")
        .state_dir(state.path())
        .build()?;
    let streams = KafkaStreams::new(&counting::topology("unused")?, config)?;
    assert_eq!(streams.state(), State::Created);
    streams.clean_up()?;
    assert!(!app_dir.exists(), "{} is still there", app_dir.display());
    assert!(state.path().exists(), "state.dir itself stays");
    Ok(())
}

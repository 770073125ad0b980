//! The failure windows of an exactly-once commit (see `homa::state`'s transactional layer),
//! each tested against the real broker: the summing application, run as a child process,
//! crashes at a crash point of its commit (the `fail` crate's `FAILPOINTS`), before, during
//! or after `commit_transaction`, or after its stores took the transaction's writes; it is
//! started again on its state, and the `read_committed` output and the reopened stores are
//! exactly the expected ones. Each test prints what the restart restored: the transaction
//! committed but not yet in the store, replayed from the changelog, or nothing.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::runtime::State;
use homa_integration_tests::summing::{Expected, SummingApp, last_sums};
use homa_integration_tests::{ChildGuard, TIMEOUT, kafka, wait_for_state};

const KEYS: usize = 20;

/// The summing application with its state directory and restore log.
struct App {
    app: SummingApp,
    state: tempfile::TempDir,
    log: std::path::PathBuf,
}

impl App {
    fn new(prefix: &str) -> anyhow::Result<Self> {
        let state = tempfile::tempdir()?;
        Ok(Self {
            app: SummingApp::new(kafka(), prefix, KEYS)?,
            log: state.path().join("restores.log"),
            state,
        })
    }

    /// The application as a child process (a static member: each start takes the tasks
    /// back at once), crashing at `crash` (a `FAILPOINTS` value).
    fn spawn(&self, crash: Option<&str>) -> anyhow::Result<ChildGuard> {
        let binary = env!("CARGO_BIN_EXE_summing-app");
        let mut command = self.app.command(
            binary,
            [self.state.path(), &self.log],
            "exactly_once_v2",
            true,
        );
        if let Some(crash) = crash {
            command.env("FAILPOINTS", crash);
        }
        Ok(ChildGuard::new(
            command.spawn().context("starting summing-app")?,
        ))
    }

    /// The sums the store holds, opened again on the state directory in this process.
    fn stored_sums(&self) -> anyhow::Result<std::collections::BTreeMap<String, i64>> {
        let config = self
            .app
            .config(self.state.path(), "exactly_once_v2", true)
            .build()?;
        let mut streams = KafkaStreams::new(&self.app.topology()?, config)?;
        streams.start()?;
        wait_for_state(&streams, State::Running)?;
        let instances = [streams];
        let sums = SummingApp::stored_sums(&instances)?;
        let [mut streams] = instances;
        streams.close(TIMEOUT)?;
        Ok(sums)
    }
}

/// Waits until `child` ends; fails if it was not killed (by the crash point's abort).
fn wait_for_crash(child: &mut ChildGuard, point: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(status) = child.child().try_wait()? {
            ensure!(
                !status.success(),
                "summing-app ended by itself, not at {point}"
            );
            return Ok(());
        }
        ensure!(
            Instant::now() < deadline,
            "summing-app did not crash at {point} within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The line of the last start in `log`, and the records it says were restored.
fn last_restore(log: &Path) -> (String, u64) {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let line = text.lines().last().unwrap_or_default().to_string();
    let restored = line
        .split("restored ")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(u64::MAX);
    (line, restored)
}

/// What the restart after a crash at a point must restore.
enum Restores {
    /// Nothing: the store has every committed transaction.
    Nothing,
    /// Some records: a committed transaction the store did not take yet.
    Some,
    /// Either, as the broker decided.
    Either,
}

/// Records 0..2000 committed by a first run; 2000..4000 then crash the second at `point`
/// of its second commit;
/// a third, given 4000..5000 too, must bring the output and the store to exactly the
/// expected ones.
fn crash_and_recover(point: &str, restores: Restores) -> anyhow::Result<()> {
    let app = App::new(&format!(
        "window-{}",
        point.rsplit("::").next().unwrap_or(point)
    ))?;
    app.app.produce(0..2_000, None)?;
    let first = app.spawn(None)?;
    app.app.wait_for(2_000, TIMEOUT)?;
    first.kill()?;

    // The first transaction of the second run parses records into the repartition topic,
    // which its sums only read once it commits: the second one writes the stores.
    app.app.produce(2_000..4_000, None)?;
    let mut second = app.spawn(Some(&format!("{point}=1*off->return")))?;
    wait_for_crash(&mut second, point)?;

    app.app.produce(4_000..5_000, None)?;
    let third = app.spawn(None)?;
    app.app.wait_for(5_000, TIMEOUT)?;
    third.kill()?;
    let (line, restored) = last_restore(&app.log);
    eprintln!("{point}: the restart after the crash: {line}");
    if std::env::var_os("HOMA_SHOW_RESTORES").is_some() {
        eprintln!(
            "{point}: every start:\n{}",
            std::fs::read_to_string(&app.log)?
        );
    }
    match restores {
        Restores::Nothing => ensure!(restored == 0, "{point}: restored {restored} records"),
        Restores::Some => ensure!(
            restored > 0 && restored < u64::MAX,
            "{point}: restored {restored} records: the committed transaction was not replayed"
        ),
        Restores::Either => {}
    }
    ensure!(
        app.stored_sums()? == last_sums(&Expected::of(5_000, KEYS)),
        "{point}: the store does not hold the true sums"
    );
    Ok(())
}

#[test]
fn a_crash_before_the_commit_leaves_nothing_of_the_transaction() -> anyhow::Result<()> {
    crash_and_recover("homa::eos::before-commit", Restores::Nothing)
}

#[test]
fn a_crash_during_the_commit_leaves_what_the_broker_decided() -> anyhow::Result<()> {
    crash_and_recover("homa::eos::during-commit", Restores::Either)
}

#[test]
fn a_crash_after_the_commit_replays_the_transaction_into_the_store() -> anyhow::Result<()> {
    crash_and_recover("homa::eos::after-commit", Restores::Some)
}

#[test]
fn a_crash_after_the_stores_took_the_transaction_restores_nothing() -> anyhow::Result<()> {
    crash_and_recover("homa::eos::after-apply", Restores::Nothing)
}

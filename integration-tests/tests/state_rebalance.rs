//! A count over a logged store while a second instance joins and leaves, against the real
//! broker: the tasks that move take their state with them (the joining instance restores
//! it from the changelog; when it leaves, the first restores what was added meanwhile), and
//! the counts stay exact through both handovers.

use std::time::Duration;

use anyhow::ensure;
use homa::runtime::State;
use homa_integration_tests::counting::{self, BATCH, CountApp, KEYS};
use homa_integration_tests::{kafka, wait_for_state};

#[test]
fn state_moves_with_its_tasks_when_an_instance_joins_and_leaves() -> anyhow::Result<()> {
    let kafka = kafka();
    let app = CountApp::new("moving-counts")?;
    let (state_a, state_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let per_batch = (BATCH / KEYS) as i64;

    let mut a = app.instance(state_a.path())?;
    app.produce(0)?;
    app.wait_for_counts(per_batch)?;
    assert_eq!(
        counting::restored(&a),
        0,
        "a first run has nothing to restore"
    );

    // B joins: its tasks restore the counts A made.
    let mut b = app.instance(state_b.path())?;
    kafka.wait_for_members(&app.id, 2)?;
    // B runs once the group has synced, A's partitions revoked and shared out again.
    wait_for_state(&b, State::Running)?;
    app.produce(1)?;
    app.wait_for_counts(2 * per_batch)?;
    let b_restored = counting::restored(&b);
    ensure!(
        b_restored > 0,
        "B took over tasks without restoring their state"
    );

    // B leaves: A takes its tasks back and restores what B added to them.
    let a_before = counting::restored(&a);
    b.close(Duration::from_secs(30))?;
    kafka.wait_for_members(&app.id, 1)?;
    app.produce(2)?;
    app.wait_for_counts(3 * per_batch)?;
    ensure!(
        counting::restored(&a) > a_before,
        "A took its tasks back without restoring B's writes"
    );

    // And A answers for all of them.
    let counts = a.store::<String, i64>(counting::STORE)?;
    let all: Vec<(String, i64)> = counts.all()?.collect::<Result<_, _>>()?;
    assert_eq!(all.len(), KEYS, "{all:?}");
    assert!(all.iter().all(|(_, n)| *n == 3 * per_batch), "{all:?}");
    eprintln!(
        "B restored {b_restored} records when it joined; A restored {} when B left",
        counting::restored(&a) - a_before
    );
    a.close(Duration::from_secs(30))?;
    Ok(())
}

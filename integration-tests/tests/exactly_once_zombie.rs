//! A zombie under exactly-once, against the real broker: of two instances of the summing
//! application (child processes), one is frozen with SIGSTOP, in the middle of its work,
//! while its transaction holds records, until the group has given its tasks to the other;
//! resumed with SIGCONT, it still holds that transaction and its old generation. It must be
//! fenced: its writes never reach the `read_committed` output, which is exactly the
//! expected one (they are in the log, aborted), and it joins the group again.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa_integration_tests::summing::SummingApp;
use homa_integration_tests::{ChildGuard, TIMEOUT, kafka, unique_name};

const KEYS: usize = 50;
const RECORDS: usize = 40_000;

/// Sends `signal` (`STOP`, `CONT`) to `child`.
fn signal(child: &mut ChildGuard, signal: &str) -> anyhow::Result<()> {
    let id = child.child().id();
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(id.to_string())
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{signal} {id} failed");
    Ok(())
}

/// The repartition topic of `app`.
fn repartition(app: &SummingApp) -> String {
    format!("{}-numbers-repartition", app.id)
}

/// Records of the repartition topic that a reader of `isolation` sees, by partition.
fn ends(app: &SummingApp, isolation: &str) -> anyhow::Result<Vec<i64>> {
    let mut config = kafka().consumer_config(&unique_name("zombie-reader"));
    config.set("isolation.level", isolation);
    kafka().end_offsets_with(&config, &repartition(app), 4)
}

/// Waits until a partition of the repartition topic has had records of an open
/// transaction that stayed open a second: the zombie's (the other instance commits every
/// 100 ms, so where it writes the committed end moves on).
fn wait_for_long_transaction(app: &SummingApp) -> anyhow::Result<()> {
    let deadline = Instant::now() + TIMEOUT;
    // By partition: the committed end, and since when it has stood there below the end.
    let mut standing: [Option<(i64, Instant)>; 4] = [None; 4];
    loop {
        let (written, committed) = (ends(app, "read_uncommitted")?, ends(app, "read_committed")?);
        for (p, stands) in standing.iter_mut().enumerate() {
            match stands {
                Some((at, since)) if *at == committed[p] && written[p] > committed[p] => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        eprintln!(
                            "an open transaction on {}/{p}: written up to {}, committed up to {}",
                            repartition(app),
                            written[p],
                            committed[p]
                        );
                        return Ok(());
                    }
                }
                _ => *stands = Some((committed[p], Instant::now())),
            }
        }
        ensure!(
            Instant::now() < deadline,
            "no transaction stayed open a second within {TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_frozen_instance_is_fenced_and_none_of_its_late_writes_are_committed() -> anyhow::Result<()> {
    let app = SummingApp::new(kafka(), "zombie", KEYS)?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let binary = env!("CARGO_BIN_EXE_summing-app");
    let spawn = |slot: usize, stderr: Stdio, settings: &str| -> anyhow::Result<ChildGuard> {
        let log = dirs[slot].path().join("restores.log");
        let mut command = app.command(binary, [dirs[slot].path(), &log], "exactly_once_v2", false);
        command.stderr(stderr).env("SUMMING_SET", settings);
        Ok(ChildGuard::new(
            command.spawn().context("starting summing-app")?,
        ))
    };
    // The zombie commits every 5 s: its transaction is open, with records in it, most of
    // the time. Its warnings are read as they come. Neither purges the repartition topic,
    // where the zombie's aborted records are counted.
    const NO_PURGE: &str = "repartition.purge.interval.ms=3600000";
    let mut zombie = spawn(
        0,
        Stdio::piped(),
        &format!("commit.interval.ms=5000,{NO_PURGE}"),
    )?;
    let said: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let stderr = zombie
            .child()
            .stderr
            .take()
            .context("the zombie's stderr")?;
        let said = said.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                eprintln!("zombie: {line}");
                said.lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(line);
            }
        })
    };
    let other = spawn(1, Stdio::inherit(), NO_PURGE)?;

    // Input keeps coming while the zombie is frozen, and after.
    let producing = {
        let app = app.clone();
        std::thread::spawn(move || -> anyhow::Result<()> {
            for chunk in 0..40 {
                app.produce(chunk * 1_000..(chunk + 1) * 1_000, None)?;
                std::thread::sleep(Duration::from_millis(500));
            }
            Ok(())
        })
    };
    // Both at work, then the zombie frozen for longer than its session (6 s) and its
    // transaction's timeout (10 s): its tasks go to the other instance.
    kafka().wait_for_members(&app.id, 2)?;
    wait_for_long_transaction(&app)?;
    signal(&mut zombie, "STOP")?;
    let frozen = Instant::now();
    kafka().wait_for_members(&app.id, 1)?;
    eprintln!(
        "the group went on without the zombie after {:.1} s",
        frozen.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(12).saturating_sub(frozen.elapsed()));
    signal(&mut zombie, "CONT")?;
    eprintln!(
        "zombie resumed after {:.1} s",
        frozen.elapsed().as_secs_f64()
    );

    producing
        .join()
        .map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    app.wait_for(RECORDS, 2 * TIMEOUT)?;
    // The log holds what aborted transactions wrote too (the zombie's, fenced): none of it
    // is in the committed output, which is exactly the expected one.
    let read = |isolation| -> anyhow::Result<u64> {
        let mut config = kafka().consumer_config(&unique_name("zombie-reader"));
        config.set("isolation.level", isolation);
        kafka().read_to_end_with(&config, &repartition(&app), 4, |_| Ok(()))
    };
    let aborted = read("read_uncommitted")?.saturating_sub(read("read_committed")?);
    eprintln!("records the zombie wrote in its fenced transaction, none committed: {aborted}");
    ensure!(
        aborted > 0,
        "the zombie had nothing in its transaction: the test shows nothing"
    );
    // Back in the group, with a new producer.
    kafka().wait_for_members(&app.id, 2)?;
    zombie.kill()?;
    other.kill()?;
    let _ = reader.join();
    let said = said
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    ensure!(
        said.iter()
            .any(|line| line.contains("joins the group again")),
        "the resumed instance did not say it was fenced and rejoined: {said:?}"
    );
    Ok(())
}

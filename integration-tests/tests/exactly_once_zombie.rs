//! A zombie under exactly-once, against the real broker: of two instances of the summing
//! application (child processes), one is frozen with SIGSTOP, in the middle of its work,
//! until the group has given its tasks to the other; resumed with SIGCONT, it still holds
//! its open transaction and its old generation. It must be fenced: its writes never reach
//! the `read_committed` output, which is exactly the expected one, and it joins the group
//! again.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa_integration_tests::summing::SummingApp;
use homa_integration_tests::{TIMEOUT, kafka, kill};

const KEYS: usize = 50;
const RECORDS: usize = 40_000;

/// Sends `signal` (`STOP`, `CONT`) to `child`.
fn signal(child: &Child, signal: &str) -> anyhow::Result<()> {
    let status = Command::new("kill")
        .arg(format!("-{signal}"))
        .arg(child.id().to_string())
        .status()
        .context("running kill")?;
    ensure!(status.success(), "kill -{signal} {} failed", child.id());
    Ok(())
}

#[test]
fn a_frozen_instance_is_fenced_and_none_of_its_late_writes_are_committed() -> anyhow::Result<()> {
    let app = SummingApp::new(kafka(), "zombie", KEYS)?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let binary = env!("CARGO_BIN_EXE_summing-app");
    let spawn = |slot: usize, stderr: Stdio| -> anyhow::Result<Child> {
        let log = dirs[slot].path().join("restores.log");
        let mut command = app.command(binary, [dirs[slot].path(), &log], "exactly_once_v2", false);
        command.stderr(stderr);
        command.spawn().context("starting summing-app")
    };
    // The zombie's warnings, read as they come.
    let mut zombie = spawn(0, Stdio::piped())?;
    let said: Arc<Mutex<Vec<String>>> = Arc::default();
    let reader = {
        let stderr = zombie.stderr.take().context("the zombie's stderr")?;
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
    let other = spawn(1, Stdio::inherit())?;

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
    std::thread::sleep(Duration::from_secs(4));
    signal(&zombie, "STOP")?;
    let frozen = Instant::now();
    kafka().wait_for_members(&app.id, 1)?;
    eprintln!(
        "the group went on without the zombie after {:.1} s",
        frozen.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(12).saturating_sub(frozen.elapsed()));
    signal(&zombie, "CONT")?;
    eprintln!(
        "zombie resumed after {:.1} s",
        frozen.elapsed().as_secs_f64()
    );

    producing
        .join()
        .map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    app.wait_for(RECORDS, 2 * TIMEOUT)?;
    // Back in the group, with a new producer.
    kafka().wait_for_members(&app.id, 2)?;
    kill(zombie)?;
    kill(other)?;
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

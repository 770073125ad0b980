//! Exactly-once under chaos, as Kafka's own `streams_eos_test` proves it: two instances of
//! the summing application (a running sum per key and a windowed count, over a 4-partition
//! topic) run as child processes on a broker of the test's own while the input comes in;
//! a random instance is killed with SIGKILL at random moments and started again on its
//! state, and the broker is restarted once in the middle. Then:
//!
//! - under `exactly_once_v2`, the output a `read_committed` reader sees is exactly the
//!   expected one: each key's sums in order, no gap, no repeat; each window's count; and
//!   the stores, opened again on the instances' state directories, hold the true sums;
//! - under `at_least_once`, nothing is lost (every key's sum reaches the true one), and the
//!   records counted twice are printed, with the windows that records processed again
//!   after a kill came too late for.
//!
//! Each run prints how much each restart restored. `HOMA_CHAOS_RECORDS`, `HOMA_CHAOS_KILLS`
//! and `HOMA_CHAOS_SECONDS` (how long the input takes to come in) make a longer soak; the
//! default run is sized for CI.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::Child;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa_integration_tests::summing::{self, Expected, SummingApp, last_sums};
use homa_integration_tests::{Kafka, kill, restart_broker, start_broker};

const KEYS: usize = 100;

/// The two runs take turns: each has a broker and two instances of its own, and two at once
/// would only slow each other down.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// How long the output may take to settle after the last kill.
const SETTLE: Duration = Duration::from_secs(180);

fn setting(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A small xorshift generator: the moments and victims of the kills, printed with its seed.
struct Random(u64);

impl Random {
    fn new() -> Self {
        let seed = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(1, |d| d.as_nanos() as u64)
            | 1;
        eprintln!("chaos seed {seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    /// A duration between `low` and `high`.
    fn between(&mut self, low: Duration, high: Duration) -> Duration {
        let span = (high - low).as_millis().max(1) as u64;
        low + Duration::from_millis(self.next() % span)
    }
}

struct Chaos {
    app: SummingApp,
    guarantee: &'static str,
    dirs: [tempfile::TempDir; 2],
    log: PathBuf,
    children: [Option<Child>; 2],
}

impl Chaos {
    fn new(kafka: &Kafka, guarantee: &'static str) -> anyhow::Result<Self> {
        let prefix = format!("chaos-{}", guarantee.replace('_', "-"));
        let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
        let log = dirs[0].path().join("restores.log");
        Ok(Self {
            app: SummingApp::new(kafka, &prefix, KEYS)?,
            guarantee,
            dirs,
            log,
            children: [None, None],
        })
    }

    /// Starts instance `slot` on its state directory: slot 0 a static member (a restart
    /// takes its tasks back at once, as a StatefulSet's pod), slot 1 a dynamic one (a
    /// restart moves tasks, after its session times out).
    fn spawn(&mut self, slot: usize) -> anyhow::Result<()> {
        let binary = env!("CARGO_BIN_EXE_summing-app");
        let state = self.dirs[slot].path();
        let mut command = self
            .app
            .command(binary, [state, &self.log], self.guarantee, slot == 0);
        self.children[slot] = Some(command.spawn().context("starting summing-app")?);
        Ok(())
    }

    fn kill(&mut self, slot: usize) -> anyhow::Result<()> {
        if let Some(child) = self.children[slot].take() {
            kill(child)?;
        }
        Ok(())
    }

    /// Produces records `0..records` over `over`, in chunks, on a thread of its own.
    fn produce(
        &self,
        records: usize,
        over: Duration,
    ) -> std::thread::JoinHandle<anyhow::Result<()>> {
        let app = self.app.clone();
        std::thread::spawn(move || {
            const CHUNK: usize = 2_000;
            let chunks = records.div_ceil(CHUNK);
            let started = Instant::now();
            for chunk in 0..chunks {
                app.produce(chunk * CHUNK..((chunk + 1) * CHUNK).min(records), None)?;
                let due = over.mul_f64((chunk + 1) as f64 / chunks as f64);
                if let Some(wait) = due.checked_sub(started.elapsed()) {
                    std::thread::sleep(wait);
                }
            }
            Ok(())
        })
    }

    /// What each start of an instance restored, as the instances logged it.
    fn restores(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Chaos {
    /// A run that fails half-way leaves no instance behind.
    fn drop(&mut self) {
        for child in self.children.iter_mut().filter_map(Option::take) {
            let _ = kill(child);
        }
    }
}

/// Runs the chaos under `guarantee`: the instances are killed `kills` times while
/// `records` come in over `over`, the broker restarted after half the kills; returns the
/// harness (its instances stopped) once `settled` says the output is complete.
fn run_chaos(
    guarantee: &'static str,
    settled: impl Fn(&Expected) -> bool,
) -> anyhow::Result<(Chaos, Expected)> {
    let records = usize::try_from(setting("HOMA_CHAOS_RECORDS", 200_000))?;
    let kills = setting("HOMA_CHAOS_KILLS", 20);
    let over = Duration::from_secs(setting("HOMA_CHAOS_SECONDS", 60));
    let bootstrap = start_broker()?;
    let mut chaos = Chaos::new(&Kafka::at(&bootstrap), guarantee)?;
    let producing = chaos.produce(records, over);
    chaos.spawn(0)?;
    chaos.spawn(1)?;
    let mut random = Random::new();
    // The kills spread over the input's time, and a little past it.
    let gap = over.mul_f64(1.2) / u32::try_from(kills + 1)?;
    let started = Instant::now();
    for k in 0..kills {
        std::thread::sleep(random.between(gap / 2, gap * 3 / 2));
        let slot = usize::from(random.next() % 2 == 1);
        eprintln!(
            "{guarantee}: kill {} of {kills}: instance {slot} at {:.1} s",
            k + 1,
            started.elapsed().as_secs_f64()
        );
        chaos.kill(slot)?;
        chaos.spawn(slot)?;
        if k + 1 == kills / 2 {
            eprintln!(
                "{guarantee}: restarting the broker at {:.1} s",
                started.elapsed().as_secs_f64()
            );
            restart_broker(&bootstrap, false)?;
        }
    }
    producing
        .join()
        .map_err(|_| anyhow::anyhow!("the producer panicked"))??;
    eprintln!(
        "{guarantee}: input complete at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    let deadline = Instant::now() + SETTLE;
    let output = loop {
        let output = chaos.app.output(true)?;
        if settled(&output) {
            break output;
        }
        if Instant::now() > deadline {
            for slot in 0..2 {
                chaos.kill(slot)?;
            }
            eprintln!("restores:\n{}", chaos.restores());
            break output;
        }
        std::thread::sleep(Duration::from_secs(1));
    };
    eprintln!(
        "{guarantee}: output settled at {:.1} s",
        started.elapsed().as_secs_f64()
    );
    for slot in 0..2 {
        chaos.kill(slot)?;
    }
    eprintln!("{guarantee}: restores:\n{}", chaos.restores());
    Ok((chaos, output))
}

/// The stores of the instances' state directories, opened again (each restores what it
/// lacks): the sum of every key, with what each restored.
fn final_sums(chaos: &Chaos) -> anyhow::Result<BTreeMap<String, i64>> {
    let topology = chaos.app.topology()?;
    let mut instances = Vec::new();
    for (slot, dir) in chaos.dirs.iter().enumerate() {
        let config = chaos.app.config(dir.path(), chaos.guarantee, slot == 0);
        let mut streams = KafkaStreams::new(&topology, config.build()?)?;
        streams.start()?;
        instances.push(streams);
    }
    SummingApp::wait_for_tasks(&instances)?;
    for (slot, streams) in instances.iter().enumerate() {
        eprintln!(
            "reopened instance {slot}: restored {:?}",
            streams.metrics().restored_records
        );
    }
    let sums = SummingApp::stored_sums(&instances)?;
    for mut streams in instances {
        streams.close(Duration::from_secs(30))?;
    }
    Ok(sums)
}

fn records() -> usize {
    usize::try_from(setting("HOMA_CHAOS_RECORDS", 200_000)).unwrap_or(200_000)
}

#[test]
fn exactly_once_output_and_state_are_exact_through_kills_and_a_broker_restart() -> anyhow::Result<()>
{
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let expected = Expected::of(records(), KEYS);
    let (chaos, output) = run_chaos("exactly_once_v2", |output| {
        summing::differences(output, &expected).is_empty()
    })?;
    let differences = summing::differences(&output, &expected);
    ensure!(
        differences.is_empty(),
        "the committed output is not the expected one: {} differences, the first: {:?}",
        differences.len(),
        &differences[..differences.len().min(10)]
    );
    let sums = final_sums(&chaos)?;
    ensure!(
        sums == last_sums(&expected),
        "the stores do not hold the true sums"
    );
    Ok(())
}

#[test]
fn at_least_once_loses_nothing_through_kills_and_a_broker_restart() -> anyhow::Result<()> {
    let _turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let expected = Expected::of(records(), KEYS);
    let truth = last_sums(&expected);
    // Complete once every key's last sum reaches the true one (records processed twice make
    // it larger): nothing is lost.
    let complete = |output: &Expected| {
        let sums = last_sums(output);
        truth
            .iter()
            .all(|(k, v)| sums.get(k).is_some_and(|s| s >= v))
    };
    let (_chaos, output) = run_chaos("at_least_once", complete)?;
    if !complete(&output) {
        let differences = summing::differences(&output, &expected);
        anyhow::bail!(
            "records were lost: {} differences, the first: {:?}",
            differences.len(),
            &differences[..differences.len().min(10)]
        );
    }
    // The windows have no grace: a record processed again after a kill comes into the
    // repartition topic after later ones, and a window it falls in may have closed by then
    // (dropped as late, counted and logged, as Kafka Streams drops it). So a window may
    // count less than all of its records; the run says how many do.
    let short = (expected.counts.iter())
        .filter(|(w, n)| output.counts.get(*w).is_none_or(|c| c < *n))
        .count();
    eprintln!(
        "at_least_once: {short} of {} windows count fewer records than they hold (records \
         dropped as late after a kill)",
        expected.counts.len()
    );
    let written: usize = output.sums.values().map(Vec::len).sum();
    let counted_again: i64 = (last_sums(&output).iter())
        .map(|(k, v)| v - truth.get(k).copied().unwrap_or(0))
        .sum();
    eprintln!(
        "at_least_once: {written} sums written for {} records ({} more: records processed \
         again after a kill), {} repeated sums, the final sums {counted_again} over the \
         true ones",
        records(),
        written.saturating_sub(records()),
        summing::duplicates(&output),
    );
    Ok(())
}

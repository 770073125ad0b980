//! A windowed count with suppressed final results, over a 4-partition topic of the real
//! broker, killed with SIGKILL while windows are open and restarted with its state
//! directory wiped: the open windows and the suppression buffer are restored from their
//! changelogs, and every window's final count comes out once and exact. Then a long run of
//! event time: the window store's segments are dropped as stream time passes them, so each
//! task keeps a bounded number on disk.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa_integration_tests::{TIMEOUT, kafka, kill, unique_name};
use rdkafka::Message;

const USERS: usize = 40;
const PARTITIONS: i32 = 4;
const WINDOW: i64 = 10_000;

struct App {
    input: String,
    output: String,
    id: String,
    /// The start of the first window: two hours ago (so that the broker's retention keeps
    /// the records), on a window boundary.
    t0: i64,
    /// Whether the aggregation emits its final counts itself (else `suppress` does).
    emit_final: bool,
}

impl App {
    fn spawn(&self, state: &Path) -> anyhow::Result<Child> {
        Command::new(env!("CARGO_BIN_EXE_windowed-count-app"))
            .args([
                kafka().bootstrap_servers(),
                &self.input,
                &self.output,
                &self.id,
            ])
            .arg(state)
            .args(self.emit_final.then_some("emit-final"))
            .spawn()
            .context("starting windowed-count-app")
    }

    /// Produces `per_user` clicks of each user in window `window` (0-based from `t0`), from
    /// `from` ms into it every 400 ms, each user's in time order but the users interleaved;
    /// returns them as (user, window).
    fn clicks(&self, window: i64, per_user: i64, from: i64) -> anyhow::Result<Vec<(String, i64)>> {
        let mut records = Vec::new();
        for i in 0..per_user {
            for user in 0..USERS {
                let at = self.t0 + window * WINDOW + from + i * 400 + user as i64;
                records.push((format!("u{user}"), "click".to_string(), Some(at)));
            }
        }
        kafka().produce_timed(&self.input, records.iter().map(|(k, v, t)| (k, v, *t)))?;
        Ok(records.into_iter().map(|(k, _, _)| (k, window)).collect())
    }

    /// Waits until the group has committed every input record.
    fn wait_until_caught_up(&self) -> anyhow::Result<()> {
        let deadline = Instant::now() + TIMEOUT;
        loop {
            let committed = kafka().committed_offsets(&self.id, &self.input, PARTITIONS)?;
            if committed == kafka().end_offsets(&self.input, PARTITIONS)? {
                return Ok(());
            }
            ensure!(
                Instant::now() < deadline,
                "not caught up within {TIMEOUT:?}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// The final counts written, by `user@window start`, each with how often it came.
    fn finals(&self) -> anyhow::Result<BTreeMap<String, Vec<i64>>> {
        let mut finals: BTreeMap<String, Vec<i64>> = BTreeMap::new();
        kafka().read_to_end(&self.output, PARTITIONS, |m| {
            let key = String::from_utf8(m.key().unwrap_or_default().to_vec())?;
            let value = m.payload().context("a count")?;
            let count = i64::from_be_bytes(value.try_into().context("8 bytes")?);
            finals.entry(key).or_default().push(count);
            Ok(())
        })?;
        Ok(finals)
    }

    /// Waits until `expected` windows have a final count.
    fn wait_for_finals(&self, expected: usize) -> anyhow::Result<BTreeMap<String, Vec<i64>>> {
        let deadline = Instant::now() + 2 * TIMEOUT;
        loop {
            let finals = self.finals()?;
            if finals.len() >= expected {
                return Ok(finals);
            }
            ensure!(
                Instant::now() < deadline,
                "{} of {expected} final counts within {:?}",
                finals.len(),
                2 * TIMEOUT
            );
            std::thread::sleep(Duration::from_millis(500));
        }
    }
}

/// The window store's segment directories of each task under `state`.
fn segments(state: &Path, app: &str) -> anyhow::Result<BTreeMap<String, usize>> {
    let mut counts = BTreeMap::new();
    let dir = state.join(app);
    for task in std::fs::read_dir(&dir).with_context(|| format!("listing {}", dir.display()))? {
        let task = task?;
        let store = task.path().join("clicks");
        let Ok(entries) = std::fs::read_dir(&store) else {
            continue;
        };
        let count = entries
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("clicks."))
            .count();
        counts.insert(task.file_name().to_string_lossy().into_owned(), count);
    }
    Ok(counts)
}

/// Two hours ago (so that the broker's retention keeps the records), on a window boundary.
fn two_hours_ago() -> anyhow::Result<i64> {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
    let two_hours_ago = i64::try_from(now.as_millis())? - 2 * 3_600_000;
    Ok(two_hours_ago - two_hours_ago % WINDOW)
}

/// Checks that each window of `truth` has one final count, its own.
fn exact_and_once(
    truth: &BTreeMap<String, i64>,
    finals: &BTreeMap<String, Vec<i64>>,
) -> anyhow::Result<()> {
    let wrong: Vec<_> = truth
        .iter()
        .filter(|(window, n)| finals.get(*window) != Some(&vec![**n]))
        .map(|(window, n)| (window, n, finals.get(window)))
        .take(5)
        .collect();
    ensure!(
        wrong.is_empty(),
        "final counts not exact and once (window, true, written): {wrong:?}"
    );
    ensure!(
        finals.len() == truth.len(),
        "{} windows with finals, {} expected",
        finals.len(),
        truth.len()
    );
    Ok(())
}

#[test]
fn killed_with_open_windows_and_wiped_the_final_counts_are_exact_and_segments_bounded()
-> anyhow::Result<()> {
    let kafka = kafka();
    let id = unique_name("windowed-count");
    let app = App {
        input: kafka.create_topic("clicks", PARTITIONS)?,
        output: kafka.create_topic("final-clicks", PARTITIONS)?,
        id,
        t0: two_hours_ago()?,
        emit_final: false,
    };
    let t0 = app.t0;
    let state = tempfile::tempdir()?;
    let mut truth: BTreeMap<String, i64> = BTreeMap::new();
    let mut count = |clicks: Vec<(String, i64)>| {
        for (user, window) in clicks {
            *truth
                .entry(format!("{user}@{}", t0 + window * WINDOW))
                .or_default() += 1;
        }
    };

    // Windows 0 to 3; stream time reaches 8 s into window 3 (past window 2's end and
    // grace), so 0 to 2 close before the crash.
    let child = app.spawn(state.path())?;
    for window in 0..4 {
        count(app.clicks(window, 20, 0)?);
    }
    app.wait_until_caught_up()?;
    let before = app.wait_for_finals(3 * USERS)?;
    ensure!(
        before.len() == 3 * USERS,
        "{} finals before the crash",
        before.len()
    );
    kill(child)?;

    // Restarted on a wiped state directory: window 3's counts so far, and the buffer, come
    // back from the changelogs. More of window 3, all of window 4, then time moves on.
    std::fs::remove_dir_all(state.path())?;
    std::fs::create_dir_all(state.path())?;
    let child = app.spawn(state.path())?;
    count(app.clicks(3, 10, 5_000)?);
    count(app.clicks(4, 15, 0)?);
    app.clicks(5, 1, 5_000)?;
    let finals = app.wait_for_finals(5 * USERS)?;
    exact_and_once(&truth, &finals)?;

    // Thirty minutes of event time, 30 segments' worth (the retention of 12 s makes
    // segments of 60 s): each task keeps at most the two segments its retention reaches.
    for minute in 1..=30 {
        app.clicks(6 + minute * 6, 1, 0)?;
    }
    app.wait_until_caught_up()?;
    let on_disk = segments(state.path(), &app.id)?;
    eprintln!("window store segments per task after 30 min of event time: {on_disk:?}");
    ensure!(
        on_disk.len() == PARTITIONS as usize,
        "tasks on disk: {on_disk:?}"
    );
    ensure!(
        on_disk.values().all(|&n| (1..=2).contains(&n)),
        "segments not dropped: {on_disk:?}"
    );
    kill(child)?;

    // The store's changelog is compacted and deleted after its retention plus a day.
    let configs = kafka.topic_configs(&format!("{}-clicks-changelog", app.id))?;
    ensure!(
        configs.get("cleanup.policy").map(String::as_str) == Some("compact,delete"),
        "{configs:?}"
    );
    ensure!(
        configs.get("retention.ms").map(String::as_str) == Some("86412000"),
        "{configs:?}"
    );
    let buffer = kafka.topic_configs(&format!("{}-finals-store-changelog", app.id))?;
    ensure!(
        buffer.get("cleanup.policy").map(String::as_str) == Some("compact"),
        "{buffer:?}"
    );
    Ok(())
}

#[test]
fn windows_emitted_on_close_are_not_emitted_again_after_a_restart() -> anyhow::Result<()> {
    let kafka = kafka();
    let app = App {
        input: kafka.create_topic("clicks", PARTITIONS)?,
        output: kafka.create_topic("final-clicks", PARTITIONS)?,
        id: unique_name("windowed-count-final"),
        t0: two_hours_ago()?,
        emit_final: true,
    };
    let t0 = app.t0;
    let state = tempfile::tempdir()?;
    let mut truth: BTreeMap<String, i64> = BTreeMap::new();
    let mut count = |clicks: Vec<(String, i64)>| {
        for (user, window) in clicks {
            *truth
                .entry(format!("{user}@{}", t0 + window * WINDOW))
                .or_default() += 1;
        }
    };
    // Windows 0 to 2 close and are emitted; the store keeps them an hour.
    let child = app.spawn(state.path())?;
    for window in 0..4 {
        count(app.clicks(window, 5, 0)?);
    }
    // Closed windows are looked for at most once a second of wall-clock time: a record
    // after that makes sure they are.
    app.wait_until_caught_up()?;
    std::thread::sleep(Duration::from_millis(1500));
    count(app.clicks(3, 1, 3_000)?);
    app.wait_until_caught_up()?;
    app.wait_for_finals(3 * USERS)?;
    kill(child)?;
    // Restarted twice, once on its own state and once wiped: each start goes on from the
    // close time its tasks committed, so windows 0 to 2, still in the store, do not come
    // again; window 3 closes once.
    for wipe in [false, true] {
        if wipe {
            std::fs::remove_dir_all(state.path())?;
            std::fs::create_dir_all(state.path())?;
        }
        let child = app.spawn(state.path())?;
        let window = if wipe { 5 } else { 4 };
        count(app.clicks(window, 1, 3_000)?);
        app.wait_until_caught_up()?;
        kill(child)?;
    }
    let child = app.spawn(state.path())?;
    app.clicks(7, 1, 5_000)?;
    let finals = app.wait_for_finals(truth.len())?;
    kill(child)?;
    // Any repeat would have come before the last window's final.
    exact_and_once(&truth, &finals)
}

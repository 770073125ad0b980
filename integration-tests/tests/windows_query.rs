//! Queries of a running instance's window and session stores against the real broker: the
//! stores of all its tasks (4 partitions) read as one, through their record caches.

use std::time::{Duration, Instant};

use homa::prelude::*;
use homa::runtime::{KafkaStreams, State};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};

#[test]
fn a_running_instance_answers_window_and_session_queries_across_its_tasks() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("window-queries", 4)?;
    let mut builder = StreamsBuilder::new();
    let grouped = builder.stream::<String, String>(&input).group_by_key();
    grouped
        .windowed_by(TimeWindows::of_size_with_no_grace(Duration::from_secs(10)))
        .count_with(Materialized::as_("per-10s").with_retention(Duration::from_secs(600)));
    grouped
        .windowed_by(SessionWindows::of_inactivity_gap_with_no_grace(
            Duration::from_secs(5),
        ))
        .count_with(Materialized::as_("sessions").with_retention(Duration::from_secs(600)));
    let topology = builder.build()?;
    let state = tempfile::tempdir()?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("window-queries"))
        .bootstrap_servers(kafka.bootstrap_servers())
        .state_dir(state.path())
        .commit_interval(Duration::from_millis(200))
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;

    // Twenty users, each with clicks at 1 s, 2 s (one session, one window) and 12 s (a
    // new window and a new session), an hour ago.
    let t0 = {
        let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?;
        let hour_ago = i64::try_from(now.as_millis())? - 3_600_000;
        hour_ago - hour_ago % 10_000
    };
    let users: Vec<String> = (0..20).map(|u| format!("user-{u}")).collect();
    let mut clicks = Vec::new();
    for offset in [1_000, 2_000, 12_000] {
        for user in &users {
            clicks.push((user.clone(), "click".to_string(), Some(t0 + offset)));
        }
    }
    kafka.produce_timed(&input, clicks.iter().map(|(k, v, t)| (k, v, *t)))?;

    let deadline = Instant::now() + TIMEOUT;
    loop {
        let windows = streams.window_store::<String, i64>("per-10s")?;
        let all = windows.all()?;
        if all.len() == 2 * users.len() {
            for user in &users {
                assert_eq!(
                    windows.fetch(user, t0, t0 + 10_000)?,
                    [(t0, 2), (t0 + 10_000, 1)],
                    "{user}"
                );
            }
            assert_eq!(
                windows.fetch_all(t0 + 10_000, t0 + 10_000)?.len(),
                users.len()
            );
            break;
        }
        anyhow::ensure!(Instant::now() < deadline, "{} windows", all.len());
        std::thread::sleep(Duration::from_millis(100));
    }
    let sessions = streams.session_store::<String, i64>("sessions")?;
    for user in &users {
        let found: Vec<(i64, i64, i64)> = sessions
            .fetch(user)?
            .into_iter()
            .map(|(k, n)| (k.window().start() - t0, k.window().end() - t0, n))
            .collect();
        assert_eq!(found, [(1_000, 2_000, 2), (12_000, 12_000, 1)], "{user}");
    }
    let err = streams
        .window_store::<String, i64>("sessions")
        .expect_err("a session store is no window store")
        .to_string();
    assert!(err.contains("holds a session store"), "{err}");
    streams.close(TIMEOUT)?;
    Ok(())
}

//! The exactly-once tests' application run as its own process, for tests that kill, freeze
//! and restart it: `summing-app BOOTSTRAP INPUT SUMS COUNTS APPLICATION_ID STATE_DIR
//! GUARANTEE LOG [INSTANCE_ID]`. Runs [`summing::topology`] under `processing.guarantee`
//! GUARANTEE, committing every 100 ms, with a 6 s session (`SUMMING_SET=key=value,...`
//! sets more) (as a static member
//! `INSTANCE_ID` when given), until killed. Each time it is running (restored, assigned),
//! it appends to LOG how many changelog records it has restored so far. `FAILPOINTS` (the
//! `fail` crate's) crashes it at a point of the exactly-once commit. HOMA's warnings go to
//! stderr (`RUST_LOG` sets more).

use std::io::Write;
use std::time::{Duration, Instant};

use homa::prelude::*;
use homa::runtime::State;
use homa_integration_tests::summing;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // The crash points the tests set in `FAILPOINTS`.
    let _crash_points = fail::FailScenario::setup();
    // HOMA's warnings (a transaction aborted, a rejoin) on stderr, which tests read.
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bootstrap, input, sums, counts, app, state_dir, guarantee, log, instance) = match &args[..]
    {
        [b, i, s, c, a, d, g, l] => (b, i, s, c, a, d, g, l, None),
        [b, i, s, c, a, d, g, l, instance] => (b, i, s, c, a, d, g, l, Some(instance)),
        _ => {
            return Err(
                "usage: summing-app BOOTSTRAP INPUT SUMS COUNTS APPLICATION_ID \
                            STATE_DIR GUARANTEE LOG [INSTANCE_ID]"
                    .into(),
            );
        }
    };
    let topology = summing::topology(input, sums, counts)?;

    let mut config = StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(bootstrap)
        .state_dir(state_dir)
        .set("processing.guarantee", guarantee)
        .commit_interval(Duration::from_millis(100))
        .set("consumer.session.timeout.ms", "6000")
        .set("consumer.heartbeat.interval.ms", "1000");
    if let Some(instance) = instance {
        config = config.set("group.instance.id", instance);
    }
    // Further settings, `key=value,key=value`, over these.
    for setting in std::env::var("SUMMING_SET").unwrap_or_default().split(',') {
        if let Some((key, value)) = setting.split_once('=') {
            config = config.set(key.trim(), value.trim());
        }
    }
    let mut streams = KafkaStreams::new(&topology, config.build()?)?;
    streams.set_uncaught_error_handler(|e| eprintln!("summing-app: {e}"));
    let started = Instant::now();
    streams.start()?;
    let mut was_running = false;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let state = streams.state();
        if matches!(state, State::Error | State::NotRunning) {
            return Err(format!("summing-app stopped: {state:?}").into());
        }
        let running = state == State::Running;
        if running && !was_running {
            let restored = streams.metrics().restored_records;
            let total: u64 = restored.values().sum();
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(log)?;
            writeln!(
                file,
                "pid {} running after {:.1} s: restored {total} records {restored:?}",
                std::process::id(),
                started.elapsed().as_secs_f64()
            )?;
        }
        was_running = running;
    }
}

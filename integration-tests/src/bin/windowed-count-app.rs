//! A windowed count run as its own process, for tests that kill it: `windowed-count-app
//! BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR [emit-final]`. Counts each key's records
//! in tumbling 10 s windows (grace 2 s) into the window store `clicks`, and writes each
//! window's final count, once it closes, to OUTPUT as `key@start` = count; runs until
//! killed. The final counts come through `suppress`, or with `emit-final` from the
//! aggregation itself (`EmitStrategy::on_window_close`, windows kept an hour).

use std::time::Duration;

use homa::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let (bootstrap, input, output, app, state_dir, emit_final) = match &args[..] {
        [bootstrap, input, output, app, state_dir] => {
            (bootstrap, input, output, app, state_dir, false)
        }
        [bootstrap, input, output, app, state_dir, mode] if mode == "emit-final" => {
            (bootstrap, input, output, app, state_dir, true)
        }
        _ => {
            return Err(
                "usage: windowed-count-app BOOTSTRAP INPUT OUTPUT APPLICATION_ID \
                        STATE_DIR [emit-final]"
                    .into(),
            );
        }
    };
    let mut builder = StreamsBuilder::new();
    let windowed = builder
        .stream::<String, String>(input)
        .group_by_key()
        .windowed_by(TimeWindows::of_size_and_grace(
            Duration::from_secs(10),
            Duration::from_secs(2),
        ));
    let finals = if emit_final {
        windowed
            .emit_strategy(EmitStrategy::on_window_close())
            .count_with(Materialized::as_("clicks").with_retention(Duration::from_secs(3600)))
    } else {
        windowed.count_with(Materialized::as_("clicks")).suppress(
            Suppressed::until_window_closes(BufferConfig::unbounded()).with_name("finals"),
        )
    };
    finals
        .to_stream()
        .map(|key, count| {
            let key = key.map_or_else(String::new, |k| {
                format!("{}@{}", k.key(), k.window().start())
            });
            (key, *count)
        })
        .to(output);
    let topology = builder.build()?;
    homa_integration_tests::run_until_killed(
        "windowed-count-app",
        &topology,
        [bootstrap, app, state_dir],
    )?;
    Ok(())
}

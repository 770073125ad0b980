//! A stream-stream join run as its own process, for tests that kill it: `stream-join-app
//! BOOTSTRAP LEFT RIGHT OUTPUT APPLICATION_ID STATE_DIR`. Joins each record of LEFT with
//! those of RIGHT of the same key up to 10 s apart (no grace) into OUTPUT as `left+right`,
//! its window stores logged; runs until killed.

use std::time::Duration;

use homa::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, left, right, output, app, state_dir] = &args[..] else {
        return Err(
            "usage: stream-join-app BOOTSTRAP LEFT RIGHT OUTPUT APPLICATION_ID STATE_DIR".into(),
        );
    };
    let mut builder = StreamsBuilder::new();
    let lefts = builder.stream::<String, String>(left);
    let rights = builder.stream::<String, String>(right);
    lefts
        .join_with(
            &rights,
            |l, r| format!("{l}+{r}"),
            JoinWindows::of_time_difference_with_no_grace(Duration::from_secs(10)),
            StreamJoined::with_store_name("pairs"),
        )
        .to(output);
    let topology = builder.build()?;
    homa_integration_tests::run_until_killed(
        "stream-join-app",
        &topology,
        [bootstrap, app, state_dir],
    )?;
    Ok(())
}

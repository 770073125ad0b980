//! A word count run as its own process, for tests that kill it: `word-count-app BOOTSTRAP
//! INPUT OUTPUT APPLICATION_ID STATE_DIR`. Counts the words of the input's values into the
//! store `word-counts` and writes each new count to OUTPUT; runs until killed.

use homa::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [bootstrap, input, output, app, state_dir] = &args[..] else {
        return Err("usage: word-count-app BOOTSTRAP INPUT OUTPUT APPLICATION_ID STATE_DIR".into());
    };
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(input)
        .flat_map_values(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .group_by_with(|_k, word| word.clone(), Grouped::as_("words"))
        .count_with(Materialized::as_("word-counts"))
        .to_stream()
        .to(output);
    let topology = builder.build()?;
    homa_integration_tests::run_until_killed(
        "word-count-app",
        &topology,
        [bootstrap, app, state_dir],
    )?;
    Ok(())
}

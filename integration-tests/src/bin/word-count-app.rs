//! A word count run as its own process, for tests that kill it: `word-count-app BOOTSTRAP
//! INPUT OUTPUT APPLICATION_ID STATE_DIR`. Counts the words of the input's values into the
//! store `word-counts` and writes each new count to OUTPUT; runs until killed.

use std::time::Duration;

use homa::prelude::*;
use homa::runtime::State;

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
    let config = StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(bootstrap)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(500))
        .set("consumer.session.timeout.ms", "10000")
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.set_uncaught_error_handler(|e| eprintln!("word-count-app: {e}"));
    streams.start()?;
    loop {
        std::thread::sleep(Duration::from_millis(200));
        if matches!(streams.state(), State::Error | State::NotRunning) {
            return Err(format!("stopped: {:?}", streams.state()).into());
        }
    }
}

//! `homa analyze`: the analysis pipelines of `homa_topologies` as one Kafka Streams
//! application. Start it more than once with the same `--application-id` and the
//! instances share the partitions, as one consumer group.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use homa::prelude::*;
use homa::runtime::State;

/// Options of `homa analyze`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    bootstrap: String,
    /// The application id: the consumer group, and the prefix of its internal topics.
    #[arg(long, default_value = "homa-analyze")]
    application_id: String,
    /// Where the instance keeps its state (default: a directory of the system's temp dir).
    #[arg(long)]
    state_dir: Option<PathBuf>,
    /// Stream threads.
    #[arg(long, default_value_t = 1)]
    threads: usize,
    /// Stop after this long (default: run until killed).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// Print the topology (text and Mermaid) and exit.
    #[arg(long)]
    describe: bool,
    /// A setting, `KEY=VALUE` as in a properties file; repeatable.
    #[arg(long = "set", value_parser = setting)]
    settings: Vec<(String, String)>,
}

fn setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// The analysis topology.
pub fn topology() -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    homa_topologies::build(&mut builder);
    Ok(builder.build()?)
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let topology = topology()?;
    if args.describe {
        let description = topology.describe();
        println!("{description}");
        println!("{}", description.to_mermaid());
        return Ok(());
    }
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("homa-analyze"));
    let config = StreamsConfig::builder()
        .application_id(&args.application_id)
        .bootstrap_servers(&args.bootstrap)
        .state_dir(state_dir)
        .set("num.stream.threads", args.threads.to_string())
        .set_all(args.settings.iter().cloned())
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams
        .start()
        .with_context(|| format!("starting {} at {}", args.application_id, args.bootstrap))?;
    println!(
        "analyzing as {} at {} ({} thread(s))",
        args.application_id, args.bootstrap, args.threads
    );
    let started = Instant::now();
    loop {
        let state = streams.state();
        if matches!(state, State::Error | State::NotRunning) {
            break;
        }
        if args.duration.is_some_and(|d| started.elapsed() >= d) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    streams.close(Duration::from_secs(30))?;
    let metrics = streams.metrics();
    println!(
        "processed {} records; {} dropped (late or without a key or value), {} skipped",
        metrics.processed_records, metrics.dropped_records, metrics.skipped_records
    );
    print_late_report(&metrics.late_records);
    Ok(())
}

/// The records dropped for coming after their window closed, per input (`orders`,
/// `excel-usage`), from the metrics' counts by the topic each was read from.
pub fn late_by_source(late: &BTreeMap<String, u64>) -> BTreeMap<String, u64> {
    let mut by_source = BTreeMap::new();
    for (topic, count) in late {
        let source = homa_topologies::source_of(topic).unwrap_or(topic);
        *by_source.entry(source.to_string()).or_default() += count;
    }
    by_source
}

/// Prints the late-data report: per input, the records dropped for being late.
pub fn print_late_report(late: &BTreeMap<String, u64>) {
    let by_source = late_by_source(late);
    if by_source.is_empty() {
        println!("late data: none dropped");
        return;
    }
    println!("late data (dropped after their window's grace), per source:");
    for (source, count) in by_source {
        println!("  {source:<12} {count:>8}");
    }
}

//! `homa-bench`: HOMA against Kafka Streams and a raw rdkafka passthrough. See `BENCHMARKS.md`.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, ensure};
use clap::{Args, Parser, Subcommand};
use homa_benchmarks::data::{DataSet, DataSpec, KeyDistribution};
use homa_benchmarks::launch::{JavaApp, Launcher};
use homa_benchmarks::measure::Bench;
use homa_benchmarks::report::{self, Environment};
use homa_benchmarks::worker::{self, WorkerArgs};
use homa_benchmarks::workload::{self, Expected, Side, System, WORKLOADS, Workload};
use homa_integration_tests::Kafka;

#[derive(Debug, Parser)]
#[command(
    name = "homa-bench",
    version,
    about = "HOMA against Kafka Streams and raw rdkafka"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Runs the benchmark and prints the tables (and writes them to the results directory).
    Run(RunArgs),
    /// Lists the workloads and the systems that run them.
    Workloads,
    /// Runs one system on one workload until killed (what `run` starts and measures).
    #[command(hide = true)]
    Worker {
        /// rdkafka or homa.
        system: String,
        #[command(flatten)]
        args: WorkerArgs,
    },
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Kafka's bootstrap servers; without it a broker is started with scripts/kafka.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS")]
    bootstrap: Option<String>,
    /// A small run that proves the harness works: checks outputs, not speed.
    #[arg(long)]
    quick: bool,
    /// Input records [default: 2000000; quick: 20000].
    #[arg(long)]
    records: Option<u64>,
    /// Distinct keys [default: 100000; quick: 1000].
    #[arg(long)]
    keys: Option<u64>,
    /// Bytes of each value.
    #[arg(long, default_value_t = 100)]
    value_bytes: usize,
    /// Draw keys from a Zipf distribution with this exponent instead of uniformly.
    #[arg(long)]
    zipf: Option<f64>,
    /// Partitions of the input and output topics.
    #[arg(long, default_value_t = 4)]
    partitions: i32,
    /// Rounds of every (workload, system) run [default: 3; quick: 1].
    #[arg(long)]
    rounds: Option<u32>,
    /// Workloads to run, by id [default: all].
    #[arg(long, value_delimiter = ',')]
    workloads: Vec<String>,
    /// Systems to run: rdkafka, homa, kafka-streams [default: all].
    #[arg(long, value_delimiter = ',')]
    systems: Vec<String>,
    /// Input records per second of the latency runs; 0 skips them [default: 10000; quick: 1000].
    #[arg(long)]
    latency_rate: Option<u64>,
    /// Seconds each latency run drives input [default: 10; quick: 2].
    #[arg(long)]
    latency_seconds: Option<u64>,
    /// commit.interval.ms of every system.
    #[arg(long, default_value_t = 1000)]
    commit_interval_ms: u64,
    /// statestore.cache.max.bytes of every system.
    #[arg(long, default_value_t = 10 * 1024 * 1024)]
    cache_max_bytes: u64,
    /// The Kafka Streams JVM's maximum heap (-Xmx).
    #[arg(long, default_value = "1g")]
    kafka_streams_heap: String,
    /// The Kafka Streams reference's Maven project [default: benchmarks/kafka-streams].
    #[arg(long)]
    kafka_streams_dir: Option<PathBuf>,
    /// Where to write the report [default: benchmarks/results; quick: nowhere].
    #[arg(long)]
    results_dir: Option<PathBuf>,
    /// What the broker is, for the report (version, how it was started).
    #[arg(long, default_value = "")]
    broker: String,
    /// A setting for every system, as in a properties file (`consumer.`/`producer.` prefixes
    /// for one client); repeatable.
    #[arg(long = "set", value_parser = worker::parse_setting)]
    settings: Vec<(String, String)>,
    /// Seed of the data generator.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Minutes of event time the input spans, in order (W3's windows fall in it).
    #[arg(long, default_value_t = 10)]
    event_minutes: u64,
}

/// The `benchmarks/` directory: read at run time when cargo runs us, else where we were built.
fn benchmarks_dir() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")), PathBuf::from)
}

fn main() -> anyhow::Result<()> {
    match Cli::parse().command {
        Command::Run(args) => run(args),
        Command::Workloads => {
            for w in WORKLOADS {
                let systems: Vec<&str> = w.systems.iter().map(|s| s.name()).collect();
                println!("{}  {:<24} {}", w.id, w.title, systems.join(", "));
            }
            Ok(())
        }
        Command::Worker { system, args } => worker::run(System::parse(&system)?, &args),
    }
}

fn run(args: RunArgs) -> anyhow::Result<()> {
    let quick = args.quick;
    let pick = |full: u64, small: u64| if quick { small } else { full };
    let spec = DataSpec {
        records: args.records.unwrap_or(pick(2_000_000, 20_000)),
        keys: args.keys.unwrap_or(pick(100_000, 1_000)),
        value_bytes: args.value_bytes,
        distribution: args
            .zipf
            .map_or(KeyDistribution::Uniform, KeyDistribution::Zipf),
        partitions: args.partitions,
        seed: args.seed,
        event_span_ms: i64::try_from(args.event_minutes.saturating_mul(60_000))?,
    };
    let rounds = args.rounds.unwrap_or(if quick { 1 } else { 3 });
    let latency_rate = args.latency_rate.unwrap_or(pick(10_000, 1_000));
    let latency_period = Duration::from_secs(args.latency_seconds.unwrap_or(pick(10, 2)));
    let workloads: Vec<&'static Workload> = if args.workloads.is_empty() {
        WORKLOADS.iter().collect()
    } else {
        args.workloads
            .iter()
            .map(|id| workload::find(id))
            .collect::<anyhow::Result<_>>()?
    };
    let systems: Vec<System> = if args.systems.is_empty() {
        System::ALL.to_vec()
    } else {
        args.systems
            .iter()
            .map(|s| System::parse(s))
            .collect::<anyhow::Result<_>>()?
    };
    let pairs: Vec<(&'static Workload, System)> = workloads
        .iter()
        .flat_map(|w| systems.iter().map(move |s| (*w, *s)))
        .filter(|(w, s)| w.systems.contains(s))
        .collect();
    ensure!(
        !pairs.is_empty(),
        "no workload is run by the systems chosen"
    );

    let java = if systems.contains(&System::KafkaStreams) {
        let dir = args
            .kafka_streams_dir
            .clone()
            .unwrap_or_else(|| benchmarks_dir().join("kafka-streams"));
        eprintln!("building the Kafka Streams reference in {}", dir.display());
        Some(JavaApp::build(&dir, &args.kafka_streams_heap)?)
    } else {
        None
    };
    let kafka = match &args.bootstrap {
        Some(bootstrap) => Kafka::at(bootstrap.clone()),
        None => Kafka::at(homa_integration_tests::kafka().bootstrap_servers()),
    };
    let mut settings = vec![
        (
            "commit.interval.ms".to_string(),
            args.commit_interval_ms.to_string(),
        ),
        (
            "statestore.cache.max.bytes".to_string(),
            args.cache_max_bytes.to_string(),
        ),
    ];
    settings.extend(args.settings.iter().cloned());
    let env = environment(&args, java.as_ref(), &settings, rounds);
    let bench = Bench::new(kafka, Launcher::new(java)?, spec.partitions, settings)?;

    eprintln!("data set: {spec}");
    let data = DataSet::load(bench.kafka(), &spec, &workloads)?;
    let mut measurements = Vec::new();
    for round in 1..=rounds {
        for (workload, system) in &pairs {
            let m = bench
                .throughput(&data, workload, *system)
                .with_context(|| format!("round {round}: {} on {system}", workload.id))?;
            eprintln!(
                "round {round}: {} on {system}: {:.0} records/s, {:.2} CPU s per M records, \
                 peak RSS {} MiB; output complete and correct",
                workload.id,
                m.records_per_second(),
                m.cpu_per_million(),
                m.peak_rss / (1024 * 1024)
            );
            measurements.push(m);
        }
    }
    // The restore runs: from scratch, on the aggregation whose every update reaches the
    // changelog; after a SIGKILL under exactly-once, its state directory kept (Kafka
    // Streams restores the whole changelog, HOMA the tail its stores do not have).
    let mut restores = Vec::new();
    for (id, wipe) in [("w2-nocache", true), ("w2-eos", false)] {
        let Some(w2) = workloads.iter().find(|w| w.id == id) else {
            continue;
        };
        for system in systems.iter().filter(|s| w2.systems.contains(s)) {
            let r = bench
                .restore(&data, w2, "w2-sums", *system, wipe)
                .with_context(|| format!("restore run of {id} on {system}"))?;
            eprintln!(
                "restore of {id} on {system}: restarted in {:.2} s ({} changelog records); a \
                 plain consumer reads them at {:.0} records/s",
                r.seconds,
                r.records,
                r.raw_records_per_second()
            );
            restores.push(r);
        }
    }
    let mut latencies = Vec::new();
    if latency_rate > 0 {
        // Latency is measured per record: on the workloads that write one per input.
        // (Not the joins: their second input is the data set's.)
        let per_record = pairs
            .iter()
            .filter(|(w, _)| matches!(w.expect, Expected::PerRecord(_)) && w.side.is_none());
        for (workload, system) in per_record {
            let l = bench
                .latency(&spec, workload, *system, latency_rate, latency_period)
                .with_context(|| format!("latency: {} on {system}", workload.id))?;
            eprintln!(
                "latency: {} on {system} at {latency_rate} records/s: p50 {:.1} ms, p99 {:.1} ms",
                workload.id, l.p50_ms, l.p99_ms
            );
            latencies.push(l);
        }
    }
    let sides = [Side::Table, Side::Stream].map(|side| side.topic(&data.topic));
    let sides = sides.iter().map(String::as_str);
    let topics: Vec<&str> = std::iter::once(data.topic.as_str()).chain(sides).collect();
    bench.kafka().delete_topics(&topics)?;

    let document = report::document(&env, &spec, &measurements, &restores, &latencies);
    println!("{document}");
    let results_dir = args
        .results_dir
        .clone()
        .or_else(|| (!quick).then(|| benchmarks_dir().join("results")));
    if let Some(dir) = results_dir {
        std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
        let name = format!(
            "{}{}.md",
            env.date.replace(':', "").trim_end_matches('Z'),
            if quick { "-quick" } else { "" }
        );
        let path = dir.join(name);
        std::fs::write(&path, &document).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote {}", path.display());
    }
    if quick {
        println!(
            "quick mode: {} throughput, {} restore and {} latency runs, every output complete and correct",
            measurements.len(),
            restores.len(),
            latencies.len()
        );
    }
    Ok(())
}

fn environment(
    args: &RunArgs,
    java: Option<&JavaApp>,
    settings: &[(String, String)],
    rounds: u32,
) -> Environment {
    let mut versions = vec![
        ("HOMA".to_string(), env!("CARGO_PKG_VERSION").to_string()),
        (
            "librdkafka".to_string(),
            rdkafka::util::get_rdkafka_version().1,
        ),
    ];
    if let Some(java) = java {
        versions.push((
            "Kafka Streams".to_string(),
            java.kafka_streams_version.clone(),
        ));
        versions.push(("JVM".to_string(), java.java_version.clone()));
    }
    if !args.broker.is_empty() {
        versions.push(("broker".to_string(), args.broker.clone()));
    }
    let mut parameters = vec![
        ("rounds".to_string(), rounds.to_string()),
        (
            "build".to_string(),
            if cfg!(debug_assertions) {
                "debug (figures are not comparable)"
            } else {
                "release"
            }
            .to_string(),
        ),
    ];
    parameters.extend(settings.iter().cloned());
    if let Some(java) = java {
        parameters.push(("Kafka Streams heap (-Xmx)".to_string(), java.heap.clone()));
    }
    Environment::here(versions, parameters)
}

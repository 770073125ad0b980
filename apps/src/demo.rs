//! `homa demo`: the whole job end to end, for a first run. On an embedded Kafka
//! (librdkafka's in-process mock cluster: no broker, no Java, no Docker), or on a real one
//! with `--bootstrap`:
//!
//! 1. the menu and employee workbooks, as the people who own them keep them in Excel;
//! 2. `excel-import` of both into their compacted topics;
//! 3. `ingest generate`: a few simulated hours of burger orders and Excel use;
//! 4. `analyze`: the analysis topologies, until they have read every input record;
//! 5. `excel-export`: the results workbook, once the export has read every result.
//!
//! It leaves its files in `homa-demo/` and prints what the results say and how long each
//! stage took.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use homa::prelude::*;
use homa::runtime::{EmbeddedKafka, State};
use homa_topologies::excel::{DEPARTMENT_USAGE_PER_DAY, EMPLOYEES, EXCEL_SESSIONS, EXCEL_USAGE};
use homa_topologies::generate::{self, Workload};
use homa_topologies::orders::{
    MENU, ORDERS, REVENUE_PER_CHANNEL_HOUR, REVENUE_PER_STORE_MINUTE, TOP_ITEMS_PER_HOUR,
    UNKNOWN_ITEMS,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::import::{self, TableKind};
use crate::workbook::Results;
use crate::{analyze, export, ingest, topics, workbook};

/// Partitions of each of the demo's topics.
const PARTITIONS: i32 = 4;

/// How long a stage may wait for the applications to read their input.
const STAGE_TIMEOUT: Duration = Duration::from_secs(300);

/// Options of `homa demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Where the demo leaves its files.
    #[arg(long, default_value = "homa-demo")]
    output: PathBuf,
    /// Hours of simulated orders and Excel use.
    #[arg(long, default_value_t = 3)]
    hours: i64,
    /// Seed of the generator: the same seed makes the same data.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// How long the simulated hours take to come in, while the analysis runs (0: as fast
    /// as Kafka takes them, which makes many records late for their windows).
    #[arg(long, default_value = "8s", value_parser = humantime::parse_duration)]
    pace: Duration,
    /// Run against this Kafka (e.g. `scripts/kafka start`'s) instead of the embedded one;
    /// the demo's topics are created there if missing.
    #[arg(long, value_name = "HOST:PORT")]
    bootstrap: Option<String>,
}

/// The stages run so far, with how long each took.
#[derive(Default)]
struct Stages(Vec<(&'static str, Duration, String)>);

impl Stages {
    fn run<T>(
        &mut self,
        name: &'static str,
        stage: impl FnOnce() -> anyhow::Result<(T, String)>,
    ) -> anyhow::Result<T> {
        println!("==> {name}");
        let started = Instant::now();
        // A stage without a bar of its own shows that it is at work.
        let spinner = match name {
            "ingest" | "analyze" | "excel-export" => None,
            _ => {
                let spinner = indicatif::ProgressBar::new_spinner().with_message(name);
                spinner.enable_steady_tick(Duration::from_millis(100));
                Some(spinner)
            }
        };
        let outcome = stage().with_context(|| format!("demo stage {name}"));
        if let Some(spinner) = spinner {
            spinner.finish_and_clear();
        }
        let (value, what) = outcome?;
        let took = started.elapsed();
        println!("    {what} ({:.1} s)", took.as_secs_f64());
        self.0.push((name, took, what));
        Ok(value)
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.output)
        .with_context(|| format!("creating {}", args.output.display()))?;
    let output = args.output.canonicalize()?;
    let state_dir = output.join("state");
    // A fresh state each run: the applications read everything again.
    let _ = std::fs::remove_dir_all(&state_dir);
    let run_id = ingest::now_ms();
    let mut stages = Stages::default();

    // The embedded Kafka runs until the demo ends.
    let (_embedded, bootstrap) = stages.run("kafka", || match &args.bootstrap {
        Some(bootstrap) => {
            create_topics(bootstrap, None)?;
            let what = format!("the topics at {bootstrap}");
            Ok(((None, bootstrap.clone()), what))
        }
        None => {
            let embedded = EmbeddedKafka::start(1)?;
            let bootstrap = embedded.bootstrap_servers().to_string();
            create_topics(&bootstrap, Some(&embedded))?;
            let what = format!(
                "embedded Kafka (librdkafka's mock cluster) at {bootstrap}, {} topics",
                TOPICS.len()
            );
            Ok(((Some(embedded), bootstrap), what))
        }
    })?;

    let mut workload = Workload::demo(args.seed, args.hours);
    let now = ingest::now_ms();
    workload.start_ms = now - now.rem_euclid(3_600_000) - workload.span_ms;
    let (menu_path, staff_path) = (output.join("menu.xlsx"), output.join("employees.xlsx"));
    stages.run("workbooks", || {
        write_tables(&menu_path, &staff_path, workload.users)?;
        Ok((
            (),
            format!("{} and {}", menu_path.display(), staff_path.display()),
        ))
    })?;
    stages.run("excel-import", || {
        let menu = import::import(&bootstrap, &menu_path, TableKind::Menu, (None, "id"), MENU)?;
        let staff = import::import(
            &bootstrap,
            &staff_path,
            TableKind::Employees,
            (None, "id"),
            EMPLOYEES,
        )?;
        Ok((
            (),
            format!("{} menu items, {} employees", menu.rows, staff.rows),
        ))
    })?;
    let topology = analyze::topology()?;
    let description = topology.describe();
    std::fs::write(output.join("topology.txt"), description.to_string())?;
    std::fs::write(output.join("topology.mmd"), description.to_mermaid())?;
    // The analysis runs while the orders and Excel actions come in, as it would live.
    let id = format!("homa-demo-analyze-{run_id}");
    let mut analysis = start(&topology, config(&bootstrap, &id, &state_dir)?)?;
    let events = generate::events(&workload).len();
    let pace = if args.pace.is_zero() {
        0
    } else {
        (events as f64 / args.pace.as_secs_f64()).ceil() as u64
    };
    stages.run("ingest", || {
        let mut sink = ingest::Sink::new(&bootstrap)?;
        let (events, seconds) = ingest::generate_events(&mut sink, &workload, pace, None, "")?;
        let rate = events as f64 / seconds.max(1e-9);
        let what = format!(
            "{events} orders and Excel actions over {} simulated hours, at {rate:.0} records/s{}",
            args.hours,
            if pace > 0 { " (--pace)" } else { "" }
        );
        Ok(((), what))
    })?;
    let processed = stages.run("analyze", || {
        // The menu is a global table: read by no consumer group.
        let inputs = [ORDERS, EXCEL_USAGE, EMPLOYEES];
        wait_until_read(&analysis, (&bootstrap, &id), &inputs)?;
        analysis.close(Duration::from_secs(30))?;
        let metrics = analysis.metrics();
        let what = format!(
            "{} records processed, {} dropped (late, or without a key or value)",
            metrics.processed_records, metrics.dropped_records
        );
        analyze::print_late_report(&metrics.late_records);
        let offsets: BaseConsumer = ClientConfig::new()
            .set("bootstrap.servers", &bootstrap)
            .create()?;
        let unknown: i64 = end_offsets(&offsets, &[UNKNOWN_ITEMS])?.values().sum();
        println!("order lines of items not on the menu: {unknown} (in {UNKNOWN_ITEMS})");
        Ok((metrics.processed_records, what))
    })?;
    let workbook_path = output.join("homa-results.xlsx");
    let results = stages.run("excel-export", || {
        let id = format!("homa-demo-export-{run_id}");
        let config = config(&bootstrap, &id, &state_dir)?;
        let results_topics = [
            REVENUE_PER_STORE_MINUTE,
            REVENUE_PER_CHANNEL_HOUR,
            TOP_ITEMS_PER_HOUR,
            EXCEL_SESSIONS,
            DEPARTMENT_USAGE_PER_DAY,
            MENU,
        ];
        let mut export = start(&export::topology()?, config)?;
        wait_until_read(&export, (&bootstrap, &id), &results_topics)?;
        let results = export::collect(&export)?;
        export.close(Duration::from_secs(30))?;
        let written = workbook::write(&workbook_path, &results, ingest::now_ms())?;
        Ok((results, format!("{}", written.display())))
    })?;

    print_summary(&results);
    println!();
    println!("Stages:");
    for (name, took, _) in &stages.0 {
        println!("  {name:<13} {:>6.1} s", took.as_secs_f64());
    }
    println!(
        "  {:<13} {:>6.1} s  ({processed} records analysed)",
        "total",
        started.elapsed().as_secs_f64()
    );
    println!();
    println!(
        "In {}: homa-results.xlsx (the results), menu.xlsx and employees.xlsx (the inputs),\n\
         topology.txt and topology.mmd (the analysis, as text and Mermaid).",
        output.display()
    );
    Ok(())
}

/// The demo's topics: (name, compacted).
const TOPICS: [(&str, bool); 10] = [
    (ORDERS, false),
    (EXCEL_USAGE, false),
    (MENU, true),
    (EMPLOYEES, true),
    (REVENUE_PER_STORE_MINUTE, false),
    (REVENUE_PER_CHANNEL_HOUR, false),
    (TOP_ITEMS_PER_HOUR, false),
    (EXCEL_SESSIONS, false),
    (DEPARTMENT_USAGE_PER_DAY, false),
    (UNKNOWN_ITEMS, false),
];

fn create_topics(bootstrap: &str, embedded: Option<&EmbeddedKafka>) -> anyhow::Result<()> {
    for (topic, compact) in TOPICS {
        match embedded {
            Some(kafka) => kafka.create_topic(topic, PARTITIONS)?,
            None => topics::create(bootstrap, &[topic], PARTITIONS, compact)?,
        }
    }
    Ok(())
}

/// The menu and employee workbooks, one sheet each with a header row.
fn write_tables(menu: &Path, staff: &Path, users: usize) -> anyhow::Result<()> {
    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Menu")?;
    let price = rust_xlsxwriter::Format::new().set_num_format("0.00");
    for (c, header) in ["id", "name", "category", "price"].into_iter().enumerate() {
        sheet.write_string(0, u16::try_from(c)?, header)?;
    }
    for (r, (id, item)) in (1u32..).zip(generate::menu()) {
        sheet.write_string(r, 0, id)?;
        sheet.write_string(r, 1, item.name)?;
        sheet.write_string(r, 2, item.category)?;
        sheet.write_number_with_format(r, 3, item.price as f64 / 100.0, &price)?;
    }
    sheet.autofit();
    book.save(menu)
        .with_context(|| format!("writing {}", menu.display()))?;

    let mut book = rust_xlsxwriter::Workbook::new();
    let sheet = book.add_worksheet().set_name("Employees")?;
    for (c, header) in ["id", "department", "role"].into_iter().enumerate() {
        sheet.write_string(0, u16::try_from(c)?, header)?;
    }
    for (r, (id, employee)) in (1u32..).zip(generate::employees(users)) {
        sheet.write_string(r, 0, id)?;
        sheet.write_string(r, 1, employee.department)?;
        sheet.write_string(r, 2, employee.role)?;
    }
    sheet.autofit();
    book.save(staff)
        .with_context(|| format!("writing {}", staff.display()))?;
    Ok(())
}

fn config(bootstrap: &str, id: &str, state_dir: &Path) -> anyhow::Result<StreamsConfig> {
    Ok(StreamsConfig::builder()
        .application_id(id)
        .bootstrap_servers(bootstrap)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(200))
        .build()?)
}

/// Starts `topology` and waits until it runs.
fn start(topology: &Topology, config: StreamsConfig) -> anyhow::Result<KafkaStreams> {
    let mut streams = KafkaStreams::new(topology, config)?;
    streams.start()?;
    let deadline = Instant::now() + STAGE_TIMEOUT;
    while streams.state() != State::Running {
        if Instant::now() > deadline || matches!(streams.state(), State::Error) {
            bail!("the application did not start: {:?}", streams.state());
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(streams)
}

/// Waits until the consumer group of `streams` has committed the end of every partition
/// of `inputs` and its processing has settled (what the inputs made has gone through its
/// internal topics too). A progress bar follows the records committed.
fn wait_until_read(
    streams: &KafkaStreams,
    (bootstrap, group): (&str, &str),
    inputs: &[&str],
) -> anyhow::Result<()> {
    let offsets: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", group)
        .create()?;
    let ends = end_offsets(&offsets, inputs)?;
    let total: i64 = ends.values().sum();
    let bar = ingest::progress(u64::try_from(total).unwrap_or(0), "read");
    let deadline = Instant::now() + STAGE_TIMEOUT;
    let mut settled: Option<(u64, Instant)> = None;
    loop {
        if matches!(streams.state(), State::Error | State::NotRunning) {
            bail!("{group} stopped: {:?}", streams.state());
        }
        if Instant::now() > deadline {
            bail!("{group} had not read its input after {STAGE_TIMEOUT:?}");
        }
        let committed = committed(&offsets, &ends)?;
        bar.set_position(u64::try_from(committed).unwrap_or(0));
        let processed = streams.metrics().processed_records;
        if committed >= total && streams.state() == State::Running {
            match settled {
                Some((seen, since)) if seen == processed => {
                    if since.elapsed() >= Duration::from_secs(1) {
                        break;
                    }
                }
                _ => settled = Some((processed, Instant::now())),
            }
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    bar.finish_and_clear();
    Ok(())
}

/// The end offset of each partition of `topics`.
fn end_offsets(
    client: &BaseConsumer,
    topics: &[&str],
) -> anyhow::Result<BTreeMap<(String, i32), i64>> {
    let mut ends = BTreeMap::new();
    for topic in topics {
        for partition in 0..PARTITIONS {
            let (_, end) = client
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .with_context(|| format!("the end of {topic}/{partition}"))?;
            ends.insert(((*topic).to_string(), partition), end);
        }
    }
    Ok(ends)
}

/// How many of the records up to `ends` the group has committed.
fn committed(client: &BaseConsumer, ends: &BTreeMap<(String, i32), i64>) -> anyhow::Result<i64> {
    let mut list = TopicPartitionList::new();
    for (topic, partition) in ends.keys() {
        list.add_partition(topic, *partition);
    }
    let committed = client.committed_offsets(list, Duration::from_secs(10))?;
    Ok(committed
        .elements()
        .iter()
        .map(|e| match e.offset() {
            Offset::Offset(at) => at.min(ends[&(e.topic().to_string(), e.partition())]),
            _ => 0,
        })
        .sum())
}

/// The headline figures: revenue per store, and the items sold most.
fn print_summary(results: &Results) {
    let mut stores: BTreeMap<&str, (i64, u64)> = BTreeMap::new();
    for (store, _, revenue, orders) in &results.revenue {
        let entry = stores.entry(store).or_default();
        entry.0 += revenue;
        entry.1 += orders;
    }
    println!();
    println!("Revenue per store (closed minutes):");
    println!("  {:<8} {:>12} {:>8}", "store", "revenue", "orders");
    for (store, (revenue, orders)) in &stores {
        println!(
            "  {store:<8} {:>12} {orders:>8}",
            format!("{:.2}", *revenue as f64 / 100.0)
        );
    }
    let mut items: BTreeMap<(&str, &str), u64> = BTreeMap::new();
    for (_, _, id, name, quantity) in &results.top_items {
        *items.entry((id, name)).or_default() += quantity;
    }
    let mut items: Vec<_> = items.into_iter().collect();
    items.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    println!();
    println!("Top items (summed over the hourly top 10s):");
    println!("  {:<4} {:<20} {:>8}", "rank", "item", "quantity");
    for (rank, ((_, name), quantity)) in items.iter().take(10).enumerate() {
        println!("  {:<4} {name:<20} {quantity:>8}", rank + 1);
    }
}

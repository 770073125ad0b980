//! `homa excel-export`: keeps the results workbook in step with the analysis. A HOMA app of
//! its own: it reads the result topics (and the menu, for item names) as tables and, every
//! `--interval` and when it stops, writes their rows as the workbook (`workbook`).

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::Context;
use homa::prelude::*;
use homa::runtime::State;
use homa_topologies::excel::{DEPARTMENT_USAGE_PER_DAY, EXCEL_SESSIONS};
use homa_topologies::model::{DepartmentUsage, ItemCounts, MenuItem, Revenue, SessionStats};
use homa_topologies::orders::{
    MENU, REVENUE_PER_CHANNEL_HOUR, REVENUE_PER_STORE_MINUTE, TOP_ITEMS_PER_HOUR,
};

use crate::workbook::{self, Results};

/// Options of `homa excel-export`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    bootstrap: String,
    /// The workbook to keep.
    #[arg(long, default_value = "homa-results.xlsx")]
    output: PathBuf,
    /// How often to write it.
    #[arg(long, default_value = "10s", value_parser = humantime::parse_duration)]
    interval: Duration,
    /// Stop after this long, with a last write (default: run until killed).
    #[arg(long, value_parser = humantime::parse_duration)]
    duration: Option<Duration>,
    /// The application id of the export (its consumer group).
    #[arg(long, default_value = "homa-excel-export")]
    application_id: String,
    /// Where it keeps its state (default: a directory of the system's temp dir).
    #[arg(long)]
    state_dir: Option<PathBuf>,
}

/// The names of the export's stores.
const REVENUE: &str = "export-revenue";
const CHANNELS: &str = "export-channels";
const ITEMS: &str = "export-items";
const SESSIONS: &str = "export-sessions";
const DEPARTMENTS: &str = "export-departments";
const NAMES: &str = "export-menu";

/// The result topics as tables, and the menu.
pub fn topology() -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    builder.table::<Vec<u8>, Json<Revenue>>(REVENUE_PER_STORE_MINUTE, Materialized::as_(REVENUE));
    builder.table::<Vec<u8>, Json<Revenue>>(REVENUE_PER_CHANNEL_HOUR, Materialized::as_(CHANNELS));
    builder.table::<i64, Json<ItemCounts>>(TOP_ITEMS_PER_HOUR, Materialized::as_(ITEMS));
    builder.table::<Vec<u8>, Json<SessionStats>>(EXCEL_SESSIONS, Materialized::as_(SESSIONS));
    builder.table::<Vec<u8>, Json<DepartmentUsage>>(
        DEPARTMENT_USAGE_PER_DAY,
        Materialized::as_(DEPARTMENTS),
    );
    builder.table::<String, Json<MenuItem>>(MENU, Materialized::as_(NAMES));
    Ok(builder.build()?)
}

/// A windowed key's record key and the 8-byte time that ends it.
fn split_time(key: &[u8]) -> Option<(String, i64)> {
    let at = key.len().checked_sub(8)?;
    let (name, time) = key.split_at(at);
    Some((
        String::from_utf8_lossy(name).into_owned(),
        i64::from_be_bytes(time.try_into().ok()?),
    ))
}

/// The rows the export's tables hold now.
pub fn collect(streams: &KafkaStreams) -> anyhow::Result<Results> {
    let mut results = Results::default();
    for entry in streams.store::<Vec<u8>, Json<Revenue>>(REVENUE)?.all()? {
        let (key, value) = entry?;
        if let Some((store, start)) = split_time(&key) {
            results
                .revenue
                .push((store, start, value.revenue, value.orders));
        }
    }
    results
        .revenue
        .sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    for entry in streams.store::<Vec<u8>, Json<Revenue>>(CHANNELS)?.all()? {
        let (key, value) = entry?;
        if let Some((channel, start)) = split_time(&key) {
            results
                .channels
                .push((channel, start, value.revenue, value.orders));
        }
    }
    results
        .channels
        .sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    let names = streams.store::<String, Json<MenuItem>>(NAMES)?;
    for entry in streams.store::<i64, Json<ItemCounts>>(ITEMS)?.all()? {
        let (hour, counts) = entry?;
        for (rank, (item, quantity)) in counts.top(10).into_iter().enumerate() {
            let name = names
                .get(&item)?
                .map_or_else(|| item.clone(), |m| m.name.clone());
            let rank = u32::try_from(rank + 1)?;
            results.top_items.push((hour, rank, item, name, quantity));
        }
    }
    results.top_items.sort_by_key(|a| (a.0, a.1));
    for entry in streams
        .store::<Vec<u8>, Json<SessionStats>>(SESSIONS)?
        .all()?
    {
        let (key, stats) = entry?;
        // A session's key: the user, its end, then its start.
        let Some((_, start)) = split_time(&key) else {
            continue;
        };
        let Some((user, end)) = split_time(&key[..key.len() - 8]) else {
            continue;
        };
        results
            .sessions
            .push((user, start, end, stats.actions, stats.edits, stats.formulas));
    }
    results
        .sessions
        .sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    for entry in streams
        .store::<Vec<u8>, Json<DepartmentUsage>>(DEPARTMENTS)?
        .all()?
    {
        let (key, day) = entry?;
        if let Some((department, start)) = split_time(&key) {
            let s = day.stats;
            let users = day.users.len() as u64;
            results
                .departments
                .push((department, start, s.actions, s.edits, s.formulas, users));
        }
    }
    results
        .departments
        .sort_by(|a, b| (a.1, &a.0).cmp(&(b.1, &b.0)));
    Ok(results)
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let state_dir = args
        .state_dir
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("homa-excel-export"));
    let config = StreamsConfig::builder()
        .application_id(&args.application_id)
        .bootstrap_servers(&args.bootstrap)
        .state_dir(state_dir)
        .commit_interval(Duration::from_millis(500))
        .build()?;
    let mut streams = KafkaStreams::new(&topology()?, config)?;
    streams
        .start()
        .with_context(|| format!("starting the export at {}", args.bootstrap))?;
    let started = Instant::now();
    let mut last = Instant::now();
    loop {
        let state = streams.state();
        if matches!(state, State::Error | State::NotRunning) {
            break;
        }
        let done = args.duration.is_some_and(|d| started.elapsed() >= d);
        if (done || last.elapsed() >= args.interval) && state == State::Running {
            let written =
                workbook::write(&args.output, &collect(&streams)?, crate::ingest::now_ms())?;
            println!("wrote {}", written.display());
            last = Instant::now();
        }
        if done {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    streams.close(Duration::from_secs(30))?;
    Ok(())
}

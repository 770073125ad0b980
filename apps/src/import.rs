//! `homa excel-import`: a sheet of a workbook into a compacted topic, one record a row
//! keyed by its `--key` column, so that the topic matches the sheet. Its columns are
//! checked against the kind's schema (a price is a number); a wrong cell stops the import,
//! naming the sheet, the row and the column. A row removed from the sheet since the last
//! import becomes a tombstone: the topic's keys (read to its end) that the sheet no longer
//! has are deleted. `--watch` imports again whenever the file changes.
//!
//! This is the Excel-to-HOMA direction: the people who own the menu and the employee list
//! keep them in Excel.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use calamine::{Data, Reader, Xlsx, open_workbook};
use clap::ValueEnum;
use homa_topologies::model::{Employee, MenuItem};
use homa_topologies::{excel, orders};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use rdkafka::{ClientConfig, Offset, TopicPartitionList};

use crate::ingest::Sink;

/// Options of `homa excel-import`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    bootstrap: String,
    /// The workbook.
    path: PathBuf,
    /// What the sheet holds.
    #[arg(long, value_enum)]
    kind: TableKind,
    /// The sheet (default: the first).
    #[arg(long)]
    sheet: Option<String>,
    /// The column whose value keys each row.
    #[arg(long, default_value = "id")]
    key: String,
    /// The topic (default: the kind's).
    #[arg(long)]
    topic: Option<String>,
    /// Import again whenever the file changes, until killed.
    #[arg(long)]
    watch: bool,
}

/// A table kept in Excel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TableKind {
    /// Menu items: id, name, category, price (in the currency, e.g. 5.99).
    Menu,
    /// Employees: id, department, role.
    Employees,
}

impl TableKind {
    fn topic(self) -> &'static str {
        match self {
            TableKind::Menu => orders::MENU,
            TableKind::Employees => excel::EMPLOYEES,
        }
    }

    fn columns(self) -> &'static [&'static str] {
        match self {
            TableKind::Menu => &["id", "name", "category", "price"],
            TableKind::Employees => &["id", "department", "role"],
        }
    }
}

/// What an import did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Imported {
    pub rows: u64,
    /// Keys the sheet no longer has, deleted.
    pub tombstones: u64,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let topic = args
        .topic
        .clone()
        .unwrap_or_else(|| args.kind.topic().to_string());
    let import = || -> anyhow::Result<()> {
        let done = import(
            &args.bootstrap,
            &args.path,
            args.kind,
            (args.sheet.as_deref(), &args.key),
            &topic,
        )?;
        println!(
            "{}: {} rows imported into {topic}, {} removed rows deleted",
            args.path.display(),
            done.rows,
            done.tombstones
        );
        Ok(())
    };
    import()?;
    if !args.watch {
        return Ok(());
    }
    let modified = |path: &Path| std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut last: Option<SystemTime> = modified(&args.path);
    loop {
        std::thread::sleep(Duration::from_secs(1));
        let now = modified(&args.path);
        if now != last {
            last = now;
            if let Err(e) = import() {
                eprintln!("{e:#}");
            }
        }
    }
}

/// A cell as text (a number without a fraction as a whole number).
fn text(cell: &Data) -> Option<String> {
    match cell {
        Data::Empty => None,
        Data::String(s) => Some(s.trim().to_string()).filter(|s| !s.is_empty()),
        Data::Float(f) if f.fract() == 0.0 => Some(format!("{f:.0}")),
        Data::Int(i) => Some(i.to_string()),
        other => Some(other.to_string()),
    }
}

/// Imports `sheet` (the first when none) of the workbook at `path`, keyed by column `key`,
/// into `topic`, deleting the keys the sheet no longer has.
pub fn import(
    bootstrap: &str,
    path: &Path,
    kind: TableKind,
    (sheet, key): (Option<&str>, &str),
    topic: &str,
) -> anyhow::Result<Imported> {
    let mut workbook: Xlsx<_> =
        open_workbook(path).with_context(|| format!("opening {}", path.display()))?;
    let sheet = match sheet {
        Some(sheet) => sheet.to_string(),
        None => workbook
            .sheet_names()
            .first()
            .cloned()
            .with_context(|| format!("{} has no sheet", path.display()))?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .with_context(|| format!("{}: sheet {sheet}", path.display()))?;
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|row| row.iter().map(|c| text(c).unwrap_or_default()).collect())
        .unwrap_or_default();
    let at = |name: &str| header.iter().position(|h| h == name);
    let mut columns = BTreeMap::new();
    for name in kind.columns().iter().copied().chain([key]) {
        let index = at(name).with_context(|| {
            format!(
                "{} sheet {sheet}: no column {name:?} in the header {header:?} (a {kind:?} sheet has {:?})",
                path.display(),
                kind.columns()
            )
        })?;
        columns.insert(name, index);
    }
    let mut records: Vec<(String, Vec<u8>)> = Vec::new();
    for (n, row) in rows.enumerate() {
        // Excel's numbering: the header is row 1.
        let row_number = n + 2;
        if row.iter().all(|c| matches!(c, Data::Empty)) {
            continue;
        }
        let cell = |name: &str| row.get(columns[name]).unwrap_or(&Data::Empty);
        let wrong = |name: &str, what: &str| {
            anyhow::anyhow!(
                "{} sheet {sheet} row {row_number} column {name}: {what}, found {:?}",
                path.display(),
                cell(name)
            )
        };
        let field = |name: &str| text(cell(name)).ok_or_else(|| wrong(name, "a value is needed"));
        let value = match kind {
            TableKind::Menu => {
                let price = match cell("price") {
                    Data::Float(f) => (f * 100.0).round() as i64,
                    Data::Int(i) => i * 100,
                    _ => return Err(wrong("price", "a price is a number")),
                };
                serde_json::to_vec(&MenuItem {
                    name: field("name")?,
                    category: field("category")?,
                    price,
                })?
            }
            TableKind::Employees => serde_json::to_vec(&Employee {
                department: field("department")?,
                role: field("role")?,
            })?,
        };
        records.push((field(key)?, value));
    }
    let present: BTreeSet<String> = current_keys(bootstrap, topic)?;
    let mut sink = Sink::new(bootstrap)?;
    let now = crate::ingest::now_ms();
    let keys: BTreeSet<&String> = records.iter().map(|(k, _)| k).collect();
    let gone: Vec<&String> = present.iter().filter(|k| !keys.contains(k)).collect();
    for (key, value) in &records {
        sink.send(topic, key, Some(value), now, None)?;
    }
    for key in &gone {
        sink.send(topic, key, None, now, None)?;
    }
    sink.flush()?;
    Ok(Imported {
        rows: records.len() as u64,
        tombstones: gone.len() as u64,
    })
}

/// The keys `topic` holds a value for now: its records read to their end, the last of
/// each key counting (a tombstone removes it).
fn current_keys(bootstrap: &str, topic: &str) -> anyhow::Result<BTreeSet<String>> {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", bootstrap)
        .set("group.id", "homa-excel-import")
        .set("enable.auto.commit", "false")
        .create()
        .context("creating a consumer")?;
    let timeout = Duration::from_secs(30);
    let metadata = consumer
        .fetch_metadata(Some(topic), timeout)
        .with_context(|| format!("the metadata of {topic}"))?;
    let Some(meta) = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic && t.error().is_none())
    else {
        bail!("topic {topic} does not exist (make it with homa topics create {topic} --compact)");
    };
    let mut assignment = TopicPartitionList::new();
    let mut ends = BTreeMap::new();
    for p in meta.partitions() {
        let (_, high) = consumer.fetch_watermarks(topic, p.id(), timeout)?;
        if high > 0 {
            assignment.add_partition_offset(topic, p.id(), Offset::Beginning)?;
            ends.insert(p.id(), high);
        }
    }
    let mut keys = BTreeSet::new();
    if ends.is_empty() {
        return Ok(keys);
    }
    consumer.assign(&assignment)?;
    let deadline = std::time::Instant::now() + timeout;
    while !ends.is_empty() {
        if std::time::Instant::now() > deadline {
            bail!("reading {topic} to its end took more than {timeout:?}");
        }
        let Some(message) = consumer.poll(Duration::from_millis(100)) else {
            continue;
        };
        let message = message.with_context(|| format!("reading {topic}"))?;
        let key = String::from_utf8_lossy(message.key().unwrap_or_default()).into_owned();
        match message.payload() {
            Some(_) => keys.insert(key),
            None => keys.remove(&key),
        };
        if ends
            .get(&message.partition())
            .is_some_and(|end| message.offset() + 1 >= *end)
        {
            ends.remove(&message.partition());
        }
    }
    Ok(keys)
}

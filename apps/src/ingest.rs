//! `homa ingest`: records into their topics, as JSON, each stamped with its event time.
//!
//! `generate` produces the synthetic workload of `homa_topologies::generate` (the menu and
//! employees first, then orders and Excel actions in arrival order, late ones late) at a
//! target rate; `file` reads CSV or JSON lines. A row that cannot be read is reported with
//! its file, line and column, and goes where `--on-error` says: stop (`fail`, the default),
//! a rejects file (`rejects=PATH`) or a dead-letter topic (`dlq=TOPIC`, the row as read,
//! with headers naming where it came from and why). Nothing is dropped unseen: the summary
//! counts rows read, records written and rows rejected.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::{Subcommand, ValueEnum};
use homa_topologies::generate::{self, Event, Workload};
use homa_topologies::model::{Channel, Employee, ExcelUsage, MenuItem, Order, OrderLine};
use homa_topologies::{excel, orders};
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::ClientConfig;
use rdkafka::ClientContext;
use rdkafka::Message;
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::types::RDKafkaErrorCode;
use serde::Deserialize;

/// Options of `homa ingest`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Produces a synthetic workload: the menu, the employees, then orders and Excel
    /// actions.
    Generate {
        /// Seed of the generator: the same seed makes the same records.
        #[arg(long, default_value_t = 42)]
        seed: u64,
        /// Hours of event time the orders and actions span.
        #[arg(long, default_value_t = 2)]
        hours: i64,
        /// Event time the simulated hours start at, in ms since the epoch (default: that
        /// many hours before the current hour began, so that a broker's time-based
        /// retention keeps the records).
        #[arg(long)]
        start_ms: Option<i64>,
        /// Records a second at most (0: as fast as the broker takes them).
        #[arg(long, default_value_t = 0)]
        rate: u64,
        /// Stop after this many orders and actions.
        #[arg(long)]
        count: Option<usize>,
        /// Stop after this long (with `--rate`, what that many seconds of it send).
        #[arg(long, value_parser = humantime::parse_duration)]
        duration: Option<Duration>,
        /// Put this before each topic's name (`test-` writes `test-orders`, ...).
        #[arg(long, default_value = "")]
        topic_prefix: String,
        /// Then send the same records again with a bare rdkafka producer (the same
        /// settings, the records serialized beforehand) and compare the rates. Every
        /// record is written twice: measure into topics of their own (`--topic-prefix`).
        #[arg(long)]
        compare_raw: bool,
    },
    /// Reads a CSV, JSON-lines or Excel file of one kind of record into its topic.
    File {
        /// The file (`.csv`; `.xlsx`, its first sheet, a header row then a record a row,
        /// as in CSV; or `.jsonl` / `.json` with one record a line).
        path: PathBuf,
        /// What the file holds.
        #[arg(long, value_enum)]
        kind: Kind,
        /// The topic (default: the kind's).
        #[arg(long)]
        topic: Option<String>,
        /// Where an unreadable row goes: `fail`, `rejects=PATH` or `dlq=TOPIC`.
        #[arg(long = "on-error", default_value = "fail", value_parser = on_error)]
        on_error: OnError,
    },
}

/// A kind of record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Kind {
    /// Orders, keyed by store (CSV: a row per line: order, store, customer, channel, item,
    /// quantity, time).
    Orders,
    /// Excel actions, keyed by user (CSV: user, department, workbook, action, cells, time).
    Usage,
    /// Menu items, keyed by item id (CSV: id, name, category, price in cents).
    Menu,
    /// Employees, keyed by user id (CSV: id, department, role).
    Employees,
}

impl Kind {
    fn topic(self) -> &'static str {
        match self {
            Kind::Orders => orders::ORDERS,
            Kind::Usage => excel::EXCEL_USAGE,
            Kind::Menu => orders::MENU,
            Kind::Employees => excel::EMPLOYEES,
        }
    }
}

/// Where an unreadable row goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OnError {
    Fail,
    Rejects(PathBuf),
    DeadLetter(String),
}

fn on_error(text: &str) -> Result<OnError, String> {
    match text.split_once('=') {
        None if text == "fail" => Ok(OnError::Fail),
        Some(("rejects", path)) if !path.is_empty() => Ok(OnError::Rejects(path.into())),
        Some(("dlq", topic)) if !topic.is_empty() => Ok(OnError::DeadLetter(topic.into())),
        _ => Err(format!(
            "expected fail, rejects=PATH or dlq=TOPIC, got '{text}'"
        )),
    }
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut sink = Sink::new(&args.bootstrap)?;
    match &args.command {
        Command::Generate {
            seed,
            hours,
            start_ms,
            rate,
            count,
            duration,
            topic_prefix,
            compare_raw,
        } => {
            // A duration at a rate is a count.
            let count = match (count, duration) {
                (Some(count), _) => Some(*count),
                (None, Some(duration)) if *rate > 0 => {
                    Some((duration.as_secs_f64() * *rate as f64) as usize)
                }
                (None, Some(_)) => bail!("--duration needs --rate (or give --count)"),
                (None, None) => None,
            };
            let mut workload = Workload::demo(*seed, *hours);
            workload.start_ms = start_ms.unwrap_or_else(|| {
                let now = now_ms();
                now - now.rem_euclid(3_600_000) - workload.span_ms
            });
            let rate = generate(&mut sink, &workload, *rate, count, topic_prefix)?;
            if *compare_raw {
                let raw = raw_rate(&args.bootstrap, &workload, count, topic_prefix)?;
                println!(
                    "a bare rdkafka producer sent the same records at {raw:.0} records/s: \
                     homa ingest runs at {:.2}x",
                    rate / raw.max(1e-9)
                );
            }
            Ok(())
        }
        Command::File {
            path,
            kind,
            topic,
            on_error,
        } => {
            let topic = topic.clone().unwrap_or_else(|| kind.topic().to_string());
            let summary = ingest_file(&mut sink, path, *kind, &topic, on_error)?;
            println!(
                "{}: {} rows read, {} records written to {topic}, {} rejected",
                path.display(),
                summary.read,
                summary.written,
                summary.rejected
            );
            Ok(())
        }
    }
}

/// What a file's ingestion did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Summary {
    pub read: u64,
    pub written: u64,
    pub rejected: u64,
}

/// Counts the deliveries the broker acknowledged and keeps the first failure.
#[derive(Debug, Default)]
struct Deliveries {
    delivered: AtomicU64,
    failed: Mutex<Option<String>>,
}

impl ClientContext for Deliveries {}

impl ProducerContext for Deliveries {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        match result {
            Ok(_) => {
                self.delivered.fetch_add(1, Ordering::Relaxed);
            }
            Err((e, message)) => {
                let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
                failed.get_or_insert_with(|| format!("to {}: {e}", message.topic()));
            }
        }
    }
}

/// A producer of JSON records, partitioned as Kafka's Java clients and HOMA's sinks do.
pub struct Sink {
    producer: BaseProducer<Deliveries>,
    sent: u64,
}

impl std::fmt::Debug for Sink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sink").field("sent", &self.sent).finish()
    }
}

impl Sink {
    pub fn new(bootstrap: &str) -> anyhow::Result<Self> {
        let producer = producer_config(bootstrap)
            .create_with_context(Deliveries::default())
            .context("creating the producer")?;
        Ok(Self { producer, sent: 0 })
    }

    /// Sends `value` (none: a tombstone) to `topic` under `key`, stamped `timestamp`.
    pub fn send(
        &mut self,
        topic: &str,
        key: &str,
        value: Option<&[u8]>,
        timestamp: i64,
        headers: Option<OwnedHeaders>,
    ) -> anyhow::Result<()> {
        let mut record = BaseRecord::to(topic).key(key).timestamp(timestamp);
        if let Some(value) = value {
            record = record.payload(value);
        }
        if let Some(headers) = headers {
            record = record.headers(headers);
        }
        send_waiting(&self.producer, record)?;
        self.sent += 1;
        Ok(())
    }

    /// Sends `value` as JSON.
    pub fn send_json<T: serde::Serialize>(
        &mut self,
        topic: &str,
        key: &str,
        value: &T,
        timestamp: i64,
    ) -> anyhow::Result<()> {
        let bytes = serde_json::to_vec(value)?;
        self.send(topic, key, Some(&bytes), timestamp, None)
    }

    /// Waits until the broker has every record sent so far.
    pub fn flush(&self) -> anyhow::Result<u64> {
        self.producer
            .flush(Duration::from_secs(60))
            .context("flushing the producer")?;
        let context = self.producer.context();
        if let Some(error) = context
            .failed
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
        {
            bail!("a record was not delivered: {error}");
        }
        Ok(context.delivered.load(Ordering::Relaxed))
    }
}

/// A progress bar of `total` records, with rate and ETA.
pub fn progress(total: u64, what: &str) -> ProgressBar {
    let bar = ProgressBar::new(total);
    let style =
        ProgressStyle::with_template("{msg:>10} [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
    bar.set_style(style);
    bar.set_message(what.to_string());
    bar
}

/// Sends `record`, waiting while the producer's queue is full; then serves the delivery
/// reports that have come.
fn send_waiting<C: ProducerContext<DeliveryOpaque = ()>>(
    producer: &BaseProducer<C>,
    mut record: BaseRecord<'_, str, [u8]>,
) -> anyhow::Result<()> {
    loop {
        match producer.send(record) {
            Ok(()) => break,
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                producer.poll(Duration::from_millis(10));
            }
            Err((e, back)) => bail!("sending a record to {}: {e}", back.topic),
        }
    }
    producer.poll(Duration::ZERO);
    Ok(())
}

/// The producer settings of the ingest: Java clients' partitioner, and idempotence.
fn producer_config(bootstrap: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", bootstrap)
        .set("partitioner", "murmur2_random")
        .set("linger.ms", "5")
        .set("enable.idempotence", "true");
    config
}

/// The wall-clock time, in ms since the epoch.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// Produces the generated workload: the menu and the employees first, then the events.
pub fn generate(
    sink: &mut Sink,
    workload: &Workload,
    rate: u64,
    count: Option<usize>,
    prefix: &str,
) -> anyhow::Result<f64> {
    let topic = |name: &str| format!("{prefix}{name}");
    let (menu, staff) = (topic(orders::MENU), topic(excel::EMPLOYEES));
    for (id, item) in generate::menu() {
        sink.send_json(&menu, &id, &item, workload.start_ms)?;
    }
    for (id, employee) in generate::employees(workload.users) {
        sink.send_json(&staff, &id, &employee, workload.start_ms)?;
    }
    let (events, seconds) = generate_events(sink, workload, rate, count, prefix)?;
    let delivered = sink.flush()?;
    let rate = events as f64 / seconds.max(1e-9);
    println!(
        "generated {events} orders and actions in {seconds:.1} s ({rate:.0} records/s); \
         {delivered} records acknowledged in all, the menu and employees included"
    );
    Ok(rate)
}

/// The rate, in records/s, at which a bare rdkafka producer with the `Sink`'s settings
/// sends the generated orders and actions (serialized beforehand) until the broker has
/// them all: the baseline of `--compare-raw`.
fn raw_rate(
    bootstrap: &str,
    workload: &Workload,
    count: Option<usize>,
    prefix: &str,
) -> anyhow::Result<f64> {
    let (orders_topic, usage_topic) = (
        format!("{prefix}{}", orders::ORDERS),
        format!("{prefix}{}", excel::EXCEL_USAGE),
    );
    let mut events = generate::events(workload);
    if let Some(count) = count {
        events.truncate(count);
    }
    let records = (events.iter())
        .map(|event| {
            Ok(match event {
                Event::Order(o) => (&orders_topic, &o.store, serde_json::to_vec(o)?, o.time),
                Event::Usage(u) => (&usage_topic, &u.user, serde_json::to_vec(u)?, u.time),
            })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let producer: BaseProducer = producer_config(bootstrap)
        .create()
        .context("creating the producer")?;
    let started = Instant::now();
    for (topic, key, value, timestamp) in &records {
        let record = BaseRecord::to(topic)
            .key(key.as_str())
            .payload(value.as_slice())
            .timestamp(*timestamp);
        send_waiting(&producer, record)?;
    }
    producer
        .flush(Duration::from_secs(60))
        .context("flushing the producer")?;
    Ok(records.len() as f64 / started.elapsed().as_secs_f64().max(1e-9))
}

/// Produces the generated orders and Excel actions (at most `count`, at most `rate` a
/// second) with a progress bar, until every one is acknowledged. Returns how many, and the
/// seconds it took.
pub fn generate_events(
    sink: &mut Sink,
    workload: &Workload,
    rate: u64,
    count: Option<usize>,
    prefix: &str,
) -> anyhow::Result<(usize, f64)> {
    let topic = |name: &str| format!("{prefix}{name}");
    let (orders_topic, usage_topic) = (topic(orders::ORDERS), topic(excel::EXCEL_USAGE));
    let mut events = generate::events(workload);
    if let Some(count) = count {
        events.truncate(count);
    }
    let bar = progress(events.len() as u64, "generate");
    let started = Instant::now();
    for (sent, event) in events.iter().enumerate() {
        if rate > 0 {
            let due = Duration::from_secs_f64(sent as f64 / rate as f64);
            if let Some(wait) = due.checked_sub(started.elapsed()) {
                std::thread::sleep(wait);
            }
        }
        match event {
            Event::Order(order) => {
                sink.send_json(&orders_topic, &order.store, order, order.time)?
            }
            Event::Usage(usage) => sink.send_json(&usage_topic, &usage.user, usage, usage.time)?,
        }
        bar.inc(1);
    }
    sink.flush()?;
    bar.finish_and_clear();
    Ok((events.len(), started.elapsed().as_secs_f64()))
}

/// A row that could not be read: where, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    pub line: u64,
    pub column: Option<String>,
    pub reason: String,
    /// The row as read.
    pub raw: String,
}

/// A record read from a row (an order from its rows): its key, value (JSON) and event
/// time.
type Row = (String, Vec<u8>, i64);

/// The records of a file, or why a row could not be read, and how many rows it has.
type Rows = (Vec<Result<Row, Reject>>, u64);

/// Reads `path` (CSV or JSON lines, by its extension) of `kind` into `topic`.
pub fn ingest_file(
    sink: &mut Sink,
    path: &Path,
    kind: Kind,
    topic: &str,
    on_error: &OnError,
) -> anyhow::Result<Summary> {
    let extension = path.extension().and_then(|e| e.to_str());
    let extension = extension.map(str::to_ascii_lowercase);
    // Where a row is: `path:line`, or the sheet and row of a workbook.
    let mut sheet = None;
    let (rows, read) = match extension.as_deref() {
        Some("csv") => read_csv(path, kind)?,
        Some("xlsx") => {
            let (rows, name) = read_xlsx(path, kind, None)?;
            sheet = Some(name);
            rows
        }
        _ => read_json_lines(path, kind)?,
    };
    let mut rejects = match on_error {
        OnError::Rejects(file) => Some(
            File::create(file)
                .with_context(|| format!("creating rejects file {}", file.display()))?,
        ),
        _ => None,
    };
    let mut summary = Summary {
        read,
        ..Summary::default()
    };
    let bar = progress(rows.len() as u64, "ingest");
    for row in rows {
        match row {
            Ok((key, value, time)) => {
                sink.send(topic, &key, Some(&value), time, None)?;
                summary.written += 1;
            }
            Err(reject) => {
                summary.rejected += 1;
                let at = match (&sheet, &reject.column) {
                    (Some(sheet), Some(column)) => format!(
                        "{} sheet {sheet:?} row {} column {column} (cell {})",
                        path.display(),
                        reject.line,
                        cell_name(kind, column, reject.line)
                    ),
                    (Some(sheet), None) => {
                        format!("{} sheet {sheet:?} row {}", path.display(), reject.line)
                    }
                    (None, Some(column)) => {
                        format!("{}:{} column {column}", path.display(), reject.line)
                    }
                    (None, None) => format!("{}:{}", path.display(), reject.line),
                };
                match on_error {
                    OnError::Fail => bail!("{at}: {}", reject.reason),
                    OnError::Rejects(_) => {
                        eprintln!("{at}: {} (to the rejects file)", reject.reason);
                        if let Some(file) = &mut rejects {
                            writeln!(file, "{at}\t{}\t{}", reject.reason, reject.raw)?;
                        }
                    }
                    OnError::DeadLetter(dlq) => {
                        eprintln!("{at}: {} (to {dlq})", reject.reason);
                        let headers = OwnedHeaders::new()
                            .insert(Header {
                                key: "homa.ingest.source",
                                value: Some(at.as_bytes()),
                            })
                            .insert(Header {
                                key: "homa.ingest.reason",
                                value: Some(reject.reason.as_bytes()),
                            });
                        sink.send(dlq, "", Some(reject.raw.as_bytes()), 0, Some(headers))?;
                    }
                }
            }
        }
        bar.inc(1);
    }
    sink.flush()?;
    bar.finish_and_clear();
    Ok(summary)
}

/// A menu item or employee in a JSON line: its id and the record.
#[derive(Debug, Deserialize)]
struct Keyed<T> {
    id: String,
    #[serde(flatten)]
    record: T,
}

fn read_json_lines(path: &Path, kind: Kind) -> anyhow::Result<Rows> {
    let file = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut rows = Vec::new();
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.with_context(|| format!("reading {}", path.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let parsed = json_row(&line, kind).map_err(|e| Reject {
            line: n as u64 + 1,
            column: Some(e.column().to_string()),
            reason: e.to_string(),
            raw: line.clone(),
        });
        rows.push(parsed);
    }
    let read = rows.len() as u64;
    Ok((rows, read))
}

fn json_row(line: &str, kind: Kind) -> Result<Row, serde_json::Error> {
    Ok(match kind {
        Kind::Orders => {
            let order: Order = serde_json::from_str(line)?;
            (order.store.clone(), serde_json::to_vec(&order)?, order.time)
        }
        Kind::Usage => {
            let usage: ExcelUsage = serde_json::from_str(line)?;
            (usage.user.clone(), serde_json::to_vec(&usage)?, usage.time)
        }
        Kind::Menu => {
            let item: Keyed<MenuItem> = serde_json::from_str(line)?;
            (item.id, serde_json::to_vec(&item.record)?, 0)
        }
        Kind::Employees => {
            let employee: Keyed<Employee> = serde_json::from_str(line)?;
            (employee.id, serde_json::to_vec(&employee.record)?, 0)
        }
    })
}

/// The name (`F12`) of column `column`'s cell in row `row` of a sheet of `kind`.
fn cell_name(kind: Kind, column: &str, row: u64) -> String {
    let index = columns(kind).iter().position(|c| *c == column).unwrap_or(0);
    let letter = char::from(b'A' + u8::try_from(index).unwrap_or(0));
    format!("{letter}{row}")
}

/// The columns of each kind's CSV files and sheets.
fn columns(kind: Kind) -> &'static [&'static str] {
    match kind {
        Kind::Orders => &[
            "order", "store", "customer", "channel", "item", "quantity", "time",
        ],
        Kind::Usage => &["user", "department", "workbook", "action", "cells", "time"],
        Kind::Menu => &["id", "name", "category", "price"],
        Kind::Employees => &["id", "department", "role"],
    }
}

fn read_csv(path: &Path, kind: Kind) -> anyhow::Result<Rows> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .from_path(path)
        .with_context(|| format!("opening {}", path.display()))?;
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    check_header(&header, kind, &format!("{}:1", path.display()))?;
    let mut records = Vec::new();
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        let line = record.position().map_or(0, csv::Position::line);
        records.push((line, record.iter().map(str::to_string).collect()));
    }
    Ok(parse_rows(kind, records))
}

/// Fails unless `header` has the columns of `kind`'s files.
fn check_header(header: &[String], kind: Kind, at: &str) -> anyhow::Result<()> {
    let expected = columns(kind);
    if header != expected {
        bail!("{at}: the header is {header:?}; a {kind:?} file has the columns {expected:?}");
    }
    Ok(())
}

/// Reads the sheet `sheet` (default: the first) of the workbook at `path`: its first row
/// is the header, the others are rows as in a CSV file (a reject's line is the sheet's row
/// number). Numbers are read as they are shown, whole ones without a fraction.
fn read_xlsx(path: &Path, kind: Kind, sheet: Option<&str>) -> anyhow::Result<(Rows, String)> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut workbook: Xlsx<_> =
        open_workbook(path).with_context(|| format!("opening {}", path.display()))?;
    let sheet = match sheet {
        Some(sheet) => sheet.to_string(),
        None => (workbook.sheet_names().first().cloned())
            .with_context(|| format!("{} has no sheet", path.display()))?,
    };
    let range = workbook
        .worksheet_range(&sheet)
        .with_context(|| format!("reading sheet {sheet:?} of {}", path.display()))?;
    let text = |cell: &Data| match cell {
        Data::Empty => String::new(),
        Data::Float(f) if f.fract() == 0.0 && f.abs() < 1e15 => format!("{}", *f as i64),
        other => other.to_string(),
    };
    let (first_row, _) = range.start().unwrap_or((0, 0));
    let mut rows = range.rows();
    let header: Vec<String> = rows
        .next()
        .map(|r| r.iter().map(text).collect())
        .unwrap_or_default();
    let at = format!("{} sheet {sheet:?} row {}", path.display(), first_row + 1);
    check_header(&header, kind, &at)?;
    let records = (u64::from(first_row) + 2..)
        .zip(rows)
        .filter(|(_, row)| row.iter().any(|c| !matches!(c, Data::Empty)))
        .map(|(line, row)| (line, row.iter().map(text).collect()))
        .collect();
    Ok((parse_rows(kind, records), sheet))
}

/// The records of `kind` in `records` (line, fields in `columns(kind)` order).
fn parse_rows(kind: Kind, records: Vec<(u64, Vec<String>)>) -> Rows {
    let expected = columns(kind);
    let mut rows: Vec<Result<Row, Reject>> = Vec::new();
    let read = records.len() as u64;
    // An order's lines are consecutive rows of the same order id.
    let mut order: Option<(u64, Order)> = None;
    for (line, record) in records {
        let raw = record.join(",");
        let field = |name: &str| -> Result<&str, Reject> {
            let index = expected.iter().position(|c| *c == name).unwrap_or(0);
            record
                .get(index)
                .map(String::as_str)
                .filter(|v| !v.is_empty())
                .ok_or_else(|| Reject {
                    line,
                    column: Some(name.to_string()),
                    reason: format!("no {name}"),
                    raw: raw.clone(),
                })
        };
        let number = |name: &str| -> Result<i64, Reject> {
            let text = field(name)?;
            text.trim().parse::<i64>().map_err(|e| Reject {
                line,
                column: Some(name.to_string()),
                reason: format!("{name} {text:?} is not a whole number: {e}"),
                raw: raw.clone(),
            })
        };
        let enumerated = |name: &str| -> Result<serde_json::Value, Reject> {
            Ok(serde_json::Value::String(field(name)?.trim().to_string()))
        };
        let parsed = (|| -> Result<Option<Row>, Reject> {
            Ok(Some(match kind {
                Kind::Orders => {
                    let (id, store) = (field("order")?.to_string(), field("store")?.to_string());
                    let channel: Channel = typed(enumerated("channel")?, "channel", line, &raw)?;
                    let quantity = u32::try_from(number("quantity")?).map_err(|e| Reject {
                        line,
                        column: Some("quantity".into()),
                        reason: format!("quantity: {e}"),
                        raw: raw.clone(),
                    })?;
                    let item = OrderLine {
                        item: field("item")?.to_string(),
                        quantity,
                    };
                    let time = number("time")?;
                    match &mut order {
                        Some((_, current)) if current.id == id => {
                            current.lines.push(item);
                            return Ok(None);
                        }
                        _ => {}
                    }
                    let next = Order {
                        id,
                        store,
                        customer: field("customer")?.to_string(),
                        channel,
                        lines: vec![item],
                        time,
                    };
                    let done = order.replace((line, next));
                    match done {
                        Some((_, done)) => order_row(&done),
                        None => return Ok(None),
                    }
                }
                Kind::Usage => {
                    let usage = ExcelUsage {
                        user: field("user")?.to_string(),
                        department: field("department")?.to_string(),
                        workbook: field("workbook")?.to_string(),
                        action: typed(enumerated("action")?, "action", line, &raw)?,
                        cells: u32::try_from(number("cells")?).unwrap_or(u32::MAX),
                        time: number("time")?,
                    };
                    let value = serde_json::to_vec(&usage).unwrap_or_default();
                    (usage.user, value, usage.time)
                }
                Kind::Menu => {
                    let item = MenuItem {
                        name: field("name")?.to_string(),
                        category: field("category")?.to_string(),
                        price: number("price")?,
                    };
                    let value = serde_json::to_vec(&item).unwrap_or_default();
                    (field("id")?.to_string(), value, 0)
                }
                Kind::Employees => {
                    let employee = Employee {
                        department: field("department")?.to_string(),
                        role: field("role")?.to_string(),
                    };
                    let value = serde_json::to_vec(&employee).unwrap_or_default();
                    (field("id")?.to_string(), value, 0)
                }
            }))
        })();
        match parsed {
            Ok(Some(row)) => rows.push(Ok(row)),
            Ok(None) => {}
            Err(reject) => rows.push(Err(reject)),
        }
    }
    if let Some((_, last)) = order {
        rows.push(Ok(order_row(&last)));
    }
    (rows, read)
}

/// Column `name`'s `value` as a `T` (an enum's name), or why not.
fn typed<T: serde::de::DeserializeOwned>(
    value: serde_json::Value,
    name: &str,
    line: u64,
    raw: &str,
) -> Result<T, Reject> {
    serde_json::from_value(value).map_err(|e| Reject {
        line,
        column: Some(name.to_string()),
        reason: format!("{name}: {e}"),
        raw: raw.to_string(),
    })
}

fn order_row(order: &Order) -> Row {
    let value = serde_json::to_vec(order).unwrap_or_default();
    (order.store.clone(), value, order.time)
}

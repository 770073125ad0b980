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
        /// Put this before each topic's name (`test-` writes `test-orders`, ...).
        #[arg(long, default_value = "")]
        topic_prefix: String,
    },
    /// Reads a CSV or JSON-lines file of one kind of record into its topic.
    File {
        /// The file (`.csv`, or `.jsonl` / `.json` with one record a line).
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
            topic_prefix,
        } => {
            let mut workload = Workload::demo(*seed, *hours);
            workload.start_ms = start_ms.unwrap_or_else(|| {
                let now = now_ms();
                now - now.rem_euclid(3_600_000) - workload.span_ms
            });
            generate(&mut sink, &workload, *rate, *count, topic_prefix)
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
            Err((e, _)) => {
                let mut failed = self.failed.lock().unwrap_or_else(PoisonError::into_inner);
                failed.get_or_insert_with(|| e.to_string());
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
        let producer = ClientConfig::new()
            .set("bootstrap.servers", bootstrap)
            .set("partitioner", "murmur2_random")
            .set("linger.ms", "5")
            .set("enable.idempotence", "true")
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
        loop {
            match self.producer.send(record) {
                Ok(()) => break,
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                    record = back;
                    self.producer.poll(Duration::from_millis(10));
                }
                Err((e, _)) => bail!("sending a record to {topic}: {e}"),
            }
        }
        self.sent += 1;
        self.producer.poll(Duration::ZERO);
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
) -> anyhow::Result<()> {
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
    println!(
        "generated {events} orders and actions in {seconds:.1} s ({:.0} records/s); {delivered} \
         records acknowledged in all, the menu and employees included",
        events as f64 / seconds.max(1e-9)
    );
    Ok(())
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
    let csv = matches!(
        path.extension().and_then(|e| e.to_str()),
        Some("csv" | "CSV")
    );
    let (rows, read) = match csv {
        true => read_csv(path, kind)?,
        false => read_json_lines(path, kind)?,
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
                let at = match &reject.column {
                    Some(column) => format!("{}:{} column {column}", path.display(), reject.line),
                    None => format!("{}:{}", path.display(), reject.line),
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

/// The columns of each kind's CSV files.
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
    let expected = columns(kind);
    let header: Vec<String> = reader.headers()?.iter().map(str::to_string).collect();
    if header != expected {
        bail!(
            "{}:1: the header is {header:?}; a {kind:?} file has the columns {expected:?}",
            path.display()
        );
    }
    let mut rows: Vec<Result<Row, Reject>> = Vec::new();
    let mut read = 0;
    // An order's lines are consecutive rows of the same order id.
    let mut order: Option<(u64, Order)> = None;
    for record in reader.records() {
        let record = record.with_context(|| format!("reading {}", path.display()))?;
        read += 1;
        let line = record.position().map_or(0, csv::Position::line);
        let raw = record.iter().collect::<Vec<_>>().join(",");
        let field = |name: &str| -> Result<&str, Reject> {
            let index = expected.iter().position(|c| *c == name).unwrap_or(0);
            record
                .get(index)
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
    Ok((rows, read))
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

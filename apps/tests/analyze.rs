//! `homa analyze` against the real broker, as two instances of one application: a
//! generated hour of orders and Excel actions, ingested with `homa ingest generate`, gives
//! each store's revenue and orders per minute as computed from the input (the orders of a
//! store's partition late by that partition's stream time left out, as the windows' grace
//! says), and `homa excel-export` writes the same figures to the workbook (read back with
//! calamine).

use std::collections::BTreeMap;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use homa_integration_tests::{kafka, unique_name};
use homa_topologies::generate::{self, Event, Workload};
use homa_topologies::model::Revenue;
use homa_topologies::orders::REVENUE_GRACE;
use rdkafka::Message;

const PARTITIONS: i32 = 4;

/// Kafka's default partitioner: murmur2 of the key, as HOMA's producers partition.
fn partition(key: &[u8]) -> i32 {
    let (seed, m) = (0x9747_b28c_u32, 0x5bd1_e995_u32);
    let mut h = seed ^ key.len() as u32;
    let chunks = key.chunks_exact(4);
    let tail = chunks.remainder();
    for chunk in chunks {
        let mut k = u32::from_le_bytes(chunk.try_into().expect("4 bytes"));
        k = k.wrapping_mul(m);
        k ^= k >> 24;
        k = k.wrapping_mul(m);
        h = h.wrapping_mul(m) ^ k;
    }
    if !tail.is_empty() {
        for (i, byte) in tail.iter().enumerate().rev() {
            h ^= u32::from(*byte) << (8 * i);
        }
        h = h.wrapping_mul(m);
    }
    h ^= h >> 13;
    h = h.wrapping_mul(m);
    h ^= h >> 15;
    ((h & 0x7fff_ffff) % PARTITIONS as u32) as i32
}

fn homa(args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_homa"));
    // Each late record is logged as a warning; the figures below account for them.
    command.args(args).env("RUST_LOG", "error");
    command
}

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn two_instances_compute_each_stores_revenue_per_minute() {
    let bootstrap = kafka().bootstrap_servers().to_string();
    let topics = [
        "orders",
        "excel-usage",
        "menu",
        "employees",
        "revenue-per-store-minute",
        "revenue-per-channel-hour",
        "top-items-per-hour",
        "excel-sessions",
        "department-usage-per-day",
        "unknown-menu-items",
    ];
    for topic in topics {
        kafka()
            .create_topic_named(topic, PARTITIONS)
            .expect("a topic");
    }
    let seed = "9";
    // The event times the expected figures below are worked out for.
    let start = Workload::demo(9, 1).start_ms.to_string();
    let ingested = homa(&[
        "ingest",
        "--bootstrap",
        &bootstrap,
        "generate",
        "--hours",
        "1",
        "--seed",
        seed,
        "--start-ms",
        &start,
    ])
    .output()
    .expect("homa ingest runs");
    assert!(
        ingested.status.success(),
        "{}",
        String::from_utf8_lossy(&ingested.stderr)
    );

    let id = unique_name("analyze");
    let states = [
        tempfile::tempdir().expect("a dir"),
        tempfile::tempdir().expect("a dir"),
    ];
    let _instances: Vec<Killed> = states
        .iter()
        .map(|state| {
            let state = state.path().to_string_lossy().into_owned();
            let child = homa(&[
                "analyze",
                "--bootstrap",
                &bootstrap,
                "--application-id",
                &id,
                "--state-dir",
                &state,
                "--set",
                "commit.interval.ms=200",
            ])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("homa analyze starts");
            Killed(child)
        })
        .collect();

    // What each store's minute must hold: its partition's stream time decides lateness.
    let workload = Workload::demo(9, 1);
    let prices: BTreeMap<String, i64> = generate::menu()
        .into_iter()
        .map(|(id, item)| (id, item.price))
        .collect();
    let grace = i64::try_from(REVENUE_GRACE.as_millis()).expect("a short grace");
    let mut stream_time: BTreeMap<i32, i64> = BTreeMap::new();
    let mut expected: BTreeMap<(String, i64), Revenue> = BTreeMap::new();
    for event in generate::events(&workload) {
        let Event::Order(order) = event else { continue };
        let time = stream_time
            .entry(partition(order.store.as_bytes()))
            .or_insert(-1);
        *time = (*time).max(order.time);
        let start = order.time - order.time.rem_euclid(60_000);
        if start + 60_000 <= *time - grace {
            continue;
        }
        let revenue: &mut Revenue = expected.entry((order.store.clone(), start)).or_default();
        revenue.orders += 1;
        for line in &order.lines {
            revenue.revenue += i64::from(line.quantity) * prices[&line.item];
        }
    }
    // Only windows that closed are written: those before their partition's last minutes.
    let closed: BTreeMap<(String, i64), Revenue> = expected
        .into_iter()
        .filter(|((store, start), _)| {
            start + 60_000 <= stream_time[&partition(store.as_bytes())] - grace
        })
        .collect();

    let started = Instant::now();
    loop {
        let mut written: BTreeMap<(String, i64), Revenue> = BTreeMap::new();
        kafka()
            .read_to_end("revenue-per-store-minute", PARTITIONS, |m| {
                let key = m.key().unwrap_or_default();
                let (store, start) = key.split_at(key.len() - 8);
                let start = i64::from_be_bytes(start.try_into()?);
                let value: Revenue = serde_json::from_slice(m.payload().unwrap_or_default())?;
                written.insert((String::from_utf8_lossy(store).into_owned(), start), value);
                Ok(())
            })
            .expect("the output");
        if written == closed {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "{} windows written, {} expected; first difference: {:?}",
            written.len(),
            closed.len(),
            closed.iter().find(|(k, v)| written.get(*k) != Some(*v))
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    assert!(
        kafka().group_members(&id).expect("the group") == 2,
        "two instances share the work"
    );

    // The export writes the same figures to the workbook, read back with calamine.
    let dir = tempfile::tempdir().expect("a directory");
    let workbook = dir.path().join("results.xlsx");
    let (export, export_state) = (unique_name("export"), dir.path().join("state"));
    let exported = homa(&[
        "excel-export",
        "--bootstrap",
        &bootstrap,
        "--output",
        &workbook.to_string_lossy(),
        "--application-id",
        &export,
        "--state-dir",
        &export_state.to_string_lossy(),
        "--interval",
        "1s",
        "--duration",
        "15s",
    ])
    .output()
    .expect("homa excel-export runs");
    assert!(
        exported.status.success(),
        "{}",
        String::from_utf8_lossy(&exported.stderr)
    );
    assert_eq!(revenue_sheet(&workbook), closed);
}

/// The Revenue sheet of the workbook at `path`: (store, minute start in ms) to revenue
/// and orders.
fn revenue_sheet(path: &std::path::Path) -> BTreeMap<(String, i64), Revenue> {
    use calamine::{Data, Reader, Xlsx, open_workbook};
    let mut workbook: Xlsx<_> = open_workbook(path).expect("the workbook");
    let sheet = workbook
        .worksheet_range("Revenue")
        .expect("the Revenue sheet");
    let number = |cell: &Data| match cell {
        Data::Float(f) => *f,
        Data::Int(i) => *i as f64,
        Data::DateTime(t) => t.as_f64(),
        other => panic!("{other:?} is not a number"),
    };
    let mut figures = BTreeMap::new();
    for row in sheet.rows().skip(1) {
        let store = row[0].to_string();
        // Excel's days since 1899-12-30, back to ms since the epoch.
        let minute = ((number(&row[1]) - 25_569.0) * 86_400_000.0).round() as i64;
        let revenue = Revenue {
            revenue: (number(&row[2]) * 100.0).round() as i64,
            orders: number(&row[3]) as u64,
        };
        figures.insert((store, minute), revenue);
    }
    figures
}

//! The tables: medians over the rounds, ratios, and the machine and versions they came from.

use std::fmt::Write as _;

use crate::data::DataSpec;
use crate::measure::{Latency, Measurement, Restore};
use crate::workload::{System, WORKLOADS};

/// Where and with what a benchmark ran.
#[derive(Debug, Clone)]
pub struct Environment {
    /// When (UTC).
    pub date: String,
    /// CPU cores.
    pub cores: usize,
    /// Memory, in bytes.
    pub memory: u64,
    /// The CPU's model name.
    pub cpu: String,
    /// Versions of everything measured, as (what, version).
    pub versions: Vec<(String, String)>,
    /// The parameters of the run, as (what, value).
    pub parameters: Vec<(String, String)>,
}

impl Environment {
    /// This machine now, with `versions` and `parameters` as given.
    pub fn here(versions: Vec<(String, String)>, parameters: Vec<(String, String)>) -> Self {
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        Environment {
            date: humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string(),
            cores: std::thread::available_parallelism().map_or(0, usize::from),
            memory: meminfo
                .lines()
                .find_map(|l| l.strip_prefix("MemTotal:"))
                .and_then(|rest| rest.split_whitespace().next()?.parse::<u64>().ok())
                .map_or(0, |kib| kib * 1024),
            cpu: cpuinfo
                .lines()
                .find_map(|l| l.strip_prefix("model name"))
                .and_then(|rest| rest.split_once(':'))
                .map_or_else(
                    || "unknown".to_string(),
                    |(_, name)| name.trim().to_string(),
                ),
            versions,
            parameters,
        }
    }
}

/// The median of `values` (the mean of the middle two for an even count).
pub fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// One row of the throughput table: a workload on a system, over its rounds.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    /// The workload's id.
    pub workload: &'static str,
    /// The system.
    pub system: System,
    /// Rounds measured.
    pub rounds: usize,
    /// Median input records per second.
    pub records_per_second: f64,
    /// HOMA's median over Kafka Streams' on the same workload (on HOMA's row).
    pub homa_over_kafka_streams: Option<f64>,
    /// This median over the median of W0 on rdkafka.
    pub over_w0: Option<f64>,
    /// The largest peak RSS of the rounds, in bytes.
    pub peak_rss: u64,
    /// Median CPU seconds per million input records.
    pub cpu_per_million: f64,
}

/// The throughput rows, workloads and systems in their order.
pub fn rows(measurements: &[Measurement]) -> Vec<Row> {
    let median_of = |workload: &str, system: System| -> Option<f64> {
        let mut rates: Vec<f64> = measurements
            .iter()
            .filter(|m| m.workload == workload && m.system == system)
            .map(Measurement::records_per_second)
            .collect();
        (!rates.is_empty()).then(|| median(&mut rates))
    };
    let ceiling = median_of("w0", System::Rdkafka);
    let mut rows = Vec::new();
    for workload in WORKLOADS {
        for system in System::ALL {
            let runs: Vec<&Measurement> = measurements
                .iter()
                .filter(|m| m.workload == workload.id && m.system == system)
                .collect();
            let Some(rate) = median_of(workload.id, system) else {
                continue;
            };
            let mut cpu: Vec<f64> = runs.iter().map(|m| m.cpu_per_million()).collect();
            rows.push(Row {
                workload: workload.id,
                system,
                rounds: runs.len(),
                records_per_second: rate,
                homa_over_kafka_streams: (system == System::Homa)
                    .then(|| median_of(workload.id, System::KafkaStreams).map(|ks| rate / ks))
                    .flatten(),
                over_w0: ceiling.map(|c| rate / c),
                peak_rss: runs.iter().map(|m| m.peak_rss).max().unwrap_or(0),
                cpu_per_million: median(&mut cpu),
            });
        }
    }
    rows
}

fn ratio(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |r| format!("{r:.2}x"))
}

fn mib(bytes: u64) -> String {
    format!("{:.0} MiB", bytes as f64 / (1024.0 * 1024.0))
}

/// The throughput table, in Markdown.
pub fn throughput_table(rows: &[Row]) -> String {
    let mut out = String::from(
        "| workload | system | records/s (median) | HOMA / Kafka Streams | vs W0 (rdkafka) | peak RSS | CPU s / M records | rounds |\n\
         |---|---|---:|---:|---:|---:|---:|---:|\n",
    );
    for row in rows {
        let title = WORKLOADS
            .iter()
            .find(|w| w.id == row.workload)
            .map_or("", |w| w.title);
        let _ = writeln!(
            out,
            "| {} {} | {} | {:.0} | {} | {} | {} | {:.2} | {} |",
            row.workload.to_uppercase(),
            title,
            row.system,
            row.records_per_second,
            ratio(row.homa_over_kafka_streams),
            ratio(row.over_w0),
            mib(row.peak_rss),
            row.cpu_per_million,
            row.rounds
        );
    }
    out
}

/// The latency table, in Markdown.
pub fn latency_table(latencies: &[Latency]) -> String {
    let mut out = String::from(
        "| workload | system | input records/s | samples | p50 ms | p99 ms | max ms |\n\
         |---|---|---:|---:|---:|---:|---:|\n",
    );
    for l in latencies {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.1} | {:.1} | {:.1} |",
            l.workload.to_uppercase(),
            l.system,
            l.rate,
            l.samples,
            l.p50_ms,
            l.p99_ms,
            l.max_ms
        );
    }
    out
}

/// The restore table, in Markdown.
pub fn restore_table(restores: &[Restore]) -> String {
    let mut out = String::from(
        "| workload | restart after SIGKILL | system | changelog records | restart s | changelog records/s of restart | plain consumer records/s | restart / plain |\n\
         |---|---|---|---:|---:|---:|---:|---:|\n",
    );
    for r in restores {
        let _ = writeln!(
            out,
            "| {} | {} | {} | {} | {:.2} | {:.0} | {:.0} | {:.2}x |",
            r.workload.to_uppercase(),
            if r.wiped {
                "state directory wiped"
            } else {
                "state directory kept"
            },
            r.system,
            r.records,
            r.seconds,
            r.records_per_second(),
            r.raw_records_per_second(),
            r.records_per_second() / r.raw_records_per_second()
        );
    }
    out
}

/// The whole report: environment, data set, and the tables.
pub fn document(
    env: &Environment,
    spec: &DataSpec,
    measurements: &[Measurement],
    restores: &[Restore],
    latencies: &[Latency],
) -> String {
    let mut out = format!("# HOMA benchmark, {}\n\n", env.date);
    let _ = writeln!(
        out,
        "Machine: {} cores ({}), {:.1} GiB memory.\n",
        env.cores,
        env.cpu,
        env.memory as f64 / (1024.0 * 1024.0 * 1024.0)
    );
    let _ = writeln!(out, "Data set: {spec}.\n");
    for (title, pairs) in [("Versions", &env.versions), ("Parameters", &env.parameters)] {
        let _ = writeln!(out, "{title}:\n");
        for (what, value) in pairs {
            let _ = writeln!(out, "- {what}: {value}");
        }
        out.push('\n');
    }
    out.push_str("## Throughput\n\n");
    out.push_str(&throughput_table(&rows(measurements)));
    if !restores.is_empty() {
        out.push_str(
            "\n## Restore (from a restarted member's assignment to its first new output)\n\n",
        );
        out.push_str(&restore_table(restores));
    }
    if !latencies.is_empty() {
        out.push_str(
            "\n## Latency\n\nFrom a record's send to its output's append (the output topic's \
             `LogAppendTime`); under exactly-once to its arrival at a `read_committed` \
             consumer, as a record only shows once its transaction commits.\n\n",
        );
        out.push_str(&latency_table(latencies));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(workload: &'static str, system: System, seconds: f64, rss: u64) -> Measurement {
        Measurement {
            workload,
            system,
            records: 1_000_000,
            seconds,
            cpu_seconds: seconds,
            peak_rss: rss,
        }
    }

    #[test]
    fn medians_of_odd_and_even_counts() {
        assert_eq!(median(&mut [3.0, 1.0, 2.0]), 2.0);
        assert_eq!(median(&mut [4.0, 1.0, 3.0, 2.0]), 2.5);
        assert!(median(&mut []).is_nan());
    }

    #[test]
    fn rows_take_medians_and_ratios_against_kafka_streams_and_w0() {
        let measurements = [
            run("w0", System::Rdkafka, 1.0, 10),
            run("w0", System::Rdkafka, 2.0, 30),
            run("w0", System::Rdkafka, 4.0, 20),
            run("w1", System::Homa, 2.0, 5),
            run("w1", System::KafkaStreams, 8.0, 100),
        ];
        let rows = rows(&measurements);
        assert_eq!(rows.len(), 3);
        let w0 = &rows[0];
        assert_eq!(
            (w0.workload, w0.system, w0.rounds),
            ("w0", System::Rdkafka, 3)
        );
        assert_eq!(w0.records_per_second, 500_000.0);
        assert_eq!(w0.peak_rss, 30);
        assert_eq!(w0.over_w0, Some(1.0));
        assert_eq!(w0.homa_over_kafka_streams, None);
        let homa = &rows[1];
        assert_eq!(homa.homa_over_kafka_streams, Some(4.0));
        assert_eq!(homa.over_w0, Some(1.0));
        assert_eq!(homa.cpu_per_million, 2.0);
        assert_eq!(rows[2].over_w0, Some(0.25));
        let table = throughput_table(&rows);
        assert!(table.contains("| W1 filter, map_values | homa | 500000 | 4.00x | 1.00x |"));
    }
}

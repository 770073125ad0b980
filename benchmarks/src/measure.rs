//! One measured run: start a system on a workload, watch its output topic grow to what the
//! workload must write, take the process's CPU time and peak memory, stop it, and check
//! every record it wrote.

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Child;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, bail, ensure};
use homa_integration_tests::{DeliveryCounter, Kafka, unique_name};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Header, Headers, Message, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};

use crate::data::{DataSet, DataSpec, Digest, Expectation, Generator};
use crate::launch::{Launcher, log_tail};
use crate::proc;
use crate::worker::{self, WorkerArgs};
use crate::workload::{Expected, Side, System, Workload};

/// How long a system may take to write its first output record (JVM start, group join).
const FIRST_OUTPUT: Duration = Duration::from_secs(120);
/// How long a system may go without writing anything once it has started to.
const STALL: Duration = Duration::from_secs(60);
/// The header carrying a latency record's send time (microseconds since the epoch).
const SENT_HEADER: &str = "homa-bench-sent-us";

/// The send time a latency record carries, in microseconds since the epoch.
fn sent_at(message: &rdkafka::message::BorrowedMessage<'_>) -> Option<i64> {
    message.headers().and_then(|headers| {
        headers
            .iter()
            .find(|h| h.key == SENT_HEADER)
            .and_then(|h| h.value)
            .and_then(|v| <[u8; 8]>::try_from(v).ok())
            .map(i64::from_be_bytes)
    })
}

/// A `read_committed` consumer of a latency run's output, on a thread of its own, taking
/// the time each stamped record arrives.
struct Arrivals {
    stop: Arc<AtomicBool>,
    /// Records seen so far.
    seen: Arc<AtomicU64>,
    /// The latencies (microseconds) of the stamped records.
    thread: std::thread::JoinHandle<anyhow::Result<Vec<i64>>>,
}

impl Arrivals {
    fn start(kafka: &Kafka, output: &str, partitions: i32) -> anyhow::Result<Self> {
        let consumer: BaseConsumer = kafka
            .consumer_config(&unique_name("homa-bench-arrivals"))
            .set("isolation.level", "read_committed")
            .set("enable.auto.commit", "false")
            .set("fetch.wait.max.ms", "5")
            .create()
            .context("creating the arrivals consumer")?;
        let mut assignment = rdkafka::TopicPartitionList::new();
        for p in 0..partitions {
            assignment.add_partition_offset(output, p, rdkafka::Offset::Beginning)?;
        }
        consumer.assign(&assignment)?;
        let (stop, seen) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicU64::new(0)),
        );
        let (stopped, counted) = (stop.clone(), seen.clone());
        let thread = std::thread::spawn(move || {
            let mut latencies = Vec::new();
            while !stopped.load(Ordering::Relaxed) {
                let Some(message) = consumer.poll(Duration::from_millis(50)) else {
                    continue;
                };
                let message = message.context("consuming the output")?;
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
                counted.fetch_add(1, Ordering::Relaxed);
                if let Some(sent) = sent_at(&message) {
                    latencies.push(now - sent);
                }
            }
            Ok(latencies)
        });
        Ok(Self { stop, seen, thread })
    }

    /// Waits until `records` (the output's count) have arrived, then stops; returns the
    /// latencies.
    fn finish(self, records: u64) -> anyhow::Result<Vec<i64>> {
        let deadline = Instant::now() + STALL;
        while self.seen.load(Ordering::Relaxed) < records
            && Instant::now() < deadline
            && !self.thread.is_finished()
        {
            std::thread::sleep(Duration::from_millis(100));
        }
        self.stop.store(true, Ordering::Relaxed);
        let latencies = self
            .thread
            .join()
            .map_err(|_| anyhow::anyhow!("the arrivals consumer panicked"))??;
        let seen = self.seen.load(Ordering::Relaxed);
        ensure!(
            seen == records,
            "the read_committed consumer saw {seen} of the {records} output records"
        );
        Ok(latencies)
    }
}

/// A throughput run's figures.
#[derive(Debug, Clone)]
pub struct Measurement {
    /// The workload's id.
    pub workload: &'static str,
    /// The system.
    pub system: System,
    /// Input records processed.
    pub records: u64,
    /// From the first output record to the last.
    pub seconds: f64,
    /// CPU seconds of the process in that window.
    pub cpu_seconds: f64,
    /// The process's peak resident set size, in bytes.
    pub peak_rss: u64,
}

impl Measurement {
    /// Input records per second.
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    /// CPU seconds per million input records.
    pub fn cpu_per_million(&self) -> f64 {
        self.cpu_seconds * 1e6 / self.records as f64
    }
}

/// A restore run's figures.
#[derive(Debug, Clone)]
pub struct Restore {
    /// The workload whose store it restored.
    pub workload: &'static str,
    /// Whether the state directory was wiped before the restart (else only killed).
    pub wiped: bool,
    /// The system.
    pub system: System,
    /// Records in the changelog (what a restore from scratch replays).
    pub records: u64,
    /// From the restarted group's assignment to the first new output of every partition.
    pub seconds: f64,
    /// Records the harness consumed of the same changelog with a plain consumer.
    pub raw_records: u64,
    /// How long that took.
    pub raw_seconds: f64,
}

impl Restore {
    /// Changelog records per second of restart (from its assignment to its new output).
    pub fn records_per_second(&self) -> f64 {
        self.records as f64 / self.seconds
    }

    /// Changelog records per second of the plain consumer.
    pub fn raw_records_per_second(&self) -> f64 {
        self.raw_records as f64 / self.raw_seconds
    }
}

/// A latency run's figures, in milliseconds from produce time to output append time.
#[derive(Debug, Clone)]
pub struct Latency {
    /// The workload's id.
    pub workload: &'static str,
    /// The system.
    pub system: System,
    /// Input records per second driven.
    pub rate: u64,
    /// Output records measured.
    pub samples: usize,
    /// Median.
    pub p50_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Largest.
    pub max_ms: f64,
}

/// When a run is complete.
#[derive(Debug)]
enum Done {
    /// When this many records are in the output topic.
    Output(u64),
    /// When the system's group has committed all `records` of `input`: it has written
    /// (flushed) everything before committing.
    Committed { input: String, records: u64 },
}

/// What a run watches of the output topic while the system works.
#[derive(Debug)]
struct Window {
    seconds: f64,
    cpu_seconds: f64,
    peak_rss: u64,
}

/// Runs systems against one broker.
#[derive(Debug)]
pub struct Bench {
    kafka: Kafka,
    launcher: Launcher,
    work: tempfile::TempDir,
    partitions: i32,
    /// Settings every system gets (commit interval, cache size, ...).
    settings: Vec<(String, String)>,
}

/// A started system.
struct Running {
    child: Child,
    system: System,
    /// Its application id: its consumer group.
    group: String,
    log: PathBuf,
    /// Members of an earlier run in the same group (killed, not yet expired): a stable group
    /// that still lists one of them is not this run's.
    stale_members: Vec<String>,
    /// Records the output held before this run: only more than these are its output.
    output_before: u64,
}

impl Running {
    fn check_alive(&mut self) -> anyhow::Result<()> {
        if let Some(status) = self.child.try_wait()? {
            bail!(
                "{} exited ({status}); the end of its log {}:\n{}",
                self.system,
                self.log.display(),
                log_tail(&self.log, 30)
            );
        }
        Ok(())
    }

    fn stop(mut self) {
        // Killing is fine: the figures are taken, and every run has its own group and topics.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Bench {
    /// A bench on `kafka`, its topics with `partitions` partitions; `settings` go to every
    /// system.
    pub fn new(
        kafka: Kafka,
        launcher: Launcher,
        partitions: i32,
        settings: Vec<(String, String)>,
    ) -> anyhow::Result<Self> {
        Ok(Bench {
            kafka,
            launcher,
            work: tempfile::Builder::new()
                .prefix("homa-bench-")
                .tempdir()
                .context("creating a work directory")?,
            partitions,
            settings,
        })
    }

    /// The broker.
    pub fn kafka(&self) -> &Kafka {
        &self.kafka
    }

    /// The launcher.
    pub fn launcher(&self) -> &Launcher {
        &self.launcher
    }

    /// Runs `system` on `workload` over `data` from offset 0 until all of its output is
    /// written; checks the output against the workload's.
    pub fn throughput(
        &self,
        data: &DataSet,
        workload: &'static Workload,
        system: System,
    ) -> anyhow::Result<Measurement> {
        let expected = *data
            .expected
            .get(workload.id)
            .with_context(|| format!("the data set was not made for {}", workload.id))?;
        let output = self.output_topic()?;
        let mut running = self.start(workload, system, &data.topic, &output, &[])?;
        // Under exactly-once the output's end counts transaction markers too, and what is
        // written is not yet what is committed: the run is complete when the input is.
        let done = match workload.expect {
            Expected::PerRecord(_) | Expected::WindowJoin(_) if !workload.exactly_once() => {
                Done::Output(expected.records)
            }
            _ => Done::Committed {
                input: data.topic.clone(),
                records: data.spec.records,
            },
        };
        let window = self.watch(&mut running, &output, &done);
        running.stop();
        let window = window?;
        self.verify(workload, system, &output, expected)?;
        self.clean_up(&[&output])?;
        // A second stream is input as much as the first; a table is loaded before.
        let inputs = if workload.side == Some(Side::Stream) {
            2
        } else {
            1
        };
        Ok(Measurement {
            workload: workload.id,
            system,
            records: data.spec.records * inputs,
            seconds: window.seconds,
            cpu_seconds: window.cpu_seconds,
            peak_rss: window.peak_rss,
        })
    }

    /// The restore run: `system` runs `workload` (an aggregation whose store is
    /// `store`) over `data` and is killed (SIGKILL); then, with its state directory wiped
    /// (`wipe`) or kept, it restarts and restores what it needs of the store's changelog
    /// before it can process one new record per partition. The restore rate (changelog
    /// records over the time from the restarted group's assignment to those records'
    /// output) is set against the harness consuming the same changelog with a plain
    /// rdkafka consumer (with the settings of HOMA's restore consumer).
    pub fn restore(
        &self,
        data: &DataSet,
        workload: &'static Workload,
        store: &str,
        system: System,
        wipe: bool,
    ) -> anyhow::Result<Restore> {
        let output = self.output_topic()?;
        let app_id = unique_name(&format!("homa-bench-restore-{system}"));
        // The killed member leaves the group when its session ends: keep that short (the
        // broker's minimum), so the restart does not wait long for its partitions.
        let session = [(
            "consumer.session.timeout.ms".to_string(),
            "6000".to_string(),
        )];
        let mut running =
            self.start_as(&app_id, workload, system, &data.topic, &output, &session)?;
        let done = Done::Committed {
            input: data.topic.clone(),
            records: data.spec.records,
        };
        let first = self.watch(&mut running, &output, &done);
        let offsets = self.kafka.offsets_client()?;
        let killed_members = group_members(&offsets, &app_id);
        running.stop();
        first?;
        let changelog = format!("{app_id}-{store}-changelog");
        let changelog_records = self.written(&offsets, &changelog)?;
        let written = self.written(&offsets, &output)?;
        if wipe {
            let state_dir = self.work.path().join(&app_id);
            std::fs::remove_dir_all(&state_dir)
                .with_context(|| format!("wiping {}", state_dir.display()))?;
        }
        // One new record per partition: its output shows the task has restored.
        let producer: BaseProducer<DeliveryCounter> = self
            .kafka
            .client_config()
            .create_with_context(DeliveryCounter::default())
            .context("creating the marker producer")?;
        for partition in 0..self.partitions {
            let record = BaseRecord::to(&data.topic)
                .partition(partition)
                .key(&b"restore!"[..])
                .payload(&[0_u8; 8][..]);
            worker::send(&producer, record)?;
        }
        producer
            .flush(Duration::from_secs(30))
            .context("flushing the markers")?;
        let mut running =
            self.start_as(&app_id, workload, system, &data.topic, &output, &session)?;
        // Timed from the restarted member's assignment: not while the group waits for the
        // killed member's session to end, nor from the killed run's output.
        running.stale_members = killed_members?;
        running.output_before = written;
        let window = self.watch(
            &mut running,
            &output,
            &Done::Output(written + u64::try_from(self.partitions)?),
        );
        running.stop();
        let window = window?;
        // The plain reader is HOMA's restore consumer, settings and all.
        let reader = homa::config::StreamsConfig::builder()
            .application_id(unique_name("homa-bench-plain-reader"))
            .bootstrap_servers(self.kafka.bootstrap_servers())
            .set_all(self.settings.iter().cloned())
            .build()?;
        let reader = homa::runtime::ClientConfigs::new(&reader, self.kafka.bootstrap_servers());
        let started = Instant::now();
        let consumed = self.kafka.read_to_end_with(
            &reader.restore_consumer,
            &changelog,
            self.partitions,
            |_| Ok(()),
        )?;
        let raw_seconds = started.elapsed().as_secs_f64();
        self.clean_up(&[&output])?;
        Ok(Restore {
            workload: workload.id,
            wiped: wipe,
            system,
            records: changelog_records,
            seconds: window.seconds,
            raw_records: consumed,
            raw_seconds,
        })
    }

    /// Drives `rate` records per second of `spec`'s records through `system` running
    /// `workload` for `period`, after a warm-up; measures the time from producing each record
    /// to its output being appended.
    pub fn latency(
        &self,
        spec: &DataSpec,
        workload: &'static Workload,
        system: System,
        rate: u64,
        period: Duration,
    ) -> anyhow::Result<Latency> {
        let input = self
            .kafka
            .create_topic("homa-bench-latency", self.partitions)?;
        let output = self.output_topic()?;
        let extra = [("producer.linger.ms".to_string(), "5".to_string())];
        let mut running = self.start(workload, system, &input, &output, &extra)?;
        // Under exactly-once a record shows when its transaction commits, not when it is
        // appended: a `read_committed` consumer takes the time each one arrives.
        let arrivals = workload
            .exactly_once()
            .then(|| Arrivals::start(&self.kafka, &output, self.partitions))
            .transpose()?;
        let driven = self.drive(&mut running, spec, workload, &input, &output, rate, period);
        running.stop();
        let expected = driven?;
        let mut latencies = Vec::new();
        let mut digest = Digest::default();
        self.kafka
            .read_to_end(&output, self.partitions, |message| {
                digest.add(
                    message.key().unwrap_or_default(),
                    message.payload().unwrap_or_default(),
                );
                if arrivals.is_none()
                    && let (Some(sent), Some(appended)) =
                        (sent_at(message), message.timestamp().to_millis())
                {
                    latencies.push(appended * 1000 - sent);
                }
                Ok(())
            })?;
        if let Some(arrivals) = arrivals {
            latencies = arrivals.finish(digest.records)?;
        }
        ensure!(
            digest == expected,
            "{} on {system}: the output of the latency run differs from the expected \
             ({} records, expected {})",
            workload.id,
            digest.records,
            expected.records
        );
        self.clean_up(&[&input, &output])?;
        latencies.sort_unstable();
        let quantile = |q: f64| -> f64 {
            let index = ((latencies.len() as f64 * q).ceil() as usize).saturating_sub(1);
            latencies
                .get(index)
                .map_or(f64::NAN, |us| *us as f64 / 1000.0)
        };
        Ok(Latency {
            workload: workload.id,
            system,
            rate,
            samples: latencies.len(),
            p50_ms: quantile(0.5),
            p99_ms: quantile(0.99),
            max_ms: quantile(1.0),
        })
    }

    /// Produces records to `input` at `rate` per second for `period`, each with its send time
    /// in a header, after warm-up records until the system's first output; waits for all of
    /// the output; returns the digest of what the workload must have written.
    #[allow(clippy::too_many_arguments)]
    fn drive(
        &self,
        running: &mut Running,
        spec: &DataSpec,
        workload: &Workload,
        input: &str,
        output: &str,
        rate: u64,
        period: Duration,
    ) -> anyhow::Result<Digest> {
        let producer: BaseProducer<DeliveryCounter> = self
            .kafka
            .client_config()
            .set("linger.ms", "0")
            .set("partitioner", "murmur2_random")
            .create_with_context(DeliveryCounter::default())
            .context("creating the latency producer")?;
        let mut generator = Generator::new(spec)?;
        let mut expected = Expectation::new(workload);
        let mut inputs = 0_u64;
        let mut send = |stamp: bool| -> anyhow::Result<()> {
            inputs += 1;
            let (key, value) = generator.next_record();
            // Stamped with its send time by the producer; latency runs only workloads that
            // write a record per record, whatever its time.
            expected.add(workload, key, value, 0);
            let mut record = BaseRecord::to(input).key(&key[..]).payload(value);
            if stamp {
                let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_micros() as i64;
                record = record.headers(OwnedHeaders::new().insert(Header {
                    key: SENT_HEADER,
                    value: Some(&now.to_be_bytes()),
                }));
            }
            worker::send(&producer, record)
        };
        let offsets = self.kafka.offsets_client()?;
        let started = Instant::now();
        while self.written_now(&offsets, output) == 0 {
            running.check_alive()?;
            ensure!(
                started.elapsed() < FIRST_OUTPUT,
                "{} wrote nothing within {FIRST_OUTPUT:?}",
                running.system
            );
            send(false)?;
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(10));
        }
        let started = Instant::now();
        let mut sent = 0_u64;
        while started.elapsed() < period {
            let due = (started.elapsed().as_secs_f64() * rate as f64) as u64;
            while sent < due {
                send(true)?;
                sent += 1;
            }
            producer.poll(Duration::ZERO);
            std::thread::sleep(Duration::from_millis(1));
        }
        producer
            .flush(Duration::from_secs(60))
            .context("flushing the latency producer")?;
        if let Some(error) = producer.context().first_error() {
            bail!("a latency record was not delivered: {error}");
        }
        let expected = expected.digest();
        // Under exactly-once the output's end counts transaction markers too.
        let done = if workload.exactly_once() {
            Done::Committed {
                input: input.to_string(),
                records: inputs,
            }
        } else {
            Done::Output(expected.records)
        };
        self.watch(running, output, &done)?;
        Ok(expected)
    }

    fn output_topic(&self) -> anyhow::Result<String> {
        // Append time: when the output was written, for the latency runs.
        self.kafka.create_topic_with(
            "homa-bench-output",
            self.partitions,
            &[("message.timestamp.type", "LogAppendTime")],
        )
    }

    fn start(
        &self,
        workload: &Workload,
        system: System,
        input: &str,
        output: &str,
        extra_settings: &[(String, String)],
    ) -> anyhow::Result<Running> {
        let app_id = unique_name(&format!("homa-bench-{}-{system}", workload.id));
        self.start_as(&app_id, workload, system, input, output, extra_settings)
    }

    /// [`start`](Self::start) with application id `app_id`.
    fn start_as(
        &self,
        app_id: &str,
        workload: &Workload,
        system: System,
        input: &str,
        output: &str,
        extra_settings: &[(String, String)],
    ) -> anyhow::Result<Running> {
        let app_id = app_id.to_string();
        let state_dir = self.work.path().join(&app_id);
        let log = self.work.path().join(format!("{app_id}.log"));
        let args = WorkerArgs {
            workload: workload.id.to_string(),
            bootstrap: self.kafka.bootstrap_servers().to_string(),
            input: input.to_string(),
            output: output.to_string(),
            app_id,
            state_dir: state_dir.display().to_string(),
            settings: self
                .settings
                .iter()
                .chain(extra_settings)
                .cloned()
                .chain(
                    workload
                        .settings
                        .iter()
                        .map(|(k, v)| ((*k).to_string(), (*v).to_string())),
                )
                .collect(),
        };
        let child = self.launcher.spawn(system, &args, &log)?;
        Ok(Running {
            child,
            system,
            group: args.app_id,
            log,
            stale_members: Vec::new(),
            output_before: 0,
        })
    }

    /// Records in all partitions of `topic` now, or 0 while the broker cannot tell (a new
    /// topic's leaders may still be moving in): the callers' time limits bound the wait.
    fn written_now(&self, offsets: &BaseConsumer, topic: &str) -> u64 {
        match self.written(offsets, topic) {
            Ok(written) => written,
            Err(error) => {
                eprintln!("(end offsets of {topic} not known yet: {error:#})");
                0
            }
        }
    }

    /// Records in all partitions of `topic` now.
    fn written(&self, offsets: &BaseConsumer, topic: &str) -> anyhow::Result<u64> {
        let mut total = 0;
        for partition in 0..self.partitions {
            let (low, high) = offsets
                .fetch_watermarks(topic, partition, Duration::from_secs(10))
                .with_context(|| format!("end offset of {topic}/{partition}"))?;
            total += u64::try_from(high - low)?;
        }
        Ok(total)
    }

    /// Waits until the run is `done`, timing from the moment the system's consumer group is
    /// stable (it has its partitions and starts to fetch; its start-up before that is not
    /// timed), or from its first output if that comes first.
    fn watch(&self, running: &mut Running, output: &str, done: &Done) -> anyhow::Result<Window> {
        let offsets = self.kafka.offsets_client()?;
        let pid = running.child.id();
        let started = Instant::now();
        let mut first: Option<(Instant, f64)> = None;
        let (mut progress_at, mut progress) = (started, 0);
        let target = match done {
            Done::Output(records) | Done::Committed { records, .. } => *records,
        };
        loop {
            running.check_alive()?;
            let stable =
                first.is_none() && group_stable(&offsets, &running.group, &running.stale_members);
            let written = self.written_now(&offsets, output);
            let now = Instant::now();
            if (stable || written > running.output_before) && first.is_none() {
                first = Some((now, proc::cpu_seconds(pid)?));
            }
            let reached = match done {
                Done::Output(_) => written,
                Done::Committed { input, .. } => self.committed_now(&running.group, input),
            };
            if reached >= target {
                let (since, cpu_then) = first.unwrap_or((now, 0.0));
                return Ok(Window {
                    seconds: now.duration_since(since).as_secs_f64(),
                    cpu_seconds: proc::cpu_seconds(pid)? - cpu_then,
                    peak_rss: proc::peak_rss_bytes(pid)?,
                });
            }
            if reached > progress {
                (progress_at, progress) = (now, reached);
            }
            let limit = if progress == 0 { FIRST_OUTPUT } else { STALL };
            ensure!(
                now.duration_since(progress_at) < limit,
                "{} reached {reached} of {target} ({done:?}), then nothing for {limit:?}; \
                 the end of its log {}:\n{}",
                running.system,
                running.log.display(),
                log_tail(&running.log, 30)
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Input records of `topic` consumer group `group` has committed (0 while unknown).
    fn committed_now(&self, group: &str, topic: &str) -> u64 {
        self.kafka
            .committed_offsets(group, topic, self.partitions)
            .map_or(0, |offsets| {
                offsets.iter().map(|o| (*o).max(0) as u64).sum()
            })
    }

    /// Reads all of `output` and compares it with what the workload must write.
    fn verify(
        &self,
        workload: &Workload,
        system: System,
        output: &str,
        expected: Digest,
    ) -> anyhow::Result<()> {
        let mut digest = Digest::default();
        let mut latest: HashMap<Vec<u8>, Vec<u8>> = HashMap::new();
        let per_key = workload.expect.aggregates();
        self.kafka.read_to_end(output, self.partitions, |message| {
            let (key, value) = (
                message.key().unwrap_or_default(),
                message.payload().unwrap_or_default(),
            );
            if per_key {
                latest.insert(key.to_vec(), value.to_vec());
            } else {
                digest.add(key, value);
            }
            Ok(())
        })?;
        for (key, value) in &latest {
            digest.add(key, value);
        }
        ensure!(
            digest == expected,
            "{} on {system}: {} output records, expected {}{}",
            workload.id,
            digest.records,
            expected.records,
            if digest.records == expected.records {
                " (same count, different records)"
            } else {
                ""
            }
        );
        Ok(())
    }

    /// Deletes `topics` and whatever internal topics the runs' applications made.
    fn clean_up(&self, topics: &[&str]) -> anyhow::Result<()> {
        let internal = self.kafka.topics_with_prefix("homa-bench-w")?;
        let mut all: Vec<&str> = topics.to_vec();
        all.extend(internal.iter().map(String::as_str));
        self.kafka.delete_topics(&all)
    }
}

/// True when consumer group `group` is stable with at least one member.
fn group_stable(client: &BaseConsumer, group: &str, stale: &[String]) -> bool {
    client
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .is_ok_and(|list| {
            list.groups().iter().any(|g| {
                g.name() == group
                    && g.state() == "Stable"
                    && !g.members().is_empty()
                    && g.members()
                        .iter()
                        .all(|m| !stale.iter().any(|s| s == m.id()))
            })
        })
}

/// The member ids of consumer group `group` now.
fn group_members(client: &BaseConsumer, group: &str) -> anyhow::Result<Vec<String>> {
    let list = client
        .fetch_group_list(Some(group), Duration::from_secs(5))
        .with_context(|| format!("describing consumer group {group}"))?;
    Ok(list
        .groups()
        .iter()
        .filter(|g| g.name() == group)
        .flat_map(|g| g.members().iter().map(|m| m.id().to_string()))
        .collect())
}

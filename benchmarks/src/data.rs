//! The input of a benchmark: records made from a seed, loaded into a topic once per data
//! set, and what each workload must write for them.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::hash::{DefaultHasher, Hasher};
use std::time::Instant;

use anyhow::{Context, ensure};
use homa_integration_tests::Kafka;
use rand::rngs::SmallRng;
use rand::{Rng, RngCore, SeedableRng};
use rand_distr::{Distribution, Zipf};

use crate::workload::{self, Expected, Fold, Side, TABLE_ROWS, Windows, Workload};

/// How keys are drawn from the `keys` distinct keys.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum KeyDistribution {
    /// Every key equally likely.
    Uniform,
    /// Zipf with this exponent: key rank r is drawn with weight 1/r^s.
    Zipf(f64),
}

impl fmt::Display for KeyDistribution {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            KeyDistribution::Uniform => write!(f, "uniform"),
            KeyDistribution::Zipf(s) => write!(f, "zipf({s})"),
        }
    }
}

/// What a data set is made of. The same spec always makes the same records.
#[derive(Debug, Clone, PartialEq)]
pub struct DataSpec {
    /// Records in the input topic.
    pub records: u64,
    /// Distinct keys.
    pub keys: u64,
    /// Bytes of each value (random, so incompressible).
    pub value_bytes: usize,
    /// How keys are drawn.
    pub distribution: KeyDistribution,
    /// Partitions of the input and output topics.
    pub partitions: i32,
    /// Seed of the generator.
    pub seed: u64,
    /// The event time the records span, in ms: record `i` of `n` is stamped
    /// `start + i * span / n`, in order (windowed workloads count on it).
    pub event_span_ms: i64,
}

impl DataSpec {
    /// The timestamp of record `index` of a data set whose event time starts at `start`.
    pub fn timestamp(&self, start: i64, index: u64) -> i64 {
        let offset =
            i128::from(index) * i128::from(self.event_span_ms) / i128::from(self.records.max(1));
        start + i64::try_from(offset).unwrap_or(i64::MAX)
    }
}

impl fmt::Display for DataSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} records, 8-byte keys ({} distinct, {}), {}-byte random values, {} partitions, \
             {} s of event time in order",
            self.records,
            self.keys,
            self.distribution,
            self.value_bytes,
            self.partitions,
            self.event_span_ms / 1000
        )
    }
}

/// Makes the records of a [`DataSpec`], one at a time.
#[derive(Debug)]
pub struct Generator {
    rng: SmallRng,
    keys: u64,
    zipf: Option<Zipf<f64>>,
    value: Vec<u8>,
}

impl Generator {
    /// A generator of `spec`'s records, from its seed.
    pub fn new(spec: &DataSpec) -> anyhow::Result<Self> {
        ensure!(spec.keys > 0, "a data set needs at least one key");
        ensure!(spec.value_bytes > 0, "values need at least one byte");
        let zipf = match spec.distribution {
            KeyDistribution::Uniform => None,
            KeyDistribution::Zipf(s) => Some(
                Zipf::new(spec.keys as f64, s)
                    .with_context(|| format!("Zipf distribution over {} keys, s={s}", spec.keys))?,
            ),
        };
        Ok(Generator {
            rng: SmallRng::seed_from_u64(spec.seed),
            keys: spec.keys,
            zipf,
            value: vec![0; spec.value_bytes],
        })
    }

    /// The next record's key and value.
    pub fn next_record(&mut self) -> ([u8; 8], &[u8]) {
        let index = match &self.zipf {
            // Zipf yields ranks 1..=keys as floats.
            Some(zipf) => (zipf.sample(&mut self.rng) as u64).clamp(1, self.keys) - 1,
            None => self.rng.random_range(0..self.keys),
        };
        self.rng.fill_bytes(&mut self.value);
        (key_bytes(index), &self.value)
    }
}

/// Key number `index` as 8 bytes; a bijective mix spreads neighbouring numbers over the
/// partitions.
fn key_bytes(index: u64) -> [u8; 8] {
    index.wrapping_mul(0x9E37_79B9_7F4A_7C15).to_be_bytes()
}

/// An order-independent digest of a set of records: their count and the sum of their hashes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Digest {
    /// Records added.
    pub records: u64,
    sum: u64,
}

impl Digest {
    /// Adds one record.
    pub fn add(&mut self, key: &[u8], value: &[u8]) {
        let mut hasher = DefaultHasher::new();
        hasher.write_usize(key.len());
        hasher.write(key);
        hasher.write(value);
        self.records += 1;
        self.sum = self.sum.wrapping_add(hasher.finish());
    }
}

/// A data set loaded into a topic, with the digest of what each workload must write.
#[derive(Debug)]
pub struct DataSet {
    /// What it is made of.
    pub spec: DataSpec,
    /// The input topic.
    pub topic: String,
    /// The output each workload must write, by workload id.
    pub expected: BTreeMap<&'static str, Digest>,
    /// The timestamp of the first record.
    pub start_ms: i64,
}

/// What a workload must write, worked out while its input is made.
#[derive(Debug)]
pub enum Expectation {
    /// Every output record.
    Records(Digest),
    /// The aggregate of each key so far.
    Latest(Fold, HashMap<[u8; 8], Vec<u8>>),
    /// The aggregate of each key in each window so far, by output key (key, window start).
    Windowed(Windows, Fold, HashMap<Vec<u8>, Vec<u8>>),
    /// The records of both streams of a window join (at most the ms apart), by key.
    Pairs(i64, HashMap<[u8; 8], Sides>),
}

/// A key's records in the two streams of a window join: timestamps and values.
#[derive(Debug, Default)]
pub struct Sides {
    left: Vec<(i64, Vec<u8>)>,
    right: Vec<(i64, Vec<u8>)>,
}

impl Expectation {
    /// Nothing seen yet, for `workload`.
    pub fn new(workload: &Workload) -> Self {
        match workload.expect {
            Expected::PerRecord(_) => Expectation::Records(Digest::default()),
            Expected::LatestPerKey(fold) => Expectation::Latest(fold, HashMap::new()),
            Expected::LatestPerWindow(windows, fold) => {
                Expectation::Windowed(windows, fold, HashMap::new())
            }
            Expected::WindowJoin(difference) => Expectation::Pairs(difference, HashMap::new()),
        }
    }

    /// Takes one more record of the workload's [`Side::Stream`], stamped `timestamp`.
    pub fn add_right(&mut self, key: [u8; 8], value: &[u8], timestamp: i64) {
        if let Expectation::Pairs(_, sides) = self {
            let side = &mut sides.entry(key).or_default().right;
            side.push((timestamp, value.to_vec()));
        }
    }

    /// Takes one more input record of `workload`, stamped `timestamp`.
    pub fn add(&mut self, workload: &Workload, key: [u8; 8], value: &[u8], timestamp: i64) {
        match (self, workload.expect) {
            (Expectation::Windowed(windows, fold, latest), _) => {
                for start in windows.starts(timestamp) {
                    let mut windowed = key.to_vec();
                    windowed.extend_from_slice(&start.to_be_bytes());
                    let next = fold(latest.get(&windowed).map(Vec::as_slice), &key, value);
                    latest.insert(windowed, next);
                }
            }
            (Expectation::Records(digest), Expected::PerRecord(expect)) => {
                if let Some((k, v)) = expect(&key, value) {
                    digest.add(&k, &v);
                }
            }
            (Expectation::Latest(fold, latest), _) => {
                let next = fold(latest.get(&key).map(Vec::as_slice), &key, value);
                latest.insert(key, next);
            }
            (Expectation::Pairs(_, sides), _) => {
                let side = &mut sides.entry(key).or_default().left;
                side.push((timestamp, value.to_vec()));
            }
            (Expectation::Records(_), _) => {}
        }
    }

    /// The digest of what must be written: every record, or each key's last one.
    pub fn digest(&self) -> Digest {
        match self {
            Expectation::Records(digest) => *digest,
            Expectation::Latest(_, latest) => {
                let mut digest = Digest::default();
                for (key, value) in latest {
                    digest.add(key, value);
                }
                digest
            }
            Expectation::Windowed(_, _, latest) => {
                let mut digest = Digest::default();
                for (key, value) in latest {
                    digest.add(key, value);
                }
                digest
            }
            Expectation::Pairs(difference, sides) => {
                let mut digest = Digest::default();
                for (key, Sides { left, right }) in sides {
                    for (at, l) in left {
                        for (_, r) in right.iter().filter(|(t, _)| (t - at).abs() <= *difference) {
                            digest.add(key, &workload::joined(l, r));
                        }
                    }
                }
                digest
            }
        }
    }
}

/// Records of a second input: key, value and timestamp.
pub type SideRecords = Box<dyn Iterator<Item = ([u8; 8], Vec<u8>, i64)>>;

/// The records of a workload's second input, for a data set whose event time starts at
/// `start_ms`: key, value and timestamp.
pub fn side_records(spec: &DataSpec, side: Side, start_ms: i64) -> anyhow::Result<SideRecords> {
    Ok(match side {
        Side::Table => {
            ensure!(
                spec.keys <= TABLE_ROWS,
                "the table of a stream-table join has a row for each of {TABLE_ROWS} keys: \
                 --keys {} is more",
                spec.keys
            );
            Box::new((0..TABLE_ROWS).map(move |i| {
                let key = key_bytes(i);
                (key, workload::row(&key), start_ms - 1)
            }))
        }
        Side::Stream => {
            let spec = DataSpec {
                seed: spec.seed ^ 0x5EED,
                ..spec.clone()
            };
            let mut generator = Generator::new(&spec)?;
            Box::new((0..spec.records).map(move |i| {
                let (key, value) = generator.next_record();
                (key, value.to_vec(), spec.timestamp(start_ms, i))
            }))
        }
    })
}

impl DataSet {
    /// Makes `spec`'s records into a new topic and works out each of `workloads`' output.
    pub fn load(kafka: &Kafka, spec: &DataSpec, workloads: &[&Workload]) -> anyhow::Result<Self> {
        let topic = kafka.create_topic("homa-bench-input", spec.partitions)?;
        let mut expected: Vec<Expectation> =
            workloads.iter().map(|w| Expectation::new(w)).collect();
        let mut generator = Generator::new(spec)?;
        // The event time ends now, on a minute (the broker's retention keeps it; windows
        // fall on round times).
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)?
            .as_millis();
        let end = i64::try_from(now)? / 60_000 * 60_000;
        let start_ms = end - spec.event_span_ms;
        let started = Instant::now();
        let records = (0..spec.records).map(|i| {
            let (key, value) = generator.next_record();
            let timestamp = spec.timestamp(start_ms, i);
            for (workload, expectation) in workloads.iter().zip(expected.iter_mut()) {
                expectation.add(workload, key, value, timestamp);
            }
            (key, value.to_vec(), Some(timestamp))
        });
        let sent = kafka.produce_timed(&topic, records)?;
        let seconds = started.elapsed().as_secs_f64();
        eprintln!(
            "loaded {sent} records into {topic} in {seconds:.1} s ({:.0} records/s)",
            sent as f64 / seconds
        );
        for side in [Side::Table, Side::Stream] {
            if !workloads.iter().any(|w| w.side == Some(side)) {
                continue;
            }
            let name = side.topic(&topic);
            kafka.create_topic_named(&name, spec.partitions)?;
            let records = side_records(spec, side, start_ms)?.inspect(|(key, value, ts)| {
                let theirs = workloads.iter().zip(&mut expected);
                for (_, expectation) in theirs.filter(|(w, _)| w.side == Some(side)) {
                    expectation.add_right(*key, value, *ts);
                }
            });
            let sent = kafka.produce_timed(&name, records.map(|(k, v, ts)| (k, v, Some(ts))))?;
            eprintln!("loaded {sent} records into {name}");
        }
        Ok(DataSet {
            spec: spec.clone(),
            topic,
            expected: workloads
                .iter()
                .zip(&expected)
                .map(|(w, e)| (w.id, e.digest()))
                .collect(),
            start_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(distribution: KeyDistribution) -> DataSpec {
        DataSpec {
            records: 10_000,
            keys: 100,
            value_bytes: 16,
            distribution,
            partitions: 4,
            seed: 7,
            event_span_ms: 600_000,
        }
    }

    fn keys(spec: &DataSpec) -> BTreeMap<[u8; 8], u64> {
        let mut generator = Generator::new(spec).unwrap();
        let mut counts = BTreeMap::new();
        for _ in 0..spec.records {
            let (key, value) = generator.next_record();
            assert_eq!(value.len(), spec.value_bytes);
            *counts.entry(key).or_default() += 1;
        }
        counts
    }

    #[test]
    fn the_same_spec_makes_the_same_records() {
        let spec = spec(KeyDistribution::Uniform);
        let (mut a, mut b) = (
            Generator::new(&spec).unwrap(),
            Generator::new(&spec).unwrap(),
        );
        for _ in 0..100 {
            let (ka, va) = a.next_record();
            let (ka, va) = (ka, va.to_vec());
            let (kb, vb) = b.next_record();
            assert_eq!((ka, va.as_slice()), (kb, vb));
        }
    }

    #[test]
    fn uniform_keys_cover_the_key_space_evenly() {
        let counts = keys(&spec(KeyDistribution::Uniform));
        assert_eq!(counts.len(), 100);
        assert!(
            counts.values().all(|n| (50..=150).contains(n)),
            "{counts:?}"
        );
    }

    #[test]
    fn zipf_keys_favour_the_first_ranks() {
        let counts = keys(&spec(KeyDistribution::Zipf(1.0)));
        let first = counts[&key_bytes(0)];
        let last = counts.get(&key_bytes(99)).copied().unwrap_or(0);
        assert!(
            first > 10 * last.max(1),
            "rank 1: {first}, rank 100: {last}"
        );
    }

    #[test]
    fn a_digest_ignores_order_but_not_content() {
        let (mut a, mut b, mut c) = (Digest::default(), Digest::default(), Digest::default());
        a.add(b"k1", b"v1");
        a.add(b"k2", b"v2");
        b.add(b"k2", b"v2");
        b.add(b"k1", b"v1");
        c.add(b"k1", b"v2");
        c.add(b"k2", b"v1");
        assert_eq!(a, b);
        assert_ne!(a, c);
    }
}

//! The metered layer (Kafka Streams' `MeteredKeyValueStore`): the top of a task's store
//! counts each operation it is asked for and, at the `DEBUG` recording level
//! (`metrics.recording.level`), times it, as Kafka Streams records its store metrics at
//! that level only. The figures reach `KafkaStreams::metrics` as [`StoreMetrics`], summed
//! over the tasks of each store at every commit.

use std::cell::Cell;
use std::time::{Duration, Instant};

/// The figures of one kind of operation of a store.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct OperationMetrics {
    /// How many were made.
    pub count: u64,
    /// How many of those were timed (all of them at the `DEBUG` recording level, none at
    /// `INFO`).
    pub timed: u64,
    /// Their time in all, over the timed ones.
    pub total_time: Duration,
    /// The longest one timed.
    pub max_time: Duration,
}

impl OperationMetrics {
    /// The average time of one, over the timed ones (`None` when none was timed).
    pub fn average_time(&self) -> Option<Duration> {
        let timed = u32::try_from(self.timed).ok().filter(|n| *n > 0)?;
        Some(self.total_time / timed)
    }

    fn add(&mut self, other: &Self) {
        self.count += other.count;
        self.timed += other.timed;
        self.total_time += other.total_time;
        self.max_time = self.max_time.max(other.max_time);
    }
}

/// What a store was asked to do, over all of its tasks (Kafka Streams' `state-store`
/// metrics: `get`, `put`, `delete` and `flush`, each with a rate and a latency).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoreMetrics {
    /// Reads of one key (`get`, and the reads `put_if_absent` and `delete` make).
    pub get: OperationMetrics,
    /// Writes of a value.
    pub put: OperationMetrics,
    /// Deletes.
    pub delete: OperationMetrics,
    /// Flushes of the store's record cache before a commit (none without a cache).
    pub flush: OperationMetrics,
}

impl StoreMetrics {
    /// Adds `other`'s figures to these (another task of the same store).
    pub fn add(&mut self, other: &Self) {
        self.get.add(&other.get);
        self.put.add(&other.put);
        self.delete.add(&other.delete);
        self.flush.add(&other.flush);
    }
}

/// Counts and times one kind of operation of one task's store.
#[derive(Debug, Default)]
pub(crate) struct Meter {
    count: Cell<u64>,
    timed: Cell<u64>,
    total_ns: Cell<u64>,
    max_ns: Cell<u64>,
}

impl Meter {
    fn snapshot(&self) -> OperationMetrics {
        OperationMetrics {
            count: self.count.get(),
            timed: self.timed.get(),
            total_time: Duration::from_nanos(self.total_ns.get()),
            max_time: Duration::from_nanos(self.max_ns.get()),
        }
    }
}

/// The meters of one task's store.
#[derive(Debug, Default)]
pub(crate) struct StoreMeters {
    /// Whether operations are timed (the `DEBUG` recording level).
    timed: bool,
    pub(crate) get: Meter,
    pub(crate) put: Meter,
    pub(crate) delete: Meter,
    pub(crate) flush: Meter,
}

impl StoreMeters {
    /// Meters that count, and time too when `timed`.
    pub(crate) fn new(timed: bool) -> Self {
        Self {
            timed,
            ..Self::default()
        }
    }

    /// Runs `operation`, counted (and timed, if these meters time) on `meter`.
    pub(crate) fn measure<R>(&self, meter: &Meter, operation: impl FnOnce() -> R) -> R {
        meter.count.set(meter.count.get() + 1);
        if !self.timed {
            return operation();
        }
        let started = Instant::now();
        let result = operation();
        let ns = u64::try_from(started.elapsed().as_nanos()).unwrap_or(u64::MAX);
        meter.timed.set(meter.timed.get() + 1);
        meter.total_ns.set(meter.total_ns.get().saturating_add(ns));
        meter.max_ns.set(meter.max_ns.get().max(ns));
        result
    }

    /// The figures so far.
    pub(crate) fn snapshot(&self) -> StoreMetrics {
        StoreMetrics {
            get: self.get.snapshot(),
            put: self.put.snapshot(),
            delete: self.delete.snapshot(),
            flush: self.flush.snapshot(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_always_and_times_only_when_asked() {
        let counted = StoreMeters::new(false);
        assert_eq!(counted.measure(&counted.get, || 7), 7);
        counted.measure(&counted.put, || ());
        let figures = counted.snapshot();
        assert_eq!((figures.get.count, figures.get.timed), (1, 0));
        assert_eq!(figures.get.average_time(), None);
        assert_eq!(figures.put.count, 1);

        let timed = StoreMeters::new(true);
        timed.measure(&timed.get, || std::thread::sleep(Duration::from_millis(2)));
        timed.measure(&timed.get, || ());
        let mut figures = timed.snapshot();
        assert_eq!((figures.get.count, figures.get.timed), (2, 2));
        assert!(figures.get.max_time >= Duration::from_millis(2));
        assert!(figures.get.average_time().unwrap() >= Duration::from_millis(1));

        figures.add(&counted.snapshot());
        assert_eq!((figures.get.count, figures.get.timed), (3, 2));
        assert_eq!(figures.put.count, 1);
    }
}

//! Punctuation: processors asking to be called back as time passes.

use std::time::Duration;

/// Which clock a punctuation follows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PunctuationType {
    /// Stream time: the largest record timestamp the task has seen. Advances only with
    /// records, so an idle input never fires it, and replays fire it as they did live.
    StreamTime,
    /// The wall clock (the test driver's, in tests), checked between records.
    WallClockTime,
}

/// Names one schedule of a processor; passed back to
/// [`Processor::punctuate`](super::Processor::punctuate) and used to cancel it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ScheduleId(pub(crate) u64);

/// One schedule of one processor node of a task.
#[derive(Debug, Clone)]
pub(crate) struct Schedule {
    pub(crate) id: ScheduleId,
    pub(crate) node: usize,
    pub(crate) kind: PunctuationType,
    pub(crate) interval_ms: i64,
    /// The next time (of its clock) at which it fires.
    pub(crate) next: i64,
}

/// The schedules of a task, in the order they were made.
#[derive(Debug, Default)]
pub(crate) struct Scheduler {
    schedules: Vec<Schedule>,
    next_id: u64,
}

impl Scheduler {
    /// Adds a schedule of `node`. Stream-time schedules are aligned to 0, so the first fires
    /// with the first record and the next at multiples of the interval; wall-clock ones fire
    /// first one interval after `wall_clock_now` (both as Kafka Streams).
    pub(crate) fn schedule(
        &mut self,
        node: usize,
        kind: PunctuationType,
        interval: Duration,
        wall_clock_now: i64,
    ) -> ScheduleId {
        let id = ScheduleId(self.next_id);
        self.next_id += 1;
        let interval_ms = i64::try_from(interval.as_millis())
            .unwrap_or(i64::MAX)
            .max(1);
        let next = match kind {
            PunctuationType::StreamTime => 0,
            PunctuationType::WallClockTime => wall_clock_now.saturating_add(interval_ms),
        };
        self.schedules.push(Schedule {
            id,
            node,
            kind,
            interval_ms,
            next,
        });
        id
    }

    pub(crate) fn cancel(&mut self, id: ScheduleId) {
        self.schedules.retain(|s| s.id != id);
    }

    /// The punctuations of `kind` due at `now`, each as (node, id, timestamp), advancing
    /// their next time. A schedule that fell several intervals behind fires once, at `now`,
    /// and its next time is the first interval boundary after `now` (as Kafka Streams).
    pub(crate) fn due(&mut self, kind: PunctuationType, now: i64) -> Vec<(usize, ScheduleId, i64)> {
        let mut due = Vec::new();
        for s in self.schedules.iter_mut().filter(|s| s.kind == kind) {
            if s.next <= now {
                due.push((s.node, s.id, now));
                let behind = (now - s.next) / s.interval_ms + 1;
                s.next = s.next.saturating_add(behind.saturating_mul(s.interval_ms));
            }
        }
        due
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A scheduler with one schedule of `node`, every `interval_ms` of `kind`, made when the
    /// wall clock read `wall_clock_now`.
    fn scheduled(
        node: usize,
        kind: PunctuationType,
        interval_ms: u64,
        wall_clock_now: i64,
    ) -> (Scheduler, ScheduleId) {
        let mut scheduler = Scheduler::default();
        let interval = Duration::from_millis(interval_ms);
        let id = scheduler.schedule(node, kind, interval, wall_clock_now);
        (scheduler, id)
    }

    #[test]
    fn stream_time_schedules_are_aligned_to_zero_and_fire_once_per_interval_crossed() {
        let (mut scheduler, id) = scheduled(3, PunctuationType::StreamTime, 10, 999);
        // The first record (stream time 7) fires it; the next is due at 10.
        assert_eq!(scheduler.due(PunctuationType::StreamTime, 7), [(3, id, 7)]);
        assert!(scheduler.due(PunctuationType::StreamTime, 9).is_empty());
        assert_eq!(
            scheduler.due(PunctuationType::StreamTime, 10),
            [(3, id, 10)]
        );
        assert!(scheduler.due(PunctuationType::StreamTime, 15).is_empty());
        // Far behind: fires once, then at the next boundary after now.
        assert_eq!(
            scheduler.due(PunctuationType::StreamTime, 47),
            [(3, id, 47)]
        );
        assert!(scheduler.due(PunctuationType::StreamTime, 49).is_empty());
        assert_eq!(
            scheduler.due(PunctuationType::StreamTime, 50),
            [(3, id, 50)]
        );
        assert!(
            scheduler
                .due(PunctuationType::WallClockTime, 1_000)
                .is_empty()
        );
        scheduler.cancel(id);
        assert!(scheduler.due(PunctuationType::StreamTime, 1_000).is_empty());
    }

    #[test]
    fn wall_clock_schedules_start_one_interval_from_now() {
        let (mut scheduler, id) = scheduled(0, PunctuationType::WallClockTime, 5, 100);
        assert!(
            scheduler
                .due(PunctuationType::WallClockTime, 104)
                .is_empty()
        );
        assert_eq!(
            scheduler.due(PunctuationType::WallClockTime, 105),
            [(0, id, 105)]
        );
        assert!(scheduler.due(PunctuationType::StreamTime, 1_000).is_empty());
    }
}

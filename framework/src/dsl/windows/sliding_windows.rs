//! `SlidingWindows` (KIP-450): windows of a fixed size that the records make, each window
//! `[start, start + time difference]` holding records no further apart than the time
//! difference, as Kafka Streams' `SlidingWindows`. Which windows a record makes or joins is
//! the aggregation's to decide, as records arrive.

use std::time::Duration;

use super::Span;

/// Windows made by the records themselves (Kafka Streams' `SlidingWindows`).
///
/// ```
/// use std::time::Duration;
/// use homa::dsl::SlidingWindows;
///
/// let w = SlidingWindows::of_time_difference_and_grace(Duration::from_secs(5), Duration::from_secs(10));
/// assert_eq!((w.time_difference_ms(), w.grace_ms()), (5_000, 10_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SlidingWindows(Span);

impl SlidingWindows {
    /// Windows of records at most `time_difference` apart, which take records up to `grace`
    /// after they end (by stream time).
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        Self(Span::new(time_difference, grace))
    }

    /// Windows of records at most `time_difference` apart, closed as they end.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// The largest time between two records of a window, in ms (the window's size).
    pub fn time_difference_ms(&self) -> i64 {
        self.0.length
    }

    /// How long after its end a window still takes records, in ms.
    pub fn grace_ms(&self) -> i64 {
        self.0.grace
    }

    /// Why these windows cannot be used, if they cannot: as Kafka Streams refuses them.
    pub fn problem(&self) -> Option<String> {
        self.0.problem("SlidingWindows: the time difference")
    }
}

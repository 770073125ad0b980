//! `TimeWindows`: windows of a fixed size, every `advance` ms from the epoch; tumbling when
//! the advance is the size (each record in one window), hopping when it is shorter (a
//! record in `size / advance` windows), as Kafka Streams' `TimeWindows`.

use std::time::Duration;

use super::{Window, millis};

/// Fixed-size windows aligned to the epoch (Kafka Streams' `TimeWindows`).
///
/// ```
/// use std::time::Duration;
/// use homa::dsl::TimeWindows;
///
/// let s = Duration::from_secs;
/// let hopping = TimeWindows::of_size_with_no_grace(s(10)).advance_by(s(5));
/// let starts: Vec<i64> = hopping.windows_for(12_000).iter().map(|w| w.start()).collect();
/// assert_eq!(starts, [5_000, 10_000]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeWindows {
    size: i64,
    advance: i64,
    grace: i64,
}

impl TimeWindows {
    /// Tumbling windows of `size`, which take records up to `grace` after they end (by
    /// stream time).
    pub fn of_size_and_grace(size: Duration, grace: Duration) -> Self {
        let size = millis(size);
        Self {
            size,
            advance: size,
            grace: millis(grace),
        }
    }

    /// Tumbling windows of `size` that close as they end: a record arriving after stream
    /// time has passed its window's end is dropped.
    pub fn of_size_with_no_grace(size: Duration) -> Self {
        Self::of_size_and_grace(size, Duration::ZERO)
    }

    /// The same windows every `advance` instead of every `size` (hopping windows).
    #[must_use]
    pub fn advance_by(mut self, advance: Duration) -> Self {
        self.advance = millis(advance);
        self
    }

    /// The size of a window, in ms.
    pub fn size_ms(&self) -> i64 {
        self.size
    }

    /// How far apart windows start, in ms.
    pub fn advance_ms(&self) -> i64 {
        self.advance
    }

    /// How long after its end a window still takes records, in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// Why these windows cannot be used, if they cannot: as Kafka Streams refuses them.
    pub fn problem(&self) -> Option<String> {
        if self.size <= 0 {
            return Some("TimeWindows: the window size must be more than 0 ms".into());
        }
        if self.advance <= 0 || self.advance > self.size {
            return Some(format!(
                "TimeWindows: the advance ({} ms) must be more than 0 and at most the size \
                 ({} ms)",
                self.advance, self.size
            ));
        }
        None
    }

    /// The windows that hold a record stamped `timestamp`, earliest first (Kafka Streams'
    /// `TimeWindows#windowsFor`): every window `[start, start + size)` with `start` a
    /// multiple of the advance, from 0 on, that contains it.
    pub fn windows_for(&self, timestamp: i64) -> Vec<Window> {
        if self.problem().is_some() || timestamp < 0 {
            return Vec::new();
        }
        let first = (timestamp - self.size + self.advance).max(0) / self.advance * self.advance;
        (0..)
            .map(|i| first + i * self.advance)
            .take_while(|start| *start <= timestamp)
            .map(|start| Window::new(start, start.saturating_add(self.size)))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn starts(windows: &TimeWindows, timestamp: i64) -> Vec<i64> {
        windows
            .windows_for(timestamp)
            .iter()
            .map(Window::start)
            .collect()
    }

    // As Kafka Streams' `windowsFor`: case `time-windows-for` of
    // benchmarks/kafka-streams/oracle-output.txt.
    #[test]
    fn a_record_is_in_each_window_that_contains_it() {
        let s = Duration::from_secs;
        let tumbling = TimeWindows::of_size_and_grace(s(10), s(5));
        assert_eq!(starts(&tumbling, 0), [0]);
        assert_eq!(starts(&tumbling, 9_999), [0]);
        assert_eq!(starts(&tumbling, 10_000), [10_000]);
        assert_eq!(tumbling.windows_for(10_000), [Window::new(10_000, 20_000)]);
        assert_eq!(tumbling.grace_ms(), 5_000);

        let hopping = TimeWindows::of_size_with_no_grace(s(10)).advance_by(s(3));
        // Windows start at 0, 3, 6, 9, ...: 10 s long, those that contain 10.5 s.
        assert_eq!(starts(&hopping, 10_500), [3_000, 6_000, 9_000]);
        // Near the epoch no window starts before 0.
        assert_eq!(starts(&hopping, 1_000), [0]);
    }

    #[test]
    fn sizes_and_advances_kafka_streams_refuses_are_problems() {
        let s = Duration::from_secs;
        assert!(
            TimeWindows::of_size_with_no_grace(Duration::ZERO)
                .problem()
                .is_some()
        );
        let too_far = TimeWindows::of_size_with_no_grace(s(5)).advance_by(s(6));
        assert!(too_far.problem().unwrap().contains("at most the size"));
        assert!(too_far.windows_for(7_000).is_empty());
        assert!(
            TimeWindows::of_size_with_no_grace(s(5))
                .advance_by(s(5))
                .problem()
                .is_none()
        );
    }
}

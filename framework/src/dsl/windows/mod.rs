//! Windows: how records are grouped by time for a windowed aggregation, one kind a file,
//! as Kafka Streams has them: `time_windows` (tumbling and hopping), `sliding_windows`
//! (KIP-450: windows made by the records themselves) and `session_windows` (activity
//! separated by gaps). [`Window`] and [`Windowed`] keys, with the serdes that write them to
//! topics in Kafka Streams' layout, live with the window stores (`state`).
//!
//! `windowed_by` makes a [`TimeWindowedKStream`] or [`SessionWindowedKStream`] of a grouped
//! stream; their aggregations run as one processor a window kind (`time_aggregate`,
//! `sliding_aggregate`, `session_aggregate`, sharing `aggregation`), each keeping its
//! windows in a window or session store and forwarding their changes as a table's.
//!
//! Times are milliseconds since the epoch; a window `[start, end)` of time windows holds
//! the records with `start <= timestamp < end`, and closes once stream time reaches
//! `end + grace`: a record for a closed window is late, and dropped.

pub(crate) mod aggregation;
mod emit;
pub(crate) mod session_aggregate;
mod session_windowed_kstream;
mod session_windows;
pub(crate) mod sliding_aggregate;
mod sliding_windows;
pub(crate) mod time_aggregate;
mod time_windowed_kstream;
mod time_windows;

pub use crate::state::{Window, Windowed, WindowedSerde};
pub use emit::EmitStrategy;
pub use session_windowed_kstream::SessionWindowedKStream;
pub use session_windows::SessionWindows;
pub use sliding_windows::SlidingWindows;
pub(crate) use time_windowed_kstream::TimedWindows;
pub use time_windowed_kstream::{TimeWindowedKStream, WindowsOf};
pub use time_windows::TimeWindows;

/// A length and a grace period, in ms: what sliding windows and sessions are made of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Span {
    length: i64,
    grace: i64,
}

impl Span {
    fn new(length: std::time::Duration, grace: std::time::Duration) -> Self {
        Self {
            length: millis(length),
            grace: millis(grace),
        }
    }

    /// Why a length of `what` this long cannot be used (none), if it cannot.
    fn problem(&self, what: &str) -> Option<String> {
        (self.length <= 0).then(|| format!("{what} must be more than 0 ms"))
    }
}

/// Milliseconds of `duration`, saturating at `i64::MAX`.
pub(crate) fn millis(duration: std::time::Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn windows_of_no_length_are_refused_as_kafka_streams_refuses_them() {
        let (zero, one) = (Duration::ZERO, Duration::from_millis(1));
        assert!(
            SlidingWindows::of_time_difference_with_no_grace(zero)
                .problem()
                .is_some()
        );
        assert!(
            SessionWindows::of_inactivity_gap_with_no_grace(zero)
                .problem()
                .is_some()
        );
        let sliding = SlidingWindows::of_time_difference_with_no_grace(one);
        assert_eq!((sliding.problem(), sliding.grace_ms()), (None, 0));
        let sessions = SessionWindows::of_inactivity_gap_and_grace(one, Duration::from_secs(10));
        assert_eq!((sessions.problem(), sessions.grace_ms()), (None, 10_000));
    }
}

//! `JoinWindows`: how far apart in time two records of a stream-stream join may be, as
//! Kafka Streams' `JoinWindows`.

use std::time::Duration;

use crate::dsl::windows::millis;

/// The time difference within which a stream-stream join pairs two records of one key
/// (Kafka Streams' `JoinWindows`): a left record at `l` and a right one at `r` join when
/// `l - before <= r <= l + after`; both default to the time difference. Records stay
/// joinable for `grace` after stream time passed their window.
///
/// ```
/// use std::time::Duration;
/// use homa::dsl::JoinWindows;
///
/// let s = Duration::from_secs;
/// let windows = JoinWindows::of_time_difference_and_grace(s(5), s(2)).after(s(1));
/// assert_eq!((windows.before_ms(), windows.after_ms(), windows.grace_ms()), (5_000, 1_000, 2_000));
/// assert_eq!(windows.size_ms(), 6_000);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JoinWindows {
    before: i64,
    after: i64,
    grace: i64,
}

impl JoinWindows {
    /// Records up to `time_difference` apart join; a record still joins for `grace`
    /// after its window ended (by stream time).
    pub fn of_time_difference_and_grace(time_difference: Duration, grace: Duration) -> Self {
        let difference = millis(time_difference);
        Self {
            before: difference,
            after: difference,
            grace: millis(grace),
        }
    }

    /// Records up to `time_difference` apart join, with no grace: a left or outer join
    /// emits an unmatched record as soon as stream time passes its window.
    pub fn of_time_difference_with_no_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_and_grace(time_difference, Duration::ZERO)
    }

    /// [`of_time_difference_with_no_grace`](Self::of_time_difference_with_no_grace), by
    /// another name.
    pub fn of_time_difference_without_grace(time_difference: Duration) -> Self {
        Self::of_time_difference_with_no_grace(time_difference)
    }

    /// How much earlier than a left record a right record may be to join it.
    #[must_use]
    pub fn before(mut self, before: Duration) -> Self {
        self.before = millis(before);
        self
    }

    /// How much later than a left record a right record may be to join it.
    #[must_use]
    pub fn after(mut self, after: Duration) -> Self {
        self.after = millis(after);
        self
    }

    /// How much earlier than a left record a right one may be, in ms.
    pub fn before_ms(&self) -> i64 {
        self.before
    }

    /// How much later than a left record a right one may be, in ms.
    pub fn after_ms(&self) -> i64 {
        self.after
    }

    /// How long after its window a record still joins, in ms.
    pub fn grace_ms(&self) -> i64 {
        self.grace
    }

    /// The span of a window, `before + after`, in ms: the window stores' window size.
    pub fn size_ms(&self) -> i64 {
        self.before.saturating_add(self.after)
    }

    /// How long the join's window stores keep a record: `before + after + grace`, in ms.
    pub(crate) fn retention_ms(&self) -> i64 {
        self.size_ms().saturating_add(self.grace)
    }
}

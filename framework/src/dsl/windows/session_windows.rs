//! `SessionWindows`: a key's records grouped into sessions of activity, a session ending
//! where no record comes for the inactivity gap, as Kafka Streams' `SessionWindows`. A
//! record within the gap of two sessions merges them; the aggregation decides that, as
//! records arrive.

use std::time::Duration;

use super::Span;

/// Sessions of activity per key (Kafka Streams' `SessionWindows`).
///
/// ```
/// use std::time::Duration;
/// use homa::dsl::SessionWindows;
///
/// let sessions = SessionWindows::of_inactivity_gap_with_no_grace(Duration::from_secs(3));
/// assert_eq!((sessions.inactivity_gap_ms(), sessions.grace_ms()), (3_000, 0));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SessionWindows(Span);

impl SessionWindows {
    /// Sessions that end after `gap` without a record, and take records up to `grace`
    /// after they end (by stream time).
    pub fn of_inactivity_gap_and_grace(gap: Duration, grace: Duration) -> Self {
        Self(Span::new(gap, grace))
    }

    /// Sessions that end after `gap` without a record, closed as they end.
    pub fn of_inactivity_gap_with_no_grace(gap: Duration) -> Self {
        Self::of_inactivity_gap_and_grace(gap, Duration::ZERO)
    }

    /// The gap that ends a session, in ms.
    pub fn inactivity_gap_ms(&self) -> i64 {
        self.0.length
    }

    /// How long after its end a session still takes records, in ms.
    pub fn grace_ms(&self) -> i64 {
        self.0.grace
    }

    /// Why these sessions cannot be used, if they cannot: as Kafka Streams refuses them.
    pub fn problem(&self) -> Option<String> {
        self.0.problem("SessionWindows: the inactivity gap")
    }
}

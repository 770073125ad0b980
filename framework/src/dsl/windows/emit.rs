//! `EmitStrategy` (KIP-825): when a windowed aggregation forwards its results.

/// When a windowed aggregation forwards its results (Kafka Streams' `EmitStrategy`).
///
/// ```
/// use homa::prelude::*;
/// use std::time::Duration;
///
/// let mut builder = StreamsBuilder::new();
/// builder
///     .stream::<String, String>("clicks")
///     .group_by_key()
///     .windowed_by(TimeWindows::of_size_and_grace(Duration::from_secs(60), Duration::from_secs(10)))
///     .emit_strategy(EmitStrategy::on_window_close())
///     .count();
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct EmitStrategy {
    on_close: bool,
}

impl EmitStrategy {
    /// Every update of a window, as it happens (through the record cache, when the store
    /// caches): the default.
    pub fn on_window_update() -> Self {
        Self { on_close: false }
    }

    /// Each window once, when it closes (stream time passes its end plus the grace): the
    /// results of [`Suppressed::until_window_closes`](crate::dsl::Suppressed::until_window_closes)
    /// without its buffer, read from the aggregation's own store.
    pub fn on_window_close() -> Self {
        Self { on_close: true }
    }

    /// Whether windows are emitted when they close.
    pub(crate) fn emits_on_close(self) -> bool {
        self.on_close
    }
}

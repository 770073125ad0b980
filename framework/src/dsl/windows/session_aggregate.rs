//! The aggregation of sessions (Kafka Streams' `KStreamSessionWindowAggregate`): a record
//! joins every session of its key that ends within the inactivity gap before it or starts
//! within the gap after it; those sessions merge into one (their aggregates merged), are
//! removed, and go downstream as tombstones before the merged session does. A session is
//! closed once the processor's stream time passes its end plus the gap and the grace.
//! Updates are stamped with the session's end.

use std::sync::Arc;

use super::SessionWindows;
use super::aggregation::{Aggregation, CloseTracker, drop_late};
use crate::dsl::ktable::Change;
use crate::header::Headers;
use crate::processor::{ProcessError, Processor, ProcessorContext, Record};
use crate::state::segmented::split_session_key;
use crate::state::{SessionStore, Window, Windowed};

type Context<K, VA> = ProcessorContext<Windowed<K>, Change<VA>>;

/// Merges two sessions' aggregates, the earlier first (`None`: the start of a reduce).
pub(crate) type Merge<K, VA> = Arc<dyn Fn(&K, Option<VA>, VA) -> VA + Send + Sync>;

pub(crate) struct SessionAggregate<K, V, VA> {
    name: Arc<str>,
    store: Option<SessionStore<K, VA>>,
    windows: SessionWindows,
    aggregation: Aggregation<K, V, VA>,
    merge: Merge<K, VA>,
    sends_old: bool,
    emit_on_close: bool,
    /// Whether the store's cache forwards the updates.
    cached: bool,
    /// The largest timestamp seen, -1 before the first record.
    stream_time: i64,
    closes: CloseTracker,
}

impl<K, V, VA> SessionAggregate<K, V, VA> {
    pub(crate) fn new(
        name: Arc<str>,
        windows: SessionWindows,
        (aggregation, merge): (Aggregation<K, V, VA>, Merge<K, VA>),
        (sends_old, emit_on_close): (bool, bool),
    ) -> Self {
        Self {
            closes: CloseTracker::new(name.clone()),
            name,
            store: None,
            windows,
            aggregation,
            merge,
            sends_old,
            emit_on_close,
            cached: false,
            stream_time: -1,
        }
    }

    fn store(&self) -> Result<&SessionStore<K, VA>, ProcessError>
    where
        K: 'static,
        VA: 'static,
    {
        self.store
            .as_ref()
            .ok_or_else(|| format!("store {} is not open", self.name).into())
    }
}

impl<K, V, VA> Processor<K, V, Windowed<K>, Change<VA>> for SessionAggregate<K, V, VA>
where
    K: Clone + 'static,
    V: 'static,
    VA: Clone + 'static,
{
    fn init(&mut self, ctx: &mut Context<K, VA>) -> Result<(), ProcessError> {
        let store = ctx.session_store::<K, VA>(&self.name)?;
        if self.emit_on_close {
            self.closes.resume(ctx);
        } else {
            let forwarder = ctx.forwarder();
            let serdes = store.view().clone();
            let sends_old = self.sends_old;
            // Kafka Streams' `SessionCacheFlushListener`: stamped with the session's end.
            self.cached = store.set_flush_listener(Box::new(move |key, new, old, _, headers| {
                let (key, start, end) = split_session_key(key).ok_or("a session store key")?;
                let key = Windowed::new(serdes.key_of(key)?, Window::session(start, end));
                let new = new.map(|bytes| serdes.value_of(bytes)).transpose()?;
                let old = match old.filter(|_| sends_old) {
                    Some(bytes) => Some(serdes.value_of(bytes)?),
                    None => None,
                };
                forwarder.forward(Record::from_parts(
                    Some(key),
                    Some(Change { new, old }),
                    end,
                    headers.clone(),
                ))
            }));
        }
        self.store = Some(store);
        Ok(())
    }

    fn process(
        &mut self,
        record: Record<K, V>,
        ctx: &mut Context<K, VA>,
    ) -> Result<(), ProcessError> {
        let Some(key) = &record.key else {
            ctx.drop_record("a session aggregation needs a key");
            return Ok(());
        };
        if record.value.is_none() && !self.aggregation.takes_no_value {
            ctx.drop_record("a session reduce or aggregate needs a value");
            return Ok(());
        }
        let timestamp = record.timestamp;
        self.stream_time = self.stream_time.max(timestamp);
        let (gap, grace) = (self.windows.inactivity_gap_ms(), self.windows.grace_ms());
        let close_time = self.stream_time - grace - gap;
        let store = self.store()?;
        let found = store.find_sessions(key, timestamp - gap, timestamp + gap)?;
        let new_session = Window::session(timestamp, timestamp);
        let (mut merged, mut aggregate) = (new_session, (self.aggregation.init)());
        for (session, value) in &found {
            aggregate = Some((self.merge)(key, aggregate, value.clone()));
            let window = session.window();
            merged = Window::session(
                merged.start().min(window.start()),
                merged.end().max(window.end()),
            );
        }
        if merged.end() < close_time {
            let shown = format!("[{},{}]", merged.start(), merged.end());
            drop_late(ctx, timestamp, &shown, (close_time, self.stream_time));
        } else {
            if merged != new_session {
                for (session, value) in found {
                    store.write(&session, None, &record.headers)?;
                    self.forward(ctx, session, (Some(value), None), &record.headers)?;
                }
            }
            let aggregate = (self.aggregation.add)(key, record.value.as_ref(), aggregate);
            let session = Windowed::new(key.clone(), merged);
            store.write(&session, Some(&aggregate), &record.headers)?;
            self.forward(ctx, session, (None, Some(aggregate)), &record.headers)?;
        }
        if self.emit_on_close {
            self.emit_closed(ctx, close_time, &record.headers)?;
        }
        Ok(())
    }
}

impl<K, V, VA> SessionAggregate<K, V, VA>
where
    K: Clone + 'static,
    VA: Clone + 'static,
{
    /// Forwards a session's change, stamped with its end, unless the cache will or
    /// sessions go downstream when they close.
    fn forward(
        &self,
        ctx: &mut Context<K, VA>,
        session: Windowed<K>,
        (old, new): (Option<VA>, Option<VA>),
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        if self.cached || self.emit_on_close {
            return Ok(());
        }
        let end = session.window().end();
        let change = Change {
            new,
            old: old.filter(|_| self.sends_old),
        };
        ctx.forward(Record::from_parts(
            Some(session),
            Some(change),
            end,
            headers.clone(),
        ))
    }

    /// Emits the sessions that closed since the last emission.
    fn emit_closed(
        &mut self,
        ctx: &mut Context<K, VA>,
        close_time: i64,
        headers: &Headers,
    ) -> Result<(), ProcessError> {
        if !self.closes.due(ctx, close_time) {
            return Ok(());
        }
        // A session's end is in it: closed sessions end before the close time.
        let (lower, upper) = (self.closes.last_close.max(0), close_time - 1);
        if upper < 0 || upper < lower {
            return Ok(());
        }
        for (session, value) in self.store()?.ending_between(lower, upper)? {
            let end = session.window().end();
            let change = Change {
                new: Some(value),
                old: None,
            };
            ctx.forward(Record::from_parts(
                Some(session),
                Some(change),
                end,
                headers.clone(),
            ))?;
        }
        self.closes.emitted(ctx, close_time);
        Ok(())
    }
}

//! `Window` and `Windowed<K>`: a time interval, and a key of a windowed aggregation with its
//! window; and their serdes, in Kafka Streams' layout so that a windowed table's stream can
//! be written with `to` and read by a Kafka Streams application (and back): time windows
//! as the key's bytes then the window's start (8 bytes, big-endian); sessions as the key's
//! bytes, then the end, then the start.

use std::fmt;
use std::sync::Arc;

use crate::header::Headers;
use crate::serde::{DefaultSerde, Serde, SerdeError, SharedSerde};

/// A time interval of a windowed aggregation, in ms since the epoch: `[start, end)` for
/// time windows, `[start, end]` for sliding windows and for a session (the timestamps of
/// its first and last records). A session is a window of its own kind, as Kafka Streams'
/// `SessionWindow` is a class of its own: the default serde of [`Windowed`] keys writes it
/// in the session layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Window {
    start: i64,
    end: i64,
    session: bool,
}

impl Window {
    /// The time window from `start` to `end`.
    ///
    /// ```
    /// use homa::dsl::Window;
    /// let w = Window::new(10_000, 20_000);
    /// assert_eq!((w.start(), w.end()), (10_000, 20_000));
    /// ```
    pub fn new(start: i64, end: i64) -> Self {
        Self {
            start,
            end,
            session: false,
        }
    }

    /// The session from `start` to `end` (the timestamps of its first and last records).
    pub fn session(start: i64, end: i64) -> Self {
        Self {
            start,
            end,
            session: true,
        }
    }

    /// Whether it is a session.
    pub fn is_session(&self) -> bool {
        self.session
    }

    /// Where it starts.
    pub fn start(&self) -> i64 {
        self.start
    }

    /// Where it ends.
    pub fn end(&self) -> i64 {
        self.end
    }
}

/// A key and the window it was aggregated in: the key of a windowed aggregation's table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Windowed<K> {
    key: K,
    window: Window,
}

impl<K> Windowed<K> {
    /// `key` in `window`.
    pub fn new(key: K, window: Window) -> Self {
        Self { key, window }
    }

    /// The key.
    pub fn key(&self) -> &K {
        &self.key
    }

    /// The window.
    pub fn window(&self) -> &Window {
        &self.window
    }

    /// The key, without its window.
    pub fn into_key(self) -> K {
        self.key
    }
}

/// As Kafka Streams prints a windowed key: `[key@start/end]`.
impl<K: fmt::Display> fmt::Display for Windowed<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "[{}@{}/{}]",
            self.key, self.window.start, self.window.end
        )
    }
}

/// How many bytes a timestamp takes in a windowed key.
const TIMESTAMP: usize = 8;

/// Which windows a [`WindowedSerde`] writes.
#[derive(Debug, Clone, Copy)]
enum Layout {
    /// Time windows: the start after the key; the end is the start plus the size, when
    /// known.
    Time { size: Option<i64> },
    /// Sessions: the end, then the start, after the key.
    Session,
    /// Each window in the layout of its kind; read back as time windows of unknown size.
    ByKind,
}

/// Writes windowed keys in Kafka Streams' layout (its `WindowedSerdes`): a time-windowed
/// key is the key's bytes, then the window's start (8 bytes, big-endian), a session's the
/// key's bytes, then the end, then the start.
///
/// ```
/// use homa::dsl::{Window, Windowed, WindowedSerde};
/// use homa::header::Headers;
/// use homa::serde::{DefaultSerde, Serde};
///
/// let serde = WindowedSerde::time_windowed(String::default_serde(), 10_000);
/// let mut bytes = Vec::new();
/// let key = Windowed::new("ab".to_string(), Window::new(20_000, 30_000));
/// serde.serialize("t", &mut Headers::new(), &key, &mut bytes).unwrap();
/// assert_eq!(bytes, [b'a', b'b', 0, 0, 0, 0, 0, 0, 0x4e, 0x20]);
/// assert_eq!(serde.deserialize("t", &Headers::new(), &bytes).unwrap(), key);
/// ```
pub struct WindowedSerde<K> {
    keys: SharedSerde<K>,
    layout: Layout,
}

impl<K> fmt::Debug for WindowedSerde<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("WindowedSerde")
            .field("layout", &self.layout)
            .finish_non_exhaustive()
    }
}

impl<K: 'static> WindowedSerde<K> {
    /// Time-windowed keys written with `keys`, of windows `size_ms` long (Kafka Streams'
    /// `timeWindowedSerdeFrom`).
    pub fn time_windowed(keys: SharedSerde<K>, size_ms: i64) -> Self {
        Self {
            keys,
            layout: Layout::Time {
                size: Some(size_ms),
            },
        }
    }

    /// Time-windowed keys of windows of unknown size: read back, the end is `i64::MAX`, as
    /// Kafka Streams' deserializer without a size has it.
    pub fn time_windowed_without_size(keys: SharedSerde<K>) -> Self {
        Self {
            keys,
            layout: Layout::Time { size: None },
        }
    }

    /// Session-windowed keys written with `keys` (Kafka Streams' `sessionWindowedSerdeFrom`).
    pub fn session_windowed(keys: SharedSerde<K>) -> Self {
        Self {
            keys,
            layout: Layout::Session,
        }
    }
}

impl<K: 'static> Serde<Windowed<K>> for WindowedSerde<K> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &Windowed<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        self.keys.serialize(topic, headers, &value.key, out)?;
        let session = match self.layout {
            Layout::Session => true,
            Layout::ByKind => value.window.session,
            Layout::Time { .. } => false,
        };
        if session {
            out.extend_from_slice(&value.window.end.to_be_bytes());
        }
        out.extend_from_slice(&value.window.start.to_be_bytes());
        Ok(())
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<Windowed<K>, SerdeError> {
        let count = match self.layout {
            Layout::Time { .. } | Layout::ByKind => 1,
            Layout::Session => 2,
        };
        let Some(at) = bytes.len().checked_sub(TIMESTAMP * count) else {
            return Err(SerdeError::new(
                "Windowed",
                format!("{} bytes, fewer than {count} timestamp(s)", bytes.len()),
            ));
        };
        let (key, times) = bytes.split_at(at);
        let time = |i: usize| {
            let mut be = [0; TIMESTAMP];
            be.copy_from_slice(&times[i * TIMESTAMP..(i + 1) * TIMESTAMP]);
            i64::from_be_bytes(be)
        };
        let window = match self.layout {
            Layout::Time { size } => {
                let start = time(0);
                Window::new(start, size.map_or(i64::MAX, |s| start.saturating_add(s)))
            }
            Layout::ByKind => Window::new(time(0), i64::MAX),
            Layout::Session => Window::session(time(1), time(0)),
        };
        Ok(Windowed::new(
            self.keys.deserialize(topic, headers, key)?,
            window,
        ))
    }
}

/// A windowed key on a topic is written as Kafka Streams writes keys of its kind of window
/// (a session's as a session's, any other's as a time window's); read back, it is a time
/// window of unknown size, its end `i64::MAX` (give the size with
/// [`WindowedSerde::time_windowed`], or read sessions with
/// [`WindowedSerde::session_windowed`]).
impl<K: DefaultSerde> DefaultSerde for Windowed<K> {
    fn default_serde() -> SharedSerde<Self> {
        Arc::new(WindowedSerde {
            keys: K::default_serde(),
            layout: Layout::ByKind,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes(serde: &dyn Serde<Windowed<String>>, key: &Windowed<String>) -> Vec<u8> {
        let mut out = Vec::new();
        serde
            .serialize("t", &mut Headers::new(), key, &mut out)
            .unwrap();
        out
    }

    // The bytes are Kafka Streams' own: case `windowed-serdes` of
    // benchmarks/kafka-streams/oracle-output.txt.
    #[test]
    fn time_windowed_keys_are_the_key_then_the_start() {
        let serde = WindowedSerde::time_windowed(String::default_serde(), 10_000);
        let key = Windowed::new("ab".to_string(), Window::new(20_000, 30_000));
        let written = bytes(&serde, &key);
        let mut expected = b"ab".to_vec();
        expected.extend_from_slice(&20_000_i64.to_be_bytes());
        assert_eq!(written, expected);
        assert_eq!(
            serde.deserialize("t", &Headers::new(), &written).unwrap(),
            key
        );
        let unsized_read = Windowed::<String>::default_serde()
            .deserialize("t", &Headers::new(), &written)
            .unwrap();
        assert_eq!(*unsized_read.window(), Window::new(20_000, i64::MAX));
        let err = serde
            .deserialize("t", &Headers::new(), b"short")
            .unwrap_err();
        assert!(err.to_string().contains("fewer than 1 timestamp"), "{err}");
    }

    #[test]
    fn session_windowed_keys_are_the_key_then_end_then_start() {
        let serde = WindowedSerde::session_windowed(String::default_serde());
        let key = Windowed::new("k".to_string(), Window::session(5, 9));
        let written = bytes(&serde, &key);
        assert_eq!(bytes(&*Windowed::<String>::default_serde(), &key), written);
        let mut expected = b"k".to_vec();
        expected.extend_from_slice(&9_i64.to_be_bytes());
        expected.extend_from_slice(&5_i64.to_be_bytes());
        assert_eq!(written, expected);
        assert_eq!(
            serde.deserialize("t", &Headers::new(), &written).unwrap(),
            key
        );
        assert_eq!(key.to_string(), "[k@5/9]");
    }
}

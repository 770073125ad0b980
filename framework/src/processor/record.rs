//! `Record`: what flows between processors.

use crate::header::Headers;

/// A record as processors see it: a key and a value, either of which may be null (`None`),
/// a timestamp (ms since the epoch) and headers.
///
/// Where the record came from (topic, partition, offset) is not part of it: a processor
/// asks its context, which knows while the record is processed (see
/// [`ProcessorContext::record_metadata`](super::ProcessorContext::record_metadata)).
///
/// ```
/// use homa::processor::Record;
///
/// let record = Record::new("k1".to_string(), 120.0_f64, 1_000);
/// let doubled = record.clone().map_value(|v| v * 2.0);
/// assert_eq!(doubled.value, Some(240.0));
/// assert_eq!(doubled.timestamp, 1_000);
/// let tombstone = record.with_value(None::<f64>);
/// assert!(tombstone.value.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Record<K, V> {
    /// The key; `None` is Kafka's null key.
    pub key: Option<K>,
    /// The value; `None` is Kafka's null value (a tombstone, for tables).
    pub value: Option<V>,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
    /// The record's headers.
    pub headers: Headers,
}

impl<K, V> Record<K, V> {
    /// A record with a key and a value, and no headers.
    pub fn new(key: K, value: V, timestamp: i64) -> Self {
        Self {
            key: Some(key),
            value: Some(value),
            timestamp,
            headers: Headers::new(),
        }
    }

    /// A record from its parts, any of which may be null.
    pub fn from_parts(key: Option<K>, value: Option<V>, timestamp: i64, headers: Headers) -> Self {
        Self {
            key,
            value,
            timestamp,
            headers,
        }
    }

    /// The same record with another key (of any type).
    pub fn with_key<K2>(self, key: Option<K2>) -> Record<K2, V> {
        Record {
            key,
            value: self.value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another value (of any type).
    pub fn with_value<V2>(self, value: Option<V2>) -> Record<K, V2> {
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }

    /// The same record with another timestamp.
    #[must_use]
    pub fn with_timestamp(mut self, timestamp: i64) -> Self {
        self.timestamp = timestamp;
        self
    }

    /// The same record with other headers.
    #[must_use]
    pub fn with_headers(mut self, headers: Headers) -> Self {
        self.headers = headers;
        self
    }

    /// Maps a non-null value; a null value stays null.
    pub fn map_value<V2>(self, f: impl FnOnce(V) -> V2) -> Record<K, V2> {
        let value = self.value.map(f);
        Record {
            key: self.key,
            value,
            timestamp: self.timestamp,
            headers: self.headers,
        }
    }
}

/// Where the record being processed came from. Absent for records a punctuator forwards.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RecordMetadata {
    /// The topic it was read from.
    pub topic: std::sync::Arc<str>,
    /// Its partition.
    pub partition: i32,
    /// Its offset in that partition.
    pub offset: i64,
}

impl std::fmt::Display for RecordMetadata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}@{}", self.topic, self.partition, self.offset)
    }
}

//! Timestamped values: what the DSL's tables and aggregations keep, each value with the
//! timestamp of its last update (Kafka Streams' `ValueAndTimestamp` and
//! `TimestampedKeyValueStore`).
//!
//! In the store a value is its timestamp (8 bytes, big-endian) followed by the value's
//! bytes; in the changelog it is the value's bytes alone, the timestamp being the record's.

use std::sync::Arc;

use super::KeyValueStore;
use crate::header::Headers;
use crate::serde::{Serde, SerdeError, SharedSerde};

/// A value and the timestamp of its last update.
///
/// ```
/// use homa::state::ValueAndTimestamp;
///
/// let count = ValueAndTimestamp::make(3_i64, 1_000);
/// assert_eq!((count.value, count.timestamp), (3, 1_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct ValueAndTimestamp<V> {
    /// The value.
    pub value: V,
    /// Milliseconds since the epoch.
    pub timestamp: i64,
}

impl<V> ValueAndTimestamp<V> {
    /// `value` as of `timestamp`.
    pub fn make(value: V, timestamp: i64) -> Self {
        Self { value, timestamp }
    }
}

/// A key-value store whose values carry their timestamps (Kafka Streams'
/// `TimestampedKeyValueStore`).
pub type TimestampedKeyValueStore<K, V> = KeyValueStore<K, ValueAndTimestamp<V>>;

/// How many bytes the timestamp takes before a value.
pub(crate) const TIMESTAMP_BYTES: usize = 8;

/// The timestamp and the value bytes of a stored timestamped value.
pub(crate) fn split(stored: &[u8]) -> Option<(i64, &[u8])> {
    let (timestamp, value) = stored.split_first_chunk::<TIMESTAMP_BYTES>()?;
    Some((i64::from_be_bytes(*timestamp), value))
}

/// Serializes a [`ValueAndTimestamp`] as the store keeps it: the timestamp, then the value.
pub(crate) struct ValueAndTimestampSerde<V>(pub(crate) SharedSerde<V>);

impl<V> ValueAndTimestampSerde<V> {
    pub(crate) fn shared(values: SharedSerde<V>) -> SharedSerde<ValueAndTimestamp<V>>
    where
        V: 'static,
    {
        Arc::new(Self(values))
    }
}

impl<V: 'static> Serde<ValueAndTimestamp<V>> for ValueAndTimestampSerde<V> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &ValueAndTimestamp<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.timestamp.to_be_bytes());
        self.0.serialize(topic, headers, &value.value, out)
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<ValueAndTimestamp<V>, SerdeError> {
        let (timestamp, value) = split(bytes).ok_or_else(|| {
            SerdeError::new(
                "ValueAndTimestamp",
                format!("{} bytes, fewer than a timestamp", bytes.len()),
            )
        })?;
        Ok(ValueAndTimestamp {
            value: self.0.deserialize(topic, headers, value)?,
            timestamp,
        })
    }
}

/// Reads the value alone of a stored timestamped value: the view of a timestamped store
/// that queries (and `TopologyTestDriver::key_value_store`) give, as Kafka Streams does.
pub(crate) struct ValueOfTimestamped<V>(pub(crate) SharedSerde<V>);

impl<V: 'static> Serde<V> for ValueOfTimestamped<V> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &V,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        // Only keys of such a view are written (range bounds); a value written through it
        // gets no timestamp of its own.
        out.extend_from_slice(&(-1_i64).to_be_bytes());
        self.0.serialize(topic, headers, value, out)
    }

    fn deserialize(&self, topic: &str, headers: &Headers, bytes: &[u8]) -> Result<V, SerdeError> {
        ValueAndTimestampSerde(self.0.clone())
            .deserialize(topic, headers, bytes)
            .map(|v| v.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::DefaultSerde;

    #[test]
    fn the_timestamp_goes_first_big_endian() {
        let serde = ValueAndTimestampSerde(i64::default_serde());
        let mut out = Vec::new();
        let value = ValueAndTimestamp::make(7_i64, 0x0102);
        serde
            .serialize("t", &mut Headers::new(), &value, &mut out)
            .unwrap();
        assert_eq!(&out[..8], &[0, 0, 0, 0, 0, 0, 1, 2]);
        assert_eq!(&out[8..], &7_i64.to_be_bytes());
        assert_eq!(
            serde.deserialize("t", &Headers::new(), &out).unwrap(),
            value
        );
        let plain = ValueOfTimestamped(i64::default_serde());
        assert_eq!(plain.deserialize("t", &Headers::new(), &out).unwrap(), 7);
        let err = serde
            .deserialize("t", &Headers::new(), &[1, 2])
            .unwrap_err();
        assert!(err.to_string().contains("fewer than a timestamp"), "{err}");
    }
}

//! The store of a left or outer stream-stream join's records that have not joined yet
//! (KAFKA-10847): kept until their window closes, then emitted with no partner, unless a
//! partner arrives first. Laid out as Kafka Streams' `TimestampedKeyAndJoinSide` keys and
//! lists of `LeftOrRightValue`s, so that the entries iterate by time, right before left.

use std::sync::Arc;

use crate::header::Headers;
use crate::serde::{Serde, SerdeError, SharedSerde};
use crate::state::{KeyValueStore, StoreError};

/// A record's key, time and side: the outer store's key, serialized as the timestamp (8
/// bytes, big-endian), the side (1 left, 0 right) and the key's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct JoinSideKey<K> {
    pub(crate) timestamp: i64,
    pub(crate) left: bool,
    pub(crate) key: K,
}

/// A value of one side of the join.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LeftOrRight<V1, V2> {
    Left(V1),
    Right(V2),
}

impl<V1, V2> LeftOrRight<V1, V2> {
    /// The left value, if it is one.
    pub(crate) fn left(&self) -> Option<&V1> {
        match self {
            Self::Left(value) => Some(value),
            Self::Right(_) => None,
        }
    }

    /// The right value, if it is one.
    pub(crate) fn right(&self) -> Option<&V2> {
        match self {
            Self::Left(_) => None,
            Self::Right(value) => Some(value),
        }
    }
}

/// The values held for one key, time and side, in the order they came.
pub(crate) type HeldValues<V1, V2> = Vec<LeftOrRight<V1, V2>>;

/// The serde of [`JoinSideKey`] over the join's key serde.
pub(crate) struct JoinSideKeySerde<K>(pub(crate) SharedSerde<K>);

impl<K: 'static> Serde<JoinSideKey<K>> for JoinSideKeySerde<K> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &JoinSideKey<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.timestamp.to_be_bytes());
        out.push(u8::from(value.left));
        self.0.serialize(topic, headers, &value.key, out)
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<JoinSideKey<K>, SerdeError> {
        let Some((timestamp, rest)) = bytes.split_first_chunk::<8>() else {
            return Err(SerdeError::new(
                "join side key",
                "shorter than its timestamp and side",
            ));
        };
        let Some((&side, key)) = rest.split_first() else {
            return Err(SerdeError::new(
                "join side key",
                "no side after the timestamp",
            ));
        };
        Ok(JoinSideKey {
            timestamp: i64::from_be_bytes(*timestamp),
            left: side == 1,
            key: self.0.deserialize(topic, headers, key)?,
        })
    }
}

/// The serde of [`HeldValues`], as Kafka Streams' list serde of variable-size entries: a
/// byte 1, the count (4 bytes, big-endian), then each entry's length (4 bytes) and bytes,
/// an entry being its side (1 left, 0 right) and the value's bytes.
pub(crate) struct HeldValuesSerde<V1, V2> {
    pub(crate) left: SharedSerde<V1>,
    pub(crate) right: SharedSerde<V2>,
}

const NAME: &str = "held join values";
const VARIABLE_SIZE: u8 = 1;

impl<V1: 'static, V2: 'static> Serde<HeldValues<V1, V2>> for HeldValuesSerde<V1, V2> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        values: &HeldValues<V1, V2>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let count = i32::try_from(values.len())
            .map_err(|_| SerdeError::new(NAME, "more than i32::MAX values"))?;
        out.push(VARIABLE_SIZE);
        out.extend_from_slice(&count.to_be_bytes());
        for value in values {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            match value {
                LeftOrRight::Left(v) => {
                    out.push(1);
                    self.left.serialize(topic, headers, v, out)?;
                }
                LeftOrRight::Right(v) => {
                    out.push(0);
                    self.right.serialize(topic, headers, v, out)?;
                }
            }
            let len = i32::try_from(out.len() - at - 4)
                .map_err(|_| SerdeError::new(NAME, "a value longer than i32::MAX bytes"))?;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        Ok(())
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<HeldValues<V1, V2>, SerdeError> {
        let cut = |what: &str| SerdeError::new(NAME, format!("cut short in {what}"));
        let (&strategy, mut rest) = bytes.split_first().ok_or_else(|| cut("the header"))?;
        if strategy != VARIABLE_SIZE {
            return Err(SerdeError::new(
                NAME,
                format!("serialization strategy {strategy}, not variable-size (1)"),
            ));
        }
        let (count, tail) = rest
            .split_first_chunk::<4>()
            .ok_or_else(|| cut("the count"))?;
        rest = tail;
        let count = usize::try_from(i32::from_be_bytes(*count))
            .map_err(|_| SerdeError::new(NAME, "a negative count"))?;
        let mut values = Vec::with_capacity(count.min(rest.len()));
        for _ in 0..count {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| cut("a length"))?;
            let len = usize::try_from(i32::from_be_bytes(*len))
                .map_err(|_| SerdeError::new(NAME, "a null entry"))?;
            if tail.len() < len {
                return Err(cut("a value"));
            }
            let (entry, tail) = tail.split_at(len);
            rest = tail;
            let (&side, value) = entry.split_first().ok_or_else(|| cut("a side"))?;
            values.push(match side {
                1 => LeftOrRight::Left(self.left.deserialize(topic, headers, value)?),
                _ => LeftOrRight::Right(self.right.deserialize(topic, headers, value)?),
            });
        }
        Ok(values)
    }
}

/// The serdes of the outer store of a join of `K` keys, `V1` left and `V2` right values.
pub(crate) fn serdes<K: 'static, V1: 'static, V2: 'static>(
    keys: SharedSerde<K>,
    left: SharedSerde<V1>,
    right: SharedSerde<V2>,
) -> (SharedSerde<JoinSideKey<K>>, SharedSerde<HeldValues<V1, V2>>) {
    (
        Arc::new(JoinSideKeySerde(keys)),
        Arc::new(HeldValuesSerde { left, right }),
    )
}

/// The outer store as the join's processors use it.
pub(crate) struct OuterStore<K, V1, V2> {
    pub(crate) store: KeyValueStore<JoinSideKey<K>, HeldValues<V1, V2>>,
}

impl<K: Clone + 'static, V1: 'static, V2: 'static> OuterStore<K, V1, V2> {
    /// Holds `value` of `key` at `timestamp`, after any held for the same key, time and side.
    pub(crate) fn hold(
        &self,
        key: K,
        timestamp: i64,
        value: LeftOrRight<V1, V2>,
    ) -> Result<(), StoreError> {
        let key = JoinSideKey {
            timestamp,
            left: matches!(value, LeftOrRight::Left(_)),
            key,
        };
        let mut held = self.store.get(&key)?.unwrap_or_default();
        held.push(value);
        self.store.put(&key, &held)
    }

    /// Drops what is held for `key` at `timestamp` on the `left` side or not, as a partner
    /// came: it will not be emitted alone.
    pub(crate) fn joined(&self, key: &K, timestamp: i64, left: bool) -> Result<(), StoreError> {
        let key = JoinSideKey {
            timestamp,
            left,
            key: key.clone(),
        };
        if self.store.get(&key)?.is_some() {
            self.store.delete(&key)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::DefaultSerde;

    #[test]
    fn keys_and_values_have_kafka_streams_layout() {
        let keys = JoinSideKeySerde(String::default_serde());
        let key = JoinSideKey {
            timestamp: 258,
            left: true,
            key: "k".to_string(),
        };
        let mut bytes = Vec::new();
        keys.serialize("t", &mut Headers::new(), &key, &mut bytes)
            .unwrap();
        assert_eq!(bytes, [0, 0, 0, 0, 0, 0, 1, 2, 1, b'k']);
        assert_eq!(keys.deserialize("t", &Headers::new(), &bytes).unwrap(), key);

        let values = HeldValuesSerde {
            left: String::default_serde(),
            right: String::default_serde(),
        };
        let held = vec![
            LeftOrRight::Left("ab".to_string()),
            LeftOrRight::Right("c".to_string()),
        ];
        let mut bytes = Vec::new();
        values
            .serialize("t", &mut Headers::new(), &held, &mut bytes)
            .unwrap();
        assert_eq!(
            bytes,
            [
                1, 0, 0, 0, 2, 0, 0, 0, 3, 1, b'a', b'b', 0, 0, 0, 2, 0, b'c'
            ]
        );
        assert_eq!(
            values.deserialize("t", &Headers::new(), &bytes).unwrap(),
            held
        );
        let cut = values.deserialize("t", &Headers::new(), &bytes[..12]);
        assert!(cut.unwrap_err().to_string().contains("cut short"));
    }
}

//! `Change`: what flows between the processors of a table, a key's new value and the one
//! it replaces (Kafka Streams' `Change`), and how it crosses a repartition topic.

use std::sync::Arc;

use crate::header::Headers;
use crate::serde::{DefaultSerde, Serde, SerdeError, SharedSerde};

/// The new value of a key and the one it replaces; `None` is no value (deleted or absent).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Change<V> {
    pub(crate) new: Option<V>,
    pub(crate) old: Option<V>,
}

/// How a change travels through a repartition topic: a flags byte (1: a new value, 2: an
/// old value), the new value's length (4 bytes, big-endian) and bytes, then the old value's.
pub(crate) struct ChangeSerde<V>(SharedSerde<V>);

impl<V: 'static> ChangeSerde<V> {
    /// The serde of changes of values written with `values`.
    pub(crate) fn shared(values: SharedSerde<V>) -> SharedSerde<Change<V>> {
        Arc::new(Self(values))
    }
}

impl<V: 'static> Serde<Change<V>> for ChangeSerde<V> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &Change<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        let flags = u8::from(value.new.is_some()) | (u8::from(value.old.is_some()) << 1);
        out.push(flags);
        if let Some(new) = &value.new {
            let at = out.len();
            out.extend_from_slice(&[0; 4]);
            self.0.serialize(topic, headers, new, out)?;
            let len = u32::try_from(out.len() - at - 4)
                .map_err(|_| SerdeError::new("Change", "a value over 4 GiB"))?;
            out[at..at + 4].copy_from_slice(&len.to_be_bytes());
        }
        if let Some(old) = &value.old {
            self.0.serialize(topic, headers, old, out)?;
        }
        Ok(())
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<Change<V>, SerdeError> {
        let bad = |why: &str| SerdeError::new("Change", why.to_string());
        let (&flags, mut rest) = bytes.split_first().ok_or_else(|| bad("empty"))?;
        let new = if flags & 1 != 0 {
            let len = rest
                .get(..4)
                .and_then(|b| <[u8; 4]>::try_from(b).ok())
                .map(u32::from_be_bytes)
                .ok_or_else(|| bad("no length of the new value"))?;
            let len = usize::try_from(len).map_err(|_| bad("a length too large"))?;
            let value = rest
                .get(4..4 + len)
                .ok_or_else(|| bad("a new value cut short"))?;
            rest = &rest[4 + len..];
            Some(self.0.deserialize(topic, headers, value)?)
        } else {
            None
        };
        let old = if flags & 2 != 0 {
            Some(self.0.deserialize(topic, headers, rest)?)
        } else {
            None
        };
        Ok(Change { new, old })
    }
}

impl<V: DefaultSerde> DefaultSerde for Change<V> {
    fn default_serde() -> SharedSerde<Self> {
        ChangeSerde::shared(V::default_serde())
    }
}

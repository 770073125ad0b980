//! The time-ordered buffer of a suppression (Kafka Streams'
//! `InMemoryTimeOrderedKeyValueChangeBuffer`): a table's latest change of each key, held until
//! its buffer time passes, then handed on oldest first (by buffer time, then key bytes).
//!
//! A key keeps the buffer time of its first change while it is held (Kafka Streams'
//! non-resetting semantics); the change, timestamp and headers are the latest. The entries
//! live in a logged key-value store, so the buffer is restored from its changelog after a
//! restart; the order is an index in memory, rebuilt from the store when the buffer opens.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use super::{KeyValueStore, StoreError};
use crate::header::Headers;
use crate::serde::{Serde, SerdeError, SharedSerde};

/// A change held by the buffer.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Buffered<V> {
    /// When it may leave: a window's end, or its first record's timestamp.
    pub(crate) time: i64,
    /// The timestamp of the latest record of the key.
    pub(crate) timestamp: i64,
    pub(crate) headers: Headers,
    pub(crate) old: Option<V>,
    pub(crate) new: Option<V>,
    /// The old value of the key's first change held: what went downstream last, which
    /// the suppressed table's value getter answers while the key is held (Kafka Streams'
    /// `priorValue`).
    pub(crate) prior: Option<V>,
}

/// A buffered change as its store keeps it: buffer time and timestamp (8 bytes each,
/// big-endian), the headers (a count, then each key and value with their lengths, -1 for a
/// null value), then the old and new values (each a length, -1 for none, and its bytes),
/// and the prior value in the same form, only when its bytes differ from the old value's
/// (as Kafka Streams charges a prior value that is the old value once).
pub(crate) struct BufferedSerde<V>(pub(crate) SharedSerde<V>);

impl<V: 'static> BufferedSerde<V> {
    pub(crate) fn shared(values: SharedSerde<V>) -> SharedSerde<Buffered<V>> {
        Arc::new(Self(values))
    }
}

fn put_len(out: &mut Vec<u8>, len: Option<usize>) {
    let len = len.map_or(-1, |l| i32::try_from(l).unwrap_or(i32::MAX));
    out.extend_from_slice(&len.to_be_bytes());
}

/// Reads a buffered change's bytes in order.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], SerdeError> {
        if self.0.len() < n {
            return Err(SerdeError::new(
                "suppression buffer entry",
                format!("{} bytes left, {n} needed", self.0.len()),
            ));
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn i64(&mut self) -> Result<i64, SerdeError> {
        Ok(i64::from_be_bytes(
            self.take(8)?.try_into().expect("8 bytes"),
        ))
    }

    /// A length-prefixed part; `None` for a length of -1.
    fn part(&mut self) -> Result<Option<&'a [u8]>, SerdeError> {
        let len = i32::from_be_bytes(self.take(4)?.try_into().expect("4 bytes"));
        match usize::try_from(len) {
            Ok(len) => self.take(len).map(Some),
            Err(_) => Ok(None),
        }
    }
}

impl<V: 'static> Serde<Buffered<V>> for BufferedSerde<V> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &Buffered<V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.extend_from_slice(&value.time.to_be_bytes());
        out.extend_from_slice(&value.timestamp.to_be_bytes());
        put_len(out, Some(value.headers.len()));
        for header in &value.headers {
            put_len(out, Some(header.key.len()));
            out.extend_from_slice(header.key.as_bytes());
            put_len(out, header.value.as_ref().map(Vec::len));
            out.extend_from_slice(header.value.as_deref().unwrap_or_default());
        }
        let old = out.len();
        self.part(topic, headers, value.old.as_ref(), out)?;
        let old = old..out.len();
        self.part(topic, headers, value.new.as_ref(), out)?;
        let mut prior = Vec::new();
        self.part(topic, headers, value.prior.as_ref(), &mut prior)?;
        if prior[..] != out[old] {
            out.extend_from_slice(&prior);
        }
        Ok(())
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<Buffered<V>, SerdeError> {
        let mut reader = Reader(bytes);
        let (time, timestamp) = (reader.i64()?, reader.i64()?);
        let count = i32::from_be_bytes(reader.take(4)?.try_into().expect("4 bytes"));
        let mut held = Headers::new();
        for _ in 0..count.max(0) {
            let key = reader.part()?.unwrap_or_default();
            let key = String::from_utf8_lossy(key).into_owned();
            match reader.part()? {
                Some(value) => held.add(key, value.to_vec()),
                None => held.add_null(key),
            };
        }
        let value = |part: Option<&[u8]>| {
            part.map(|b| self.0.deserialize(topic, headers, b))
                .transpose()
        };
        let old_part = reader.part()?;
        let (old, new) = (value(old_part)?, value(reader.part()?)?);
        let prior = if reader.0.is_empty() {
            value(old_part)?
        } else {
            value(reader.part()?)?
        };
        Ok(Buffered {
            time,
            timestamp,
            headers: held,
            old,
            new,
            prior,
        })
    }
}

impl<V: 'static> BufferedSerde<V> {
    /// Writes `value` as a part: its length (-1 for none), then its bytes.
    fn part(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: Option<&V>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        match value {
            None => put_len(out, None),
            Some(v) => {
                let at = out.len();
                put_len(out, Some(0));
                self.0.serialize(topic, headers, v, out)?;
                let len = out.len() - at - 4;
                out[at..at + 4]
                    .copy_from_slice(&i32::try_from(len).unwrap_or(i32::MAX).to_be_bytes());
            }
        }
        Ok(())
    }
}

/// The buffer of one suppression in one task, over its store.
pub(crate) struct TimeOrderedBuffer<K, V> {
    store: KeyValueStore<K, Buffered<V>>,
    /// By buffer time, then key bytes: the bytes each entry is charged.
    order: BTreeMap<(i64, Vec<u8>), usize>,
    /// The buffer time of each held key.
    times: HashMap<Vec<u8>, i64>,
    bytes: usize,
}

impl<K: 'static, V: 'static> TimeOrderedBuffer<K, V> {
    /// The buffer kept in `store`, with what the store holds (restored from its changelog).
    pub(crate) fn open(store: KeyValueStore<K, Buffered<V>>) -> Result<Self, StoreError> {
        let mut buffer = Self {
            store,
            order: BTreeMap::new(),
            times: HashMap::new(),
            bytes: 0,
        };
        let entries: Vec<(Vec<u8>, Vec<u8>)> = buffer
            .store
            .view()
            .bytes()
            .range(None, None)?
            .collect::<Result<_, _>>()?;
        for (key, value) in entries {
            let held = buffer.store.view().value_of(&value)?;
            buffer.index(key, held.time, value.len());
        }
        Ok(buffer)
    }

    fn index(&mut self, key: Vec<u8>, time: i64, value_len: usize) {
        // Kafka Streams charges an entry its key, its values and its record context.
        let size = 8 + key.len() + value_len;
        self.bytes += size;
        self.times.insert(key.clone(), time);
        if let Some(before) = self.order.insert((time, key), size) {
            self.bytes -= before;
        }
    }

    /// Holds `key`'s latest change, buffered at `time` unless the key is held already
    /// (then at the time it was first buffered, and with the prior value of the first
    /// change held; `change.prior` is left out).
    pub(crate) fn put(&mut self, key: &K, time: i64, change: Buffered<V>) -> Result<(), StoreError>
    where
        V: Clone,
    {
        let (key_bytes, len) = self.store.with_key(key, |bytes| {
            let (time, prior) = match self.times.get(bytes) {
                Some(&first) => {
                    let held = self.store.get_serialized(bytes)?;
                    (first, held.and_then(|held| held.prior))
                }
                None => (time, change.old.clone()),
            };
            let held = Buffered {
                time,
                prior,
                ..change
            };
            self.store.put_serialized(bytes, &held, &Headers::new())?;
            let len = self.store.view().bytes().get(bytes)?.map_or(0, |v| v.len());
            Ok::<_, StoreError>((bytes.to_vec(), (time, len)))
        })?;
        let (time, len) = len;
        self.index(key_bytes, time, len);
        Ok(())
    }

    /// The earliest buffer time held.
    pub(crate) fn min_time(&self) -> Option<i64> {
        self.order.first_key_value().map(|((time, _), _)| *time)
    }

    /// How many keys are held.
    pub(crate) fn len(&self) -> usize {
        self.order.len()
    }

    /// What the held entries are charged, in bytes.
    pub(crate) fn bytes(&self) -> usize {
        self.bytes
    }

    /// The prior value of `key` if it is held (`Some(None)`: held, with no prior value).
    pub(crate) fn prior(
        store: &KeyValueStore<K, Buffered<V>>,
        key: &K,
    ) -> Result<Option<Option<V>>, StoreError> {
        Ok(store.get(key)?.map(|held| held.prior))
    }

    /// Takes out the entry held longest (earliest buffer time, then key bytes).
    pub(crate) fn pop(&mut self) -> Result<Option<(K, Buffered<V>)>, StoreError> {
        let Some(((_, key), size)) = self.order.pop_first() else {
            return Ok(None);
        };
        self.bytes -= size;
        self.times.remove(&key);
        let held = self.store.get_serialized(&key)?;
        self.store.remove_serialized(&key, &Headers::new())?;
        let Some(held) = held else {
            return Ok(None);
        };
        Ok(Some((self.store.view().key_of(&key)?, held)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde::DefaultSerde;

    #[test]
    fn an_entry_comes_back_as_it_was_written() {
        let serde = BufferedSerde(String::default_serde());
        let mut headers = Headers::new();
        headers.add("h", b"v".to_vec()).add_null("n");
        let held = Buffered {
            time: 10_000,
            timestamp: 9_000,
            headers,
            old: None,
            new: Some("x".to_string()),
            prior: None,
        };
        let mut out = Vec::new();
        serde
            .serialize("t", &mut Headers::new(), &held, &mut out)
            .unwrap();
        assert_eq!(serde.deserialize("t", &Headers::new(), &out).unwrap(), held);
        let err = serde
            .deserialize("t", &Headers::new(), &out[..5])
            .unwrap_err();
        assert!(err.to_string().contains("needed"), "{err}");

        // A prior value other than the old value is kept after the values; one equal to
        // it costs nothing.
        let (plain, changed) = (out.len(), {
            let mut held = held.clone();
            held.old = Some("a".to_string());
            held.prior = Some("p".to_string());
            let mut out = Vec::new();
            serde
                .serialize("t", &mut Headers::new(), &held, &mut out)
                .unwrap();
            assert_eq!(serde.deserialize("t", &Headers::new(), &out).unwrap(), held);
            out.len()
        });
        assert_eq!(changed, plain + 1 + 4 + 1, "old and prior, one byte each");
    }
}

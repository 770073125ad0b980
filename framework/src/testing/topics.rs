//! Test input and output topics: typed ends of a `TopologyTestDriver`.

use std::collections::HashMap;
use std::hash::Hash;

use super::driver::{CapturedRecord, TopologyTestDriver};
use crate::header::Headers;
use crate::processor::Record;
use crate::serde::{DefaultSerde, SharedSerde};

/// A topic of a driver with the serdes of its key and value type.
struct TopicEnd<'d, K, V> {
    driver: &'d TopologyTestDriver,
    topic: String,
    key_serde: SharedSerde<K>,
    value_serde: SharedSerde<V>,
}

impl<'d, K: DefaultSerde, V: DefaultSerde> TopicEnd<'d, K, V> {
    fn new(driver: &'d TopologyTestDriver, topic: &str) -> Self {
        Self {
            driver,
            topic: topic.to_string(),
            key_serde: K::default_serde(),
            value_serde: V::default_serde(),
        }
    }
}

/// The constructor of a typed end of a driver's topic, and a `Debug` that shows the topic
/// whatever the record types (the serdes and the driver show nothing useful).
macro_rules! topic_end {
    ($end:ident) => {
        impl<K, V> std::fmt::Debug for $end<'_, K, V> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_tuple(stringify!($end))
                    .field(&self.0.topic)
                    .finish()
            }
        }

        impl<'d, K: DefaultSerde, V: DefaultSerde> $end<'d, K, V> {
            pub(super) fn new(driver: &'d TopologyTestDriver, topic: &str) -> Self {
                Self(TopicEnd::new(driver, topic))
            }
        }
    };
}

/// Writes records to an input topic of a [`TopologyTestDriver`]; each is processed at once.
pub struct TestInputTopic<'d, K, V>(TopicEnd<'d, K, V>);

topic_end!(TestInputTopic);

impl<K: DefaultSerde, V: DefaultSerde> TestInputTopic<'_, K, V> {
    /// Pipes a record stamped with the driver's wall-clock time.
    ///
    /// # Panics
    /// When the topology fails on it (as Kafka Streams' driver throws).
    pub fn pipe_input(&self, key: K, value: V) {
        let timestamp = self.0.driver.wall_clock_time();
        self.pipe_record(Record::new(key, value, timestamp));
    }

    /// Pipes a record with the given timestamp (ms since the epoch).
    ///
    /// # Panics
    /// When the topology fails on it.
    pub fn pipe_input_with_timestamp(&self, key: K, value: V, timestamp: i64) {
        self.pipe_record(Record::new(key, value, timestamp));
    }

    /// Pipes a record with its timestamp and headers; its key or value may be null.
    ///
    /// # Panics
    /// When a serde or the topology fails on it.
    pub fn pipe_record(&self, record: Record<K, V>) {
        let (topic, mut headers) = (&self.0.topic, record.headers);
        let key = serialize_part(&self.0.key_serde, topic, record.key.as_ref(), &mut headers);
        let value = serialize_part(
            &self.0.value_serde,
            topic,
            record.value.as_ref(),
            &mut headers,
        );
        self.0
            .driver
            .pipe_raw(&self.0.topic, key, value, record.timestamp, headers);
    }

    /// Pipes raw bytes, e.g. to test how the topology handles a record it cannot read.
    ///
    /// # Panics
    /// When the topology fails on it.
    pub fn pipe_bytes(&self, key: Option<&[u8]>, value: Option<&[u8]>, timestamp: i64) {
        self.0.driver.pipe_raw(
            &self.0.topic,
            key.map(<[u8]>::to_vec),
            value.map(<[u8]>::to_vec),
            timestamp,
            Headers::new(),
        );
    }
}

/// Reads what the topology wrote to an output topic of a [`TopologyTestDriver`].
pub struct TestOutputTopic<'d, K, V>(TopicEnd<'d, K, V>);

topic_end!(TestOutputTopic);

impl<K: DefaultSerde, V: DefaultSerde> TestOutputTopic<'_, K, V> {
    fn decode(&self, raw: CapturedRecord) -> Record<K, V> {
        let at = (&*self.0.topic, &raw.headers);
        let key = deserialize_part(&self.0.key_serde, at, raw.key.as_deref(), "key");
        let value = deserialize_part(&self.0.value_serde, at, raw.value.as_deref(), "value");
        Record::from_parts(key, value, raw.timestamp, raw.headers)
    }

    /// The next record, with its timestamp and headers; `None` when there is none.
    ///
    /// # Panics
    /// When its key or value cannot be read with the topic's serdes.
    pub fn read_record(&self) -> Option<Record<K, V>> {
        self.0
            .driver
            .read_raw(&self.0.topic)
            .map(|raw| self.decode(raw))
    }

    /// The next record's key and value; `None` when there is none.
    ///
    /// # Panics
    /// When the key or value is null (use [`read_record`](Self::read_record)) or unreadable.
    pub fn read_key_value(&self) -> Option<(K, V)> {
        self.read_record().map(|r| match (r.key, r.value) {
            (Some(k), Some(v)) => (k, v),
            _ => panic!(
                "a record of output topic {} has a null key or value; read it with read_record()",
                self.0.topic
            ),
        })
    }

    /// The next record's value; `None` when there is none.
    ///
    /// # Panics
    /// When the value is null (use [`read_record`](Self::read_record)) or unreadable.
    pub fn read_value(&self) -> Option<V> {
        self.read_record().map(|r| match r.value {
            Some(v) => v,
            None => panic!(
                "a record of output topic {} has a null value; read it with read_record()",
                self.0.topic
            ),
        })
    }

    /// Every waiting record's key and value, in order.
    ///
    /// # Panics
    /// As [`read_key_value`](Self::read_key_value).
    pub fn read_key_values_to_list(&self) -> Vec<(K, V)> {
        std::iter::from_fn(|| self.read_key_value()).collect()
    }

    /// Every waiting record, as the latest value of each key (Kafka Streams'
    /// `readKeyValuesToMap`): a later record of a key replaces the value of an earlier one,
    /// and a tombstone removes the key (where Kafka Streams keeps it with a null value).
    ///
    /// ```
    /// use std::collections::HashMap;
    ///
    /// use homa::prelude::*;
    ///
    /// let mut builder = StreamsBuilder::new();
    /// builder
    ///     .stream::<String, i64>("prices")
    ///     .map_values(|cents| cents / 100)
    ///     .to("euros");
    /// let topology = builder.build()?;
    /// let config = StreamsConfig::builder().application_id("prices").build()?;
    /// let driver = TopologyTestDriver::new(&topology, config)?;
    /// let prices = driver.create_input_topic::<String, i64>("prices");
    /// let euros = driver.create_output_topic::<String, i64>("euros");
    /// prices.pipe_input("tea".to_string(), 250);
    /// prices.pipe_input("tea".to_string(), 300);
    /// prices.pipe_input("jam".to_string(), 420);
    /// let latest = euros.read_key_values_to_map();
    /// assert_eq!(latest, HashMap::from([("tea".to_string(), 3), ("jam".to_string(), 4)]));
    /// assert!(euros.is_empty());
    /// # Ok::<(), homa::Error>(())
    /// ```
    ///
    /// # Panics
    /// When a record has a null key, which a map cannot hold (read those with
    /// [`read_records_to_list`](Self::read_records_to_list)), or a key or value cannot be
    /// read.
    pub fn read_key_values_to_map(&self) -> HashMap<K, V>
    where
        K: Eq + Hash,
    {
        let mut latest = HashMap::new();
        while let Some(record) = self.read_record() {
            let Some(key) = record.key else {
                panic!(
                    "a record of output topic {} has a null key, which read_key_values_to_map() \
                     cannot hold; read it with read_record()",
                    self.0.topic
                );
            };
            match record.value {
                Some(value) => latest.insert(key, value),
                None => latest.remove(&key),
            };
        }
        latest
    }

    /// Every waiting record's value, in order.
    ///
    /// # Panics
    /// As [`read_value`](Self::read_value).
    pub fn read_values_to_list(&self) -> Vec<V> {
        std::iter::from_fn(|| self.read_value()).collect()
    }

    /// Every waiting record, in order.
    pub fn read_records_to_list(&self) -> Vec<Record<K, V>> {
        std::iter::from_fn(|| self.read_record()).collect()
    }

    /// Whether no record waits.
    pub fn is_empty(&self) -> bool {
        self.0.driver.queued_output(&self.0.topic) == 0
    }

    /// How many records wait.
    pub fn queue_size(&self) -> usize {
        self.0.driver.queued_output(&self.0.topic)
    }
}

fn serialize_part<T: 'static>(
    serde: &SharedSerde<T>,
    topic: &str,
    value: Option<&T>,
    headers: &mut Headers,
) -> Option<Vec<u8>> {
    value.map(|v| {
        let mut out = Vec::new();
        if let Err(e) = serde.serialize(topic, headers, v, &mut out) {
            panic!("serializing a record for input topic {topic}: {e}");
        }
        out
    })
}

fn deserialize_part<T: 'static>(
    serde: &SharedSerde<T>,
    (topic, headers): (&str, &Headers),
    bytes: Option<&[u8]>,
    part: &str,
) -> Option<T> {
    bytes.map(|b| match serde.deserialize(topic, headers, b) {
        Ok(v) => v,
        Err(e) => panic!("reading the {part} of a record of output topic {topic}: {e}"),
    })
}

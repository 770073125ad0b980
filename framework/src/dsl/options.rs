//! Options of sources, sinks and groupings: `Consumed`, `Produced` and `Grouped`.

use std::fmt;
use std::sync::Arc;

use crate::processor::{Record, StreamPartitioner, TimestampExtractor};
use crate::serde::{DefaultSerde, Serde, SharedSerde};

/// How a stream reads its topics: serdes other than the types' defaults, a node name.
///
/// ```
/// # use homa::dsl::{Consumed, StreamsBuilder};
/// # use homa::serde::RawBytesSerde;
/// let mut builder = StreamsBuilder::new();
/// let raw = builder.stream_with(&["events"], Consumed::<Vec<u8>, Vec<u8>>::as_("events-source")
///     .with_value_serde(RawBytesSerde));
/// # raw.to("copy");
/// ```
pub struct Consumed<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) name: Option<String>,
    pub(crate) timestamp_extractor: Option<TimestampExtractor<K, V>>,
}

/// How a stream writes to a topic: serdes other than the types' defaults, a node name, a
/// partitioner.
///
/// ```
/// # use homa::dsl::{Produced, StreamsBuilder};
/// let mut builder = StreamsBuilder::new();
/// // Orders of a region go to its partition, whatever their key.
/// builder.stream::<String, String>("orders").to_with(
///     "orders-by-region",
///     Produced::default().with_partitioner(|_topic, _key, order: Option<&String>, count| {
///         let region = order?.split(':').next()?;
///         Some(i32::from(region.len() % 2 == 0) % count)
///     }),
/// );
/// ```
pub struct Produced<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) name: Option<String>,
    pub(crate) partitioner: Option<StreamPartitioner<K, V>>,
}

/// How a grouping repartitions, when it must (after a key change): the name of the
/// repartition topic, `<application.id>-<name>-repartition`, and serdes other than the
/// types' defaults to write it with (Kafka Streams' `Grouped`). The serdes are also the
/// aggregation's store's where its `Materialized` sets none: the key serde for every
/// aggregation, the value serde for `reduce`.
///
/// ```
/// # use homa::dsl::{Grouped, StreamsBuilder};
/// # use homa::serde::StringSerde;
/// let mut builder = StreamsBuilder::new();
/// let words = builder
///     .stream::<String, String>("words")
///     .group_by_with(|_k, word| word.clone(), Grouped::as_("by-word").with_key_serde(StringSerde))
///     .count();
/// # words.to_stream().to("counts");
/// ```
pub struct Grouped<K, V> {
    pub(crate) key_serde: Option<SharedSerde<K>>,
    pub(crate) value_serde: Option<SharedSerde<V>>,
    pub(crate) name: Option<String>,
}

macro_rules! options {
    ($options:ident, $what:literal $(, $extra:ident)*) => {
        impl<K, V> Default for $options<K, V> {
            fn default() -> Self {
                Self {
                    key_serde: None,
                    value_serde: None,
                    name: None,
                    $($extra: None,)*
                }
            }
        }

        impl<K, V> fmt::Debug for $options<K, V> {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($options))
                    .field("name", &self.name)
                    .field("key_serde", &self.key_serde.is_some())
                    .field("value_serde", &self.value_serde.is_some())
                    .finish()
            }
        }

        impl<K: 'static, V: 'static> $options<K, V> {
            #[doc = concat!("Options with the ", $what, " named `name`.")]
            pub fn as_(name: &str) -> Self {
                Self::default().with_name(name)
            }

            #[doc = concat!("Options with these serdes for key and value.")]
            pub fn with(key_serde: impl Serde<K>, value_serde: impl Serde<V>) -> Self {
                Self::default()
                    .with_key_serde(key_serde)
                    .with_value_serde(value_serde)
            }

            #[doc = concat!("Names the ", $what, " (default: a generated name).")]
            #[must_use]
            pub fn with_name(mut self, name: &str) -> Self {
                self.name = Some(name.to_string());
                self
            }

            serde_setters!(key_serde, value_serde);
        }

        impl<K: DefaultSerde, V: DefaultSerde> $options<K, V> {
            /// The serdes to use: those set, else the types' defaults.
            pub(crate) fn serdes(&self) -> (SharedSerde<K>, SharedSerde<V>) {
                (
                    self.key_serde.clone().unwrap_or_else(K::default_serde),
                    self.value_serde.clone().unwrap_or_else(V::default_serde),
                )
            }
        }
    };
}

options!(Consumed, "source node", timestamp_extractor);

impl<K, V> Consumed<K, V> {
    /// Sets how each record's timestamp is chosen from its content, given the partition's
    /// largest timestamp so far (default: the timestamp the record has in Kafka). The chosen
    /// timestamp orders records and drives stream time; a negative one drops the record.
    #[must_use]
    pub fn with_timestamp_extractor(
        mut self,
        extractor: impl Fn(&Record<K, V>, i64) -> i64 + Send + Sync + 'static,
    ) -> Self {
        self.timestamp_extractor = Some(Arc::new(extractor));
        self
    }
}
options!(Produced, "sink node", partitioner);

impl<K, V> Produced<K, V> {
    /// Sets how each record's partition is chosen: `partitioner(topic, key, value,
    /// partition count)` gives a partition below the count, or `None` for the default
    /// (murmur2 of the serialized key).
    #[must_use]
    pub fn with_partitioner(
        mut self,
        partitioner: impl Fn(&str, Option<&K>, Option<&V>, i32) -> Option<i32> + Send + Sync + 'static,
    ) -> Self {
        self.partitioner = Some(Arc::new(partitioner));
        self
    }
}
options!(Grouped, "repartition");

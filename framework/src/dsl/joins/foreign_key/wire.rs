//! What a foreign-key join writes to its internal topics and its subscription store, byte
//! for byte as Kafka Streams 4.4 writes them (so that either can read the other's topics):
//!
//! - a **subscription** (`SubscriptionWrapper`, version 1): the version byte (`0x80` set
//!   when the hash is absent), the instruction byte, the 16-byte hash of the row's value
//!   (when present), the primary key's bytes (not length-prefixed) and the partition of the
//!   row's table (4 bytes, big-endian);
//! - a **response** (`SubscriptionResponseWrapper`, version 0): the version byte (`0x80`
//!   when the hash is absent), the hash, and the foreign row's value bytes (none: no row;
//!   a value of no bytes reads back as none, as in Kafka Streams);
//! - a subscription store key (`CombinedKey`): the foreign key's length (4 bytes,
//!   big-endian), its bytes, then the primary key's, so that a scan by the foreign key's
//!   prefix finds every row that refers to it.
//!
//! The hash is Murmur3 x64 128 (seed 104729) of the value as the row's table serializes it
//! for the pseudo-topic `<subscription topic>-vh`, its two halves written big-endian.

use std::io::Cursor;

use crate::header::Headers;
use crate::serde::{DefaultSerde, Serde, SerdeError, SharedSerde};

/// Kafka Streams' seed of the value hash.
const SEED: u32 = 104_729;

/// The hash of a row's value, as a subscription and its response carry it.
pub(crate) type Hash = [u8; 16];

/// Set in the version byte when the hash is absent.
const NO_HASH: u8 = 0x80;

/// The hash of `bytes` (Kafka Streams' `Murmur3.hash128`).
pub(crate) fn hash(bytes: &[u8]) -> Hash {
    // Reading a slice cannot fail.
    let both = murmur3::murmur3_x64_128(&mut Cursor::new(bytes), SEED).unwrap_or_default();
    let mut hash = [0; 16];
    hash[..8].copy_from_slice(&(both as u64).to_be_bytes());
    hash[8..].copy_from_slice(&((both >> 64) as u64).to_be_bytes());
    hash
}

/// What a subscription asks of the foreign table's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Instruction {
    /// Forget the subscription; answer nothing.
    DeleteKeyNoPropagate = 0,
    /// Forget the subscription; answer that there is no row.
    DeleteKeyAndPropagate = 1,
    /// Keep the subscription; answer with the foreign row, or that there is none.
    PropagateNullIfNoFkValAvailable = 2,
    /// Keep the subscription; answer only with a foreign row.
    PropagateOnlyIfFkValAvailable = 3,
}

impl Instruction {
    fn of(byte: u8) -> Option<Self> {
        Some(match byte {
            0 => Self::DeleteKeyNoPropagate,
            1 => Self::DeleteKeyAndPropagate,
            2 => Self::PropagateNullIfNoFkValAvailable,
            3 => Self::PropagateOnlyIfFkValAvailable,
            _ => return None,
        })
    }

    /// Whether the subscription is forgotten.
    pub(crate) fn deletes(self) -> bool {
        matches!(
            self,
            Self::DeleteKeyNoPropagate | Self::DeleteKeyAndPropagate
        )
    }
}

/// A row's subscription to the foreign row its foreign key names.
#[derive(Debug, Clone)]
pub(crate) struct Subscription<K> {
    /// The hash of the row's value (none: the row was deleted).
    pub(crate) hash: Option<Hash>,
    pub(crate) instruction: Instruction,
    pub(crate) primary_key: K,
    /// The partition of the row's table it came from, where the response goes.
    pub(crate) primary_partition: i32,
}

/// Writes and reads subscriptions, the primary key with `keys` (for the pseudo-topic
/// `<topic>-pk`).
pub(crate) struct SubscriptionSerde<K> {
    pub(crate) keys: SharedSerde<K>,
}

fn malformed(what: &str, reason: impl Into<String>) -> SerdeError {
    SerdeError::new(what, reason)
}

impl<K: 'static> Serde<Subscription<K>> for SubscriptionSerde<K> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &Subscription<K>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        out.push(if value.hash.is_some() { 1 } else { 1 | NO_HASH });
        out.push(value.instruction as u8);
        if let Some(hash) = &value.hash {
            out.extend_from_slice(hash);
        }
        let pk_topic = format!("{topic}-pk");
        self.keys
            .serialize(&pk_topic, headers, &value.primary_key, out)?;
        out.extend_from_slice(&value.primary_partition.to_be_bytes());
        Ok(())
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<Subscription<K>, SerdeError> {
        const WHAT: &str = "foreign-key join subscription";
        let (hash, instruction, rest) = read_subscription(bytes)?;
        let (pk, partition) = rest
            .split_last_chunk::<4>()
            .ok_or_else(|| malformed(WHAT, "no partition at its end"))?;
        let pk_topic = format!("{topic}-pk");
        Ok(Subscription {
            hash,
            instruction,
            primary_key: self.keys.deserialize(&pk_topic, headers, pk)?,
            primary_partition: i32::from_be_bytes(*partition),
        })
    }
}

/// The hash, the instruction and what follows (primary key and partition) of subscription
/// bytes.
fn read_subscription(bytes: &[u8]) -> Result<(Option<Hash>, Instruction, &[u8]), SerdeError> {
    const WHAT: &str = "foreign-key join subscription";
    let [first, instruction, rest @ ..] = bytes else {
        return Err(malformed(
            WHAT,
            format!("{} bytes are too few", bytes.len()),
        ));
    };
    let version = first & !NO_HASH;
    if version != 1 {
        return Err(malformed(
            WHAT,
            format!("version {version}: this version of HOMA reads version 1"),
        ));
    }
    let instruction = Instruction::of(*instruction)
        .ok_or_else(|| malformed(WHAT, format!("unknown instruction byte {instruction}")))?;
    if first & NO_HASH != 0 {
        return Ok((None, instruction, rest));
    }
    let (hash, rest) = rest
        .split_first_chunk::<16>()
        .ok_or_else(|| malformed(WHAT, "its hash is cut short"))?;
    Ok((Some(*hash), instruction, rest))
}

/// The hash and the partition of a stored subscription, without reading its primary key.
pub(crate) fn hash_and_partition(bytes: &[u8]) -> Result<(Option<Hash>, i32), SerdeError> {
    let (hash, _, rest) = read_subscription(bytes)?;
    let (_, partition) = rest
        .split_last_chunk::<4>()
        .ok_or_else(|| malformed("foreign-key join subscription", "no partition at its end"))?;
    Ok((hash, i32::from_be_bytes(*partition)))
}

impl<K: DefaultSerde> DefaultSerde for Subscription<K> {
    fn default_serde() -> SharedSerde<Self> {
        std::sync::Arc::new(SubscriptionSerde {
            keys: K::default_serde(),
        })
    }
}

/// The foreign table's answer to a subscription, or to a change of the foreign row.
#[derive(Debug, Clone)]
pub(crate) struct Response<VO> {
    /// The subscription's hash, which the row's side compares with its row's.
    pub(crate) hash: Option<Hash>,
    /// The foreign row's value (none: no row).
    pub(crate) value: Option<VO>,
    /// Where the response goes: the subscription's partition (not written).
    pub(crate) primary_partition: Option<i32>,
}

/// Writes and reads responses, the foreign value with `values`.
pub(crate) struct ResponseSerde<VO> {
    pub(crate) values: SharedSerde<VO>,
}

impl<VO: 'static> Serde<Response<VO>> for ResponseSerde<VO> {
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &Response<VO>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        match &value.hash {
            Some(hash) => {
                out.push(0);
                out.extend_from_slice(hash);
            }
            None => out.push(NO_HASH),
        }
        match &value.value {
            Some(foreign) => self.values.serialize(topic, headers, foreign, out),
            None => Ok(()),
        }
    }

    fn deserialize(
        &self,
        topic: &str,
        headers: &Headers,
        bytes: &[u8],
    ) -> Result<Response<VO>, SerdeError> {
        const WHAT: &str = "foreign-key join response";
        let [first, rest @ ..] = bytes else {
            return Err(malformed(WHAT, "no bytes"));
        };
        let version = first & !NO_HASH;
        if version != 0 {
            return Err(malformed(
                WHAT,
                format!("version {version}: this version of HOMA reads version 0"),
            ));
        }
        let (hash, rest) = if first & NO_HASH != 0 {
            (None, rest)
        } else {
            let (hash, rest) = rest
                .split_first_chunk::<16>()
                .ok_or_else(|| malformed(WHAT, "its hash is cut short"))?;
            (Some(*hash), rest)
        };
        let value = match rest {
            [] => None,
            bytes => Some(self.values.deserialize(topic, headers, bytes)?),
        };
        Ok(Response {
            hash,
            value,
            primary_partition: None,
        })
    }
}

impl<VO: DefaultSerde> DefaultSerde for Response<VO> {
    fn default_serde() -> SharedSerde<Self> {
        std::sync::Arc::new(ResponseSerde {
            values: VO::default_serde(),
        })
    }
}

/// The subscription store's key of a foreign key's and a primary key's bytes.
pub(crate) fn combined_key(foreign: &[u8], primary: &[u8]) -> Vec<u8> {
    let mut key = prefix(foreign);
    key.extend_from_slice(primary);
    key
}

/// The start of the subscription store's keys of a foreign key's bytes.
pub(crate) fn prefix(foreign: &[u8]) -> Vec<u8> {
    let length = u32::try_from(foreign.len()).unwrap_or(u32::MAX);
    let mut key = Vec::with_capacity(4 + foreign.len());
    key.extend_from_slice(&length.to_be_bytes());
    key.extend_from_slice(foreign);
    key
}

/// `bytes` plus one, as a big-endian number (Kafka Streams' `ByteUtils.increment`): the
/// end of a prefix scan. The first byte of a prefix is its length's high byte, never
/// `0xff` for a key of a sane size, so the carry stops there.
pub(crate) fn increment(bytes: &[u8]) -> Vec<u8> {
    let mut next = bytes.to_vec();
    for byte in next.iter_mut().rev() {
        let (sum, carry) = byte.overflowing_add(1);
        *byte = sum;
        if !carry {
            break;
        }
    }
    next
}

#[cfg(test)]
mod tests {
    use super::*;

    fn halves(text: &[u8]) -> (u64, u64) {
        let h = hash(text);
        let (a, b) = h.split_at(8);
        (
            u64::from_be_bytes(a.try_into().unwrap()),
            u64::from_be_bytes(b.try_into().unwrap()),
        )
    }

    #[test]
    fn the_hash_is_kafka_streams_murmur3() {
        // Kafka Streams 4.4's Murmur3.hash128 of these inputs.
        let golden: [(&[u8], u64, u64); 6] = [
            (b"", 0x9d27_64a0_18e3_2942, 0x8c3c_f3b0_3593_8518),
            (b"a", 0x3361_634e_7e0f_5188, 0xe9c7_dda2_4eae_326b),
            (b"c1:burger", 0x4b0a_407a_84ef_d838, 0x0412_b90c_5d53_8137),
            (
                b"0123456789abcdef",
                0x1a6e_941e_c6a7_6967,
                0xd7d8_2808_f505_d6b1,
            ),
            (
                b"0123456789abcdefXYZ",
                0xbb31_fe14_c8ec_1d0e,
                0x325a_a157_c895_f535,
            ),
            (
                &[
                    0xff, 0x80, 0x7f, 0x00, 0x01, 0xfe, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0,
                ],
                0x07d5_843c_0b0f_2b42,
                0xc0a4_6c81_c0a8_f15e,
            ),
        ];
        for (input, h1, h2) in golden {
            assert_eq!(halves(input), (h1, h2), "{input:?}");
        }
    }

    #[test]
    fn a_subscription_is_written_as_kafka_streams_writes_it() {
        let serde = SubscriptionSerde {
            keys: String::default_serde(),
        };
        let subscription = Subscription {
            hash: Some(hash(b"c1:burger")),
            instruction: Instruction::PropagateOnlyIfFkValAvailable,
            primary_key: "o1".to_string(),
            primary_partition: 0,
        };
        let mut bytes = Vec::new();
        serde
            .serialize("t", &mut Headers::new(), &subscription, &mut bytes)
            .unwrap();
        let expected = "01034b0a407a84efd8380412b90c5d5381376f3100000000";
        let shown: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
        assert_eq!(shown, expected);
        let back = serde.deserialize("t", &Headers::new(), &bytes).unwrap();
        assert_eq!(
            (back.hash, back.instruction, back.primary_key.as_str()),
            (subscription.hash, subscription.instruction, "o1")
        );
        // A delete: no hash.
        let deleted = Subscription {
            hash: None,
            instruction: Instruction::DeleteKeyAndPropagate,
            ..subscription
        };
        bytes.clear();
        serde
            .serialize("t", &mut Headers::new(), &deleted, &mut bytes)
            .unwrap();
        assert_eq!(bytes, [0x81, 0x01, b'o', b'1', 0, 0, 0, 0]);
        assert_eq!(hash_and_partition(&bytes).unwrap(), (None, 0));
    }

    #[test]
    fn a_response_of_no_value_bytes_reads_back_as_no_row() {
        let serde = ResponseSerde {
            values: String::default_serde(),
        };
        let mut bytes = Vec::new();
        let response = Response {
            hash: None,
            value: Some(String::new()),
            primary_partition: Some(3),
        };
        serde
            .serialize("t", &mut Headers::new(), &response, &mut bytes)
            .unwrap();
        assert_eq!(bytes, [0x80]);
        let back = serde.deserialize("t", &Headers::new(), &bytes).unwrap();
        assert_eq!(
            (back.hash, back.value, back.primary_partition),
            (None, None, None)
        );
    }

    #[test]
    fn a_prefix_scan_ends_at_the_next_prefix() {
        assert_eq!(combined_key(b"c1", b"o1"), b"\0\0\0\x02c1o1");
        assert_eq!(increment(b"\0\0\0\x02c1"), b"\0\0\0\x02c2");
        assert_eq!(increment(&[0, 0, 2, 0xff]), [0, 0, 3, 0]);
    }
}

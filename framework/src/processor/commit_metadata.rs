//! What a task commits with its input offsets, besides the offsets: each partition's time,
//! and the values its processors keep there (a windowed aggregation emitting on window
//! close keeps the close time of its last emission), so that a task that starts again,
//! in this instance or another, and whatever its state directory holds, goes on from them.
//!
//! The encoding is Kafka Streams' `TopicPartitionMetadata` (the offset commit's metadata
//! string): base64 of a version byte (2), the partition time (8 bytes, big-endian) and the
//! processor values (`ProcessorMetadata`: their count, then each as its name's length,
//! name in UTF-8 and value, big-endian), so either reads the other's commits.

use std::collections::BTreeMap;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

/// The version byte of the encoding.
const VERSION: u8 = 2;

/// Values processors keep across restarts, by name (Kafka Streams' `ProcessorMetadata`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct ProcessorMetadata {
    values: BTreeMap<String, i64>,
    /// Whether a value changed since the last commit: then every input partition commits
    /// them, not only those that moved.
    changed: bool,
}

impl ProcessorMetadata {
    /// The value of `key`, if a processor set one.
    pub(crate) fn get(&self, key: &str) -> Option<i64> {
        self.values.get(key).copied()
    }

    /// Sets `key` to `value`, to commit.
    pub(crate) fn put(&mut self, key: &str, value: i64) {
        self.values.insert(key.to_string(), value);
        self.changed = true;
    }

    /// Whether a value changed since the last commit.
    pub(crate) fn changed(&self) -> bool {
        self.changed
    }

    /// After a commit: the values are committed.
    pub(crate) fn committed(&mut self) {
        self.changed = false;
    }

    /// Takes `other`'s values, each the larger of the two where both have it (each input
    /// partition of a task carries the values as of its last commit).
    pub(crate) fn merge(&mut self, other: &ProcessorMetadata) {
        for (key, &value) in &other.values {
            let entry = self.values.entry(key.clone()).or_insert(value);
            *entry = (*entry).max(value);
        }
    }

    fn write(&self, out: &mut Vec<u8>) {
        if self.values.is_empty() {
            return;
        }
        out.extend_from_slice(&(self.values.len() as i32).to_be_bytes());
        for (key, value) in &self.values {
            out.extend_from_slice(&(key.len() as i32).to_be_bytes());
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(&value.to_be_bytes());
        }
    }

    fn read(mut bytes: &[u8]) -> Option<Self> {
        let mut values = BTreeMap::new();
        if bytes.is_empty() {
            return Some(Self::default());
        }
        let count = take_i32(&mut bytes)?;
        for _ in 0..count {
            let len = usize::try_from(take_i32(&mut bytes)?).ok()?;
            let (key, rest) = bytes.split_at_checked(len)?;
            bytes = rest;
            let key = std::str::from_utf8(key).ok()?.to_string();
            let (value, rest) = bytes.split_first_chunk::<8>()?;
            bytes = rest;
            values.insert(key, i64::from_be_bytes(*value));
        }
        Some(Self {
            values,
            changed: false,
        })
    }
}

fn take_i32(bytes: &mut &[u8]) -> Option<i32> {
    let (value, rest) = bytes.split_first_chunk::<4>()?;
    *bytes = rest;
    Some(i32::from_be_bytes(*value))
}

/// The metadata string of an input partition's offset commit: its `partition_time` (-1:
/// none yet) and the task's processor values.
pub(crate) fn encode(partition_time: i64, processors: &ProcessorMetadata) -> String {
    let mut bytes = vec![VERSION];
    bytes.extend_from_slice(&partition_time.to_be_bytes());
    processors.write(&mut bytes);
    STANDARD.encode(bytes)
}

/// Reads a commit's metadata string: the partition time (-1 when it has none) and the
/// processor values. An empty string (a commit made without metadata) has neither; a
/// string that is not this encoding is an error naming what is wrong with it.
pub(crate) fn decode(metadata: &str) -> Result<(i64, ProcessorMetadata), String> {
    if metadata.is_empty() {
        return Ok((-1, ProcessorMetadata::default()));
    }
    let bytes = STANDARD
        .decode(metadata)
        .map_err(|e| format!("not base64 ({e})"))?;
    let unreadable = || format!("not a partition time and processor values ({metadata:?})");
    let (&version, rest) = bytes.split_first().ok_or_else(unreadable)?;
    let (time, rest) = rest.split_first_chunk::<8>().ok_or_else(unreadable)?;
    let time = i64::from_be_bytes(*time);
    match version {
        1 => Ok((time, ProcessorMetadata::default())),
        VERSION => Ok((time, ProcessorMetadata::read(rest).ok_or_else(unreadable)?)),
        other => Err(format!(
            "version {other}, newer than this reads ({VERSION})"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_reads_kafka_streams_strings() {
        let mut values = ProcessorMetadata::default();
        assert_eq!(encode(5, &values), "AgAAAAAAAAAF");
        values.put("counts", 1000);
        let encoded = encode(1234, &values);
        let (time, read) = decode(&encoded).unwrap();
        assert_eq!((time, read.get("counts")), (1234, Some(1000)));
        // Kafka Streams' TopicPartitionMetadata(1234, {"counts": 1000}).encode().
        assert_eq!(encoded, "AgAAAAAAAATSAAAAAQAAAAZjb3VudHMAAAAAAAAD6A==");
        assert_eq!(decode("").unwrap().0, -1);
        // Version 1: the partition time alone.
        assert_eq!(decode("AQAAAAAAAAAH").unwrap().0, 7);
        assert!(decode("not metadata").is_err());
        assert!(decode("Aw==").is_err());
    }

    #[test]
    fn merging_keeps_the_larger_value() {
        let (mut a, mut b) = (ProcessorMetadata::default(), ProcessorMetadata::default());
        a.put("x", 5);
        b.put("x", 9);
        b.put("y", 1);
        a.merge(&b);
        assert_eq!((a.get("x"), a.get("y")), (Some(9), Some(1)));
    }
}

//! Serdes: how keys and values become bytes on a topic and back.
//!
//! A [`Serde<T>`] turns a `T` into bytes and back, with the topic and the record's headers in
//! reach (a serde may read or write headers, as Kafka's serializers may). Null is not a
//! serde's business: a record's key and value are `Option`s, and `None` is Kafka's null
//! (a tombstone, for a value) whatever the serde.
//!
//! Every type HOMA reads or writes names its default serde through [`DefaultSerde`], so a
//! topology says `builder.stream::<String, Json<Order>>("orders")` and never a config string.
//! The defaults use Kafka's own encodings, so HOMA reads what Java clients write:
//!
//! | Rust type | encoding | Kafka's serde |
//! |-----------|----------|---------------|
//! | `String` | UTF-8 | `Serdes.String()` |
//! | `Vec<u8>`, [`bytes::Bytes`] | the bytes as they are | `Serdes.ByteArray()`, `Serdes.Bytes()` |
//! | `i16`, `i32`, `i64` | big-endian two's complement | `Serdes.Short()`, `Integer()`, `Long()` |
//! | `i8`, `u8`, `u16`, `u32`, `u64` | big-endian, their own width | (none) |
//! | `f32`, `f64` | big-endian IEEE 754 | `Serdes.Float()`, `Serdes.Double()` |
//! | `bool` | one byte, 1 or 0 | `Serdes.Boolean()` |
//! | `()` | no bytes | (`Serdes.Void()` writes null: use `None`) |
//! | [`Json<T>`] | JSON through serde_json | a JSON serde |
//!
//! ```
//! use homa::header::Headers;
//! use homa::serde::{DefaultSerde, Json};
//!
//! #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
//! struct Order { id: u32, total: f64 }
//!
//! let serde = <Json<Order>>::default_serde();
//! let mut headers = Headers::new();
//! let mut bytes = Vec::new();
//! serde.serialize("orders", &mut headers, &Json(Order { id: 7, total: 12.5 }), &mut bytes)?;
//! assert_eq!(bytes, br#"{"id":7,"total":12.5}"#);
//! let back = serde.deserialize("orders", &headers, &bytes)?;
//! assert_eq!(back.0.total, 12.5);
//! # Ok::<(), homa::serde::SerdeError>(())
//! ```

mod json;
mod primitives;

use std::sync::Arc;

pub use json::{Json, JsonSerde};
pub use primitives::{
    BigEndianSerde, BoolSerde, BytesSerde, RawBytesSerde, StringSerde, UnitSerde,
};

use crate::header::Headers;

/// Turns a `T` into bytes for a topic and back.
///
/// Implementations are shared by every task of an instance, hence `Send + Sync`.
pub trait Serde<T>: Send + Sync + 'static {
    /// Appends the bytes of `value` to `out`. `headers` are the outgoing record's, which the
    /// serde may change.
    ///
    /// # Errors
    /// When `value` cannot be encoded.
    fn serialize(
        &self,
        topic: &str,
        headers: &mut Headers,
        value: &T,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError>;

    /// Reads a `T` from `bytes` of a record of `topic` carrying `headers`.
    ///
    /// # Errors
    /// When `bytes` are not a valid encoding of a `T`.
    fn deserialize(&self, topic: &str, headers: &Headers, bytes: &[u8]) -> Result<T, SerdeError>;
}

/// A serde shared by the operators that use it.
pub type SharedSerde<T> = Arc<dyn Serde<T>>;

/// The serde HOMA uses for a type unless an operator is given another.
pub trait DefaultSerde: Sized + 'static {
    /// The default serde of `Self`.
    fn default_serde() -> SharedSerde<Self>;
}

/// Why a serde failed. The caller adds where (topic, partition, offset, operator).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{serde}: {reason}")]
pub struct SerdeError {
    /// The serde that failed, e.g. `i32 (big-endian)` or `Json<my::Order>`.
    pub serde: String,
    /// What was wrong with the value or the bytes.
    pub reason: String,
}

impl SerdeError {
    /// An error of the serde named `serde`.
    pub fn new(serde: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            serde: serde.into(),
            reason: reason.into(),
        }
    }
}

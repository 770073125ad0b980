//! The serdes of Rust's primitive types, in the encodings of Kafka's own serdes.

use std::marker::PhantomData;
use std::sync::Arc;

use super::{DefaultSerde, Serde, SerdeError, SharedSerde};
use crate::header::Headers;

/// `Serde` impls of encodings that need neither the topic nor the headers: each names its
/// serde and type, how a value is written to `out`, and how one is read from `bytes`.
macro_rules! plain_serdes {
    ($($serde:ty: $ty:ty {
        serialize($value:pat, $out:pat) $serialize:block
        deserialize($bytes:ident) $deserialize:block
    })*) => {$(
        impl Serde<$ty> for $serde {
            fn serialize(&self, _: &str, _: &mut Headers, $value: &$ty, $out: &mut Vec<u8>) -> Result<(), SerdeError> $serialize

            fn deserialize(&self, _: &str, _: &Headers, $bytes: &[u8]) -> Result<$ty, SerdeError> $deserialize
        }
    )*};
}

/// UTF-8 text, as Kafka's `StringSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct StringSerde;

/// The bytes as they are, as Kafka's `ByteArraySerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct RawBytesSerde;

/// The bytes as they are, as [`bytes::Bytes`] (Kafka's `BytesSerializer`).
#[derive(Debug, Clone, Copy, Default)]
pub struct BytesSerde;

/// `true` as the byte 1 and `false` as 0, as Kafka's `BooleanSerializer`.
#[derive(Debug, Clone, Copy, Default)]
pub struct BoolSerde;

/// `()` as no bytes at all; any other bytes are an error.
#[derive(Debug, Clone, Copy, Default)]
pub struct UnitSerde;

plain_serdes! {
    StringSerde: String {
        serialize(value, out) { out.extend_from_slice(value.as_bytes()); Ok(()) }
        deserialize(bytes) {
            String::from_utf8(bytes.to_vec()).map_err(|e| {
                let at = e.utf8_error().valid_up_to();
                SerdeError::new("String (UTF-8)", format!("invalid UTF-8 at byte {at}"))
            })
        }
    }
    RawBytesSerde: Vec<u8> {
        serialize(value, out) { out.extend_from_slice(value); Ok(()) }
        deserialize(bytes) { Ok(bytes.to_vec()) }
    }
    BytesSerde: bytes::Bytes {
        serialize(value, out) { out.extend_from_slice(value); Ok(()) }
        deserialize(bytes) { Ok(bytes::Bytes::copy_from_slice(bytes)) }
    }
    BoolSerde: bool {
        serialize(value, out) { out.push(u8::from(*value)); Ok(()) }
        deserialize(bytes) {
            match bytes {
                [1] => Ok(true),
                [0] => Ok(false),
                _ => Err(SerdeError::new("bool", format!("expected one byte 0 or 1, got {bytes:?}"))),
            }
        }
    }
    UnitSerde: () {
        serialize((), _) { Ok(()) }
        deserialize(bytes) {
            if bytes.is_empty() {
                Ok(())
            } else {
                Err(SerdeError::new("()", format!("expected no bytes, got {}", bytes.len())))
            }
        }
    }
}

/// A number as big-endian bytes of its own width, as Kafka's `IntegerSerializer`,
/// `LongSerializer`, `DoubleSerializer` and their kin.
#[derive(Debug)]
pub struct BigEndianSerde<T>(PhantomData<fn() -> T>);

impl<T> Default for BigEndianSerde<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T> Clone for BigEndianSerde<T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for BigEndianSerde<T> {}

macro_rules! big_endian {
    ($($ty:ty),*) => {$(
        plain_serdes! {
            BigEndianSerde<$ty>: $ty {
                serialize(value, out) { out.extend_from_slice(&value.to_be_bytes()); Ok(()) }
                deserialize(bytes) {
                    let array = bytes.try_into().map_err(|_| {
                        SerdeError::new(
                            concat!(stringify!($ty), " (big-endian)"),
                            format!("{} bytes, expected {}", bytes.len(), size_of::<$ty>()),
                        )
                    })?;
                    Ok(<$ty>::from_be_bytes(array))
                }
            }
        }

        impl DefaultSerde for $ty {
            fn default_serde() -> SharedSerde<Self> {
                Arc::new(BigEndianSerde::<$ty>::default())
            }
        }
    )*};
}

big_endian!(i8, i16, i32, i64, u8, u16, u32, u64, f32, f64);

macro_rules! default_serde {
    ($($ty:ty => $serde:expr),*) => {$(
        impl DefaultSerde for $ty {
            fn default_serde() -> SharedSerde<Self> {
                Arc::new($serde)
            }
        }
    )*};
}

default_serde!(
    String => StringSerde,
    Vec<u8> => RawBytesSerde,
    bytes::Bytes => BytesSerde,
    bool => BoolSerde,
    () => UnitSerde
);

#[cfg(test)]
mod tests {
    use super::*;

    fn bytes_of<T: DefaultSerde>(value: &T) -> Vec<u8> {
        let mut out = Vec::new();
        T::default_serde()
            .serialize("t", &mut Headers::new(), value, &mut out)
            .unwrap();
        out
    }

    fn read<T: DefaultSerde>(bytes: &[u8]) -> Result<T, SerdeError> {
        T::default_serde().deserialize("t", &Headers::new(), bytes)
    }

    #[test]
    fn numbers_use_kafkas_big_endian_encodings() {
        // The bytes Kafka's IntegerSerializer, LongSerializer, ShortSerializer,
        // FloatSerializer and DoubleSerializer write for the same values.
        assert_eq!(bytes_of(&1_i32), [0, 0, 0, 1]);
        assert_eq!(bytes_of(&-1_i64), [0xff; 8]);
        assert_eq!(bytes_of(&258_i16), [1, 2]);
        assert_eq!(bytes_of(&1.5_f64), [0x3f, 0xf8, 0, 0, 0, 0, 0, 0]);
        assert_eq!(bytes_of(&-2.0_f32), [0xc0, 0, 0, 0]);
        assert_eq!(read::<i64>(&[0, 0, 0, 0, 0, 0, 1, 0]), Ok(256));
        assert_eq!(read::<f64>(&bytes_of(&f64::MAX)), Ok(f64::MAX));
        assert_eq!(read::<u64>(&bytes_of(&u64::MAX)), Ok(u64::MAX));
    }

    #[test]
    fn a_number_of_the_wrong_width_names_the_type_and_sizes() {
        let err = read::<i32>(&[1, 2, 3]).unwrap_err();
        assert_eq!(err.to_string(), "i32 (big-endian): 3 bytes, expected 4");
    }

    #[test]
    fn strings_are_utf8_and_bad_utf8_says_where() {
        assert_eq!(bytes_of(&"héllo".to_string()), "héllo".as_bytes());
        let err = read::<String>(&[b'o', b'k', 0xff]).unwrap_err();
        assert!(err.to_string().contains("invalid UTF-8 at byte 2"), "{err}");
    }

    #[test]
    fn bytes_bools_and_unit_round_trip() {
        assert_eq!(
            read::<Vec<u8>>(&bytes_of(&vec![0_u8, 255])),
            Ok(vec![0, 255])
        );
        let b = bytes::Bytes::from_static(b"abc");
        assert_eq!(read::<bytes::Bytes>(&bytes_of(&b)), Ok(b));
        assert_eq!(bytes_of(&true), [1]);
        assert_eq!(read::<bool>(&[0]), Ok(false));
        assert!(read::<bool>(&[2]).is_err());
        assert!(bytes_of(&()).is_empty());
        assert_eq!(read::<()>(&[]), Ok(()));
        assert!(read::<()>(&[0]).is_err());
    }
}

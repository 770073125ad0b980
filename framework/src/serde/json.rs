//! JSON values through serde_json.

use std::any::type_name;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{DefaultSerde, Serde, SerdeError, SharedSerde};
use crate::header::Headers;

/// A value written to and read from a topic as JSON: `KStream<String, Json<Order>>`.
///
/// Derefs to the inner value, so `order.total` reads through the wrapper.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Json<T>(pub T);

impl<T> Json<T> {
    /// The wrapped value.
    pub fn into_inner(self) -> T {
        self.0
    }
}

impl<T> std::ops::Deref for Json<T> {
    type Target = T;

    fn deref(&self) -> &T {
        &self.0
    }
}

impl<T> std::ops::DerefMut for Json<T> {
    fn deref_mut(&mut self) -> &mut T {
        &mut self.0
    }
}

impl<T> From<T> for Json<T> {
    fn from(value: T) -> Self {
        Self(value)
    }
}

/// The serde of [`Json<T>`], through serde_json.
pub struct JsonSerde<T>(PhantomData<fn() -> T>);

impl<T> Default for JsonSerde<T> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<T> fmt::Debug for JsonSerde<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "JsonSerde<{}>", type_name::<T>())
    }
}

fn json_error<T>(e: &serde_json::Error) -> SerdeError {
    SerdeError::new(format!("Json<{}>", type_name::<T>()), e.to_string())
}

impl<T> Serde<Json<T>> for JsonSerde<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn serialize(
        &self,
        _: &str,
        _: &mut Headers,
        value: &Json<T>,
        out: &mut Vec<u8>,
    ) -> Result<(), SerdeError> {
        serde_json::to_writer(out, &value.0).map_err(|e| json_error::<T>(&e))
    }

    fn deserialize(&self, _: &str, _: &Headers, bytes: &[u8]) -> Result<Json<T>, SerdeError> {
        serde_json::from_slice(bytes)
            .map(Json)
            .map_err(|e| json_error::<T>(&e))
    }
}

impl<T> DefaultSerde for Json<T>
where
    T: Serialize + DeserializeOwned + 'static,
{
    fn default_serde() -> SharedSerde<Self> {
        Arc::new(JsonSerde::<T>::default())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
    struct Order {
        id: String,
        total: f64,
    }

    #[test]
    fn round_trips_and_reads_what_others_wrote() {
        let serde = <Json<Order>>::default_serde();
        let mut out = Vec::new();
        let order = Json(Order {
            id: "o1".into(),
            total: 120.0,
        });
        serde
            .serialize("orders", &mut Headers::new(), &order, &mut out)
            .unwrap();
        assert_eq!(
            serde.deserialize("orders", &Headers::new(), &out).unwrap(),
            order
        );
        let theirs = br#" { "total": 3.5, "id": "o2", "extra": true } "#;
        let read = serde
            .deserialize("orders", &Headers::new(), theirs)
            .unwrap();
        assert_eq!(read.total, 3.5);
    }

    #[test]
    fn bad_json_names_the_type_and_the_position() {
        let serde = <Json<Order>>::default_serde();
        let err = serde
            .deserialize("orders", &Headers::new(), br#"{"id": 1}"#)
            .unwrap_err();
        assert!(err.serde.ends_with("Order>"), "{err}");
        assert!(err.reason.contains("line 1 column"), "{err}");
    }
}

//! Record headers: an ordered list of (key, value) pairs where keys may repeat, as in Kafka.

/// One header of a record. A header's value may be null, as in Kafka.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Header {
    /// The header's key.
    pub key: String,
    /// The header's value; `None` is Kafka's null.
    pub value: Option<Vec<u8>>,
}

/// The headers of a record, in the order they were added. Keys may repeat.
///
/// ```
/// use homa::header::Headers;
///
/// let mut headers = Headers::new();
/// headers.add("trace", b"a".to_vec()).add("trace", b"b".to_vec());
/// assert_eq!(headers.last_value("trace"), Some(&b"b"[..]));
/// assert_eq!(headers.len(), 2);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct Headers {
    entries: Vec<Header>,
}

impl Headers {
    /// No headers.
    pub const fn new() -> Self {
        Self {
            entries: Vec::new(),
        }
    }

    /// Appends a header with a value.
    pub fn add(&mut self, key: impl Into<String>, value: impl Into<Vec<u8>>) -> &mut Self {
        self.entries.push(Header {
            key: key.into(),
            value: Some(value.into()),
        });
        self
    }

    /// Appends a header whose value is null.
    pub fn add_null(&mut self, key: impl Into<String>) -> &mut Self {
        self.entries.push(Header {
            key: key.into(),
            value: None,
        });
        self
    }

    /// Removes every header with `key`.
    pub fn remove(&mut self, key: &str) -> &mut Self {
        self.entries.retain(|h| h.key != key);
        self
    }

    /// The value of the last header with `key`, as Kafka's `Headers.lastHeader`; `None` when
    /// there is no such header or its value is null.
    pub fn last_value(&self, key: &str) -> Option<&[u8]> {
        self.entries
            .iter()
            .rev()
            .find(|h| h.key == key)
            .and_then(|h| h.value.as_deref())
    }

    /// Every header with `key`, in order.
    pub fn headers<'a>(&'a self, key: &'a str) -> impl Iterator<Item = &'a Header> + 'a {
        self.entries.iter().filter(move |h| h.key == key)
    }

    /// All headers, in order.
    pub fn iter(&self) -> std::slice::Iter<'_, Header> {
        self.entries.iter()
    }

    /// How many headers there are.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether there are no headers.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

impl<'a> IntoIterator for &'a Headers {
    type Item = &'a Header;
    type IntoIter = std::slice::Iter<'a, Header>;

    fn into_iter(self) -> Self::IntoIter {
        self.entries.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_keys_keep_their_order_and_null_values() {
        let mut headers = Headers::new();
        headers.add("a", *b"1").add_null("a").add("b", *b"2");
        assert_eq!(headers.last_value("a"), None, "the last `a` is null");
        assert_eq!(headers.headers("a").count(), 2);
        assert_eq!(headers.last_value("b"), Some(&b"2"[..]));
        headers.remove("a");
        let keys: Vec<_> = headers.iter().map(|h| h.key.as_str()).collect();
        assert_eq!(keys, ["b"]);
    }
}

//! `split`: route each record to the first named branch whose predicate accepts it.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::KStream;
use crate::dsl::per_record::each;

type Predicate<K, V> = Arc<dyn Fn(Option<&K>, &V) -> bool + Send + Sync>;

/// A stream being split into named branches: add them with [`branch`](Self::branch), then
/// end with [`default_branch`](Self::default_branch) or
/// [`no_default_branch`](Self::no_default_branch).
pub struct BranchedKStream<K, V> {
    stream: KStream<K, V>,
    prefix: String,
    branches: Vec<(String, Predicate<K, V>)>,
}

impl<K, V> std::fmt::Debug for BranchedKStream<K, V> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<_> = self.branches.iter().map(|(n, _)| n).collect();
        f.debug_struct("BranchedKStream")
            .field("prefix", &self.prefix)
            .field("branches", &names)
            .finish_non_exhaustive()
    }
}

impl<K: Clone + 'static, V: Clone + 'static> KStream<K, V> {
    /// Starts splitting this stream into named branches; the streams come back in a map keyed
    /// by `prefix` + branch name, sorted, so that a loop over it adds nodes in a stable order.
    ///
    /// ```
    /// # use homa::dsl::StreamsBuilder;
    /// let mut builder = StreamsBuilder::new();
    /// let branches = builder
    ///     .stream::<String, i64>("amounts")
    ///     .split("amount-")
    ///     .branch("small", |_k, v| *v < 10)
    ///     .branch("medium", |_k, v| *v < 1_000)
    ///     .default_branch("large");
    /// branches["amount-large"].to("large-amounts");
    /// ```
    pub fn split(&self, prefix: &str) -> BranchedKStream<K, V> {
        BranchedKStream {
            stream: self.clone(),
            prefix: prefix.to_string(),
            branches: Vec::new(),
        }
    }
}

impl<K: Clone + 'static, V: Clone + 'static> BranchedKStream<K, V> {
    /// Adds the branch `name` for the records `predicate(key, value)` accepts and no earlier
    /// branch took.
    #[must_use]
    pub fn branch(
        mut self,
        name: &str,
        predicate: impl Fn(Option<&K>, &V) -> bool + Send + Sync + 'static,
    ) -> Self {
        self.branches.push((name.to_string(), Arc::new(predicate)));
        self
    }

    /// Ends the split with a branch `name` for the records no branch took (and tombstones).
    pub fn default_branch(self, name: &str) -> BTreeMap<String, KStream<K, V>> {
        self.finish(Some(name))
    }

    /// Ends the split; records no branch takes are not passed on.
    pub fn no_default_branch(self) -> BTreeMap<String, KStream<K, V>> {
        self.finish(None)
    }

    fn finish(self, default: Option<&str>) -> BTreeMap<String, KStream<K, V>> {
        let full = |name: &str| format!("{}{name}", self.prefix);
        let branches: Vec<_> = self
            .branches
            .iter()
            .map(|(n, p)| (full(n), p.clone()))
            .collect();
        let default_name = default.map(full);
        let (tests, default) = (branches.clone(), default_name.clone());
        let split = each(move |record, ctx| {
            let chosen = match &record.value {
                Some(value) => tests
                    .iter()
                    .find(|(_, accepts)| accepts(record.key.as_ref(), value))
                    .map(|(child, _)| child.as_str()),
                // A tombstone cannot be tested; it goes to the default branch, if any.
                None => None,
            };
            match chosen.or(default.as_deref()) {
                Some(child) => ctx.forward_to(child, record),
                None if record.value.is_none() => {
                    ctx.drop_record("a tombstone reached a split without a default branch");
                    Ok(())
                }
                None => Ok(()),
            }
        });
        let splitter = self.stream.then("KSTREAM-BRANCH", split);
        let mut streams = BTreeMap::new();
        for name in branches.into_iter().map(|(n, _)| n).chain(default_name) {
            let branch = splitter.pass_through(&name, &[splitter.node]);
            streams.insert(name, branch);
        }
        streams
    }
}

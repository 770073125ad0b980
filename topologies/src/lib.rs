//! The HOMA pipelines, each a pure function that adds its operators to a `StreamsBuilder`:
//! burger orders enriched with the menu and their revenue per store and minute (`orders`),
//! over the records of `model`; `generate` makes a synthetic workload of them, the same for
//! the same seed, which the apps ingest and the tests check the pipelines against.

pub mod generate;
pub mod model;
pub mod orders;

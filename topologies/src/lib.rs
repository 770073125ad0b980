//! The HOMA pipelines, each a pure function that adds its operators to a `StreamsBuilder`:
//! burger orders enriched with the menu, their revenue per store and minute and per
//! channel and hour, and the items sold per hour (`orders`); Excel sessions per user and
//! each department's use per day (`excel`); all over the records of `model`. `generate`
//! makes a synthetic workload of them, the same for the same seed, which the apps ingest
//! and the tests check the pipelines against. [`build`] adds them all.

pub mod excel;
pub mod generate;
pub mod model;
pub mod orders;

/// Every pipeline on `builder`: the analysis `homa analyze` runs.
pub fn build(builder: &mut homa::dsl::StreamsBuilder) {
    orders::build(builder);
    excel::build(builder);
}

//! The HOMA pipelines, each a pure function that adds its operators to a `StreamsBuilder`:
//! windowed revenue and top items of burger orders, enrichment joins, Excel-usage sessions.
//!
//! The pipelines arrive with the DSL they are written in; this crate holds their place in
//! the workspace so that the apps and benchmarks depend on it from the start.

//! The benchmark harness: HOMA against Kafka Streams (Java) and a raw rdkafka passthrough,
//! measured as ratios within one run on one broker.
//!
//! `homa-bench run` loads a data set into an input topic once, then runs each system on each
//! workload in turn, round after round (A B A B), each run as its own process with a fresh
//! application id and output topic: it times the run from the first output record to the
//! last (by the output's end offsets), takes the process's CPU time in that window and its
//! peak RSS from `/proc`, and checks every output record against what the workload must
//! write. A latency mode drives a fixed input rate and reports produce-to-append latency.
//! See `BENCHMARKS.md` at the root of the repository.

pub mod data;
pub mod launch;
pub mod measure;
pub mod proc;
pub mod report;
pub mod worker;
pub mod workload;

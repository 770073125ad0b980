//! The benchmark harness: HOMA against Kafka Streams (Java) and a raw rdkafka passthrough,
//! measured as ratios within one run on one broker. The harness and its workloads arrive
//! with the engine they measure.

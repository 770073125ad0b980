//! `scripts/kafka restart`, which the exactly-once tests bounce the broker with: on a
//! broker of this test's own, records and committed offsets survive a restart after
//! SIGTERM and one after SIGKILL, on the same address.

use homa_integration_tests::{Kafka, restart_broker, start_broker, unique_name};

#[test]
fn a_restarted_broker_keeps_its_topics_records_and_offsets() -> anyhow::Result<()> {
    let bootstrap = start_broker()?;
    let kafka = Kafka::at(&bootstrap);
    let topic = kafka.create_topic("bounce", 2)?;
    let records = |from: usize| (from..from + 100).map(|i| (format!("k{i}"), format!("v{i}")));
    kafka.produce(&topic, records(0))?;
    let group = unique_name("bounce-group");
    let keys = |range: std::ops::Range<usize>| -> std::collections::BTreeSet<String> {
        range.map(|i| format!("k{i}")).collect()
    };
    let read = kafka.consume_committing(&topic, &group, 100)?;
    assert_eq!(
        read.into_iter().collect::<std::collections::BTreeSet<_>>(),
        keys(0..100)
    );

    restart_broker(&bootstrap, false)?;
    kafka.produce(&topic, records(100))?;
    restart_broker(&bootstrap, true)?;
    assert_eq!(kafka.end_offsets(&topic, 2)?.iter().sum::<i64>(), 200);
    // The group goes on from where it committed: only the records after the first 100.
    let read = kafka.consume_committing(&topic, &group, 100)?;
    assert_eq!(
        read.into_iter().collect::<std::collections::BTreeSet<_>>(),
        keys(100..200)
    );
    Ok(())
}

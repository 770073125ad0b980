//! The path every HOMA test builds on, end to end against the real broker: records produced
//! with rdkafka reach a consumer group of two members, each record exactly once, and both
//! members get partitions from the range assignor.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use homa_integration_tests::{TIMEOUT, kafka, unique_name};
use rdkafka::Message;
use rdkafka::consumer::{BaseConsumer, Consumer};

const RECORDS: usize = 10_000;
const PARTITIONS: i32 = 3;
const MEMBERS: usize = 2;

/// The partitions a member holds right now, as it last saw them.
type Assignment = Arc<Mutex<BTreeSet<i32>>>;

/// A record as one member read it.
struct Received {
    member: usize,
    partition: i32,
    key: String,
    value: String,
}

fn run_member(
    member: usize,
    topic: String,
    group: String,
    view: Assignment,
    records: mpsc::Sender<Received>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<()> {
    let consumer: BaseConsumer = kafka()
        .consumer_config(&group)
        .set("client.id", format!("member-{member}"))
        .create()
        .context("creating a group member")?;
    consumer.subscribe(&[&topic])?;
    while !stop.load(Ordering::Relaxed) {
        if let Some(message) = consumer.poll(Duration::from_millis(50)) {
            let message = message.with_context(|| format!("member {member} polling {topic}"))?;
            let text = |bytes: Option<&[u8]>| {
                String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned()
            };
            records.send(Received {
                member,
                partition: message.partition(),
                key: text(message.key()),
                value: text(message.payload()),
            })?;
        }
        let assignment = consumer.assignment()?;
        *view
            .lock()
            .expect("a member thread never panics holding the lock") = assignment
            .elements()
            .iter()
            .map(|e| e.partition())
            .collect();
    }
    consumer.unsubscribe();
    Ok(())
}

#[test]
fn two_members_of_a_group_share_partitions_and_read_every_record_once() -> anyhow::Result<()> {
    let kafka = kafka();
    let topic = kafka.create_topic("group-test", PARTITIONS)?;
    let group = unique_name("group-test");

    let stop = Arc::new(AtomicBool::new(false));
    let (sender, receiver) = mpsc::channel();
    let views: Vec<_> = (0..MEMBERS).map(|_| Assignment::default()).collect();
    let members: Vec<_> = views
        .iter()
        .enumerate()
        .map(|(member, view)| {
            let (topic, group, view, sender, stop) = (
                topic.clone(),
                group.clone(),
                view.clone(),
                sender.clone(),
                stop.clone(),
            );
            thread::spawn(move || run_member(member, topic, group, view, sender, stop))
        })
        .collect();
    drop(sender);

    // Records are produced only once the group has settled with both members, so that no
    // rebalance happens while they are read and "exactly once" is a fair demand.
    let deadline = Instant::now() + TIMEOUT;
    let assignments = loop {
        let assignments: Vec<BTreeSet<i32>> = views
            .iter()
            .map(|v| v.lock().expect("not poisoned").clone())
            .collect();
        let covered: BTreeSet<i32> = assignments.iter().flatten().copied().collect();
        let total: usize = assignments.iter().map(BTreeSet::len).sum();
        if assignments.iter().all(|a| !a.is_empty())
            && covered.len() == PARTITIONS as usize
            && total == covered.len()
        {
            break assignments;
        }
        ensure!(
            Instant::now() < deadline,
            "the group did not settle on both members within {TIMEOUT:?}: {assignments:?}"
        );
        thread::sleep(Duration::from_millis(50));
    };

    let produced = kafka.produce(
        &topic,
        (0..RECORDS).map(|i| (format!("key-{i}"), format!("value-{i}"))),
    )?;
    assert_eq!(produced, RECORDS as u64);

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    let mut per_member = [0_usize; MEMBERS];
    let mut received = 0;
    let deadline = Instant::now() + TIMEOUT;
    // Reads until every record is in, then a little longer so that duplicates would show.
    let mut settle_until = None;
    loop {
        let now = Instant::now();
        if settle_until.is_some_and(|until| now >= until) {
            break;
        }
        ensure!(
            now < deadline,
            "received {received} of {RECORDS} records within {TIMEOUT:?}"
        );
        let Ok(record) = receiver.recv_timeout(Duration::from_millis(100)) else {
            continue;
        };
        received += 1;
        assert!(
            assignments[record.member].contains(&record.partition),
            "member {} read partition {} outside its assignment {:?}",
            record.member,
            record.partition,
            assignments[record.member]
        );
        assert_eq!(
            record.value,
            record.key.replace("key-", "value-"),
            "value of {}",
            record.key
        );
        per_member[record.member] += 1;
        *seen.entry(record.key).or_default() += 1;
        if received == RECORDS {
            settle_until = Some(Instant::now() + Duration::from_secs(2));
        }
    }
    stop.store(true, Ordering::Relaxed);
    for member in members {
        member.join().expect("member thread panicked")?;
    }

    let duplicates: Vec<_> = seen.iter().filter(|(_, n)| **n > 1).take(5).collect();
    assert!(
        duplicates.is_empty(),
        "records read more than once: {duplicates:?}"
    );
    assert_eq!(seen.len(), RECORDS, "distinct records received");
    assert_eq!(received, RECORDS);
    assert!(
        per_member.iter().all(|n| *n > 0),
        "records per member: {per_member:?}"
    );
    println!("assignments {assignments:?}, records per member {per_member:?}");
    Ok(())
}

//! How a running instance meets errors, against the real broker: the processing and
//! production handlers, the dead-letter topic, a replaced stream thread, the errors of
//! `start()` and `close()`, and the states an instance goes through.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, ensure};
use homa::prelude::*;
use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
use homa::runtime::{CloseError, KafkaStreams, StartError, State, StreamThreadResponse};
use homa_integration_tests::{TIMEOUT, kafka, unique_name, wait_for_state};
use rdkafka::Message;
use rdkafka::message::Headers as _;

/// Upper-cases values; fails on `boom`, and on `boom-once` the first time it sees one.
struct Shout(Arc<AtomicBool>);

impl Processor<String, String> for Shout {
    fn process(
        &mut self,
        record: Record<String, String>,
        ctx: &mut ProcessorContext<String, String>,
    ) -> Result<(), ProcessError> {
        match record.value.as_deref() {
            Some("boom") => Err("cannot shout boom".into()),
            Some("boom-once") if !self.0.swap(true, Ordering::SeqCst) => Err("boom, once".into()),
            _ => ctx.forward(record.map_value(|v| v.to_uppercase())),
        }
    }
}

/// `input` through [`Shout`] to `output`.
fn shout(input: &str, output: &str, failed_once: Arc<AtomicBool>) -> anyhow::Result<Topology> {
    let mut builder = StreamsBuilder::new();
    builder
        .add_source::<String, String>("in", &[input])?
        .add_processor("shout", move || Shout(failed_once.clone()), &["in"])?
        .add_sink::<String, String>("out", output, &["shout"])?;
    Ok(builder.build()?)
}

/// The settings every instance here starts from.
fn config(app: &str) -> homa::config::StreamsConfigBuilder {
    StreamsConfig::builder()
        .application_id(app)
        .bootstrap_servers(kafka().bootstrap_servers())
        .commit_interval(Duration::from_millis(100))
        .set("consumer.session.timeout.ms", "6000")
}

/// The values of `topic` (2 partitions) as read to its end.
fn values(topic: &str) -> anyhow::Result<Vec<String>> {
    let mut values = Vec::new();
    kafka().read_to_end(topic, 2, |m| {
        values.push(String::from_utf8(m.payload().unwrap_or_default().to_vec())?);
        Ok(())
    })?;
    values.sort();
    Ok(values)
}

#[test]
fn a_failed_thread_is_replaced_and_its_partitions_processed_again() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("replace-in", 2)?,
        kafka.create_topic("replace-out", 2)?,
    );
    let topology = shout(&input, &output, Arc::default())?;
    let mut streams = KafkaStreams::new(&topology, config(&unique_name("replace")).build()?)?;
    let failures = Arc::new(Mutex::new(Vec::new()));
    let seen = failures.clone();
    streams.set_uncaught_error_handler(move |e| {
        seen.lock().expect("not poisoned").push(e.to_string());
        StreamThreadResponse::ReplaceThread
    });
    streams.start()?;
    kafka.produce(&input, [("a", "x"), ("b", "boom-once"), ("c", "y")])?;
    let mut reader = kafka.reader(&output)?;
    reader.read_distinct(3)?;
    let mut out: Vec<String> = reader
        .records()
        .iter()
        .map(|(_, v)| String::from_utf8_lossy(v).into_owned())
        .collect();
    out.sort();
    out.dedup();
    assert_eq!(out, ["BOOM-ONCE", "X", "Y"]);
    let failures = failures.lock().expect("not poisoned").clone();
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert!(
        failures[0].contains("processing") && failures[0].contains("boom, once"),
        "{failures:?}"
    );
    wait_for_state(&streams, State::Running)?;
    streams.close(TIMEOUT)?;
    Ok(())
}

#[test]
fn processing_errors_are_skipped_to_the_dead_letter_topic_with_their_coordinates()
-> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("skip-in", 2)?,
        kafka.create_topic("skip-out", 2)?,
    );
    let dead = kafka.create_topic("skip-dead", 1)?;
    let topology = shout(&input, &output, Arc::default())?;
    let config = config(&unique_name("skip"))
        .set("processing.exception.handler", "log_and_continue")
        .set("errors.dead.letter.queue.topic.name", &dead)
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;
    kafka.produce(
        &input,
        [("a", "x"), ("b", "boom"), ("c", "y"), ("d", "boom")],
    )?;
    kafka.reader(&output)?.read_distinct(2)?;
    streams.close(TIMEOUT)?;
    assert_eq!(values(&output)?, ["X", "Y"]);
    assert_eq!(streams.metrics().skipped_records, 2);

    let mut dead_letters = Vec::new();
    kafka.read_to_end(&dead, 1, |m| {
        let header = |name: &str| -> anyhow::Result<String> {
            let headers = m.headers().context("no headers")?;
            let found = headers
                .iter()
                .find(|h| h.key == name)
                .with_context(|| format!("no header {name}"))?;
            Ok(String::from_utf8(found.value.unwrap_or_default().to_vec())?)
        };
        ensure!(header("__streams.errors.topic")? == input);
        ensure!(header("__streams.errors.processor.node.id")? == "shout");
        ensure!(header("__streams.errors.message")? == "cannot shout boom");
        header("__streams.errors.offset")?.parse::<i64>()?;
        dead_letters.push(String::from_utf8(m.key().unwrap_or_default().to_vec())?);
        Ok(())
    })?;
    dead_letters.sort();
    assert_eq!(dead_letters, ["b", "d"]);
    Ok(())
}

#[test]
fn a_record_the_broker_refuses_fails_its_commit_and_close_says_so() -> anyhow::Result<()> {
    let kafka = kafka();
    let input = kafka.create_topic("refused-in", 1)?;
    // The broker takes no record of over 200 bytes in the output topic.
    let output = kafka.create_topic_with("refused-out", 1, &[("max.message.bytes", "200")])?;
    let topology = shout(&input, &output, Arc::default())?;
    let app = unique_name("refused");
    let mut streams = KafkaStreams::new(&topology, config(&app).build()?)?;
    let states = Arc::new(Mutex::new(Vec::new()));
    let seen = states.clone();
    streams.set_state_listener(move |_, to| seen.lock().expect("not poisoned").push(to));
    streams.start()?;
    let large = "x".repeat(1_000);
    kafka.produce(&input, [("a", "small"), ("b", large.as_str())])?;
    wait_for_state(&streams, State::Error)?;
    let err = streams
        .close(TIMEOUT)
        .expect_err("the failed send is reported");
    let CloseError::Failed(failure) = &err else {
        panic!("{err}");
    };
    let message = failure.to_string();
    assert!(
        message.contains(&format!("a record to {output}/")) && message.contains("not delivered"),
        "{message}"
    );
    assert!(
        message.contains("production.exception.handler"),
        "{message}"
    );
    // No commit covers the refused record (offset 1): a restart processes it again.
    let committed = kafka.committed_offsets(&app, &input, 1)?;
    assert!(committed[0] <= 1, "committed {committed:?}");
    let states = states.lock().expect("not poisoned").clone();
    assert_eq!(states.last(), Some(&State::Error), "{states:?}");
    Ok(())
}

#[test]
fn a_refused_record_is_skipped_and_counted_under_log_and_continue() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("refused-skip-in", 2)?,
        kafka.create_topic("refused-skip-out", 2)?,
    );
    let topology = shout(&input, &output, Arc::default())?;
    // The producer refuses records over 1,000 bytes when they are handed to it.
    let config = config(&unique_name("refused-skip"))
        .set("production.exception.handler", "log_and_continue")
        .set("producer.message.max.bytes", "1000")
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    streams.start()?;
    let large = "x".repeat(5_000);
    kafka.produce(
        &input,
        [("a", "small"), ("b", large.as_str()), ("c", "tiny")],
    )?;
    kafka.reader(&output)?.read_distinct(2)?;
    streams.close(TIMEOUT)?;
    assert_eq!(values(&output)?, ["SMALL", "TINY"]);
    assert_eq!(streams.metrics().skipped_records, 1);
    Ok(())
}

#[test]
fn a_missing_dead_letter_topic_is_an_error_of_start() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("dlq-in", 1)?,
        kafka.create_topic("dlq-out", 1)?,
    );
    let topology = shout(&input, &output, Arc::default())?;
    let missing = unique_name("no-such-dead-letters");
    let config = config(&unique_name("dlq"))
        .set("errors.dead.letter.queue.topic.name", &missing)
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    let err = streams
        .start()
        .expect_err("the dead-letter topic is checked");
    assert!(
        matches!(&err, StartError::DeadLetterTopic { topic, .. } if *topic == missing),
        "{err}"
    );
    assert!(
        err.to_string()
            .contains("errors.dead.letter.queue.topic.name"),
        "{err}"
    );
    Ok(())
}

#[test]
fn an_unreachable_broker_is_named_with_the_time_waited() -> anyhow::Result<()> {
    let closed = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    let bootstrap = format!("127.0.0.1:{closed}");
    let topology = shout("orders", "shouts", Arc::default())?;
    let config = StreamsConfig::builder()
        .application_id(unique_name("unreachable"))
        .bootstrap_servers(&bootstrap)
        .build()?;
    let mut streams = KafkaStreams::new(&topology, config)?;
    let err = streams.start().expect_err("no broker there").to_string();
    assert!(
        err.contains(&format!("bootstrap.servers={bootstrap}")),
        "{err}"
    );
    assert!(err.contains("answered within"), "{err}");
    assert!(!err.contains("orders"), "no topic is blamed: {err}");
    Ok(())
}

#[test]
fn close_goes_from_pending_shutdown_to_not_running() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("close-in", 2)?,
        kafka.create_topic("close-out", 2)?,
    );
    let topology = shout(&input, &output, Arc::default())?;
    let mut streams = KafkaStreams::new(&topology, config(&unique_name("close")).build()?)?;
    let transitions = Arc::new(Mutex::new(Vec::new()));
    let seen = transitions.clone();
    streams.set_state_listener(move |from, to| seen.lock().expect("not poisoned").push((from, to)));
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    streams.close(TIMEOUT)?;
    let transitions = transitions.lock().expect("not poisoned").clone();
    let from_running: Vec<_> = transitions
        .iter()
        .skip_while(|(_, to)| *to != State::Running)
        .skip(1)
        .copied()
        .collect();
    assert_eq!(
        from_running,
        [
            (State::Running, State::PendingShutdown),
            (State::PendingShutdown, State::NotRunning)
        ],
        "{transitions:?}"
    );
    Ok(())
}

#[test]
fn shutdown_application_stops_every_instance_and_names_the_one_that_asked() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("shutdown-app-in", 2)?,
        kafka.create_topic("shutdown-app-out", 2)?,
    );
    let app = unique_name("shutdown-app");
    let topology = shout(&input, &output, Arc::default())?;
    let dirs = [tempfile::tempdir()?, tempfile::tempdir()?];
    let mut instances = Vec::new();
    // Both with the default client.id (the application id): instances tell their requests
    // apart by their process ids.
    for dir in &dirs {
        let config = config(&app).state_dir(dir.path()).build()?;
        let streams = KafkaStreams::new(&topology, config)?;
        streams.set_uncaught_error_handler(|_| StreamThreadResponse::ShutdownApplication);
        instances.push(streams);
    }
    for streams in &mut instances {
        streams.start()?;
    }
    for streams in &instances {
        wait_for_state(streams, State::Running)?;
    }
    // Both partitions get records; the one with "boom" fails whichever instance has it.
    kafka.produce(&input, [("a", "x"), ("b", "y"), ("c", "boom")])?;
    for streams in &instances {
        wait_for_state(streams, State::Error)?;
    }
    let mut failed = Vec::new();
    let mut told = Vec::new();
    for streams in &mut instances {
        match streams.close(TIMEOUT) {
            Err(CloseError::Failed(e)) => failed.push(e.to_string()),
            Err(CloseError::ApplicationShutdown { by, reason }) => told.push((by, reason)),
            other => anyhow::bail!("close() of a stopped instance: {other:?}"),
        }
        assert_eq!(streams.state(), State::Error, "Error is final");
    }
    assert_eq!(failed.len(), 1, "{failed:?}");
    assert!(failed[0].contains("cannot shout boom"), "{failed:?}");
    assert_eq!(told.len(), 1, "{told:?}");
    let (by, reason) = &told[0];
    assert_eq!(by, &app);
    assert!(reason.contains("cannot shout boom"), "{reason}");
    Ok(())
}

#[test]
fn a_panic_in_a_processor_fails_its_thread_as_an_error_does() -> anyhow::Result<()> {
    let kafka = kafka();
    let (input, output) = (
        kafka.create_topic("panic-in", 1)?,
        kafka.create_topic("panic-out", 1)?,
    );
    let mut builder = StreamsBuilder::new();
    builder
        .stream::<String, String>(&input)
        .map_values(|v| {
            assert!(v != "panic", "a value this code cannot take");
            v.to_uppercase()
        })
        .to(&output);
    let topology = builder.build()?;
    let mut streams = KafkaStreams::new(&topology, config(&unique_name("panic")).build()?)?;
    streams.start()?;
    wait_for_state(&streams, State::Running)?;
    kafka.produce(&input, [("a", "x"), ("b", "panic")])?;
    // The instance does not go on looking healthy with its only thread gone.
    wait_for_state(&streams, State::Error)?;
    match streams.close(TIMEOUT) {
        Err(CloseError::Failed(e)) => {
            let message = e.to_string();
            assert!(
                message.contains("panicked") && message.contains("a value this code cannot take"),
                "{message}"
            );
        }
        other => anyhow::bail!("close() after a panic: {other:?}"),
    }
    Ok(())
}

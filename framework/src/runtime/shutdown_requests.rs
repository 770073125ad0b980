//! Shutting down every instance of an application (`StreamThreadResponse::ShutdownApplication`).
//!
//! Kafka Streams carries the request in its partition assignor's metadata, which
//! librdkafka's assignors have no room for. HOMA sends it through an internal topic of one
//! partition, `<application.id>-shutdown-requests`, created at `start()`: the instance whose
//! handler asks writes a record there (its process id, a UUID of the instance, as key; its
//! client id and the error as value), and every instance watches the topic from where it
//! was when it started, with a consumer of its own, and shuts down (to `Error`) when a
//! request of another instance arrives. Both are best-effort: an instance that cannot
//! create or read the topic (its principal may not) runs without, and says so.

use std::thread::JoinHandle;
use std::time::Duration;

use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseProducer, BaseRecord, Producer};
use rdkafka::{Message, Offset, TopicPartitionList};

use super::clients;
use super::error::is_transient;
use crate::config::StreamsConfig;

/// How long the watcher waits for a request in one poll (and so at most to notice a close).
const POLL: Duration = Duration::from_millis(200);
/// How long a request may take to be written.
const SEND_TIMEOUT: Duration = Duration::from_secs(30);

/// The topic of an application's shutdown requests.
pub(crate) fn topic(application_id: &str) -> String {
    format!("{application_id}-shutdown-requests")
}

/// The settings of the topic: requests are read as they come, and kept a day.
pub(crate) const TOPIC_CONFIGS: &[(&str, &str)] =
    &[("cleanup.policy", "delete"), ("retention.ms", "86400000")];

/// A request to shut the application down: who asked, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Request {
    /// The process id of the instance that asked (instances may share a `client.id`).
    pub(crate) process: String,
    /// The `client.id` of the instance that asked.
    pub(crate) by: String,
    /// The error that made it ask.
    pub(crate) reason: String,
}

impl Request {
    /// The request a record of the topic holds.
    fn read(key: Option<&[u8]>, value: Option<&[u8]>) -> Self {
        let text =
            |bytes: Option<&[u8]>| String::from_utf8_lossy(bytes.unwrap_or_default()).into_owned();
        let value = text(value);
        let (by, reason) = value.split_once('\n').unwrap_or((value.as_str(), ""));
        Self {
            process: text(key),
            by: by.to_string(),
            reason: reason.to_string(),
        }
    }
}

/// Writes a request to shut the application down, from instance `by` for `reason`.
pub(crate) fn send(
    config: &StreamsConfig,
    bootstrap: &str,
    request: &Request,
) -> Result<(), String> {
    let producer: BaseProducer = clients::admin(config, bootstrap)
        .create()
        .map_err(|e| format!("creating the producer: {e}"))?;
    let topic = topic(config.application_id());
    let value = format!("{}\n{}", request.by, request.reason);
    let record = BaseRecord::to(&topic)
        .partition(0)
        .key(request.process.as_bytes())
        .payload(value.as_bytes());
    producer
        .send(record)
        .map_err(|(e, _)| format!("sending to {topic}: {e}"))?;
    producer
        .flush(SEND_TIMEOUT)
        .map_err(|e| format!("flushing to {topic}: {e}"))
}

/// Watches the application's shutdown requests from the topic's end now, and calls
/// `requested` with each that arrives, until `stop()` says to stop (or the topic cannot be
/// read any more, which is logged).
///
/// # Errors
/// When the consumer cannot be made or the topic's end cannot be read.
pub(crate) fn watch(
    config: &StreamsConfig,
    bootstrap: &str,
    stop: impl Fn() -> bool + Send + 'static,
    requested: impl Fn(Request) + Send + 'static,
) -> Result<JoinHandle<()>, String> {
    let topic = topic(config.application_id());
    // A consumer of its own, assigned the topic's partition by hand; it never commits.
    let mut client = clients::restore_consumer(config, bootstrap, 0);
    client
        .set(
            "group.id",
            format!("{}-shutdown-watcher", config.client_id()),
        )
        .set(
            "client.id",
            format!("{}-shutdown-watcher", config.client_id()),
        );
    let consumer: BaseConsumer = client
        .create()
        .map_err(|e| format!("creating the consumer: {e}"))?;
    let (_, end) = consumer
        .fetch_watermarks(&topic, 0, Duration::from_secs(30))
        .map_err(|e| format!("reading the end of {topic}: {e}"))?;
    let mut assignment = TopicPartitionList::new();
    assignment
        .add_partition_offset(&topic, 0, Offset::Offset(end))
        .and_then(|()| consumer.assign(&assignment))
        .map_err(|e| format!("assigning {topic}/0: {e}"))?;
    let name = format!("{}-shutdown-watcher", config.client_id());
    let thread = std::thread::Builder::new().name(name).spawn(move || {
        while !stop() {
            match consumer.poll(POLL) {
                Some(Ok(message)) => requested(Request::read(message.key(), message.payload())),
                Some(Err(e)) if is_transient(&e) => tracing::warn!("homa: reading {topic}: {e}"),
                Some(Err(e)) => {
                    tracing::error!(
                        "homa: reading {topic}: {e}; this instance no longer hears requests \
                         to shut the application down"
                    );
                    return;
                }
                None => {}
            }
        }
    });
    thread.map_err(|e| format!("starting the watcher thread: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_reads_back_as_written() {
        let request = Request::read(Some(b"p-1"), Some(b"app-1\nstream thread 0: boom\nmore"));
        assert_eq!(
            request,
            Request {
                process: "p-1".into(),
                by: "app-1".into(),
                reason: "stream thread 0: boom\nmore".into(),
            }
        );
        assert_eq!(Request::read(None, None).by, "");
    }
}

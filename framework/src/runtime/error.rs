//! The errors of the runtime: what stops a stream thread, and where.
//!
//! Each variant names its coordinates (topic-partition, task, store, client) so that the
//! message alone says what failed; all of them convert into [`crate::Error`].

use rdkafka::error::KafkaError;
use rdkafka::types::RDKafkaErrorCode;

use super::task::TaskError;
use super::task::TaskId;

/// What stopped a stream thread.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ThreadError {
    /// A Kafka client of the thread could not be made (its settings are checked when the
    /// config is built, so this is rare).
    #[error("creating the {client}: {source}")]
    Client {
        /// `consumer`, `producer` or `restore consumer`.
        client: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The consumer could not subscribe to the topology's topics.
    #[error("subscribing to {topics:?}: {source}")]
    Subscribe {
        /// The topics.
        topics: Vec<String>,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The consumer reported an error while polling (e.g. it was fenced, or lost the group).
    #[error("polling the consumer: {source}")]
    Poll {
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The group's rebalance could not be completed.
    #[error("completing a rebalance ({what}): {source}")]
    Rebalance {
        /// What was being done.
        what: &'static str,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A task failed: a record it could not read, a processor's error, a store.
    #[error(transparent)]
    Task(#[from] TaskError),
    /// The consumed offsets could not be committed.
    #[error("committing offsets of {partitions}: {source}")]
    Commit {
        /// The partitions, `topic/partition@offset, ...`.
        partitions: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The committed offsets of new tasks' partitions (with what the tasks keep there)
    /// could not be read.
    #[error("reading the committed offsets of {partitions}: {source}")]
    Committed {
        /// The partitions, `topic/partition, ...`.
        partitions: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// A record could not be written, and the production handler says fail.
    #[error(transparent)]
    Produce(Box<ProduceError>),
    /// A store could not be restored from its changelog.
    #[error(transparent)]
    Restore(Box<RestoreError>),
    /// Under exactly-once, a step of the thread's transaction failed (`init`, `begin`,
    /// `send offsets`, `commit`, `abort`).
    #[error("{operation} the transaction of {transactional_id}: {source}")]
    Transaction {
        /// What was being done: `initialising`, `beginning`, `sending the offsets of`,
        /// `committing`.
        operation: &'static str,
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Under exactly-once, the thread's partitions were lost to the group (it was out of
    /// it, e.g. frozen past its session): its transaction is aborted and it rejoins.
    #[error("partitions lost: {partitions}")]
    PartitionsLost {
        /// The partitions, `topic/partition, ...`.
        partitions: String,
    },
    /// Code the thread ran panicked (a processor, a serde, a closure of the topology, or a
    /// client library); the thread's tasks were dropped without a commit.
    #[error("panicked: {message}")]
    Panic {
        /// The panic's message.
        message: String,
    },
    /// The global thread could not keep the global tables current.
    #[error("keeping the global tables: {source}")]
    GlobalTables {
        /// What failed: a record that cannot be read, a store, the consumer.
        #[source]
        source: crate::state::global::GlobalError,
    },
}

impl ThreadError {
    /// The error of a thread whose code panicked with `payload`.
    pub(crate) fn panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let message = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        Self::Panic { message }
    }
}

impl ThreadError {
    /// Whether, under exactly-once, the error means that this thread's tasks may have gone
    /// to another member or its producer was fenced (Kafka Streams' `TaskMigratedException`):
    /// its transaction is aborted, its tasks closed dirty, and it rejoins the group with a
    /// new producer, its tasks starting again from their committed offsets. Any other error
    /// (a record that fails, a store) aborts the transaction and stops the thread.
    pub(crate) fn is_task_migrated(&self) -> bool {
        match self {
            Self::PartitionsLost { .. } => true,
            Self::Transaction { source, .. } => transaction_failed(source),
            Self::Produce(e) => e.is_task_migrated(),
            // A record a processor sent, whose send failed so.
            Self::Task(TaskError::Process { source, .. }) => {
                let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&**source);
                while let Some(error) = cause {
                    if let Some(e) = error.downcast_ref::<ProduceError>() {
                        return e.is_task_migrated();
                    }
                    cause = crate::processor::node_error(error).or_else(|| error.source());
                }
                false
            }
            Self::Poll { source } => is_fenced(source),
            _ => false,
        }
    }
}

impl ProduceError {
    /// Whether the record failed because the thread's producer was fenced or its
    /// transaction could not go on (see [`ThreadError::is_task_migrated`]).
    fn is_task_migrated(&self) -> bool {
        match self {
            Self::Delivery { source, .. } | Self::Send { source, .. } => is_fenced(source),
            Self::Begin { source, .. } => transaction_failed(source),
            Self::Flush { .. } => false,
        }
    }
}

/// Whether a step of a transaction failed in a way a new producer recovers from: a fatal
/// error is a fenced producer; an abortable one a commit the group refused (a rebalance, a
/// stale generation) or a record not delivered because of either; a retriable one a broker
/// or coordinator away for longer than the call waited.
fn transaction_failed(source: &KafkaError) -> bool {
    match source {
        KafkaError::Transaction(e) => e.is_fatal() || e.txn_requires_abort() || e.is_retriable(),
        other => is_fenced(other) || is_transient(other),
    }
}

/// Whether `error` says the producer (or the consumer's static membership) was fenced by a
/// newer one.
pub(crate) fn is_fenced(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            Fenced
                | ProducerFenced
                | InvalidProducerEpoch
                | FencedInstanceId
                | InvalidProducerIdMapping
        )
    )
}

impl From<ProduceError> for ThreadError {
    fn from(error: ProduceError) -> Self {
        Self::Produce(Box::new(error))
    }
}

impl From<RestoreError> for ThreadError {
    fn from(error: RestoreError) -> Self {
        Self::Restore(Box::new(error))
    }
}

/// A store that could not be restored from its changelog.
#[derive(Debug, thiserror::Error)]
#[error("task {task}: restoring store {store} from {topic}/{partition}: {reason}")]
#[non_exhaustive]
pub struct RestoreError {
    /// The task.
    pub task: TaskId,
    /// The store.
    pub store: String,
    /// Its changelog topic.
    pub topic: String,
    /// The changelog partition.
    pub partition: i32,
    /// What went wrong.
    #[source]
    pub reason: RestoreFailure,
}

/// Why a restoration failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RestoreFailure {
    /// Reading the changelog failed.
    #[error("{0}")]
    Kafka(#[from] KafkaError),
    /// Writing to the store failed.
    #[error("{0}")]
    Store(#[from] crate::state::StoreError),
    /// The writer thread of the restore stopped without saying why.
    #[error("the restore writer stopped")]
    Writer,
}

/// A record the producer could not write.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ProduceError {
    /// librdkafka refused the record when it was handed over (e.g. larger than
    /// `producer.message.max.bytes`).
    #[error("sink {node}: sending a record to {topic}: {source}")]
    Send {
        /// The sink node (or store, for a changelog write).
        node: String,
        /// The topic.
        topic: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The broker did not acknowledge a record.
    #[error(
        "a record to {topic}/{partition} was not delivered: {source} (set \
         production.exception.handler=log_and_continue to skip such records)"
    )]
    Delivery {
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// Under exactly-once, no transaction could be begun for a record.
    #[error("beginning the transaction of {transactional_id} for a record to {topic}: {source}")]
    Begin {
        /// The topic.
        topic: String,
        /// The producer's `transactional.id`.
        transactional_id: String,
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
    /// The producer did not get every acknowledgement in time.
    #[error("flushing the producer: {source}")]
    Flush {
        /// librdkafka's error.
        #[source]
        source: KafkaError,
    },
}

/// The number [`StreamThreadError::thread`] gives the global thread, which keeps the
/// global tables.
pub const GLOBAL_THREAD: usize = usize::MAX;

/// `stream thread <n>`, or `the global thread`.
fn thread_name(thread: usize) -> String {
    match thread {
        GLOBAL_THREAD => "the global thread".to_string(),
        n => format!("stream thread {n}"),
    }
}

/// What stopped a stream thread of an instance, as its uncaught-error handler sees it.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", thread_name(*thread))]
pub struct StreamThreadError {
    /// The thread's number ([`GLOBAL_THREAD`] for the global thread).
    pub thread: usize,
    /// What failed, with the task, topic-partition or store where there is one.
    #[source]
    pub source: ThreadError,
}

/// Whether a client error is one librdkafka recovers from by itself (a broker unreachable
/// for a while, a coordinator or leader moving, a request timing out, the group
/// rebalancing): the thread logs it and goes on, as Kafka Streams retries such errors,
/// rather than stopping. Any other error (authorization, a fatal client state) stops it.
pub(crate) fn is_transient(error: &KafkaError) -> bool {
    use RDKafkaErrorCode::*;
    matches!(
        error.rdkafka_error_code(),
        Some(
            BrokerTransportFailure
                | Resolve
                | AllBrokersDown
                | OperationTimedOut
                | LeaderNotAvailable
                | NotLeaderForPartition
                | RequestTimedOut
                | NetworkException
                | CoordinatorLoadInProgress
                | CoordinatorNotAvailable
                | NotCoordinator
                | IllegalGeneration
                | UnknownMemberId
                | RebalanceInProgress
                | PollExceeded
        )
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_broker_going_away_is_transient_and_a_refusal_is_not() {
        let transient = [
            KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure),
            KafkaError::MessageConsumption(RDKafkaErrorCode::AllBrokersDown),
            KafkaError::ConsumerCommit(RDKafkaErrorCode::RebalanceInProgress),
            KafkaError::ConsumerCommit(RDKafkaErrorCode::RequestTimedOut),
        ];
        assert!(transient.iter().all(is_transient));
        let fatal = [
            KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed),
            KafkaError::MessageConsumptionFatal(RDKafkaErrorCode::Fatal),
            KafkaError::ConsumerCommit(RDKafkaErrorCode::GroupAuthorizationFailed),
            KafkaError::Canceled,
        ];
        assert!(!fatal.iter().any(is_transient));
    }
}

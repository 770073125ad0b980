//! `TopologyTestDriver`: a topology's tasks, driven by hand.

use std::cell::RefCell;
use std::collections::{BTreeMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::topics::{TestInputTopic, TestOutputTopic};
use crate::config::{DeserializationHandler, StreamsConfig};
use crate::header::Headers;
use crate::processor::{OutgoingRecord, ProcessError, RecordCollector};
use crate::runtime::task::{QueuedRecord, Task, TaskId, TaskResources};
use crate::serde::DefaultSerde;
use crate::state::global::{GlobalRecord, GlobalState};
use crate::state::{CacheBudget, SharedBytesStore, StoreDef, WriteBatch};
use crate::state::{
    ReadOnlyKeyValueStore, ReadOnlySessionStore, ReadOnlyWindowStore, StoreError, ValueAndTimestamp,
};
use crate::topology::Topology;

/// A record a sink wrote, as bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CapturedRecord {
    pub(crate) key: Option<Vec<u8>>,
    pub(crate) value: Option<Vec<u8>>,
    pub(crate) timestamp: i64,
    pub(crate) headers: Headers,
}

/// What the sinks wrote, per topic.
#[derive(Debug, Default)]
struct Captured(RefCell<BTreeMap<String, VecDeque<CapturedRecord>>>);

impl RecordCollector for Captured {
    fn send(&self, r: OutgoingRecord<'_>) -> Result<(), ProcessError> {
        self.0
            .borrow_mut()
            .entry(r.topic.to_string())
            .or_default()
            .push_back(CapturedRecord {
                key: r.key.map(<[u8]>::to_vec),
                value: r.value.map(<[u8]>::to_vec),
                timestamp: r.timestamp,
                headers: r.headers.clone(),
            });
        Ok(())
    }
}

/// Runs a [`Topology`] without a broker: one task per sub-topology (partition 0), fed by
/// [`TestInputTopic`]s and read through [`TestOutputTopic`]s.
///
/// ```
/// use homa::config::StreamsConfig;
/// use homa::dsl::StreamsBuilder;
/// use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
/// use homa::testing::TopologyTestDriver;
///
/// struct Double;
///
/// impl Processor<String, i64> for Double {
///     fn process(&mut self, r: Record<String, i64>, ctx: &mut ProcessorContext<String, i64>)
///         -> Result<(), ProcessError> {
///         ctx.forward(r.map_value(|v| v * 2))
///     }
/// }
///
/// let mut builder = StreamsBuilder::new();
/// builder.add_source::<String, i64>("in", &["numbers"])?;
/// builder.add_processor("double", || Double, &["in"])?;
/// builder.add_sink::<String, i64>("out", "doubled", &["double"])?;
/// let topology = builder.build()?;
///
/// let driver = TopologyTestDriver::new(&topology, StreamsConfig::builder().application_id("test").build()?)?;
/// let input = driver.create_input_topic::<String, i64>("numbers");
/// let output = driver.create_output_topic::<String, i64>("doubled");
/// input.pipe_input("a".to_string(), 21);
/// assert_eq!(output.read_key_value(), Some(("a".to_string(), 42)));
/// assert!(output.is_empty());
/// # Ok::<(), homa::Error>(())
/// ```
pub struct TopologyTestDriver {
    inner: RefCell<Inner>,
    captured: Rc<Captured>,
    /// What the driver runs, kept to start it again.
    topology: Topology,
    config: StreamsConfig,
    /// Removed after `inner`, whose tasks have their stores open in it.
    _state_dir: tempfile::TempDir,
    /// The global tables, kept across restarts (as an instance restores them from their
    /// topics), in a directory of their own.
    global: Option<Global>,
}

/// A driver's global tables and where their stores are.
struct Global {
    state: Arc<GlobalState>,
    _dir: tempfile::TempDir,
}

struct Inner {
    tasks: Vec<Task>,
    /// The task reading each source topic.
    readers: BTreeMap<String, usize>,
    /// The next offset of each input topic.
    offsets: BTreeMap<String, i64>,
    /// The application's internal (repartition) topics, by their names on the broker.
    internal: Vec<String>,
    wall_clock: i64,
    /// The metadata of each input partition's last commit, which a restart starts from.
    commits: Commits,
}

/// The metadata each input partition committed last, by partition.
type Commits = BTreeMap<(Arc<str>, i32), String>;

impl Inner {
    /// Queues `record` at the next offset of `topic` in the task reading it, and processes
    /// everything that task has queued.
    fn process(&mut self, topic: &str, record: CapturedRecord) {
        let Some(&task) = self.readers.get(topic) else {
            panic!("no source of this topology reads topic {topic:?}");
        };
        let offset = self.offsets.entry(topic.to_string()).or_insert(0);
        let queued = QueuedRecord::new(
            *offset,
            record.timestamp,
            record.key,
            record.value,
            record.headers,
        );
        *offset += 1;
        let task = &mut self.tasks[task];
        task.add_records(&Arc::from(topic), 0, [queued]);
        process_all(task, self.wall_clock, &mut self.commits);
    }
}

/// Writes into `task`'s logged stores of `stores` what their changelogs in `captured` hold,
/// as a restore does.
fn restore(
    task: &Task,
    topology: &Topology,
    stores: &[Arc<str>],
    application_id: &str,
    captured: &Captured,
) -> Result<(), StoreError> {
    let captured = captured.0.borrow();
    for name in stores {
        let Some(def) = topology.store_def(name).filter(|d| d.logging) else {
            continue;
        };
        let topic = crate::topology::changelog_topic(application_id, name);
        let (Some(records), Some(open)) = (captured.get(&topic), task.store(name)) else {
            continue;
        };
        let mut batch = WriteBatch::new();
        for record in records {
            let Some(key) = &record.key else { continue };
            match &record.value {
                Some(value) if def.kind.timestamped() => {
                    batch.put_timestamped(key, record.timestamp, value);
                }
                value => batch.push(key, value.as_deref()),
            }
        }
        open.layers.bytes.restore_batch(&batch)?;
    }
    Ok(())
}

/// Processes what `task` may process at wall-clock time `now` (all it has, unless an
/// empty input partition holds it back for `max.task.idle.ms`), then commits as Kafka
/// Streams' driver does after each record, so caches hold nothing back; the commits'
/// metadata goes into `commits`.
fn process_all(task: &mut Task, now: i64, commits: &mut Commits) {
    loop {
        // Every record piped is there: no partition waits for records still to come.
        if !task.is_processable(now, &|_, _, _| true) {
            break;
        }
        match task.process_next() {
            Ok(true) => {}
            Ok(false) => break,
            Err(e) => panic!("{e}"),
        }
    }
    if let Err(e) = task.flush() {
        panic!("{e}");
    }
    for (topic, partition, _, metadata) in task.uncommitted() {
        commits.insert((topic.clone(), partition), metadata);
    }
    // The driver writes no changelog: its stores keep no offset.
    if let Err(e) = task.mark_committed(|_, _| None) {
        panic!("{e}");
    }
}

impl std::fmt::Debug for TopologyTestDriver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TopologyTestDriver")
            .field("tasks", &self.inner.borrow().tasks)
            .finish_non_exhaustive()
    }
}

impl TopologyTestDriver {
    /// A driver for `topology`, its wall clock at the current time.
    ///
    /// # Errors
    /// When a processor's `init` fails.
    pub fn new(topology: &Topology, config: StreamsConfig) -> crate::Result<Self> {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
        Self::with_wall_clock(topology, config, now)
    }

    /// A driver whose wall clock starts at `wall_clock_ms` (ms since the epoch).
    ///
    /// # Errors
    /// When a processor's `init` fails.
    pub fn with_wall_clock(
        topology: &Topology,
        config: StreamsConfig,
        wall_clock_ms: i64,
    ) -> crate::Result<Self> {
        // As Kafka Streams' driver: windows closed by a record are emitted at once.
        let config = config.without_emit_throttles();
        Self::start(
            topology,
            config,
            wall_clock_ms,
            Rc::default(),
            (BTreeMap::new(), Commits::new(), None),
        )
    }

    /// Closes the driver's tasks and starts them again on empty state, each logged store
    /// restored from the changelog records its task wrote so far: as an instance that
    /// restarts with its state directory wiped (Kafka Streams' own driver cannot). Output
    /// not yet read stays to be read; the wall clock and the input topics' offsets go on,
    /// and the tasks start from what their last commits kept (stream time, and what
    /// processors keep there, such as the windows already emitted on close).
    ///
    /// # Errors
    /// When a store cannot be restored or a processor's `init` fails.
    pub fn restart(self) -> crate::Result<Self> {
        let (topology, config) = (self.topology.clone(), self.config.clone());
        let captured = self.captured.clone();
        let (wall_clock, offsets, commits) = {
            let inner = self.inner.borrow();
            (
                inner.wall_clock,
                inner.offsets.clone(),
                inner.commits.clone(),
            )
        };
        let mut old = self;
        let global = old.global.take();
        drop(old);
        Self::start(
            &topology,
            config,
            wall_clock,
            captured,
            (offsets, commits, global),
        )
    }

    /// Starts the topology's tasks, their logged stores restored from what `captured`
    /// holds of their changelogs; `offsets` are the input topics' next offsets and
    /// `commits` what the tasks committed last.
    fn start(
        topology: &Topology,
        config: StreamsConfig,
        wall_clock_ms: i64,
        captured: Rc<Captured>,
        (offsets, commits, global): (BTreeMap<String, i64>, Commits, Option<Global>),
    ) -> crate::Result<Self> {
        let collector: Rc<dyn RecordCollector> = captured.clone();
        let application_id = config.application_id();
        // Each driver has a state directory of its own, removed with it.
        let temp_dir = || {
            tempfile::Builder::new()
                .prefix("homa-test-driver-")
                .tempdir()
                .map_err(|source| crate::Error::Io {
                    operation: "creating the test driver's state directory".to_string(),
                    source,
                })
        };
        let state_dir = temp_dir()?;
        let global = match global {
            Some(global) => Some(global),
            None => {
                let dir = temp_dir()?;
                GlobalState::open(topology, dir.path(), None)?.map(|state| Global {
                    state: Arc::new(state),
                    _dir: dir,
                })
            }
        };
        let globals = global
            .as_ref()
            .map(|g| g.state.stores())
            .unwrap_or_default();
        let mut tasks = Vec::new();
        let mut readers = BTreeMap::new();
        let cache = CacheBudget::new(
            usize::try_from(config.statestore_cache_max_bytes()).unwrap_or(usize::MAX),
        );
        for sub in topology.subtopologies() {
            let id = TaskId {
                subtopology: sub.id,
                partition: 0,
            };
            let resources = TaskResources {
                collector: &collector,
                state_dir: state_dir.path(),
                cache: &cache,
                rocksdb: None,
                globals: &globals,
            };
            let mut task = Task::build(id, topology, sub, &config, &resources, wall_clock_ms)?;
            restore(&task, topology, &sub.stores, application_id, &captured)?;
            for ((topic, partition), metadata) in &commits {
                if sub
                    .source_topics
                    .iter()
                    .any(|source| topology.topic_name(source, application_id) == **topic)
                {
                    task.resume_from_commit(topic, *partition, metadata);
                }
            }
            task.init()?;
            for topic in &sub.source_topics {
                readers.insert(topology.topic_name(topic, application_id), tasks.len());
            }
            tasks.push(task);
        }
        Ok(Self {
            inner: RefCell::new(Inner {
                tasks,
                readers,
                offsets,
                internal: topology
                    .internal_topics()
                    .into_iter()
                    .map(|(topic, _)| topology.topic_name(topic, application_id))
                    .collect(),
                wall_clock: wall_clock_ms,
                commits,
            }),
            captured,
            topology: topology.clone(),
            config,
            _state_dir: state_dir,
            global,
        })
    }

    /// The key-value store `name` of the topology, typed (Kafka Streams'
    /// `getKeyValueStore`): read it to check what the processors wrote.
    ///
    /// # Errors
    /// [`StoreError::Unknown`] when no store has that name, [`StoreError::WrongTypes`] when
    /// `(K, V)` are not its types.
    pub fn key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, V>, StoreError> {
        let (def, bytes, topic) = self.open_store(name)?;
        def.typed(bytes, topic)
    }

    /// The timestamped key-value store `name` (Kafka Streams'
    /// `getTimestampedKeyValueStore`): each value with the timestamp of its last update, as
    /// the DSL's tables and aggregations keep them.
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store); `WrongTypes` also for a store that is
    /// not timestamped.
    pub fn timestamped_key_value_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyKeyValueStore<K, ValueAndTimestamp<V>>, StoreError> {
        let (def, bytes, topic) = self.open_store(name)?;
        def.timestamped(bytes, topic)
    }

    /// The window store `name` of the topology, values alone (Kafka Streams'
    /// `getWindowStore`; of a windowed aggregation too): `get`, `fetch`, `fetch_all`, `all`.
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store); `WrongTypes` also for a store that is
    /// no window store.
    pub fn window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, V>, StoreError> {
        let (def, bytes, topic) = self.open_store(name)?;
        def.window_view(bytes, topic)
    }

    /// The timestamped window store `name` (Kafka Streams' `getTimestampedWindowStore`):
    /// each value with the timestamp of its last update, as windowed aggregations keep
    /// them.
    ///
    /// # Errors
    /// As [`window_store`](Self::window_store), for a store that is not timestamped.
    pub fn timestamped_window_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlyWindowStore<K, ValueAndTimestamp<V>>, StoreError> {
        let (def, bytes, topic) = self.open_store(name)?;
        let view = def.timestamped_window(bytes, topic)?;
        Ok(ReadOnlyWindowStore::new(view, def.window_size()))
    }

    /// The session store `name` of the topology (Kafka Streams' `getSessionStore`):
    /// `fetch`, `find_sessions`, `fetch_session`, `all`.
    ///
    /// # Errors
    /// As [`key_value_store`](Self::key_value_store); `WrongTypes` also for a store that is
    /// no session store.
    pub fn session_store<K: 'static, V: 'static>(
        &self,
        name: &str,
    ) -> Result<ReadOnlySessionStore<K, V>, StoreError> {
        let (def, bytes, topic) = self.open_store(name)?;
        def.session_view(bytes, topic)
    }

    /// The store `name` of whichever task has it, or of a global table: its definition,
    /// its bytes as queries read them and the topic its serdes are told.
    fn open_store(&self, name: &str) -> Result<(StoreDef, SharedBytesStore, Arc<str>), StoreError> {
        let open = self.inner.borrow().tasks.iter().find_map(|t| t.store(name));
        if let Some(open) = open {
            let bytes = open.read_view();
            return Ok((open.def, bytes, open.changelog));
        }
        let global = self.global.as_ref().and_then(|g| g.state.store(name));
        let Some((def, bytes, topic)) = global else {
            return Err(StoreError::Unknown {
                store: name.to_string(),
            });
        };
        Ok((def.clone(), bytes, topic))
    }

    /// An input topic whose records are written with the default serdes of `K` and `V`.
    pub fn create_input_topic<K: DefaultSerde, V: DefaultSerde>(
        &self,
        topic: &str,
    ) -> TestInputTopic<'_, K, V> {
        TestInputTopic::new(self, topic)
    }

    /// An output topic whose records are read with the default serdes of `K` and `V`.
    pub fn create_output_topic<K: DefaultSerde, V: DefaultSerde>(
        &self,
        topic: &str,
    ) -> TestOutputTopic<'_, K, V> {
        TestOutputTopic::new(self, topic)
    }

    /// Moves the wall clock forward, firing the wall-clock punctuations that come due.
    ///
    /// # Panics
    /// When a punctuation fails, with its error.
    pub fn advance_wall_clock_time(&self, by: Duration) {
        let inner = &mut *self.inner.borrow_mut();
        inner.wall_clock = inner
            .wall_clock
            .saturating_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX));
        for task in &mut inner.tasks {
            // Records an empty partition held back may be processed now.
            process_all(task, inner.wall_clock, &mut inner.commits);
            if let Err(e) = task.advance_wall_clock(inner.wall_clock) {
                panic!("{e}");
            }
        }
    }

    /// The wall clock, in ms since the epoch.
    pub fn wall_clock_time(&self) -> i64 {
        self.inner.borrow().wall_clock
    }

    /// Feeds one serialized record to the task reading `topic` and processes it at once,
    /// then what it wrote to internal topics, until none is left (as Kafka Streams' driver).
    pub(crate) fn pipe_raw(
        &self,
        topic: &str,
        key: Option<Vec<u8>>,
        value: Option<Vec<u8>>,
        timestamp: i64,
        headers: Headers,
    ) {
        if let Some(global) = self.global.as_ref().filter(|g| g.state.reads(topic)) {
            self.write_global(&global.state, topic, (key, value, timestamp, headers));
            return;
        }
        let inner = &mut *self.inner.borrow_mut();
        let mut next = Some((
            topic.to_string(),
            CapturedRecord {
                key,
                value,
                timestamp,
                headers,
            },
        ));
        while let Some((topic, record)) = next {
            inner.process(&topic, record);
            next = inner.internal.iter().find_map(|internal| {
                let record = self
                    .captured
                    .0
                    .borrow_mut()
                    .get_mut(internal)?
                    .pop_front()?;
                Some((internal.clone(), record))
            });
        }
    }

    /// Writes a record piped to a global table's topic to its store at once (as Kafka
    /// Streams' driver does, unreadable records skipped whatever the handler).
    fn write_global(
        &self,
        global: &GlobalState,
        topic: &str,
        (key, value, timestamp, headers): (Option<Vec<u8>>, Option<Vec<u8>>, i64, Headers),
    ) {
        let offset = {
            let mut inner = self.inner.borrow_mut();
            let next = inner.offsets.entry(topic.to_string()).or_insert(0);
            *next += 1;
            *next - 1
        };
        let record = GlobalRecord {
            topic,
            partition: 0,
            offset,
            key: key.as_deref(),
            value: value.as_deref(),
            timestamp,
            headers: &headers,
        };
        if let Err(e) = global.apply(&record, DeserializationHandler::LogAndContinue) {
            panic!("{e}");
        }
    }

    /// Takes the next record a sink wrote to `topic`.
    pub(crate) fn read_raw(&self, topic: &str) -> Option<CapturedRecord> {
        self.captured.0.borrow_mut().get_mut(topic)?.pop_front()
    }

    /// How many records wait in output `topic`.
    pub(crate) fn queued_output(&self, topic: &str) -> usize {
        self.captured.0.borrow().get(topic).map_or(0, VecDeque::len)
    }

    /// Records operators could not pass on and dropped, each logged with its coordinates: a
    /// record without a key or value where an aggregation or a table needs one, a
    /// tombstone reaching `map` (Kafka Streams' `dropped-records` metric).
    pub fn dropped_records(&self) -> u64 {
        let global = self.global.as_ref().map_or(0, |g| g.state.dropped());
        let tasks: u64 = self
            .inner
            .borrow()
            .tasks
            .iter()
            .map(|t| t.counts().dropped)
            .sum();
        global + tasks
    }

    /// Records the tasks skipped for an error, each logged with its coordinates: unreadable
    /// (deserialization handler log-and-continue), with a negative timestamp, or failed in
    /// a processor (processing handler log-and-continue).
    pub fn skipped_records(&self) -> u64 {
        self.inner
            .borrow()
            .tasks
            .iter()
            .map(|t| t.counts().skipped())
            .sum()
    }
}

impl Drop for TopologyTestDriver {
    fn drop(&mut self) {
        for task in &mut self.inner.borrow_mut().tasks {
            task.close();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::config::DeserializationHandler;
    use crate::dsl::StreamsBuilder;
    use crate::processor::{Processor, ProcessorContext, PunctuationType, Record, ScheduleId};

    /// Passes records on, adding a header; forwards the wall-clock time on each punctuation.
    struct Tag;

    impl Processor<String, String> for Tag {
        fn init(&mut self, ctx: &mut ProcessorContext<String, String>) -> Result<(), ProcessError> {
            ctx.schedule(Duration::from_secs(1), PunctuationType::WallClockTime);
            Ok(())
        }

        fn process(
            &mut self,
            mut r: Record<String, String>,
            ctx: &mut ProcessorContext<String, String>,
        ) -> Result<(), ProcessError> {
            r.headers.add("seen-by", "tag");
            ctx.forward(r)
        }

        fn punctuate(
            &mut self,
            _: ScheduleId,
            t: i64,
            ctx: &mut ProcessorContext<String, String>,
        ) -> Result<(), ProcessError> {
            ctx.forward(Record::new("tick".into(), t.to_string(), t))
        }
    }

    fn driver(handler: DeserializationHandler) -> TopologyTestDriver {
        let mut builder = StreamsBuilder::new();
        builder.add_source::<String, String>("in", &["in"]).unwrap();
        builder.add_processor("tag", || Tag, &["in"]).unwrap();
        builder
            .add_sink::<String, String>("out", "out", &["tag"])
            .unwrap();
        let topology = builder.build().unwrap();
        let config = StreamsConfig::builder()
            .application_id("test")
            .deserialization_handler(handler)
            .build()
            .unwrap();
        TopologyTestDriver::with_wall_clock(&topology, config, 10_000).unwrap()
    }

    #[test]
    fn nulls_timestamps_and_headers_flow_through() {
        let driver = driver(DeserializationHandler::LogAndFail);
        let input = driver.create_input_topic::<String, String>("in");
        let output = driver.create_output_topic::<String, String>("out");
        input.pipe_input("k".into(), "v".into());
        input.pipe_record(Record::from_parts(
            None,
            Some("no key".into()),
            5,
            Headers::new(),
        ));
        input.pipe_record(Record::from_parts(
            Some("gone".into()),
            None,
            6,
            Headers::new(),
        ));
        let first = output.read_record().unwrap();
        assert_eq!(
            (
                first.key.as_deref(),
                first.value.as_deref(),
                first.timestamp
            ),
            (Some("k"), Some("v"), 10_000)
        );
        assert_eq!(first.headers.last_value("seen-by"), Some(&b"tag"[..]));
        let second = output.read_record().unwrap();
        assert_eq!(
            (second.key, second.value.as_deref(), second.timestamp),
            (None, Some("no key"), 5)
        );
        let third = output.read_record().unwrap();
        assert_eq!(
            (third.key.as_deref(), third.value, third.timestamp),
            (Some("gone"), None, 6)
        );
        assert!(output.is_empty());
        assert_eq!(output.read_record(), None);
    }

    #[test]
    fn wall_clock_punctuation_fires_when_the_driver_clock_moves() {
        let driver = driver(DeserializationHandler::LogAndFail);
        let output = driver.create_output_topic::<String, String>("out");
        driver.advance_wall_clock_time(Duration::from_millis(999));
        assert!(output.is_empty());
        driver.advance_wall_clock_time(Duration::from_millis(1));
        assert_eq!(
            output.read_key_values_to_list(),
            [("tick".to_string(), "11000".to_string())]
        );
    }

    #[test]
    fn a_bad_record_is_skipped_and_counted_under_log_and_continue() {
        let driver = driver(DeserializationHandler::LogAndContinue);
        let input = driver.create_input_topic::<String, String>("in");
        let output = driver.create_output_topic::<String, String>("out");
        input.pipe_bytes(Some(b"k"), Some(&[0xc3, 0x28]), 1);
        input.pipe_input_with_timestamp("k".into(), "ok".into(), 2);
        assert_eq!(output.read_values_to_list(), ["ok"]);
        assert_eq!(driver.skipped_records(), 1);
    }

    #[test]
    fn a_bad_record_goes_to_the_dead_letter_topic_with_its_coordinates() {
        let mut builder = StreamsBuilder::new();
        builder.add_source::<String, i64>("in", &["in"]).unwrap();
        builder
            .add_sink::<String, i64>("out", "out", &["in"])
            .unwrap();
        let config = StreamsConfig::builder()
            .application_id("test")
            .deserialization_handler(DeserializationHandler::LogAndContinue)
            .set("errors.dead.letter.queue.topic.name", "dead-letters")
            .build()
            .unwrap();
        let driver =
            TopologyTestDriver::with_wall_clock(&builder.build().unwrap(), config, 0).unwrap();
        let input = driver.create_input_topic::<String, i64>("in");
        input.pipe_input_with_timestamp("a".into(), 1, 1);
        input.pipe_bytes(Some(b"b"), Some(b"xyz"), 2);
        input.pipe_input_with_timestamp("c".into(), 3, 3);

        let out = driver.create_output_topic::<String, i64>("out");
        assert_eq!(out.read_values_to_list(), [1, 3]);
        let dead = driver.create_output_topic::<Vec<u8>, Vec<u8>>("dead-letters");
        let record = dead.read_record().expect("the bad record");
        assert_eq!(
            (
                record.key.as_deref(),
                record.value.as_deref(),
                record.timestamp
            ),
            (Some(&b"b"[..]), Some(&b"xyz"[..]), 2)
        );
        let header = |name| {
            String::from_utf8(record.headers.last_value(name).unwrap_or_default().to_vec()).unwrap()
        };
        assert_eq!(header("__streams.errors.topic"), "in");
        assert_eq!(header("__streams.errors.partition"), "0");
        assert_eq!(header("__streams.errors.offset"), "1");
        assert_eq!(header("__streams.errors.processor.node.id"), "in");
        assert!(
            header("__streams.errors.message").contains("3 bytes, expected 8"),
            "{}",
            header("__streams.errors.message")
        );
        assert!(dead.is_empty());
        assert_eq!(driver.skipped_records(), 1);
    }

    #[test]
    #[should_panic(expected = "cannot deserialize the value of in/0@0")]
    fn a_bad_record_fails_under_log_and_fail() {
        let driver = driver(DeserializationHandler::LogAndFail);
        driver
            .create_input_topic::<String, String>("in")
            .pipe_bytes(None, Some(&[0xff]), 1);
    }
}

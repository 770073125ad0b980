//! The Processor API: the [`Processor`] trait that every operator of a topology is, the
//! [`Record`]s that flow between them, and the [`ProcessorContext`] through which a
//! processor forwards records, learns where a record came from and schedules punctuation.
//!
//! A processor sees one record at a time and forwards zero or more records to its children
//! with direct, typed calls: nothing is boxed or sent through a channel per record. Each
//! task builds its own processor instances from the topology's factories, so processors
//! keep plain `&mut self` state and need no locks.
//!
//! ```
//! use homa::processor::{ProcessError, Processor, ProcessorContext, Record};
//!
//! /// Forwards each order's total, tagged with the partition it came from.
//! struct Totals;
//!
//! impl Processor<String, f64, String, String> for Totals {
//!     fn process(
//!         &mut self,
//!         record: Record<String, f64>,
//!         ctx: &mut ProcessorContext<String, String>,
//!     ) -> Result<(), ProcessError> {
//!         let partition = ctx.record_metadata().map_or(-1, |m| m.partition);
//!         ctx.forward(record.map_value(|total| format!("{total:.2} from {partition}")))
//!     }
//! }
//! ```

mod collector;
pub(crate) mod commit_metadata;
mod context;
mod node;
mod punctuation;
mod record;
mod sink;
mod source;

pub(crate) use collector::{CollectorSink, OutgoingRecord, RecordCollector};
pub use context::ProcessorContext;
pub(crate) use context::{Child, GlobalStores, OpenStore, TaskState};
pub(crate) use node::{Downstream, NodeHandle, ProcessorNode, failed_node, node_error};
pub use punctuation::{PunctuationType, ScheduleId};
pub use record::{Record, RecordMetadata};
pub use sink::StreamPartitioner;
pub(crate) use sink::{SinkNode, SinkTopic, TopicChooser};
pub use source::{DeserializationError, RecordPart, TimestampExtractor};
pub(crate) use source::{RawRecord, ReadRecord, SourceEntry, SourceError, SourceNode};

/// An error a processor returns; it stops the record's processing, and the task's
/// processing-error policy decides what follows.
pub type ProcessError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// An operator of a topology: takes records of `(KIn, VIn)` and forwards records of
/// `(KOut, VOut)` to its children.
///
/// A task calls [`init`](Self::init) once before the first record, [`process`](Self::process)
/// for each record in order, [`punctuate`](Self::punctuate) for each schedule that comes due,
/// and [`close`](Self::close) when the task closes.
pub trait Processor<KIn, VIn, KOut = KIn, VOut = VIn>: 'static {
    /// Prepares the processor, e.g. schedules punctuation. Nothing by default.
    ///
    /// # Errors
    /// An error fails the task.
    fn init(&mut self, ctx: &mut ProcessorContext<KOut, VOut>) -> Result<(), ProcessError> {
        let _ = ctx;
        Ok(())
    }

    /// Processes one record, forwarding what it produces through `ctx`.
    ///
    /// # Errors
    /// An error of this processor or of one downstream of it.
    fn process(
        &mut self,
        record: Record<KIn, VIn>,
        ctx: &mut ProcessorContext<KOut, VOut>,
    ) -> Result<(), ProcessError>;

    /// Called when the schedule `schedule` comes due at `timestamp` (of its clock).
    /// Nothing by default.
    ///
    /// # Errors
    /// An error of this processor or of one downstream of it.
    fn punctuate(
        &mut self,
        schedule: ScheduleId,
        timestamp: i64,
        ctx: &mut ProcessorContext<KOut, VOut>,
    ) -> Result<(), ProcessError> {
        let _ = (schedule, timestamp, ctx);
        Ok(())
    }

    /// Called before each commit: a processor that holds records back writes and forwards
    /// them here, so that the commit covers them. Nothing by default. (The record caches of
    /// the processor's stores are flushed right after, by the store layer.)
    ///
    /// # Errors
    /// An error of this processor or of one downstream of it.
    fn flush(&mut self, ctx: &mut ProcessorContext<KOut, VOut>) -> Result<(), ProcessError> {
        let _ = ctx;
        Ok(())
    }

    /// Releases what the processor holds. Nothing by default.
    fn close(&mut self) {}
}

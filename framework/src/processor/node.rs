//! A processor instance wired into its task: the typed link between a parent and a child.

use std::cell::RefCell;
use std::marker::PhantomData;
use std::sync::Arc;

use super::{ProcessError, Processor, ProcessorContext, Record, ScheduleId};

/// Something a parent forwards `(K, V)` records to: a processor node, or a sink.
pub(crate) trait Downstream<K, V> {
    fn process(&self, record: Record<K, V>) -> Result<(), ProcessError>;
}

/// What a task does with each of its nodes apart from forwarding: init, punctuate, close.
pub(crate) trait NodeHandle {
    fn name(&self) -> &str;
    fn init(&self) -> Result<(), ProcessError>;
    fn punctuate(&self, schedule: ScheduleId, timestamp: i64) -> Result<(), ProcessError>;
    fn flush(&self) -> Result<(), ProcessError>;
    fn close(&self);
}

/// A processor's error, with the node it came from; it reads as the error alone. Only the
/// first node an error passes wraps it, so the innermost processor is the one named.
#[derive(Debug)]
struct NodeFailure {
    node: Arc<str>,
    error: ProcessError,
}

impl std::fmt::Display for NodeFailure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for NodeFailure {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.error.source()
    }
}

/// The processor whose error `error` is, if a processor node's.
pub(crate) fn failed_node(error: &(dyn std::error::Error + 'static)) -> Option<String> {
    error
        .downcast_ref::<NodeFailure>()
        .map(|failure| failure.node.to_string())
}

/// The error a processor node's failure `error` wraps, if it is one.
pub(crate) fn node_error<'a>(
    error: &'a (dyn std::error::Error + 'static),
) -> Option<&'a (dyn std::error::Error + 'static)> {
    let failure = error.downcast_ref::<NodeFailure>()?;
    Some(&*failure.error)
}

/// A processor and its context. A task holds each node once (behind an `Rc`), whatever the
/// number of its parents, so a processor with several parents keeps one state.
pub(crate) struct ProcessorNode<P, KIn, VIn, KOut, VOut> {
    name: Arc<str>,
    inner: RefCell<(P, ProcessorContext<KOut, VOut>)>,
    _input: PhantomData<fn(KIn, VIn)>,
}

impl<P, KIn, VIn, KOut, VOut> ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
{
    pub(crate) fn new(processor: P, ctx: ProcessorContext<KOut, VOut>) -> Self {
        Self {
            name: Arc::from(ctx.node_name()),
            inner: RefCell::new((processor, ctx)),
            _input: PhantomData,
        }
    }
}

impl<P, KIn, VIn, KOut, VOut> Downstream<KIn, VIn> for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
{
    fn process(&self, record: Record<KIn, VIn>) -> Result<(), ProcessError> {
        // A topology is acyclic, so a node is never re-entered while it processes.
        let (processor, ctx) = &mut *self.inner.borrow_mut();
        processor.process(record, ctx).map_err(|error| {
            if error.is::<NodeFailure>() {
                error
            } else {
                Box::new(NodeFailure {
                    node: self.name.clone(),
                    error,
                })
            }
        })
    }
}

impl<P, KIn, VIn, KOut, VOut> NodeHandle for ProcessorNode<P, KIn, VIn, KOut, VOut>
where
    P: Processor<KIn, VIn, KOut, VOut>,
{
    fn name(&self) -> &str {
        &self.name
    }

    fn init(&self) -> Result<(), ProcessError> {
        let (processor, ctx) = &mut *self.inner.borrow_mut();
        processor.init(ctx)
    }

    fn punctuate(&self, schedule: ScheduleId, timestamp: i64) -> Result<(), ProcessError> {
        let (processor, ctx) = &mut *self.inner.borrow_mut();
        processor.punctuate(schedule, timestamp, ctx)
    }

    fn flush(&self) -> Result<(), ProcessError> {
        let (processor, ctx) = &mut *self.inner.borrow_mut();
        processor.flush(ctx)?;
        // Then the caches of its stores, whose listeners forward what they write.
        Ok(ctx.flush_stores()?)
    }

    fn close(&self) {
        self.inner.borrow_mut().0.close();
    }
}

#[cfg(test)]
mod tests {
    use std::rc::Rc;
    use std::time::Duration;

    use super::super::context::{Child, TaskState};
    use super::super::{PunctuationType, RecordMetadata};
    use super::*;

    /// Collects what reaches it.
    #[derive(Default)]
    struct Collect(RefCell<Vec<Record<String, i64>>>);

    impl Downstream<String, i64> for Collect {
        fn process(&self, record: Record<String, i64>) -> Result<(), ProcessError> {
            self.0.borrow_mut().push(record);
            Ok(())
        }
    }

    /// Parses values; odd numbers go to child "odd" only, the others to every child.
    /// Punctuation forwards the count of records seen.
    struct Parse {
        seen: i64,
    }

    impl Processor<String, String, String, i64> for Parse {
        fn init(&mut self, ctx: &mut ProcessorContext<String, i64>) -> Result<(), ProcessError> {
            ctx.schedule(Duration::from_millis(10), PunctuationType::StreamTime);
            Ok(())
        }

        fn process(
            &mut self,
            record: Record<String, String>,
            ctx: &mut ProcessorContext<String, i64>,
        ) -> Result<(), ProcessError> {
            self.seen += 1;
            let offset = ctx
                .record_metadata()
                .ok_or("no metadata while processing")?
                .offset;
            let n: i64 = record.value.as_deref().unwrap_or("0").parse()?;
            let record = record.with_value(Some(n * 100 + offset));
            if n % 2 == 1 {
                ctx.forward_to("odd", record)
            } else {
                ctx.forward(record)
            }
        }

        fn punctuate(
            &mut self,
            _: ScheduleId,
            timestamp: i64,
            ctx: &mut ProcessorContext<String, i64>,
        ) -> Result<(), ProcessError> {
            ctx.forward(Record::new("seen".into(), self.seen, timestamp))
        }
    }

    type Wired = (
        Rc<TaskState>,
        ProcessorNode<Parse, String, String, String, i64>,
        Rc<Collect>,
        Rc<Collect>,
    );

    fn wire() -> Wired {
        let task = Rc::new(TaskState::new("app".into(), 0));
        let (even, odd) = (Rc::new(Collect::default()), Rc::new(Collect::default()));
        let children = vec![
            Child {
                name: "even".into(),
                sink: even.clone() as Rc<dyn Downstream<String, i64>>,
            },
            Child {
                name: "odd".into(),
                sink: odd.clone() as Rc<dyn Downstream<String, i64>>,
            },
        ];
        let ctx = ProcessorContext::new(0, "parse".into(), children, task.clone());
        (task, ProcessorNode::new(Parse { seen: 0 }, ctx), even, odd)
    }

    fn values(collect: &Collect) -> Vec<i64> {
        collect.0.borrow().iter().filter_map(|r| r.value).collect()
    }

    #[test]
    fn forwards_to_all_children_or_a_named_one_with_metadata() {
        let (task, node, even, odd) = wire();
        for (offset, value) in [(0, "2"), (1, "3"), (2, "4")] {
            *task.metadata.borrow_mut() = Some(RecordMetadata {
                topic: "in".into(),
                partition: 0,
                offset,
            });
            node.process(Record::new("k".into(), value.into(), 5))
                .unwrap();
        }
        assert_eq!(values(&even), [200, 402]);
        assert_eq!(values(&odd), [200, 301, 402]);
        assert_eq!(node.name(), "parse");
    }

    #[test]
    fn errors_name_the_missing_child_and_carry_processor_errors() {
        let (task, node, _, _) = wire();
        *task.metadata.borrow_mut() = Some(RecordMetadata {
            topic: "in".into(),
            partition: 0,
            offset: 0,
        });
        let err = node
            .process(Record::new("k".into(), "x".into(), 5))
            .unwrap_err();
        assert!(err.to_string().contains("invalid digit"), "{err}");
        *task.metadata.borrow_mut() = None;
        let err = node
            .process(Record::new("k".into(), "1".into(), 5))
            .unwrap_err();
        assert_eq!(err.to_string(), "no metadata while processing");
    }

    #[test]
    fn punctuation_scheduled_in_init_reaches_the_processor() {
        let (task, node, even, _) = wire();
        node.init().unwrap();
        let due = task
            .scheduler
            .borrow_mut()
            .due(PunctuationType::StreamTime, 12);
        assert_eq!(due.len(), 1);
        let (node_index, id, timestamp) = due[0];
        assert_eq!(node_index, 0);
        node.punctuate(id, timestamp).unwrap();
        let out = even.0.borrow();
        assert_eq!(
            (out[0].key.as_deref(), out[0].value, out[0].timestamp),
            (Some("seen"), Some(0), 12)
        );
    }
}

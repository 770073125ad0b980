//! `homa topics`: create, list, describe and delete topics. The broker does not create a
//! topic on first use (HOMA's brokers run with `auto.create.topics.enable=false`, as
//! production ones do), and the Kafka command-line tools are not among the jars
//! `scripts/kafka` fetches: this is how a newcomer makes the input topics.

use std::time::Duration;

use anyhow::{Context, bail};
use clap::Subcommand;
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};

/// How long a request to the broker may take.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Options of `homa topics`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Kafka's bootstrap servers.
    #[arg(long, env = "HOMA_BOOTSTRAP_SERVERS", default_value = "localhost:9092")]
    bootstrap: String,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Creates topics (an existing one with the same partition count is no error).
    Create {
        /// The topics' names.
        #[arg(required = true)]
        topics: Vec<String>,
        /// Partitions of each.
        #[arg(long, default_value_t = 4)]
        partitions: i32,
        /// Replicas of each partition.
        #[arg(long, default_value_t = 1)]
        replication: i32,
        /// Compacted (`cleanup.policy=compact`): the latest value per key, as a table's
        /// topic is kept.
        #[arg(long)]
        compact: bool,
        /// A topic setting, `KEY=VALUE`; repeatable.
        #[arg(long = "config", value_parser = setting)]
        configs: Vec<(String, String)>,
    },
    /// Lists the topics (internal ones, starting with `__`, only with `--all`).
    List {
        /// Also the broker's internal topics.
        #[arg(long)]
        all: bool,
    },
    /// Shows the partitions of topics: leader, replicas and end offsets.
    Describe {
        /// The topics' names.
        #[arg(required = true)]
        topics: Vec<String>,
    },
    /// Deletes topics (one that does not exist is no error).
    Delete {
        /// The topics' names.
        #[arg(required = true)]
        topics: Vec<String>,
    },
}

fn setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_string(), value.to_string())),
        _ => Err(format!("expected KEY=VALUE, got '{text}'")),
    }
}

/// Creates `topics` at `bootstrap` with `partitions` partitions each (`compact`ed or not),
/// as `homa topics create` does.
pub fn create(
    bootstrap: &str,
    topics: &[&str],
    partitions: i32,
    compact: bool,
) -> anyhow::Result<()> {
    run(&Args {
        bootstrap: bootstrap.to_string(),
        command: Command::Create {
            topics: topics.iter().map(|t| (*t).to_string()).collect(),
            partitions,
            replication: 1,
            compact,
            configs: Vec::new(),
        },
    })
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &args.bootstrap);
    let options = AdminOptions::new().operation_timeout(Some(TIMEOUT));
    match &args.command {
        Command::Create {
            topics,
            partitions,
            replication,
            compact,
            configs,
        } => {
            let admin = admin(&config)?;
            let mut settings: Vec<(&str, &str)> = configs
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            if *compact {
                settings.push(("cleanup.policy", "compact"));
            }
            let new: Vec<NewTopic<'_>> = topics
                .iter()
                .map(|topic| {
                    let replicas = TopicReplication::Fixed(*replication);
                    settings.iter().fold(
                        NewTopic::new(topic, *partitions, replicas),
                        |new, (k, v)| new.set(k, v),
                    )
                })
                .collect();
            let results = futures_block(admin.create_topics(&new, &options))
                .with_context(|| format!("creating {topics:?} at {}", args.bootstrap))?;
            for result in results {
                match result {
                    Ok(topic) => println!("created {topic} ({partitions} partitions)"),
                    Err((topic, rdkafka::types::RDKafkaErrorCode::TopicAlreadyExists)) => {
                        let have = partition_count(&config, &topic)?;
                        if have != *partitions {
                            bail!("topic {topic} exists with {have} partitions, not {partitions}");
                        }
                        println!("{topic} exists already ({have} partitions)");
                    }
                    Err((topic, code)) => bail!("creating topic {topic}: {code}"),
                }
            }
        }
        Command::List { all } => {
            let consumer = consumer(&config)?;
            let metadata = consumer
                .fetch_metadata(None, TIMEOUT)
                .with_context(|| format!("listing the topics at {}", args.bootstrap))?;
            let mut names: Vec<(&str, usize)> = metadata
                .topics()
                .iter()
                .filter(|t| *all || !t.name().starts_with("__"))
                .map(|t| (t.name(), t.partitions().len()))
                .collect();
            names.sort_unstable();
            for (name, partitions) in names {
                println!("{name}\t{partitions} partitions");
            }
        }
        Command::Describe { topics } => {
            let consumer = consumer(&config)?;
            for topic in topics {
                let metadata = consumer
                    .fetch_metadata(Some(topic), TIMEOUT)
                    .with_context(|| format!("describing {topic} at {}", args.bootstrap))?;
                let Some(meta) = metadata
                    .topics()
                    .iter()
                    .find(|t| t.name() == topic && t.error().is_none())
                else {
                    bail!("topic {topic} does not exist at {}", args.bootstrap);
                };
                println!("{topic}: {} partitions", meta.partitions().len());
                for p in meta.partitions() {
                    let (low, high) = consumer
                        .fetch_watermarks(topic, p.id(), TIMEOUT)
                        .with_context(|| format!("the offsets of {topic}/{}", p.id()))?;
                    println!(
                        "  partition {}: leader {}, replicas {:?}, offsets {low}..{high}",
                        p.id(),
                        p.leader(),
                        p.replicas()
                    );
                }
            }
        }
        Command::Delete { topics } => {
            let admin = admin(&config)?;
            let names: Vec<&str> = topics.iter().map(String::as_str).collect();
            let results = futures_block(admin.delete_topics(&names, &options))
                .with_context(|| format!("deleting {topics:?} at {}", args.bootstrap))?;
            for result in results {
                match result {
                    Ok(topic) => println!("deleted {topic}"),
                    Err((topic, rdkafka::types::RDKafkaErrorCode::UnknownTopicOrPartition)) => {
                        println!("{topic} does not exist");
                    }
                    Err((topic, code)) => bail!("deleting topic {topic}: {code}"),
                }
            }
        }
    }
    Ok(())
}

fn admin(config: &ClientConfig) -> anyhow::Result<AdminClient<DefaultClientContext>> {
    config.create().context("creating an admin client")
}

fn consumer(config: &ClientConfig) -> anyhow::Result<BaseConsumer> {
    config.create().context("creating a metadata client")
}

fn partition_count(config: &ClientConfig, topic: &str) -> anyhow::Result<i32> {
    let metadata = consumer(config)?
        .fetch_metadata(Some(topic), TIMEOUT)
        .with_context(|| format!("describing {topic}"))?;
    let count = metadata
        .topics()
        .iter()
        .find(|t| t.name() == topic)
        .map_or(0, |t| t.partitions().len());
    Ok(i32::try_from(count)?)
}

/// Waits for an admin request's answer.
fn futures_block<F: std::future::Future>(future: F) -> F::Output {
    futures_executor::block_on(future)
}

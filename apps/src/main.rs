//! `homa`: the HOMA apps and operator tools, one subcommand each.

use clap::{Parser, Subcommand};

mod analyze;
mod demo;
mod export;
mod import;
mod ingest;
mod topics;
mod workbook;

/// HOMA: stream processing of burger orders and Excel usage on Apache Kafka.
#[derive(Debug, Parser)]
#[command(name = "homa", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the analysis pipelines as one Kafka Streams application.
    Analyze(analyze::Args),
    /// Run HOMA end to end on an embedded default, with no broker to install.
    Demo(demo::Args),
    /// Keep the results workbook in step with the analysis (sheets, tables, charts).
    ExcelExport(export::Args),
    /// A sheet into a compacted topic (the menu, the employees), removed rows deleted.
    ExcelImport(import::Args),
    /// Records into their topics: a generated workload, or a CSV or JSON-lines file.
    Ingest(ingest::Args),
    /// Create, list, describe and delete topics.
    Topics(topics::Args),
}

fn main() -> anyhow::Result<()> {
    let command = Cli::parse().command;
    // HOMA's warnings (records skipped or dropped, each with where it was) on stderr;
    // `RUST_LOG` (e.g. `homa=info`) shows more. The demo sums up the records it drops for
    // being late instead of logging each (`RUST_LOG=warn` logs them).
    let default = match command {
        Command::Demo(_) => "warn,homa::processor::context=error",
        _ => "warn",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    match command {
        Command::Analyze(args) => analyze::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::ExcelExport(args) => export::run(&args),
        Command::ExcelImport(args) => import::run(&args),
        Command::Ingest(args) => ingest::run(&args),
        Command::Topics(args) => topics::run(&args),
    }
}

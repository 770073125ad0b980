//! `homa demo`: the first thing a newcomer runs.
//!
//! The end-to-end pipeline (ingest, analyze, export on an embedded default) comes with the
//! engine. Until then the demo says so, and checks what a first run can check: that the
//! native parts HOMA is built on, librdkafka and RocksDB, were built and work here.

use std::path::PathBuf;

use anyhow::Context;

/// Options of `homa demo`.
#[derive(Debug, clap::Args)]
pub struct Args {
    /// Directory for the demo's state; a fresh temporary directory when not given.
    #[arg(long, value_name = "DIR")]
    state_dir: Option<PathBuf>,
}

pub fn run(args: &Args) -> anyhow::Result<()> {
    println!("HOMA {}", env!("CARGO_PKG_VERSION"));
    println!(
        "The end-to-end demo pipeline (burger orders in, windowed revenue out) is not built \
         yet;\nthis demo checks the native libraries HOMA runs on."
    );
    println!(
        "  librdkafka {}: linked",
        homa::native::librdkafka_version()
    );

    let temp;
    let dir = match &args.state_dir {
        Some(dir) => dir.clone(),
        None => {
            temp = tempfile::tempdir().context("creating a temporary state directory")?;
            temp.path().join("self-check")
        }
    };
    homa::native::check_rocksdb(&dir)?;
    println!(
        "  RocksDB: wrote, flushed and read back a key in {}",
        dir.display()
    );
    println!("All native parts work. Run the tests with the README's test command.");
    Ok(())
}

//! The benchmark's quick mode against the test broker: every workload on every system that
//! runs it (Kafka Streams built and started by the harness), each output checked complete
//! and correct. It proves the harness works; its timings are not looked at.

use std::process::Command;

use homa_integration_tests::{kafka, repo_root};

#[test]
fn quick_mode_runs_every_system_and_checks_every_output() {
    let results = tempfile::tempdir().expect("a results directory");
    let output = Command::new(env!("CARGO_BIN_EXE_homa-bench"))
        .args(["run", "--quick", "--bootstrap", kafka().bootstrap_servers()])
        .arg("--results-dir")
        .arg(results.path())
        .env("CARGO_MANIFEST_DIR", repo_root().join("benchmarks"))
        .output()
        .expect("homa-bench runs");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "homa-bench run --quick failed ({}):\n{stderr}\n{stdout}",
        output.status
    );
    assert!(
        stdout.contains(
            "quick mode: 25 throughput, 4 restore and 7 latency runs, every output complete and correct"
        ),
        "{stdout}"
    );
    for row in [
        "| W0 passthrough | rdkafka |",
        "| W0 passthrough | homa |",
        "| W0 passthrough | kafka-streams |",
        "| W1 filter, map_values | homa |",
        "| W1 filter, map_values | kafka-streams |",
        "| W2 group_by_key, aggregate(sum) | homa |",
        "| W2 group_by_key, aggregate(sum) | kafka-streams |",
        "| W2-NOCACHE W2, record cache off | homa |",
        "| W2-NOCACHE W2, record cache off | kafka-streams |",
        "| W3 tumbling 60 s windows, count | homa |",
        "| W3 tumbling 60 s windows, count | kafka-streams |",
        "| W3-HOPPING-NOCACHE W3-HOPPING, record cache off | homa |",
        "| W3-HOPPING-NOCACHE W3-HOPPING, record cache off | kafka-streams |",
        "| W1-EOS W1 under exactly_once_v2 | homa |",
        "| W1-EOS W1 under exactly_once_v2 | kafka-streams |",
        "| W2-EOS W2 under exactly_once_v2 | homa |",
        "| W2-EOS W2 under exactly_once_v2 | kafka-streams |",
        "| W1 | kafka-streams | 1000 |",
        "| W1-EOS | homa | 1000 |",
        "| W2-EOS | state directory kept | kafka-streams |",
        "## Restore",
    ] {
        assert!(stdout.contains(row), "no row {row} in:\n{stdout}");
    }
    let reports: Vec<_> = std::fs::read_dir(results.path())
        .expect("the results directory")
        .collect();
    assert_eq!(reports.len(), 1, "one report written");
}

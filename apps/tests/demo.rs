//! `homa demo` end to end on its embedded Kafka (no broker): an hour of simulated data
//! through import, ingest, analysis and export; the workbook it leaves is read back.

use std::process::Command;

use calamine::{Reader, Xlsx, open_workbook};

#[test]
fn the_demo_runs_the_job_end_to_end_on_the_embedded_kafka() {
    let dir = tempfile::tempdir().expect("a directory");
    let output = dir.path().join("homa-demo");
    let run = Command::new(env!("CARGO_BIN_EXE_homa"))
        .args(["demo", "--hours", "1", "--pace", "3s", "--output"])
        .arg(&output)
        .output()
        .expect("homa demo runs");
    let text =
        String::from_utf8_lossy(&run.stdout).into_owned() + &String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{text}");
    for stage in [
        "kafka",
        "workbooks",
        "excel-import",
        "ingest",
        "analyze",
        "excel-export",
    ] {
        assert!(text.contains(&format!("==> {stage}")), "{stage}: {text}");
    }
    assert!(text.contains("16 menu items, 40 employees"), "{text}");
    assert!(text.contains("Revenue per store"), "{text}");
    assert!(text.contains("late data"), "{text}");
    assert!(text.contains("Classic Burger"), "{text}");
    for file in [
        "menu.xlsx",
        "employees.xlsx",
        "topology.txt",
        "topology.mmd",
    ] {
        assert!(output.join(file).is_file(), "{file}: {text}");
    }
    let mut workbook: Xlsx<_> =
        open_workbook(output.join("homa-results.xlsx")).expect("the results workbook");
    let sheets = workbook.sheet_names();
    assert!(sheets.len() >= 6, "{sheets:?}");
    // Every store has closed minutes of revenue, each a row under the header.
    let revenue = workbook.worksheet_range(&sheets[1]).expect("a sheet");
    assert!(
        revenue.height() > 5 * 10,
        "{} rows of {}",
        revenue.height(),
        sheets[1]
    );
}

//! `homa ingest` against the real broker: a generated workload lands in its four topics;
//! a CSV file with bad rows writes the good ones and reports each bad one with its line
//! and column, to a rejects file or (by default) as a failure; a sheet's wrong-typed cell is
//! reported by sheet, row and cell.

mod common;

use homa_integration_tests::{kafka, unique_name};

fn homa(args: &[&str]) -> (bool, String) {
    common::homa("ingest", args)
}

/// `homa ingest file PATH --kind KIND --topic TOPIC --on-error rejects=REJECTS`.
fn ingest_with_rejects(
    path: &str,
    kind: &str,
    topic: &str,
    rejects: &std::path::Path,
) -> (bool, String) {
    let on_error = format!("rejects={}", rejects.display());
    let args = ["file", path, "--kind", kind, "--topic", topic];
    homa(&[&args[..], &["--on-error", &on_error]].concat())
}

fn records(topic: &str) -> i64 {
    kafka()
        .end_offsets(topic, 4)
        .expect("end offsets")
        .iter()
        .sum()
}

#[test]
fn a_generated_workload_lands_in_its_topics() {
    let prefix = format!("{}-", unique_name("gen"));
    for name in ["orders", "excel-usage", "menu", "employees"] {
        kafka()
            .create_topic_named(&format!("{prefix}{name}"), 4)
            .expect("a topic");
    }
    let (ok, text) = homa(&[
        "generate",
        "--hours",
        "1",
        "--count",
        "2000",
        "--topic-prefix",
        &prefix,
    ]);
    assert!(ok, "{text}");
    assert!(text.contains("generated 2000 orders and actions"), "{text}");
    let events = records(&format!("{prefix}orders")) + records(&format!("{prefix}excel-usage"));
    assert_eq!(events, 2000);
    assert_eq!(records(&format!("{prefix}menu")), 16);
    assert_eq!(records(&format!("{prefix}employees")), 40);
}

#[test]
fn bad_csv_rows_are_reported_where_they_are_and_nothing_else_is_lost() {
    let topic = unique_name("csv-orders");
    kafka().create_topic_named(&topic, 4).expect("a topic");
    let dir = tempfile::tempdir().expect("a directory");
    let csv = dir.path().join("orders.csv");
    std::fs::write(
        &csv,
        "order,store,customer,channel,item,quantity,time\n\
         o1,s01,c1,counter,i01,2,1000\n\
         o1,s01,c1,counter,i08,1,1000\n\
         o2,s02,c2,app,i03,two,2000\n\
         o3,s02,c3,kiosk,i03,1,3000\n\
         o4,s03,c4,delivery,i05,1,4000\n",
    )
    .expect("a CSV file");
    let path = csv.to_string_lossy().into_owned();
    // By default the first bad row stops the ingestion, naming where it is.
    let (ok, text) = homa(&["file", &path, "--kind", "orders", "--topic", &topic]);
    assert!(!ok, "{text}");
    assert!(text.contains("orders.csv:4 column quantity"), "{text}");
    let rejects = dir.path().join("rejects.tsv");
    let (ok, text) = ingest_with_rejects(&path, "orders", &topic, &rejects);
    assert!(ok, "{text}");
    assert!(
        text.contains("5 rows read, 2 records written") && text.contains("2 rejected"),
        "{text}"
    );
    let rejected = std::fs::read_to_string(&rejects).expect("the rejects file");
    assert!(
        rejected.contains("orders.csv:4 column quantity"),
        "{rejected}"
    );
    assert!(
        rejected.contains("orders.csv:5 column channel"),
        "{rejected}"
    );
    // The first run stopped before it wrote anything; the second wrote o1 (its two lines
    // one order) and o4.
    assert_eq!(records(&topic), 2);
}

#[test]
fn a_wrong_typed_cell_of_a_sheet_is_reported_by_sheet_row_and_cell() {
    let topic = unique_name("xlsx-usage");
    kafka().create_topic_named(&topic, 4).expect("a topic");
    let dir = tempfile::tempdir().expect("a directory");
    let path = dir.path().join("usage.xlsx");
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Usage").expect("a sheet");
    let header = ["user", "department", "workbook", "action", "cells", "time"];
    for (c, name) in (0u16..).zip(header) {
        sheet.write_string(0, c, name).expect("a header");
    }
    let rows: [(&str, &str, Option<f64>); 3] = [
        ("u01", "edit", Some(12.0)),
        ("u02", "formula", None),
        ("u03", "save", Some(1.0)),
    ];
    for (r, (user, action, cells)) in (1u32..).zip(rows) {
        sheet.write_string(r, 0, user).expect("a cell");
        sheet.write_string(r, 1, "finance").expect("a cell");
        sheet.write_string(r, 2, "budget.xlsx").expect("a cell");
        sheet.write_string(r, 3, action).expect("a cell");
        match cells {
            Some(cells) => sheet.write_number(r, 4, cells).expect("a cell"),
            None => sheet.write_string(r, 4, "many").expect("a cell"),
        };
        sheet
            .write_number(r, 5, 1_000.0 * f64::from(r))
            .expect("a cell");
    }
    workbook.save(&path).expect("the workbook");
    let path = path.to_string_lossy().into_owned();
    let rejects = dir.path().join("rejects.tsv");
    let (ok, text) = ingest_with_rejects(&path, "usage", &topic, &rejects);
    assert!(ok, "{text}");
    assert!(
        text.contains("3 rows read, 2 records written") && text.contains("1 rejected"),
        "{text}"
    );
    let rejected = std::fs::read_to_string(&rejects).expect("the rejects file");
    assert!(
        rejected.contains("usage.xlsx sheet \"Usage\" row 3 column cells (cell E3)"),
        "{rejected}"
    );
    assert_eq!(records(&topic), 2);
}

//! `homa excel-import` against the real broker: a menu sheet into its compacted topic; a
//! row removed from the sheet becomes a tombstone; a wrong-typed cell is reported with
//! its sheet, row and column.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use homa_integration_tests::{kafka, unique_name};
use rdkafka::Message;

fn homa(args: &[&str]) -> (bool, String) {
    common::homa("excel-import", args)
}

/// A workbook with a sheet "Menu" of these rows (id, name, category, price).
fn menu(path: &Path, rows: &[(&str, &str, &str, Option<f64>)]) {
    let mut workbook = rust_xlsxwriter::Workbook::new();
    let sheet = workbook.add_worksheet().set_name("Menu").expect("a sheet");
    for (c, header) in ["id", "name", "category", "price"].iter().enumerate() {
        sheet.write_string(0, c as u16, *header).expect("a header");
    }
    for (r, (id, name, category, price)) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        sheet.write_string(r, 0, *id).expect("a cell");
        sheet.write_string(r, 1, *name).expect("a cell");
        sheet.write_string(r, 2, *category).expect("a cell");
        match price {
            Some(price) => sheet.write_number(r, 3, *price).expect("a cell"),
            None => sheet.write_string(r, 3, "cheap").expect("a cell"),
        };
    }
    workbook.save(path).expect("the workbook");
}

/// The last value of each key of `topic` (none: a tombstone).
fn latest(topic: &str) -> BTreeMap<String, Option<String>> {
    let mut latest = BTreeMap::new();
    kafka()
        .read_to_end(topic, 4, |m| {
            let key = String::from_utf8_lossy(m.key().unwrap_or_default()).into_owned();
            latest.insert(
                key,
                m.payload().map(|v| String::from_utf8_lossy(v).into_owned()),
            );
            Ok(())
        })
        .expect("the topic");
    latest
}

#[test]
fn the_topic_matches_the_sheet_after_each_import() {
    let topic = unique_name("menu");
    kafka().create_topic_named(&topic, 4).expect("a topic");
    let dir = tempfile::tempdir().expect("a dir");
    let path = dir.path().join("menu.xlsx");
    let file = path.to_string_lossy().into_owned();
    let args = ["--kind", "menu", "--sheet", "Menu", "--topic", &topic];
    menu(
        &path,
        &[
            ("i01", "Classic Burger", "burgers", Some(5.99)),
            ("i02", "Fries", "sides", Some(2.49)),
            ("i03", "Cola", "drinks", Some(1.99)),
        ],
    );
    let (ok, text) = homa(&[&[file.as_str()][..], &args[..]].concat());
    assert!(
        ok && text.contains("3 rows imported") && text.contains("0 removed"),
        "{text}"
    );
    menu(
        &path,
        &[
            ("i01", "Classic Burger", "burgers", Some(6.49)),
            ("i03", "Cola", "drinks", Some(1.99)),
        ],
    );
    let (ok, text) = homa(&[&[file.as_str()][..], &args[..]].concat());
    assert!(
        ok && text.contains("2 rows imported") && text.contains("1 removed"),
        "{text}"
    );
    let latest = latest(&topic);
    assert_eq!(latest["i02"], None, "the removed row is a tombstone");
    assert!(
        latest["i01"]
            .as_deref()
            .is_some_and(|v| v.contains("\"price\":649")),
        "{latest:?}"
    );
    assert!(latest["i03"].is_some());

    menu(
        &path,
        &[
            ("i01", "Classic Burger", "burgers", Some(5.99)),
            ("i04", "Shake", "drinks", None),
        ],
    );
    let (ok, text) = homa(&[&[file.as_str()][..], &args[..]].concat());
    assert!(
        !ok && text.contains("sheet Menu row 3 column price"),
        "{text}"
    );
}

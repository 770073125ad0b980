//! The results workbook `homa excel-export` keeps: a sheet per result, each an Excel table
//! (styled header, number formats, frozen header row, autofilter), native charts (revenue
//! over time, top items, department use) and a Summary sheet with the headline figures and
//! when the data was last updated.
//!
//! A workbook is written to a temporary file beside it and renamed over it, so that a
//! reader never sees half a file; one open in Excel (its lock file `~$<name>` beside it) is
//! not overwritten: a numbered copy is written, and said so.

use std::path::{Path, PathBuf};

use anyhow::Context;
use rust_xlsxwriter::{
    Chart, ChartType, Format, FormatAlign, Table, TableColumn, TableStyle, Workbook, Worksheet,
};

/// The results, as their tables hold them now.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Results {
    /// (store, minute start in ms, revenue in cents, orders).
    pub revenue: Vec<(String, i64, i64, u64)>,
    /// (channel, hour start in ms, revenue in cents, orders), hours every 15 minutes.
    pub channels: Vec<(String, i64, i64, u64)>,
    /// (hour start in ms, rank, item id, name, quantity).
    pub top_items: Vec<(i64, u32, String, String, u64)>,
    /// (user, start ms, end ms, actions, edits, formulas).
    pub sessions: Vec<(String, i64, i64, u64, u64, u64)>,
    /// (department, day start ms, actions, edits, formulas, users).
    pub departments: Vec<(String, i64, u64, u64, u64, u64)>,
}

/// An Excel date and time (days since 1899-12-30) of `ms` since the epoch.
fn excel_time(ms: i64) -> f64 {
    ms as f64 / 86_400_000.0 + 25_569.0
}

/// Formats of the cells.
struct Formats {
    header: Format,
    money: Format,
    time: Format,
    day: Format,
    duration: Format,
    count: Format,
}

impl Formats {
    fn new() -> Self {
        Self {
            header: Format::new()
                .set_bold()
                .set_align(FormatAlign::Center)
                .set_background_color("1F4E78")
                .set_font_color("FFFFFF"),
            money: Format::new().set_num_format("\"$\"#,##0.00"),
            time: Format::new().set_num_format("yyyy-mm-dd hh:mm"),
            day: Format::new().set_num_format("yyyy-mm-dd"),
            duration: Format::new().set_num_format("[h]:mm:ss"),
            count: Format::new().set_num_format("#,##0"),
        }
    }
}

/// A cell's value.
enum Cell<'a> {
    Text(&'a str),
    Money(i64),
    Time(i64),
    Day(i64),
    /// ms.
    Duration(i64),
    Count(u64),
}

/// Writes a sheet named `name` holding `rows` under `headers` as one Excel table.
fn table_sheet<'a>(
    workbook: &mut Workbook,
    formats: &Formats,
    (name, headers): (&str, &[&str]),
    rows: impl Iterator<Item = Vec<Cell<'a>>>,
) -> anyhow::Result<u32> {
    let sheet = workbook.add_worksheet().set_name(name)?;
    // Printed (or made a PDF) landscape, a page wide: the columns and the chart together.
    sheet.set_landscape().set_print_fit_to_pages(1, 0);
    let mut count = 0_u32;
    for (r, row) in rows.enumerate() {
        let r = u32::try_from(r + 1)?;
        for (c, cell) in row.iter().enumerate() {
            let c = u16::try_from(c)?;
            match cell {
                Cell::Text(text) => sheet.write_string(r, c, *text)?,
                Cell::Money(cents) => {
                    sheet.write_number_with_format(r, c, *cents as f64 / 100.0, &formats.money)?
                }
                Cell::Time(ms) => {
                    sheet.write_number_with_format(r, c, excel_time(*ms), &formats.time)?
                }
                Cell::Day(ms) => {
                    sheet.write_number_with_format(r, c, excel_time(*ms), &formats.day)?
                }
                Cell::Duration(ms) => sheet.write_number_with_format(
                    r,
                    c,
                    *ms as f64 / 86_400_000.0,
                    &formats.duration,
                )?,
                Cell::Count(n) => {
                    sheet.write_number_with_format(r, c, *n as f64, &formats.count)?
                }
            };
        }
        count = r;
    }
    let columns: Vec<TableColumn> = headers
        .iter()
        .map(|h| {
            TableColumn::new()
                .set_header(*h)
                .set_header_format(&formats.header)
        })
        .collect();
    let table = Table::new()
        .set_columns(&columns)
        .set_style(TableStyle::Medium2)
        .set_name(name.replace(' ', ""));
    let last_col = u16::try_from(headers.len().saturating_sub(1))?;
    // A table needs a row below its header.
    sheet.add_table(0, 0, count.max(1), last_col, &table)?;
    sheet.set_freeze_panes(1, 0)?;
    for c in 0..=last_col {
        sheet.set_column_width(c, 18)?;
    }
    Ok(count)
}

/// A chart of `kind` of the sheet's column `values` against column `categories`, rows
/// `1..=rows`, placed on `sheet` at its column `at`.
fn chart(
    sheet: &mut Worksheet,
    sheet_name: &str,
    (kind, title): (ChartType, &str),
    (categories, values, rows): (u16, u16, u32),
    at: u16,
) -> anyhow::Result<()> {
    let mut chart = Chart::new(kind);
    chart.title().set_name(title);
    chart
        .add_series()
        .set_name(title)
        .set_categories((sheet_name, 1, categories, rows.max(1), categories))
        .set_values((sheet_name, 1, values, rows.max(1), values));
    chart.legend().set_hidden();
    sheet.insert_chart(1, at, &chart)?;
    Ok(())
}

/// Writes `results` as the workbook at `path`, last updated at `updated_ms`: to a
/// temporary file renamed over it, or to a numbered copy while the workbook is open in
/// Excel. Returns the file written.
pub fn write(path: &Path, results: &Results, updated_ms: i64) -> anyhow::Result<PathBuf> {
    let mut workbook = Workbook::new();
    let formats = Formats::new();
    let summary = workbook.add_worksheet().set_name("Summary")?;
    let revenue: i64 = results.revenue.iter().map(|r| r.2).sum();
    let orders: u64 = results.revenue.iter().map(|r| r.3).sum();
    let best = results.top_items.iter().max_by_key(|t| t.4);
    summary.write_string_with_format(0, 0, "Figure", &formats.header)?;
    summary.write_string_with_format(0, 1, "Value", &formats.header)?;
    summary.write_string(1, 0, "Revenue")?;
    summary.write_number_with_format(1, 1, revenue as f64 / 100.0, &formats.money)?;
    summary.write_string(2, 0, "Orders")?;
    summary.write_number_with_format(2, 1, orders as f64, &formats.count)?;
    summary.write_string(3, 0, "Best seller (an hour)")?;
    summary.write_string(3, 1, best.map_or("-", |t| t.3.as_str()))?;
    summary.write_string(4, 0, "Excel sessions")?;
    summary.write_number_with_format(4, 1, results.sessions.len() as f64, &formats.count)?;
    summary.write_string(5, 0, "Last updated")?;
    summary.write_number_with_format(5, 1, excel_time(updated_ms), &formats.time)?;
    summary.set_column_width(0, 24)?;
    summary.set_column_width(1, 20)?;

    let rows = table_sheet(
        &mut workbook,
        &formats,
        ("Revenue", &["Store", "Minute", "Revenue", "Orders"]),
        results.revenue.iter().map(|(store, start, cents, orders)| {
            vec![
                Cell::Text(store),
                Cell::Time(*start),
                Cell::Money(*cents),
                Cell::Count(*orders),
            ]
        }),
    )?;
    let sheet = workbook.worksheet_from_name("Revenue")?;
    chart(
        sheet,
        "Revenue",
        (ChartType::Line, "Revenue over time"),
        (1, 2, rows),
        5,
    )?;

    table_sheet(
        &mut workbook,
        &formats,
        ("Channels", &["Channel", "Hour from", "Revenue", "Orders"]),
        results
            .channels
            .iter()
            .map(|(channel, start, cents, orders)| {
                vec![
                    Cell::Text(channel),
                    Cell::Time(*start),
                    Cell::Money(*cents),
                    Cell::Count(*orders),
                ]
            }),
    )?;
    let rows = table_sheet(
        &mut workbook,
        &formats,
        ("Top items", &["Hour", "Rank", "Item", "Name", "Quantity"]),
        results
            .top_items
            .iter()
            .map(|(hour, rank, item, name, quantity)| {
                vec![
                    Cell::Time(*hour),
                    Cell::Count(u64::from(*rank)),
                    Cell::Text(item),
                    Cell::Text(name),
                    Cell::Count(*quantity),
                ]
            }),
    )?;
    let sheet = workbook.worksheet_from_name("Top items")?;
    chart(
        sheet,
        "Top items",
        (ChartType::Bar, "Top items"),
        (3, 4, rows.min(10)),
        6,
    )?;

    table_sheet(
        &mut workbook,
        &formats,
        (
            "Excel sessions",
            &["User", "Start", "Duration", "Actions", "Edits", "Formulas"],
        ),
        results
            .sessions
            .iter()
            .map(|(user, start, end, actions, edits, formulas)| {
                vec![
                    Cell::Text(user),
                    Cell::Time(*start),
                    Cell::Duration(end - start),
                    Cell::Count(*actions),
                    Cell::Count(*edits),
                    Cell::Count(*formulas),
                ]
            }),
    )?;
    let rows = table_sheet(
        &mut workbook,
        &formats,
        (
            "Departments",
            &["Department", "Day", "Actions", "Edits", "Formulas", "Users"],
        ),
        results
            .departments
            .iter()
            .map(|(department, day, actions, edits, formulas, users)| {
                vec![
                    Cell::Text(department),
                    Cell::Day(*day),
                    Cell::Count(*actions),
                    Cell::Count(*edits),
                    Cell::Count(*formulas),
                    Cell::Count(*users),
                ]
            }),
    )?;
    let sheet = workbook.worksheet_from_name("Departments")?;
    chart(
        sheet,
        "Departments",
        (ChartType::Column, "Department use"),
        (0, 2, rows),
        7,
    )?;

    let target = match lock_file(path).exists() {
        false => path.to_path_buf(),
        true => {
            let copy = numbered_copy(path);
            eprintln!(
                "{} is open in Excel ({} exists): writing {} instead",
                path.display(),
                lock_file(path).display(),
                copy.display()
            );
            copy
        }
    };
    let dir = target
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let temporary = tempfile::Builder::new()
        .prefix(".homa-export-")
        .suffix(".xlsx")
        .tempfile_in(dir)
        .with_context(|| format!("a temporary file in {}", dir.display()))?;
    workbook
        .save(temporary.path())
        .with_context(|| format!("writing {}", temporary.path().display()))?;
    temporary
        .persist(&target)
        .with_context(|| format!("renaming the workbook to {}", target.display()))?;
    Ok(target)
}

/// The lock file Excel keeps beside a workbook it has open: `~$<name>`.
fn lock_file(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!("~${name}"))
}

/// The first `<stem> (n).xlsx` beside `path` that does not exist.
fn numbered_copy(path: &Path) -> PathBuf {
    let stem = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    (1..)
        .map(|n| path.with_file_name(format!("{stem} ({n}).xlsx")))
        .find(|p| !p.exists())
        .unwrap_or_else(|| path.to_path_buf())
}

#[cfg(test)]
mod tests {
    use calamine::{Data, Reader, Xlsx, open_workbook};

    use super::*;

    fn results() -> Results {
        let minute = 1_796_119_200_000;
        Results {
            revenue: vec![
                ("s01".into(), minute, 1_299, 2),
                ("s01".into(), minute + 60_000, 599, 1),
            ],
            channels: vec![("app".into(), minute, 1_898, 3)],
            top_items: vec![
                (minute, 1, "i01".into(), "Classic Burger".into(), 3),
                (minute, 2, "i08".into(), "Fries".into(), 1),
            ],
            sessions: vec![("u01".into(), minute, minute + 90_000, 5, 2, 1)],
            departments: vec![("finance".into(), minute, 5, 2, 1, 1)],
        }
    }

    #[test]
    fn a_workbook_reads_back_with_its_figures() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.xlsx");
        let written = write(&path, &results(), 1_796_119_260_000).unwrap();
        assert_eq!(written, path);
        let mut workbook: Xlsx<_> = open_workbook(&path).unwrap();
        assert_eq!(
            workbook.sheet_names(),
            [
                "Summary",
                "Revenue",
                "Channels",
                "Top items",
                "Excel sessions",
                "Departments"
            ]
        );
        let revenue = workbook.worksheet_range("Revenue").unwrap();
        assert_eq!(
            revenue.get_value((0, 0)),
            Some(&Data::String("Store".into()))
        );
        assert_eq!(revenue.get_value((1, 2)), Some(&Data::Float(12.99)));
        assert_eq!(revenue.get_value((2, 3)), Some(&Data::Float(1.0)));
        let summary = workbook.worksheet_range("Summary").unwrap();
        assert_eq!(summary.get_value((1, 1)), Some(&Data::Float(18.98)));
        assert_eq!(
            summary.get_value((3, 1)),
            Some(&Data::String("Classic Burger".into()))
        );
    }

    #[test]
    fn a_workbook_open_in_excel_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("results.xlsx");
        std::fs::write(lock_file(&path), b"").unwrap();
        let written = write(&path, &results(), 0).unwrap();
        assert_eq!(written, dir.path().join("results (1).xlsx"));
        assert!(!path.exists());
    }
}

//! A task's checkpoint file: how far each changelog partition is in the task's persistent
//! stores, written after a clean commit, so that a restart replays only the tail.
//!
//! The file is `<task dir>/.checkpoint`, text, as Kafka Streams' `OffsetCheckpoint`: a
//! version line (`0`), the number of entries, then one `topic partition offset` line each.
//! The offset is the next one to read. The file is replaced atomically (written aside, then
//! renamed).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use super::StoreError;

/// The name of the checkpoint file in a task directory.
pub const CHECKPOINT_FILE: &str = ".checkpoint";

/// Changelog offsets by (topic, partition): the next offset to restore from.
pub type Offsets = BTreeMap<(String, i32), i64>;

fn io<'a>(path: &'a Path, operation: &'static str) -> impl Fn(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io {
        store: String::new(),
        path: path.to_path_buf(),
        operation,
        source,
    }
}

fn corrupt(path: &Path, line: usize, why: &str) -> StoreError {
    StoreError::Io {
        store: String::new(),
        path: path.to_path_buf(),
        operation: "reading the checkpoint",
        source: std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("line {line}: {why}"),
        ),
    }
}

/// The checkpoint file of the task directory `dir`.
pub fn path(dir: &Path) -> PathBuf {
    dir.join(CHECKPOINT_FILE)
}

/// Reads the checkpoint of task directory `dir`; no file is no offsets.
///
/// # Errors
/// When the file cannot be read or is not a checkpoint (naming the line).
pub fn read(dir: &Path) -> Result<Offsets, StoreError> {
    let path = path(dir);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Offsets::new()),
        Err(e) => return Err(io(&path, "reading the checkpoint")(e)),
    };
    let mut lines = text.lines().enumerate().map(|(i, l)| (i + 1, l));
    match lines.next() {
        Some((_, "0")) => {}
        Some((n, other)) => return Err(corrupt(&path, n, &format!("version {other:?}, not 0"))),
        None => return Err(corrupt(&path, 1, "empty")),
    }
    let count: usize = match lines.next() {
        Some((n, count)) => count
            .parse()
            .map_err(|_| corrupt(&path, n, &format!("count {count:?}")))?,
        None => return Err(corrupt(&path, 2, "no entry count")),
    };
    let mut offsets = Offsets::new();
    for (n, line) in lines.by_ref().take(count) {
        let fields: Vec<&str> = line.split(' ').collect();
        let [topic, partition, offset] = fields[..] else {
            return Err(corrupt(&path, n, "not `topic partition offset`"));
        };
        let partition = partition
            .parse()
            .map_err(|_| corrupt(&path, n, &format!("partition {partition:?}")))?;
        let offset = offset
            .parse()
            .map_err(|_| corrupt(&path, n, &format!("offset {offset:?}")))?;
        offsets.insert((topic.to_string(), partition), offset);
    }
    if offsets.len() != count {
        return Err(corrupt(&path, count + 2, "fewer entries than counted"));
    }
    Ok(offsets)
}

/// Replaces the checkpoint of task directory `dir` with `offsets`.
///
/// # Errors
/// When the file cannot be written.
pub fn write(dir: &Path, offsets: &Offsets) -> Result<(), StoreError> {
    let path = path(dir);
    let mut text = format!("0\n{}\n", offsets.len());
    for ((topic, partition), offset) in offsets {
        text.push_str(&format!("{topic} {partition} {offset}\n"));
    }
    let aside = dir.join(format!("{CHECKPOINT_FILE}.tmp"));
    std::fs::write(&aside, text).map_err(io(&aside, "writing the checkpoint"))?;
    std::fs::rename(&aside, &path).map_err(io(&path, "replacing the checkpoint"))
}

/// Removes the checkpoint of task directory `dir`, if any (before state that it describes
/// changes without a commit, e.g. when processing starts after a restore).
///
/// # Errors
/// When the file exists and cannot be removed.
pub fn remove(dir: &Path) -> Result<(), StoreError> {
    let path = path(dir);
    match std::fs::remove_file(&path) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            Err(io(&path, "removing the checkpoint")(e))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_survive_a_write_and_read() {
        let dir = tempfile::tempdir().unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
        let mut offsets = Offsets::new();
        offsets.insert(("app-counts-changelog".into(), 3), 1200);
        offsets.insert(("app-other-changelog".into(), 3), 0);
        write(dir.path(), &offsets).unwrap();
        assert_eq!(read(dir.path()).unwrap(), offsets);
        assert_eq!(
            std::fs::read_to_string(path(dir.path())).unwrap(),
            "0\n2\napp-counts-changelog 3 1200\napp-other-changelog 3 0\n"
        );
        remove(dir.path()).unwrap();
        remove(dir.path()).unwrap();
        assert!(read(dir.path()).unwrap().is_empty());
    }

    #[test]
    fn a_damaged_checkpoint_names_its_file_and_line() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(path(dir.path()), "0\n2\nt 0 5\nt x 7\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains(".checkpoint"), "{err}");
        assert!(err.contains("line 4: partition \"x\""), "{err}");
        std::fs::write(path(dir.path()), "1\n0\n").unwrap();
        let err = read(dir.path()).unwrap_err().to_string();
        assert!(err.contains("line 1: version \"1\", not 0"), "{err}");
    }
}

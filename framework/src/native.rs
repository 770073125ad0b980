//! The native libraries HOMA links, their versions, and a self-check of each.
//!
//! `homa demo` runs these checks so that a first run shows whether the C and C++ parts
//! (librdkafka, RocksDB) were built and linked correctly on this machine.

use std::path::Path;

use crate::{Error, Result};

/// The version of the librdkafka library linked into this binary, e.g. `"2.12.1"`.
pub fn librdkafka_version() -> String {
    rdkafka::util::get_rdkafka_version().1
}

/// Opens (or creates) a RocksDB database in `dir`, writes a key, flushes it to disk, reads
/// it back and deletes it.
///
/// # Errors
/// [`Error::Store`] when RocksDB fails, [`Error::StoreMismatch`] when the value read back is
/// not the one written.
pub fn check_rocksdb(dir: &Path) -> Result<()> {
    let store_err = |operation| {
        move |source| Error::Store {
            path: dir.to_path_buf(),
            operation,
            source,
        }
    };
    let mut options = rocksdb::Options::default();
    options.create_if_missing(true);
    let db = rocksdb::DB::open(&options, dir).map_err(store_err("open"))?;
    let (key, value) = (b"homa-self-check".as_slice(), b"ok".as_slice());
    db.put(key, value).map_err(store_err("put"))?;
    db.flush().map_err(store_err("flush"))?;
    let found = db.get(key).map_err(store_err("get"))?;
    if found.as_deref() != Some(value) {
        return Err(Error::StoreMismatch {
            path: dir.to_path_buf(),
            key: key.to_vec(),
            expected: value.to_vec(),
            found,
        });
    }
    db.delete(key).map_err(store_err("delete"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rocksdb_round_trip_in_a_fresh_dir() {
        let dir = tempfile::tempdir().unwrap();
        check_rocksdb(dir.path()).unwrap();
        // A second open of the same directory finds the database it left and still works.
        check_rocksdb(dir.path()).unwrap();
    }

    #[test]
    fn rocksdb_open_failure_names_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("not-a-dir");
        std::fs::write(&file, b"x").unwrap();
        let err = check_rocksdb(&file).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("not-a-dir"), "{message}");
        assert!(message.contains("open"), "{message}");
    }

    #[test]
    fn librdkafka_is_version_2() {
        assert!(
            librdkafka_version().starts_with("2."),
            "{}",
            librdkafka_version()
        );
    }
}

//! Files that must never be seen half-written (the address book, the crawler's
//! `nodes.json`): a temporary file beside the target with a name no other writer uses,
//! `fsync`, `rename`, `fsync` of the directory. A process killed mid-write leaves at most
//! a temporary, which [`remove_stale_temporaries`] clears at the next start.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

/// The marker between a file's name and a temporary's suffix: `<name>.tmp-<pid>-<random>`.
const TMP_MARKER: &str = ".tmp-";

/// Writes `bytes` to `path` atomically: readers see the old content or the new, never a
/// mix, even if the process dies at any point. Concurrent writers of one path each use
/// their own temporary; the last rename wins.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(format!("{TMP_MARKER}{}-{:016x}", std::process::id(), rand::random::<u64>()));
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut file = std::fs::File::create(&tmp)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        std::fs::rename(&tmp, path)?;
        // The rename is durable only once the directory entry is.
        #[cfg(unix)]
        std::fs::File::open(dir)?.sync_all()?;
        Ok(())
    };
    write().inspect_err(|_| {
        let _ = std::fs::remove_file(&tmp);
    })
}

/// Removes the temporaries that writers of `path` killed mid-write left behind. Call it
/// at start, before any writer of `path` runs. Returns how many were removed.
pub(crate) fn remove_stale_temporaries(path: &Path) -> usize {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else { return 0 };
    let dir = if dir.as_os_str().is_empty() { Path::new(".") } else { dir };
    let mut prefix = name.to_owned();
    prefix.push(TMP_MARKER);
    let prefix = prefix.to_string_lossy().into_owned();
    let Ok(entries) = std::fs::read_dir(dir) else { return 0 };
    let mut removed = 0;
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix)
            && std::fs::remove_file(entry.path()).is_ok()
        {
            tracing::info!(target: "ethp2p::pool", path = %entry.path().display(), "removed a temporary left by an interrupted write");
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_replace_whole_files_and_stale_temporaries_are_cleared() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("peers.json");
        write_atomically(&path, b"one").unwrap();
        write_atomically(&path, b"two").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"two");
        // What a kill between create and rename leaves behind; other files are kept.
        std::fs::write(dir.path().join("peers.json.tmp-999-00000000deadbeef"), b"half").unwrap();
        std::fs::write(dir.path().join("peers.json.tmp-1"), b"half").unwrap();
        std::fs::write(dir.path().join("nodekey"), b"keep").unwrap();
        assert_eq!(remove_stale_temporaries(&path), 2);
        let mut left: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        left.sort();
        assert_eq!(left, ["nodekey", "peers.json"]);
        assert_eq!(remove_stale_temporaries(&dir.path().join("missing/x.json")), 0);
    }

    #[test]
    fn concurrent_writers_never_tear_a_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nodes.json");
        let writers: Vec<_> = (0..8u8)
            .map(|i| {
                let path = path.clone();
                std::thread::spawn(move || {
                    for _ in 0..20 {
                        write_atomically(&path, &[i; 4096]).unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(bytes.len(), 4096);
        assert!(bytes.iter().all(|b| *b == bytes[0]), "one writer's content, whole");
        assert_eq!(remove_stale_temporaries(&path), 0, "no temporaries left");
    }
}

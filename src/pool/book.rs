//! The address book: known nodes, their reputation and bans, on disk.
//!
//! A JSON file in the data dir (`<datadir>/peers.json`), in the spirit of reth's
//! `known-peers.json` but with the fields a restart needs: the *tried* set (nodes we were
//! connected to) and the *new* set (nodes only heard of), reputation, last seen, and bans
//! with their expiry. A restart loads it and redials the tried nodes first (reth#745,
//! reth#16168: no peers after a restart).
//!
//! Writes are atomic: a temporary file beside the book, `fsync`, `rename`, then `fsync` of
//! the directory, so a crash leaves either the old book or the new one. A file that does
//! not parse is moved aside (`peers.json.corrupt-<unix time>`) with a warning and the node
//! starts with an empty book: never fatal, and the evidence is never overwritten.

use std::{
    net::SocketAddr,
    path::{Path, PathBuf},
    time::SystemTime,
};

use super::{reputation::PeerKind, PoolError};
use crate::record::PeerId;

/// The format version written in the file; a different version is treated as unreadable.
pub const BOOK_VERSION: u32 = 1;

/// The book's file name inside the data dir.
pub const BOOK_FILE: &str = "peers.json";

/// The largest book we read (a full book of 4096 candidates is about 1.5 MB); a larger
/// file is treated as corrupt rather than read into memory.
const MAX_BOOK_BYTES: u64 = 64 * 1024 * 1024;

/// One node in the address book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct BookEntry {
    /// Its public key.
    pub peer_id: PeerId,
    /// Its RLPx address (`0.0.0.0:0` for a banned node whose address we dropped).
    pub addr: SocketAddr,
    /// Static, trusted or basic when it was saved (the configuration wins on load).
    pub kind: PeerKind,
    /// In the tried set: we were connected to it.
    pub tried: bool,
    /// Its reputation.
    pub reputation: i32,
    /// When it was last seen, in Unix seconds.
    pub last_seen: u64,
    /// When its ban ends, in Unix seconds.
    pub banned_until: Option<u64>,
    /// A DNS tree listed it: its share of outbound slots stays capped after a restart
    /// ([`PoolConfig::dns_dial_ratio`](super::PoolConfig::dns_dial_ratio)). Absent in
    /// books written before it existed (read as `false`).
    #[serde(default)]
    pub dns: bool,
}

/// The address book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct AddressBook {
    /// [`BOOK_VERSION`].
    pub version: u32,
    /// The nodes.
    pub entries: Vec<BookEntry>,
}

impl Default for AddressBook {
    fn default() -> Self {
        Self::new(Vec::new())
    }
}

impl AddressBook {
    /// A book holding `entries`.
    pub fn new(entries: Vec<BookEntry>) -> Self {
        Self { version: BOOK_VERSION, entries }
    }

    /// The tried set: nodes we were connected to.
    pub fn tried(&self) -> impl Iterator<Item = &BookEntry> {
        self.entries.iter().filter(|e| e.tried)
    }

    /// The new set: nodes only heard of.
    pub fn new_set(&self) -> impl Iterator<Item = &BookEntry> {
        self.entries.iter().filter(|e| !e.tried)
    }

    /// Loads the book at `path`, removing temporaries of interrupted saves. A missing file
    /// is an empty book. A file that cannot be
    /// parsed is renamed to `<path>.corrupt-<unix time>` with a warning, and an empty book
    /// is returned; the returned path says where it went.
    pub fn load(path: &Path) -> Result<(Self, Option<PathBuf>), PoolError> {
        let io = |source| PoolError::BookIo { path: path.to_owned(), source };
        // A save killed mid-write left its temporary; the book itself is whole.
        crate::fsutil::remove_stale_temporaries(path);
        let bytes = match std::fs::metadata(path) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Self::default(), None)),
            Err(e) => return Err(io(e)),
            Ok(meta) if meta.len() > MAX_BOOK_BYTES => None,
            Ok(_) => Some(std::fs::read(path).map_err(io)?),
        };
        let parsed =
            bytes.and_then(|b| serde_json::from_slice::<Self>(&b).ok()).filter(|b| b.version == BOOK_VERSION);
        match parsed {
            Some(book) => Ok((book, None)),
            None => {
                let stamp = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
                let mut aside = path.as_os_str().to_owned();
                aside.push(format!(".corrupt-{}", stamp.as_secs()));
                let mut aside = PathBuf::from(aside);
                // Never overwrite an earlier corrupt copy.
                let mut n = 0;
                while aside.exists() {
                    n += 1;
                    let mut p = path.as_os_str().to_owned();
                    p.push(format!(".corrupt-{}-{n}", stamp.as_secs()));
                    aside = PathBuf::from(p);
                }
                std::fs::rename(path, &aside).map_err(io)?;
                tracing::warn!(
                    target: "ethp2p::pool",
                    path = %path.display(),
                    moved_to = %aside.display(),
                    "address book unreadable; moved aside, starting with an empty book"
                );
                Ok((Self::default(), Some(aside)))
            }
        }
    }

    /// Writes the book to `path` atomically: temporary file, fsync, rename, fsync of the
    /// directory.
    pub fn save(&self, path: &Path) -> Result<(), PoolError> {
        let json = serde_json::to_vec_pretty(self)?;
        crate::fsutil::write_atomically(path, &json)
            .map_err(|source| PoolError::BookIo { path: path.to_owned(), source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(n: u8, tried: bool) -> BookEntry {
        BookEntry {
            peer_id: PeerId::repeat_byte(n),
            addr: SocketAddr::from(([10, 0, 0, n], 30303)),
            kind: PeerKind::Basic,
            tried,
            reputation: -(n as i32),
            last_seen: 1_700_000_000,
            banned_until: (n == 3).then_some(1_800_000_000),
            dns: false,
        }
    }

    #[test]
    fn roundtrip_and_sets() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join(BOOK_FILE);
        let book = AddressBook::new(vec![entry(1, true), entry(2, false), entry(3, false)]);
        book.save(&path).unwrap();
        let (loaded, aside) = AddressBook::load(&path).unwrap();
        assert_eq!(loaded, book);
        assert!(aside.is_none());
        assert_eq!(loaded.tried().count(), 1);
        assert_eq!(loaded.new_set().count(), 2);
        // No temporary file is left behind.
        assert_eq!(std::fs::read_dir(path.parent().unwrap()).unwrap().count(), 1);
    }

    #[test]
    fn missing_file_is_empty() {
        let dir = tempfile::tempdir().unwrap();
        let (book, aside) = AddressBook::load(&dir.path().join(BOOK_FILE)).unwrap();
        assert!(book.entries.is_empty() && aside.is_none());
    }

    #[test]
    fn garbage_and_truncated_files_are_moved_aside() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(BOOK_FILE);
        let good = serde_json::to_vec(&AddressBook::new(vec![entry(1, true)])).unwrap();
        for bad in [
            b"\x00\xffgarbage".to_vec(),
            good[..good.len() / 2].to_vec(),
            br#"{"version":99,"entries":[]}"#.to_vec(),
        ] {
            std::fs::write(&path, &bad).unwrap();
            let (book, aside) = AddressBook::load(&path).unwrap();
            assert!(book.entries.is_empty());
            let aside = aside.expect("moved aside");
            assert_eq!(std::fs::read(&aside).unwrap(), bad, "the evidence is kept intact");
            assert!(!path.exists());
        }
        // Three corrupt copies, none overwritten.
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3);
    }
}

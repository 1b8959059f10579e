#![allow(dead_code)] // Shared with examples/sync_bench.rs and tests/it/sync.rs, which use parts.

//! The syncer's block store: one append-only file, `<datadir>/blocks.dat`, that holds the
//! chain from the genesis up, one record per complete block, and serves it ([`ChainReader`]).
//!
//! ```text
//!  record := len: u32 LE | crc32(payload): u32 LE | payload
//!  payload := rlp(header) ++ rlp(body) ++ rlp(receipts)
//! ```
//!
//! Crash safety comes from the order of things, not from a journal: a block is appended only
//! once its header is linked to the chain and its body and receipts were checked against that
//! header, so every record on disk is a complete, validated block; records are appended in
//! block order, so the file is always a prefix of the chain. A `kill -9` can only cut the last
//! record short (or leave it written but not yet indexed): [`Store::open`] walks the file,
//! checks each record's length, checksum, decoding, number and parent link, and truncates
//! at the first one that fails. Appends are `fdatasync`ed at most every
//! [`SYNC_INTERVAL`] (a power cut may lose the last second; it still leaves a valid prefix).
//!
//! The index (every header and where each record lies) is in memory, behind a short
//! synchronous lock: eth sessions read it from their tasks while the syncer appends. Bodies
//! and receipts are read from the file on demand.

use std::{
    collections::HashMap,
    fs::{File, OpenOptions},
    io::Write,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};

use alloy_consensus::{BlockBody, Header, ReceiptEnvelope, Sealed, TxEnvelope};
use alloy_primitives::{Sealable, B256, U256};
use alloy_rlp::{Decodable, Encodable};
use ethp2p::{eth::StatusInfo, ChainReader, ChainSpec};
use parking_lot::{Mutex, RwLock};

/// The data file's name inside the data dir.
pub(crate) const FILE_NAME: &str = "blocks.dat";
/// Length and checksum before each record's payload.
const RECORD_HEADER: usize = 8;
/// Appends are made durable (`fdatasync`) at most this often; a process kill needs no sync
/// (the page cache survives it), a power cut loses at most this much.
pub(crate) const SYNC_INTERVAL: Duration = Duration::from_secs(1);
/// A record larger than this is taken for garbage (a torn length): the largest block body
/// plus receipts the eth protocol can carry is far below it.
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// What can go wrong with the store. Every variant names the file.
#[derive(Debug, thiserror::Error)]
pub(crate) enum StoreError {
    /// Creating, opening, reading or writing the store failed.
    #[error("block store {path}: {what}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What was being done.
        what: &'static str,
        /// The OS error.
        source: std::io::Error,
    },
    /// The store holds another chain.
    #[error("block store {path} holds a chain with genesis {found}, not {expected}")]
    WrongGenesis {
        /// The file.
        path: PathBuf,
        /// Its first record's hash.
        found: B256,
        /// The network's genesis hash.
        expected: B256,
    },
    /// The store is empty and the genesis header is not known yet (fetch it, then open
    /// again with it).
    #[error("block store {path} is empty and the genesis header is unknown")]
    NoGenesis {
        /// The file.
        path: PathBuf,
    },
    /// A block handed to [`Store::append`] does not extend the stored chain.
    #[error("block store {path}: block {number} does not extend the stored head")]
    NotLinked {
        /// The file.
        path: PathBuf,
        /// The block's number.
        number: u64,
    },
}

/// One complete block, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoredBlock {
    /// The header, with its hash.
    pub(crate) header: Sealed<Header>,
    /// Its body (checked against the header's roots).
    pub(crate) body: BlockBody<TxEnvelope>,
    /// Its receipts (checked against the header's receipts root).
    pub(crate) receipts: Vec<ReceiptEnvelope>,
}

impl StoredBlock {
    /// A record's payload: the three RLP items one after another.
    fn encode_payload(&self, out: &mut Vec<u8>) {
        self.header.inner().encode(out);
        self.body.encode(out);
        self.receipts.encode(out);
    }

    /// The payload's size in bytes.
    pub(crate) fn payload_len(&self) -> usize {
        self.header.inner().length() + self.body.length() + self.receipts.length()
    }

    fn decode_payload(mut buf: &[u8]) -> alloy_rlp::Result<Self> {
        let header = Header::decode(&mut buf)?;
        let body = BlockBody::<TxEnvelope>::decode(&mut buf)?;
        let receipts = Vec::<ReceiptEnvelope>::decode(&mut buf)?;
        if !buf.is_empty() {
            return Err(alloy_rlp::Error::UnexpectedLength);
        }
        Ok(Self { header: header.seal_slow(), body, receipts })
    }
}

/// What the store knows without touching the file.
#[derive(Debug, Default)]
struct Index {
    headers: Vec<Header>,
    hashes: Vec<B256>,
    numbers: HashMap<B256, u64>,
    /// Offset and length of each record's payload.
    records: Vec<(u64, u32)>,
    total_difficulty: U256,
    /// Where the next record goes.
    end: u64,
}

#[derive(Debug)]
struct Writer {
    file: File,
    last_sync: Instant,
}

/// The block store. See the module docs.
#[derive(Debug)]
pub(crate) struct Store {
    path: PathBuf,
    reader: File,
    writer: Mutex<Writer>,
    index: RwLock<Index>,
    /// Bytes cut off the end by [`Store::open`] (a torn last record).
    truncated: u64,
}

fn io<'a>(path: &'a Path, what: &'static str) -> impl FnOnce(std::io::Error) -> StoreError + 'a {
    move |source| StoreError::Io { path: path.to_owned(), what, source }
}

impl Store {
    /// Opens (or creates) the store in `dir` for the chain whose genesis hash is
    /// `genesis_hash`: checks every record, cuts a torn tail, and writes `genesis` as
    /// record 0 if the file is empty ([`StoreError::NoGenesis`] if it is not given then).
    pub(crate) fn open(dir: &Path, genesis_hash: B256, genesis: Option<&Header>) -> Result<Self, StoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir, "cannot create the data directory"))?;
        let path = dir.join(FILE_NAME);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .open(&path)
            .map_err(io(&path, "cannot open for appending"))?;
        let reader = File::open(&path).map_err(io(&path, "cannot open for reading"))?;
        let bytes = std::fs::read(&path).map_err(io(&path, "cannot read"))?;
        let mut index = Index::default();
        let mut at = 0usize;
        while let Some(block) = next_record(&bytes, at, &index) {
            let (block, len) = block;
            let offset = (at + RECORD_HEADER) as u64;
            index.push(block.header, offset, len);
            at += RECORD_HEADER + len as usize;
        }
        let truncated = (bytes.len() - at) as u64;
        if truncated > 0 {
            file.set_len(at as u64).map_err(io(&path, "cannot truncate a torn record"))?;
            file.sync_data().map_err(io(&path, "cannot sync"))?;
        }
        index.end = at as u64;
        let store = Self {
            path: path.clone(),
            reader,
            writer: Mutex::new(Writer { file, last_sync: Instant::now() }),
            index: RwLock::new(index),
            truncated,
        };
        match store.hash(0) {
            Some(found) if found != genesis_hash => {
                return Err(StoreError::WrongGenesis { path, found, expected: genesis_hash })
            }
            Some(_) => {}
            None => {
                let Some(genesis) = genesis.filter(|g| g.hash_slow() == genesis_hash) else {
                    return Err(StoreError::NoGenesis { path });
                };
                let body = BlockBody {
                    transactions: vec![],
                    ommers: vec![],
                    withdrawals: genesis.withdrawals_root.map(|_| Default::default()),
                };
                let block = StoredBlock { header: genesis.clone().seal_slow(), body, receipts: vec![] };
                store.append_unchecked(std::slice::from_ref(&block))?;
                store.sync()?;
            }
        }
        Ok(store)
    }

    /// The data file.
    pub(crate) fn path(&self) -> &Path {
        &self.path
    }

    /// Bytes of a torn record cut off at open.
    pub(crate) fn truncated(&self) -> u64 {
        self.truncated
    }

    /// The stored head (the genesis in a fresh store).
    pub(crate) fn head(&self) -> Sealed<Header> {
        let index = self.index.read();
        let n = index.headers.len() - 1;
        Sealed::new_unchecked(index.headers[n].clone(), index.hashes[n])
    }

    /// The hash of stored block `number`.
    pub(crate) fn hash(&self, number: u64) -> Option<B256> {
        self.index.read().hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// Bytes of block data stored (the file's length).
    pub(crate) fn bytes(&self) -> u64 {
        self.index.read().end
    }

    /// Our `Status` for this chain as `spec`, at the stored head.
    pub(crate) fn status_info(&self, spec: &ChainSpec) -> StatusInfo {
        let head = self.head();
        StatusInfo {
            network_id: spec.network_id,
            genesis: spec.genesis_hash,
            fork_id: spec.fork_id(head.number, head.timestamp),
            total_difficulty: self.index.read().total_difficulty,
            earliest: 0,
            latest: head.number,
            latest_hash: head.hash(),
        }
    }

    /// Appends complete, validated blocks, which must extend the stored head in order.
    pub(crate) fn append(&self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        let head = self.head();
        let mut parent = (head.number, head.hash());
        for block in blocks {
            if block.header.number != parent.0 + 1 || block.header.parent_hash != parent.1 {
                return Err(StoreError::NotLinked { path: self.path.clone(), number: block.header.number });
            }
            parent = (block.header.number, block.header.hash());
        }
        self.append_unchecked(blocks)
    }

    fn append_unchecked(&self, blocks: &[StoredBlock]) -> Result<(), StoreError> {
        let mut buf = Vec::with_capacity(blocks.iter().map(|b| b.payload_len() + RECORD_HEADER).sum());
        let mut placed = Vec::with_capacity(blocks.len());
        let start = self.index.read().end;
        for block in blocks {
            let at = buf.len();
            buf.extend_from_slice(&[0; RECORD_HEADER]);
            block.encode_payload(&mut buf);
            let len = (buf.len() - at - RECORD_HEADER) as u32;
            let crc = crc32fast::hash(&buf[at + RECORD_HEADER..]);
            buf[at..at + 4].copy_from_slice(&len.to_le_bytes());
            buf[at + 4..at + 8].copy_from_slice(&crc.to_le_bytes());
            placed.push((start + (at + RECORD_HEADER) as u64, len));
        }
        let mut writer = self.writer.lock();
        if let Err(e) = writer.file.write_all(&buf) {
            // Leave nothing half-written behind: cut back to the last whole record (and if
            // even that fails, the next open does it).
            let _ = writer.file.set_len(start);
            return Err(io(&self.path, "cannot append")(e));
        }
        if writer.last_sync.elapsed() >= SYNC_INTERVAL {
            writer.file.sync_data().map_err(io(&self.path, "cannot sync"))?;
            writer.last_sync = Instant::now();
        }
        drop(writer);
        // Indexed only once written: a reader never sees a block whose bytes are not there.
        let mut index = self.index.write();
        for (block, (offset, len)) in blocks.iter().zip(placed) {
            index.push(block.header.clone(), offset, len);
        }
        index.end = start + buf.len() as u64;
        Ok(())
    }

    /// Makes every append durable.
    pub(crate) fn sync(&self) -> Result<(), StoreError> {
        let mut writer = self.writer.lock();
        writer.file.sync_data().map_err(io(&self.path, "cannot sync"))?;
        writer.last_sync = Instant::now();
        Ok(())
    }

    /// The whole stored block `number`, read back from the file.
    pub(crate) fn block(&self, number: u64) -> Option<StoredBlock> {
        let (offset, len) = *self.index.read().records.get(usize::try_from(number).ok()?)?;
        let mut buf = vec![0; len as usize];
        self.reader.read_exact_at(&mut buf, offset).ok()?;
        StoredBlock::decode_payload(&buf).ok()
    }

    fn block_by_hash(&self, hash: &B256) -> Option<StoredBlock> {
        let number = *self.index.read().numbers.get(hash)?;
        self.block(number)
    }
}

impl Index {
    fn push(&mut self, header: Sealed<Header>, offset: u64, len: u32) {
        let (header, hash) = header.into_parts();
        self.total_difficulty += header.difficulty;
        self.numbers.insert(hash, header.number);
        self.hashes.push(hash);
        self.headers.push(header);
        self.records.push((offset, len));
    }
}

/// The record at `at` if it is whole, checksummed, decodes, and extends `index`'s chain.
fn next_record(bytes: &[u8], at: usize, index: &Index) -> Option<(StoredBlock, u32)> {
    let head = bytes.get(at..at + RECORD_HEADER)?;
    let len = u32::from_le_bytes(head[..4].try_into().ok()?);
    let crc = u32::from_le_bytes(head[4..].try_into().ok()?);
    if len > MAX_RECORD {
        return None;
    }
    let payload = bytes.get(at + RECORD_HEADER..at + RECORD_HEADER + len as usize)?;
    if crc32fast::hash(payload) != crc {
        return None;
    }
    let block = StoredBlock::decode_payload(payload).ok()?;
    let expected = index.headers.len() as u64;
    if block.header.number != expected {
        return None;
    }
    if let Some(parent) = index.hashes.last() {
        if block.header.parent_hash != *parent {
            return None;
        }
    }
    Some((block, len))
}

impl ChainReader for Store {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.index.read().headers.get(usize::try_from(number).ok()?).cloned()
    }

    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        let index = self.index.read();
        let number = *index.numbers.get(hash)?;
        index.headers.get(number as usize).cloned()
    }

    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.block_by_hash(hash).map(|b| b.body)
    }

    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.block_by_hash(hash).map(|b| b.receipts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ethp2p::eth::MemoryChain;

    fn blocks(chain: &MemoryChain, range: std::ops::RangeInclusive<u64>) -> Vec<StoredBlock> {
        range
            .map(|n| {
                let header = chain.header(n).unwrap().clone().seal_slow();
                StoredBlock {
                    receipts: chain.receipts_by_hash(&header.hash()).unwrap().clone(),
                    body: chain.body_by_number(n).unwrap().clone(),
                    header,
                }
            })
            .collect()
    }

    #[test]
    fn a_torn_tail_is_cut_and_the_chain_resumes() {
        let chain = MemoryChain::builder().blocks(20).build();
        let dir = tempfile::tempdir().unwrap();
        let genesis = chain.header(0).unwrap();
        let open = || Store::open(dir.path(), genesis.hash_slow(), Some(genesis));
        let store = open().unwrap();
        store.append(&blocks(&chain, 1..=10)).unwrap();
        assert!(store.append(&blocks(&chain, 12..=12)).is_err(), "a gap is refused");
        let len = store.bytes();
        drop(store);
        // A torn record: a length and checksum with half a payload.
        let path = dir.path().join(FILE_NAME);
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(&[200, 0, 0, 0, 1, 2, 3, 4, 5, 6]).unwrap();
        drop(f);
        let store = open().unwrap();
        assert_eq!(store.truncated(), 10);
        assert_eq!(store.bytes(), len);
        assert_eq!(store.head().number, 10);
        store.append(&blocks(&chain, 11..=20)).unwrap();
        for b in blocks(&chain, 0..=20) {
            assert_eq!(store.block(b.header.number).unwrap(), b);
        }
        assert_eq!(store.body(&chain.hash(7).unwrap()).as_ref(), chain.body_by_number(7));
    }

    #[test]
    fn another_chain_is_refused() {
        let chain = MemoryChain::builder().blocks(1).build();
        let dir = tempfile::tempdir().unwrap();
        let genesis = chain.header(0).unwrap();
        Store::open(dir.path(), genesis.hash_slow(), Some(genesis)).unwrap();
        let other = Header { number: 0, gas_limit: 1, ..Default::default() };
        let err = Store::open(dir.path(), other.hash_slow(), Some(&other)).unwrap_err().to_string();
        assert!(err.contains(FILE_NAME), "{err}");
    }
}

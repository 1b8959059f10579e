//! [`FileChain`]: a [`ChainReader`] over an RLP chain file as `geth export` writes it
//! (`chain.rlp`: blocks `[header, transactions, ommers, withdrawals?]` one after another,
//! from block 1 or from the genesis), checked block by block on load.
//!
//! Such a file holds no receipts. A node that must serve them fetches them from a peer that
//! has them (the syncer path: [`FileChain::missing_receipts`] names the blocks, the caller
//! asks the network, e.g. with `Node::get_receipts`), and hands each block's list to
//! [`FileChain::import_receipts`], which checks it against the header's receipts root before
//! it is served. Until then `GetReceipts` for that block is answered as for an unknown one.
//!
//! Block access lists (eth/71) are held the same way: [`FileChain::import_block_access_list`]
//! checks one against its header's `block_access_list_hash` before it is served.
//!
//! Shared, not owned: the chain sits behind an `Arc` that every session task reads. Headers
//! and bodies never change after load; each block's receipts are set at most once, in a
//! `OnceLock`, so readers take no lock.

use std::{collections::HashMap, path::Path, sync::OnceLock};

use alloy_consensus::{Block, BlockBody, Header, ReceiptEnvelope, Sealed, TxEnvelope};
use alloy_primitives::{Bytes, B256, U256};
use alloy_rlp::Decodable;

use crate::eth::bal::validate_block_access_lists;
use crate::eth::error::ChainFileError;
use crate::eth::serve::ChainReader;
use crate::eth::status::StatusInfo;
use crate::eth::validate::{validate_body, validate_receipts};
use crate::record::ChainSpec;

/// A chain read from an RLP chain file, validated, with receipts added as they are fetched.
///
/// ```no_run
/// use ethp2p::eth::FileChain;
/// use ethp2p::record::GethGenesis;
/// let (spec, genesis) = GethGenesis::from_file("genesis.json")?.into_parts();
/// let chain = FileChain::from_file("chain.rlp", genesis)?;
/// let status = chain.status_info_for(&spec);
/// assert_eq!(status.genesis, spec.genesis_hash);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct FileChain {
    headers: Vec<Header>,
    hashes: Vec<B256>,
    numbers: HashMap<B256, u64>,
    bodies: Vec<BlockBody<TxEnvelope>>,
    receipts: Vec<OnceLock<Vec<ReceiptEnvelope>>>,
    /// Block access lists (RLP), set once each when imported.
    bals: Vec<OnceLock<Bytes>>,
}

impl FileChain {
    /// Reads and checks `path` on top of `genesis` (the header
    /// [`GethGenesis`](crate::record::GethGenesis) computes from the chain's `genesis.json`).
    pub fn from_file(path: impl AsRef<Path>, genesis: Header) -> Result<Self, ChainFileError> {
        let path = path.as_ref();
        let bytes =
            std::fs::read(path).map_err(|source| ChainFileError::Io { path: path.to_owned(), source })?;
        Self::from_rlp(&bytes, genesis)
    }

    /// Decodes and checks concatenated RLP blocks on top of `genesis`. The file may start with
    /// the genesis block itself (`geth export` from 0) or with block 1 (the hive chains).
    ///
    /// Checks, per block: its number follows the previous one, its parent hash is the previous
    /// block's hash (block 1's is the genesis hash), and its body matches the header's
    /// transactions root, ommers hash and withdrawals root.
    pub fn from_rlp(mut bytes: &[u8], genesis: Header) -> Result<Self, ChainFileError> {
        let genesis_hash = genesis.hash_slow();
        let mut chain = Self {
            hashes: vec![genesis_hash],
            numbers: HashMap::from([(genesis_hash, 0)]),
            bodies: vec![BlockBody {
                transactions: vec![],
                ommers: vec![],
                withdrawals: genesis.withdrawals_root.map(|_| Default::default()),
            }],
            headers: vec![genesis],
            // The genesis block has no transactions, so its receipts are known: none.
            receipts: vec![OnceLock::from(Vec::new())],
            bals: vec![OnceLock::new()],
        };
        let mut index = 0;
        while !bytes.is_empty() {
            let block = Block::<TxEnvelope>::decode(&mut bytes)
                .map_err(|e| ChainFileError::Decode { index, error: e.to_string() })?;
            let Block { header, body } = block;
            let hash = header.hash_slow();
            if index == 0 && header.number == 0 {
                if hash != genesis_hash {
                    return Err(ChainFileError::GenesisMismatch { file: hash, spec: genesis_hash });
                }
                index += 1;
                continue;
            }
            let expected = chain.headers.len() as u64;
            if header.number != expected {
                return Err(ChainFileError::WrongNumber { index, expected, got: header.number });
            }
            let parent = chain.hashes[chain.hashes.len() - 1];
            if header.parent_hash != parent {
                return Err(if header.number == 1 {
                    ChainFileError::GenesisMismatch { file: header.parent_hash, spec: genesis_hash }
                } else {
                    ChainFileError::BrokenLink { number: header.number }
                });
            }
            validate_body(index, &header, &body)
                .map_err(|error| ChainFileError::InvalidBody { number: header.number, error })?;
            // A block without transactions has the empty receipts list, known without asking.
            let receipts =
                if body.transactions.is_empty() { OnceLock::from(Vec::new()) } else { OnceLock::new() };
            chain.numbers.insert(hash, header.number);
            chain.hashes.push(hash);
            chain.headers.push(header);
            chain.bodies.push(body);
            chain.receipts.push(receipts);
            chain.bals.push(OnceLock::new());
            index += 1;
        }
        Ok(chain)
    }

    /// The head's number.
    pub fn head_number(&self) -> u64 {
        self.headers.len() as u64 - 1
    }

    /// The head's header.
    pub fn head(&self) -> &Header {
        &self.headers[self.headers.len() - 1]
    }

    /// The hash of block `number`.
    pub fn hash(&self, number: u64) -> Option<B256> {
        self.hashes.get(usize::try_from(number).ok()?).copied()
    }

    /// Headers (with their hashes) of the blocks whose receipts are not known yet, in order:
    /// what to ask the network for.
    pub fn missing_receipts(&self) -> Vec<Sealed<Header>> {
        self.receipts
            .iter()
            .enumerate()
            .filter(|(_, r)| r.get().is_none())
            .map(|(n, _)| Sealed::new_unchecked(self.headers[n].clone(), self.hashes[n]))
            .collect()
    }

    /// Stores the receipts of the block with this hash after checking them against its
    /// header's receipts root. Receipts already known are kept (they passed the same check).
    pub fn import_receipts(&self, hash: &B256, receipts: Vec<ReceiptEnvelope>) -> Result<(), ChainFileError> {
        let number = *self.numbers.get(hash).ok_or(ChainFileError::UnknownBlock(*hash))?;
        let n = number as usize;
        validate_receipts(std::slice::from_ref(&self.headers[n]), std::slice::from_ref(&receipts))
            .map_err(|error| ChainFileError::InvalidReceipts { number, error })?;
        let _ = self.receipts[n].set(receipts);
        Ok(())
    }

    /// Headers (with their hashes) of the blocks that commit to a block access list
    /// (post-Amsterdam, EIP-7928) whose list is not known yet, in order.
    pub fn missing_block_access_lists(&self) -> Vec<Sealed<Header>> {
        self.bals
            .iter()
            .enumerate()
            .filter(|(n, b)| self.headers[*n].block_access_list_hash.is_some() && b.get().is_none())
            .map(|(n, _)| Sealed::new_unchecked(self.headers[n].clone(), self.hashes[n]))
            .collect()
    }

    /// Stores the block access list (its RLP) of the block with this hash after checking it
    /// against the header's `block_access_list_hash`; a header without one takes none.
    pub fn import_block_access_list(&self, hash: &B256, bal: Bytes) -> Result<(), ChainFileError> {
        let number = *self.numbers.get(hash).ok_or(ChainFileError::UnknownBlock(*hash))?;
        let n = number as usize;
        validate_block_access_lists(std::slice::from_ref(&self.headers[n]), &[Some(bal.clone())])
            .map_err(|error| ChainFileError::InvalidBlockAccessList { number, error })?;
        let _ = self.bals[n].set(bal);
        Ok(())
    }

    /// Whether the receipts of every block are known.
    pub fn has_all_receipts(&self) -> bool {
        self.receipts.iter().all(|r| r.get().is_some())
    }

    /// The sum of every block's difficulty: a `Status` total difficulty.
    pub fn total_difficulty(&self) -> U256 {
        self.headers.iter().map(|h| h.difficulty).sum()
    }

    /// What we announce in `Status` for this chain as `spec`: its network id, its fork id at
    /// our head, our head's number and hash.
    pub fn status_info_for(&self, spec: &ChainSpec) -> StatusInfo {
        let head = self.head();
        StatusInfo {
            network_id: spec.network_id,
            genesis: self.hashes[0],
            fork_id: spec.fork_id(head.number, head.timestamp),
            total_difficulty: self.total_difficulty(),
            earliest: 0,
            latest: head.number,
            latest_hash: self.hashes[self.hashes.len() - 1],
        }
    }

    /// An eth configuration for serving this chain as `spec`: our `Status` and the fork
    /// filter at our head.
    pub fn eth_config_for(&self, spec: &ChainSpec) -> crate::eth::EthConfigBuilder {
        let head = self.head();
        crate::eth::EthConfig::builder(
            self.status_info_for(spec),
            spec.fork_filter(head.number, head.timestamp),
        )
    }
}

impl ChainReader for FileChain {
    fn header_by_number(&self, number: u64) -> Option<Header> {
        self.headers.get(usize::try_from(number).ok()?).cloned()
    }

    fn header_by_hash(&self, hash: &B256) -> Option<Header> {
        self.headers.get(*self.numbers.get(hash)? as usize).cloned()
    }

    fn body(&self, hash: &B256) -> Option<BlockBody<TxEnvelope>> {
        self.bodies.get(*self.numbers.get(hash)? as usize).cloned()
    }

    fn receipts(&self, hash: &B256) -> Option<Vec<ReceiptEnvelope>> {
        self.receipts.get(*self.numbers.get(hash)? as usize)?.get().cloned()
    }

    fn block_access_list(&self, hash: &B256) -> Option<Bytes> {
        self.bals.get(*self.numbers.get(hash)? as usize)?.get().cloned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::serve::{MemoryChain, MemoryChainBuilder};
    use alloy_rlp::Encodable;

    /// A memory chain written out as `geth export` would: one RLP block after another.
    fn export(chain: &MemoryChain, from: u64) -> Vec<u8> {
        let mut out = Vec::new();
        for n in from..=chain.head_number() {
            let block = Block {
                header: chain.header(n).unwrap().clone(),
                body: chain.body_by_number(n).unwrap().clone(),
            };
            block.encode(&mut out);
        }
        out
    }

    fn memory() -> MemoryChain {
        MemoryChainBuilder::default().blocks(12).build()
    }

    #[test]
    fn reads_what_it_serves_and_fills_receipts() {
        let mem = memory();
        let genesis = mem.header(0).unwrap().clone();
        for from in [0, 1] {
            let file = FileChain::from_rlp(&export(&mem, from), genesis.clone()).unwrap();
            assert_eq!(file.head_number(), 12);
            assert_eq!(file.hash(7), mem.hash(7));
            let hash = mem.hash(5).unwrap();
            assert_eq!(file.body(&hash), mem.body(&hash));
            assert_eq!(file.receipts(&hash), None, "a chain file has no receipts");
            assert_eq!(file.missing_receipts().len(), 12);
            assert!(!file.has_all_receipts());
            for header in file.missing_receipts() {
                let receipts = mem.receipts(&header.hash()).unwrap();
                file.import_receipts(&header.hash(), receipts).unwrap();
            }
            assert!(file.has_all_receipts());
            assert_eq!(file.receipts(&hash), mem.receipts(&hash));
        }
    }

    #[test]
    fn wrong_receipts_are_refused() {
        let mem = memory();
        let file = FileChain::from_rlp(&export(&mem, 1), mem.header(0).unwrap().clone()).unwrap();
        let other = mem.receipts(&mem.hash(4).unwrap()).unwrap();
        let err = file.import_receipts(&mem.hash(3).unwrap(), other).unwrap_err();
        assert!(matches!(err, ChainFileError::InvalidReceipts { number: 3, .. }), "{err}");
        assert_eq!(file.receipts(&mem.hash(3).unwrap()), None);
        assert!(matches!(file.import_receipts(&B256::ZERO, vec![]), Err(ChainFileError::UnknownBlock(_))));
    }

    #[test]
    fn bad_files_are_refused() {
        let mem = memory();
        let genesis = mem.header(0).unwrap().clone();
        let bytes = export(&mem, 1);
        // Another genesis: block 1 does not link to it.
        let mut other = genesis.clone();
        other.gas_limit += 1;
        assert!(matches!(FileChain::from_rlp(&bytes, other), Err(ChainFileError::GenesisMismatch { .. })));
        // A gap: block 2 missing.
        let mut gap = export(&MemoryChainBuilder::default().blocks(1).build(), 1);
        let mut rest = Vec::new();
        for n in 3..=4 {
            Block { header: mem.header(n).unwrap().clone(), body: mem.body_by_number(n).unwrap().clone() }
                .encode(&mut rest);
        }
        gap.extend(rest);
        assert!(matches!(
            FileChain::from_rlp(&gap, genesis.clone()),
            Err(ChainFileError::WrongNumber { expected: 2, got: 3, .. })
        ));
        // A body that does not match its header.
        let mut out = Vec::new();
        for n in 1..=3 {
            let mut body = mem.body_by_number(n).unwrap().clone();
            if n == 2 {
                body.transactions.pop();
            }
            Block { header: mem.header(n).unwrap().clone(), body }.encode(&mut out);
        }
        assert!(matches!(
            FileChain::from_rlp(&out, genesis.clone()),
            Err(ChainFileError::InvalidBody { number: 2, .. })
        ));
        // Truncated.
        assert!(matches!(
            FileChain::from_rlp(&bytes[..bytes.len() - 3], genesis),
            Err(ChainFileError::Decode { index: 11, .. })
        ));
    }
}

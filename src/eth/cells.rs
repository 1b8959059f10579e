//! eth/72 (EIP-8070, sparse blobpool): blob cells asked for and served, and the cell mask
//! that announcements carry.
//!
//! ```text
//! NewPooledTransactionHashes (0x08): [types, [size, ...], [hash, ...], cell_mask]
//! GetCells (0x14): [request-id, [txhash, ...], cell_mask]
//! Cells    (0x15): [request-id, [txhash, ...], [[cell, ...], ...], cell_mask]
//! ```
//!
//! A cell mask is the SSZ `BitVector[CELLS_PER_EXT_BLOB]`: 16 bytes, column `i` is bit
//! `i % 8` of byte `i / 8`, sent as a 16-byte RLP string (not an integer). A `Cells` entry
//! holds, for one transaction, the cells of the mask's columns for each of its blobs in
//! turn (blob 0's columns in ascending order, then blob 1's, ...), each cell 2048 bytes: the
//! layout of go-ethereum's `CellsResponse`, whose request ids follow EIP-2481 like every
//! other eth request (the EIP's text leaves them out; go-ethereum and the hive tests send
//! them).
//!
//! Pure parts, used by the session task: the codecs, [`serve_cells`] (the answer from a
//! [`ChainReader`]'s [`cells`](ChainReader::cells) hook, at most
//! [`MAX_CELLS_HASHES_SERVE`] transactions) and [`validate_cells`].

use std::collections::HashSet;

use alloy_primitives::{Bytes, FixedBytes, B256};
use alloy_rlp::{Decodable, Encodable, RlpDecodable, RlpEncodable};

use crate::eth::error::InvalidResponse;
use crate::eth::message::{EthMessage, NewPooledTransactionHashes68, RequestId};
use crate::eth::serve::{ChainReader, SOFT_RESPONSE_LIMIT};
use crate::eth::version::EthVersion;

/// EIP-7594 `CELLS_PER_EXT_BLOB`: columns of an extended blob, bits of a [`CellMask`].
pub const CELLS_PER_EXT_BLOB: usize = 128;
/// EIP-7594 `BYTES_PER_CELL`: 64 field elements of 32 bytes.
pub const BYTES_PER_CELL: usize = 2048;
/// EIP-7594 (Osaka) `MAX_BLOBS_PER_TX`: bounds the cells one transaction can answer with.
pub const MAX_BLOBS_PER_TX: usize = 6;
/// The soft limit on transactions per `GetCells`: we never ask for more, and answer at most
/// this many.
pub const MAX_CELLS_HASHES_SERVE: usize = 64;

/// One cell of an extended blob.
pub type Cell = FixedBytes<BYTES_PER_CELL>;

/// Which columns of a blob: EIP-8070's `cell_mask`, the SSZ `BitVector[128]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CellMask(pub [u8; 16]);

impl CellMask {
    /// No column.
    pub const NONE: Self = Self([0; 16]);
    /// Every column: a provider's full availability.
    pub const ALL: Self = Self([0xff; 16]);

    /// A mask of these columns; indices of 128 or more are ignored.
    pub fn from_indices(indices: impl IntoIterator<Item = usize>) -> Self {
        let mut mask = Self::NONE;
        for i in indices.into_iter().filter(|i| *i < CELLS_PER_EXT_BLOB) {
            mask.0[i / 8] |= 1 << (i % 8);
        }
        mask
    }

    /// Whether column `i` is set.
    pub fn is_set(&self, i: usize) -> bool {
        i < CELLS_PER_EXT_BLOB && self.0[i / 8] >> (i % 8) & 1 == 1
    }

    /// The number of columns set.
    pub fn count(&self) -> usize {
        self.0.iter().map(|b| b.count_ones() as usize).sum()
    }

    /// The columns set, ascending.
    pub fn indices(&self) -> impl Iterator<Item = usize> + '_ {
        (0..CELLS_PER_EXT_BLOB).filter(|i| self.is_set(*i))
    }

    /// Whether every column of `self` is in `other`.
    pub fn is_subset_of(&self, other: &Self) -> bool {
        self.0.iter().zip(other.0).all(|(a, b)| a & !b == 0)
    }
}

impl Encodable for CellMask {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        self.0.encode(out)
    }

    fn length(&self) -> usize {
        17
    }
}

impl Decodable for CellMask {
    /// A 16-byte string. The empty string is read as no column: EIP-8070 has the announcer
    /// send "nil" when it announces no blob transaction (go-ethereum always sends 16 bytes,
    /// and so do we).
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let bytes = alloy_rlp::Header::decode_bytes(buf, false)?;
        match bytes.len() {
            0 => Ok(Self::NONE),
            16 => Ok(Self(bytes.try_into().expect("16 bytes"))),
            _ => Err(alloy_rlp::Error::Custom("cell mask is not 16 bytes")),
        }
    }
}

/// `NewPooledTransactionHashes` in its eth/72 shape: eth/68's three lists and the columns
/// the announcer holds for every blob transaction announced.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable)]
pub struct NewPooledTransactionHashes72 {
    /// Each transaction's EIP-2718 type byte.
    pub types: Bytes,
    /// Each transaction's encoded size.
    pub sizes: Vec<u32>,
    /// Each transaction's hash.
    pub hashes: Vec<B256>,
    /// The columns available for every type-3 transaction in the message.
    pub cell_mask: CellMask,
}

impl Decodable for NewPooledTransactionHashes72 {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        #[derive(RlpDecodable)]
        struct Raw {
            types: Bytes,
            sizes: Vec<u32>,
            hashes: Vec<B256>,
            cell_mask: CellMask,
        }
        let Raw { types, sizes, hashes, cell_mask } = Raw::decode(buf)?;
        if types.len() != hashes.len() || sizes.len() != hashes.len() {
            return Err(alloy_rlp::Error::Custom("NewPooledTransactionHashes: list lengths differ"));
        }
        Ok(Self { types, sizes, hashes, cell_mask })
    }
}

/// `GetCells` (0x14): the mask's columns of every blob of these transactions.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable, RlpDecodable)]
pub struct GetCells {
    /// The id the requester chose; the response carries the same one.
    pub request_id: RequestId,
    /// The blob transactions.
    pub hashes: Vec<B256>,
    /// The columns asked for.
    pub cell_mask: CellMask,
}

/// `Cells` (0x15): per answered transaction, its blobs' cells of the mask's columns.
#[derive(Debug, Clone, PartialEq, Eq, RlpEncodable)]
pub struct Cells {
    /// The request's id.
    pub request_id: RequestId,
    /// The transactions answered (a subset of those asked for, in request order).
    pub hashes: Vec<B256>,
    /// `cells[i]` belongs to `hashes[i]`: blob by blob, the mask's columns ascending.
    pub cells: Vec<Vec<Cell>>,
    /// The columns answered (the request's, or fewer).
    pub cell_mask: CellMask,
}

impl Decodable for Cells {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        #[derive(RlpDecodable)]
        struct Raw {
            request_id: RequestId,
            hashes: Vec<B256>,
            cells: Vec<Vec<Cell>>,
            cell_mask: CellMask,
        }
        let Raw { request_id, hashes, cells, cell_mask } = Raw::decode(buf)?;
        if hashes.len() != cells.len() {
            return Err(alloy_rlp::Error::Custom("Cells: hashes and cell lists differ in length"));
        }
        Ok(Self { request_id, hashes, cells, cell_mask })
    }
}

/// The answer to `request` from `chain`'s [`cells`](ChainReader::cells) hook: the
/// transactions it has cells for, in request order (unknown ones left out, as go-ethereum's
/// `answerGetCells`), at most [`MAX_CELLS_HASHES_SERVE`], and no more once the cells reach
/// [`SOFT_RESPONSE_LIMIT`]. A hook answer whose length is not a whole number of blobs for
/// the mask is left out rather than sent.
pub fn serve_cells(chain: &dyn ChainReader, request: &GetCells) -> Cells {
    let per_blob = request.cell_mask.count();
    let max_cells = SOFT_RESPONSE_LIMIT / BYTES_PER_CELL;
    let (mut hashes, mut cells, mut total) = (Vec::new(), Vec::new(), 0usize);
    if per_blob > 0 {
        for hash in request.hashes.iter().take(MAX_CELLS_HASHES_SERVE) {
            if total >= max_cells {
                break;
            }
            let Some(tx_cells) = chain.cells(hash, request.cell_mask) else { continue };
            if tx_cells.is_empty() || tx_cells.len() % per_blob != 0 {
                continue;
            }
            total += tx_cells.len();
            hashes.push(*hash);
            cells.push(tx_cells);
        }
    }
    Cells { request_id: request.request_id, hashes, cells, cell_mask: request.cell_mask }
}

/// Checks a `Cells` answer against its request (`hashes`, `mask`): only columns asked for,
/// only transactions asked for and each once, and per transaction a whole number of blobs'
/// worth of cells for the answered mask, between one blob and [`MAX_BLOBS_PER_TX`]. Each
/// cell's size is the decoder's check (a cell is exactly [`BYTES_PER_CELL`] bytes); the
/// cells' KZG proofs are the blob pool's, which holds the commitments.
pub fn validate_cells(hashes: &[B256], mask: CellMask, response: &Cells) -> Result<(), InvalidResponse> {
    if !response.cell_mask.is_subset_of(&mask) {
        return Err(InvalidResponse::CellMaskNotRequested);
    }
    if response.hashes.len() != response.cells.len() {
        return Err(InvalidResponse::TooMany { requested: response.hashes.len(), got: response.cells.len() });
    }
    let asked: HashSet<&B256> = hashes.iter().collect();
    let mut seen = HashSet::new();
    let per_blob = response.cell_mask.count();
    for (index, (hash, cells)) in response.hashes.iter().zip(&response.cells).enumerate() {
        if !asked.contains(hash) || !seen.insert(hash) {
            return Err(InvalidResponse::UnrequestedCells { hash: *hash });
        }
        let whole = per_blob > 0 && !cells.is_empty() && cells.len() % per_blob == 0;
        if !whole || cells.len() / per_blob > MAX_BLOBS_PER_TX {
            return Err(InvalidResponse::CellCount { index, count: cells.len(), per_blob });
        }
    }
    Ok(())
}

/// `NewPooledTransactionHashes` in the shape `version` takes (eth/68 ↔ eth/72).
pub(crate) fn adapt_announcement(message: EthMessage, version: EthVersion) -> EthMessage {
    match message {
        EthMessage::NewPooledTransactionHashes68(m) if version.has_cells() => {
            EthMessage::NewPooledTransactionHashes72(NewPooledTransactionHashes72 {
                types: m.types,
                sizes: m.sizes,
                hashes: m.hashes,
                cell_mask: CellMask::NONE,
            })
        }
        EthMessage::NewPooledTransactionHashes72(m)
            if !version.has_cells() && version >= EthVersion::Eth68 =>
        {
            EthMessage::NewPooledTransactionHashes68(NewPooledTransactionHashes68 {
                types: m.types,
                sizes: m.sizes,
                hashes: m.hashes,
            })
        }
        other => other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_primitives::hex;

    /// EIP-8070: column `i` is bit `i % 8` of byte `i / 8` (SSZ `BitVector[128]`), sent as a
    /// 16-byte string: `0x90` then the bytes.
    #[test]
    fn mask_layout_follows_the_eip() {
        let mask = CellMask::from_indices([0, 9, 127]);
        assert_eq!(mask.0, hex!("01020000000000000000000000000080"));
        assert_eq!(mask.count(), 3);
        assert_eq!(mask.indices().collect::<Vec<_>>(), vec![0, 9, 127]);
        let mut out = Vec::new();
        mask.encode(&mut out);
        assert_eq!(out, hex!("9001020000000000000000000000000080"));
        assert_eq!(CellMask::decode(&mut &out[..]).unwrap(), mask);
        assert_eq!(CellMask::decode(&mut &[0x80][..]).unwrap(), CellMask::NONE);
        assert!(CellMask::decode(&mut &hex!("8401020304")[..]).is_err());
        assert!(mask.is_subset_of(&CellMask::ALL) && !CellMask::ALL.is_subset_of(&mask));
    }

    #[test]
    fn get_cells_wire_shape() {
        let req = GetCells { request_id: 7, hashes: vec![B256::repeat_byte(0xaa)], cell_mask: CellMask::ALL };
        let mut out = Vec::new();
        req.encode(&mut out);
        // [7, [hash], mask]: 1 + 34 + 17 = 52 bytes of payload.
        let mut expected = vec![0xc0 + 52, 0x07, 0xe1, 0xa0];
        expected.extend_from_slice(&[0xaa; 32]);
        expected.push(0x90);
        expected.extend_from_slice(&[0xff; 16]);
        assert_eq!(out, expected);
        assert_eq!(GetCells::decode(&mut &out[..]).unwrap(), req);
    }

    #[test]
    fn validation() {
        let (a, b) = (B256::repeat_byte(1), B256::repeat_byte(2));
        let mask = CellMask::from_indices([3, 4]);
        let cells = |n: usize| vec![Cell::repeat_byte(9); n];
        let ok = Cells { request_id: 1, hashes: vec![a], cells: vec![cells(4)], cell_mask: mask };
        validate_cells(&[a, b], mask, &ok).unwrap();
        let fewer = Cells { cell_mask: CellMask::from_indices([3]), cells: vec![cells(1)], ..ok.clone() };
        validate_cells(&[a], mask, &fewer).unwrap();
        let wider = Cells { cell_mask: CellMask::from_indices([3, 5]), ..ok.clone() };
        assert_eq!(validate_cells(&[a], mask, &wider), Err(InvalidResponse::CellMaskNotRequested));
        let other = Cells { hashes: vec![b], ..ok.clone() };
        assert_eq!(validate_cells(&[a], mask, &other), Err(InvalidResponse::UnrequestedCells { hash: b }));
        let twice = Cells { hashes: vec![a, a], cells: vec![cells(2), cells(2)], ..ok.clone() };
        assert_eq!(validate_cells(&[a], mask, &twice), Err(InvalidResponse::UnrequestedCells { hash: a }));
        let odd = Cells { cells: vec![cells(3)], ..ok.clone() };
        assert_eq!(
            validate_cells(&[a], mask, &odd),
            Err(InvalidResponse::CellCount { index: 0, count: 3, per_blob: 2 })
        );
        let too_many = Cells { cells: vec![cells(14)], ..ok };
        assert!(matches!(validate_cells(&[a], mask, &too_many), Err(InvalidResponse::CellCount { .. })));
    }

    #[test]
    fn serving_keeps_to_64_transactions_and_known_ones() {
        let mut chain = crate::eth::MemoryChain::builder().blocks(0).build();
        let blob: Vec<Cell> = (0..CELLS_PER_EXT_BLOB).map(|i| Cell::repeat_byte(i as u8)).collect();
        let hashes: Vec<B256> = (0..70u8).map(B256::with_last_byte).collect();
        for h in &hashes[1..] {
            chain.insert_blob_cells(*h, vec![blob.clone()]);
        }
        let request =
            GetCells { request_id: 3, hashes: hashes.clone(), cell_mask: CellMask::from_indices([2, 9]) };
        let answer = serve_cells(&chain, &request);
        // The first is unknown and left out; then 64 at most.
        assert_eq!(answer.hashes, hashes[1..=MAX_CELLS_HASHES_SERVE - 1].to_vec());
        assert_eq!(answer.cells[0], vec![blob[2], blob[9]]);
        validate_cells(&request.hashes, request.cell_mask, &answer).unwrap();
        let none = GetCells { cell_mask: CellMask::NONE, ..request };
        assert!(serve_cells(&chain, &none).hashes.is_empty());
    }

    #[test]
    fn a_cell_of_the_wrong_size_does_not_decode() {
        let good = Cells {
            request_id: 1,
            hashes: vec![B256::ZERO],
            cells: vec![vec![Cell::repeat_byte(1)]],
            cell_mask: CellMask::from_indices([0]),
        };
        let mut out = Vec::new();
        good.encode(&mut out);
        assert_eq!(Cells::decode(&mut &out[..]).unwrap(), good);
        // The same message with a 2047-byte cell.
        #[derive(RlpEncodable)]
        struct Loose {
            request_id: u64,
            hashes: Vec<B256>,
            cells: Vec<Vec<Bytes>>,
            cell_mask: CellMask,
        }
        let loose = |len: usize| Loose {
            request_id: 1,
            hashes: vec![B256::ZERO],
            cells: vec![vec![Bytes::from(vec![1u8; len])]],
            cell_mask: CellMask::ALL,
        };
        assert!(Cells::decode(&mut &alloy_rlp::encode(loose(2048))[..]).is_ok());
        let short = alloy_rlp::encode(loose(2047));
        assert!(Cells::decode(&mut &short[..]).is_err());
    }
}

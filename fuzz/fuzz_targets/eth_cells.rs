//! eth/72's cell messages (EIP-8070): the first byte picks `NewPooledTransactionHashes`,
//! `GetCells` or `Cells`, the rest is the payload. Nothing panics; what decodes re-encodes
//! and decodes to the same message; a `GetCells` is served from a chain holding one blob
//! transaction and the answer passes the requester's check; a `Cells` answer that passes the
//! check for a fixed request holds only what was asked for, in whole blobs.
#![no_main]

use std::sync::OnceLock;

use alloy_primitives::B256;
use ethp2p::eth::{
    id, serve_cells, validate_cells, Cell, CellMask, EthMessage, EthVersion, MemoryChain, CELLS_PER_EXT_BLOB,
    MAX_BLOBS_PER_TX, MAX_CELLS_HASHES_SERVE,
};
use libfuzzer_sys::fuzz_target;

const BLOB_TX: B256 = B256::repeat_byte(0xb1);

fn chain() -> &'static MemoryChain {
    static CHAIN: OnceLock<MemoryChain> = OnceLock::new();
    CHAIN.get_or_init(|| {
        let mut chain = MemoryChain::builder().blocks(0).build();
        let blob: Vec<Cell> = (0..CELLS_PER_EXT_BLOB).map(|i| Cell::repeat_byte(i as u8)).collect();
        chain.insert_blob_cells(BLOB_TX, vec![blob.clone(), blob]);
        chain
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&selector, payload)) = data.split_first() else { return };
    let id = [id::NEW_POOLED_TRANSACTION_HASHES, id::GET_CELLS, id::CELLS][usize::from(selector % 3)];
    let Ok(msg) = EthMessage::decode(EthVersion::Eth72, id, payload) else { return };
    let again = EthMessage::decode(EthVersion::Eth72, id, &msg.encoded()).expect("re-encoding decodes");
    assert_eq!(again, msg);
    match msg {
        EthMessage::NewPooledTransactionHashes72(a) => {
            assert!(a.types.len() == a.hashes.len() && a.sizes.len() == a.hashes.len());
        }
        EthMessage::GetCells(request) => {
            let answer = serve_cells(chain(), &request);
            assert!(answer.hashes.len() <= MAX_CELLS_HASHES_SERVE);
            validate_cells(&request.hashes, request.cell_mask, &answer)
                .expect("what we serve passes our check");
        }
        EthMessage::Cells(cells) => {
            let mask = CellMask::from_indices([0, 1, 2, 64]);
            if validate_cells(&[BLOB_TX, B256::ZERO], mask, &cells).is_ok() {
                assert!(cells.cell_mask.is_subset_of(&mask));
                for list in &cells.cells {
                    let per_blob = cells.cell_mask.count();
                    assert!(list.len() % per_blob == 0 && list.len() / per_blob <= MAX_BLOBS_PER_TX);
                }
            }
        }
        _ => unreachable!("only the three ids are decoded"),
    }
});

//! eth/71 (EIP-8159): block access lists (EIP-7928) asked for and served.
//!
//! ```text
//! GetBlockAccessLists (0x12): [request-id, [blockhash, ...]]
//! BlockAccessLists    (0x13): [request-id, [block-access-list-or-empty-string, ...]]
//! ```
//!
//! A block access list (BAL) is an RLP list of account changes; its header commits to it
//! with `block_access_list_hash = keccak256(rlp(bal))` (EIP-7928; alloy-consensus carries the
//! field in `Header` from 2.x). Position `i` of a response answers position `i` of the
//! request; a BAL the server does not have is the RLP empty string `0x80`, because the empty
//! list `0xc0` is itself a valid BAL (of a block that touched nothing). go-ethereum keeps
//! each entry as raw RLP (`BlockAccessListPacket`), and so do we: the hash check runs over
//! the bytes received, with no re-encoding, and a caller that wants the typed changes
//! decodes them with [`decode_block_access_list`].
//!
//! Three pure parts, used by the session task: the codec ([`BlockAccessLists`]), the answer
//! ([`serve_block_access_lists`], within the 2 MiB soft limit) and the check
//! ([`validate_block_access_lists`]).

use alloy_consensus::Header;
use alloy_eips::eip7928::{AccountChanges, BlockAccessList};
use alloy_primitives::{keccak256, Bytes, B256};
use alloy_rlp::{Decodable, Encodable, EMPTY_STRING_CODE};

use crate::eth::error::InvalidResponse;
use crate::eth::message::RequestId;
use crate::eth::serve::{ChainReader, SOFT_RESPONSE_LIMIT};

/// Block access lists per `BlockAccessLists` response, as go-ethereum's `maxBALsServe`
/// bounds it and as the other per-block responses are bounded (`MAX_BODIES_SERVE`).
pub const MAX_BLOCK_ACCESS_LISTS_SERVE: usize = 1024;

/// `BlockAccessLists` (0x13): one entry per requested hash, in request order; `None` is the
/// empty string a server sends for a BAL it does not have, `Some` the BAL's RLP list as
/// received (header included), so that its hash is `keccak256` of exactly these bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockAccessLists {
    /// The request's id.
    pub request_id: RequestId,
    /// Per requested block: its BAL's RLP, or `None` if unavailable.
    pub lists: Vec<Option<Bytes>>,
}

impl BlockAccessLists {
    fn entries_len(&self) -> usize {
        self.lists.iter().map(|l| l.as_ref().map_or(1, |raw| raw.len())).sum()
    }
}

impl Encodable for BlockAccessLists {
    fn encode(&self, out: &mut dyn alloy_rlp::BufMut) {
        let entries = self.entries_len();
        let payload = self.request_id.length() + entries + alloy_rlp::length_of_length(entries);
        alloy_rlp::Header { list: true, payload_length: payload }.encode(out);
        self.request_id.encode(out);
        alloy_rlp::Header { list: true, payload_length: entries }.encode(out);
        for list in &self.lists {
            match list {
                Some(raw) => out.put_slice(raw),
                None => out.put_u8(EMPTY_STRING_CODE),
            }
        }
    }

    fn length(&self) -> usize {
        let entries = self.entries_len();
        let payload = self.request_id.length() + entries + alloy_rlp::length_of_length(entries);
        payload + alloy_rlp::length_of_length(payload)
    }
}

impl Decodable for BlockAccessLists {
    fn decode(buf: &mut &[u8]) -> alloy_rlp::Result<Self> {
        let mut pair = alloy_rlp::Header::decode_bytes(buf, true)?;
        let request_id = u64::decode(&mut pair)?;
        let mut entries = alloy_rlp::Header::decode_bytes(&mut pair, true)?;
        if !pair.is_empty() {
            return Err(alloy_rlp::Error::ListLengthMismatch { expected: 0, got: pair.len() });
        }
        let mut lists = Vec::new();
        while !entries.is_empty() {
            let start = entries;
            let header = alloy_rlp::Header::decode(&mut entries)?;
            if !header.list {
                // EIP-8159: the one string allowed is the empty one, "not available".
                if header.payload_length != 0 {
                    return Err(alloy_rlp::Error::Custom("BlockAccessLists: an entry is a non-empty string"));
                }
                lists.push(None);
                continue;
            }
            if entries.len() < header.payload_length {
                return Err(alloy_rlp::Error::InputTooShort);
            }
            entries = &entries[header.payload_length..];
            lists.push(Some(Bytes::copy_from_slice(&start[..start.len() - entries.len()])));
        }
        Ok(Self { request_id, lists })
    }
}

/// The typed account changes of a BAL's RLP (EIP-7928), e.g. one from
/// [`BlockAccessLists::lists`]. Trailing bytes are an error.
pub fn decode_block_access_list(mut raw: &[u8]) -> alloy_rlp::Result<BlockAccessList> {
    let bal = Vec::<AccountChanges>::decode(&mut raw)?;
    if !raw.is_empty() {
        return Err(alloy_rlp::Error::ListLengthMismatch { expected: 0, got: raw.len() });
    }
    Ok(bal)
}

/// The RLP of a BAL, as served and as hashed into its header
/// (`keccak256` of it is the header's `block_access_list_hash`).
pub fn encode_block_access_list(bal: &[AccountChanges]) -> Bytes {
    let mut out = Vec::new();
    alloy_rlp::encode_list(bal, &mut out);
    out.into()
}

/// Whether `raw` is exactly one well-formed RLP list header and its payload, the shape an
/// entry must have on the wire (a [`ChainReader`] that returns anything else is treated as
/// not having the BAL, so a broken store never corrupts a response).
fn is_one_list(raw: &[u8]) -> bool {
    let mut buf = raw;
    alloy_rlp::Header::decode_bytes(&mut buf, true).is_ok() && buf.is_empty()
}

/// The answer to `GetBlockAccessLists` for `hashes`: one entry per hash in request order
/// (unknown or unavailable ones as `None`), at most [`MAX_BLOCK_ACCESS_LISTS_SERVE`], and
/// no more once the lists reach [`SOFT_RESPONSE_LIMIT`] (2 MiB, as go-ethereum's
/// `softResponseLimit`; the EIP's text suggests 10 MiB, go-ethereum and the hive tests use
/// 2). Unlike bodies, an unknown hash does not end the answer: EIP-8159 and go-ethereum's
/// `serviceGetBlockAccessListsQuery` answer every position.
pub fn serve_block_access_lists(chain: &dyn ChainReader, hashes: &[B256]) -> Vec<Option<Bytes>> {
    let mut bytes = 0usize;
    let mut lists = Vec::new();
    for hash in hashes.iter().take(MAX_BLOCK_ACCESS_LISTS_SERVE) {
        if bytes >= SOFT_RESPONSE_LIMIT {
            break;
        }
        let list = chain.block_access_list(hash).filter(|raw| is_one_list(raw));
        bytes += list.as_ref().map_or(1, |raw| raw.len());
        lists.push(list);
    }
    lists
}

/// Checks `lists` against the headers they were asked for (`lists[i]` answers
/// `headers[i]`): no more entries than headers, and each BAL present hashes to its header's
/// `block_access_list_hash` (a BAL for a header without one, a pre-Amsterdam block, cannot
/// be right). Missing entries are valid: a peer may have pruned them (EIP-8159).
pub fn validate_block_access_lists(
    headers: &[Header],
    lists: &[Option<Bytes>],
) -> Result<(), InvalidResponse> {
    if lists.len() > headers.len() {
        return Err(InvalidResponse::TooMany { requested: headers.len(), got: lists.len() });
    }
    for (index, (header, list)) in headers.iter().zip(lists).enumerate() {
        let Some(raw) = list else { continue };
        match header.block_access_list_hash {
            None => return Err(InvalidResponse::UnexpectedBlockAccessList { index }),
            Some(expected) if keccak256(raw) != expected => {
                return Err(InvalidResponse::BlockAccessListHash { index })
            }
            Some(_) => {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use alloy_eips::eip7928::{BalanceChange, BlockAccessIndex, EMPTY_BLOCK_ACCESS_LIST_HASH};
    use alloy_primitives::{hex, Address, U256};

    fn one_account() -> Vec<AccountChanges> {
        let mut a = AccountChanges::new(Address::repeat_byte(0x35));
        a.balance_changes
            .push(BalanceChange { block_access_index: BlockAccessIndex(1), post_balance: U256::from(1_000) });
        vec![a]
    }

    /// EIP-7928 / EIP-8159: the hash is `keccak256(rlp(bal))`; the empty BAL is `0xc0`,
    /// whose hash is the well-known empty-list hash (`EMPTY_BLOCK_ACCESS_LIST_HASH`).
    #[test]
    fn the_hash_is_keccak_of_the_rlp() {
        let empty = encode_block_access_list(&[]);
        assert_eq!(&empty[..], &[0xc0]);
        assert_eq!(keccak256(&empty), EMPTY_BLOCK_ACCESS_LIST_HASH);
        let bal = one_account();
        let raw = encode_block_access_list(&bal);
        assert_eq!(keccak256(&raw), alloy_eips::eip7928::compute_block_access_list_hash(&bal));
        assert_eq!(decode_block_access_list(&raw).unwrap(), bal);
        // [address, [], [], [[1, 1000]], [], []]
        let expected = hex!("e0df943535353535353535353535353535353535353535c0c0c5c4018203e8c0c0");
        assert_eq!(&raw[..], &expected[..]);
    }

    /// go-ethereum's encoding: `[request-id, [entry, ...]]`, `0x80` for a missing entry.
    #[test]
    fn wire_shape_and_the_empty_string() {
        let raw = encode_block_access_list(&one_account());
        let msg = BlockAccessLists {
            request_id: 5,
            lists: vec![None, Some(Bytes::from_static(&[0xc0])), Some(raw.clone())],
        };
        let mut out = Vec::new();
        msg.encode(&mut out);
        assert_eq!(out.len(), msg.length());
        let mut expected =
            vec![0xc0 + 1 + 1 + 1 + 1 + raw.len() as u8, 0x05, 0xc0 + 2 + raw.len() as u8, 0x80, 0xc0];
        expected.extend_from_slice(&raw);
        assert_eq!(out, expected);
        assert_eq!(BlockAccessLists::decode(&mut &out[..]).unwrap(), msg);
        // A non-empty string is no BAL.
        let bad = [0xc5, 0x05, 0xc3, 0x82, 0x01, 0x02];
        assert!(BlockAccessLists::decode(&mut &bad[..]).is_err());
    }

    #[test]
    fn serving_answers_every_position_within_the_soft_limit() {
        let mut chain = crate::eth::MemoryChain::builder().blocks(4).build();
        let hashes: Vec<B256> = (0..=4).map(|n| chain.hash(n).unwrap()).collect();
        let hash = |n: u64| hashes[n as usize];
        let big = |b: u8| {
            let mut raw = vec![0xfa, 0x10, 0x00, 0x00];
            raw.extend(std::iter::repeat_n(b, 0x10_0000));
            Bytes::from(raw)
        };
        let (h1, h2, h3) = (hash(1), hash(2), hash(3));
        chain.insert_block_access_list(h1, Bytes::from_static(&[0xc0]));
        // Not one RLP list: never sent.
        chain.insert_block_access_list(h2, Bytes::from_static(&[0xc1]));
        let got = serve_block_access_lists(&chain, &[B256::ZERO, h1, h2, h3]);
        assert_eq!(got, vec![None, Some(Bytes::from_static(&[0xc0])), None, None]);
        // 1 MiB lists: the answer stops once it holds 2 MiB.
        for n in 1..=4 {
            chain.insert_block_access_list(hash(n), big(n as u8));
        }
        let got = serve_block_access_lists(&chain, &[hash(1), hash(2), hash(3), hash(4)]);
        assert_eq!(got.len(), 2);
    }

    #[test]
    fn validation_checks_each_hash() {
        let raw = encode_block_access_list(&one_account());
        let with = Header { block_access_list_hash: Some(keccak256(&raw)), ..Default::default() };
        let without = Header::default();
        validate_block_access_lists(std::slice::from_ref(&with), &[Some(raw.clone())]).unwrap();
        validate_block_access_lists(&[with.clone(), without.clone()], &[None, None]).unwrap();
        assert_eq!(
            validate_block_access_lists(std::slice::from_ref(&with), &[Some(Bytes::from_static(&[0xc0]))]),
            Err(InvalidResponse::BlockAccessListHash { index: 0 })
        );
        assert_eq!(
            validate_block_access_lists(&[with.clone(), without], &[None, Some(raw.clone())]),
            Err(InvalidResponse::UnexpectedBlockAccessList { index: 1 })
        );
        assert!(matches!(
            validate_block_access_lists(&[with], &[None, None]),
            Err(InvalidResponse::TooMany { requested: 1, got: 2 })
        ));
    }
}

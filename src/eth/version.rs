//! eth protocol versions and the message ids each one defines.

use std::fmt;

/// A version of the `eth` sub-protocol that we speak.
///
/// eth/66 added request ids (EIP-2481), eth/67 removed `GetNodeData` (EIP-4938), eth/68 added
/// types and sizes to `NewPooledTransactionHashes` (EIP-5793), eth/69 replaced the total
/// difficulty in `Status` with a block range, dropped the bloom from receipts, removed the
/// pre-merge block announcements and added `BlockRangeUpdate` (EIP-7642), eth/70 split a
/// block's receipt list over several `Receipts` messages (EIP-7975), eth/71 added block
/// access lists (EIP-8159) and eth/72 blob cells and the announcement's cell mask
/// (EIP-8070). `Status` keeps eth/69's shape from 69 on (go-ethereum `StatusPacket`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EthVersion {
    /// eth/66 (EIP-2481): request ids on every request/response pair.
    Eth66 = 66,
    /// eth/67 (EIP-4938): no `GetNodeData`/`NodeData`.
    Eth67 = 67,
    /// eth/68 (EIP-5793): typed `NewPooledTransactionHashes`.
    Eth68 = 68,
    /// eth/69 (EIP-7642): block range in `Status`, bloomless receipts, `BlockRangeUpdate`.
    Eth69 = 69,
    /// eth/70 (EIP-7975): partial block receipt lists (`firstBlockReceiptIndex`,
    /// `lastBlockIncomplete`).
    Eth70 = 70,
    /// eth/71 (EIP-8159): `GetBlockAccessLists`/`BlockAccessLists` (0x12/0x13).
    Eth71 = 71,
    /// eth/72 (EIP-8070): `GetCells`/`Cells` (0x14/0x15), a cell mask in
    /// `NewPooledTransactionHashes`.
    Eth72 = 72,
}

impl EthVersion {
    /// Every version we speak, newest first (the order a Hello advertises them in does not
    /// matter; the highest shared one wins).
    pub const ALL: [EthVersion; 7] =
        [Self::Eth72, Self::Eth71, Self::Eth70, Self::Eth69, Self::Eth68, Self::Eth67, Self::Eth66];

    /// The newest version we speak.
    pub const LATEST: EthVersion = Self::Eth72;

    /// The version number as it appears in a Hello capability and in `Status`.
    pub const fn as_u8(self) -> u8 {
        self as u8
    }

    /// The number of message ids the version reserves in the RLPx message-id space: 17
    /// (0x00..=0x10) for 66–68, 18 for 69 (adds `BlockRangeUpdate` = 0x11) and 70 (new shapes,
    /// no new ids), 20 for 71 (0x12, 0x13) and 22 for 72 (0x14, 0x15), as go-ethereum's
    /// `protocolLengths`. [`Protocol::eth`](crate::rlpx::Protocol::eth) uses the same table,
    /// so capability offsets agree with every peer.
    pub const fn message_count(self) -> u8 {
        match self {
            Self::Eth66 | Self::Eth67 | Self::Eth68 => 17,
            Self::Eth69 | Self::Eth70 => 18,
            Self::Eth71 => 20,
            Self::Eth72 => 22,
        }
    }

    /// Whether `GetBlockAccessLists`/`BlockAccessLists` exist (71+, EIP-8159).
    pub const fn has_block_access_lists(self) -> bool {
        (self as u8) >= 71
    }

    /// Whether `GetCells`/`Cells` exist and `NewPooledTransactionHashes` carries a cell mask
    /// (72+, EIP-8070).
    pub const fn has_cells(self) -> bool {
        (self as u8) >= 72
    }

    /// Whether `Status` carries the total difficulty and best hash (66–68) rather than a
    /// block range (69+).
    pub const fn has_total_difficulty(self) -> bool {
        (self as u8) < 69
    }

    /// Whether `GetReceipts`/`Receipts` carry EIP-7975's `firstBlockReceiptIndex` and
    /// `lastBlockIncomplete` (70+).
    pub const fn has_partial_receipts(self) -> bool {
        (self as u8) >= 70
    }

    /// Whether `message_id` is defined for this version.
    pub const fn has_message(self, id: u8) -> bool {
        use crate::eth::message::id;
        match id {
            id::STATUS
            | id::TRANSACTIONS
            | id::GET_BLOCK_HEADERS
            | id::BLOCK_HEADERS
            | id::GET_BLOCK_BODIES
            | id::BLOCK_BODIES
            | id::NEW_POOLED_TRANSACTION_HASHES
            | id::GET_POOLED_TRANSACTIONS
            | id::POOLED_TRANSACTIONS
            | id::GET_RECEIPTS
            | id::RECEIPTS => true,
            // EIP-7642: the pre-merge announcements are gone in eth/69.
            id::NEW_BLOCK_HASHES | id::NEW_BLOCK => (self as u8) < 69,
            // EIP-4938: state sync over eth ended with eth/67.
            id::GET_NODE_DATA | id::NODE_DATA => matches!(self, Self::Eth66),
            id::BLOCK_RANGE_UPDATE => (self as u8) >= 69,
            id::GET_BLOCK_ACCESS_LISTS | id::BLOCK_ACCESS_LISTS => self.has_block_access_lists(),
            id::GET_CELLS | id::CELLS => self.has_cells(),
            _ => false,
        }
    }
}

impl TryFrom<u8> for EthVersion {
    type Error = u8;

    fn try_from(v: u8) -> Result<Self, u8> {
        match v {
            66 => Ok(Self::Eth66),
            67 => Ok(Self::Eth67),
            68 => Ok(Self::Eth68),
            69 => Ok(Self::Eth69),
            70 => Ok(Self::Eth70),
            71 => Ok(Self::Eth71),
            72 => Ok(Self::Eth72),
            other => Err(other),
        }
    }
}

impl std::str::FromStr for EthVersion {
    type Err = String;

    /// `69` or `eth/69`: how command lines name a version (`--eth 69,70`).
    fn from_str(s: &str) -> Result<Self, String> {
        let n = s.trim().trim_start_matches("eth/");
        let v: u8 = n.parse().map_err(|_| format!("{s:?} is not an eth version"))?;
        Self::try_from(v).map_err(|v| format!("eth/{v} is not a version we speak (66 to 72)"))
    }
}

impl fmt::Display for EthVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "eth/{}", self.as_u8())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::eth::message::id;

    #[test]
    fn message_tables_follow_the_eips() {
        assert!(EthVersion::Eth66.has_message(id::GET_NODE_DATA));
        assert!(!EthVersion::Eth67.has_message(id::GET_NODE_DATA));
        assert!(EthVersion::Eth68.has_message(id::NEW_BLOCK));
        assert!(!EthVersion::Eth69.has_message(id::NEW_BLOCK));
        assert!(!EthVersion::Eth69.has_message(id::NEW_BLOCK_HASHES));
        assert!(EthVersion::Eth69.has_message(id::BLOCK_RANGE_UPDATE));
        assert!(!EthVersion::Eth68.has_message(id::BLOCK_RANGE_UPDATE));
        assert!(EthVersion::Eth70.has_message(id::BLOCK_RANGE_UPDATE));
        assert!(!EthVersion::Eth70.has_message(id::NEW_BLOCK));
        assert!(!EthVersion::Eth70.has_total_difficulty() && EthVersion::Eth70.has_partial_receipts());
        assert!(!EthVersion::Eth69.has_partial_receipts());
        // go-ethereum `protocolLengths`: 18 ids for 69 and 70.
        assert_eq!(EthVersion::Eth70.message_count(), 18);
        assert_eq!((EthVersion::Eth71.message_count(), EthVersion::Eth72.message_count()), (20, 22));
        assert!(
            EthVersion::Eth71.has_message(id::BLOCK_ACCESS_LISTS) && !EthVersion::Eth70.has_message(0x12)
        );
        assert!(EthVersion::Eth72.has_message(id::CELLS) && !EthVersion::Eth71.has_message(id::GET_CELLS));
        for v in EthVersion::ALL {
            assert!(!v.has_message(v.message_count()), "{v}: ids end below message_count");
            assert!(v.has_message(v.message_count() - 1), "{v}: the last id is defined");
            assert_eq!(crate::rlpx::Protocol::eth(v.as_u8().into()).messages, v.message_count());
            assert_eq!(EthVersion::try_from(v.as_u8()), Ok(v));
        }
        assert_eq!(EthVersion::try_from(65), Err(65));
        assert_eq!("eth/71".parse::<EthVersion>(), Ok(EthVersion::Eth71));
        assert_eq!(" 72".parse::<EthVersion>(), Ok(EthVersion::Eth72));
        assert!("73".parse::<EthVersion>().is_err() && "x".parse::<EthVersion>().is_err());
    }
}

//! The `Status` handshake's pure parts: building ours for a version and validating theirs.
//!
//! The checks follow reth's `EthereumEthHandshake` and geth's `eth/handshake.go`: same
//! version, network id and genesis; an EIP-2124 compatible fork id; a total difficulty of at
//! most 160 bits (66–68); a non-empty block range with a non-zero latest hash (69).

use alloy_primitives::{B256, U256};

use crate::eth::error::StatusError;
use crate::eth::message::{BlockRange, Status, StatusHead, MAX_TD_BITS};
use crate::eth::version::EthVersion;
use crate::record::{ForkFilter, ForkId};

/// What we announce in `Status`, independent of the version: [`StatusInfo::status`] picks
/// the fields a version sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StatusInfo {
    /// The network id (1 = mainnet).
    pub network_id: u64,
    /// Hash of our genesis block.
    pub genesis: B256,
    /// Our EIP-2124 fork id at our head.
    pub fork_id: ForkId,
    /// Total difficulty at our head (sent by eth/66–68 only).
    pub total_difficulty: U256,
    /// The oldest block we serve bodies and receipts for (eth/69).
    pub earliest: u64,
    /// Our head's number (eth/69).
    pub latest: u64,
    /// Our head's hash (the "best hash" of 66–68, the "latest hash" of 69).
    pub latest_hash: B256,
}

impl StatusInfo {
    /// Our `Status` message for `version`.
    pub fn status(&self, version: EthVersion) -> Status {
        let head = if version.has_total_difficulty() {
            StatusHead::TotalDifficulty {
                total_difficulty: self.total_difficulty,
                best_hash: self.latest_hash,
            }
        } else {
            StatusHead::Range(self.block_range())
        };
        Status {
            version: version.as_u8(),
            network_id: self.network_id,
            genesis: self.genesis,
            fork_id: self.fork_id,
            head,
        }
    }

    /// Our served range, as eth/69's `Status` and `BlockRangeUpdate` carry it.
    pub fn block_range(&self) -> BlockRange {
        BlockRange { earliest: self.earliest, latest: self.latest, latest_hash: self.latest_hash }
    }
}

/// Validates the peer's `Status` against ours, on the negotiated `version`, with our fork
/// filter (EIP-2124).
pub fn validate_status(
    version: EthVersion,
    ours: &StatusInfo,
    filter: &ForkFilter,
    theirs: &Status,
) -> Result<(), StatusError> {
    if theirs.version != version.as_u8() {
        return Err(StatusError::VersionMismatch { expected: version, got: theirs.version });
    }
    if theirs.network_id != ours.network_id {
        return Err(StatusError::NetworkIdMismatch { expected: ours.network_id, got: theirs.network_id });
    }
    if theirs.genesis != ours.genesis {
        return Err(StatusError::GenesisMismatch { expected: ours.genesis, got: theirs.genesis });
    }
    match (&theirs.head, version.has_total_difficulty()) {
        (StatusHead::TotalDifficulty { total_difficulty, .. }, true) => {
            if total_difficulty.bit_len() > MAX_TD_BITS {
                return Err(StatusError::TotalDifficultyTooLarge { bits: total_difficulty.bit_len() });
            }
        }
        (StatusHead::Range(range), false) => validate_block_range(range)?,
        _ => return Err(StatusError::WrongShape(version)),
    }
    filter.validate(theirs.fork_id)?;
    Ok(())
}

/// eth/69 block range rules, for `Status` and `BlockRangeUpdate` alike: the range is not
/// empty and the latest hash is set (geth `validateBlockRange`, reth's handshake).
pub fn validate_block_range(range: &BlockRange) -> Result<(), StatusError> {
    if range.earliest > range.latest {
        return Err(StatusError::InvalidBlockRange { earliest: range.earliest, latest: range.latest });
    }
    if range.latest_hash.is_zero() {
        return Err(StatusError::ZeroLatestHash);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rlpx::DisconnectReason;
    use alloy_primitives::b256;

    const MAINNET_GENESIS: B256 = b256!("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3");

    /// Mainnet's block forks (EIP-2124 "Test cases"), enough for the frontier-era checks.
    fn mainnet_filter(head: u64) -> ForkFilter {
        ForkFilter::new(
            MAINNET_GENESIS,
            0,
            [1_150_000, 1_920_000, 2_463_000, 2_675_000, 4_370_000, 7_280_000, 9_069_000],
            [],
            head,
            0,
        )
    }

    fn ours() -> StatusInfo {
        StatusInfo {
            network_id: 1,
            genesis: MAINNET_GENESIS,
            fork_id: mainnet_filter(0).current(),
            total_difficulty: U256::from(17_179_869_184u64),
            earliest: 0,
            latest: 0,
            latest_hash: MAINNET_GENESIS,
        }
    }

    #[test]
    fn our_status_passes_our_checks_on_every_version() {
        let filter = mainnet_filter(0);
        assert_eq!(ours().fork_id, ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next: 1_150_000 });
        for v in EthVersion::ALL {
            validate_status(v, &ours(), &filter, &ours().status(v)).unwrap();
        }
    }

    #[test]
    fn mismatches_give_the_right_error_and_reason() {
        let filter = mainnet_filter(0);
        let v = EthVersion::Eth68;
        let check = |f: &dyn Fn(&mut Status)| {
            let mut s = ours().status(v);
            f(&mut s);
            validate_status(v, &ours(), &filter, &s).unwrap_err()
        };
        let e = check(&|s| s.network_id = 5);
        assert_eq!(e, StatusError::NetworkIdMismatch { expected: 1, got: 5 });
        assert_eq!(e.disconnect_reason(), DisconnectReason::SubprotocolSpecific);
        assert!(e.should_ban());
        let e = check(&|s| s.genesis = B256::repeat_byte(1));
        assert!(matches!(e, StatusError::GenesisMismatch { .. }));
        let e = check(&|s| s.version = 67);
        assert!(matches!(e, StatusError::VersionMismatch { got: 67, .. }));
        // A fork hash nobody on mainnet ever had: EIP-2124 rule 4, banned.
        let e = check(&|s| s.fork_id.hash = [0xde, 0xad, 0xbe, 0xef].into());
        assert!(matches!(e, StatusError::ForkId(_)), "{e}");
        assert!(e.should_ban());
        assert_eq!(e.disconnect_reason(), DisconnectReason::SubprotocolSpecific);
        // 161 bits of TD.
        let e = check(&|s| {
            s.head =
                StatusHead::TotalDifficulty { total_difficulty: U256::from(1) << 160, best_hash: B256::ZERO }
        });
        assert_eq!(e, StatusError::TotalDifficultyTooLarge { bits: 161 });
        assert_eq!(e.disconnect_reason(), DisconnectReason::ProtocolBreach);
        // A 69-shaped Status on a 68 session.
        let e = check(&|s| *s = ours().status(EthVersion::Eth69));
        assert!(matches!(e, StatusError::VersionMismatch { .. }));
        let e = check(&|s| s.head = StatusHead::Range(ours().block_range()));
        assert_eq!(e, StatusError::WrongShape(v));
    }

    #[test]
    fn stale_fork_id_is_dropped_but_not_banned() {
        // We are past Homestead; the remote still announces frontier with no next fork.
        let filter = mainnet_filter(1_500_000);
        let mut info = ours();
        info.fork_id = filter.current();
        let mut s = info.status(EthVersion::Eth68);
        s.fork_id = ForkId { hash: [0xfc, 0x64, 0xec, 0x04].into(), next: 0 };
        let e = validate_status(EthVersion::Eth68, &info, &filter, &s).unwrap_err();
        assert!(matches!(e, StatusError::ForkId(_)), "{e}");
        assert!(!e.should_ban());
    }

    #[test]
    fn eth69_block_range_rules() {
        let filter = mainnet_filter(0);
        let v = EthVersion::Eth69;
        let mut s = ours().status(v);
        s.head = StatusHead::Range(BlockRange { earliest: 10, latest: 9, latest_hash: B256::repeat_byte(1) });
        assert_eq!(
            validate_status(v, &ours(), &filter, &s),
            Err(StatusError::InvalidBlockRange { earliest: 10, latest: 9 })
        );
        s.head = StatusHead::Range(BlockRange { earliest: 9, latest: 9, latest_hash: B256::ZERO });
        assert_eq!(validate_status(v, &ours(), &filter, &s), Err(StatusError::ZeroLatestHash));
        s.head = StatusHead::Range(BlockRange { earliest: 9, latest: 9, latest_hash: B256::repeat_byte(1) });
        assert_eq!(validate_status(v, &ours(), &filter, &s), Ok(()));
    }
}

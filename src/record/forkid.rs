//! EIP-2124 fork identifiers.

use alloy_primitives::FixedBytes;

/// Four bytes: a CRC32 fork hash.
pub(crate) type B32 = FixedBytes<4>;
use alloy_rlp::{RlpDecodable, RlpEncodable};

/// EIP-2124 fork identifier: a CRC32 over the genesis hash and every passed fork, and the
/// next fork's block number or timestamp (0 if none is scheduled).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct ForkId {
    /// `FORK_HASH`: CRC32 checksum of the genesis hash and the passed fork blocks/times.
    pub hash: B32,
    /// `FORK_NEXT`: block number or timestamp of the next upcoming fork, or 0.
    pub next: u64,
}

impl std::fmt::Display for ForkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", hex::encode(self.hash), self.next)
    }
}

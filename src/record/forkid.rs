//! EIP-2124 fork identifiers: computing our own, validating a remote's, and the ENR `eth`
//! entry that carries one (EIP-868).
//!
//! The algorithm follows go-ethereum's `core/forkid` exactly, including its handling of
//! timestamp-scheduled forks (Shanghai onwards), which EIP-2124 itself predates:
//!
//! - the checksum covers the genesis hash, then every *passed* block fork, then every passed
//!   timestamp fork, each as a big-endian `u64`;
//! - forks scheduled at block 0 and timestamp forks at or before the genesis timestamp are part
//!   of the genesis rule set and are left out, as are duplicates (several forks at one block);
//! - `next` is the first unpassed block fork, else the first unpassed timestamp fork, else 0.
//!
//! [`ForkFilter`] is a pure value: the owner (the node's status task) calls
//! [`ForkFilter::set_head`] as the chain advances and [`ForkFilter::validate`] for each
//! remote fork id, from a `Status` message or an ENR.

use alloy_primitives::{FixedBytes, B256};
use alloy_rlp::{Decodable, Encodable, Header, RlpDecodable, RlpEncodable};

use super::{EthEntryError, ForkIdError};

/// Four bytes: a CRC32 fork hash.
pub(crate) type B32 = FixedBytes<4>;

/// go-ethereum `core/forkid` `timestampThreshold`: mainnet's genesis timestamp. A remote
/// `FORK_NEXT` above it must be a timestamp, not a block number. geth uses it to tell the two
/// apart while a chain crosses from block-scheduled to time-scheduled forks (rule 1a).
const TIMESTAMP_THRESHOLD: u64 = 1_438_269_973;

/// EIP-2124 fork identifier: a CRC32 over the genesis hash and every passed fork, and the
/// next fork's block number or timestamp (0 if none is scheduled).
///
/// ```
/// use ethp2p::ForkId;
/// let id = ForkId::new([0xfc, 0x64, 0xec, 0x04], 1_150_000);
/// assert_eq!(id.to_string(), "fc64ec04/1150000");
/// ```
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, RlpEncodable, RlpDecodable, serde::Serialize, serde::Deserialize,
)]
pub struct ForkId {
    /// `FORK_HASH`: CRC32 checksum of the genesis hash and the passed fork blocks/times.
    pub hash: B32,
    /// `FORK_NEXT`: block number or timestamp of the next upcoming fork, or 0.
    pub next: u64,
}

impl ForkId {
    /// A fork id from its four hash bytes and its `FORK_NEXT`.
    pub const fn new(hash: [u8; 4], next: u64) -> Self {
        Self { hash: FixedBytes(hash), next }
    }
}

impl std::fmt::Display for ForkId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", hex::encode(self.hash), self.next)
    }
}

/// CRC32 of the genesis hash: the fork hash of a chain with no passed forks.
fn genesis_checksum(genesis_hash: &B256) -> u32 {
    crc32fast::hash(genesis_hash.as_slice())
}

/// EIP-2124: `forkhash_n = CRC32(forkhash_{n-1} bytes || uint64_be(fork_n))`, computed as an
/// update of the running checksum (go-ethereum `checksumUpdate`).
fn checksum_update(hash: u32, fork: u64) -> u32 {
    let mut hasher = crc32fast::Hasher::new_with_initial(hash);
    hasher.update(&fork.to_be_bytes());
    hasher.finalize()
}

/// The fork lists that enter the checksum, as go-ethereum's `gatherForks` builds them: sorted,
/// without duplicates, without block-0 forks and without timestamp forks at or before genesis.
fn gather_forks(
    block_forks: impl IntoIterator<Item = u64>,
    time_forks: impl IntoIterator<Item = u64>,
    genesis_timestamp: u64,
) -> (Vec<u64>, Vec<u64>) {
    let mut blocks: Vec<u64> = block_forks.into_iter().filter(|&b| b != 0).collect();
    blocks.sort_unstable();
    blocks.dedup();
    let mut times: Vec<u64> = time_forks.into_iter().filter(|&t| t > genesis_timestamp).collect();
    times.sort_unstable();
    times.dedup();
    (blocks, times)
}

/// Our side of EIP-2124: the chain's fork schedule and current head, from which it computes our
/// [`ForkId`] and decides whether a remote's fork id is compatible.
///
/// ```
/// use ethp2p::{record::{ForkFilter, ForkIdError}, ForkId};
/// let genesis = "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3".parse()?;
/// // Mainnet's block forks up to Istanbul, head in Petersburg.
/// let forks = [1_150_000, 1_920_000, 2_463_000, 2_675_000, 4_370_000, 7_280_000, 9_069_000];
/// let mut filter = ForkFilter::new(genesis, 0, forks, [], 7_987_396, 0);
/// assert_eq!(filter.current(), ForkId::new([0x66, 0x8d, 0xb0, 0xaf], 9_069_000));
/// // A remote still on Byzantium that never heard of Constantinople needs an update.
/// let stale = ForkId::new([0xa0, 0x0b, 0xc3, 0x24], 0);
/// assert!(matches!(filter.validate(stale), Err(ForkIdError::RemoteStale { .. })));
/// // Passing Istanbul changes our fork id.
/// assert!(filter.set_head(9_069_000, 0).is_some());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ForkFilter {
    /// Block-scheduled forks that enter the checksum (sorted, deduplicated, non-zero).
    block_forks: Vec<u64>,
    /// Timestamp-scheduled forks that enter the checksum (sorted, deduplicated, after genesis).
    time_forks: Vec<u64>,
    /// `sums[i]` is the fork hash once the first `i` forks (blocks, then times) have passed;
    /// `sums[0]` is the genesis checksum. One longer than the fork list.
    sums: Vec<B32>,
    /// Local head block number.
    head_block: u64,
    /// Local head block timestamp.
    head_timestamp: u64,
}

impl ForkFilter {
    /// A filter for a chain with this genesis and fork schedule, at this head.
    ///
    /// The fork lists may be in any order and contain duplicates and genesis forks (block 0,
    /// or a timestamp at or before `genesis_timestamp`); they are normalised as go-ethereum
    /// does.
    pub fn new(
        genesis_hash: B256,
        genesis_timestamp: u64,
        block_forks: impl IntoIterator<Item = u64>,
        time_forks: impl IntoIterator<Item = u64>,
        head_block: u64,
        head_timestamp: u64,
    ) -> Self {
        let (block_forks, time_forks) = gather_forks(block_forks, time_forks, genesis_timestamp);
        let mut hash = genesis_checksum(&genesis_hash);
        let mut sums = Vec::with_capacity(block_forks.len() + time_forks.len() + 1);
        sums.push(B32::from(hash.to_be_bytes()));
        for &fork in block_forks.iter().chain(&time_forks) {
            hash = checksum_update(hash, fork);
            sums.push(B32::from(hash.to_be_bytes()));
        }
        Self { block_forks, time_forks, sums, head_block, head_timestamp }
    }

    /// The local head this filter validates against: `(block number, timestamp)`.
    pub fn head(&self) -> (u64, u64) {
        (self.head_block, self.head_timestamp)
    }

    /// Moves the local head. Returns the new fork id if it changed (a fork was passed, or a
    /// reorg went back before one), so the caller can update its ENR and Status.
    pub fn set_head(&mut self, head_block: u64, head_timestamp: u64) -> Option<ForkId> {
        let before = self.current();
        self.head_block = head_block;
        self.head_timestamp = head_timestamp;
        let after = self.current();
        (after != before).then_some(after)
    }

    /// Our fork id at the current head (go-ethereum `NewID`).
    pub fn current(&self) -> ForkId {
        let passed_blocks = self.block_forks.iter().take_while(|&&b| b <= self.head_block).count();
        if let Some(&next) = self.block_forks.get(passed_blocks) {
            return ForkId { hash: self.sums[passed_blocks], next };
        }
        let passed_times = self.time_forks.iter().take_while(|&&t| t <= self.head_timestamp).count();
        let passed = passed_blocks + passed_times;
        ForkId { hash: self.sums[passed], next: self.time_forks.get(passed_times).copied().unwrap_or(0) }
    }

    /// The fork hashes of every fork state this chain has been or will be in, genesis first.
    pub fn fork_hashes(&self) -> &[B32] {
        &self.sums
    }

    /// EIP-2124 validation of a remote fork id against our head (go-ethereum `newFilter`):
    ///
    /// 1. Same fork hash as ours: accept, unless the remote announces a next fork that we have
    ///    already passed without knowing it (1a: [`ForkIdError::LocalIncompatibleOrStale`]).
    /// 2. The remote hash is one of our past states: accept if its `next` is the fork that
    ///    followed that state for us, else [`ForkIdError::RemoteStale`] (it needs an update).
    /// 3. The remote hash is one of our future states: accept (we are syncing).
    /// 4. Otherwise the chains differ: [`ForkIdError::LocalIncompatibleOrStale`].
    pub fn validate(&self, remote: ForkId) -> Result<(), ForkIdError> {
        // A head at u64::MAX would pass the sentinel below; no real fork is scheduled there.
        let (block, time) = (self.head_block.min(u64::MAX - 1), self.head_timestamp.min(u64::MAX - 1));
        // Forks in checksum order plus a sentinel that is never passed, so that the loop always
        // finds a first unpassed fork. Without timestamp forks the sentinel is compared with the
        // block number, as in geth, so it cannot spill into timestamp territory.
        let forks = self.block_forks.iter().chain(&self.time_forks).copied().chain([u64::MAX]);
        let by_block = self.block_forks.len() + usize::from(self.time_forks.is_empty());
        for (i, fork) in forks.enumerate() {
            let head = if i < by_block { block } else { time };
            if head >= fork {
                continue;
            }
            let local = ForkId { hash: self.sums[i], next: if fork == u64::MAX { 0 } else { fork } };
            let incompatible = ForkIdError::LocalIncompatibleOrStale { local, remote };
            // Rule 1: same fork state.
            if self.sums[i] == remote.hash {
                // Rule 1a: the remote's next fork is already behind us, yet we never forked
                // there. A `next` above the threshold is a timestamp even while we are still
                // counting blocks (the block-to-time transition).
                let passed_remote_fork = remote.next > 0
                    && (head >= remote.next || (remote.next > TIMESTAMP_THRESHOLD && time >= remote.next));
                return if passed_remote_fork { Err(incompatible) } else { Ok(()) };
            }
            // Rule 2: the remote is in one of our past states.
            if let Some(j) = self.sums[..i].iter().position(|s| *s == remote.hash) {
                let expected_next = self.block_forks.iter().chain(&self.time_forks).nth(j).copied();
                return if expected_next == Some(remote.next) {
                    Ok(())
                } else {
                    Err(ForkIdError::RemoteStale { local, remote })
                };
            }
            // Rule 3: the remote is in one of our future states.
            if self.sums[i + 1..].contains(&remote.hash) {
                return Ok(());
            }
            // Rule 4.
            return Err(incompatible);
        }
        // Unreachable: the sentinel is never passed. geth accepts here rather than reject.
        Ok(())
    }
}

/// Encodes the ENR `eth` entry (EIP-2124 "Announcement", go-ethereum `eth/protocols/eth`
/// `enrEntry`): the RLP list `[[fork_hash, fork_next]]`. Insert it with
/// `Enr::insert_raw_rlp("eth", ..)`.
///
/// ```
/// use ethp2p::{record::{decode_eth_entry, encode_eth_entry}, ForkId};
/// let id = ForkId::new([0xde, 0xad, 0xbe, 0xef], 0xbaddcafe);
/// let entry = encode_eth_entry(id);
/// assert_eq!(hex::encode(&entry), "cbca84deadbeef84baddcafe");
/// assert_eq!(decode_eth_entry(&entry)?, id);
/// # Ok::<(), ethp2p::record::EthEntryError>(())
/// ```
pub fn encode_eth_entry(id: ForkId) -> Vec<u8> {
    let mut out = Vec::with_capacity(1 + id.length());
    Header { list: true, payload_length: id.length() }.encode(&mut out);
    id.encode(&mut out);
    out
}

/// Decodes the ENR `eth` entry: a list whose first element is a [`ForkId`]. Further elements
/// are ignored, as go-ethereum's `rlp:"tail"` field does, so that the entry can grow.
pub fn decode_eth_entry(mut raw: &[u8]) -> Result<ForkId, EthEntryError> {
    let header = Header::decode(&mut raw).map_err(EthEntryError::Rlp)?;
    if !header.list {
        return Err(EthEntryError::NotAList);
    }
    if raw.len() != header.payload_length {
        return Err(EthEntryError::TrailingBytes);
    }
    if raw.is_empty() {
        return Err(EthEntryError::MissingForkId);
    }
    ForkId::decode(&mut raw).map_err(EthEntryError::Rlp)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::Value;

    const MAINNET_GENESIS: B256 =
        alloy_primitives::b256!("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3");

    fn vectors(name: &str) -> Value {
        let path = format!("{}/../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        serde_json::from_str(&text).unwrap()
    }

    fn hash(v: &Value) -> B32 {
        let s = v.as_str().unwrap();
        let n = if s == "math.MaxUint32" {
            u32::MAX
        } else {
            u32::from_str_radix(s.trim_start_matches("0x"), 16).unwrap()
        };
        B32::from(n.to_be_bytes())
    }

    /// A u64 written as a JSON number, a decimal or 0x string, or `math.MaxUint64`.
    fn num(v: &Value) -> u64 {
        match v {
            Value::Number(n) => n.as_u64().unwrap(),
            Value::String(s) if s == "math.MaxUint64" => u64::MAX,
            Value::String(s) => match s.strip_prefix("0x") {
                Some(h) => u64::from_str_radix(h, 16).unwrap(),
                None => s.parse().unwrap(),
            },
            other => panic!("not a number: {other}"),
        }
    }

    /// EIP-2124 "Test Cases" use mainnet as it stood at Petersburg (the EIP's time of writing).
    fn eip_mainnet(head: u64) -> ForkFilter {
        let forks = [1_150_000, 1_920_000, 2_463_000, 2_675_000, 2_675_000, 4_370_000, 7_280_000, 7_280_000];
        ForkFilter::new(MAINNET_GENESIS, 0, forks, [], head, 0)
    }

    /// EIP-2124 names the legacy testnets by Go name only; these are go-ethereum's values for
    /// them (params/config.go at the time: RopstenGenesisHash, RinkebyGenesisHash,
    /// GoerliGenesisHash and their chain configs), capped at Istanbul like the EIP's table.
    fn eip_network(name: &str) -> (B256, Vec<u64>) {
        match name {
            "mainnet" => {
                (MAINNET_GENESIS, vec![1_150_000, 1_920_000, 2_463_000, 2_675_000, 4_370_000, 7_280_000])
            }
            "ropsten" => (
                alloy_primitives::b256!("41941023680923e0fe4d74a34bdac8141f2540e3ae90623718e47d66d1ca4a2d"),
                vec![0, 0, 10, 10, 1_700_000, 4_230_000, 4_939_394, 6_485_846],
            ),
            "rinkeby" => (
                alloy_primitives::b256!("6341fd3daf94b748c72ced5a5b26028f2474f5f00d824504e4fa37a75767e177"),
                vec![1, 2, 3, 3, 1_035_301, 3_660_663, 4_321_234, 5_435_345],
            ),
            "goerli" => (
                alloy_primitives::b256!("bf7e331f7f7c1dd2e05159666b3bf8bc7a8a3a9eb1d518969eab529dd9b88c1a"),
                vec![0, 0, 0, 0, 0, 0, 0, 1_561_651],
            ),
            other => panic!("unknown EIP-2124 network {other}"),
        }
    }

    #[test]
    fn eip2124_spec_examples() {
        let v = vectors("forkid-eip-2124.json");
        assert_eq!(
            v["mainnet_genesis_hash_from_go_ethereum"]["value"].as_str().unwrap(),
            MAINNET_GENESIS.to_string()
        );
        let examples = v["spec_examples"].as_array().unwrap();
        assert_eq!(examples.len(), 3);
        // forkhash₀ = CRC32(genesis), forkhash₁ adds Homestead, forkhash₂ adds the DAO fork.
        let filter = eip_mainnet(0);
        for (i, example) in examples.iter().enumerate() {
            assert_eq!(filter.fork_hashes()[i], hash(&example["fork_hash"]), "{}", example["name"]);
        }
    }

    #[test]
    fn eip2124_creation() {
        let v = vectors("forkid-eip-2124.json");
        let mut count = 0;
        for network in v["creation"]["networks"].as_array().unwrap() {
            let name = network["network"].as_str().unwrap();
            let (genesis, forks) = eip_network(name);
            for case in network["cases"].as_array().unwrap() {
                let head = num(&case["head"]);
                let id = ForkFilter::new(genesis, 0, forks.clone(), [], head, 0).current();
                let want = ForkId { hash: hash(&case["fork_hash"]), next: num(&case["fork_next"]) };
                assert_eq!(id, want, "{name} head {head}: {}", case["comment"]);
                count += 1;
            }
        }
        assert_eq!(count, 43);
    }

    fn expect(result: Result<(), ForkIdError>, expected: &Value, comment: &Value) {
        match (expected.as_str(), &result) {
            (None, Ok(())) => {}
            (Some("ErrRemoteStale"), Err(ForkIdError::RemoteStale { .. })) => {}
            (Some("ErrLocalIncompatibleOrStale"), Err(ForkIdError::LocalIncompatibleOrStale { .. })) => {}
            _ => panic!("expected {expected}, got {result:?}: {comment}"),
        }
    }

    #[test]
    fn eip2124_validation() {
        let v = vectors("forkid-eip-2124.json");
        assert_eq!(v["validation"]["local_chain"], "mainnet");
        let cases = v["validation"]["cases"].as_array().unwrap();
        for case in cases {
            let filter = eip_mainnet(num(&case["local_head"]));
            let remote =
                ForkId { hash: hash(&case["remote_fork_hash"]), next: num(&case["remote_fork_next"]) };
            expect(filter.validate(remote), &case["expected_error"], &case["comment"]);
        }
        assert_eq!(cases.len(), 15);
    }

    #[test]
    fn eip2124_encoding() {
        let v = vectors("forkid-eip-2124.json");
        let cases = v["encoding"]["cases"].as_array().unwrap();
        for case in cases {
            let id = ForkId { hash: hash(&case["fork_hash"]), next: num(&case["fork_next"]) };
            let rlp = alloy_rlp::encode(id);
            assert_eq!(hex::encode(&rlp), case["rlp"].as_str().unwrap());
            assert_eq!(ForkId::decode(&mut rlp.as_slice()).unwrap(), id);
        }
        assert_eq!(cases.len(), 3);
    }

    /// go-ethereum's `mainnet_chain` from the vector file: the schedule the geth tests use.
    fn geth_mainnet(v: &Value, with_times: bool, head: u64, time: u64) -> ForkFilter {
        let chain = &v["mainnet_chain"];
        let genesis: B256 = chain["genesis_hash"].as_str().unwrap().parse().unwrap();
        let blocks: Vec<u64> = chain["fork_blocks"].as_array().unwrap().iter().map(num).collect();
        let times: Vec<u64> = if with_times {
            chain["fork_times"].as_array().unwrap().iter().map(num).collect()
        } else {
            vec![]
        };
        ForkFilter::new(genesis, 0, blocks, times, head, time)
    }

    #[test]
    fn geth_creation_mainnet_from_vector_chain_data() {
        let v = vectors("forkid-go-ethereum-tests.json");
        let network = &v["creation"]["networks"][0];
        assert_eq!(network["network"], "mainnet");
        let cases = network["cases"].as_array().unwrap();
        for case in cases {
            let (head, time) = (num(&case["head"]), num(&case["time"]));
            let id = geth_mainnet(&v, true, head, time).current();
            let want = ForkId { hash: hash(&case["fork_hash"]), next: num(&case["fork_next"]) };
            assert_eq!(id, want, "{}", case["comment"]);
        }
        assert_eq!(cases.len(), 38);
    }

    /// `checksumUpdate(0xHASH, math.MaxUint64)` from the geth test source.
    fn hash_expr(expr: &str) -> B32 {
        let inner = expr.strip_prefix("checksumUpdate(").and_then(|s| s.strip_suffix(')')).unwrap();
        let (base, fork) = inner.split_once(", ").unwrap();
        let base = u32::from_str_radix(base.trim_start_matches("0x"), 16).unwrap();
        let fork = num(&Value::String(fork.to_owned()));
        B32::from(checksum_update(base, fork).to_be_bytes())
    }

    #[test]
    fn geth_validation() {
        let v = vectors("forkid-go-ethereum-tests.json");
        let cases = v["validation"]["cases"].as_array().unwrap();
        for case in cases {
            let with_times = match case["config"].as_str().unwrap() {
                "mainnet" => true,
                "mainnet_without_timestamp_forks" => false,
                other => panic!("unknown config {other}"),
            };
            let filter = geth_mainnet(&v, with_times, num(&case["local_head"]), num(&case["local_time"]));
            let remote_hash = match case.get("remote_fork_hash_expr") {
                Some(expr) => hash_expr(expr.as_str().unwrap()),
                None => hash(&case["remote_fork_hash"]),
            };
            let remote = ForkId { hash: remote_hash, next: num(&case["remote_fork_next"]) };
            expect(filter.validate(remote), &case["expected_error"], &case["comment"]);
        }
        assert_eq!(cases.len(), 45);
    }

    #[test]
    fn checksum_update_matches_concatenation() {
        // EIP-2124: forkhash₁ = CRC32(genesis || uint64(1150000)), computed in one pass.
        let mut bytes = MAINNET_GENESIS.to_vec();
        bytes.extend_from_slice(&1_150_000u64.to_be_bytes());
        assert_eq!(checksum_update(genesis_checksum(&MAINNET_GENESIS), 1_150_000), crc32fast::hash(&bytes));
    }

    #[test]
    fn set_head_reports_changes_only() {
        let mut filter = eip_mainnet(0);
        assert_eq!(filter.set_head(1_149_999, 0), None);
        assert_eq!(filter.set_head(1_150_000, 0), Some(ForkId::new([0x97, 0xc2, 0xc3, 0x4c], 1_920_000)));
        assert_eq!(filter.head(), (1_150_000, 0));
        // A reorg below the fork reverts the id.
        assert_eq!(filter.set_head(1_000_000, 0), Some(ForkId::new([0xfc, 0x64, 0xec, 0x04], 1_150_000)));
    }

    #[test]
    fn genesis_forks_are_skipped() {
        // Timestamp forks at or before genesis time belong to the genesis rule set (hoodi's
        // Shanghai and Cancun at 0), as do block forks at 0.
        let a = ForkFilter::new(MAINNET_GENESIS, 100, [0, 0, 5], [0, 50, 100, 200], 0, 0);
        let b = ForkFilter::new(MAINNET_GENESIS, 100, [5], [200], 0, 0);
        assert_eq!(a, b);
        assert_eq!(a.fork_hashes().len(), 3);
    }

    #[test]
    fn eth_entry_vectors() {
        // An entry with extra elements after the fork id (a future extension) still decodes.
        let id = ForkId::new([0xde, 0xad, 0xbe, 0xef], 0xbaddcafe);
        let mut extended = Vec::new();
        let extra = 7u64;
        Header { list: true, payload_length: id.length() + extra.length() }.encode(&mut extended);
        id.encode(&mut extended);
        extra.encode(&mut extended);
        assert_eq!(decode_eth_entry(&extended), Ok(id));
        // The entry is the EIP-2124 encoding (vector `ca84deadbeef84baddcafe`) inside one more
        // list header.
        assert_eq!(hex::encode(encode_eth_entry(id)), "cbca84deadbeef84baddcafe");
        let genesis = ForkId::new([0xfc, 0x64, 0xec, 0x04], 1_150_000);
        assert_eq!(hex::encode(encode_eth_entry(genesis)), "cac984fc64ec0483118c30");
    }

    // One test per malformed entry.
    #[test]
    fn eth_entry_not_a_list() {
        assert_eq!(decode_eth_entry(&hex::decode("84deadbeef").unwrap()), Err(EthEntryError::NotAList));
    }
    #[test]
    fn eth_entry_empty_list() {
        assert_eq!(decode_eth_entry(&[0xc0]), Err(EthEntryError::MissingForkId));
    }
    #[test]
    fn eth_entry_trailing_bytes() {
        let mut entry = encode_eth_entry(ForkId::new([1, 2, 3, 4], 5));
        entry.push(0x80);
        assert_eq!(decode_eth_entry(&entry), Err(EthEntryError::TrailingBytes));
    }
    #[test]
    fn eth_entry_truncated() {
        let entry = encode_eth_entry(ForkId::new([1, 2, 3, 4], 5));
        assert!(matches!(decode_eth_entry(&entry[..entry.len() - 1]), Err(EthEntryError::Rlp(_))));
        assert!(matches!(decode_eth_entry(&[]), Err(EthEntryError::Rlp(_))));
    }
    #[test]
    fn eth_entry_bad_fork_id() {
        // [[0x01020304]]: a fork id without FORK_NEXT.
        assert!(matches!(
            decode_eth_entry(&hex::decode("c6c58401020304").unwrap()),
            Err(EthEntryError::Rlp(_))
        ));
        // [[0x010203, 5]]: a 3-byte fork hash.
        assert!(matches!(
            decode_eth_entry(&hex::decode("c6c58301020305").unwrap()),
            Err(EthEntryError::Rlp(_))
        ));
        // [[0x01020304, 5, 6]]: geth's fork id struct has no tail, so extra fields are an error.
        assert!(matches!(
            decode_eth_entry(&hex::decode("c8c7840102030405 06".replace(' ', "")).unwrap()),
            Err(EthEntryError::Rlp(_))
        ));
    }

    proptest! {
        #[test]
        fn eth_entry_roundtrip(hash in any::<[u8; 4]>(), next in any::<u64>()) {
            let id = ForkId::new(hash, next);
            prop_assert_eq!(decode_eth_entry(&encode_eth_entry(id)), Ok(id));
        }

        #[test]
        fn eth_entry_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..64)) {
            let _ = decode_eth_entry(&bytes);
        }

        /// Any fork id we can be in is accepted by a peer on the same chain at any head.
        #[test]
        fn same_chain_accepts_own_ids(ours in 0u64..20_000_000, theirs in 0u64..20_000_000) {
            let local = eip_mainnet(ours);
            let remote = eip_mainnet(theirs).current();
            prop_assert_eq!(local.validate(remote), Ok(()));
        }

        /// The same on random schedules that mix block and timestamp forks: block `n` has
        /// timestamp `GENESIS_TIME + 12 n`, timestamp forks come after the last block fork (as
        /// on every real chain), and both nodes sit at real heads of that one chain. A node of
        /// another genesis is rejected.
        #[test]
        fn random_schedules_accept_own_chain_and_reject_others(
            blocks in proptest::collection::vec(0u64..1_000, 0..6),
            time_offsets in proptest::collection::vec(0u64..10_000, 0..6),
            ours in 0u64..3_000,
            theirs in 0u64..3_000,
            genesis in any::<[u8; 32]>(),
            other_genesis in any::<[u8; 32]>(),
        ) {
            const GENESIS_TIME: u64 = 1_000_000;
            let time_of = |n: u64| GENESIS_TIME + 12 * n;
            let last_block_fork = blocks.iter().copied().max().unwrap_or(0);
            let times: Vec<u64> = time_offsets.iter().map(|o| time_of(last_block_fork) + 1 + o).collect();
            let chain = |genesis: [u8; 32], head: u64| {
                ForkFilter::new(B256::from(genesis), GENESIS_TIME, blocks.clone(), times.clone(), head, time_of(head))
            };
            let local = chain(genesis, ours);
            prop_assert_eq!(local.validate(chain(genesis, theirs).current()), Ok(()));
            prop_assume!(genesis != other_genesis);
            let foreign = chain(other_genesis, theirs).current();
            // Unless the CRC32s collide, which a 4-byte hash allows but these inputs never hit.
            prop_assume!(!local.fork_hashes().contains(&foreign.hash));
            let rejected = matches!(local.validate(foreign), Err(ForkIdError::LocalIncompatibleOrStale { .. }));
            prop_assert!(rejected);
        }
    }
}

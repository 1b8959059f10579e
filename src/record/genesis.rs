//! Chains from go-ethereum's `genesis.json`: the format `geth init` takes, which private
//! networks, devnets and the hive test suites ship.
//!
//! [alloy-genesis](alloy_genesis) parses the file. From it we take what the networking layers
//! need, computed the way go-ethereum computes it, so that the `Status` we send matches what
//! a geth node initialised from the same file sends:
//!
//! - the fork schedule that enters the EIP-2124 fork id: go-ethereum `core/forkid`
//!   `gatherForks` takes every `…Block` (`*big.Int`) and every `…Time` (`*uint64`) field of
//!   `params.ChainConfig` ([`GETH_BLOCK_FORKS`], [`GETH_TIME_FORKS`]); the terminal total
//!   difficulty is not one of them;
//! - the genesis header: go-ethereum `core/genesis.go` `toBlockWithRoot`, with the state root
//!   of `alloc` computed by [alloy-trie](alloy_trie) and the fields each fork active at genesis
//!   adds (London's base fee, Shanghai's withdrawals root, Cancun's blob gas and beacon root,
//!   Prague's requests hash, Amsterdam's block access list hash and slot number).
//!
//! Pure functions of the file's text: no task owns anything here.

use std::path::Path;

use alloy_consensus::{Header, EMPTY_OMMER_ROOT_HASH, EMPTY_ROOT_HASH};
use alloy_eips::eip7685::EMPTY_REQUESTS_HASH;
use alloy_genesis::{ChainConfig, Genesis};
use alloy_primitives::{B256, B64, U256};
use serde_json::Value;

use super::{ChainError, ChainSpec, Fork, ForkActivation};

/// go-ethereum params/protocol_params.go `GenesisGasLimit`: the gas limit of a genesis that
/// gives none.
pub const GENESIS_GAS_LIMIT: u64 = 4_712_388;
/// go-ethereum params/protocol_params.go `GenesisDifficulty`: the difficulty of an ethash
/// genesis that gives neither a difficulty nor a mix hash.
pub const GENESIS_DIFFICULTY: u64 = 131_072;
/// go-ethereum params/protocol_params.go `InitialBaseFee` (EIP-1559): the base fee of a
/// London genesis that gives none.
pub const INITIAL_BASE_FEE: u64 = 1_000_000_000;
/// go-ethereum core/types/hashes.go `EmptyBlockAccessListHash` (EIP-7928): keccak256 of the
/// RLP empty list, the same value as the empty ommers hash.
pub const EMPTY_BLOCK_ACCESS_LIST_HASH: B256 = EMPTY_OMMER_ROOT_HASH;

/// The block-scheduled forks go-ethereum v1.17's `gatherForks` counts: the `*big.Int` fields
/// of `params.ChainConfig` whose names end in `Block`, by their JSON keys, in field order.
pub const GETH_BLOCK_FORKS: [&str; 15] = [
    "homesteadBlock",
    "daoForkBlock",
    "eip150Block",
    "eip155Block",
    "eip158Block",
    "byzantiumBlock",
    "constantinopleBlock",
    "petersburgBlock",
    "istanbulBlock",
    "muirGlacierBlock",
    "berlinBlock",
    "londonBlock",
    "arrowGlacierBlock",
    "grayGlacierBlock",
    "mergeNetsplitBlock",
];

/// The time-scheduled forks go-ethereum v1.17's `gatherForks` counts: the `*uint64` fields
/// of `params.ChainConfig` whose names end in `Time`, by their JSON keys, in field order.
pub const GETH_TIME_FORKS: [&str; 12] = [
    "shanghaiTime",
    "cancunTime",
    "pragueTime",
    "osakaTime",
    "bpo1Time",
    "bpo2Time",
    "bpo3Time",
    "bpo4Time",
    "bpo5Time",
    "amsterdamTime",
    "bogotaTime",
    "ubtTime",
];

/// A go-ethereum genesis file, read: the [`ChainSpec`] it defines and its genesis header.
///
/// ```no_run
/// use ethp2p::record::GethGenesis;
/// let genesis = GethGenesis::from_file("genesis.json")?;
/// assert_eq!(genesis.header().hash_slow(), genesis.spec().genesis_hash);
/// # Ok::<(), ethp2p::record::ChainError>(())
/// ```
#[derive(Debug, Clone)]
pub struct GethGenesis {
    spec: ChainSpec,
    header: Header,
    genesis: Genesis,
}

impl GethGenesis {
    /// Reads a genesis file; the chain is named after the file's stem.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ChainError::Io { path: path.to_owned(), source })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_json(&text, &name)
    }

    /// Parses a genesis file's text; `name` names the chain.
    pub fn from_json(text: &str, name: &str) -> Result<Self, ChainError> {
        let raw: Value = serde_json::from_str(text).map_err(|e| ChainError::Json(e.to_string()))?;
        Self::from_value(raw, name)
    }

    /// Parses a genesis file already read as JSON.
    pub fn from_value(raw: Value, name: &str) -> Result<Self, ChainError> {
        let Value::Object(map) = &raw else { return Err(ChainError::NotAnObject) };
        if !map.contains_key("config") {
            return Err(ChainError::MissingField("config"));
        }
        // Whether the file gives a difficulty: alloy reads a missing one as 0, geth picks a
        // default that depends on the consensus engine.
        let has_difficulty = map.get("difficulty").is_some_and(|v| !v.is_null());
        let gas_used = match map.get("gasUsed") {
            None | Some(Value::Null) => 0,
            Some(v) => {
                json_u64(v).ok_or(ChainError::WrongType { field: "gasUsed", expected: "a quantity" })?
            }
        };
        let genesis: Genesis = serde_json::from_value(raw).map_err(|e| ChainError::Genesis(e.to_string()))?;
        let forks = geth_forks(&genesis.config)?;
        let header = genesis_header(&genesis, has_difficulty, gas_used);
        let spec = ChainSpec {
            name: name.to_owned(),
            network_id: genesis.config.chain_id,
            genesis_hash: header.hash_slow(),
            genesis_timestamp: header.timestamp,
            genesis_difficulty: header.difficulty,
            forks,
        };
        Ok(Self { spec, header, genesis })
    }

    /// The chain: network id (the chain id, as geth defaults it), genesis hash and forks.
    pub fn spec(&self) -> &ChainSpec {
        &self.spec
    }

    /// The genesis block's header, as geth computes it.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// The parsed file.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The chain spec and the genesis header.
    pub fn into_parts(self) -> (ChainSpec, Header) {
        (self.spec, self.header)
    }
}

/// Whether JSON text looks like a go-ethereum genesis file (it has a `config` object) rather
/// than our own chain file format.
pub(crate) fn is_geth_genesis(map: &serde_json::Map<String, Value>) -> bool {
    matches!(map.get("config"), Some(Value::Object(_)))
}

fn json_u64(value: &Value) -> Option<u64> {
    match value {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => match s.strip_prefix("0x") {
            Some(hex) => u64::from_str_radix(hex, 16).ok(),
            None => s.parse().ok(),
        },
        _ => None,
    }
}

/// The forks of a geth chain config that enter the fork id, named after their JSON keys
/// (`homestead`, `eip150`, …, `shanghai`, `bpo1`, …), block forks then time forks, each
/// sorted (geth sorts them before hashing).
pub fn geth_forks(config: &ChainConfig) -> Result<Vec<Fork>, ChainError> {
    let blocks = [
        config.homestead_block,
        config.dao_fork_block,
        config.eip150_block,
        config.eip155_block,
        config.eip158_block,
        config.byzantium_block,
        config.constantinople_block,
        config.petersburg_block,
        config.istanbul_block,
        config.muir_glacier_block,
        config.berlin_block,
        config.london_block,
        config.arrow_glacier_block,
        config.gray_glacier_block,
        config.merge_netsplit_block,
    ];
    // alloy-genesis has no field for `ubtTime` yet: it lands in `extra_fields`.
    let ubt = match config.extra_fields.get("ubtTime") {
        None | Some(Value::Null) => None,
        Some(v) => {
            Some(json_u64(v).ok_or(ChainError::WrongType { field: "ubtTime", expected: "a quantity" })?)
        }
    };
    let times = [
        config.shanghai_time,
        config.cancun_time,
        config.prague_time,
        config.osaka_time,
        config.bpo1_time,
        config.bpo2_time,
        config.bpo3_time,
        config.bpo4_time,
        config.bpo5_time,
        config.amsterdam_time,
        config.bogota_time,
        ubt,
    ];
    let named =
        |keys: &[&str], values: &[Option<u64>], suffix: &str, activation: fn(u64) -> ForkActivation| {
            let mut forks: Vec<Fork> = keys
                .iter()
                .zip(values)
                .filter_map(|(key, value)| {
                    let at = (*value)?;
                    Some(Fork { name: key.trim_end_matches(suffix).to_owned(), activation: activation(at) })
                })
                .collect();
            forks.sort_by_key(|f| f.activation);
            forks
        };
    let mut forks = named(&GETH_BLOCK_FORKS, &blocks, "Block", ForkActivation::Block);
    forks.extend(named(&GETH_TIME_FORKS, &times, "Time", ForkActivation::Timestamp));
    Ok(forks)
}

/// The genesis header go-ethereum builds from `genesis` (`core/genesis.go`
/// `toBlockWithRoot`). `has_difficulty` says whether the file gave a difficulty (alloy reads a
/// missing one as zero); `gas_used` is the file's `gasUsed`, which alloy does not keep.
pub fn genesis_header(genesis: &Genesis, has_difficulty: bool, gas_used: u64) -> Header {
    let config = &genesis.config;
    let number = genesis.number.unwrap_or(0);
    let time = genesis.timestamp;
    let block_forked = |fork: Option<u64>| fork.is_some_and(|at| at <= number);
    let time_forked = |fork: Option<u64>| fork.is_some_and(|at| at <= time);
    // geth's IsShanghai, IsCancun, … are all "London, and the timestamp reached".
    let london = block_forked(config.london_block);
    let difficulty = if has_difficulty {
        genesis.difficulty
    } else if config.ethash.is_none() {
        U256::ZERO
    } else if genesis.mix_hash == B256::ZERO {
        U256::from(GENESIS_DIFFICULTY)
    } else {
        genesis.difficulty
    };
    let mut header = Header {
        parent_hash: genesis.parent_hash.unwrap_or_default(),
        ommers_hash: EMPTY_OMMER_ROOT_HASH,
        beneficiary: genesis.coinbase,
        state_root: alloy_trie::root::state_root_ref_unhashed(&genesis.alloc),
        transactions_root: EMPTY_ROOT_HASH,
        receipts_root: EMPTY_ROOT_HASH,
        difficulty,
        number,
        gas_limit: if genesis.gas_limit == 0 { GENESIS_GAS_LIMIT } else { genesis.gas_limit },
        gas_used,
        timestamp: time,
        extra_data: genesis.extra_data.clone(),
        mix_hash: genesis.mix_hash,
        nonce: B64::from(genesis.nonce),
        // A base fee given before London is kept, as geth does.
        base_fee_per_gas: genesis.base_fee_per_gas.map(|fee| fee as u64),
        ..Default::default()
    };
    if london && header.base_fee_per_gas.is_none() {
        header.base_fee_per_gas = Some(INITIAL_BASE_FEE);
    }
    if london && time_forked(config.shanghai_time) {
        header.withdrawals_root = Some(EMPTY_ROOT_HASH);
    }
    if london && time_forked(config.cancun_time) {
        // EIP-4788: the genesis has no parent beacon block; its root is zero.
        header.parent_beacon_block_root = Some(B256::ZERO);
        header.excess_blob_gas = Some(genesis.excess_blob_gas.unwrap_or(0));
        header.blob_gas_used = Some(genesis.blob_gas_used.unwrap_or(0));
    } else if genesis.excess_blob_gas.is_some() {
        header.excess_blob_gas = genesis.excess_blob_gas;
    }
    if london && time_forked(config.prague_time) {
        header.requests_hash = Some(EMPTY_REQUESTS_HASH);
    }
    if london && time_forked(config.amsterdam_time) {
        header.slot_number = Some(genesis.slot_number.unwrap_or(0));
        header.block_access_list_hash = Some(EMPTY_BLOCK_ACCESS_LIST_HASH);
    }
    header
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ForkId;
    use alloy_primitives::b256;

    /// go-ethereum v1.17.10 `cmd/devp2p/internal/ethtest/testdata/genesis.json`, the hive
    /// eth-test chain (Shanghai at genesis, Cancun…Amsterdam at 60…360 s).
    const ETHTEST_GENESIS: &str = include_str!("../../tests/data/ethtest-genesis.json");
    /// Its hash: `geth init` prints `1518c3..52024c`; block 1 of the suite's `chain.rlp`
    /// names it as its parent.
    const ETHTEST_GENESIS_HASH: B256 =
        b256!("1518c33dab6ed4dbb2d0c48239ac2f00acc0e28dc43660bb745a0f127552024c");

    #[test]
    fn ethtest_genesis_hash_matches_geth() {
        let g = GethGenesis::from_json(ETHTEST_GENESIS, "ethtest").unwrap();
        assert_eq!(g.spec().genesis_hash, ETHTEST_GENESIS_HASH);
        assert_eq!(g.spec().network_id, 3_503_995_874_084_926);
        let h = g.header();
        assert_eq!(h.base_fee_per_gas, Some(INITIAL_BASE_FEE));
        assert_eq!(h.withdrawals_root, Some(EMPTY_ROOT_HASH));
        assert!(h.blob_gas_used.is_none() && h.requests_hash.is_none(), "Cancun is at 60 s");
        assert_eq!(h.difficulty, U256::from(0x20000));
    }

    #[test]
    fn ethtest_fork_id_matches_geth() {
        let spec = GethGenesis::from_json(ETHTEST_GENESIS, "ethtest").unwrap().into_parts().0;
        // Every block fork is at 0 (the genesis rule set); Shanghai at 0 too; the time forks
        // from forkenv.json: Cancun 60 … Amsterdam 360.
        let times: Vec<u64> = spec.fork_timestamps().collect();
        assert_eq!(times, [0, 60, 120, 180, 240, 300, 360]);
        assert!(spec.fork_blocks().all(|b| b == 0));
        // The suite's head (block 600 at 6000 s) is past every fork.
        let head = spec.fork_id(601, 6000);
        assert_eq!(head.next, 0);
        assert_eq!(spec.fork_id(0, 0).next, 60);
        assert_eq!(head, GETH_ETHTEST_FORK_ID);
    }

    /// What go-ethereum v1.17.10 announces for the ethtest chain at its head: the `eth` entry
    /// of its ENR after `geth init genesis.json; geth import chain.rlp` is `c7c6845942bfc280`
    /// (`devp2p enrdump`).
    const GETH_ETHTEST_FORK_ID: ForkId = ForkId::new([0x59, 0x42, 0xbf, 0xc2], 0);

    #[test]
    fn missing_config_and_bad_values() {
        assert!(matches!(GethGenesis::from_json("{}", "x"), Err(ChainError::MissingField("config"))));
        let bad = r#"{"config": {"chainId": "nope"}, "alloc": {}}"#;
        assert!(matches!(GethGenesis::from_json(bad, "x"), Err(ChainError::Genesis(_))));
        let bad = r#"{"config": {"chainId": 1, "ubtTime": []}, "alloc": {}}"#;
        assert!(matches!(
            GethGenesis::from_json(bad, "x"),
            Err(ChainError::WrongType { field: "ubtTime", .. })
        ));
    }

    #[test]
    fn defaults_follow_geth() {
        // No difficulty, no gas limit, an ethash chain: geth's GenesisDifficulty and
        // GenesisGasLimit; no London, so no base fee.
        let text = r#"{"config": {"chainId": 7, "ethash": {}}, "alloc": {}}"#;
        let g = GethGenesis::from_json(text, "x").unwrap();
        assert_eq!(g.header().difficulty, U256::from(GENESIS_DIFFICULTY));
        assert_eq!(g.header().gas_limit, GENESIS_GAS_LIMIT);
        assert_eq!(g.header().base_fee_per_gas, None);
        assert_eq!(g.header().state_root, EMPTY_ROOT_HASH);
        // No engine named: difficulty 0. Amsterdam at genesis adds its two fields.
        let text = r#"{"config": {"chainId": 7, "londonBlock": 0, "shanghaiTime": 0, "cancunTime": 0,
            "pragueTime": 0, "amsterdamTime": 0, "ubtTime": "0x10"}, "alloc": {}}"#;
        let g = GethGenesis::from_json(text, "x").unwrap();
        let h = g.header();
        assert_eq!(h.difficulty, U256::ZERO);
        assert_eq!(h.slot_number, Some(0));
        assert_eq!(h.block_access_list_hash, Some(EMPTY_BLOCK_ACCESS_LIST_HASH));
        assert_eq!(h.requests_hash, Some(EMPTY_REQUESTS_HASH));
        assert_eq!(h.parent_beacon_block_root, Some(B256::ZERO));
        let last = g.spec().forks.last().unwrap();
        assert_eq!((last.name.as_str(), last.activation), ("ubt", ForkActivation::Timestamp(16)));
    }
}

//! Chain specifications: what a node must know about a network to join it — its network id,
//! genesis block and fork schedule — and from that its EIP-2124 fork id.
//!
//! Built in: [`ChainSpec::mainnet`], [`ChainSpec::sepolia`], [`ChainSpec::holesky`],
//! [`ChainSpec::hoodi`] and [`ChainSpec::bsc`]. Any other chain is loaded from a small JSON
//! file with [`ChainSpec::from_file`]:
//!
//! ```json
//! {
//!   "name": "my-devnet",
//!   "network_id": 1337,
//!   "genesis_hash": "0x…64 hex…",
//!   "genesis_timestamp": 1700000000,
//!   "fork_blocks": [0, 100, { "name": "london", "block": 200 }],
//!   "fork_timestamps": [{ "name": "shanghai", "timestamp": 1700000100 }, 1700000200]
//! }
//! ```
//!
//! A go-ethereum `genesis.json` (an object with a `config`) is read too, by
//! [`GethGenesis`](super::GethGenesis): chain id, forks and the genesis hash computed from it.
//!
//! `name` (default: the file's stem), `genesis_timestamp` (default 0), `genesis_difficulty`
//! (default 1), `fork_blocks` and `fork_timestamps` (default: none) are optional. Each fork
//! list is in non-decreasing order; an entry is a number or `{ "name", "block" }` /
//! `{ "name", "timestamp" }`. Unknown fields are rejected, so a typo cannot silently drop a
//! fork.

use std::{fmt, path::Path};

use alloy_primitives::{b256, B256, U256};
use serde_json::{Map, Value};

use super::{ChainError, ForkFilter, ForkId, GethGenesis};

/// When a fork activates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ForkActivation {
    /// At this block number (the pre-merge schedule, and BSC's older forks).
    Block(u64),
    /// At the first block whose timestamp is at least this (Shanghai onwards).
    Timestamp(u64),
}

/// One named fork of a chain.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Fork {
    /// Its name, e.g. `"shanghai"`.
    pub name: String,
    /// When it activates.
    pub activation: ForkActivation,
}

/// Everything the networking layers need to know about a chain.
///
/// ```
/// use ethp2p::{ChainSpec, ForkId};
/// let mainnet = ChainSpec::mainnet();
/// assert_eq!(mainnet.network_id, 1);
/// // EIP-2124 example: a mainnet node at the first Homestead block.
/// assert_eq!(mainnet.fork_id(1_150_000, 0), ForkId::new([0x97, 0xc2, 0xc3, 0x4c], 1_920_000));
/// let sepolia = ChainSpec::from_name_or_path("sepolia")?;
/// assert_eq!(sepolia.network_id, 11_155_111);
/// # Ok::<(), ethp2p::record::ChainError>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainSpec {
    /// Short name: `mainnet`, `sepolia`, …, or the custom file's `name`.
    pub name: String,
    /// The network id sent in the eth `Status` message (equal to the chain id on every chain
    /// built in here).
    pub network_id: u64,
    /// Hash of the genesis block header; the `Status` genesis field and the start of the fork
    /// hash.
    pub genesis_hash: B256,
    /// Timestamp of the genesis block. Timestamp forks at or before it are part of the genesis
    /// rule set and do not enter the fork hash.
    pub genesis_timestamp: u64,
    /// Difficulty of the genesis block: the total difficulty an unsynced node reports in an
    /// eth/66–68 `Status`.
    pub genesis_difficulty: U256,
    /// The fork schedule: block forks in order, then timestamp forks in order.
    pub forks: Vec<Fork>,
}

/// go-ethereum params/config.go `MainnetGenesisHash`.
pub const MAINNET_GENESIS_HASH: B256 =
    b256!("d4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3");
/// go-ethereum params/config.go `SepoliaGenesisHash`.
pub const SEPOLIA_GENESIS_HASH: B256 =
    b256!("25a5cc106eea7138acab33231d7160d69cb777ee0c2c553fcddf5138993e6dd9");
/// go-ethereum params/config.go `HoleskyGenesisHash`.
pub const HOLESKY_GENESIS_HASH: B256 =
    b256!("b5f7f912443c940f21fd611f12828d75b534364ed9e95ca4e307729a4661bde4");
/// go-ethereum params/config.go `HoodiGenesisHash`.
pub const HOODI_GENESIS_HASH: B256 =
    b256!("bbe312868b376a3001692a646dd2d7d1e4406380dfd86b98aa8a34d1557c971b");
/// bnb-chain/bsc params/config.go `BSCGenesisHash`.
pub const BSC_GENESIS_HASH: B256 = b256!("0d21840abff46b96c84b2ac9e10e4f5cdaeb5693cb665db62a2f3b02d2d57b5b");

/// Names accepted by [`ChainSpec::by_name`] and [`ChainSpec::from_name_or_path`].
pub const BUILTIN_CHAINS: [&str; 5] = ["mainnet", "sepolia", "holesky", "hoodi", "bsc"];

fn forks(blocks: &[(&str, u64)], times: &[(&str, u64)]) -> Vec<Fork> {
    let block =
        blocks.iter().map(|&(name, n)| Fork { name: name.into(), activation: ForkActivation::Block(n) });
    let time =
        times.iter().map(|&(name, t)| Fork { name: name.into(), activation: ForkActivation::Timestamp(t) });
    block.chain(time).collect()
}

/// Ethereum's pre-merge forks that every post-2021 testnet activates at genesis.
const GENESIS_BLOCK_FORKS: [(&str, u64); 11] = [
    ("homestead", 0),
    ("tangerine-whistle", 0),
    ("spurious-dragon", 0),
    ("spurious-dragon-eip158", 0),
    ("byzantium", 0),
    ("constantinople", 0),
    ("petersburg", 0),
    ("istanbul", 0),
    ("muir-glacier", 0),
    ("berlin", 0),
    ("london", 0),
];

impl ChainSpec {
    /// Ethereum mainnet (network id 1).
    ///
    /// Source: go-ethereum params/config.go `MainnetChainConfig` and core/genesis.go
    /// (genesis timestamp 0, difficulty 0x400000000); checked in the tests against the chain
    /// data of the go-ethereum fork-id vectors.
    pub fn mainnet() -> Self {
        Self {
            name: "mainnet".into(),
            network_id: 1,
            genesis_hash: MAINNET_GENESIS_HASH,
            genesis_timestamp: 0,
            genesis_difficulty: U256::from(0x4_0000_0000u64),
            forks: forks(
                &[
                    ("homestead", 1_150_000),
                    ("dao", 1_920_000),
                    ("tangerine-whistle", 2_463_000),
                    ("spurious-dragon", 2_675_000),
                    ("spurious-dragon-eip158", 2_675_000),
                    ("byzantium", 4_370_000),
                    ("constantinople", 7_280_000),
                    ("petersburg", 7_280_000),
                    ("istanbul", 9_069_000),
                    ("muir-glacier", 9_200_000),
                    ("berlin", 12_244_000),
                    ("london", 12_965_000),
                    ("arrow-glacier", 13_773_000),
                    ("gray-glacier", 15_050_000),
                ],
                &[
                    ("shanghai", 1_681_338_455),
                    ("cancun", 1_710_338_135),
                    ("prague", 1_746_612_311),
                    ("osaka", 1_764_798_551),
                    ("bpo1", 1_765_290_071),
                    ("bpo2", 1_767_747_671),
                ],
            ),
        }
    }

    /// Sepolia testnet (network id 11155111).
    ///
    /// Source: go-ethereum params/config.go `SepoliaChainConfig` (with `MergeNetsplitBlock`
    /// 1735371, which enters the fork hash) and core/genesis.go (timestamp 1633267481,
    /// difficulty 0x20000).
    pub fn sepolia() -> Self {
        let mut blocks = GENESIS_BLOCK_FORKS.to_vec();
        blocks.push(("merge-netsplit", 1_735_371));
        Self {
            name: "sepolia".into(),
            network_id: 11_155_111,
            genesis_hash: SEPOLIA_GENESIS_HASH,
            genesis_timestamp: 1_633_267_481,
            genesis_difficulty: U256::from(0x20000u64),
            forks: forks(
                &blocks,
                &[
                    ("shanghai", 1_677_557_088),
                    ("cancun", 1_706_655_072),
                    ("prague", 1_741_159_776),
                    ("osaka", 1_760_427_360),
                    ("bpo1", 1_761_017_184),
                    ("bpo2", 1_761_607_008),
                ],
            ),
        }
    }

    /// Holesky testnet (network id 17000).
    ///
    /// Source: go-ethereum params/config.go `HoleskyChainConfig` and core/genesis.go
    /// (timestamp 1695902100, difficulty 1).
    pub fn holesky() -> Self {
        Self {
            name: "holesky".into(),
            network_id: 17_000,
            genesis_hash: HOLESKY_GENESIS_HASH,
            genesis_timestamp: 1_695_902_100,
            genesis_difficulty: U256::from(1),
            forks: forks(
                &GENESIS_BLOCK_FORKS,
                &[
                    ("shanghai", 1_696_000_704),
                    ("cancun", 1_707_305_664),
                    ("prague", 1_740_434_112),
                    ("osaka", 1_759_308_480),
                    ("bpo1", 1_759_800_000),
                    ("bpo2", 1_760_389_824),
                ],
            ),
        }
    }

    /// Hoodi testnet (network id 560048).
    ///
    /// Source: go-ethereum params/config.go `HoodiChainConfig` and core/genesis.go
    /// (timestamp 1742212800, difficulty 1). Shanghai and Cancun are active at genesis.
    pub fn hoodi() -> Self {
        let mut blocks = GENESIS_BLOCK_FORKS.to_vec();
        blocks.push(("merge-netsplit", 0));
        Self {
            name: "hoodi".into(),
            network_id: 560_048,
            genesis_hash: HOODI_GENESIS_HASH,
            genesis_timestamp: 1_742_212_800,
            genesis_difficulty: U256::from(1),
            forks: forks(
                &blocks,
                &[
                    ("shanghai", 0),
                    ("cancun", 0),
                    ("prague", 1_742_999_832),
                    ("osaka", 1_761_677_592),
                    ("bpo1", 1_762_365_720),
                    ("bpo2", 1_762_955_544),
                ],
            ),
        }
    }

    /// BNB Smart Chain mainnet (network id 56).
    ///
    /// Sources: bnb-chain/bsc params/config.go `BSCChainConfig` (the block forks Ramanujan to
    /// Hertzfix and the time forks Shanghai/Kepler to Maxwell; BSC's `gatherForks` takes every
    /// `…Block` and `…Time` field, its own forks included) and the genesis block of
    /// bsc's mainnet genesis.json (timestamp 0x5e9da7ce, difficulty 1). Fermi's timestamp
    /// (1768357800, 2026-01-14 02:30 UTC) is the `next` that BSC nodes announced before it.
    ///
    /// Cross-check: with this schedule a node past Maxwell announces `098d24ac/1768357800`,
    /// the fork id BSC peers report on the network (see the tests). Forks scheduled after
    /// Fermi are not included: load a chain file with them to follow later BSC upgrades.
    pub fn bsc() -> Self {
        Self {
            name: "bsc".into(),
            network_id: 56,
            genesis_hash: BSC_GENESIS_HASH,
            genesis_timestamp: 1_587_390_414,
            genesis_difficulty: U256::from(1),
            forks: forks(
                &[
                    ("homestead", 0),
                    ("tangerine-whistle", 0),
                    ("spurious-dragon", 0),
                    ("spurious-dragon-eip158", 0),
                    ("byzantium", 0),
                    ("constantinople", 0),
                    ("petersburg", 0),
                    ("istanbul", 0),
                    ("muir-glacier", 0),
                    ("ramanujan", 0),
                    ("niels", 0),
                    ("mirror-sync", 5_184_000),
                    ("bruno", 13_082_000),
                    ("euler", 18_907_621),
                    ("nano", 21_962_149),
                    ("moran", 22_107_423),
                    ("gibbs", 23_846_001),
                    ("planck", 27_281_024),
                    ("luban", 29_020_050),
                    ("plato", 30_720_096),
                    ("berlin", 31_302_048),
                    ("london", 31_302_048),
                    ("hertz", 31_302_048),
                    ("hertzfix", 34_140_700),
                ],
                &[
                    ("shanghai", 1_705_996_800),
                    ("kepler", 1_705_996_800),
                    ("feynman", 1_713_419_340),
                    ("feynman-fix", 1_713_419_340),
                    ("cancun", 1_718_863_500),
                    ("haber", 1_718_863_500),
                    ("haber-fix", 1_727_316_120),
                    ("bohr", 1_727_317_200),
                    ("pascal", 1_742_436_600),
                    ("prague", 1_742_436_600),
                    ("lorentz", 1_745_903_100),
                    ("maxwell", 1_751_250_600),
                    ("fermi", 1_768_357_800),
                ],
            ),
        }
    }

    /// A built-in chain by name (one of [`BUILTIN_CHAINS`]), case-insensitive.
    pub fn by_name(name: &str) -> Option<Self> {
        match name.to_ascii_lowercase().as_str() {
            "mainnet" => Some(Self::mainnet()),
            "sepolia" => Some(Self::sepolia()),
            "holesky" => Some(Self::holesky()),
            "hoodi" => Some(Self::hoodi()),
            "bsc" => Some(Self::bsc()),
            _ => None,
        }
    }

    /// What a `--network` flag takes: a built-in name, else the path of a chain file.
    pub fn from_name_or_path(arg: &str) -> Result<Self, ChainError> {
        if let Some(spec) = Self::by_name(arg) {
            return Ok(spec);
        }
        let path = Path::new(arg);
        if !path.exists() {
            return Err(ChainError::UnknownNetwork(arg.to_owned()));
        }
        Self::from_file(path)
    }

    /// Loads a custom chain from a JSON file: our format (in the `record` module docs) or a
    /// go-ethereum `genesis.json`.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, ChainError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path)
            .map_err(|source| ChainError::Io { path: path.to_owned(), source })?;
        let default_name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        Self::from_json(&text, &default_name)
    }

    /// Parses a custom chain from JSON text; `default_name` is used if it has no `name`.
    pub fn from_json(text: &str, default_name: &str) -> Result<Self, ChainError> {
        let value: Value = serde_json::from_str(text).map_err(|e| ChainError::Json(e.to_string()))?;
        let Value::Object(map) = value else { return Err(ChainError::NotAnObject) };
        if super::genesis::is_geth_genesis(&map) {
            let spec = GethGenesis::from_value(Value::Object(map), default_name)?.into_parts().0;
            return Ok(spec);
        }
        const KNOWN: [&str; 7] = [
            "name",
            "network_id",
            "genesis_hash",
            "genesis_timestamp",
            "genesis_difficulty",
            "fork_blocks",
            "fork_timestamps",
        ];
        if let Some(unknown) = map.keys().find(|k| !KNOWN.contains(&k.as_str())) {
            return Err(ChainError::UnknownField(unknown.clone()));
        }
        let name = match map.get("name") {
            None => default_name.to_owned(),
            Some(Value::String(s)) if !s.is_empty() => s.clone(),
            Some(_) => return Err(ChainError::WrongType { field: "name", expected: "a non-empty string" }),
        };
        let network_id = required_u64(&map, "network_id")?;
        let genesis_hash = match map.get("genesis_hash") {
            None => return Err(ChainError::MissingField("genesis_hash")),
            Some(Value::String(s)) => parse_hash(s)?,
            Some(_) => return Err(ChainError::WrongType { field: "genesis_hash", expected: "a hex string" }),
        };
        let genesis_timestamp = optional_u64(&map, "genesis_timestamp")?.unwrap_or(0);
        let genesis_difficulty = U256::from(optional_u64(&map, "genesis_difficulty")?.unwrap_or(1));
        let mut forks = fork_list(&map, "fork_blocks", "block", ForkActivation::Block)?;
        forks.extend(fork_list(&map, "fork_timestamps", "timestamp", ForkActivation::Timestamp)?);
        Ok(Self { name, network_id, genesis_hash, genesis_timestamp, genesis_difficulty, forks })
    }

    /// The chain in the file format [`from_json`](Self::from_json) reads, with every fork
    /// named: a starting point for a custom chain file (`ChainSpec::sepolia().to_json()`).
    pub fn to_json(&self) -> String {
        let fork = |f: &Fork| match f.activation {
            ForkActivation::Block(n) => serde_json::json!({ "name": f.name, "block": n }),
            ForkActivation::Timestamp(t) => serde_json::json!({ "name": f.name, "timestamp": t }),
        };
        let is_block = |f: &&Fork| matches!(f.activation, ForkActivation::Block(_));
        let value = serde_json::json!({
            "name": self.name,
            "network_id": self.network_id,
            "genesis_hash": self.genesis_hash.to_string(),
            "genesis_timestamp": self.genesis_timestamp,
            "genesis_difficulty": u64::try_from(self.genesis_difficulty).unwrap_or(u64::MAX),
            "fork_blocks": self.forks.iter().filter(is_block).map(fork).collect::<Vec<_>>(),
            "fork_timestamps": self.forks.iter().filter(|f| !is_block(f)).map(fork).collect::<Vec<_>>(),
        });
        serde_json::to_string_pretty(&value).unwrap_or_default()
    }

    /// Block numbers of the block-scheduled forks, in order (duplicates and 0 included).
    pub fn fork_blocks(&self) -> impl Iterator<Item = u64> + '_ {
        self.forks.iter().filter_map(|f| match f.activation {
            ForkActivation::Block(n) => Some(n),
            ForkActivation::Timestamp(_) => None,
        })
    }

    /// Timestamps of the time-scheduled forks, in order.
    pub fn fork_timestamps(&self) -> impl Iterator<Item = u64> + '_ {
        self.forks.iter().filter_map(|f| match f.activation {
            ForkActivation::Timestamp(t) => Some(t),
            ForkActivation::Block(_) => None,
        })
    }

    /// The EIP-2124 validation filter for this chain at this head.
    pub fn fork_filter(&self, head_block: u64, head_timestamp: u64) -> ForkFilter {
        ForkFilter::new(
            self.genesis_hash,
            self.genesis_timestamp,
            self.fork_blocks(),
            self.fork_timestamps(),
            head_block,
            head_timestamp,
        )
    }

    /// Our fork id with this head.
    pub fn fork_id(&self, head_block: u64, head_timestamp: u64) -> ForkId {
        self.fork_filter(head_block, head_timestamp).current()
    }

    /// The fork id of a node at genesis (an unsynced node).
    pub fn genesis_fork_id(&self) -> ForkId {
        self.fork_id(0, self.genesis_timestamp)
    }

    /// The fork id of a synced node at wall-clock time `unix_secs`, for nodes that have no
    /// chain of their own (a bootnode's ENR, a crawler's `Status`). It assumes every
    /// block-scheduled fork has passed, which holds for every built-in chain; a custom chain
    /// with future block forks should use [`fork_id`](Self::fork_id) with a real head.
    pub fn fork_id_at_time(&self, unix_secs: u64) -> ForkId {
        self.fork_id(u64::MAX, unix_secs)
    }
}

impl fmt::Display for ChainSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (network id {}, genesis {})", self.name, self.network_id, self.genesis_hash)
    }
}

fn required_u64(map: &Map<String, Value>, field: &'static str) -> Result<u64, ChainError> {
    optional_u64(map, field)?.ok_or(ChainError::MissingField(field))
}

fn optional_u64(map: &Map<String, Value>, field: &'static str) -> Result<Option<u64>, ChainError> {
    match map.get(field) {
        None => Ok(None),
        Some(v) => {
            v.as_u64().map(Some).ok_or(ChainError::WrongType { field, expected: "an unsigned integer" })
        }
    }
}

fn parse_hash(text: &str) -> Result<B256, ChainError> {
    let hex_part = text.strip_prefix("0x").unwrap_or(text);
    let mut bytes = [0u8; 32];
    if hex_part.len() != 64 || hex::decode_to_slice(hex_part, &mut bytes).is_err() {
        return Err(ChainError::BadGenesisHash(text.to_owned()));
    }
    Ok(B256::from(bytes))
}

/// One fork list: numbers or `{ "name": …, "<key>": … }` objects, in non-decreasing order.
fn fork_list(
    map: &Map<String, Value>,
    field: &'static str,
    key: &'static str,
    activation: fn(u64) -> ForkActivation,
) -> Result<Vec<Fork>, ChainError> {
    let Some(value) = map.get(field) else { return Ok(Vec::new()) };
    let Value::Array(entries) = value else {
        return Err(ChainError::WrongType { field, expected: "an array" });
    };
    let mut forks = Vec::with_capacity(entries.len());
    let mut previous = 0;
    for (index, entry) in entries.iter().enumerate() {
        let (name, at) = match entry {
            Value::Number(n) => (None, n.as_u64()),
            Value::Object(obj) => {
                if obj.keys().any(|k| k != "name" && k != key) {
                    return Err(ChainError::BadForkEntry { field, index });
                }
                let name = match obj.get("name") {
                    None => None,
                    Some(Value::String(s)) => Some(s.clone()),
                    Some(_) => return Err(ChainError::BadForkEntry { field, index }),
                };
                (name, obj.get(key).and_then(Value::as_u64))
            }
            _ => (None, None),
        };
        let at = at.ok_or(ChainError::BadForkEntry { field, index })?;
        if at < previous {
            return Err(ChainError::UnsortedForks { field, index, previous, value: at });
        }
        previous = at;
        let name = name.unwrap_or_else(|| format!("{key}-{at}"));
        forks.push(Fork { name, activation: activation(at) });
    }
    Ok(forks)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::ForkIdError;

    fn vectors(name: &str) -> Value {
        let path = format!("{}/../shared/vectors/{name}", env!("CARGO_MANIFEST_DIR"));
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap()
    }

    fn id(hash: &Value, next: &Value) -> ForkId {
        let h = u32::from_str_radix(hash.as_str().unwrap().trim_start_matches("0x"), 16).unwrap();
        ForkId::new(h.to_be_bytes(), next.as_u64().unwrap())
    }

    #[test]
    fn mainnet_matches_go_ethereum_vector_chain_data() {
        let v = vectors("forkid-go-ethereum-tests.json");
        let chain = &v["mainnet_chain"];
        let spec = ChainSpec::mainnet();
        assert_eq!(spec.genesis_hash.to_string(), chain["genesis_hash"].as_str().unwrap());
        let mut blocks: Vec<u64> = spec.fork_blocks().collect();
        blocks.dedup();
        let want: Vec<u64> =
            chain["fork_blocks"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(blocks, want);
        let want: Vec<u64> =
            chain["fork_times"].as_array().unwrap().iter().map(|n| n.as_u64().unwrap()).collect();
        assert_eq!(spec.fork_timestamps().collect::<Vec<_>>(), want);
    }

    /// Every go-ethereum creation case (mainnet, sepolia, holesky, hoodi) from the built-in specs.
    #[test]
    fn builtin_specs_pass_go_ethereum_creation_vectors() {
        let v = vectors("forkid-go-ethereum-tests.json");
        let mut count = 0;
        for network in v["creation"]["networks"].as_array().unwrap() {
            let name = network["network"].as_str().unwrap();
            let spec = ChainSpec::by_name(name).unwrap();
            for case in network["cases"].as_array().unwrap() {
                let (head, time) = (case["head"].as_u64().unwrap(), case["time"].as_u64().unwrap());
                let want = id(&case["fork_hash"], &case["fork_next"]);
                assert_eq!(spec.fork_id(head, time), want, "{name} {head}/{time}: {}", case["comment"]);
                count += 1;
            }
        }
        assert_eq!(count, 38 + 16 + 14 + 10);
    }

    #[test]
    fn mainnet_eip2124_creation_vectors_up_to_petersburg() {
        // The EIP's table stops at Petersburg; below Istanbul the full schedule agrees with it,
        // except that the last two cases' `next` is now Istanbul rather than 0.
        let v = vectors("forkid-eip-2124.json");
        let network = &v["creation"]["networks"][0];
        assert_eq!(network["network"], "mainnet");
        let spec = ChainSpec::mainnet();
        for case in network["cases"].as_array().unwrap() {
            let head = case["head"].as_u64().unwrap();
            let mut want = id(&case["fork_hash"], &case["fork_next"]);
            if want.next == 0 {
                want.next = 9_069_000;
            }
            assert_eq!(spec.fork_id(head, 0), want, "{}", case["comment"]);
        }
    }

    #[test]
    fn bsc_fork_id_matches_the_network() {
        let bsc = ChainSpec::bsc();
        // After Maxwell, before Fermi: the id BSC nodes announced (`098d24ac`, next = Fermi).
        let head_block = 60_000_000;
        assert_eq!(
            bsc.fork_id(head_block, 1_760_000_000),
            ForkId::new([0x09, 0x8d, 0x24, 0xac], 1_768_357_800)
        );
        // Genesis: CRC32 of the genesis hash, next = MirrorSync.
        let genesis = bsc.genesis_fork_id();
        assert_eq!(genesis.hash.0, crc32fast::hash(BSC_GENESIS_HASH.as_slice()).to_be_bytes());
        assert_eq!(genesis.next, 5_184_000);
        // Block forks then time forks: at Hertzfix the next fork is Shanghai/Kepler's time.
        assert_eq!(bsc.fork_id(34_140_700, 1_700_000_000).next, 1_705_996_800);
        // A mainnet peer is rejected.
        let filter = bsc.fork_filter(head_block, 1_760_000_000);
        assert!(matches!(
            filter.validate(ChainSpec::mainnet().fork_id_at_time(1_760_000_000)),
            Err(ForkIdError::LocalIncompatibleOrStale { .. })
        ));
    }

    #[test]
    fn chains_reject_each_other() {
        let now = 1_763_000_000;
        for a in BUILTIN_CHAINS {
            let spec = ChainSpec::by_name(a).unwrap();
            let filter = spec.fork_filter(u64::MAX - 1, now);
            for b in BUILTIN_CHAINS {
                let remote = ChainSpec::by_name(b).unwrap().fork_id_at_time(now);
                assert_eq!(filter.validate(remote).is_ok(), a == b, "{a} vs {b}");
            }
        }
    }

    #[test]
    fn builtin_specs_round_trip_through_the_file_format() {
        for name in BUILTIN_CHAINS {
            let spec = ChainSpec::by_name(name).unwrap();
            assert_eq!(ChainSpec::from_json(&spec.to_json(), "other").unwrap(), spec, "{name}");
        }
    }

    #[test]
    fn names_are_case_insensitive_and_complete() {
        for name in BUILTIN_CHAINS {
            assert_eq!(ChainSpec::by_name(&name.to_uppercase()).unwrap().name, name);
        }
        assert!(ChainSpec::by_name("goerli").is_none());
    }

    const GOOD: &str = r#"{
        "name": "devnet",
        "network_id": 1337,
        "genesis_hash": "0xd4e56740f876aef8c010b86a40d5f56745a118d0906a34e69aec8c0db1cb8fa3",
        "fork_blocks": [1150000, {"name": "dao", "block": 1920000}, 2463000, 2675000, 2675000, 4370000, 7280000],
        "fork_timestamps": []
    }"#;

    #[test]
    fn custom_chain_from_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("devnet.json");
        std::fs::write(&path, GOOD).unwrap();
        let spec = ChainSpec::from_name_or_path(path.to_str().unwrap()).unwrap();
        assert_eq!((spec.name.as_str(), spec.network_id, spec.genesis_timestamp), ("devnet", 1337, 0));
        assert_eq!(spec.forks[1], Fork { name: "dao".into(), activation: ForkActivation::Block(1_920_000) });
        assert_eq!(spec.forks[0].name, "block-1150000");
        // The EIP-2124 Petersburg-capped mainnet: same ids as the EIP's table.
        assert_eq!(spec.fork_id(7_987_396, 0), ForkId::new([0x66, 0x8d, 0xb0, 0xaf], 0));
        // Without "name" the file stem names the chain.
        let path = dir.path().join("other.json");
        std::fs::write(&path, GOOD.replace(r#""name": "devnet","#, "")).unwrap();
        assert_eq!(ChainSpec::from_file(&path).unwrap().name, "other");
    }

    // One test per malformation, each with its own typed error.
    fn parse(text: &str) -> Result<ChainSpec, ChainError> {
        ChainSpec::from_json(text, "x")
    }

    #[test]
    fn unreadable_file() {
        let dir = tempfile::tempdir().unwrap();
        let err = ChainSpec::from_file(dir.path().join("missing.json")).unwrap_err();
        assert!(matches!(err, ChainError::Io { .. }), "{err}");
    }
    #[test]
    fn unknown_network_name() {
        let err = ChainSpec::from_name_or_path("goerli").unwrap_err();
        assert!(matches!(err, ChainError::UnknownNetwork(ref s) if s == "goerli"), "{err}");
        assert!(err.to_string().contains("mainnet"), "the message lists the built-in names: {err}");
    }
    #[test]
    fn bad_json() {
        assert!(matches!(parse("{ \"network_id\": 1,"), Err(ChainError::Json(_))));
    }
    #[test]
    fn not_an_object() {
        assert!(matches!(parse("[1, 2]"), Err(ChainError::NotAnObject)));
    }
    #[test]
    fn missing_network_id() {
        let text = GOOD.replace(r#""network_id": 1337,"#, "");
        assert!(matches!(parse(&text), Err(ChainError::MissingField("network_id"))));
    }
    #[test]
    fn missing_genesis_hash() {
        let text = r#"{"network_id": 5}"#;
        assert!(matches!(parse(text), Err(ChainError::MissingField("genesis_hash"))));
    }
    #[test]
    fn wrong_type() {
        let text = GOOD.replace("1337", "\"1337\"");
        assert!(matches!(parse(&text), Err(ChainError::WrongType { field: "network_id", .. })));
        let text = GOOD.replace("\"fork_timestamps\": []", "\"fork_timestamps\": 5");
        assert!(matches!(parse(&text), Err(ChainError::WrongType { field: "fork_timestamps", .. })));
    }
    #[test]
    fn bad_genesis_hash() {
        let text = GOOD.replace("0xd4e5", "0xzze5");
        assert!(matches!(parse(&text), Err(ChainError::BadGenesisHash(_))));
        let text = GOOD.replace("0xd4e5", "0xd4");
        assert!(matches!(parse(&text), Err(ChainError::BadGenesisHash(_))));
    }
    #[test]
    fn unsorted_forks() {
        let text = GOOD.replace("2463000, 2675000", "2675000, 2463000");
        assert!(matches!(
            parse(&text),
            Err(ChainError::UnsortedForks {
                field: "fork_blocks",
                index: 3,
                previous: 2_675_000,
                value: 2_463_000
            })
        ));
    }
    #[test]
    fn bad_fork_entry() {
        for bad in [
            "-1",
            "1.5",
            "\"100\"",
            "{\"name\": \"x\"}",
            "{\"block\": 1, \"extra\": 2}",
            "{\"name\": 3, \"block\": 1}",
        ] {
            let text = GOOD.replace("1150000,", &format!("{bad},"));
            assert!(
                matches!(parse(&text), Err(ChainError::BadForkEntry { field: "fork_blocks", index: 0 })),
                "{bad}"
            );
        }
        // A timestamp entry must use the "timestamp" key.
        let text = GOOD.replace("\"fork_timestamps\": []", "\"fork_timestamps\": [{\"block\": 5}]");
        assert!(matches!(parse(&text), Err(ChainError::BadForkEntry { field: "fork_timestamps", index: 0 })));
    }
    #[test]
    fn unknown_field() {
        let text = GOOD.replace("fork_timestamps", "fork_times");
        assert!(matches!(parse(&text), Err(ChainError::UnknownField(ref f)) if f == "fork_times"));
    }
}

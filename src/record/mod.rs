//! Node identity and the records every layer shares.
//!
//! Pure data, no tasks: node keys ([`NodeKey`]), the two ids a node goes by ([`PeerId`],
//! the 64-byte public key that RLPx and discv4 use, and [`NodeId`], its keccak256 hash that
//! ENRs and discv5 use), `enode://` URLs ([`Enode`]), node records: parsing with typed errors
//! ([`parse_enr`]) and the local record shared by the
//! discovery tasks ([`LocalEnr`]); EIP-2124 fork ids ([`ForkId`]) with the validation filter
//! ([`ForkFilter`]) and the ENR `eth` entry codec ([`encode_eth_entry`], [`decode_eth_entry`]);
//! chain specifications ([`ChainSpec`]: network id, genesis and fork schedule of mainnet,
//! sepolia, holesky, hoodi, BSC or a chain file, ours or go-ethereum's `genesis.json`
//! ([`GethGenesis`])); and each network's embedded bootnodes
//! ([`bootnodes`], [`Bootnode`], [`parse_bootnode_list`] for `--bootnodes`).
//!
//! Nothing here owns state across time: the node's status task owns its [`ForkFilter`] and
//! moves its head; [`LocalEnr`] is the one shared value (a short synchronous lock).

mod bootnodes;
mod candidate;
mod chain;
mod enode;
mod enr;
mod error;
mod forkid;
mod genesis;
mod key;
pub(crate) mod net;

pub use bootnodes::{bootnodes, parse_bootnode_file, parse_bootnode_list, Bootnode};
pub use candidate::{eth_entry_of, Candidate, CandidateSource, EthEntry};
pub use chain::{
    ChainSpec, Fork, ForkActivation, BSC_GENESIS_HASH, BUILTIN_CHAINS, HOLESKY_GENESIS_HASH,
    HOODI_GENESIS_HASH, MAINNET_GENESIS_HASH, SEPOLIA_GENESIS_HASH,
};
pub use enode::Enode;
pub use enr::{
    decode_enr, parse_enr, peer_id_of_enr, EnrContent, LocalEnr, LocalEnrBuilder, ETH_ENR_KEY, MAX_ENR_SIZE,
};
pub use error::{BootnodeError, ChainError, EnodeError, EnrError, EthEntryError, ForkIdError, KeyError};
pub use forkid::{decode_eth_entry, encode_eth_entry, ForkFilter, ForkId};
pub use genesis::{
    genesis_header, geth_forks, GethGenesis, EMPTY_BLOCK_ACCESS_LIST_HASH, GENESIS_DIFFICULTY,
    GENESIS_GAS_LIMIT, GETH_BLOCK_FORKS, GETH_TIME_FORKS, INITIAL_BASE_FEE,
};
pub use key::{default_key_path, node_id, peer_id_of, public_key_of, NodeId, NodeKey, PeerId};
pub use net::{NetRestrict, NetRestrictError};

/// The ENR type used throughout: the `discv5` crate's record, whose key can be secp256k1
/// (what every execution-layer node uses) or ed25519.
pub type Enr = discv5::Enr;

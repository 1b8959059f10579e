//! Errors of the record layer. Each one names the exact malformation, so a user who typed a
//! bad key file or enode URL learns what to fix.

use std::path::PathBuf;

/// Why a node key could not be created, loaded or saved.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key text is not 64 hex characters.
    #[error("node key must be 64 hex characters (32 bytes), got {0} characters")]
    BadLength(usize),
    /// The key text contains a character that is not hex.
    #[error("node key is not valid hex: {0}")]
    BadHex(#[from] hex::FromHexError),
    /// The 32 bytes are not a valid secp256k1 scalar (zero, or not below the curve order).
    #[error("node key is not a valid secp256k1 secret key (zero or above the curve order)")]
    InvalidScalar,
    /// The key file can be read by other users; a node key is a secret.
    #[error("key file {path} is readable by group or others (mode {mode:o}); run `chmod 600 {path}`")]
    WorldReadable {
        /// The key file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// Saving would overwrite an existing key file.
    #[error("key file {0} already exists; refusing to overwrite it")]
    AlreadyExists(PathBuf),
    /// Reading or writing the key file failed.
    #[error("key file {path}: {source}")]
    Io {
        /// The key file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

/// Why an `enode://` URL could not be parsed. One variant per malformed form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnodeError {
    /// The URL does not start with `enode://`.
    #[error("enode URL must start with `enode://`")]
    BadScheme,
    /// There is no `@` between the node id and the address.
    #[error("enode URL has no `@` between node id and address")]
    MissingAt,
    /// The node id is not 128 hex characters.
    #[error("enode node id must be 128 hex characters (64 bytes), got {0}")]
    BadIdLength(usize),
    /// The node id is not hex.
    #[error("enode node id is not valid hex")]
    BadIdHex,
    /// The node id is not a point on secp256k1.
    #[error("enode node id is not a valid secp256k1 public key")]
    InvalidPublicKey,
    /// The address has no `:port`.
    #[error("enode address has no port")]
    MissingPort,
    /// The host is not an IP address (enode URLs carry IPs, not DNS names).
    #[error("enode host {0:?} is not an IP address")]
    BadIp(String),
    /// The TCP port is not a number in 0..=65535.
    #[error("enode port {0:?} is not a valid port")]
    BadPort(String),
    /// The query string is something other than `discport=N`.
    #[error("enode query {0:?} is not `discport=<port>`")]
    BadQuery(String),
    /// The `discport` value is not a valid port.
    #[error("enode discport {0:?} is not a valid port")]
    BadDiscPort(String),
}

/// Why a remote's EIP-2124 fork id was rejected. Both mean "not a useful peer for this chain
/// now"; they differ in whether it may become one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ForkIdError {
    /// The remote is in one of our past fork states but does not know the fork that followed it
    /// (EIP-2124 rule 2): its software is out of date. It may upgrade, so drop it and let it
    /// retry much later rather than ban it.
    #[error("remote fork id {remote} is stale (ours is {local}): remote needs a software update")]
    RemoteStale {
        /// Our fork id at the time of the check.
        local: super::ForkId,
        /// The fork id the remote announced.
        remote: super::ForkId,
    },
    /// The remote is on a different chain, or announces a fork we passed without forking
    /// (EIP-2124 rules 1a and 4). Either it is on another network or we are out of date;
    /// it will never be a useful peer for this chain, so the pool should ban it.
    #[error(
        "remote fork id {remote} is incompatible with ours ({local}): different chain or stale local node"
    )]
    LocalIncompatibleOrStale {
        /// Our fork id at the time of the check.
        local: super::ForkId,
        /// The fork id the remote announced.
        remote: super::ForkId,
    },
}

impl ForkIdError {
    /// Whether the pool should disconnect and stop dialing this peer for a long time: true for
    /// an incompatible chain, false for a stale peer that may upgrade its software.
    pub fn should_ban(&self) -> bool {
        matches!(self, Self::LocalIncompatibleOrStale { .. })
    }

    /// Whether the peer must be dropped now. Always true: an incompatible fork id never lets a
    /// session continue (EIP-2124 "Validation").
    pub fn should_drop(&self) -> bool {
        true
    }
}

/// Why an ENR `eth` entry (`[[fork_hash, fork_next], ...]`) could not be decoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EthEntryError {
    /// The entry is an RLP string, not a list.
    #[error("ENR `eth` entry is not an RLP list")]
    NotAList,
    /// The entry is an empty list: no fork id.
    #[error("ENR `eth` entry is an empty list, without a fork id")]
    MissingForkId,
    /// Bytes follow the entry's list.
    #[error("ENR `eth` entry has bytes after its list")]
    TrailingBytes,
    /// The RLP is truncated, or the fork id inside is malformed.
    #[error("ENR `eth` entry: {0}")]
    Rlp(alloy_rlp::Error),
}

/// Why an ENR could not be parsed, built or used. One variant per malformed form, so a user
/// who pasted a bad bootnode record learns what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EnrError {
    /// The text form does not start with `enr:` (EIP-778: "the textual form of a node record
    /// is the base64 encoding of its RLP representation, prefixed by `enr:`").
    #[error("ENR text must start with `enr:`")]
    MissingPrefix,
    /// The text after `enr:` is not URL-safe base64 without padding.
    #[error("ENR text is not valid base64url (no padding)")]
    BadBase64,
    /// The record is larger than the 300 bytes EIP-778 allows.
    #[error("ENR is {0} bytes; EIP-778 allows at most 300")]
    TooBig(usize),
    /// The bytes are not the RLP list `[signature, seq, k, v, ...]`.
    #[error("ENR is not valid RLP: {0}")]
    BadRlp(alloy_rlp::Error),
    /// The RLP list ends before the sequence number.
    #[error("ENR has no sequence number")]
    MissingSeq,
    /// Keys are not sorted and unique, as EIP-778 requires.
    #[error("ENR keys are not sorted and unique")]
    UnsortedKeys,
    /// The `id` entry names an identity scheme other than `v4`.
    #[error("ENR identity scheme is not `v4`")]
    UnsupportedScheme,
    /// The record has no public key this library knows (`secp256k1` or `ed25519`), or the
    /// key is not a valid curve point.
    #[error("ENR has no valid public key")]
    BadPublicKey,
    /// The signature does not verify against the record's public key.
    #[error("ENR signature does not verify")]
    BadSignature,
    /// Bytes follow the record's RLP list.
    #[error("{0} bytes follow the ENR")]
    TrailingBytes(usize),
    /// The record is signed with an ed25519 key; execution-layer peers are secp256k1 nodes.
    #[error("ENR key is not secp256k1")]
    NotSecp256k1,
    /// The record has neither an `ip` nor an `ip6` entry, so there is nothing to contact.
    #[error("ENR has no IP address")]
    NoAddress,
    /// Signing the local record failed (it would exceed 300 bytes, or the sequence number
    /// is exhausted).
    #[error("cannot sign the local ENR: {0}")]
    Sign(String),
}

/// Why a chain could not be loaded: an unknown `--network` name, an unreadable file, or a
/// malformed chain file. One variant per malformation, naming the field at fault.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ChainError {
    /// Not a built-in chain name, and no file exists at that path.
    #[error(
        "unknown network {0:?}: expected mainnet, sepolia, holesky, hoodi, bsc or the path of a chain file"
    )]
    UnknownNetwork(String),
    /// The chain file could not be read.
    #[error("chain file {path}: {source}")]
    Io {
        /// The chain file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// The file is not valid JSON.
    #[error("chain file is not valid JSON: {0}")]
    Json(String),
    /// The JSON is not an object.
    #[error("chain file must be a JSON object")]
    NotAnObject,
    /// A field the file must have is missing.
    #[error("chain file has no `{0}` field")]
    MissingField(&'static str),
    /// A field has the wrong JSON type.
    #[error("chain file field `{field}` must be {expected}")]
    WrongType {
        /// The field.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
    },
    /// A field the format does not define (often a typo that would silently drop forks).
    #[error("chain file has an unknown field `{0}`")]
    UnknownField(String),
    /// The genesis hash is not 32 bytes of hex.
    #[error("chain file genesis_hash {0:?} is not 32 bytes of hex")]
    BadGenesisHash(String),
    /// A fork entry is neither an unsigned integer nor a `{name, block|timestamp}` object.
    #[error("chain file `{field}[{index}]` must be an unsigned integer or an object with `name` and the activation")]
    BadForkEntry {
        /// `fork_blocks` or `fork_timestamps`.
        field: &'static str,
        /// The entry's position.
        index: usize,
    },
    /// A fork list is not in non-decreasing order.
    #[error("chain file `{field}` is not sorted: entry {index} ({value}) comes after {previous}")]
    UnsortedForks {
        /// `fork_blocks` or `fork_timestamps`.
        field: &'static str,
        /// The first entry out of order.
        index: usize,
        /// The entry before it.
        previous: u64,
        /// Its value.
        value: u64,
    },
    /// A go-ethereum `genesis.json` that alloy-genesis rejects (a field of the wrong type).
    #[error("genesis file: {0}")]
    Genesis(String),
}

/// Why a bootnode entry (in a `--bootnodes` list or a bootnode file) was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BootnodeError {
    /// The entry is neither an `enode://` URL nor an `enr:` record.
    #[error("bootnode {0:?}… is neither an `enode://` URL nor an `enr:` record")]
    UnknownScheme(String),
    /// A malformed `enode://` URL.
    #[error("bad bootnode enode URL: {0}")]
    Enode(#[from] EnodeError),
    /// A malformed or badly signed `enr:` record, or one with an ed25519 key.
    #[error("bad bootnode ENR: {0}")]
    Enr(#[from] EnrError),
    /// The record has no IPv4 or IPv6 UDP endpoint, so there is nowhere to send discovery
    /// packets.
    #[error("bootnode ENR has no UDP endpoint (needs ip + udp or ip6 + udp6)")]
    NoUdpEndpoint,
    /// An empty entry in a comma-separated list (`a,,b`).
    #[error("empty bootnode entry")]
    Empty,
    /// An entry of a list or file is bad; `position` is its 1-based entry or line number.
    #[error("bootnode #{position}: {source}")]
    Entry {
        /// The 1-based position of the entry (list) or line (file).
        position: usize,
        /// What is wrong with it.
        source: Box<BootnodeError>,
    },
    /// No built-in bootnode list exists for this network (custom chains have none: pass
    /// `--bootnodes`).
    #[error("no built-in bootnodes for network {0:?} (built in: mainnet, sepolia, holesky, hoodi, bsc)")]
    NoBuiltinList(String),
}

//! Node keys and the two ids derived from them.

use std::{
    io::Write,
    path::{Path, PathBuf},
};

use alloy_primitives::{keccak256, B256, B512};
use secp256k1::{PublicKey, SecretKey, SECP256K1};

use super::KeyError;

/// The 64-byte uncompressed secp256k1 public key (without the `0x04` prefix). RLPx, discv4
/// and `enode://` URLs identify a node by it.
pub type PeerId = B512;

/// keccak256 of the [`PeerId`]. ENRs, discv5 and Kademlia distances use it.
pub type NodeId = B256;

/// A node's secp256k1 secret key.
///
/// ```
/// use ethp2p::NodeKey;
/// let key = NodeKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291")?;
/// assert_eq!(key.node_id(), ethp2p::record::node_id(&key.peer_id()));
/// # Ok::<(), ethp2p::record::KeyError>(())
/// ```
#[derive(Clone)]
pub struct NodeKey {
    secret: SecretKey,
}

impl std::fmt::Debug for NodeKey {
    // Never print the secret, only who it belongs to.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeKey").field("peer_id", &self.peer_id()).finish()
    }
}

impl NodeKey {
    /// A fresh random key from the operating system's RNG.
    pub fn generate() -> Self {
        Self { secret: SecretKey::new(&mut rand::thread_rng()) }
    }

    /// A key from 32 secret bytes.
    pub fn from_bytes(bytes: &[u8; 32]) -> Result<Self, KeyError> {
        SecretKey::from_slice(bytes).map(|secret| Self { secret }).map_err(|_| KeyError::InvalidScalar)
    }

    /// A key from 64 hex characters (an optional `0x` prefix and surrounding whitespace are
    /// accepted, as geth's key files end with a newline).
    pub fn from_hex(text: &str) -> Result<Self, KeyError> {
        let text = text.trim();
        let text = text.strip_prefix("0x").unwrap_or(text);
        if text.len() != 64 {
            return Err(KeyError::BadLength(text.len()));
        }
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(text, &mut bytes)?;
        Self::from_bytes(&bytes)
    }

    /// The key as 64 lowercase hex characters, the format of geth's `nodekey` file.
    pub fn to_hex(&self) -> String {
        hex::encode(self.secret.secret_bytes())
    }

    /// The secp256k1 secret key.
    pub fn secret(&self) -> &SecretKey {
        &self.secret
    }

    /// The secp256k1 public key.
    pub fn public(&self) -> PublicKey {
        self.secret.public_key(SECP256K1)
    }

    /// The 64-byte public key that RLPx and discv4 know this node by.
    pub fn peer_id(&self) -> PeerId {
        peer_id_of(&self.public())
    }

    /// keccak256 of [`Self::peer_id`]: the id in this node's ENR.
    pub fn node_id(&self) -> NodeId {
        node_id(&self.peer_id())
    }

    /// The key in the form the `discv5` and `enr` crates sign records with.
    pub fn to_combined_key(&self) -> enr::CombinedKey {
        let mut bytes = self.secret.secret_bytes();
        enr::CombinedKey::secp256k1_from_bytes(&mut bytes)
            .expect("a valid secp256k1 secret is a valid k256 secret")
    }

    /// Loads a key file: 64 hex characters. Refuses a file that group or others can read,
    /// since anyone who reads it can impersonate the node.
    pub fn load(path: &Path) -> Result<Self, KeyError> {
        let io = |source| KeyError::Io { path: path.to_owned(), source };
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).map_err(io)?.permissions().mode() & 0o777;
            if mode & 0o077 != 0 {
                return Err(KeyError::WorldReadable { path: path.to_owned(), mode });
            }
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::from_hex(&text)
    }

    /// Writes the key as hex to a new file created with mode 0600. Never overwrites: an
    /// existing file gives [`KeyError::AlreadyExists`].
    pub fn save(&self, path: &Path) -> Result<(), KeyError> {
        let io = |source| KeyError::Io { path: path.to_owned(), source };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        let mut file = options.open(path).map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                KeyError::AlreadyExists(path.to_owned())
            } else {
                io(e)
            }
        })?;
        file.write_all(self.to_hex().as_bytes()).map_err(io)?;
        file.sync_all().map_err(io)
    }

    /// Loads the key at `path`, or creates and saves a new one there if the file does not
    /// exist. Returns the key and whether it was created.
    pub fn load_or_create(path: &Path) -> Result<(Self, bool), KeyError> {
        match Self::load(path) {
            Ok(key) => Ok((key, false)),
            Err(KeyError::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => {
                let key = Self::generate();
                key.save(path)?;
                Ok((key, true))
            }
            Err(e) => Err(e),
        }
    }
}

/// The [`PeerId`] of a public key: its uncompressed form without the `0x04` prefix.
pub fn peer_id_of(public: &PublicKey) -> PeerId {
    let full = public.serialize_uncompressed();
    PeerId::from_slice(&full[1..])
}

/// The public key a [`PeerId`] stands for, if it is a point on the curve.
pub fn public_key_of(peer_id: &PeerId) -> Option<PublicKey> {
    let mut full = [4u8; 65];
    full[1..].copy_from_slice(peer_id.as_slice());
    PublicKey::from_slice(&full).ok()
}

/// The [`NodeId`] of a [`PeerId`]: keccak256 of the 64 bytes.
pub fn node_id(peer_id: &PeerId) -> NodeId {
    keccak256(peer_id)
}

/// The default key file inside a data directory (`<datadir>/nodekey`, as geth names it).
pub fn default_key_path(datadir: &Path) -> PathBuf {
    datadir.join("nodekey")
}

#[cfg(test)]
mod tests {
    use super::*;

    // EIP-778 test vector: this key's node id.
    #[test]
    fn eip778_node_id() {
        let key =
            NodeKey::from_hex("b71c71a67e1177ad4e901695e1b4b9ee17ae16c6668d313eac2f96dbcda3f291").unwrap();
        assert_eq!(
            key.node_id().to_string(),
            "0xa448f24c6d18e575453db13171562b71999873db5b286df957af199ec94617f7"
        );
    }

    #[test]
    fn malformed_keys() {
        assert!(matches!(NodeKey::from_hex("abcd"), Err(KeyError::BadLength(4))));
        assert!(matches!(NodeKey::from_hex(&"zz".repeat(32)), Err(KeyError::BadHex(_))));
        assert!(matches!(NodeKey::from_hex(&"00".repeat(32)), Err(KeyError::InvalidScalar)));
        assert!(matches!(NodeKey::from_hex(&"ff".repeat(32)), Err(KeyError::InvalidScalar)));
    }

    #[test]
    fn save_load_modes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/nodekey");
        let (key, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(created);
        let (again, created) = NodeKey::load_or_create(&path).unwrap();
        assert!(!created);
        assert_eq!(key.peer_id(), again.peer_id());
        // Never overwrite.
        assert!(matches!(NodeKey::generate().save(&path), Err(KeyError::AlreadyExists(_))));
        assert_eq!(NodeKey::load(&path).unwrap().peer_id(), key.peer_id());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
            assert!(matches!(NodeKey::load(&path), Err(KeyError::WorldReadable { .. })));
        }
        let garbage = dir.path().join("garbage");
        std::fs::write(&garbage, "hello").unwrap();
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
        }
        assert!(matches!(NodeKey::load(&garbage), Err(KeyError::BadLength(5))));
    }

    #[test]
    fn combined_key_agrees() {
        let key = NodeKey::generate();
        let combined = key.to_combined_key();
        let enr = enr::Enr::builder().build(&combined).unwrap();
        assert_eq!(enr.node_id().raw(), key.node_id().0);
    }
}

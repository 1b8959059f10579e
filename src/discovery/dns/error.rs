//! Errors of DNS discovery: parsing one TXT entry, and walking a tree.

/// A TXT record that is not a valid EIP-1459 entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The text starts with none of `enrtree-root:v1`, `enrtree-branch:`, `enrtree://`, `enr:`.
    #[error("unknown entry type")]
    UnknownType,
    /// The entry is longer than any entry a tree may hold.
    #[error("entry of {0} bytes is too long")]
    TooLong(usize),
    /// A root entry that is not `enrtree-root:v1 e=<hash> l=<hash> seq=<n> sig=<sig>`.
    #[error("malformed root entry: {0}")]
    MalformedRoot(&'static str),
    /// A root's `seq=` is not a decimal number.
    #[error("invalid sequence number")]
    InvalidSeq,
    /// A root's `sig=` is not 65 bytes of unpadded URL-safe base64.
    #[error("invalid signature encoding")]
    InvalidSignature,
    /// A hash (in a root or branch) is not 12..=32 bytes of unpadded base32.
    #[error("invalid hash {0:?}")]
    InvalidHash(String),
    /// A link without the `@` that separates key and domain.
    #[error("link has no public key")]
    MissingPublicKey,
    /// A link's key is not a base32 compressed secp256k1 public key.
    #[error("invalid public key in link")]
    InvalidPublicKey,
    /// A link whose domain is empty or not a DNS name.
    #[error("invalid domain {0:?}")]
    InvalidDomain(String),
    /// An `enr:` leaf that does not decode as a valid, signed record.
    #[error("invalid ENR: {0}")]
    InvalidEnr(String),
}

/// Why a TXT lookup failed (what a [`Resolver`](super::Resolver) returns).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist or has no TXT records.
    #[error("no TXT record")]
    NotFound,
    /// No answer within the lookup timeout.
    #[error("lookup timed out")]
    Timeout,
    /// Any other resolver failure (server failure, refused, network error).
    #[error("lookup failed: {0}")]
    Other(String),
}

/// An error while resolving an EIP-1459 tree. The client reports these in
/// [`TreeStatus::last_error`](super::TreeStatus) and keeps walking the other trees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum DnsError {
    /// An `enrtree://` URL that does not parse.
    #[error("invalid tree URL: {0}")]
    InvalidUrl(EntryError),
    /// The TXT lookup of `name` failed.
    #[error("lookup of {name} failed: {source}")]
    Resolve {
        /// The queried name.
        name: String,
        /// Why.
        source: ResolveError,
    },
    /// The domain has no TXT record starting with `enrtree-root:`.
    #[error("no root entry at {domain}")]
    NoRoot {
        /// The tree's domain.
        domain: String,
    },
    /// The root entry does not parse.
    #[error("bad root at {domain}: {source}")]
    BadRoot {
        /// The tree's domain.
        domain: String,
        /// Why it does not parse.
        source: EntryError,
    },
    /// The root's signature does not verify with the key in the tree's URL.
    #[error("root signature at {domain} does not match the tree's key")]
    BadRootSignature {
        /// The tree's domain.
        domain: String,
    },
    /// A validly signed root with a lower sequence number than the one already known: a
    /// replayed or rolled-back root, ignored.
    #[error("root at {domain} has seq {seq}, lower than the known {known}")]
    StaleRoot {
        /// The tree's domain.
        domain: String,
        /// Its sequence number.
        seq: u64,
        /// The sequence number already accepted.
        known: u64,
    },
    /// No TXT record at `name` hashes to `name`'s label: a tampered or substituted entry.
    #[error("no entry at {name} matches its hash")]
    HashMismatch {
        /// The queried name.
        name: String,
    },
    /// The entry at `name` (with a matching hash) does not parse.
    #[error("bad entry at {name}: {source}")]
    BadEntry {
        /// The queried name.
        name: String,
        /// Why it does not parse.
        source: EntryError,
    },
    /// A link in the ENR subtree, an ENR in the link subtree, or a root below the top.
    #[error("unexpected {kind} entry at {name}")]
    UnexpectedEntry {
        /// The queried name.
        name: String,
        /// The entry type found (`root`, `link`, `enr`).
        kind: &'static str,
    },
    /// The tree has more entries, or is deeper, than the configured caps; the rest is skipped.
    #[error("tree {domain} exceeds the limit of {limit} {what}")]
    TreeTooLarge {
        /// The tree's domain.
        domain: String,
        /// Which cap (`entries` or `levels`).
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// A link leads back to a tree that links to it (directly or through others).
    #[error("link loop: {domain} links back to an ancestor tree")]
    LinkLoop {
        /// The linked domain.
        domain: String,
    },
    /// Following this link would exceed the cap on trees or on link depth.
    #[error("link to {domain} not followed: more than {limit} {what}")]
    TooManyLinks {
        /// The linked domain.
        domain: String,
        /// Which cap (`trees` or `link levels`).
        what: &'static str,
        /// The cap.
        limit: usize,
    },
    /// The DNS discovery task has stopped.
    #[error("DNS discovery service stopped")]
    ServiceStopped,
}

impl DnsError {
    /// Whether the error says the tree's operator (or someone between us and it) served
    /// bad data, as opposed to a transient lookup failure.
    pub fn is_bad_data(&self) -> bool {
        !matches!(self, Self::Resolve { .. } | Self::ServiceStopped | Self::TooManyLinks { .. })
    }
}

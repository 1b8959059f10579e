//! TXT lookups behind a small trait: hickory-resolver for the network, a map for tests.

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    sync::{Arc, RwLock},
    time::Duration,
};

use hickory_resolver::{
    config::{NameServerConfig, Protocol, ResolverConfig, ResolverOpts},
    error::ResolveErrorKind,
    TokioAsyncResolver,
};

use super::ResolveError;

/// Looks up the TXT records at a name. Each returned string is one TXT record, its
/// character-strings concatenated (as go-ethereum's `LookupTXT` returns them).
///
/// Implement it to resolve through something other than hickory (DNS-over-HTTPS, a
/// cache, a file).
pub trait Resolver: Send + Sync + 'static {
    /// The TXT records at `name` (a fully qualified name without the trailing dot).
    fn lookup_txt(&self, name: &str) -> impl Future<Output = Result<Vec<String>, ResolveError>> + Send;
}

/// [`Resolver`] over hickory-resolver's async resolver.
#[derive(Debug, Clone)]
pub struct HickoryResolver {
    inner: TokioAsyncResolver,
}

impl HickoryResolver {
    /// Uses the system's resolver configuration (`/etc/resolv.conf` on Unix).
    pub fn from_system_conf() -> Result<Self, ResolveError> {
        TokioAsyncResolver::tokio_from_system_conf()
            .map(|inner| Self { inner })
            .map_err(|e| ResolveError::Other(e.to_string()))
    }

    /// Queries these name servers directly, without a cache, over UDP with EDNS(0) so that
    /// entries up to the 2 KiB [`MAX_ENTRY_LEN`](super::entry::MAX_ENTRY_LEN) fit in one
    /// datagram.
    pub fn with_name_servers(servers: &[SocketAddr]) -> Self {
        let mut config = ResolverConfig::new();
        for server in servers {
            config.add_name_server(NameServerConfig::new(*server, Protocol::Udp));
        }
        let mut options = ResolverOpts::default();
        options.edns0 = true;
        // The client enforces its own lookup timeout; one attempt each keeps the two aligned.
        options.timeout = Duration::from_secs(5);
        options.attempts = 1;
        // The walker never asks for a hash-named entry twice per root, and a root recheck
        // must see the server's current root: a cache only gets in the way.
        options.cache_size = 0;
        Self { inner: TokioAsyncResolver::tokio(config, options) }
    }

    /// Wraps an already configured hickory resolver.
    pub fn from_resolver(inner: TokioAsyncResolver) -> Self {
        Self { inner }
    }
}

impl Resolver for HickoryResolver {
    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        // The trailing dot makes the name absolute, so no search domain is appended.
        let lookup = self.inner.txt_lookup(format!("{name}.")).await.map_err(|e| match e.kind() {
            ResolveErrorKind::NoRecordsFound { .. } => ResolveError::NotFound,
            ResolveErrorKind::Timeout => ResolveError::Timeout,
            _ => ResolveError::Other(e.to_string()),
        })?;
        Ok(lookup
            .iter()
            .filter_map(|txt| {
                let bytes: Vec<u8> = txt.txt_data().iter().flat_map(|s| s.iter().copied()).collect();
                // EIP-1459 entries are ASCII; a record that is not UTF-8 cannot be one.
                String::from_utf8(bytes).ok()
            })
            .collect())
    }
}

/// An in-memory zone: names to TXT records. Cheap to clone; clones share the zone, so a
/// test can change records while a client walks them.
///
/// ```
/// use ethp2p::discovery::dns::MemoryResolver;
/// let zone = MemoryResolver::default();
/// zone.insert("nodes.example.org", "enrtree-root:v1 ...");
/// ```
#[derive(Debug, Clone, Default)]
pub struct MemoryResolver {
    records: Arc<RwLock<HashMap<String, Vec<String>>>>,
}

impl MemoryResolver {
    /// A zone holding these `(name, txt)` records (names relative to nothing: fully
    /// qualified, without a trailing dot).
    pub fn from_records<I, N, T>(records: I) -> Self
    where
        I: IntoIterator<Item = (N, T)>,
        N: AsRef<str>,
        T: Into<String>,
    {
        let zone = Self::default();
        for (name, txt) in records {
            zone.insert(name.as_ref(), txt);
        }
        zone
    }

    /// Adds a TXT record at `name`.
    pub fn insert(&self, name: &str, txt: impl Into<String>) {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        records.entry(name.to_ascii_lowercase()).or_default().push(txt.into());
    }

    /// Replaces every TXT record at `name`.
    pub fn set(&self, name: &str, txts: Vec<String>) {
        let mut records = self.records.write().unwrap_or_else(|e| e.into_inner());
        records.insert(name.to_ascii_lowercase(), txts);
    }

    /// Removes every record at `name`.
    pub fn remove(&self, name: &str) {
        self.records.write().unwrap_or_else(|e| e.into_inner()).remove(&name.to_ascii_lowercase());
    }
}

impl Resolver for MemoryResolver {
    async fn lookup_txt(&self, name: &str) -> Result<Vec<String>, ResolveError> {
        let records = self.records.read().unwrap_or_else(|e| e.into_inner());
        records.get(&name.to_ascii_lowercase()).cloned().ok_or(ResolveError::NotFound)
    }
}

//! Test utilities: the [`Testnet`] helper, keys from fixed seeds. Enabled by the `test-utils`
//! feature (and in this crate's own unit tests).
//!
//! Every node a [`Testnet`] starts listens on `127.0.0.1` with a port the OS picked and is
//! restricted to `127.0.0.0/8` ([`NetRestrict::loopback`]): a socket bound to loopback cannot
//! send off the machine, and the loopback-only table filter keeps foreign records out of its
//! lookups, so no test can leak a packet.
//!
//! Later layers extend it by adding fields to [`TestNode`] (a discv4 handle, a pool) and
//! options to [`TestnetBuilder`]; the seeds, the loopback rule and [`poll_until`] stay.

pub mod crawl;
pub mod dns;
pub mod eclipse;
pub mod nat;
pub mod procfs;
pub mod stateful;
pub mod virtual_net;

use std::{future::Future, net::SocketAddr, time::Duration};

use alloy_primitives::keccak256;

use crate::{
    discovery::{Candidates, Discv5, Discv5Config, Discv5Error, NetRestrict},
    record::{Enr, ForkId, LocalEnr, NodeId, NodeKey},
};

/// A node key derived from a seed: the same seed gives the same key in every run, so a
/// test's topology (who lands in whose bucket) is reproducible.
pub fn key_from_seed(seed: u64) -> NodeKey {
    // keccak256 of the seed, re-hashed in the (astronomically rare) case the digest is not a
    // valid secp256k1 scalar.
    let mut bytes = keccak256(seed.to_be_bytes()).0;
    loop {
        if let Ok(key) = NodeKey::from_bytes(&bytes) {
            return key;
        }
        bytes = keccak256(bytes).0;
    }
}

/// The seed of a [`Testnet`]'s bootnode; its other nodes use seeds `1..=n`.
pub const BOOTNODE_SEED: u64 = 0;

/// The discv5 settings of every test node: loopback only, port 0, and lookups fast enough that
/// a small network converges in seconds (one every 250 ms for the first 40, then one a second).
pub fn test_discv5_config() -> Discv5Config {
    let mut builder = Discv5Config::builder();
    builder
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .netrestrict(NetRestrict::loopback())
        .bootstrap(40, Duration::from_millis(250))
        .lookup_interval(Duration::from_secs(1));
    builder.build().expect("test configuration is valid")
}

/// Polls `check` every `every` until it returns true or `deadline` passes. Returns whether
/// it held. Tests use it instead of sleeps; the deadline is generous and never a timing
/// assertion.
pub async fn poll_until<F, Fut>(deadline: Duration, every: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let end = tokio::time::Instant::now() + deadline;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= end {
            return false;
        }
        tokio::time::sleep(every).await;
    }
}

/// One node of a [`Testnet`].
#[derive(Debug)]
pub struct TestNode {
    /// The seed its key came from.
    pub seed: u64,
    /// Its key.
    pub key: NodeKey,
    /// Its record, shared with its discovery services.
    pub enr: LocalEnr,
    /// Its discv5 handle.
    pub discv5: Discv5,
    /// The candidates its discv5 found; tests may drain them.
    pub candidates: Candidates,
}

impl TestNode {
    /// Its node id.
    pub fn node_id(&self) -> NodeId {
        self.key.node_id()
    }

    /// Its current record.
    pub fn record(&self) -> Enr {
        self.enr.record()
    }

    /// The node ids in its discv5 routing table (empty if the service stopped).
    pub async fn table_ids(&self) -> Vec<NodeId> {
        self.discv5
            .table_entries()
            .await
            .unwrap_or_default()
            .iter()
            .map(|enr| NodeId::from(enr.node_id().raw()))
            .collect()
    }
}

/// Options for a [`Testnet`].
#[derive(Debug, Clone)]
pub struct TestnetBuilder {
    nodes: usize,
    bootnode: bool,
    fork_id: Option<ForkId>,
    discv5: Discv5Config,
    first_seed: u64,
}

impl TestnetBuilder {
    /// Whether to start a bootnode (seed [`BOOTNODE_SEED`]) that every other node bootstraps
    /// from. Default: true.
    pub fn bootnode(&mut self, bootnode: bool) -> &mut Self {
        self.bootnode = bootnode;
        self
    }

    /// The fork id every node puts in its record. Default: none.
    pub fn fork_id(&mut self, fork_id: ForkId) -> &mut Self {
        self.fork_id = Some(fork_id);
        self
    }

    /// The seed of the first non-bootnode node; the others follow. Default: 1.
    pub fn first_seed(&mut self, seed: u64) -> &mut Self {
        self.first_seed = seed;
        self
    }

    /// The discv5 settings. The listen address is always `127.0.0.1:0` and netrestrict
    /// always loopback, whatever is given here. Default: [`test_discv5_config`].
    pub fn discv5(&mut self, config: Discv5Config) -> &mut Self {
        self.discv5 = config;
        self
    }

    /// Starts the bootnode (if any), then the other nodes, bootstrapped from it.
    pub async fn start(&self) -> Result<Testnet, Discv5Error> {
        let bootnode =
            if self.bootnode { Some(self.start_node(BOOTNODE_SEED, Vec::new()).await?) } else { None };
        let boot_records: Vec<Enr> = bootnode.iter().map(TestNode::record).collect();
        let mut nodes = Vec::with_capacity(self.nodes);
        for i in 0..self.nodes as u64 {
            nodes.push(self.start_node(self.first_seed + i, boot_records.clone()).await?);
        }
        Ok(Testnet { bootnode, nodes })
    }

    /// Starts one loopback node with key `seed`, bootstrapping from `bootnodes`.
    pub async fn start_node(&self, seed: u64, bootnodes: Vec<Enr>) -> Result<TestNode, Discv5Error> {
        let key = key_from_seed(seed);
        // No address yet: discv5 writes the bound 127.0.0.1 port in. No TCP port: these
        // nodes serve discovery only.
        let enr = LocalEnr::builder(&key)
            .content(crate::record::EnrContent { fork_id: self.fork_id, ..Default::default() })
            .build()?;
        let mut config = self.discv5.clone();
        config.listen = SocketAddr::from(([127, 0, 0, 1], 0));
        config.netrestrict = NetRestrict::loopback();
        config.bootnodes = bootnodes;
        let (discv5, candidates) = Discv5::start(enr.clone(), config).await?;
        Ok(TestNode { seed, key, enr, discv5, candidates })
    }
}

/// N discovery nodes on loopback, optionally with a bootnode. See the module docs.
///
/// ```no_run
/// # async fn run() -> Result<(), ethp2p::discovery::Discv5Error> {
/// use std::time::Duration;
/// use ethp2p::test_utils::{poll_until, Testnet};
/// let net = Testnet::builder(4).start().await?;
/// let joined = poll_until(Duration::from_secs(20), Duration::from_millis(100), || async {
///     net.bootnode().unwrap().discv5.stats().await.map_or(false, |s| s.table_size >= 4)
/// })
/// .await;
/// assert!(joined);
/// net.shutdown().await;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Testnet {
    bootnode: Option<TestNode>,
    nodes: Vec<TestNode>,
}

impl Testnet {
    /// Options for a testnet of `nodes` nodes (plus a bootnode by default).
    pub fn builder(nodes: usize) -> TestnetBuilder {
        TestnetBuilder { nodes, bootnode: true, fork_id: None, discv5: test_discv5_config(), first_seed: 1 }
    }

    /// The bootnode, if the testnet has one.
    pub fn bootnode(&self) -> Option<&TestNode> {
        self.bootnode.as_ref()
    }

    /// The other nodes, in seed order.
    pub fn nodes(&self) -> &[TestNode] {
        &self.nodes
    }

    /// The other nodes, mutably (to drain their candidate streams).
    pub fn nodes_mut(&mut self) -> &mut [TestNode] {
        &mut self.nodes
    }

    /// The bootnode followed by the other nodes.
    pub fn all(&self) -> impl Iterator<Item = &TestNode> {
        self.bootnode.iter().chain(&self.nodes)
    }

    /// Polls `check` over the whole testnet every 100 ms until it holds or `deadline` passes.
    pub async fn poll_until<'a, F, Fut>(&'a self, deadline: Duration, mut check: F) -> bool
    where
        F: FnMut(&'a Testnet) -> Fut,
        Fut: Future<Output = bool> + 'a,
    {
        poll_until(deadline, Duration::from_millis(100), || check(self)).await
    }

    /// Stops every node and waits until each has stopped.
    pub async fn shutdown(self) {
        for node in self.all() {
            node.discv5.shutdown().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_are_stable_and_distinct() {
        assert_eq!(key_from_seed(7).node_id(), key_from_seed(7).node_id());
        assert_ne!(key_from_seed(7).node_id(), key_from_seed(8).node_id());
        // Pinned, so a change of derivation (and of every test topology) is noticed.
        assert_eq!(key_from_seed(0).to_hex(), hex::encode(keccak256(0u64.to_be_bytes())));
    }

    #[tokio::test]
    async fn poll_until_reports_failure() {
        assert!(!poll_until(Duration::from_millis(50), Duration::from_millis(10), || async { false }).await);
        let mut n = 0;
        assert!(
            poll_until(Duration::from_secs(5), Duration::from_millis(1), || {
                n += 1;
                let done = n >= 3;
                async move { done }
            })
            .await
        );
    }
}

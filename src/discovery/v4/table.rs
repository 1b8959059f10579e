//! The Kademlia routing table: a pure data structure, owned by the discv4 core.
//!
//! 256 buckets by log2 XOR distance of node ids, each with up to `bucket_size` live entries
//! and `replacements` candidates waiting for a slot (geth's `bucketSize` 16 and
//! `maxReplacements` 10). Only nodes whose endpoint we verified (they answered our PING
//! with a matching PONG) are entered; the core's revalidation evicts the ones that stop
//! answering and promotes a replacement.
//!
//! Eclipse resistance, as geth's `netutil.DistinctNetSet`: at most `bucket_subnet_limit`
//! nodes per /24 (IPv4) or /48 (IPv6) in one bucket and `table_subnet_limit` in the whole
//! table, counting live entries only. Loopback and private addresses are not limited when
//! `limit_private` is off, so that local test networks fill their tables.
//!
//! Why not the `discv5` crate's `kbucket`: its entries carry connection states and pending
//! slots tied to discv5's session logic, and its IP filters are per-bucket only; discv4 needs
//! replacement lists, table-wide subnet counts and endpoint-proof times, which are a few
//! hundred lines on their own.

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use std::{collections::HashMap, net::IpAddr, time::Instant};

use alloy_primitives::B256;

use super::proto::{Endpoint, NodeRecord};
use crate::record::{net, node_id, Enr, NodeId, PeerId};

/// Number of buckets: one per possible log2 distance (1..=256).
const BUCKETS: usize = 256;

/// Subnet size limits (geth `tableIPLimit`/`bucketIPLimit`; go-ethereum#20522 for /48 on IPv6).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetLimits {
    /// Nodes of one subnet allowed in one bucket. Default: 2 (geth `bucketIPLimit`).
    pub per_bucket: usize,
    /// Nodes of one subnet allowed in the whole table. Default: 10 (geth `tableIPLimit`).
    pub per_table: usize,
    /// IPv4 prefix length that defines a subnet. Default: 24.
    pub ipv4_prefix: u8,
    /// IPv6 prefix length that defines a subnet. Default: 48.
    pub ipv6_prefix: u8,
    /// Whether loopback, private and link-local addresses count too. Default: false (geth
    /// exempts LAN addresses so that private networks and tests can fill a table).
    pub limit_private: bool,
}

impl Default for SubnetLimits {
    fn default() -> Self {
        Self { per_bucket: 2, per_table: 10, ipv4_prefix: 24, ipv6_prefix: 48, limit_private: false }
    }
}

/// A live entry of the table.
#[derive(Debug, Clone)]
pub struct TableEntry {
    /// The node's public key.
    pub peer_id: PeerId,
    /// keccak256 of `peer_id`.
    pub node_id: NodeId,
    /// Its verified endpoint (the IP and UDP port it answered from; the TCP port it claims).
    pub endpoint: Endpoint,
    /// When it entered the table.
    pub added: Instant,
    /// When it last answered a PING of ours.
    pub last_pong: Instant,
    /// The highest ENR sequence number it announced in a PING or PONG (EIP-868).
    pub enr_seq: Option<u64>,
    /// Its record, once fetched with an ENRRequest.
    pub enr: Option<Enr>,
    /// Revalidation rounds it has passed in a row; favoured when choosing what to keep.
    pub live_checks: u32,
}

impl TableEntry {
    /// A new entry for a node that just proved its endpoint.
    pub fn new(peer_id: PeerId, endpoint: Endpoint, now: Instant) -> Self {
        Self {
            peer_id,
            node_id: node_id(&peer_id),
            endpoint,
            added: now,
            last_pong: now,
            enr_seq: None,
            enr: None,
            live_checks: 0,
        }
    }

    /// The entry as a Neighbours record.
    pub fn record(&self) -> NodeRecord {
        NodeRecord { endpoint: self.endpoint, id: self.peer_id }
    }
}

/// What [`Table::insert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InsertResult {
    /// A new live entry.
    Inserted,
    /// The node was already in the table; its endpoint and liveness were refreshed.
    Updated,
    /// The bucket is full; the node waits in its replacement list.
    Replacement,
    /// The node's subnet already has its share of the bucket or table.
    SubnetLimited,
    /// The node is us.
    IsSelf,
}

#[derive(Debug, Default)]
struct Bucket {
    entries: Vec<TableEntry>,
    /// Most recently seen last.
    replacements: Vec<TableEntry>,
}

/// The routing table. Every method takes `now` where time matters; nothing here blocks.
#[derive(Debug)]
pub struct Table {
    local_id: NodeId,
    bucket_size: usize,
    max_replacements: usize,
    limits: SubnetLimits,
    buckets: Vec<Bucket>,
    /// Live entries per subnet, table-wide.
    subnets: HashMap<Subnet, usize>,
    len: usize,
}

/// A /24 or /48 (or whatever the limits say) network prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Subnet {
    V4(u32),
    V6(u128),
}

impl Table {
    /// An empty table around `local_id`.
    pub fn new(local_id: NodeId, bucket_size: usize, max_replacements: usize, limits: SubnetLimits) -> Self {
        Self {
            local_id,
            bucket_size,
            max_replacements,
            limits,
            buckets: (0..BUCKETS).map(|_| Bucket::default()).collect(),
            subnets: HashMap::new(),
            len: 0,
        }
    }

    /// Number of live entries.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the table has no live entry.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The bucket index (log2 distance − 1) of `id`, or `None` for our own id.
    fn bucket_of(&self, id: &NodeId) -> Option<usize> {
        log_distance(&self.local_id, id).map(|d| d as usize - 1)
    }

    fn subnet(&self, ip: &IpAddr) -> Option<Subnet> {
        let ip = net::canonical(*ip);
        if !self.limits.limit_private && net::is_lan(ip) {
            return None;
        }
        Some(match ip {
            IpAddr::V4(v4) => {
                let bits = self.limits.ipv4_prefix.min(32) as u32;
                let mask = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
                Subnet::V4(u32::from(v4) & mask)
            }
            IpAddr::V6(v6) => {
                let bits = self.limits.ipv6_prefix.min(128) as u32;
                let mask = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
                Subnet::V6(u128::from(v6) & mask)
            }
        })
    }

    /// Whether a live entry for `subnet` fits in `bucket` and the table.
    fn subnet_allows(&self, bucket: usize, subnet: Option<Subnet>) -> bool {
        let Some(subnet) = subnet else { return true };
        let in_table = self.subnets.get(&subnet).copied().unwrap_or(0);
        let in_bucket = self.buckets[bucket]
            .entries
            .iter()
            .filter(|e| self.subnet(&e.endpoint.ip) == Some(subnet))
            .count();
        in_table < self.limits.per_table && in_bucket < self.limits.per_bucket
    }

    /// Whether one more replacement for `subnet` fits in `bucket`: the subnet's live
    /// entries and replacements there (other than `peer_id`'s own) stay under the bucket
    /// limit, and its live entries under the table limit.
    fn replacement_allows(&self, bucket: usize, subnet: Option<Subnet>, peer_id: &PeerId) -> bool {
        let Some(subnet) = subnet else { return true };
        let in_table = self.subnets.get(&subnet).copied().unwrap_or(0);
        let b = &self.buckets[bucket];
        let in_bucket = b
            .entries
            .iter()
            .chain(b.replacements.iter().filter(|r| &r.peer_id != peer_id))
            .filter(|e| self.subnet(&e.endpoint.ip) == Some(subnet))
            .count();
        in_table < self.limits.per_table && in_bucket < self.limits.per_bucket
    }

    fn count_subnet(&mut self, ip: &IpAddr, delta: isize) {
        if let Some(subnet) = self.subnet(ip) {
            let count = self.subnets.entry(subnet).or_insert(0);
            *count = count.saturating_add_signed(delta);
            if *count == 0 {
                self.subnets.remove(&subnet);
            }
        }
    }

    /// Enters a node whose endpoint was just verified, or refreshes it if present.
    pub fn insert(&mut self, entry: TableEntry) -> InsertResult {
        let Some(b) = self.bucket_of(&entry.node_id) else { return InsertResult::IsSelf };
        if let Some(pos) = self.buckets[b].entries.iter().position(|e| e.peer_id == entry.peer_id) {
            let old_ip = self.buckets[b].entries[pos].endpoint.ip;
            if old_ip != entry.endpoint.ip {
                // A node that moved must fit its new subnet's limits like any newcomer.
                self.count_subnet(&old_ip, -1);
                let subnet = self.subnet(&entry.endpoint.ip);
                if !self.subnet_allows(b, subnet) {
                    self.buckets[b].entries.remove(pos);
                    self.len -= 1;
                    return InsertResult::SubnetLimited;
                }
                self.count_subnet(&entry.endpoint.ip, 1);
            }
            let existing = &mut self.buckets[b].entries[pos];
            existing.endpoint = entry.endpoint;
            existing.last_pong = entry.last_pong;
            if entry.enr_seq > existing.enr_seq {
                existing.enr_seq = entry.enr_seq;
            }
            return InsertResult::Updated;
        }
        let subnet = self.subnet(&entry.endpoint.ip);
        if self.buckets[b].entries.len() >= self.bucket_size {
            // geth's addReplacement counts replacements against the IP limits too: one
            // subnet's thousand keys would otherwise all wait (and be reported to the pool)
            // as replacements of every full bucket.
            if !self.replacement_allows(b, subnet, &entry.peer_id) {
                return InsertResult::SubnetLimited;
            }
            self.add_replacement(b, entry);
            return InsertResult::Replacement;
        }
        if !self.subnet_allows(b, subnet) {
            return InsertResult::SubnetLimited;
        }
        let bucket = &mut self.buckets[b];
        bucket.replacements.retain(|r| r.peer_id != entry.peer_id);
        self.count_subnet(&entry.endpoint.ip, 1);
        self.buckets[b].entries.push(entry);
        self.len += 1;
        InsertResult::Inserted
    }

    fn add_replacement(&mut self, b: usize, entry: TableEntry) {
        let max = self.max_replacements;
        let bucket = &mut self.buckets[b];
        bucket.replacements.retain(|r| r.peer_id != entry.peer_id);
        bucket.replacements.push(entry);
        if bucket.replacements.len() > max {
            bucket.replacements.remove(0);
        }
    }

    /// Removes a node that failed revalidation and promotes the most recently seen
    /// replacement that fits the subnet limits. Returns the promoted node, which the core
    /// should revalidate soon.
    pub fn remove(&mut self, peer_id: &PeerId) -> Option<PeerId> {
        let b = self.bucket_of(&node_id(peer_id))?;
        let pos = self.buckets[b].entries.iter().position(|e| &e.peer_id == peer_id)?;
        let removed = self.buckets[b].entries.remove(pos);
        self.len -= 1;
        self.count_subnet(&removed.endpoint.ip, -1);
        while let Some(candidate) = self.buckets[b].replacements.pop() {
            let subnet = self.subnet(&candidate.endpoint.ip);
            if self.subnet_allows(b, subnet) {
                let promoted = candidate.peer_id;
                self.count_subnet(&candidate.endpoint.ip, 1);
                self.buckets[b].entries.push(candidate);
                self.len += 1;
                return Some(promoted);
            }
        }
        None
    }

    /// The live entry for `peer_id`.
    pub fn get(&self, peer_id: &PeerId) -> Option<&TableEntry> {
        let b = self.bucket_of(&node_id(peer_id))?;
        self.buckets[b].entries.iter().find(|e| &e.peer_id == peer_id)
    }

    /// The live entry for `peer_id`, to update.
    pub fn get_mut(&mut self, peer_id: &PeerId) -> Option<&mut TableEntry> {
        let b = self.bucket_of(&node_id(peer_id))?;
        self.buckets[b].entries.iter_mut().find(|e| &e.peer_id == peer_id)
    }

    /// Marks a revalidation success: moves the entry to the back of its bucket (the least
    /// recently checked entry is always at the front).
    pub fn mark_live(&mut self, peer_id: &PeerId, now: Instant, enr_seq: Option<u64>) {
        let Some(b) = self.bucket_of(&node_id(peer_id)) else { return };
        let bucket = &mut self.buckets[b];
        if let Some(pos) = bucket.entries.iter().position(|e| &e.peer_id == peer_id) {
            let mut entry = bucket.entries.remove(pos);
            entry.last_pong = now;
            entry.live_checks = entry.live_checks.saturating_add(1);
            if enr_seq > entry.enr_seq {
                entry.enr_seq = enr_seq;
            }
            bucket.entries.push(entry);
        }
    }

    /// The entry checked longest ago, to revalidate next (geth revalidates the last entry
    /// of a random bucket; choosing the globally stalest one is deterministic and fair).
    pub fn stalest(&self) -> Option<&TableEntry> {
        self.buckets.iter().filter_map(|b| b.entries.first()).min_by_key(|e| e.last_pong)
    }

    /// The `n` live entries closest to `target` by XOR distance, closest first.
    pub fn closest(&self, target: &NodeId, n: usize) -> Vec<&TableEntry> {
        let mut all: Vec<&TableEntry> = self.iter().collect();
        all.sort_unstable_by_key(|e| e.node_id ^ *target);
        all.truncate(n);
        all
    }

    /// Every live entry, bucket by bucket.
    pub fn iter(&self) -> impl Iterator<Item = &TableEntry> {
        self.buckets.iter().flat_map(|b| b.entries.iter())
    }

    /// Number of replacement candidates across all buckets.
    pub fn replacements_len(&self) -> usize {
        self.buckets.iter().map(|b| b.replacements.len()).sum()
    }
}

/// log2 of the XOR distance, 1..=256, or `None` for equal ids (discv4.md "logdistance").
pub fn log_distance(a: &NodeId, b: &NodeId) -> Option<u32> {
    let x: B256 = *a ^ *b;
    let zeros: u32 = leading_zero_bits(&x);
    (zeros < 256).then(|| 256 - zeros)
}

fn leading_zero_bits(x: &B256) -> u32 {
    let mut zeros = 0;
    for byte in x.iter() {
        if *byte == 0 {
            zeros += 8;
        } else {
            return zeros + byte.leading_zeros();
        }
    }
    zeros
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::NodeKey;
    use proptest::prelude::*;

    fn entry(ip: &str, now: Instant) -> TableEntry {
        let key = NodeKey::generate();
        TableEntry::new(
            key.peer_id(),
            Endpoint { ip: ip.parse().unwrap(), udp_port: 30303, tcp_port: 30303 },
            now,
        )
    }

    /// An entry that lands in bucket `b` of a table around `local`.
    fn entry_in_bucket(local: &NodeId, b: usize, ip: &str, now: Instant) -> TableEntry {
        loop {
            let e = entry(ip, now);
            if log_distance(local, &e.node_id) == Some(b as u32 + 1) {
                return e;
            }
        }
    }

    fn table(limits: SubnetLimits) -> Table {
        Table::new(NodeKey::generate().node_id(), 16, 10, limits)
    }

    #[test]
    fn log_distances() {
        let a = B256::ZERO;
        assert_eq!(log_distance(&a, &a), None);
        let mut b = B256::ZERO;
        b.0[31] = 1;
        assert_eq!(log_distance(&a, &b), Some(1));
        b.0[0] = 0x80;
        assert_eq!(log_distance(&a, &b), Some(256));
    }

    /// One /24 with many keys cannot queue more than the bucket's subnet limit as
    /// replacements of a full bucket (before: every one of them waited, and the core
    /// reported each to the pool as a candidate).
    #[test]
    fn replacements_obey_the_subnet_limit() {
        let now = Instant::now();
        let limits = SubnetLimits::default();
        let mut t = table(limits);
        let local = t.local_id;
        for i in 0..16 {
            assert_eq!(
                t.insert(entry_in_bucket(&local, 255, &format!("20.0.{i}.1"), now)),
                InsertResult::Inserted
            );
        }
        let results: Vec<_> = (0..10)
            .map(|i| t.insert(entry_in_bucket(&local, 255, &format!("66.6.0.{}", i + 1), now)))
            .collect();
        let queued = results.iter().filter(|r| **r == InsertResult::Replacement).count();
        assert_eq!(queued, limits.per_bucket, "{results:?}");
        assert!(
            results[limits.per_bucket..].iter().all(|r| *r == InsertResult::SubnetLimited),
            "{results:?}"
        );
        // Another /24 still queues.
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "66.6.1.1", now)), InsertResult::Replacement);
    }

    #[test]
    fn bucket_full_goes_to_replacements_then_promoted() {
        let now = Instant::now();
        let mut t = table(SubnetLimits::default());
        let local = t.local_id;
        // Bucket 255 (half the id space): quick to fill with random keys.
        let entries: Vec<_> =
            (0..16).map(|i| entry_in_bucket(&local, 255, &format!("1.{i}.0.1"), now)).collect();
        for e in &entries {
            assert_eq!(t.insert(e.clone()), InsertResult::Inserted);
        }
        let extra: Vec<_> =
            (0..12).map(|i| entry_in_bucket(&local, 255, &format!("2.{i}.0.1"), now)).collect();
        for e in &extra {
            assert_eq!(t.insert(e.clone()), InsertResult::Replacement);
        }
        assert_eq!(t.len(), 16);
        // Replacement lists are capped: the 2 oldest fell off.
        assert_eq!(t.replacements_len(), 10);
        // Removing a live entry promotes the most recently seen replacement.
        assert_eq!(t.remove(&entries[0].peer_id), Some(extra[11].peer_id));
        assert!(t.get(&extra[11].peer_id).is_some());
        assert_eq!(t.len(), 16);
        assert_eq!(t.insert(entries[1].clone()), InsertResult::Updated);
    }

    #[test]
    fn subnet_limit_per_bucket() {
        let now = Instant::now();
        let mut t = table(SubnetLimits::default());
        let local = t.local_id;
        let a = entry_in_bucket(&local, 255, "8.8.8.1", now);
        let b = entry_in_bucket(&local, 255, "8.8.8.2", now);
        let c = entry_in_bucket(&local, 255, "8.8.8.3", now);
        assert_eq!(t.insert(a.clone()), InsertResult::Inserted);
        assert_eq!(t.insert(b), InsertResult::Inserted);
        assert_eq!(t.insert(c), InsertResult::SubnetLimited);
        // Another /24 is fine.
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "8.8.9.1", now)), InsertResult::Inserted);
        // Freed slot: the subnet may use it again.
        t.remove(&a.peer_id);
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "8.8.8.4", now)), InsertResult::Inserted);
    }

    #[test]
    fn subnet_limit_per_table() {
        let now = Instant::now();
        let mut t = table(SubnetLimits { per_bucket: 16, ..Default::default() });
        let local = t.local_id;
        let mut inserted = 0;
        // Spread over buckets 255, 254, 253 so no bucket fills up.
        for i in 0..12 {
            let e = entry_in_bucket(&local, 253 + i % 3, &format!("9.9.9.{i}"), now);
            if t.insert(e) == InsertResult::Inserted {
                inserted += 1;
            }
        }
        assert_eq!(inserted, 10);
        assert_eq!(t.len(), 10);
    }

    #[test]
    fn ipv6_uses_48_bit_prefix() {
        let now = Instant::now();
        let mut t = table(SubnetLimits::default());
        let local = t.local_id;
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "2001:db8:1:1::1", now)), InsertResult::Inserted);
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "2001:db8:1:2::1", now)), InsertResult::Inserted);
        // Same /48 as the two above.
        assert_eq!(
            t.insert(entry_in_bucket(&local, 255, "2001:db8:1:ffff::1", now)),
            InsertResult::SubnetLimited
        );
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "2001:db8:2::1", now)), InsertResult::Inserted);
    }

    #[test]
    fn lan_exempt_unless_configured() {
        let now = Instant::now();
        let mut t = table(SubnetLimits::default());
        let local = t.local_id;
        for i in 0..5 {
            let e = entry_in_bucket(&local, 255, &format!("127.0.0.{i}"), now);
            assert_eq!(t.insert(e), InsertResult::Inserted);
        }
        let mut strict = table(SubnetLimits { limit_private: true, ..Default::default() });
        let local = strict.local_id;
        let results: Vec<_> = (0..3)
            .map(|i| strict.insert(entry_in_bucket(&local, 255, &format!("127.0.0.{i}"), now)))
            .collect();
        assert_eq!(results[2], InsertResult::SubnetLimited);
    }

    #[test]
    fn moved_node_recounted() {
        let now = Instant::now();
        let mut t = table(SubnetLimits::default());
        let local = t.local_id;
        let a = entry_in_bucket(&local, 255, "8.8.8.1", now);
        let b = entry_in_bucket(&local, 255, "8.8.8.2", now);
        t.insert(a.clone());
        t.insert(b.clone());
        // `a` moves to another subnet: 8.8.8.0/24 has room again.
        let mut moved = a.clone();
        moved.endpoint.ip = "7.7.7.7".parse().unwrap();
        assert_eq!(t.insert(moved), InsertResult::Updated);
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "8.8.8.3", now)), InsertResult::Inserted);
        // `b` moving into a full subnet is dropped.
        let mut b2 = b.clone();
        b2.endpoint.ip = "7.7.7.8".parse().unwrap();
        assert_eq!(t.insert(b2), InsertResult::Updated);
        assert_eq!(t.insert(entry_in_bucket(&local, 255, "8.8.8.4", now)), InsertResult::Inserted);
        let mut b3 = b.clone();
        b3.endpoint.ip = "8.8.8.9".parse().unwrap();
        assert_eq!(t.insert(b3), InsertResult::SubnetLimited);
        assert!(t.get(&b.peer_id).is_none());
    }

    #[test]
    fn stalest_and_mark_live() {
        let t0 = Instant::now();
        let mut t = table(SubnetLimits::default());
        let a = entry("10.0.0.1", t0);
        let b = entry("10.0.0.2", t0 + std::time::Duration::from_secs(1));
        t.insert(a.clone());
        t.insert(b.clone());
        assert_eq!(t.stalest().unwrap().peer_id, a.peer_id);
        t.mark_live(&a.peer_id, t0 + std::time::Duration::from_secs(5), Some(3));
        assert_eq!(t.stalest().unwrap().peer_id, b.peer_id);
        assert_eq!(t.get(&a.peer_id).unwrap().enr_seq, Some(3));
        assert_eq!(
            t.insert(TableEntry::new(NodeKey::generate().peer_id(), a.endpoint, t0)),
            InsertResult::Inserted
        );
    }

    proptest! {
        // Invariants under random inserts and removes: counts agree, buckets never overflow,
        // and subnet limits hold.
        #[test]
        fn invariants(ops in proptest::collection::vec((any::<bool>(), 0u8..4, 0u8..8), 1..120)) {
            let now = Instant::now();
            let mut t = Table::new(B256::ZERO, 4, 2, SubnetLimits { per_bucket: 2, per_table: 3, ..Default::default() });
            let mut known: Vec<PeerId> = Vec::new();
            for (insert, net, host) in ops {
                if insert || known.is_empty() {
                    let e = entry(&format!("5.5.{net}.{host}"), now);
                    known.push(e.peer_id);
                    t.insert(e);
                } else {
                    let id = known[host as usize % known.len()];
                    t.remove(&id);
                }
                prop_assert_eq!(t.len(), t.iter().count());
                for bucket in &t.buckets {
                    prop_assert!(bucket.entries.len() <= 4);
                    prop_assert!(bucket.replacements.len() <= 2);
                }
                let mut per_net = HashMap::new();
                for e in t.iter() {
                    *per_net.entry(t.subnet(&e.endpoint.ip)).or_insert(0) += 1;
                }
                for count in per_net.values() {
                    prop_assert!(*count <= 3);
                }
            }
        }
    }
}

//! A light virtual discv4 network for crawl benchmarks at scale: thousands of nodes, each a
//! UDP socket on its own loopback address, answering discv4 with real signed packets (our
//! `proto` codec) from a precomputed table, without a discovery service per node.
//!
//! What a virtual node does: it answers a PING with a PONG and pings the sender back (the
//! endpoint proof a crawler waits for before it asks), and answers a FINDNODE with the 16
//! entries of its table closest to the target, in NEIGHBOURS packets. Its table is computed
//! up front, as [`CrawlNet`](super::crawl::CrawlNet) computes its nodes' tables (a few
//! entries per log-distance bucket, chosen differently per node, so that every node is held
//! by someone). What it does not do: keep a table that changes, look anything up itself,
//! check expirations or bonds, answer ENRRequests (its PONG announces no record, EIP-868),
//! speak discv5, or listen on TCP (its advertised TCP port is closed: every probe is
//! refused at once). Every packet it receives is decoded and its signature recovered, and
//! every packet it sends is signed, as a real node's would be.
//!
//! One tokio task per node: the task owns its socket; the tables are shared read-only.

use std::{
    net::{IpAddr, SocketAddr},
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::{SystemTime, UNIX_EPOCH},
};

use tokio::{net::UdpSocket, task::JoinSet};

use super::{
    crawl::{bucket_fill, node_ip, xor},
    key_from_seed,
};
use crate::{
    discovery::v4::proto::{self, Endpoint, Message, NodeRecord, Ping, Pong},
    record::{node_id, Enode, NodeId, NodeKey},
};

/// Entries per log-distance bucket in each virtual node's table (as `CrawlNet`'s discv4
/// nodes ping per bucket).
const PER_BUCKET: usize = 4;
/// discv4.md: a NEIGHBOURS answer names at most this many nodes (in two packets).
const NEIGHBOURS: usize = 16;
/// Seconds a sent packet stays valid (geth: 20).
const EXPIRATION: u64 = 20;

/// Packets the virtual nodes received and sent, for the crypto floor (each received one
/// costs a signature recovery, each sent one a signature).
#[derive(Debug, Default)]
pub struct VirtualCounters {
    /// Packets received and decoded.
    pub received: AtomicU64,
    /// Packets signed and sent.
    pub sent: AtomicU64,
}

struct Shared {
    keys: Vec<NodeKey>,
    ids: Vec<NodeId>,
    addrs: Vec<SocketAddr>,
    tables: Vec<Vec<usize>>,
    counters: Arc<VirtualCounters>,
}

/// The running network; dropping it stops every node.
#[derive(Debug)]
pub struct VirtualNet {
    enodes: Vec<Enode>,
    counters: Arc<VirtualCounters>,
    tasks: JoinSet<()>,
}

impl VirtualNet {
    /// Binds `n` nodes (keys from seeds `first_seed..`), node `i` on
    /// [`node_ip`]`(i)` with a port the kernel picks, and starts serving.
    pub async fn start(n: usize, first_seed: u64) -> std::io::Result<Self> {
        let keys: Vec<NodeKey> = (0..n as u64).map(|i| key_from_seed(first_seed + i)).collect();
        let ids: Vec<NodeId> = keys.iter().map(NodeKey::node_id).collect();
        let mut sockets = Vec::with_capacity(n);
        let mut addrs = Vec::with_capacity(n);
        for i in 0..n {
            let socket = UdpSocket::bind(SocketAddr::new(IpAddr::V4(node_ip(i)), 0)).await?;
            addrs.push(socket.local_addr()?);
            sockets.push(socket);
        }
        let everyone: Vec<usize> = (0..n).collect();
        let tables = (0..n).map(|i| bucket_fill(&ids, i, &everyone, PER_BUCKET)).collect();
        let counters = Arc::new(VirtualCounters::default());
        let enodes = keys
            .iter()
            .zip(&addrs)
            .map(|(key, addr)| Enode {
                peer_id: key.peer_id(),
                ip: addr.ip(),
                tcp_port: addr.port(),
                udp_port: addr.port(),
            })
            .collect();
        let shared = Arc::new(Shared { keys, ids, addrs, tables, counters: counters.clone() });
        let mut tasks = JoinSet::new();
        for (i, socket) in sockets.into_iter().enumerate() {
            tasks.spawn(serve(shared.clone(), i, socket));
        }
        Ok(Self { enodes, counters, tasks })
    }

    /// Node `i`'s `enode://` (its TCP port is the UDP port number, where nothing listens).
    pub fn enodes(&self) -> &[Enode] {
        &self.enodes
    }

    /// Packets received and sent by all nodes so far.
    pub fn counters(&self) -> &VirtualCounters {
        &self.counters
    }

    /// Stops every node.
    pub async fn shutdown(mut self) {
        self.tasks.shutdown().await;
    }
}

fn expiration() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0) + EXPIRATION
}

fn endpoint(addr: SocketAddr) -> Endpoint {
    Endpoint { ip: addr.ip(), udp_port: addr.port(), tcp_port: addr.port() }
}

/// One node: reads its socket and answers (see the module docs).
async fn serve(shared: Arc<Shared>, i: usize, socket: UdpSocket) {
    let mut buf = vec![0u8; proto::MAX_PACKET_SIZE];
    let secret = shared.keys[i].secret();
    let me = endpoint(shared.addrs[i]);
    let sent = |n: usize| shared.counters.sent.fetch_add(n as u64, Ordering::Relaxed);
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else { continue };
        let Ok(packet) = proto::decode(&buf[..len]) else { continue };
        shared.counters.received.fetch_add(1, Ordering::Relaxed);
        match packet.message {
            Message::Ping(_) => {
                let pong = Pong {
                    to: endpoint(from),
                    ping_hash: packet.hash,
                    expiration: expiration(),
                    enr_seq: None,
                };
                let ping = Ping { from: me, to: endpoint(from), expiration: expiration(), enr_seq: None };
                for message in [Message::Pong(pong), Message::Ping(ping)] {
                    let (bytes, _) = proto::encode(&message, secret);
                    let _ = socket.send_to(&bytes, from).await;
                    sent(1);
                }
            }
            Message::FindNode(find) => {
                let target = node_id(&find.target);
                let mut table: Vec<usize> = shared.tables[i].clone();
                table.sort_by_key(|&j| xor(&shared.ids[j], &target));
                let records: Vec<NodeRecord> = table
                    .iter()
                    .take(NEIGHBOURS)
                    .map(|&j| NodeRecord {
                        endpoint: endpoint(shared.addrs[j]),
                        id: shared.keys[j].peer_id(),
                    })
                    .collect();
                for bytes in proto::encode_neighbours(&records, expiration(), secret) {
                    let _ = socket.send_to(&bytes, from).await;
                    sent(1);
                }
            }
            // PONGs to our ping-backs, and anything else: nothing to do.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::{discovery::v4::Discv4, record::LocalEnr, test_utils::crawl::crawl_net_discv4_config};

    /// A real discv4 service pings a virtual node, which answers, and a lookup through it
    /// finds virtual nodes it was never told of.
    #[tokio::test]
    async fn a_real_discv4_node_pings_and_looks_up_through_virtual_nodes() {
        let net = VirtualNet::start(64, 90_000).await.unwrap();
        let key = key_from_seed(90_999);
        let (discv4, _candidates) =
            Discv4::spawn(crawl_net_discv4_config(), LocalEnr::builder(&key).build().unwrap()).await.unwrap();
        let first = net.enodes()[0];
        assert_eq!(discv4.ping(first).await.unwrap(), None, "a PONG without a record");
        let found = tokio::time::timeout(Duration::from_secs(20), discv4.lookup(first.peer_id))
            .await
            .unwrap()
            .unwrap();
        let ours: std::collections::HashSet<_> = net.enodes().iter().map(|e| e.peer_id).collect();
        assert!(
            found.iter().filter(|r| r.id != first.peer_id && ours.contains(&r.id)).count() > 0,
            "{found:?}"
        );
        assert!(net.counters().sent.load(Ordering::Relaxed) >= 3);
        discv4.shutdown().await;
        net.shutdown().await;
    }
}

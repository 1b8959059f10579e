//! The whole stack offline, in one command: N of our nodes on loopback serve an in-memory
//! chain on mainnet's genesis; one more node joins with only the genesis, fills its pool and
//! fetches every header through it.
//!
//! ```text
//! cargo run --example devnet -- --nodes 8 --blocks 2000
//! ```

use std::{net::SocketAddr, sync::Arc, time::Instant};

use clap::Parser;
use ethp2p::{
    eth::{EthConfig, GetBlockHeaders, MemoryChain},
    node::NodeBuilder,
    ChainSpec, Enode,
};

mod common;

#[derive(Debug, Parser)]
#[command(about = "Start N ethp2p nodes on loopback and sync headers from them")]
struct Args {
    /// Serving nodes.
    #[arg(long, default_value_t = 8)]
    nodes: usize,
    /// Blocks in the served in-memory chain.
    #[arg(long, default_value_t = 2000)]
    blocks: u64,
    /// Headers per request (geth serves at most 1024).
    #[arg(long, default_value_t = 512)]
    batch: u64,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = common::init();
    let spec = ChainSpec::mainnet();
    let loopback = SocketAddr::from(([127, 0, 0, 1], 0));

    let chain = Arc::new(MemoryChain::builder().blocks(args.blocks).build());
    let eth = EthConfig::builder(chain.status_info_for(&spec), spec.fork_filter(0, 0)).build()?;
    let mut servers = Vec::new();
    for _ in 0..args.nodes {
        let node = NodeBuilder::new(eth.clone(), chain.clone()).listen(loopback).start().await?;
        println!("serving  {}", Enode::new(node.peer_id(), node.local_addr()));
        servers.push(node);
    }

    // The newcomer knows only the genesis, and the servers as static peers.
    let empty = Arc::new(MemoryChain::builder().blocks(0).build());
    let eth = EthConfig::builder(empty.status_info_for(&spec), spec.fork_filter(0, 0)).build()?;
    let enodes: Vec<Enode> = servers.iter().map(|n| Enode::new(n.peer_id(), n.local_addr())).collect();
    let node = NodeBuilder::new(eth, empty).listen(loopback).bootnodes(enodes).start().await?;
    println!("syncing  {}", Enode::new(node.peer_id(), node.local_addr()));

    let started = Instant::now();
    while node.peers().await?.len() < args.nodes {
        if started.elapsed().as_secs() > 30 {
            return Err("the pool did not fill within 30 s".into());
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    println!("pool full with {} peers after {:?}", args.nodes, started.elapsed());

    let started = Instant::now();
    let mut next = 1;
    while next <= args.blocks {
        let count = args.batch.min(args.blocks - next + 1);
        let request = GetBlockHeaders { origin: next.into(), count, skip: 0, reverse: false };
        let (peer, headers) = node.get_block_headers(request).await?;
        if headers.is_empty() {
            return Err(format!("peer {peer} returned no headers from {next}").into());
        }
        next += headers.len() as u64;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("fetched {} headers in {secs:.2}s ({:.0} headers/s)", args.blocks, args.blocks as f64 / secs);
    for peer in node.peers().await? {
        println!("  {} {:?} {:?} {:?}", peer.addr, peer.direction, peer.reputation, peer.connected_for);
    }
    node.shutdown().await;
    for server in servers {
        server.shutdown().await;
    }
    Ok(())
}

//! Joins a discv5 network through one bootnode record and prints every node found, one JSON
//! line each, for a given number of seconds.
//!
//! ```text
//! cargo run --example discv5_lookup -- --bootnode enr:-Iq4Q... --seconds 30
//! ```
//!
//! Output lines look like
//! `{"node_id":"0x…","ip":"10.0.0.5","udp":30303,"tcp":30303,"fork_id":{"hash":"0x…","next":0},…}`.
//! Logs go to stderr, filtered by `RUST_LOG`.

use std::{net::SocketAddr, time::Duration};

use clap::Parser;
use ethp2p::discovery::Discv5;
use ethp2p::discovery::Discv5Config;
use ethp2p::{record::parse_enr, LocalEnr, NetRestrict, NodeKey};

mod common;

/// Find nodes over discv5 starting from one bootnode ENR.
#[derive(Debug, Parser)]
struct Args {
    /// The bootnode's record (`enr:…`).
    #[arg(long)]
    bootnode: String,
    /// How long to run lookups, in seconds.
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// UDP address to listen on (port 0: any free port).
    #[arg(long, default_value = "0.0.0.0:0")]
    listen: SocketAddr,
    /// Only talk to these networks (comma-separated CIDRs; empty: no restriction).
    #[arg(long, default_value = "")]
    netrestrict: NetRestrict,
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Args = common::init();
    let bootnode = parse_enr(&args.bootnode)?;
    // A throwaway identity: this tool only looks around.
    let local = LocalEnr::builder(&NodeKey::generate()).build()?;
    let config = Discv5Config::builder()
        .listen(args.listen)
        .bootnode(bootnode)
        .netrestrict(args.netrestrict)
        .bootstrap(u32::MAX, Duration::from_secs(1))
        .build()?;
    let (discv5, mut candidates) = Discv5::start(local, config).await?;
    let deadline = tokio::time::sleep(Duration::from_secs(args.seconds));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            candidate = candidates.recv() => match candidate {
                Some(candidate) => println!("{}", candidate.to_json()),
                None => break,
            },
            () = &mut deadline => break,
        }
    }
    let stats = discv5.stats().await?;
    eprintln!("{stats:?}");
    discv5.shutdown().await;
    Ok(())
}

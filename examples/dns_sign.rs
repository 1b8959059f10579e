//! Publish your own EIP-1459 node list: sign a tree of the nodes in a nodes.json.
//!
//! ```text
//! cargo run --example crawler -- --out nodes.json        # or go-ethereum's `devp2p discv4 crawl`
//! cargo run --example dns_sign -- --nodes nodes.json --key tree.key \
//!     --domain nodes.example.org --seq 1 --out-dir out/
//! ```
//!
//! Writes `out/nodes.example.org.zone` (load it into your DNS server) and
//! `out/nodes.example.org.json` (name → TXT, as go-ethereum's `devp2p dns to-txt` writes,
//! for DNS provider APIs), and prints the tree's `enrtree://` URL for clients.
//! The key file holds 64 hex characters (`--gen-key` creates one, mode 0600).

use std::path::PathBuf;

use clap::Parser;
use ethp2p::{
    discovery::dns::{sign_nodes_file, LinkEntry},
    NodeKey,
};

#[derive(Parser, Debug)]
#[command(about = "Sign an EIP-1459 DNS tree from a nodes.json")]
struct Args {
    /// go-ethereum nodeset JSON: {"<node id>": {"seq": …, "record": "enr:…", …}}.
    #[arg(long)]
    nodes: PathBuf,
    /// The tree's signing key (hex). Clients pin its public key in the enrtree:// URL.
    #[arg(long)]
    key: PathBuf,
    /// Create the key file if it does not exist.
    #[arg(long)]
    gen_key: bool,
    /// The domain the tree is published at.
    #[arg(long)]
    domain: String,
    /// Sequence number; increase it with every update, clients ignore lower ones.
    #[arg(long)]
    seq: u64,
    /// enrtree:// URLs of other trees to link to (repeatable).
    #[arg(long = "link")]
    links: Vec<String>,
    /// Where to write the zone file and the JSON.
    #[arg(long, default_value = ".")]
    out_dir: PathBuf,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let key = if args.gen_key { NodeKey::load_or_create(&args.key)?.0 } else { NodeKey::load(&args.key)? };
    let links = args.links.iter().map(|l| l.parse::<LinkEntry>()).collect::<Result<Vec<_>, _>>()?;
    let out = sign_nodes_file(&args.nodes, &key, &args.domain, args.seq, links, &args.out_dir)?;
    println!(
        "{} nodes, {} entries, seq {}",
        out.tree.nodes().count(),
        out.tree.entries.len(),
        out.tree.root.seq
    );
    println!("zone file: {}", out.zone_file.display());
    println!("json:      {}", out.json_file.display());
    println!("url:       {}", out.tree.link);
    Ok(())
}

//! ethp2p among go-ethereum nodes on loopback (geth v1.17.10, `tests/it/geth.rs`): what geth
//! finds through our bootnode. Each test prints its figures to the terminal.

use std::{
    io::Write,
    net::SocketAddr,
    process::{Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use alloy_consensus::Header;
use alloy_primitives::{Sealed, B256};
use ethp2p::discovery::CandidateSource;
use ethp2p::{
    crawl::{to_nodes_json, CrawlConfig, Crawler, ProbeConfig, Summary},
    discovery::{
        dns::{sign_tree, DnsConfig, DnsDiscovery, HickoryResolver, LinkEntry},
        v4::{Discv4, Discv4Config},
        DiscoveryConfig,
    },
    eth::{EthMessage, FileChain, GetBlockHeaders, MemoryChain},
    node::{Node, NodeBuilder},
    pool::PeerSnapshot,
    record::GethGenesis,
    test_utils::{dns::DnsTestServer, key_from_seed, test_discv5_config},
    Candidate, ChainSpec, Enode, Enr, LocalEnr, NetRestrict, NodeKey, PeerId,
};
use tokio::sync::mpsc;

use crate::{
    ejs::EjsPeer,
    geth::{Discovery, GethNode},
    peers,
    peers::Bootnode,
};

/// How long two geth nodes may take to find each other through the bootnode.
const FIND_TIMEOUT: Duration = Duration::from_secs(120);

/// Two geth nodes whose only bootnode is ours find each other through it and peer, shown by
/// geth's own `admin.peers`.
fn two_geths_meet_through_our_bootnode(discovery: Discovery) {
    let genesis = peers::ethtest_dir().join("genesis.json");
    let boot = Bootnode::start(&["--network", genesis.to_str().unwrap()]);
    let bootnode = match discovery {
        Discovery::V5 => boot.enr.to_base64(),
        _ => boot.enode.to_string(),
    };
    let start = |_: u8| {
        GethNode::builder().genesis(&genesis).discovery(discovery).bootnodes([bootnode.clone()]).start()
    };
    let (a, b) = (start(0), start(1));
    let started = Instant::now();
    let id = |g: &GethNode| hex::encode(g.enode().peer_id);
    let met = loop {
        let (pa, pb) = (a.peer_enodes(), b.peer_enodes());
        if pa.iter().any(|e| e.contains(&id(&b))) && pb.iter().any(|e| e.contains(&id(&a))) {
            break true;
        }
        if started.elapsed() > FIND_TIMEOUT {
            break false;
        }
        std::thread::sleep(Duration::from_millis(500));
    };
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth {discovery:?}: two geth nodes met through our bootnode: {met} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        met,
        "geth nodes did not find each other through our bootnode ({discovery:?}) within {FIND_TIMEOUT:?}\n\
         geth a peers {:?}\n--- geth a log\n{}\n--- geth b log\n{}",
        a.peer_enodes(),
        a.log_tail(60),
        b.log_tail(60)
    );
}

#[test]
fn geth_nodes_find_each_other_through_our_bootnode_over_discv4() {
    two_geths_meet_through_our_bootnode(Discovery::V4);
}

#[test]
fn geth_nodes_find_each_other_through_our_bootnode_over_discv5() {
    two_geths_meet_through_our_bootnode(Discovery::V5);
}

/// Node records from fixed keys on loopback addresses, and go-ethereum's nodeset JSON of them.
fn nodeset(n: u32) -> (Vec<Enr>, String) {
    let records: Vec<Enr> = (0..n)
        .map(|i| {
            let mut secret = [9u8; 32];
            secret[..4].copy_from_slice(&i.to_be_bytes());
            let key = NodeKey::from_bytes(&secret).unwrap();
            Enr::builder()
                .ip4(std::net::Ipv4Addr::new(127, 0, 1, i as u8))
                .tcp4(30303)
                .udp4(30303)
                .build(&key.to_combined_key())
                .unwrap()
        })
        .collect();
    let json: serde_json::Map<String, serde_json::Value> = records
        .iter()
        .map(|r| {
            let id = hex::encode(r.node_id().raw());
            (id, serde_json::json!({ "seq": r.seq(), "record": r.to_base64() }))
        })
        .collect();
    (records, serde_json::to_string_pretty(&json).unwrap())
}

/// EIP-1459 against the reference: for the same nodes and key, `devp2p dns sign` and our
/// `sign_tree` publish the same TXT records, byte for byte (both sign with RFC 6979 nonces).
/// 27 records: two full branches of 13 and a chunk of one, where a tree builder may differ.
/// Then our client walks the tree go-ethereum signed, served by a DNS server on loopback.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_tree_signed_by_devp2p_matches_ours_and_our_client_walks_it() {
    const N: u32 = 27;
    let work = tempfile::tempdir().unwrap();
    let (records, json) = nodeset(N);
    let tree_dir = work.path().join("nodes.test");
    std::fs::create_dir(&tree_dir).unwrap();
    std::fs::write(tree_dir.join("nodes.json"), json).unwrap();

    // The signing key, as go-ethereum wants it: an encrypted keystore file.
    let key = NodeKey::from_bytes(&[0x42; 32]).unwrap();
    std::fs::write(work.path().join("key.hex"), hex::encode([0x42u8; 32])).unwrap();
    std::fs::write(work.path().join("password"), "test\n").unwrap();
    let keystore = work.path().join("keystore");
    let import = Command::new(peers::geth())
        .args(["account", "import", "--lightkdf", "--keystore", keystore.to_str().unwrap()])
        .args(["--password", work.path().join("password").to_str().unwrap()])
        .arg(work.path().join("key.hex"))
        .output()
        .unwrap();
    assert!(import.status.success(), "geth account import: {}", String::from_utf8_lossy(&import.stderr));
    let keyfile = std::fs::read_dir(&keystore).unwrap().next().unwrap().unwrap().path();

    let mut sign = Command::new(peers::devp2p())
        .args(["dns", "sign", "--domain", "nodes.test", "--seq", "1"])
        .arg(&tree_dir)
        .arg(&keyfile)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    sign.stdin.take().unwrap().write_all(b"test\n").unwrap();
    let signed = sign.wait_with_output().unwrap();
    assert!(signed.status.success(), "devp2p dns sign: {}", String::from_utf8_lossy(&signed.stderr));
    let txt_file = work.path().join("txt.json");
    let to_txt =
        Command::new(peers::devp2p()).args(["dns", "to-txt"]).arg(&tree_dir).arg(&txt_file).output().unwrap();
    assert!(to_txt.status.success(), "devp2p dns to-txt: {}", String::from_utf8_lossy(&to_txt.stderr));
    let theirs: std::collections::BTreeMap<String, String> =
        serde_json::from_str(&std::fs::read_to_string(&txt_file).unwrap()).unwrap();

    let tree = sign_tree(&key, "nodes.test", 1, records.clone(), Vec::new()).unwrap();
    let ours: std::collections::BTreeMap<String, String> = tree.records().into_iter().collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth dns: {N} records, {} TXT records from devp2p dns sign, {} from ours",
        theirs.len(),
        ours.len()
    );
    assert_eq!(ours, theirs, "the same TXT records for the same nodes and key");

    // Our client walks the tree go-ethereum signed.
    let server = DnsTestServer::start().await.unwrap();
    for (name, text) in &theirs {
        server.set(name, vec![text.clone()]);
    }
    let url = theirs["nodes.test"].clone();
    assert!(url.starts_with("enrtree-root:v1"), "{url}");
    let link = LinkEntry::new(key.public(), "nodes.test").unwrap().to_string();
    let (tx, mut rx) = mpsc::channel(64);
    let dns = DnsDiscovery::spawn(
        DnsConfig::builder().rate_limit(500.0, 50).build().unwrap(),
        HickoryResolver::with_name_servers(&[server.addr()]),
        tx,
    );
    dns.add_tree(&link).await.unwrap();
    let mut found = std::collections::HashSet::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while found.len() < N as usize {
        match tokio::time::timeout_at(deadline, rx.recv()).await {
            Ok(Some(c)) => {
                found.insert(c.peer_id);
            }
            _ => break,
        }
    }
    dns.shutdown().await;
    assert_eq!(found.len(), N as usize, "every node of go-ethereum's tree came out of our walk");
}

/// A crawl of a mixed loopback network, seeded only with our bootnode: 5 geth nodes, 5
/// ethereumjs peers and 20 `Node`s of ours, all bootstrapped from the bootnode over discv4.
/// The crawler finds and probes every one; the summary names Geth v1.17.10, ethereumjs and
/// ethp2p with their eth versions; go-ethereum's `devp2p nodeset filter` reads its nodes.json.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn crawl_of_a_mixed_geth_ejs_ethp2p_network() {
    const GETH: usize = 5;
    const EJS: usize = 5;
    const OURS: usize = 20;
    let genesis = peers::ethtest_dir().join("genesis.json");
    let boot = Bootnode::start(&["--network", genesis.to_str().unwrap()]);
    let boot_enode = boot.enode.to_string();

    let geths: Vec<GethNode> = (0..GETH)
        .map(|_| {
            GethNode::builder()
                .genesis(&genesis)
                .discovery(Discovery::V4)
                .bootnodes([boot_enode.clone()])
                .start()
        })
        .collect();
    // The bootnode's enode has TCP port 0, which ethereumjs would encode as a non-canonical
    // 0x00 in its PING (../shared/interop/README.md, quirks): it gets the UDP port there.
    let ejs_boot = Enode { tcp_port: boot.enode.udp_port, ..boot.enode }.to_string();
    let ejs: Vec<EjsPeer> = (0..EJS).map(|_| EjsPeer::spawn(&["--bootnode", &ejs_boot])).collect();
    // Each has bonded with the bootnode (its ping-back arrived), so the bootnode's table
    // holds it before the crawl starts.
    for peer in &ejs {
        peer.wait_event_async("discv4-recv", |v| v["type"] == "ping", Duration::from_secs(30)).await;
    }
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let mut ours = Vec::new();
    for i in 0..OURS {
        let listen = SocketAddr::from(([127, 0, 0, 1], 0));
        let mut v4 = Discv4Config::builder();
        v4.listen_addr(listen).netrestrict(NetRestrict::loopback()).bootnodes(vec![boot.enode]);
        let node = NodeBuilder::new(eth.clone(), chain.clone())
            .key(key_from_seed(41_000 + i as u64))
            .listen(listen)
            .discovery(DiscoveryConfig::new(Some(v4.build().unwrap()), None))
            .start()
            .await
            .expect("node starts");
        ours.push(node);
    }

    // The crawler: its own discv4 on loopback, seeded with the bootnode only.
    let key = key_from_seed(41_999);
    let socket = tokio::net::UdpSocket::bind("127.0.0.1:0").await.unwrap();
    let local = LocalEnr::builder(&key).udp_socket(socket.local_addr().unwrap()).build().unwrap();
    let v4 = Discv4Config::builder().netrestrict(NetRestrict::loopback()).build().unwrap();
    let (discv4, candidates) = Discv4::spawn_on_socket(Arc::new(socket), v4, local).unwrap();
    let config = CrawlConfig::builder()
        .workers(32)
        .idle(Duration::from_secs(5))
        .duration(Duration::from_secs(180))
        .probe(Some(ProbeConfig::with_timeout(Duration::from_secs(10))))
        .build()
        .unwrap();
    let seed = Candidate::from_enode(&boot.enode, CandidateSource::Bootnode);
    let started = Instant::now();
    let crawler = Crawler::new(config, key).discv4(discv4.clone(), candidates).seeds([seed]);
    let state = crawler.run(std::future::pending()).await.expect("crawl runs");
    discv4.shutdown().await;
    let secs = started.elapsed().as_secs_f64();

    let summary = Summary::of(state.nodes());
    let mut err = std::io::stderr().lock();
    let _ = writeln!(err, "interop geth crawl: {} nodes in {secs:.1} s\n{summary}", state.len());
    drop(err);
    let want: Vec<(PeerId, &str)> = geths
        .iter()
        .map(|g| (g.enode().peer_id, "geth"))
        .chain(ejs.iter().map(|e| (e.enode().peer_id, "ethereumjs")))
        .chain(ours.iter().map(|n| (n.peer_id(), "ethp2p")))
        .collect();
    for (id, kind) in &want {
        let node = state.nodes().find(|n| n.peer_id == *id);
        let node = node.unwrap_or_else(|| panic!("{kind} node {id} not found by the crawl\n{summary}"));
        let probe = node.probe.as_ref().unwrap_or_else(|| panic!("{kind} node not probed: {node:?}"));
        assert!(probe.hello.is_some(), "{kind} node's Hello recorded: {probe:?}");
    }
    let version = peers::geth_version();
    assert_eq!(summary.by_client.get("Geth"), GETH, "{summary}");
    assert!(
        summary.by_client_version.sorted().iter().any(|(k, n)| k.contains(version.as_str()) && *n == GETH),
        "Geth {version} in the census: {summary}"
    );
    assert_eq!(summary.by_client.get("ethereumjs-devp2p"), EJS, "{summary}");
    assert_eq!(summary.by_client.get("ethp2p"), OURS, "{summary}");
    // geth offers eth/69-72, ethereumjs 66-68, ours 66-72: the census shows the highest.
    assert_eq!(summary.by_eth_version.get("eth/72"), GETH + OURS, "{summary}");
    assert_eq!(summary.by_eth_version.get("eth/68"), EJS, "{summary}");

    // go-ethereum reads our nodes.json: `devp2p nodeset filter` keeps every node under -ip.
    let dir = tempfile::tempdir().unwrap();
    let nodes_json = dir.path().join("nodes.json");
    std::fs::write(&nodes_json, to_nodes_json(state.nodes())).unwrap();
    let out = Command::new(peers::devp2p())
        .args(["nodeset", "filter"])
        .arg(&nodes_json)
        .args(["-ip", "127.0.0.0/8"])
        .output()
        .unwrap();
    assert!(out.status.success(), "devp2p nodeset filter: {}", String::from_utf8_lossy(&out.stderr));
    let filtered: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(filtered.len(), state.len(), "devp2p keeps every node of our nodes.json");
    for node in &ours {
        node.shutdown().await;
    }
}

/// Our side of a sync: a `Node` on the ethtest chain that holds only its genesis, knowing only
/// our bootnode, with one discovery protocol.
async fn genesis_node(genesis: &GethGenesis, boot: &Bootnode, discovery: Discovery, seed: u64) -> Node {
    let spec = genesis.spec();
    let chain = Arc::new(MemoryChain::builder().genesis(genesis.header().clone()).blocks(0).build());
    let eth = chain.eth_config_for(spec).build().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let config = match discovery {
        Discovery::V5 => {
            let mut v5 = test_discv5_config();
            v5.listen = listen;
            v5.bootnodes = vec![boot.enr.clone()];
            DiscoveryConfig::new(None, Some(v5))
        }
        _ => {
            let mut v4 = Discv4Config::builder();
            v4.listen_addr(listen).netrestrict(NetRestrict::loopback()).bootnodes(vec![boot.enode]);
            DiscoveryConfig::new(Some(v4.build().unwrap()), None)
        }
    };
    NodeBuilder::new(eth, chain)
        .key(key_from_seed(seed))
        .listen(listen)
        .discovery(config)
        .start()
        .await
        .expect("node starts")
}

/// Waits until `node` has a session with `peer`; returns its snapshot.
async fn wait_for_peer(node: &Node, peer: PeerId, timeout: Duration) -> Option<PeerSnapshot> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        if let Some(p) = node.peers().await.unwrap().into_iter().find(|p| p.peer_id == peer) {
            return Some(p);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    None
}

/// Downloads headers 1..=head, then every body and receipt list, through the pool; every
/// header is linked to its parent from the genesis, every body and receipt list is checked
/// against its header by the library (transactions, withdrawals and receipts roots).
async fn download(node: &Node, genesis_hash: B256, head: u64) -> (Vec<Sealed<Header>>, usize, usize) {
    let mut headers: Vec<Sealed<Header>> = Vec::new();
    while (headers.len() as u64) < head {
        let from = headers.len() as u64 + 1;
        let count = (head - from + 1).min(192);
        let request = GetBlockHeaders { origin: from.into(), count, skip: 0, reverse: false };
        let (_, batch) = node.get_block_headers(request).await.expect("headers");
        assert!(!batch.is_empty(), "geth has headers from {from}");
        for header in batch {
            let parent = headers.last().map_or(genesis_hash, |h| h.hash());
            assert_eq!(header.parent_hash, parent, "header {} links to its parent", header.number);
            assert_eq!(header.number, headers.len() as u64 + 1);
            headers.push(header);
        }
    }
    let (mut txs, mut receipts) = (0, 0);
    let mut next = 0;
    while next < headers.len() {
        let batch: Vec<Sealed<Header>> = headers[next..(next + 64).min(headers.len())].to_vec();
        let (_, bodies) = node.get_block_bodies(batch.clone()).await.expect("bodies");
        let (_, lists) = node.get_receipts(batch[..bodies.len()].to_vec()).await.expect("receipts");
        // A partial answer is valid; the rest is asked again.
        let done = bodies.len().min(lists.len());
        assert!(done > 0, "bodies and receipts from {}", batch[0].number);
        txs += bodies[..done].iter().map(|b| b.transactions.len()).sum::<usize>();
        receipts += lists[..done].iter().map(Vec::len).sum::<usize>();
        next += done;
    }
    (headers, txs, receipts)
}

/// We sync from geth: geth holds the ethtest chain (600 blocks, every fork up to Amsterdam);
/// our node, which knows only our bootnode, finds it through discovery, negotiates eth/72
/// (the highest both speak), downloads and checks every header, body and receipt; block 14's
/// receipt list (over 10 MiB) arrives as partial lists (EIP-7975), completed and checked
/// against its receipts root.
async fn we_sync_from_geth(discovery: Discovery, hold: Duration) {
    peers::init_tracing();
    let dir = peers::ethtest_dir();
    let genesis_file = dir.join("genesis.json");
    let genesis = GethGenesis::from_file(&genesis_file).unwrap();
    let boot = Bootnode::start(&["--network", genesis_file.to_str().unwrap()]);
    let bootnode = match discovery {
        Discovery::V5 => boot.enr.to_base64(),
        _ => boot.enode.to_string(),
    };
    let geth = GethNode::builder()
        .genesis(&genesis_file)
        .import(&dir.join("chain.rlp"))
        .discovery(discovery)
        .bootnodes([bootnode])
        .start();
    let head = geth.block_number();
    let geth_id = geth.enode().peer_id;
    let node = genesis_node(&genesis, &boot, discovery, 42_000 + discovery as u64).await;
    let mut announcements = node.announcements();

    let started = Instant::now();
    let session = wait_for_peer(&node, geth_id, Duration::from_secs(90)).await;
    let found_after = started.elapsed();
    let session = session
        .unwrap_or_else(|| panic!("our node never reached geth over {discovery:?}\n{}", geth.log_tail(40)));
    assert_eq!(session.eth_version.map(|v| v.as_u8()), Some(72), "eth/72 is the highest version both speak");
    assert!(session.client_id.as_deref().unwrap_or("").starts_with("Geth/v"), "{session:?}");

    let t = Instant::now();
    let (headers, txs, receipts) = download(&node, genesis.spec().genesis_hash, head).await;
    let took = t.elapsed();
    assert_eq!(headers.len() as u64, head);
    assert_eq!(headers.last().unwrap().hash().to_string(), geth.exec("eth.getBlock('latest').hash"));
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth sync-from-geth {discovery:?}: found geth in {:.1} s; {head} blocks ({txs} txs, {receipts} receipts) \
         in {:.2} s",
        found_after.as_secs_f64(),
        took.as_secs_f64()
    );
    assert_eq!(txs, receipts, "one receipt per transaction");

    // The session stays up: geth keeps us, we keep geth, and block ranges flow both ways.
    if !hold.is_zero() {
        let held = Instant::now();
        let our_id = hex::encode(node.peer_id());
        // Ours to geth: our head moved from the genesis to geth's head, a BlockRangeUpdate
        // is due, and geth's peer list shows the range it got.
        let top = headers.last().unwrap();
        node.set_head(top.number, top.hash(), top.timestamp).await.unwrap();
        let latest_at_geth = format!(
            "admin.peers.filter(function(p) {{ return p.enode.indexOf('{our_id}') >= 0 }})\
             .map(function(p) {{ return p.protocols.eth.latestBlock }})[0]"
        );
        let mut seen = String::new();
        while held.elapsed() < Duration::from_secs(30) {
            seen = geth.exec(&latest_at_geth);
            if seen == head.to_string() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        assert_eq!(seen, head.to_string(), "geth got our BlockRangeUpdate\n{}", geth.log_tail(20));
        // geth to us: geth's head moves back (debug.setHead), which go-ethereum announces at
        // once; it reaches our announcements stream, validated.
        let back = head - 5;
        geth.exec(&format!("debug.setHead('0x{back:x}')"));
        let range = tokio::time::timeout(Duration::from_secs(30), async {
            loop {
                let a = announcements.recv().await.expect("node running");
                if let (true, EthMessage::BlockRangeUpdate(r)) = (a.peer_id == geth_id, a.message) {
                    return r;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no BlockRangeUpdate from geth\n{}", geth.log_tail(20)));
        assert_eq!(range.latest, back);
        assert_eq!(range.latest_hash.to_string(), geth.exec("eth.getBlock('latest').hash"));
        let _ = writeln!(
            std::io::stderr().lock(),
            "interop geth sync-from-geth {discovery:?}: BlockRangeUpdate sent (geth shows latestBlock {seen}) \
             and received (latest {})",
            range.latest
        );
        tokio::time::sleep(hold.saturating_sub(held.elapsed())).await;
        let ours = node.peers().await.unwrap();
        let still = ours.iter().find(|p| p.peer_id == geth_id);
        assert!(
            still.is_some(),
            "our session with geth ended within {hold:?}; stats {:?}",
            node.stats().await.unwrap()
        );
        let since = still.unwrap().connected_for;
        assert!(since >= hold, "the same session all along (up {since:?})");
        let theirs = geth.peer_enodes();
        assert!(theirs.iter().any(|e| e.contains(&our_id)), "geth keeps us as a peer: {theirs:?}");
        let _ = writeln!(
            std::io::stderr().lock(),
            "interop geth sync-from-geth {discovery:?}: session up {since:?}, no disconnect"
        );
    }
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_sync_the_ethtest_chain_from_geth_found_over_discv4() {
    we_sync_from_geth(Discovery::V4, Duration::from_secs(120)).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn we_sync_the_ethtest_chain_from_geth_found_over_discv5() {
    we_sync_from_geth(Discovery::V5, Duration::ZERO).await;
}

/// geth syncs from us: a fresh geth with only the ethtest genesis, whose only peer is our node
/// serving the ethtest chain from `chain.rlp` (`FileChain`), full-syncs to our head with
/// `--synctarget` (no consensus client) and reports our head hash and state root.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn geth_syncs_the_ethtest_chain_from_us() {
    peers::init_tracing();
    let dir = peers::ethtest_dir();
    let genesis = GethGenesis::from_file(dir.join("genesis.json")).unwrap();
    let spec = genesis.spec().clone();
    let chain = Arc::new(FileChain::from_file(dir.join("chain.rlp"), genesis.header().clone()).unwrap());
    let head = chain.head().clone();
    let head_hash = head.hash_slow();
    let eth = chain.eth_config_for(&spec).build().unwrap();
    let node = NodeBuilder::new(eth, chain.clone())
        .key(key_from_seed(43_000))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .start()
        .await
        .expect("node starts");

    let geth = GethNode::builder()
        .genesis(&dir.join("genesis.json"))
        .arg("--syncmode=full")
        .arg(format!("--synctarget={head_hash}"))
        .start();
    let started = Instant::now();
    geth.exec(&format!("admin.addPeer('{}')", node.enode()));
    let deadline = started + Duration::from_secs(300);
    let mut synced = 0;
    while Instant::now() < deadline {
        synced = geth.block_number();
        if synced == head.number {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let took = started.elapsed();
    assert_eq!(synced, head.number, "geth reached our head\n{}", geth.log_tail(60));
    let latest = geth.exec("JSON.stringify([eth.getBlock('latest').hash, eth.getBlock('latest').stateRoot])");
    let latest: Vec<String> = serde_json::from_str(&latest.replace("\\\"", "\"")).unwrap();
    assert_eq!(latest[0], head_hash.to_string(), "geth's head hash is ours");
    assert_eq!(latest[1], head.state_root.to_string(), "geth's state root is our head's");
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth sync-from-us: geth imported {} blocks from our node in {:.1} s",
        head.number,
        took.as_secs_f64()
    );
    node.shutdown().await;
}

/// A geth that dies mid-sync: our node syncs headers and bodies from two geth nodes; the one
/// that served the first batch is killed; every later request is served by the other, with
/// no request failing for the caller.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_geth_that_dies_mid_sync_leaves_us_syncing_from_another() {
    let dir = peers::ethtest_dir();
    let genesis = GethGenesis::from_file(dir.join("genesis.json")).unwrap();
    let start =
        || GethNode::builder().genesis(&dir.join("genesis.json")).import(&dir.join("chain.rlp")).start();
    let mut geths = vec![start(), start()];
    let head = geths[0].block_number();
    let spec = genesis.spec();
    let chain = Arc::new(MemoryChain::builder().genesis(genesis.header().clone()).blocks(0).build());
    let node = NodeBuilder::new(chain.eth_config_for(spec).build().unwrap(), chain)
        .key(key_from_seed(44_000))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .bootnodes(geths.iter().map(GethNode::enode))
        .start()
        .await
        .unwrap();
    for geth in &geths {
        assert!(wait_for_peer(&node, geth.enode().peer_id, Duration::from_secs(60)).await.is_some());
    }

    let mut headers: Vec<Sealed<Header>> = Vec::new();
    let mut served_by = Vec::new();
    while (headers.len() as u64) < head {
        let from = headers.len() as u64 + 1;
        let request = GetBlockHeaders {
            origin: from.into(),
            count: (head - from + 1).min(100),
            skip: 0,
            reverse: false,
        };
        let (peer, batch) = node.get_block_headers(request).await.expect("headers despite a dead peer");
        served_by.push(peer);
        headers.extend(batch);
        if served_by.len() == 1 {
            // The peer that served the first batch dies.
            let victim = geths.iter().position(|g| g.enode().peer_id == peer).expect("served by a geth");
            drop(geths.remove(victim));
        }
    }
    let survivor = geths[0].enode().peer_id;
    assert!(
        served_by[1..].iter().all(|p| *p == survivor),
        "after the kill only the survivor serves: {served_by:?}"
    );
    let mut bodies = 0;
    for batch in headers.chunks(100) {
        let (peer, got) = node.get_block_bodies(batch.to_vec()).await.expect("bodies");
        assert_eq!(peer, survivor);
        bodies += got.len();
        assert!(!got.is_empty());
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth dies-mid-sync: {} headers in {} batches ({} after the kill), {bodies} bodies, all from the survivor",
        headers.len(),
        served_by.len(),
        served_by.len() - 1
    );
    assert_eq!(headers.len() as u64, head);
    node.shutdown().await;
}

/// geth sends something we reject: receipts for a block whose header we hold with another
/// receipts root (our header, geth's hash). The answer fails validation: the request fails
/// with the reason, the peer is scored down, and the session goes on — the next request is
/// answered on the same session, and geth keeps us.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_from_geth_that_fails_validation_is_scored_and_the_session_survives() {
    peers::init_tracing();
    let dir = peers::ethtest_dir();
    let genesis = GethGenesis::from_file(dir.join("genesis.json")).unwrap();
    let geth = GethNode::builder()
        .genesis(&dir.join("genesis.json"))
        .import(&dir.join("chain.rlp"))
        .discovery(Discovery::Off)
        .start();
    let geth_id = geth.enode().peer_id;
    let chain = Arc::new(MemoryChain::builder().genesis(genesis.header().clone()).blocks(0).build());
    let node = NodeBuilder::new(chain.eth_config_for(genesis.spec()).build().unwrap(), chain)
        .key(key_from_seed(44_000))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .bootnodes([geth.enode()])
        .start()
        .await
        .expect("node starts");
    let before = wait_for_peer(&node, geth_id, Duration::from_secs(60)).await.expect("session with geth");

    let request = GetBlockHeaders { origin: 1u64.into(), count: 20, skip: 0, reverse: false };
    let (_, headers) = node.get_block_headers(request).await.expect("headers");
    // A block with transactions, held with a wrong receipts root under its real hash.
    let honest =
        headers.iter().find(|h| h.receipts_root != alloy_consensus::EMPTY_ROOT_HASH).unwrap().clone();
    let mut wrong = honest.inner().clone();
    wrong.receipts_root = B256::repeat_byte(0xbd);
    let tampered = Sealed::new_unchecked(wrong, honest.hash());
    let err = node.get_receipts(vec![tampered]).await.expect_err("geth's receipts do not match our root");
    let text = err.to_string();
    assert!(text.contains("receipts root") || text.contains("root"), "the reason is named: {text}");
    // The outcome reaches the pool from the session task, a moment after the answer.
    let deadline = Instant::now() + Duration::from_secs(5);
    let after = loop {
        let after = wait_for_peer(&node, geth_id, Duration::from_secs(5)).await.expect("still connected");
        if after.score() < before.score() || Instant::now() > deadline {
            break after;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(after.score() < before.score(), "scored down: {} -> {}", before.score(), after.score());

    // The same session answers the honest request.
    let (_, lists) = node.get_receipts(vec![honest.clone()]).await.expect("honest receipts");
    assert_eq!(lists.len(), 1);
    let now = wait_for_peer(&node, geth_id, Duration::from_secs(5)).await.expect("still connected");
    assert!(now.connected_for > after.connected_for, "the same session");
    let our_id = hex::encode(node.peer_id());
    assert!(geth.peer_enodes().iter().any(|e| e.contains(&our_id)), "geth keeps us");
    let _ = writeln!(
        std::io::stderr().lock(),
        "interop geth bad-answer: rejected ({text}); score {} -> {}; session kept",
        before.score(),
        after.score()
    );
    node.shutdown().await;
}

//! `examples/node.rs` as a node people keep running: `--datadir` keeps its key and address
//! book across runs, `--dns` with `--dns-server` walks an EIP-1459 tree through a private
//! resolver. Every process listens on 127.0.0.1 port 0 and talks to loopback only.

use std::{
    io::{BufRead, BufReader, Lines},
    path::Path,
    process::{Child, ChildStdout, Command, Stdio},
    sync::mpsc,
    thread,
    time::Duration,
};

use ethp2p::{
    discovery::dns::sign_tree, pool::BOOK_FILE, record::default_key_path, test_utils::dns::DnsTestServer,
    test_utils::key_from_seed, Enode, LocalEnr,
};

use crate::peers;

/// Generous: the example starts in well under a second, but the machine may be busy.
const DEADLINE: Duration = Duration::from_secs(60);

/// A running `examples/node`, its stdout read line by line on a thread.
struct Example {
    child: Child,
    lines: mpsc::Receiver<String>,
    enode: Enode,
}

impl Example {
    /// Starts it on loopback, without discovery, with `extra` flags; reads its enode (line 1).
    fn start(extra: &[&str]) -> Self {
        let base = ["--listen", "127.0.0.1:0", "--no-discovery", "--netrestrict", "127.0.0.0/8"];
        Self::start_with(&[&base[..], extra].concat())
    }

    /// Starts it with exactly `args` (and a peer table every second); reads its enode.
    fn start_with(args: &[&str]) -> Self {
        let mut child = Command::new(peers::example("node"))
            .args(["--every", "1"])
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("examples/node starts");
        let (tx, lines) = mpsc::channel();
        let stdout: Lines<BufReader<ChildStdout>> = BufReader::new(child.stdout.take().unwrap()).lines();
        thread::spawn(move || {
            for line in stdout.map_while(Result::ok) {
                if tx.send(line).is_err() {
                    return;
                }
            }
        });
        let first = lines.recv_timeout(DEADLINE).expect("the example prints its enode");
        let enode: Enode = first.parse().expect("line 1 is the enode URL");
        Self { child, lines, enode }
    }

    /// The first line that starts with `prefix`, within the deadline.
    fn wait_for(&self, prefix: &str) -> String {
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.starts_with(prefix) => return line,
                Ok(_) => {}
                Err(e) => panic!("no line starting with {prefix:?}: {e}"),
            }
        }
    }

    /// Ctrl-C, as a user stops it; returns once it has exited, and asserts it exited cleanly.
    fn interrupt(mut self) {
        // Its first peer table means the ctrl-c handler is installed: the table loop waits
        // on it and the tick together, and the second table comes a second later.
        self.wait_for("0 peers");
        self.wait_for("0 peers");
        let status = Command::new("kill").args(["-INT", &self.child.id().to_string()]).status().unwrap();
        assert!(status.success(), "kill -INT");
        let deadline = std::time::Instant::now() + DEADLINE;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                assert!(status.success(), "the example exits cleanly on ctrl-c: {status:?}");
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the example stops on ctrl-c");
            thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Example {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_and_stop(datadir: &Path) -> Enode {
    let node = Example::start(&["--datadir", datadir.to_str().unwrap()]);
    let enode = node.enode;
    node.interrupt();
    enode
}

#[test]
fn datadir_keeps_the_node_key_and_the_address_book() {
    let dir = tempfile::tempdir().unwrap();
    let first = run_and_stop(dir.path());
    assert!(default_key_path(dir.path()).is_file(), "the first run saves its key in <datadir>/nodekey");
    assert!(dir.path().join(BOOK_FILE).is_file(), "the address book is saved on ctrl-c");

    let second = run_and_stop(dir.path());
    assert_eq!(first.peer_id, second.peer_id, "the same node id on the second run");
    assert!(dir.path().join(BOOK_FILE).is_file());

    // `--nodekey` wins over the data directory's key, as hex or as a file.
    let hex = key_from_seed(4_401).to_hex();
    let node = Example::start(&["--datadir", dir.path().to_str().unwrap(), "--nodekey", &hex]);
    assert_eq!(node.enode.peer_id, key_from_seed(4_401).peer_id());
    drop(node);
    let key_file = default_key_path(dir.path());
    let node = Example::start(&["--nodekey", key_file.to_str().unwrap()]);
    assert_eq!(node.enode.peer_id, first.peer_id, "--nodekey FILE reads the key file");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dns_tree_through_a_private_resolver() {
    let records = (0..3u64)
        .map(|i| {
            let mut record = LocalEnr::builder(&key_from_seed(4_410 + i));
            record.ip4([127, 0, 0, 1].into()).tcp4(1).udp4(1);
            record.build().unwrap().record()
        })
        .collect();
    let tree = sign_tree(&key_from_seed(4_419), "nodes.example.org", 7, records, Vec::new()).unwrap();
    let server = DnsTestServer::start().await.unwrap();
    server.serve_tree(&tree);

    let (link, addr) = (tree.link.to_string(), server.addr().to_string());
    let line = tokio::task::spawn_blocking(move || {
        let node = Example::start(&["--dns", &link, "--dns-server", &addr]);
        node.wait_for("dns tree resolved:")
    })
    .await
    .unwrap();
    assert!(line.contains(&tree.link.to_string()), "{line}");
    assert!(line.ends_with("seq 7, 3 nodes"), "{line}");
    assert!(server.queries() > 0, "the tree came from the private resolver");
}

/// Issue 16 item 9: `examples/node --datadir` killed with SIGKILL 20 times at random
/// moments while it saves its address book every 5 ms and its static peers come and go
/// (one of three in-process peers is replaced by a new one before each run): every
/// restart finds a book that loads whole (never moved aside as corrupt), and no
/// temporary of an interrupted save outlives the next start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_at_random_moments_leaves_a_valid_book() {
    use ethp2p::{eth::MemoryChain, node::NodeBuilder, pool::AddressBook};
    use rand::{Rng, SeedableRng};
    use std::sync::Arc;

    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let start_peer = || {
        let chain = chain.clone();
        async move {
            NodeBuilder::new(crate::eth::eth_config(&chain), chain)
                .listen(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
                .start()
                .await
                .unwrap()
        }
    };
    let mut peers = Vec::new();
    for _ in 0..3 {
        peers.push(start_peer().await);
    }
    let dir = tempfile::tempdir().unwrap();
    let book = dir.path().join(BOOK_FILE);
    let mut rng = rand::rngs::StdRng::seed_from_u64(16);
    let (mut entries, mut loaded) = (Vec::new(), 0);
    for run in 0..20 {
        // A peer goes, another comes.
        let gone = peers.remove(run % 3);
        gone.shutdown().await;
        peers.push(start_peer().await);
        let statics: Vec<String> = peers.iter().map(|p| p.enode().to_string()).collect();
        let (dir_arg, wait) = (dir.path().to_str().unwrap().to_owned(), rng.gen_range(100..1_500));
        tokio::task::spawn_blocking(move || {
            let mut args = vec!["--datadir", dir_arg.as_str(), "--book-save-ms", "5"];
            for s in &statics {
                args.extend(["--static", s.as_str()]);
            }
            let mut node = Example::start(&args);
            thread::sleep(Duration::from_millis(wait));
            node.child.kill().expect("SIGKILL"); // std's kill is SIGKILL on Unix
            node.child.wait().unwrap();
        })
        .await
        .unwrap();
        let (saved, moved) = AddressBook::load(&book).expect("the book reads");
        assert!(moved.is_none(), "run {run}: the book was unreadable after kill -9");
        loaded += usize::from(book.is_file());
        entries.push(saved.entries.len());
    }
    println!("20 kill -9s: a whole book after each ({loaded} on disk), entries per run {entries:?}");
    assert!(loaded >= 10, "the node saved a book in most runs: {loaded}");
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporaries left after the last load: {leftovers:?}");
    for p in peers {
        p.shutdown().await;
    }
}

/// `--listen6` puts the node on both families: with an IPv6-only bootnode (discv4 and RLPx
/// on `::1` alone) as its only contact, it can only bond and meet it over its IPv6 sockets,
/// and the bootnode ends up with it as a peer over IPv6.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listen6_joins_an_ipv6_only_peer() {
    use ethp2p::{
        discovery::{v4::Discv4Config, DiscoveryConfig},
        eth::MemoryChain,
        node::NodeBuilder,
        ChainSpec, NetRestrict,
    };
    use std::{net::SocketAddr, sync::Arc};
    let v6: std::net::IpAddr = std::net::Ipv6Addr::LOCALHOST.into();
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(SocketAddr::new(v6, 0)).netrestrict(NetRestrict::loopback());
    let hub = NodeBuilder::new(eth, chain)
        .key(key_from_seed(4_460))
        .listen(SocketAddr::new(v6, 0))
        .discovery(DiscoveryConfig::new(Some(v4.build().unwrap()), None))
        .seed(4_460)
        .start()
        .await
        .expect("this host must have ::1 (ip -6 addr show lo)");
    let boot = hub.enode().to_string();
    let node = Example::start_with(&[
        "--listen",
        "127.0.0.1:0",
        "--listen6",
        "[::1]:0",
        "--netrestrict",
        "127.0.0.0/8,::1/128",
        "--bootnodes",
        &boot,
    ]);
    let id = node.enode.peer_id;
    let deadline = std::time::Instant::now() + DEADLINE;
    let peer = loop {
        let peers = hub.peers().await.unwrap_or_default();
        if let Some(p) = peers.iter().find(|p| p.peer_id == id) {
            break p.addr;
        }
        assert!(std::time::Instant::now() < deadline, "the IPv6-only hub never got the example as a peer");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(peer.is_ipv6(), "the example came over IPv6: {peer}");
    drop(node);
    hub.shutdown().await;
}

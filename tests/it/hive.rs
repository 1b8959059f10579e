//! go-ethereum's own devp2p conformance suites, the ones hive's devp2p simulator runs, against
//! ethp2p: `devp2p discv4 test`, `devp2p discv5 test` and `devp2p rlpx eth-test` from
//! go-ethereum v1.17.10 (installed by `scripts/install-peers.sh` on first use), plus its smoke
//! commands (`rlpx ping`, `discv4 ping`, `requestenr`, `resolve`, `enrdump`). Loopback only:
//! the suites listen on 127.0.0.1 and 127.0.0.2, our nodes are restricted to 127.0.0.0/8, and
//! every devp2p command that could bootstrap from mainnet is given our node as its only
//! bootnode.
//!
//! Each suite's per-test result is written to the terminal (stderr, past the test harness's
//! capture) as `hive <suite> <test>: ok|FAIL`, so `cargo test` shows every hive test by name.

use std::{
    io::{BufRead, BufReader, Write},
    net::SocketAddr,
    process::{Child, Command, Stdio},
    sync::Arc,
};

use ethp2p::{
    discovery::{v4::Discv4Config, DiscoveryConfig},
    eth::MemoryChain,
    node::{Node, NodeBuilder},
    pool::PoolConfig,
    record::parse_enr,
    test_utils::{key_from_seed, test_discv5_config},
    ChainSpec, Enode, NetRestrict,
};

use crate::{geth::GethNode, peers, peers::Bootnode};

/// Every test of `devp2p discv4 test` in go-ethereum v1.17.10 (cmd/devp2p/internal/v4test).
const DISCV4_TESTS: &[&str] = &[
    "Ping/Basic",
    "Ping/WrongTo",
    "Ping/WrongFrom",
    "Ping/ExtraData",
    "Ping/ExtraDataWrongFrom",
    "Ping/PastExpiration",
    "Ping/WrongPacketType",
    "Ping/BondThenPingWithWrongFrom",
    "ENRRequest",
    "Findnode/WithoutEndpointProof",
    "Findnode/BasicFindnode",
    "Findnode/UnsolicitedNeighbors",
    "Findnode/PastExpiration",
    "Amplification/InvalidPongHash",
    "Amplification/WrongIP",
];

/// Every test of `devp2p discv5 test` in go-ethereum v1.17.10 (cmd/devp2p/internal/v5test).
const DISCV5_TESTS: &[&str] = &[
    "Ping",
    "PingLargeRequestID",
    "PingMultiIP",
    "HandshakeResend",
    "TalkRequest",
    "FindnodeWrongIP",
    "FindnodeHandshake",
    "FindnodeZeroDistance",
    "FindnodeResults",
    "UnsolicitedNodes",
];

/// The tests of `devp2p rlpx eth-test` (go-ethereum v1.17.10, cmd/devp2p/internal/ethtest) that
/// need no execution client: each must pass against `examples/node.rs` serving the suite's chain.
const ETH_PASSING: &[&str] = &[
    "Status",
    "MaliciousHandshake",
    "BlockRangeUpdateExpired",
    "BlockRangeUpdateFuture",
    "BlockRangeUpdateInvalid",
    "GetBlockHeaders",
    "GetNonexistentBlockHeaders",
    "SimultaneousRequests",
    "SameRequestID",
    "ZeroRequestID",
    // eth/71: the node answers every position, with the BALs it fetched from geth at import
    // (each checked against its header's hash) and the empty string for unknown blocks.
    "GetBlockAccessLists",
    "GetBlockBodies",
    "GetReceipts",
    "GetLargeReceipts",
];

/// The rest of the suite, with why each fails against a networking library: the transaction
/// tests submit transactions over eth and wait for a transaction pool and block production
/// driven through the engine API. Since the node offers eth/72, the three cell tests run
/// (before, they returned early without it) and stop at the same place: their first step is
/// a forkchoice update through the engine API. A change in this list (a new pass or a new
/// failure) fails the test.
const ETH_FAILING: &[(&str, &str)] = &[
    ("LargeTxRequest", "needs a transaction pool"),
    ("Transaction", "needs a transaction pool and the engine API"),
    ("InvalidTxs", "needs a transaction pool"),
    ("NewPooledTxs", "needs a transaction pool"),
    ("BlobViolations", "needs a blob pool"),
    ("TestBlobTxWithoutSidecar", "needs a blob pool"),
    ("TestBlobTxWithMismatchedSidecar", "needs a blob pool"),
    ("BlobTxAvailabilityFailure", "eth/72: needs a blob pool and the engine API"),
    ("GetCells", "eth/72: needs a blob pool and the engine API"),
    ("BlobTxWithInvalidCells", "eth/72: needs a blob pool and the engine API"),
];

/// What one run of a suite reported.
#[derive(Debug)]
struct SuiteRun {
    /// `(test name, passed)` in the order the suite ran them.
    results: Vec<(String, bool)>,
    /// The `N/M tests passed.` line.
    summary: String,
    /// Everything it printed, for the failure message.
    output: String,
}

impl SuiteRun {
    fn passed(&self) -> Vec<&str> {
        self.results.iter().filter(|(_, ok)| *ok).map(|(n, _)| n.as_str()).collect()
    }

    fn failed(&self) -> Vec<&str> {
        self.results.iter().filter(|(_, ok)| !*ok).map(|(n, _)| n.as_str()).collect()
    }

    /// The log of each failed test, from its `-- RUN` line to its `-- FAIL` line (of every
    /// run, the rerun's too), so a failure message shows why without the whole report.
    fn failure_logs(&self) -> String {
        let failed = self.failed();
        let mut logs = String::new();
        let mut current: Option<&str> = None;
        for line in self.output.lines() {
            if let Some(name) = line.strip_prefix("-- RUN ") {
                current = failed.contains(&name.trim()).then_some(name.trim());
            }
            if current.is_some() {
                logs.push_str(line);
                logs.push('\n');
            }
            if line.starts_with("-- OK ") || line.starts_with("-- FAIL ") {
                current = None;
            }
        }
        logs
    }

    /// Asserts that the suite ran exactly `expected` and every one passed.
    fn assert_all_pass(&self, suite: &str, expected: &[&str]) {
        let ran: Vec<&str> = self.results.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(ran, expected, "{suite}: the suite ran other tests than expected\n{}", self.output);
        assert!(
            self.failed().is_empty(),
            "{suite}: failed {:?} ({})\n{}",
            self.failed(),
            self.summary,
            self.failure_logs()
        );
        assert_eq!(self.summary, format!("{n}/{n} tests passed.", n = expected.len()));
    }
}

/// Parses utesting's report: `-- RUN name`, log lines, then `-- OK name (time)` or
/// `-- FAIL name (time)`, and a last `N/M tests passed.`.
fn parse_report(output: &str) -> SuiteRun {
    let mut results = Vec::new();
    let mut summary = String::new();
    for line in output.lines() {
        let verdict = line
            .strip_prefix("-- OK ")
            .map(|rest| (rest, true))
            .or_else(|| line.strip_prefix("-- FAIL ").map(|rest| (rest, false)));
        if let Some((rest, ok)) = verdict {
            // The name ends before the last " (duration)".
            let name = rest.rsplit_once(" (").map_or(rest, |(name, _)| name);
            results.push((name.to_string(), ok));
        } else if line.ends_with(" tests passed.") {
            summary = line.trim().to_string();
        }
    }
    SuiteRun { results, summary, output: output.to_string() }
}

/// Runs `devp2p <args>` to completion (it exits 1 when a test fails: the report says which).
/// Blocking: call from `spawn_blocking` when an in-process node must keep running.
fn devp2p(args: &[&str]) -> (bool, String) {
    let out = Command::new(peers::devp2p())
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run devp2p: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

/// Runs a suite and writes each test's result to the terminal.
///
/// The discovery suites' bystander tests (`FindnodeResults`, `FindnodeHandshake`) wait on
/// timers inside devp2p, so on a loaded machine one of them can time out on its own side. A
/// discovery test that failed is therefore run once more, alone: the suite passes only if
/// the rerun passes, and the first failure's log is printed either way, so a flake is seen
/// and a real failure still fails.
fn run_suite(suite: &str, args: Vec<String>) -> SuiteRun {
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let (_, output) = devp2p(&args);
    let mut run = parse_report(&output);
    let mut err = std::io::stderr().lock();
    for (name, ok) in &run.results {
        let _ = writeln!(err, "hive {suite} {name}: {}", if *ok { "ok" } else { "FAIL" });
    }
    let _ = writeln!(err, "hive {suite}: {}", run.summary);
    let failed: Vec<String> = run.failed().into_iter().map(String::from).collect();
    if !failed.is_empty() && matches!(args.first(), Some(&"discv4" | &"discv5")) {
        let _ = writeln!(err, "hive {suite}: first failure(s), rerun once:\n{}", run.failure_logs());
        let pattern = format!("^({})$", failed.join("|"));
        let mut again = args.clone();
        // Flags go before the suite's positional argument (discv5 takes the ENR last).
        again.splice(2..2, ["--run", pattern.as_str()]);
        let (_, output) = devp2p(&again);
        let rerun = parse_report(&output);
        for (name, ok) in &rerun.results {
            let _ = writeln!(err, "hive {suite} {name} (rerun): {}", if *ok { "ok" } else { "FAIL" });
            if let Some(first) = run.results.iter_mut().find(|(n, _)| n == name) {
                first.1 = *ok;
            }
        }
        let passed = run.passed().len();
        run.summary = format!("{passed}/{} tests passed.", run.results.len());
        run.output.push_str("\n-- rerun of the failed tests --\n");
        run.output.push_str(&output);
    }
    run
}

async fn run_suite_async(suite: &'static str, args: Vec<String>) -> SuiteRun {
    tokio::task::spawn_blocking(move || run_suite(suite, args)).await.expect("suite runner")
}

fn discv4_suite_args(enode: &Enode) -> Vec<String> {
    ["discv4", "test", "--remote", &enode.to_string(), "--listen1", "127.0.0.1", "--listen2", "127.0.0.2"]
        .map(String::from)
        .to_vec()
}

#[test]
fn discv4_suite_passes_against_the_bootnode() {
    let boot = Bootnode::start(&["--v4"]);
    let run = run_suite("discv4(bootnode)", discv4_suite_args(&boot.enode));
    run.assert_all_pass("discv4 test against bootnode", DISCV4_TESTS);
}

#[test]
fn discv5_suite_passes_against_the_bootnode() {
    let boot = Bootnode::start(&["--v5"]);
    let enr = boot.enr.to_base64();
    let args = ["discv5", "test", "--listen1", "127.0.0.1", "--listen2", "127.0.0.2", &enr].map(String::from);
    let run = run_suite("discv5(bootnode)", args.to_vec());
    run.assert_all_pass("discv5 test against bootnode", DISCV5_TESTS);
}

/// A `Node` with discv4 and discv5 on its RLPx port, restricted to loopback, knowing no one.
/// Its pool wants no peers: a hungry pool runs lookups back to back, and a lookup's
/// FINDNODE to the suite's freshly bonded endpoint can arrive where the suite reads its
/// NEIGHBORS answer (`Findnode/BasicFindnode` failed so, about once in ten runs on a loaded
/// machine). What the suite checks, the answers to its own packets, is the same.
async fn discovery_node() -> Node {
    let chain = Arc::new(MemoryChain::builder().blocks(2).build());
    let eth = chain.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    let listen = SocketAddr::from(([127, 0, 0, 1], 0));
    let mut v4 = Discv4Config::builder();
    v4.listen_addr(listen).netrestrict(NetRestrict::loopback());
    let mut v5 = test_discv5_config();
    v5.listen = listen;
    NodeBuilder::new(eth, chain)
        .key(key_from_seed(31_000))
        .listen(listen)
        .discovery(DiscoveryConfig::new(Some(v4.build().unwrap()), Some(v5)))
        .pool(PoolConfig::builder().min_peers(0).build().unwrap())
        .start()
        .await
        .expect("node starts")
}

fn node_enode(node: &Node) -> Enode {
    let udp = node.discovery().expect("discovery on").local_addr().port();
    Enode {
        peer_id: node.peer_id(),
        ip: [127, 0, 0, 1].into(),
        tcp_port: node.local_addr().port(),
        udp_port: udp,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discv4_suite_passes_against_a_node() {
    let node = discovery_node().await;
    let run = run_suite_async("discv4(node)", discv4_suite_args(&node_enode(&node))).await;
    node.shutdown().await;
    run.assert_all_pass("discv4 test against a Node", DISCV4_TESTS);
}

/// go-ethereum's one-shot commands against a node of ours: `rlpx ping` (an RLPx and Hello
/// exchange), `discv4 ping`, `discv4 requestenr`, `discv4 resolve` and `enrdump` of our record.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn devp2p_smoke_commands_against_a_node() {
    let node = discovery_node().await;
    let enode = node_enode(&node).to_string();
    let record = node.discovery().unwrap().local_enr().record();
    let enr = record.to_base64();
    let outputs = tokio::task::spawn_blocking({
        let enode = enode.clone();
        let enr = enr.clone();
        move || {
            // The discv4 commands start a discv4 node of their own: it listens on loopback and
            // bootstraps from ours only (without --bootnodes it would use mainnet's).
            let local = ["--addr", "127.0.0.1:0", "--bootnodes", enode.as_str()];
            let v4 = |cmd: &str| {
                let mut args = vec!["discv4", cmd];
                args.extend(local);
                args.push(&enode);
                devp2p(&args)
            };
            [
                ("rlpx ping", devp2p(&["rlpx", "ping", &enode])),
                ("discv4 ping", v4("ping")),
                ("discv4 requestenr", v4("requestenr")),
                ("discv4 resolve", v4("resolve")),
                ("enrdump", devp2p(&["enrdump", &enr])),
            ]
        }
    })
    .await
    .unwrap();
    node.shutdown().await;

    let mut err = std::io::stderr().lock();
    for (cmd, (ok, text)) in &outputs {
        let _ = writeln!(err, "devp2p {cmd}: {}", if *ok { "ok" } else { "FAIL" });
        assert!(*ok, "devp2p {cmd} failed:\n{text}");
    }
    let text = |cmd: &str| &outputs.iter().find(|(c, _)| *c == cmd).unwrap().1 .1;
    assert!(text("discv4 ping").contains("node responded to ping"), "{}", text("discv4 ping"));
    // requestenr and resolve print the record they got: ours, at its current sequence number.
    for cmd in ["discv4 requestenr", "discv4 resolve"] {
        let line = text(cmd)
            .lines()
            .find(|l| l.starts_with("enr:"))
            .unwrap_or_else(|| panic!("{cmd}: {}", text(cmd)));
        let got = parse_enr(line).unwrap_or_else(|e| panic!("{cmd} printed a bad record {line:?}: {e}"));
        assert_eq!((got.node_id(), got.seq()), (record.node_id(), record.seq()), "{cmd} shows our record");
    }
    let dump = text("enrdump");
    assert!(dump.contains(&format!("Node ID: {}", hex::encode(record.node_id().raw()))), "{dump}");
    assert!(dump.contains(&format!("sequence number {}", record.seq())), "{dump}");
    // `rlpx ping` prints the remote's Hello: our client id.
    assert!(text("rlpx ping").contains("ethp2p"), "rlpx ping shows our Hello:\n{}", text("rlpx ping"));
}

/// `examples/node.rs` serving the ethtest chain: `--network genesis.json --import chain.rlp`,
/// its receipts fetched from a geth that imported the same file (the file holds none). Killed
/// on drop.
struct ExampleNode {
    child: Child,
    enode: Enode,
}

impl ExampleNode {
    fn serve_ethtest(geth: &GethNode) -> Self {
        let dir = peers::ethtest_dir();
        let mut child = Command::new(peers::example("node"))
            .arg("--network")
            .arg(dir.join("genesis.json"))
            .arg("--import")
            .arg(dir.join("chain.rlp"))
            .args(["--static", &geth.enode().to_string(), "--no-discovery"])
            .args(["--listen", "127.0.0.1:0", "--netrestrict", "127.0.0.0/8", "--every", "3600"])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("examples/node starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let enode: Enode = lines.next().unwrap().unwrap().parse().expect("line 1 is the enode URL");
        // It serves once it holds every receipt: wait for its report.
        let report = lines
            .by_ref()
            .map_while(Result::ok)
            .find(|l| l.starts_with("receipts imported:"))
            .expect("the node reports its receipts import");
        assert!(report.ends_with("without receipts: []"), "every block's receipts imported: {report}");
        // Keep draining stdout so the child never blocks on a full pipe.
        std::thread::spawn(move || lines.for_each(drop));
        Self { child, enode }
    }
}

impl Drop for ExampleNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `devp2p rlpx eth-test` against `examples/node.rs` serving the suite's own chain. The suite's
/// engine API URL points at a closed loopback port: nothing here produces blocks.
#[test]
fn eth_suite_against_the_node_example() {
    let dir = peers::ethtest_dir();
    let geth = GethNode::builder().genesis(&dir.join("genesis.json")).import(&dir.join("chain.rlp")).start();
    let node = ExampleNode::serve_ethtest(&geth);
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let args = [
        "rlpx".to_string(),
        "eth-test".into(),
        "--chain".into(),
        dir.to_str().unwrap().into(),
        "--node".into(),
        node.enode.to_string(),
        "--engineapi".into(),
        format!("http://{closed}"),
        "--jwtsecret".into(),
        "0x".to_string() + &"7".repeat(64),
    ];
    let run = run_suite("eth", args.to_vec());
    let failing: Vec<&str> = ETH_FAILING.iter().map(|(name, _)| *name).collect();
    assert!(!run.results.is_empty(), "the suite ran:\n{}", run.output);
    assert_eq!(run.passed(), ETH_PASSING, "the tests that pass\n{}", run.output);
    assert_eq!(run.failed(), failing, "the tests that fail (README: Conformance)\n{}", run.output);
    drop(geth);
}

#[test]
fn the_report_parser_reads_utesting_output() {
    let out = "-- RUN Ping\nsome log\n-- OK Ping (12ms)\n-- RUN Findnode/Basic (x)\n-- FAIL Findnode/Basic (x) (1.2s)\n1/2 tests passed.\n";
    let run = parse_report(out);
    assert_eq!(run.passed(), ["Ping"]);
    assert_eq!(run.failed(), ["Findnode/Basic (x)"]);
    assert_eq!(run.summary, "1/2 tests passed.");
}

/// Issue 16: `examples/node.rs --listen 127.0.0.1:0` printed an enode without `?discport`
/// while its UDP socket was bound elsewhere. The printed enode is the one to use:
/// go-ethereum's `devp2p discv4 ping` reaches the node's discovery through it.
#[test]
fn the_node_examples_printed_enode_reaches_its_discovery() {
    let boot = Bootnode::start(&[]);
    let mut child = Command::new(peers::example("node"))
        .args(["--listen", "127.0.0.1:0", "--netrestrict", "127.0.0.0/8", "--every", "3600"])
        .args(["--bootnodes", &boot.enode.to_string()])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("examples/node starts");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let enode: Enode = lines.next().unwrap().unwrap().parse().expect("line 1 is the enode URL");
    std::thread::spawn(move || lines.for_each(drop));
    let (ok, out) = devp2p(&["discv4", "ping", &enode.to_string()]);
    let _ = child.kill();
    let _ = child.wait();
    assert!(ok, "devp2p discv4 ping {enode}: {out}");
}

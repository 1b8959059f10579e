//! The `sync` example (issue 19) against in-process `Node`s on loopback: a download through
//! peers that lie, stall and drop; `kill -9` at random points with resumes; a second `sync`
//! that syncs from the first; an unwritable store; and go-ethereum as the source.

use std::{
    io::{BufRead, BufReader, Read, Write},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

use ethp2p::{
    eth::MemoryChain,
    node::{Node, NodeBuilder},
    test_utils::key_from_seed,
    ChainReader, ChainSpec,
};
use rand::{Rng, SeedableRng};

use crate::{
    geth::{Discovery, GethNode},
    peers,
};

#[path = "../../examples/sync/faulty.rs"]
mod faulty;
#[path = "../../examples/sync/store.rs"]
mod store;

use faulty::{Liar, Lie, Slow};
use store::Store;

/// How long one `sync` run may take before the test fails.
const RUN_TIMEOUT: Duration = Duration::from_secs(180);

/// A `Node` on loopback serving `reader` as the chain `source` (its Status: the whole chain).
async fn serve(source: &MemoryChain, reader: Arc<dyn ChainReader>, seed: u64) -> Node {
    let eth = source.eth_config_for(&ChainSpec::mainnet()).build().unwrap();
    NodeBuilder::new(eth, reader)
        .key(key_from_seed(seed))
        .listen(SocketAddr::from(([127, 0, 0, 1], 0)))
        .start()
        .await
        .expect("node starts")
}

/// The `sync` example on loopback with `extra` flags; stdout and stderr piped.
fn spawn_sync(datadir: &Path, statics: &[String], extra: &[&str]) -> Child {
    let mut cmd = Command::new(peers::example("sync"));
    cmd.args([
        "--no-discovery",
        "--listen",
        "127.0.0.1:0",
        "--netrestrict",
        "127.0.0.0/8",
        "--log-every",
        "0.2",
    ])
    .arg("--datadir")
    .arg(datadir)
    .args(extra);
    for s in statics {
        cmd.args(["--static", s]);
    }
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().expect("sync starts")
}

/// Waits for `child` to exit; returns (success, stdout, stderr).
async fn finish(mut child: Child) -> (bool, String, String) {
    let deadline = Instant::now() + RUN_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            break child.wait().unwrap();
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let (mut out, mut err) = (String::new(), String::new());
    child.stdout.take().unwrap().read_to_string(&mut out).unwrap();
    child.stderr.take().unwrap().read_to_string(&mut err).unwrap();
    (status.success(), out, err)
}

/// Every block of `source` is in the store at `dir`, identical: header, body, receipts.
fn assert_store_equals(dir: &Path, source: &MemoryChain) {
    let genesis = source.header(0).unwrap();
    let store = Store::open(dir, genesis.hash_slow(), Some(genesis)).expect("the store opens");
    assert_eq!(store.truncated(), 0, "a clean exit leaves no torn record");
    assert_eq!(store.head().number, source.head_number(), "the store reached the source's head");
    for n in 0..=source.head_number() {
        let block = store.block(n).unwrap_or_else(|| panic!("block {n} stored"));
        assert_eq!(block.header.inner(), source.header(n).unwrap(), "header {n}");
        assert_eq!(&block.body, source.body_by_number(n).unwrap(), "body {n}");
        let receipts = source.receipts_by_hash(&source.hash(n).unwrap()).unwrap();
        assert_eq!(&block.receipts, receipts, "receipts {n}");
    }
}

fn line(text: &str, prefix: &str) -> Option<String> {
    text.lines().rev().find(|l| l.starts_with(prefix)).map(str::to_owned)
}

/// 2,000 blocks through nine peers: three honest, one 200 ms slow, one that swaps a body
/// now and then, one that swaps receipts now and then, one on a fork (well-linked wrong
/// headers), one that answers nothing, and one honest peer that shuts down mid-sync. The
/// store ends equal to the source, block for block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_through_liars_a_slow_peer_and_a_dropout() {
    let source = Arc::new(MemoryChain::builder().blocks(2_000).build());
    let mut nodes = Vec::new();
    for i in 0..3 {
        nodes.push(serve(&source, source.clone(), 46_000 + i).await);
    }
    let slow = Arc::new(Slow::new(source.clone(), Duration::from_millis(200)));
    nodes.push(serve(&source, slow, 46_010).await);
    for (i, lie) in [Lie::Bodies, Lie::Receipts, Lie::Fork, Lie::Empty].into_iter().enumerate() {
        let liar = Arc::new(Liar::new(source.clone(), lie, 3));
        nodes.push(serve(&source, liar, 46_020 + i as u64).await);
    }
    let dropout = serve(&source, source.clone(), 46_030).await;
    let statics: Vec<String> = nodes.iter().chain([&dropout]).map(|n| n.enode().to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = spawn_sync(dir.path(), &statics, &["--exit-synced", "--min-peers", "9"]);
    // The dropout leaves once blocks are being stored: its sessions end mid-request.
    let data = dir.path().join(store::FILE_NAME);
    while std::fs::metadata(&data).map(|m| m.len()).unwrap_or(0) < 64 * 1024
        && started.elapsed() < RUN_TIMEOUT
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    dropout.shutdown().await;
    let (ok, out, err) = finish(child).await;
    let took = started.elapsed();
    assert!(ok, "sync exits cleanly\n--- stdout\n{out}\n--- stderr\n{err}");
    let synced = line(&out, "synced ").expect("a synced line");
    assert_eq!(synced, format!("synced 2000 {}", source.hash(2000).unwrap()));
    let summary = line(&err, "stored ").unwrap_or_default();
    let _ = writeln!(
        std::io::stderr().lock(),
        "sync liars: 2000 blocks in {:.1} s; {summary}",
        took.as_secs_f64()
    );
    // How the syncer's pool judged each peer (`peer ADDR score N` lines, banned ones absent).
    let labels = ["honest", "honest", "honest", "slow", "liar-bodies", "liar-receipts", "fork", "empty"];
    let score = |n: &Node| {
        let prefix = format!("peer {} score ", n.local_addr());
        err.lines().find_map(|l| l.strip_prefix(&prefix)?.parse::<i32>().ok())
    };
    let scores: Vec<(&str, Option<i32>)> = labels.iter().copied().zip(nodes.iter().map(score)).collect();
    let _ = writeln!(
        std::io::stderr().lock(),
        "sync liars: scores at the end {scores:?}; {}",
        line(&err, "peers banned").unwrap_or_default()
    );
    let honest = scores[..3].iter().filter_map(|(_, s)| *s).min().expect("honest peers stay connected");
    // Which liar gets which request is the pool's choice, so not every liar is caught in
    // every run; what it served wrongly was never stored (checked below), and the ones
    // caught end banned or below every honest peer.
    assert!(
        scores[4..].iter().any(|(_, s)| s.is_none_or(|s| s < honest)),
        "some liar ends banned or below every honest peer: {scores:?}"
    );
    assert_store_equals(dir.path(), &source);
    for n in nodes {
        n.shutdown().await;
    }
}

/// `kill -9` at random points, ten times (each after the run stored blocks of its own), each
/// run resuming from the store; the final run completes and the store equals the source.
/// The three sources answer 100 ms late and the chain is 8,000 blocks, so that the download
/// takes several seconds and most kills land mid-download (at least three must; a run that
/// finished before its kill leaves the rest resuming at the head).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_survives_kill_9_and_resumes() {
    const BLOCKS: u64 = 8_000;
    let source = Arc::new(MemoryChain::builder().blocks(BLOCKS).build());
    let mut nodes = Vec::new();
    for i in 0..3 {
        let slow = Arc::new(Slow::new(source.clone(), Duration::from_millis(100)));
        nodes.push(serve(&source, slow, 47_000 + i).await);
    }
    let statics: Vec<String> = nodes.iter().map(|n| n.enode().to_string()).collect();
    let dir = tempfile::tempdir().unwrap();
    let mut rng = rand::rngs::StdRng::seed_from_u64(19);
    let mut resumed = Vec::new();
    for _ in 0..10 {
        let mut child = spawn_sync(dir.path(), &statics, &["--exit-synced", "--min-peers", "3"]);
        // stderr's first lines say where the run resumed.
        let mut err = BufReader::new(child.stderr.take().unwrap());
        let mut first = String::new();
        while !first.contains("resuming at block") {
            first.clear();
            if err.read_line(&mut first).unwrap() == 0 {
                break;
            }
        }
        let at: u64 = first.trim().rsplit(' ').next().and_then(|n| n.parse().ok()).expect("a resume line");
        resumed.push(at);
        // Kill only once this run has stored blocks of its own (its progress line says so),
        // then at a random point after: on a loaded machine the sessions take a while, and a
        // kill before the first block would test nothing.
        let err = tokio::task::spawn_blocking(move || {
            let mut l = String::new();
            loop {
                l.clear();
                if err.read_line(&mut l).unwrap() == 0 {
                    break;
                }
                let stored = l.strip_prefix("block ").and_then(|r| r.split('/').next()?.parse::<u64>().ok());
                if stored.is_some_and(|n| n > at) {
                    break;
                }
            }
            err
        })
        .await
        .unwrap();
        std::thread::spawn(move || std::io::copy(&mut { err }, &mut std::io::sink()));
        tokio::time::sleep(Duration::from_millis(rng.gen_range(0..600))).await;
        child.kill().unwrap(); // SIGKILL
        child.wait().unwrap();
    }
    let child = spawn_sync(dir.path(), &statics, &["--exit-synced", "--min-peers", "3"]);
    let (ok, out, err) = finish(child).await;
    assert!(ok, "the last run completes\n{err}");
    let _ = writeln!(
        std::io::stderr().lock(),
        "sync kill -9: resumed at {resumed:?}, then {}",
        line(&out, "synced").unwrap_or_default()
    );
    assert!(resumed.windows(2).all(|w| w[0] <= w[1]), "each run resumes where the last left: {resumed:?}");
    let mid: std::collections::BTreeSet<u64> =
        resumed.iter().copied().filter(|&n| n > 0 && n < BLOCKS).collect();
    assert!(mid.len() >= 3, "at least three kills landed mid-download, each run adding blocks: {resumed:?}");
    assert_store_equals(dir.path(), &source);
    for n in nodes {
        n.shutdown().await;
    }
}

/// What one `sync` downloaded it serves: a second `sync`, whose only peer is the first,
/// syncs the whole chain from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_sync_syncs_from_the_first() {
    let source = Arc::new(MemoryChain::builder().blocks(1_000).build());
    let node = serve(&source, source.clone(), 48_000).await;
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let mut a = spawn_sync(a_dir.path(), &[node.enode().to_string()], &[]);
    let mut a_out = BufReader::new(a.stdout.take().unwrap());
    let mut a_enode = String::new();
    a_out.read_line(&mut a_enode).unwrap();
    // Wait until the first has the whole chain (its progress lines say so).
    let mut a_err = BufReader::new(a.stderr.take().unwrap()).lines();
    let want = format!("block {}/", source.head_number());
    let deadline = Instant::now() + RUN_TIMEOUT;
    loop {
        let l = a_err.next().expect("the first sync runs").unwrap();
        if l.starts_with(&want) {
            break;
        }
        assert!(Instant::now() < deadline, "the first sync did not finish");
    }
    std::thread::spawn(move || a_err.for_each(drop));
    node.shutdown().await;
    let b = spawn_sync(b_dir.path(), &[a_enode.trim().to_string()], &["--exit-synced"]);
    let (ok, out, err) = finish(b).await;
    let _ = a.kill();
    let _ = a.wait();
    assert!(ok, "the second sync completes\n{err}");
    assert_eq!(line(&out, "synced ").unwrap(), format!("synced 1000 {}", source.hash(1000).unwrap()));
    assert_store_equals(b_dir.path(), &source);
}

/// A store that cannot be created: a clear error naming the path, exit status 1.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_store_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, b"not a directory").unwrap();
    let datadir = file.join("blocks");
    let (ok, _, err) = finish(spawn_sync(&datadir, &[], &["--exit-synced"])).await;
    assert!(!ok, "sync fails");
    assert!(err.contains(datadir.to_str().unwrap()), "the error names the path: {err}");
    assert_eq!(std::fs::read(&file).unwrap(), b"not a directory", "nothing written");
}

/// `sync` downloads the ethtest chain from go-ethereum (600 blocks, every fork up to
/// Amsterdam, block 14's receipts over 10 MiB): the stored head is geth's latest block.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sync_downloads_the_ethtest_chain_from_geth() {
    let dir = peers::ethtest_dir();
    let genesis = dir.join("genesis.json");
    let geth = GethNode::builder()
        .genesis(&genesis)
        .import(&dir.join("chain.rlp"))
        .discovery(Discovery::Off)
        .start();
    let data = tempfile::tempdir().unwrap();
    let started = Instant::now();
    let child = spawn_sync(
        data.path(),
        &[geth.enode().to_string()],
        &["--network", genesis.to_str().unwrap(), "--exit-synced"],
    );
    let (ok, out, err) = finish(child).await;
    assert!(ok, "sync from geth completes\n--- stderr\n{err}\n--- geth\n{}", geth.log_tail(30));
    let latest = geth.exec("eth.getBlock('latest').hash");
    let number = geth.block_number();
    assert_eq!(line(&out, "synced ").unwrap(), format!("synced {number} {latest}"));
    let _ = writeln!(
        std::io::stderr().lock(),
        "sync from geth: {number} blocks in {:.1} s; {}",
        started.elapsed().as_secs_f64(),
        line(&err, "stored ").unwrap_or_default()
    );
    // The store, read back, ends at geth's head.
    let g = ethp2p::record::GethGenesis::from_file(&genesis).unwrap();
    let store = Store::open(data.path(), g.spec().genesis_hash, Some(g.header())).unwrap();
    assert_eq!(store.head().hash().to_string(), latest);
}

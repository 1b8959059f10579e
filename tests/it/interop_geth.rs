//! ethp2p among go-ethereum nodes on loopback (geth v1.17.10, `tests/it/geth.rs`): what geth
//! finds through our bootnode. Each test prints its figures to the terminal.

use std::{
    io::{BufRead, BufReader, Write},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ethp2p::{record::parse_enr, Enode, Enr};

use crate::{
    geth::{Discovery, GethNode},
    peers,
};

/// How long two geth nodes may take to find each other through the bootnode.
const FIND_TIMEOUT: Duration = Duration::from_secs(120);

/// Our `bootnode` binary on 127.0.0.1 with the ethtest chain's fork id, restricted to
/// loopback. Killed on drop.
struct Bootnode {
    child: Child,
    enode: Enode,
    enr: Enr,
}

impl Bootnode {
    fn start(network: &std::path::Path) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bootnode"))
            .args(["--datadir", dir.path().to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(["--netrestrict", "127.0.0.0/8", "--network", network.to_str().unwrap()])
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bootnode starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let enode: Enode = lines.next().unwrap().unwrap().parse().expect("line 1 is the enode URL");
        let enr = parse_enr(&lines.next().unwrap().unwrap()).expect("line 2 is the ENR");
        Self { child, enode, enr }
    }
}

impl Drop for Bootnode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two geth nodes whose only bootnode is ours find each other through it and peer, shown by
/// geth's own `admin.peers`.
fn two_geths_meet_through_our_bootnode(discovery: Discovery) {
    let genesis = peers::ethtest_dir().join("genesis.json");
    let boot = Bootnode::start(&genesis);
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

//! go-ethereum nodes on loopback for interop tests: `geth` v1.17.10 (installed by
//! `scripts/install-peers.sh` on first use), a data dir in a temp dir, free ports read back,
//! `--nat none`, `--netrestrict 127.0.0.0/8`, no bootnodes or DNS unless given, a small cache,
//! no HTTP. The node's enode and ENR come from `admin_nodeInfo` over its IPC socket. Killed by
//! PID on drop, so also when a test fails.
//!
//! ```ignore
//! let geth = GethNode::builder().genesis(&ethtest.join("genesis.json")).import(&ethtest.join("chain.rlp")).start();
//! let head: u64 = geth.exec("eth.blockNumber").parse().unwrap();
//! ```

#![allow(dead_code)] // Shared by several test modules; not every one uses every helper.

use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use ethp2p::{record::parse_enr, Enode, Enr};

use crate::peers;

/// How long geth may take to open its IPC socket after start.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How a geth node is started.
#[derive(Debug, Default, Clone)]
pub(crate) struct GethBuilder {
    genesis: Option<PathBuf>,
    import: Option<PathBuf>,
    discovery: Discovery,
    bootnodes: Vec<String>,
    extra: Vec<String>,
}

/// Which discovery a geth node runs.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Discovery {
    /// `--nodiscover`: static and added peers only.
    #[default]
    Off,
    /// discv4 only.
    V4,
    /// discv5 only.
    V5,
}

impl GethBuilder {
    /// `geth init` with this genesis file first (else geth's mainnet default: never in tests).
    pub(crate) fn genesis(mut self, path: &Path) -> Self {
        self.genesis = Some(path.to_path_buf());
        self
    }

    /// `geth import` this chain file before starting.
    pub(crate) fn import(mut self, path: &Path) -> Self {
        self.import = Some(path.to_path_buf());
        self
    }

    /// Which discovery protocol runs (default: none).
    pub(crate) fn discovery(mut self, discovery: Discovery) -> Self {
        self.discovery = discovery;
        self
    }

    /// Bootnodes (enode URLs or ENRs, as the chosen discovery wants).
    pub(crate) fn bootnodes(mut self, nodes: impl IntoIterator<Item = String>) -> Self {
        self.bootnodes.extend(nodes);
        self
    }

    /// More command-line flags for the running node.
    pub(crate) fn arg(mut self, arg: impl Into<String>) -> Self {
        self.extra.push(arg.into());
        self
    }

    /// Initialises, imports, starts, and waits until the node answers on IPC.
    pub(crate) fn start(self) -> GethNode {
        let genesis = self.genesis.clone().expect("a genesis file: tests never run geth on mainnet");
        let dir = tempfile::Builder::new().prefix("geth").tempdir().expect("temp dir");
        let datadir = dir.path().join("data");
        let log = dir.path().join("geth.log");
        run_once(&["--datadir", path_str(&datadir), "init", path_str(&genesis)], &log);
        if let Some(chain) = &self.import {
            run_once(&["--datadir", path_str(&datadir), "import", path_str(chain)], &log);
        }
        let mut args: Vec<String> = [
            "--datadir",
            path_str(&datadir),
            "--port",
            "0",
            "--nat",
            "none",
            "--netrestrict",
            "127.0.0.0/8",
            "--authrpc.addr",
            "127.0.0.1",
            "--authrpc.port",
            "0",
            "--cache",
            "128",
            "--maxpeers",
            "10",
            "--discovery.dns",
            "",
            "--verbosity",
            "4",
        ]
        .map(String::from)
        .to_vec();
        match self.discovery {
            Discovery::Off => args.push("--nodiscover".into()),
            Discovery::V4 => args.extend(["--discovery.v4".into(), "--discovery.v5=false".into()]),
            Discovery::V5 => args.extend(["--discovery.v4=false".into(), "--discovery.v5".into()]),
        }
        // Always set: an unset --bootnodes means mainnet's list.
        args.extend(["--bootnodes".into(), self.bootnodes.join(",")]);
        args.extend(self.extra.iter().cloned());
        let log_file = std::fs::File::create(&log).expect("geth log file");
        let child = Command::new(peers::geth())
            .args(&args)
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().unwrap())
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run geth: {e}"));
        let mut node =
            GethNode { child, ipc: datadir.join("geth.ipc"), log, _dir: dir, enode: None, enr: None };
        let deadline = Instant::now() + START_TIMEOUT;
        let enode = loop {
            if let Some(out) = node.try_exec("admin.nodeInfo.enode") {
                break out;
            }
            if let Ok(Some(status)) = node.child.try_wait() {
                panic!("geth exited at start ({status}):\n{}", node.log_tail(40));
            }
            assert!(Instant::now() < deadline, "geth did not open its IPC socket:\n{}", node.log_tail(40));
            std::thread::sleep(Duration::from_millis(200));
        };
        // `?discport=0` and the like are geth's; our parser wants the plain URL.
        let url = enode.split('?').next().unwrap().to_string();
        node.enode = Some(url.parse().unwrap_or_else(|e| panic!("geth enode {enode:?}: {e}")));
        let enr = node.exec("admin.nodeInfo.enr");
        node.enr = Some(parse_enr(&enr).unwrap_or_else(|e| panic!("geth ENR {enr:?}: {e}")));
        node
    }
}

fn path_str(path: &Path) -> &str {
    path.to_str().expect("UTF-8 temp path")
}

/// Runs a one-shot geth command (init, import), appending its output to `log`.
fn run_once(args: &[&str], log: &Path) {
    let out =
        Command::new(peers::geth()).args(args).output().unwrap_or_else(|e| panic!("cannot run geth: {e}"));
    let mut text = String::from_utf8_lossy(&out.stdout).into_owned();
    text.push_str(&String::from_utf8_lossy(&out.stderr));
    let _ = std::fs::write(log, &text);
    assert!(out.status.success(), "geth {args:?} failed:\n{text}");
}

/// A running geth process.
#[derive(Debug)]
pub(crate) struct GethNode {
    child: Child,
    ipc: PathBuf,
    log: PathBuf,
    _dir: tempfile::TempDir,
    enode: Option<Enode>,
    enr: Option<Enr>,
}

impl GethNode {
    /// A builder with nothing set.
    pub(crate) fn builder() -> GethBuilder {
        GethBuilder::default()
    }

    /// Its enode URL (TCP and discovery ports as geth bound them).
    pub(crate) fn enode(&self) -> Enode {
        self.enode.expect("set at start")
    }

    /// Its signed node record.
    pub(crate) fn enr(&self) -> Enr {
        self.enr.clone().expect("set at start")
    }

    /// The process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Evaluates a JavaScript expression in the node's console (`geth attach --exec`) and
    /// returns what it printed, without the quotes of a string result.
    pub(crate) fn exec(&self, js: &str) -> String {
        self.try_exec(js)
            .unwrap_or_else(|| panic!("geth attach --exec {js:?} failed:\n{}", self.log_tail(40)))
    }

    fn try_exec(&self, js: &str) -> Option<String> {
        if !self.ipc.exists() {
            return None;
        }
        let out = Command::new(peers::geth()).args(["attach", "--exec", js]).arg(&self.ipc).output().ok()?;
        if !out.status.success() {
            return None;
        }
        let text = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if text.starts_with("Error") {
            return None;
        }
        Some(text.trim_matches('"').to_string())
    }

    /// `eth.blockNumber`.
    pub(crate) fn block_number(&self) -> u64 {
        self.exec("eth.blockNumber").parse().expect("a block number")
    }

    /// The enode URLs of its current peers, as `admin.peers` lists them.
    pub(crate) fn peer_enodes(&self) -> Vec<String> {
        let json = self.exec("JSON.stringify(admin.peers.map(function(p) { return p.enode }))");
        let json = json.replace("\\\"", "\"");
        serde_json::from_str(&json).unwrap_or_else(|e| panic!("admin.peers {json:?}: {e}"))
    }

    /// The last `lines` lines of its log.
    pub(crate) fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(&self.log).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Its whole log so far.
    pub(crate) fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for GethNode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

//! Third-party peers the interop and conformance tests run: go-ethereum's `geth` and `devp2p`
//! (v1.17.10, pinned in `scripts/install-peers.sh`) and the ethereumjs peer. They are installed
//! by that script into `$XDG_CACHE_HOME/ethp2p` the first time a test needs them (a cold
//! go-ethereum build takes minutes, once); a missing Go or Node.js toolchain fails the test
//! with the script's one-line error, never a skip.

#![allow(dead_code)] // Shared by several test modules; not every one uses every helper.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
};

use ethp2p::{record::parse_enr, Enode, Enr};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scripts/install-peers.sh");

/// Installs are serialised within this process (the script also takes a file lock, for other
/// processes); each kind runs the script at most once per process.
static DONE: Mutex<Vec<&'static str>> = Mutex::new(Vec::new());

fn script(arg: &str) -> String {
    let out = Command::new("bash")
        .arg(SCRIPT)
        .arg(arg)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {SCRIPT}: {e}"));
    assert!(out.status.success(), "{SCRIPT} {arg} failed: {}", String::from_utf8_lossy(&out.stderr).trim());
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

fn ensure(kind: &'static str) {
    let mut done = DONE.lock().unwrap_or_else(|e| e.into_inner());
    if !done.contains(&kind) {
        script(kind);
        done.push(kind);
    }
}

/// The folder holding `peer.mjs` and its `node_modules`: `$ETHP2P_EJS_DIR` when set (an
/// installation made elsewhere), else the installer's cache, installed on first use.
pub(crate) fn ejs_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("ETHP2P_EJS_DIR") {
        return PathBuf::from(dir);
    }
    ensure("ejs");
    PathBuf::from(script("path-ejs"))
}

/// go-ethereum's install folder (`bin/geth`, `bin/devp2p`, `ethtest/` — the ethtest chain
/// that ships inside the module), built on first use.
pub(crate) fn geth_dir() -> PathBuf {
    ensure("geth");
    PathBuf::from(script("path-geth"))
}

/// The pinned go-ethereum version, e.g. `v1.17.10`.
pub(crate) fn geth_version() -> String {
    script("version")
}

/// The `devp2p` binary.
pub(crate) fn devp2p() -> PathBuf {
    geth_dir().join("bin/devp2p")
}

/// The `geth` binary.
pub(crate) fn geth() -> PathBuf {
    geth_dir().join("bin/geth")
}

/// The ethtest chain folder (`genesis.json`, `chain.rlp`, `txinfo.json`, ...).
pub(crate) fn ethtest_dir() -> PathBuf {
    geth_dir().join("ethtest")
}

/// An example binary that `cargo test` built beside this test binary
/// (`target/<profile>/examples/<name>`).
pub(crate) fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    // target/<profile>/deps/it-<hash> -> target/<profile>/examples/<name>
    let profile_dir: &Path = exe.parent().and_then(Path::parent).expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    assert!(path.is_file(), "example {name} not built at {} (cargo test builds examples)", path.display());
    path
}

/// Logs of the library to the test's output, filtered by `RUST_LOG` (nothing when unset).
pub(crate) fn init_tracing() {
    let _ = tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
        .with_test_writer()
        .try_init();
}

/// The release-style `bootnode` binary on 127.0.0.1, restricted to loopback. Killed on drop.
pub(crate) struct Bootnode {
    child: Child,
    /// Its enode URL (TCP port 0: a bootnode has no RLPx).
    pub(crate) enode: Enode,
    /// Its signed record.
    pub(crate) enr: Enr,
}

impl Bootnode {
    /// Starts it with `extra` flags and reads its enode and ENR from stdout.
    pub(crate) fn start(extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_bootnode"))
            .args(["--datadir", dir.path().to_str().unwrap(), "--addr", "127.0.0.1:0"])
            .args(["--netrestrict", "127.0.0.0/8"])
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("bootnode starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let enode: Enode = lines.next().unwrap().unwrap().parse().expect("line 1 is the enode URL");
        let enr = parse_enr(&lines.next().unwrap().unwrap()).expect("line 2 is the ENR");
        // The key file lives in `dir`; the process has read it already.
        drop(dir);
        Self { child, enode, enr }
    }
}

impl Drop for Bootnode {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

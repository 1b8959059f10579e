//! Third-party peers the interop and conformance tests run: go-ethereum's `geth` and `devp2p`
//! (v1.17.10, pinned in `scripts/install-peers.sh`) and the ethereumjs peer. They are installed
//! by that script into `$XDG_CACHE_HOME/ethp2p` the first time a test needs them (a cold
//! go-ethereum build takes minutes, once); a missing Go or Node.js toolchain fails the test
//! with the script's one-line error, never a skip.

#![allow(dead_code)] // Shared by several test modules; not every one uses every helper.

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::Mutex,
};

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

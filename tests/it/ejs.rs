//! Runs the third-party ethereumjs devp2p peer (`../shared/interop/ejs/peer.mjs`) for interop
//! tests. A missing `node` or `node_modules` is a test failure with instructions, never a
//! skip.
//!
//! ```ignore
//! let peer = EjsPeer::spawn(&["--no-discv4"]);   // --tcp is added with a free port
//! let enode = peer.enode();
//! let ev = peer.wait_event("peer-added", |_| true, Duration::from_secs(20));
//! ```

#![allow(dead_code)] // Shared by several test modules; not every one uses every helper.

use std::{
    io::{BufRead, BufReader},
    net::{TcpListener, UdpSocket},
    process::{Child, Command, Stdio},
    sync::{mpsc, Arc, Mutex},
    time::{Duration, Instant},
};

use ethp2p::Enode;
use serde_json::Value;

/// How long the peer may take to print its enode (Node start-up plus the chain set-up).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub(crate) use crate::peers::ejs_dir;

/// A TCP port that is free on 127.0.0.1 for both TCP and UDP right now.
pub(crate) fn free_port() -> u16 {
    loop {
        let tcp = TcpListener::bind("127.0.0.1:0").expect("bind a loopback TCP port");
        let port = tcp.local_addr().unwrap().port();
        if UdpSocket::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
}

/// A running ethereumjs peer. Killed on drop.
#[derive(Debug)]
pub(crate) struct EjsPeer {
    child: Child,
    enode: Enode,
    /// The TCP (and, unless `--udp` was given, UDP) port it bound.
    pub(crate) port: u16,
    events: Arc<Mutex<Vec<Value>>>,
}

impl EjsPeer {
    /// Starts `node peer.mjs --tcp <free port> <args>` and waits for its enode line. Retries
    /// with another port if the chosen one was taken in between (exit code 2).
    pub(crate) fn spawn(args: &[&str]) -> Self {
        let dir = ejs_dir();
        let script = dir.join("peer.mjs");
        assert!(script.is_file(), "interop peer not found at {}", script.display());
        assert!(
            dir.join("node_modules").is_dir(),
            "ethereumjs dependencies missing in {} (scripts/install-peers.sh ejs installs them)",
            dir.display()
        );
        let mut last_error = String::new();
        for _ in 0..3 {
            let port = free_port();
            let mut child = Command::new("node")
                .arg(&script)
                .arg("--tcp")
                .arg(port.to_string())
                .args(args)
                .current_dir(&dir)
                .stdin(Stdio::null())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap_or_else(|e| {
                    panic!("cannot run `node` (Node.js 20 is required for interop tests): {e}")
                });
            let stdout = child.stdout.take().unwrap();
            let stderr = child.stderr.take().unwrap();
            let events = Arc::new(Mutex::new(Vec::new()));
            let (first_tx, first_rx) = mpsc::channel();
            let sink = events.clone();
            std::thread::spawn(move || {
                let mut lines = BufReader::new(stdout).lines();
                if let Some(Ok(first)) = lines.next() {
                    let _ = first_tx.send(first);
                }
                for line in lines.map_while(Result::ok) {
                    if let Ok(v) = serde_json::from_str::<Value>(&line) {
                        eprintln!("ejs: {line}");
                        sink.lock().unwrap().push(v);
                    }
                }
            });
            let stderr_text = Arc::new(Mutex::new(String::new()));
            let err_sink = stderr_text.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                    eprintln!("ejs stderr: {line}");
                    err_sink.lock().unwrap().push_str(&line);
                }
            });
            match first_rx.recv_timeout(START_TIMEOUT) {
                Ok(line) => {
                    let enode: Enode =
                        line.parse().unwrap_or_else(|e| panic!("bad enode line {line:?}: {e}"));
                    return Self { child, enode, port, events };
                }
                Err(_) => {
                    let status = child.try_wait().ok().flatten();
                    let _ = child.kill();
                    let _ = child.wait();
                    last_error = format!("status {status:?}, stderr: {}", stderr_text.lock().unwrap());
                    if status.and_then(|s| s.code()) != Some(2) {
                        break;
                    }
                }
            }
        }
        panic!("ethereumjs peer did not start: {last_error}");
    }

    /// Its enode URL (first stdout line).
    pub(crate) fn enode(&self) -> Enode {
        self.enode
    }

    /// All JSON events so far.
    pub(crate) fn events(&self) -> Vec<Value> {
        self.events.lock().unwrap().clone()
    }

    /// Waits for an event named `ev` matching `pred`, polling until `timeout`.
    pub(crate) fn wait_event(&self, ev: &str, pred: impl Fn(&Value) -> bool, timeout: Duration) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events.lock().unwrap().iter().find(|v| v["ev"] == ev && pred(v)) {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {ev:?} event within {timeout:?}; events: {:#?}",
                self.events()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// [`Self::wait_event`] for async tests: polls without blocking the runtime.
    pub(crate) async fn wait_event_async(
        &self,
        ev: &str,
        pred: impl Fn(&Value) -> bool,
        timeout: Duration,
    ) -> Value {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(v) = self.events.lock().unwrap().iter().find(|v| v["ev"] == ev && pred(v)) {
                return v.clone();
            }
            assert!(
                Instant::now() < deadline,
                "no {ev:?} event within {timeout:?}; events: {:#?}",
                self.events()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for EjsPeer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

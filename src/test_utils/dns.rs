//! A small authoritative DNS server on loopback, for DNS discovery tests.
//!
//! It answers TXT queries over UDP from an in-memory zone (NXDOMAIN for names it does not
//! hold) and can be told to drop every query under a domain, to stand in for a server that
//! times out. Real DNS messages (hickory-proto's codec), so the client under test goes
//! through hickory-resolver exactly as it would against a public server.

use std::{
    collections::{HashMap, HashSet},
    io,
    net::SocketAddr,
    sync::{
        atomic::{AtomicUsize, Ordering},
        Arc, RwLock,
    },
};

use hickory_proto::{
    op::{Message, MessageType, ResponseCode},
    rr::{rdata::TXT, RData, Record, RecordType},
};
use tokio::{net::UdpSocket, task::JoinHandle};

use crate::discovery::dns::SignedTree;

/// RFC 1035 §3.3.14: one character-string holds at most 255 bytes.
const TXT_CHUNK: usize = 255;

#[derive(Debug, Default)]
struct State {
    zone: RwLock<HashMap<String, Vec<String>>>,
    blackholed: RwLock<HashSet<String>>,
    queries: AtomicUsize,
}

/// The server; it stops when dropped.
#[derive(Debug)]
pub struct DnsTestServer {
    addr: SocketAddr,
    state: Arc<State>,
    task: JoinHandle<()>,
}

impl Drop for DnsTestServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl DnsTestServer {
    /// Binds `127.0.0.1:0` and starts answering.
    pub async fn start() -> io::Result<Self> {
        let socket = UdpSocket::bind("127.0.0.1:0").await?;
        let addr = socket.local_addr()?;
        let state = Arc::new(State::default());
        let task = tokio::spawn(serve(socket, Arc::clone(&state)));
        Ok(Self { addr, state, task })
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Adds every record of `tree` (replacing what was at those names).
    pub fn serve_tree(&self, tree: &SignedTree) {
        for (name, text) in tree.records() {
            self.set(&name, vec![text]);
        }
    }

    /// Replaces the TXT records at `name`.
    pub fn set(&self, name: &str, txts: Vec<String>) {
        self.state.zone.write().unwrap_or_else(|e| e.into_inner()).insert(normalize(name), txts);
    }

    /// Removes the records at `name` (it then answers NXDOMAIN).
    pub fn remove(&self, name: &str) {
        self.state.zone.write().unwrap_or_else(|e| e.into_inner()).remove(&normalize(name));
    }

    /// Never answers queries for `domain` or names under it.
    pub fn blackhole(&self, domain: &str) {
        self.state.blackholed.write().unwrap_or_else(|e| e.into_inner()).insert(normalize(domain));
    }

    /// Queries received so far (answered or not).
    pub fn queries(&self) -> usize {
        self.state.queries.load(Ordering::Relaxed)
    }
}

fn normalize(name: &str) -> String {
    name.trim_end_matches('.').to_ascii_lowercase()
}

async fn serve(socket: UdpSocket, state: Arc<State>) {
    let mut buf = vec![0u8; 4096];
    loop {
        let Ok((len, from)) = socket.recv_from(&mut buf).await else { continue };
        state.queries.fetch_add(1, Ordering::Relaxed);
        let Some(reply) = answer(&buf[..len], &state) else { continue };
        let _ = socket.send_to(&reply, from).await;
    }
}

fn answer(query: &[u8], state: &State) -> Option<Vec<u8>> {
    let request = Message::from_vec(query).ok()?;
    let question = request.queries().first()?.clone();
    let name = normalize(&question.name().to_ascii());
    {
        let blackholed = state.blackholed.read().unwrap_or_else(|e| e.into_inner());
        if blackholed.iter().any(|d| name == *d || name.ends_with(&format!(".{d}"))) {
            return None;
        }
    }
    let mut reply = Message::new();
    reply
        .set_id(request.id())
        .set_message_type(MessageType::Response)
        .set_op_code(request.op_code())
        .set_authoritative(true)
        .set_recursion_desired(request.recursion_desired())
        .add_query(question.clone());
    let zone = state.zone.read().unwrap_or_else(|e| e.into_inner());
    match zone.get(&name) {
        None => {
            reply.set_response_code(ResponseCode::NXDomain);
        }
        Some(txts) if question.query_type() == RecordType::TXT => {
            for txt in txts {
                let chunks = txt
                    .as_bytes()
                    .chunks(TXT_CHUNK)
                    .map(|c| String::from_utf8_lossy(c).into_owned())
                    .collect::<Vec<_>>();
                reply.add_answer(Record::from_rdata(
                    question.name().clone(),
                    60,
                    RData::TXT(TXT::new(chunks)),
                ));
            }
        }
        Some(_) => {}
    }
    reply.to_vec().ok()
}

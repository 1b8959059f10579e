//! The session manager (reth's `SessionManager`): one task that owns every session from
//! the first byte to the last.
//!
//! ```text
//!  NodeService ─SessionCommand─▶ SessionManager ──spawns──▶ pending: handshake(direction, io)
//!       ▲                          │  (JoinSet)            active:  EthPeerService + event pump
//!       └───────SessionEvent───────┘
//! ```
//!
//! Dial and accept run the same [`handshake`] (RLPx, then the eth `Status`). A finished
//! handshake is reported as [`SessionEvent::Handshaken`] with the peer's handle, and waits
//! for the service's verdict: [`SessionCommand::Admit`] spawns its peer task,
//! [`SessionCommand::Refuse`] sends the Disconnect straight from the handshaken session,
//! with no peer task ever spawned. Sessions are numbered, so a report from a replaced
//! duplicate cannot end the admitted session of the same peer. The pool decides; this
//! task only acts, and never reaches into the pool: a key the pool shuns
//! ([`SessionCommand::Shun`]) is kept here and published to the inbound handshakes, which
//! close a shunned key's connection as soon as its auth packet is decrypted.

use std::{
    collections::{HashMap, HashSet},
    net::SocketAddr,
    num::NonZeroUsize,
    sync::Arc,
    time::{Duration, Instant},
};

use lru::LruCache;
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::TcpStream,
    sync::{mpsc, oneshot, watch},
    task::JoinSet,
};

use super::{announce::Announcement, stats::DialFailure};
use crate::{
    eth::{
        ChainReader, EthConfig, EthError, EthEvent, EthEvents, EthPeer, EthPeerService, EthSession,
        StatusInfo, TxPool,
    },
    eth::{Outcome, RequestKind},
    pool::{Direction, SessionClose},
    record::{ForkFilter, NodeKey, PeerId},
    rlpx::{self, Backoff, DisconnectReason, RlpxConfig, RlpxError},
};

/// Commands from the service queued before it waits.
pub(super) const SESSION_COMMAND_CAPACITY: usize = 256;
/// Events from sessions queued for the service (handshakes, outcomes, announcements).
pub(super) const SESSION_EVENT_CAPACITY: usize = 1024;
/// How long shutdown waits for sessions to say goodbye before aborting them.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// Shunned keys remembered at once; the oldest go first. A key costs its holder a full
/// handshake to earn, so an attacker cycling keys is held back by the per-IP rules first.
const SHUNNED_KEYS: NonZeroUsize = NonZeroUsize::new(1024).unwrap();

/// The shunned keys as the inbound handshakes see them: each until its instant.
type ShunnedKeys = Arc<HashMap<PeerId, Instant>>;

/// What the sessions report to the service, which turns each into pool calls.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SessionEvent {
    /// A handshake (RLPx and `Status`) finished; the session waits for
    /// [`SessionCommand::Admit`] or [`SessionCommand::Refuse`] with this `id`.
    Handshaken {
        /// The pending session's number.
        id: u64,
        /// Its handle (requests queue until it is admitted).
        peer: EthPeer,
        /// The remote's TCP address.
        addr: SocketAddr,
        /// Who dialed.
        direction: Direction,
        /// The client id from its Hello.
        client_id: String,
    },
    /// A dial failed before a session existed, classified by the failing error.
    DialFailed { peer_id: PeerId, backoff: Backoff, ban: bool, failure: DialFailure },
    /// An inbound handshake from `addr` failed, classified by the failing error; `peer_id`
    /// once the remote's key was known (its auth packet decrypted).
    InboundFailed { addr: SocketAddr, peer_id: Option<PeerId>, backoff: Backoff },
    /// The admitted session of `peer_id` ended.
    Closed { peer_id: PeerId, close: SessionClose },
    /// A non-fatal offence (an unsolicited response); `ban` when the error merits one.
    Offence { peer_id: PeerId, ban: bool },
    /// A request to the peer ended, judged by its session task.
    RequestOutcome { peer_id: PeerId, kind: RequestKind, outcome: Outcome },
    /// An announcement, validated by the session task.
    Announcement(Announcement),
}

/// What the service asks of the sessions, mostly on the pool's behalf.
#[derive(Debug)]
#[non_exhaustive]
pub(crate) enum SessionCommand {
    /// Dial and handshake this node.
    Dial { peer_id: PeerId, addr: SocketAddr },
    /// Handshake a connection the pool let in.
    Accept { tcp: TcpStream, addr: SocketAddr },
    /// Run the handshaken session `id`.
    Admit { id: u64 },
    /// Send the handshaken session `id` this Disconnect and drop it.
    Refuse { id: u64, reason: DisconnectReason },
    /// Close inbound connections from this key, right after its auth packet, until `until`.
    Shun { peer_id: PeerId, until: Instant },
    /// Close the peer's session with this reason; its close is reported as local.
    Disconnect { peer_id: PeerId, reason: DisconnectReason },
    /// Our head moved: new handshakes send this `Status` and check with this filter.
    SetHead { status: StatusInfo, fork_filter: ForkFilter },
    /// Disconnect everyone with `ClientQuitting`, wait a moment, stop every task.
    Shutdown(oneshot::Sender<()>),
}

/// Runs the handshake every session goes through, whichever side dialed: RLPx (ECIES,
/// Hello), then the eth `Status`. Generic over the stream, so tests can use
/// `tokio::io::duplex`. On failure the remote got a Disconnect where the protocol
/// allows one, and the error classifies itself for the pool; it comes with the remote's
/// key when the RLPx handshake got that far. An inbound key in `shunned` is refused right
/// after its auth packet ([`RlpxError::Shunned`]).
pub(crate) async fn handshake<S>(
    direction: HandshakeDirection,
    io: S,
    key: &NodeKey,
    rlpx: &RlpxConfig,
    eth: EthConfig,
    shunned: &ShunnedKeys,
) -> Result<EthSession<S>, (Option<PeerId>, EthError)>
where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let session = match direction {
        HandshakeDirection::Outbound(remote) => {
            rlpx::Session::outgoing(io, key, remote, rlpx).await.map_err(|e| (Some(remote), e.into()))?
        }
        HandshakeDirection::Inbound => {
            let admit = |id: &PeerId| shunned.get(id).is_none_or(|until| Instant::now() >= *until);
            rlpx::Session::incoming_from(io, key, rlpx, admit).await.map_err(|e| (None, e.into()))?
        }
    };
    let remote = session.remote_id();
    EthSession::handshake(session, eth).await.map_err(|e| (Some(remote), e))
}

/// Who dialed, and for a dial, whom we expect at the other end.
#[derive(Debug, Clone, Copy)]
pub(crate) enum HandshakeDirection {
    /// We dialed this peer.
    Outbound(PeerId),
    /// It dialed us.
    Inbound,
}

/// Reports from the tasks the manager spawned.
enum Report {
    Handshaken {
        peer: EthPeer,
        service: Box<EthPeerService<TcpStream>>,
        events: EthEvents,
        addr: SocketAddr,
        direction: Direction,
        client_id: String,
    },
    Failed {
        /// The peer we dialed (`None` for an inbound handshake).
        peer_id: Option<PeerId>,
        /// The remote's key, once known.
        remote: Option<PeerId>,
        addr: SocketAddr,
        error: EthError,
        failure: DialFailure,
    },
    Closed {
        peer_id: PeerId,
        session: u64,
        error: Arc<EthError>,
    },
}

/// A handshaken session waiting for the service's verdict.
struct Pending {
    peer: EthPeer,
    service: Box<EthPeerService<TcpStream>>,
    events: EthEvents,
}

/// The session manager's state; [`Self::run`] is its task.
pub(crate) struct SessionManager {
    key: NodeKey,
    rlpx: RlpxConfig,
    eth: EthConfig,
    chain: Arc<dyn ChainReader>,
    tx_pool: Arc<dyn TxPool>,
    commands: mpsc::Receiver<SessionCommand>,
    events: mpsc::Sender<SessionEvent>,
    reports_tx: mpsc::Sender<Report>,
    reports: mpsc::Receiver<Report>,
    /// Pending handshakes, peer tasks and their event pumps: dropping the manager stops
    /// them all.
    tasks: JoinSet<()>,
    /// Handshaken sessions waiting for a verdict, by number.
    pending: HashMap<u64, Pending>,
    /// The admitted session of each peer, with its number.
    active: HashMap<PeerId, (u64, EthPeer)>,
    /// Peers we asked to leave: their close is ours, not a remote drop.
    closing: HashSet<PeerId>,
    /// Keys the pool shuns, and the snapshot of them the inbound handshakes read.
    shunned: LruCache<PeerId, Instant>,
    shunned_tx: watch::Sender<ShunnedKeys>,
    next_id: u64,
}

impl std::fmt::Debug for SessionManager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionManager")
            .field("pending", &self.pending.len())
            .field("active", &self.active.len())
            .finish_non_exhaustive()
    }
}

impl SessionManager {
    pub(crate) fn new(
        key: NodeKey,
        rlpx: RlpxConfig,
        eth: EthConfig,
        chain: Arc<dyn ChainReader>,
        tx_pool: Arc<dyn TxPool>,
        commands: mpsc::Receiver<SessionCommand>,
        events: mpsc::Sender<SessionEvent>,
    ) -> Self {
        let (reports_tx, reports) = mpsc::channel(SESSION_EVENT_CAPACITY);
        Self {
            key,
            rlpx,
            eth,
            chain,
            tx_pool,
            commands,
            events,
            reports_tx,
            reports,
            tasks: JoinSet::new(),
            pending: HashMap::new(),
            active: HashMap::new(),
            closing: HashSet::new(),
            shunned: LruCache::new(SHUNNED_KEYS),
            shunned_tx: watch::Sender::new(ShunnedKeys::default()),
            next_id: 0,
        }
    }

    /// Runs until [`SessionCommand::Shutdown`] or until the service is gone.
    pub(crate) async fn run(mut self) {
        loop {
            tokio::select! {
                command = self.commands.recv() => match command {
                    Some(SessionCommand::Shutdown(done)) => {
                        self.shutdown().await;
                        let _ = done.send(());
                        return;
                    }
                    Some(command) => self.on_command(command),
                    None => return self.shutdown().await,
                },
                Some(report) = self.reports.recv() => {
                    if let Some(event) = self.on_report(report) {
                        if self.events.send(event).await.is_err() {
                            return self.shutdown().await;
                        }
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
    }

    fn number(&mut self) -> u64 {
        self.next_id += 1;
        self.next_id
    }

    fn on_command(&mut self, command: SessionCommand) {
        match command {
            SessionCommand::Dial { peer_id, addr } => {
                self.spawn_handshake(HandshakeDirection::Outbound(peer_id), None, addr)
            }
            SessionCommand::Shun { peer_id, until } => self.shun(peer_id, until),
            SessionCommand::Accept { tcp, addr } => {
                self.spawn_handshake(HandshakeDirection::Inbound, Some(tcp), addr)
            }
            SessionCommand::Admit { id } => self.admit(id),
            SessionCommand::Refuse { id, reason } => {
                if let Some(p) = self.pending.remove(&id) {
                    self.tasks.spawn(p.service.refuse(reason));
                }
            }
            SessionCommand::Disconnect { peer_id, reason } => {
                if let Some((_, peer)) = self.active.get(&peer_id).cloned() {
                    self.closing.insert(peer_id);
                    self.tasks.spawn(async move {
                        let _ = peer.disconnect(reason).await;
                    });
                }
            }
            SessionCommand::SetHead { status, fork_filter } => {
                self.eth.status = status;
                self.eth.fork_filter = fork_filter;
            }
            SessionCommand::Shutdown(_) => unreachable!("handled in run"),
        }
    }

    /// Remembers a shunned key and publishes the live ones (rare: one per failed
    /// handshake the pool holds against its key).
    fn shun(&mut self, peer_id: PeerId, until: Instant) {
        self.shunned.put(peer_id, until);
        let now = Instant::now();
        let live = self.shunned.iter().filter(|(_, u)| **u > now).map(|(p, u)| (*p, *u)).collect();
        self.shunned_tx.send_replace(Arc::new(live));
    }

    /// Starts one pending handshake: the TCP connect first for a dial, then [`handshake`].
    fn spawn_handshake(&mut self, direction: HandshakeDirection, tcp: Option<TcpStream>, addr: SocketAddr) {
        let (key, rlpx, eth, chain, tx) = (
            self.key.clone(),
            self.rlpx.clone(),
            self.eth.clone(),
            self.chain.clone(),
            self.reports_tx.clone(),
        );
        let shunned = self.shunned_tx.subscribe();
        self.tasks.spawn(async move {
            let (peer_id, dir) = match direction {
                HandshakeDirection::Outbound(id) => (Some(id), Direction::Outbound),
                HandshakeDirection::Inbound => (None, Direction::Inbound),
            };
            let tcp = match tcp {
                Some(tcp) => Ok(tcp),
                None => tokio::time::timeout(rlpx.connect_timeout, TcpStream::connect(addr))
                    .await
                    .map_err(|_| RlpxError::ConnectTimeout)
                    .and_then(|r| r.map_err(RlpxError::Io)),
            };
            let result = match tcp {
                Ok(tcp) => {
                    let _ = tcp.set_nodelay(true);
                    let shunned = shunned.borrow().clone();
                    handshake(direction, tcp, &key, &rlpx, eth, &shunned).await
                }
                Err(e) => Err((peer_id, EthError::Rlpx(e))),
            };
            let report = match result {
                Ok(session) => {
                    let client_id = session.client_id().to_owned();
                    let (peer, service, events) = session.into_peer(chain);
                    Report::Handshaken {
                        peer,
                        service: Box::new(service),
                        events,
                        addr,
                        direction: dir,
                        client_id,
                    }
                }
                Err((remote, error)) => {
                    tracing::trace!(target: "ethp2p::pool", %addr, ?dir, %error, "handshake failed");
                    let failure = DialFailure::of_eth(&error);
                    Report::Failed { peer_id, remote, addr, error, failure }
                }
            };
            let _ = tx.send(report).await;
        });
    }

    fn on_report(&mut self, report: Report) -> Option<SessionEvent> {
        match report {
            Report::Handshaken { peer, service, events, addr, direction, client_id } => {
                let id = self.number();
                self.pending.insert(id, Pending { peer: peer.clone(), service, events });
                Some(SessionEvent::Handshaken { id, peer, addr, direction, client_id })
            }
            Report::Failed { peer_id: Some(peer_id), error, failure, .. } => Some(SessionEvent::DialFailed {
                peer_id,
                backoff: error.backoff(),
                ban: error.should_ban(),
                failure,
            }),
            Report::Failed { peer_id: None, remote, addr, error, .. } => {
                Some(SessionEvent::InboundFailed { addr, peer_id: remote, backoff: error.backoff() })
            }
            Report::Closed { peer_id, session, error } => {
                // A refused or replaced duplicate closing must not end the admitted session.
                if self.active.get(&peer_id).is_none_or(|(s, _)| *s != session) {
                    return None;
                }
                self.active.remove(&peer_id);
                let close = if self.closing.remove(&peer_id) {
                    SessionClose::Local
                } else {
                    SessionClose::from_error(&error)
                };
                Some(SessionEvent::Closed { peer_id, close })
            }
        }
    }

    /// Spawns the peer task of an admitted session and the pump that turns its events into
    /// session events. Both sides dialed at once and the pool kept this connection: the
    /// other one goes, with `AlreadyConnected`.
    fn admit(&mut self, id: u64) {
        let Some(Pending { peer, service, mut events }) = self.pending.remove(&id) else { return };
        let (peer_id, tx) = (peer.peer_id(), self.reports_tx.clone());
        let service = service.with_tx_pool(self.tx_pool.clone());
        self.tasks.spawn(async move {
            let error = service.run().await;
            let _ = tx.send(Report::Closed { peer_id, session: id, error }).await;
        });
        let tx = self.events.clone();
        self.tasks.spawn(async move {
            while let Some(event) = events.recv().await {
                let event = match event {
                    EthEvent::Offence(e) => SessionEvent::Offence { peer_id, ban: e.should_ban() },
                    EthEvent::RequestOutcome { kind, outcome } => {
                        SessionEvent::RequestOutcome { peer_id, kind, outcome }
                    }
                    EthEvent::Announcement(message) => {
                        SessionEvent::Announcement(Announcement { peer_id, message })
                    }
                    _ => continue,
                };
                if tx.send(event).await.is_err() {
                    return;
                }
            }
        });
        if let Some((_, old)) = self.active.insert(peer_id, (id, peer)) {
            self.tasks.spawn(async move {
                let _ = old.disconnect(DisconnectReason::AlreadyConnected).await;
            });
        }
    }

    async fn shutdown(&mut self) {
        for (peer_id, (_, peer)) in self.active.drain() {
            self.closing.insert(peer_id);
            self.tasks.spawn(async move {
                let _ = peer.disconnect(DisconnectReason::ClientQuitting).await;
            });
        }
        for (_, p) in self.pending.drain() {
            self.tasks.spawn(p.service.refuse(DisconnectReason::ClientQuitting));
        }
        let _ =
            tokio::time::timeout(SHUTDOWN_GRACE, async { while self.tasks.join_next().await.is_some() {} })
                .await;
        self.tasks.shutdown().await;
    }
}

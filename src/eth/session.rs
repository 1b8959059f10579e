//! The eth session over an RLPx [`Session`]: the `Status` handshake ([`EthSession`]), then
//! one task per peer ([`EthPeerService`]) that owns the RLPx session, and a cheap `Clone`
//! handle ([`EthPeer`]) that sends requests and announcements to it.
//!
//! ```text
//!   EthPeer ──Command (bounded mpsc, oneshot reply)──▶ EthPeerService ◀──▶ rlpx::Session
//!                                                        │  serves requests from ChainReader
//!   EthEvents ◀──────EthEvent (announcements, outcomes)──┘  validates responses
//! ```
//!
//! Requests get ids from a per-session counter that starts at 0; a response is matched by
//! id and kind, validated against its request, and handed to the waiting caller. A response
//! to nothing is an offence reported as an event, not a reason to drop the session.
//!
//! On eth/70 a receipts request may take several round trips: while the peer marks its
//! last list incomplete, the task asks for the rest under the same request id (as
//! go-ethereum does), each answer with its own outcome event, all within the first
//! request's timeout (so a peer that drips receipts cannot hold a request open for long),
//! and the caller gets the whole lists once ([`ReceiptsAssembly`]).
//!
//! eth/71's block access lists and eth/72's cells are requests like the others, asked for
//! only on a session whose version has them ([`EthPeer::get_block_access_lists`],
//! [`EthPeer::get_cells`]) and served from the [`ChainReader`]'s optional hooks.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use alloy_consensus::{
    transaction::PooledTransaction, BlockBody, Header, ReceiptEnvelope, Sealed, TxEnvelope,
};
use alloy_primitives::{Bytes, B256};
use futures::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{mpsc, oneshot};
use tokio::time::{sleep_until, Instant};
use tracing::{debug, trace};

use crate::eth::bal::validate_block_access_lists;
use crate::eth::cells::{
    adapt_announcement, validate_cells, CellMask, Cells, GetCells, MAX_CELLS_HASHES_SERVE,
};
use crate::eth::config::EthConfig;
use crate::eth::error::{EthError, InvalidResponse};
use crate::eth::known::KnownHashes;
use crate::eth::message::{
    decode_block_bodies_encoded, decode_block_headers_hashed, id, name_of, EthMessage, GetBlockHeaders,
    RequestId, RequestPair, Status, TxEncodings, MAX_MESSAGE_SIZE,
};
use crate::eth::receipts70::{Assembled, ReceiptsAssembly};
use crate::eth::responder::{Answer, Responder};
use crate::eth::serve::ChainReader;
use crate::eth::status::{validate_block_range, validate_status};
use crate::eth::txpool::{NoTxPool, TxPool};
use crate::eth::validate::{
    validate_bodies, validate_bodies_encoded, validate_headers, validate_headers_with_hashes,
    validate_pooled_transactions, validate_receipts, Outcome, RequestKind,
};
use crate::eth::version::EthVersion;
use crate::record::PeerId;
use crate::rlpx::{CapMessage, DisconnectReason, Session};

/// Late responses to timed-out requests that are remembered, so they are not reported as
/// unsolicited.
const TIMED_OUT_MEMORY: usize = 64;

/// An RLPx session whose eth `Status` handshake succeeded.
#[derive(Debug)]
pub struct EthSession<S> {
    session: Session<S>,
    cap: usize,
    version: EthVersion,
    remote_status: Status,
    config: EthConfig,
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> EthSession<S> {
    /// Runs the `Status` handshake on `session`: sends ours for the negotiated version and
    /// validates theirs within the handshake timeout. On failure the peer gets a Disconnect
    /// with the error's reason, and the error says how the pool should treat it.
    pub async fn handshake(mut session: Session<S>, config: EthConfig) -> Result<Self, EthError> {
        match Self::exchange_status(&mut session, &config).await {
            Ok((cap, version, remote_status)) => {
                debug!(target: "ethp2p::eth", peer = ?session.remote_id(), %version,
                       network = remote_status.network_id, "status handshake done");
                Ok(Self { session, cap, version, remote_status, config })
            }
            Err(e) => {
                debug!(target: "ethp2p::eth", peer = ?session.remote_id(), error = %e, "status handshake failed");
                if let Some(reason) = e.disconnect_reason() {
                    let _ = session.disconnect(reason).await;
                }
                Err(e)
            }
        }
    }

    async fn exchange_status(
        session: &mut Session<S>,
        config: &EthConfig,
    ) -> Result<(usize, EthVersion, Status), EthError> {
        let cap = session.capability_index("eth").ok_or(EthError::NoSharedVersion)?;
        let version = EthVersion::try_from(session.shared_capabilities()[cap].cap.version as u8)
            .map_err(|_| EthError::NoSharedVersion)?;
        // RLPx negotiated what its configuration offered; the eth configuration has the last
        // word on which versions we speak.
        if !config.versions.contains(&version) {
            return Err(EthError::NoSharedVersion);
        }
        let ours = EthMessage::Status(config.status.status(version));
        session.send(CapMessage::new(cap, id::STATUS, ours.encoded())).await?;
        let theirs = tokio::time::timeout(config.handshake_timeout, async {
            loop {
                let msg = session.next().await.ok_or(EthError::SessionClosed)??;
                if msg.cap != cap {
                    continue;
                }
                if msg.id != id::STATUS {
                    return Err(EthError::MessageBeforeStatus(name_of(msg.id)));
                }
                return match EthMessage::decode(version, msg.id, &msg.data)? {
                    EthMessage::Status(s) => Ok(s),
                    other => Err(EthError::MessageBeforeStatus(other.name())),
                };
            }
        })
        .await
        .map_err(|_| EthError::HandshakeTimeout)??;
        validate_status(version, &config.status, &config.fork_filter, &theirs)?;
        Ok((cap, version, theirs))
    }

    /// The negotiated version.
    pub fn version(&self) -> EthVersion {
        self.version
    }

    /// The peer's `Status`.
    pub fn remote_status(&self) -> &Status {
        &self.remote_status
    }

    /// The peer's id.
    pub fn remote_id(&self) -> PeerId {
        self.session.remote_id()
    }

    /// The client id from the peer's RLPx Hello (e.g. `Geth/v1.15.0-stable/linux-amd64/go1.23`).
    pub fn client_id(&self) -> &str {
        &self.session.remote_hello().client_id
    }

    /// Splits the session into a handle, the task that must be spawned to drive it, and its
    /// event stream. Requests for blocks are answered from `chain`; pooled transactions
    /// from the pool given to [`EthPeerService::with_tx_pool`] (none by default).
    pub fn into_peer(self, chain: Arc<dyn ChainReader>) -> (EthPeer, EthPeerService<S>, EthEvents) {
        let (cmd_tx, cmd_rx) = mpsc::channel(self.config.command_capacity);
        let (ev_tx, ev_rx) = mpsc::channel(self.config.event_capacity);
        let peer = EthPeer {
            commands: cmd_tx,
            peer_id: self.session.remote_id(),
            version: self.version,
            remote_status: self.remote_status,
            request_timeout: self.config.request_timeout,
        };
        let responder = Responder::new(
            chain,
            Arc::new(NoTxPool),
            self.version,
            self.config.serve_concurrency,
            self.config.serve_queue,
        );
        let service = EthPeerService {
            session: self.session,
            cap: self.cap,
            version: self.version,
            responder,
            known: KnownHashes::default(),
            commands: cmd_rx,
            events: ev_tx,
            next_id: 0,
            pending: HashMap::new(),
            timed_out: VecDeque::new(),
        };
        (peer, service, EthEvents { rx: ev_rx })
    }
}

/// What the peer sent or what happened to the session, for its owner (the pool).
#[derive(Debug)]
#[non_exhaustive]
pub enum EthEvent {
    /// An announcement: `NewBlockHashes`, `NewBlock`, `Transactions`,
    /// `NewPooledTransactionHashes` or (eth/69, validated) `BlockRangeUpdate`.
    Announcement(EthMessage),
    /// A request we sent ended (answered, or timed out); the pool scores the peer on the
    /// outcome. Every request sent gets exactly one, even when its caller went away.
    RequestOutcome {
        /// What was asked for.
        kind: RequestKind,
        /// How it ended.
        outcome: Outcome,
    },
    /// A non-fatal offence (an unsolicited or duplicate response): the pool scores it.
    Offence(EthError),
    /// The session ended, with the reason (shared: [`EthPeerService::run`] returns it too).
    Closed(Arc<EthError>),
}

/// The receiving end of a peer's events.
#[derive(Debug)]
pub struct EthEvents {
    rx: mpsc::Receiver<EthEvent>,
}

impl EthEvents {
    /// The next event; `None` once the session task has ended and every event was read.
    pub async fn recv(&mut self) -> Option<EthEvent> {
        self.rx.recv().await
    }
}

/// A request in flight: what it asked for, to validate the response against.
#[derive(Debug)]
enum Request {
    Headers(GetBlockHeaders),
    /// The headers whose bodies are requested, and their hashes.
    Bodies(Vec<Header>, Vec<B256>),
    /// The headers whose receipts are requested, and their hashes.
    Receipts(Vec<Header>, Vec<B256>),
    /// eth/70: the same, assembled across partial answers.
    Receipts70(Box<ReceiptsAssembly>),
    Pooled(Vec<B256>),
    /// eth/71: the headers whose block access lists are requested, and their hashes.
    BlockAccessLists(Vec<Header>, Vec<B256>),
    /// eth/72: blob transactions and the columns asked for.
    Cells(Vec<B256>, CellMask),
}

impl Request {
    fn kind(&self) -> RequestKind {
        match self {
            Self::Headers(_) => RequestKind::BlockHeaders,
            Self::Bodies(..) => RequestKind::BlockBodies,
            Self::Receipts(..) | Self::Receipts70(_) => RequestKind::Receipts,
            Self::Pooled(_) => RequestKind::PooledTransactions,
            Self::BlockAccessLists(..) => RequestKind::BlockAccessLists,
            Self::Cells(..) => RequestKind::Cells,
        }
    }

    fn response_name(&self) -> &'static str {
        match self {
            Self::Headers(_) => "BlockHeaders",
            Self::Bodies(..) => "BlockBodies",
            Self::Receipts(..) | Self::Receipts70(_) => "Receipts",
            Self::Pooled(_) => "PooledTransactions",
            Self::BlockAccessLists(..) => "BlockAccessLists",
            Self::Cells(..) => "Cells",
        }
    }

    fn message(&self, request_id: RequestId) -> EthMessage {
        match self {
            Self::Headers(r) => EthMessage::GetBlockHeaders(RequestPair::new(request_id, *r)),
            Self::Bodies(_, h) => EthMessage::GetBlockBodies(RequestPair::new(request_id, h.clone())),
            Self::Receipts(_, h) => EthMessage::GetReceipts(RequestPair::new(request_id, h.clone())),
            Self::Receipts70(a) => EthMessage::GetReceipts70(a.request(request_id)),
            Self::Pooled(h) => EthMessage::GetPooledTransactions(RequestPair::new(request_id, h.clone())),
            Self::BlockAccessLists(_, h) => {
                EthMessage::GetBlockAccessLists(RequestPair::new(request_id, h.clone()))
            }
            Self::Cells(hashes, cell_mask) => {
                EthMessage::GetCells(GetCells { request_id, hashes: hashes.clone(), cell_mask: *cell_mask })
            }
        }
    }
}

/// A validated response.
#[derive(Debug)]
enum Response {
    Headers(Vec<Sealed<Header>>),
    Bodies(Vec<BlockBody<TxEnvelope>>),
    Receipts(Vec<Vec<ReceiptEnvelope>>),
    Pooled(Vec<PooledTransaction>),
    BlockAccessLists(Vec<Option<Bytes>>),
    Cells(Cells),
}

impl Response {
    /// Items that carry data: a block access list the peer does not have is no item.
    fn len(&self) -> usize {
        match self {
            Self::Headers(v) => v.len(),
            Self::Bodies(v) => v.len(),
            Self::Receipts(v) => v.len(),
            Self::Pooled(v) => v.len(),
            Self::BlockAccessLists(v) => v.iter().flatten().count(),
            Self::Cells(c) => c.hashes.len(),
        }
    }
}

#[derive(Debug)]
enum Command {
    Request { request: Request, timeout: Duration, reply: oneshot::Sender<Result<Response, EthError>> },
    Send(EthMessage),
    Disconnect(DisconnectReason),
}

#[derive(Debug)]
struct Pending {
    request: Request,
    reply: oneshot::Sender<Result<Response, EthError>>,
    sent: Instant,
    deadline: Instant,
    timeout: Duration,
}

/// A cheap, cloneable handle to one peer's eth session.
#[derive(Debug, Clone)]
pub struct EthPeer {
    commands: mpsc::Sender<Command>,
    peer_id: PeerId,
    version: EthVersion,
    remote_status: Status,
    request_timeout: Duration,
}

impl EthPeer {
    /// The peer's id.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }

    /// The negotiated version.
    pub fn version(&self) -> EthVersion {
        self.version
    }

    /// The peer's `Status` from the handshake.
    pub fn remote_status(&self) -> &Status {
        &self.remote_status
    }

    /// A handle with no session behind it, for component tests of its owners: commands
    /// queue in the returned [`DetachedSession`] (drop it to make the session look closed).
    #[cfg(test)]
    pub(crate) fn detached(peer_id: PeerId, version: EthVersion) -> (Self, DetachedSession) {
        use crate::eth::config::{DEFAULT_COMMAND_CAPACITY, DEFAULT_REQUEST_TIMEOUT};
        use crate::eth::message::StatusHead;
        use crate::record::ForkId;
        let (commands, rx) = mpsc::channel(DEFAULT_COMMAND_CAPACITY);
        let remote_status = Status {
            version: version.as_u8(),
            network_id: 1,
            genesis: B256::ZERO,
            fork_id: ForkId::new([0; 4], 0),
            head: StatusHead::TotalDifficulty {
                total_difficulty: alloy_primitives::U256::ZERO,
                best_hash: B256::ZERO,
            },
        };
        let peer =
            Self { commands, peer_id, version, remote_status, request_timeout: DEFAULT_REQUEST_TIMEOUT };
        (peer, DetachedSession(rx))
    }

    /// A handle whose requests time out after `timeout` instead of the session's
    /// [`EthConfig::request_timeout`] (the pool gives each peer a timeout from its measured
    /// round trips). The session task enforces it and reports the timeout as an outcome.
    pub fn with_request_timeout(&self, timeout: Duration) -> Self {
        Self { request_timeout: timeout, ..self.clone() }
    }

    async fn request(&self, request: Request) -> Result<Response, EthError> {
        let (reply, rx) = oneshot::channel();
        let timeout = self.request_timeout;
        self.commands
            .send(Command::Request { request, timeout, reply })
            .await
            .map_err(|_| EthError::SessionClosed)?;
        // The task enforces the timeout and reports it; this bound only guards against a
        // task that stopped without replying.
        match tokio::time::timeout(self.request_timeout * 2, rx).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(EthError::SessionClosed),
            Err(_) => Err(EthError::Timeout),
        }
    }

    /// Headers, validated against the request (count, origin, numbering, links), each sealed
    /// with the hash computed over the bytes received (pass them on to
    /// [`get_block_bodies`](Self::get_block_bodies) and [`get_receipts`](Self::get_receipts)).
    pub async fn get_block_headers(&self, request: GetBlockHeaders) -> Result<Vec<Sealed<Header>>, EthError> {
        match self.request(Request::Headers(request)).await? {
            Response::Headers(h) => Ok(h),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// The bodies of these blocks, validated against the headers' roots. Body `i` belongs
    /// to `headers[i]`; the peer may return fewer.
    pub async fn get_block_bodies(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<Vec<BlockBody<TxEnvelope>>, EthError> {
        let (headers, hashes) = headers.into_iter().map(Sealed::split).unzip();
        match self.request(Request::Bodies(headers, hashes)).await? {
            Response::Bodies(b) => Ok(b),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// The receipts of these blocks, validated against the headers' receipts roots (on
    /// eth/69+ the blooms are recomputed). On eth/70 a list the peer splits is completed from
    /// the same peer before this returns; only whole lists are returned.
    pub async fn get_receipts(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<Vec<Vec<ReceiptEnvelope>>, EthError> {
        let (headers, hashes) = headers.into_iter().map(Sealed::split).unzip();
        let request = if self.version.has_partial_receipts() {
            Request::Receipts70(Box::new(ReceiptsAssembly::new(headers, hashes)))
        } else {
            Request::Receipts(headers, hashes)
        };
        match self.request(request).await? {
            Response::Receipts(r) => Ok(r),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// Transactions from the peer's pool; each must be one that was asked for.
    pub async fn get_pooled_transactions(
        &self,
        hashes: Vec<B256>,
    ) -> Result<Vec<PooledTransaction>, EthError> {
        match self.request(Request::Pooled(hashes)).await? {
            Response::Pooled(t) => Ok(t),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// eth/71 (EIP-8159): the block access lists of these blocks, in order; `None` where the
    /// peer does not have one. Each list returned hashes to its header's
    /// `block_access_list_hash` (a list for a header without one is invalid). The peer may
    /// answer fewer blocks than asked. [`EthError::NotForVersion`] below eth/71.
    pub async fn get_block_access_lists(
        &self,
        headers: Vec<Sealed<Header>>,
    ) -> Result<Vec<Option<Bytes>>, EthError> {
        if !self.version.has_block_access_lists() {
            return Err(EthError::NotForVersion { message: "GetBlockAccessLists", version: self.version });
        }
        let (headers, hashes) = headers.into_iter().map(Sealed::split).unzip();
        match self.request(Request::BlockAccessLists(headers, hashes)).await? {
            Response::BlockAccessLists(l) => Ok(l),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// eth/72 (EIP-8070): the cells of `mask`'s columns for these blob transactions, at most
    /// [`MAX_CELLS_HASHES_SERVE`] (64) per request ([`EthError::RequestTooLarge`] above). The
    /// answer is validated: only transactions and columns asked for, each transaction's
    /// cells a whole number of blobs; the peer may leave transactions and columns out.
    /// [`EthError::NotForVersion`] below eth/72.
    pub async fn get_cells(&self, hashes: Vec<B256>, mask: CellMask) -> Result<Cells, EthError> {
        if !self.version.has_cells() {
            return Err(EthError::NotForVersion { message: "GetCells", version: self.version });
        }
        if hashes.len() > MAX_CELLS_HASHES_SERVE {
            return Err(EthError::RequestTooLarge { max: MAX_CELLS_HASHES_SERVE, got: hashes.len() });
        }
        match self.request(Request::Cells(hashes, mask)).await? {
            Response::Cells(c) => Ok(c),
            _ => Err(EthError::SessionClosed),
        }
    }

    /// Sends an announcement (`NewBlockHashes`, `NewBlock`, `Transactions`,
    /// `NewPooledTransactionHashes`, `BlockRangeUpdate`) if the negotiated version has it.
    /// `NewPooledTransactionHashes` is sent in the version's shape: an eth/68 one goes to an
    /// eth/72 peer with an empty cell mask (we announce no cells we do not hold), an eth/72
    /// one to an older peer without its mask.
    pub async fn announce(&self, message: EthMessage) -> Result<(), EthError> {
        let message = adapt_announcement(message, self.version);
        self.check_announcement(&message)?;
        self.commands.send(Command::Send(message)).await.map_err(|_| EthError::SessionClosed)
    }

    /// Like [`Self::announce`], without waiting: when the session's command queue is full
    /// the message is dropped (a broadcast must not stall on one slow peer) and the error
    /// says so ([`EthError::SessionClosed`] for a full or closed queue).
    pub fn try_announce(&self, message: EthMessage) -> Result<(), EthError> {
        let message = adapt_announcement(message, self.version);
        self.check_announcement(&message)?;
        self.commands.try_send(Command::Send(message)).map_err(|_| EthError::SessionClosed)
    }

    fn check_announcement(&self, message: &EthMessage) -> Result<(), EthError> {
        let is_announcement = matches!(
            message,
            EthMessage::NewBlockHashes(_)
                | EthMessage::NewBlock(_)
                | EthMessage::Transactions(_)
                | EthMessage::NewPooledTransactionHashes66(_)
                | EthMessage::NewPooledTransactionHashes68(_)
                | EthMessage::NewPooledTransactionHashes72(_)
                | EthMessage::BlockRangeUpdate(_)
        );
        if !is_announcement || !message.is_valid_for(self.version) {
            return Err(EthError::NotForVersion { message: message.name(), version: self.version });
        }
        Ok(())
    }

    /// Ends the session with `reason`.
    pub async fn disconnect(&self, reason: DisconnectReason) -> Result<(), EthError> {
        self.commands.send(Command::Disconnect(reason)).await.map_err(|_| EthError::SessionClosed)
    }
}

/// The other end of an [`EthPeer::detached`] handle.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct DetachedSession(mpsc::Receiver<Command>);

#[cfg(test)]
impl DetachedSession {
    /// The messages queued for sending so far (requests and disconnects are skipped).
    pub(crate) fn sent(&mut self) -> Vec<EthMessage> {
        std::iter::from_fn(|| self.0.try_recv().ok())
            .filter_map(|c| match c {
                Command::Send(m) => Some(m),
                _ => None,
            })
            .collect()
    }
}

/// The task that owns one peer's session: run it with `tokio::spawn(service.run())` (or in
/// the owner's `JoinSet`). It ends when the session fails, the peer disconnects, or every
/// [`EthPeer`] handle is dropped (then it sends `ClientQuitting`).
#[derive(Debug)]
pub struct EthPeerService<S> {
    session: Session<S>,
    cap: usize,
    version: EthVersion,
    /// Answers the peer's requests off this task (from the `ChainReader` and `TxPool`).
    responder: Responder,
    /// What the peer has: broadcasts leave it out.
    known: KnownHashes,
    commands: mpsc::Receiver<Command>,
    events: mpsc::Sender<EthEvent>,
    next_id: RequestId,
    pending: HashMap<RequestId, Pending>,
    timed_out: VecDeque<RequestId>,
}

impl std::fmt::Debug for dyn ChainReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ChainReader")
    }
}

/// Whether the loop goes on.
enum Flow {
    Continue,
    Stop(EthError),
}

impl<S: AsyncRead + AsyncWrite + Unpin + Send + 'static> EthPeerService<S> {
    /// Serves the peer's `GetPooledTransactions` from `pool`.
    pub fn with_tx_pool(mut self, pool: Arc<dyn TxPool>) -> Self {
        self.responder.set_tx_pool(pool);
        self
    }

    /// Ends a session that was never run: the peer gets a Disconnect with `reason` (say,
    /// the pool refused it) and nothing else; no request is served or sent.
    pub async fn refuse(mut self, reason: DisconnectReason) {
        let _ = self.session.disconnect(reason).await;
    }

    /// Drives the session until it ends; returns why, after reporting it as
    /// [`EthEvent::Closed`].
    #[tracing::instrument(target = "ethp2p::eth", name = "eth_session", skip_all,
                          fields(peer = ?self.session.remote_id(), version = %self.version))]
    pub async fn run(mut self) -> Arc<EthError> {
        let error = loop {
            let deadline = self.pending.values().map(|p| p.deadline).min();
            let flow = tokio::select! {
                msg = self.session.next() => match msg {
                    Some(Ok(msg)) => self.on_message(msg).await,
                    Some(Err(e)) => Flow::Stop(e.into()),
                    None => Flow::Stop(EthError::SessionClosed),
                },
                cmd = self.commands.recv() => match cmd {
                    Some(cmd) => self.on_command(cmd).await,
                    None => {
                        let _ = self.session.disconnect(DisconnectReason::ClientQuitting).await;
                        Flow::Stop(EthError::SessionClosed)
                    }
                },
                answer = self.responder.next() => match answer {
                    Some(answer) => self.send_answer(answer).await,
                    None => Flow::Continue,
                },
                _ = sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                    self.expire(Instant::now());
                    Flow::Continue
                }
            };
            if let Flow::Stop(e) = flow {
                break e;
            }
        };
        debug!(target: "ethp2p::eth", peer = ?self.session.remote_id(), error = %error, "eth session ended");
        for (_, p) in self.pending.drain() {
            let _ = p.reply.send(Err(EthError::SessionClosed));
        }
        let error = Arc::new(error);
        self.emit(EthEvent::Closed(error.clone()));
        error
    }

    fn emit(&self, event: EthEvent) {
        if let Err(e) = self.events.try_send(event) {
            trace!(target: "ethp2p::eth", peer = ?self.session.remote_id(), "event dropped: {e}");
        }
    }

    async fn send(&mut self, msg: &EthMessage) -> Result<(), EthError> {
        let data = msg.encoded();
        if data.len() > MAX_MESSAGE_SIZE {
            // Our own fault (the serving limits should prevent it); never send it.
            tracing::warn!(target: "ethp2p::eth", size = data.len(), message = msg.name(), "outgoing message too large");
            return Ok(());
        }
        trace!(target: "ethp2p::eth", peer = ?self.session.remote_id(), message = msg.name(), size = data.len(), "send");
        self.session.send(CapMessage::new(self.cap, msg.id(), data)).await?;
        Ok(())
    }

    /// Sends an answer the responder has ready.
    async fn send_answer(&mut self, answer: Answer) -> Flow {
        trace!(target: "ethp2p::eth", peer = ?self.session.remote_id(), message = answer.name,
               size = answer.data.len(), "send");
        match self.session.send(CapMessage::new(self.cap, answer.id, answer.data)).await {
            Ok(()) => Flow::Continue,
            Err(e) => Flow::Stop(e.into()),
        }
    }

    async fn on_command(&mut self, cmd: Command) -> Flow {
        match cmd {
            Command::Request { request, timeout, reply } => {
                let request_id = self.next_id;
                self.next_id = self.next_id.wrapping_add(1);
                let deadline = Instant::now() + timeout;
                self.send_request(request_id, request, reply, deadline, timeout).await
            }
            // What the peer already has is cut out: nothing is echoed or sent twice.
            Command::Send(msg) => match self.known.on_sending(msg) {
                Some(msg) => match self.send(&msg).await {
                    Ok(()) => Flow::Continue,
                    Err(e) => Flow::Stop(e),
                },
                None => Flow::Continue,
            },
            Command::Disconnect(reason) => {
                let _ = self.session.disconnect(reason).await;
                Flow::Stop(EthError::SessionClosed)
            }
        }
    }

    /// Sends the request `kind` calls for now (the first, or an eth/70 continuation) and
    /// waits for its answer until `deadline`.
    async fn send_request(
        &mut self,
        request_id: RequestId,
        request: Request,
        reply: oneshot::Sender<Result<Response, EthError>>,
        deadline: Instant,
        timeout: Duration,
    ) -> Flow {
        let msg = request.message(request_id);
        if let Err(e) = self.send(&msg).await {
            let _ = reply.send(Err(EthError::SessionClosed));
            return Flow::Stop(e);
        }
        let sent = Instant::now();
        self.pending.insert(request_id, Pending { request, reply, sent, deadline, timeout });
        Flow::Continue
    }

    fn expire(&mut self, now: Instant) {
        let expired: Vec<RequestId> =
            self.pending.iter().filter(|(_, p)| p.deadline <= now).map(|(id, _)| *id).collect();
        for request_id in expired {
            if let Some(p) = self.pending.remove(&request_id) {
                let _ = p.reply.send(Err(EthError::Timeout));
                self.emit(EthEvent::RequestOutcome {
                    kind: p.request.kind(),
                    outcome: Outcome::Timeout { after: p.timeout },
                });
                if self.timed_out.len() == TIMED_OUT_MEMORY {
                    self.timed_out.pop_front();
                }
                self.timed_out.push_back(request_id);
            }
        }
    }

    async fn on_message(&mut self, msg: CapMessage) -> Flow {
        if msg.cap != self.cap {
            return Flow::Continue;
        }
        let size = msg.data.len();
        // Responses whose checks hash what was received take a decoder that keeps it.
        if msg.id == id::BLOCK_HEADERS {
            return match decode_block_headers_hashed(&msg.data) {
                Ok((pair, hashes)) => {
                    self.on_response(EthMessage::BlockHeaders(pair), Received::HeaderHashes(hashes), size);
                    Flow::Continue
                }
                Err(e) => self.fatal(e.into()).await,
            };
        }
        if msg.id == id::BLOCK_BODIES {
            return match decode_block_bodies_encoded(&msg.data) {
                Ok((pair, encodings)) => {
                    self.on_response(EthMessage::BlockBodies(pair), Received::TxEncodings(encodings), size);
                    Flow::Continue
                }
                Err(e) => self.fatal(e.into()).await,
            };
        }
        let decoded = match EthMessage::decode(self.version, msg.id, &msg.data) {
            Ok(m) => m,
            Err(e) => return self.fatal(e.into()).await,
        };
        trace!(target: "ethp2p::eth", peer = ?self.session.remote_id(), message = decoded.name(), size, "recv");
        match decoded {
            EthMessage::Status(_) => self.fatal(EthError::StatusAfterHandshake).await,
            request @ (EthMessage::GetBlockHeaders(_)
            | EthMessage::GetBlockBodies(_)
            | EthMessage::GetReceipts(_)
            | EthMessage::GetReceipts70(_)
            | EthMessage::GetPooledTransactions(_)
            | EthMessage::GetBlockAccessLists(_)
            | EthMessage::GetCells(_)
            | EthMessage::GetNodeData(_)) => {
                // Answered off this task; `run` sends the answer when it is ready.
                self.responder.on_request(request);
                Flow::Continue
            }
            EthMessage::BlockRangeUpdate(range) => match validate_block_range(&range) {
                Ok(()) => {
                    self.emit(EthEvent::Announcement(EthMessage::BlockRangeUpdate(range)));
                    Flow::Continue
                }
                Err(e) => self.fatal(e.into()).await,
            },
            response @ (EthMessage::BlockHeaders(_)
            | EthMessage::BlockBodies(_)
            | EthMessage::Receipts(_)
            | EthMessage::Receipts70(_)
            | EthMessage::PooledTransactions(_)
            | EthMessage::BlockAccessLists(_)
            | EthMessage::Cells(_)
            | EthMessage::NodeData(_)) => {
                self.known.on_received(&response);
                match self.on_response(response, Received::Nothing, size) {
                    Some((request_id, Pending { request, reply, deadline, timeout, .. })) => {
                        self.send_request(request_id, request, reply, deadline, timeout).await
                    }
                    None => Flow::Continue,
                }
            }
            announcement => {
                self.known.on_received(&announcement);
                self.emit(EthEvent::Announcement(announcement));
                Flow::Continue
            }
        }
    }

    /// Hands a response to its request's caller, or returns the request if it goes on (an
    /// eth/70 receipts request whose last list is incomplete).
    fn on_response(
        &mut self,
        response: EthMessage,
        received: Received<'_>,
        size: usize,
    ) -> Option<(RequestId, Pending)> {
        let request_id = response.request_id()?;
        let Some(mut pending) = self.pending.remove(&request_id) else {
            if self.timed_out.contains(&request_id) {
                debug!(target: "ethp2p::eth", peer = ?self.session.remote_id(), request_id, "late response");
            } else {
                self.emit(EthEvent::Offence(EthError::UnsolicitedResponse {
                    message: response.name(),
                    request_id,
                }));
            }
            return None;
        };
        let rtt = pending.sent.elapsed();
        let result = match (&mut pending.request, response) {
            (Request::Receipts70(assembly), EthMessage::Receipts70(r)) => {
                let lists = r.receipts.len();
                match assembly.on_response(r) {
                    Ok(Assembled::Continue) => {
                        trace!(target: "ethp2p::eth", peer = ?self.session.remote_id(), request_id, lists,
                               "partial receipts, asking for the rest");
                        let outcome = Outcome::Valid { rtt, size, items: lists };
                        self.emit(EthEvent::RequestOutcome { kind: pending.request.kind(), outcome });
                        return Some((request_id, pending));
                    }
                    Ok(_) => {
                        let whole = std::mem::replace(&mut **assembly, ReceiptsAssembly::new(vec![], vec![]));
                        Ok(Response::Receipts(whole.into_receipts()))
                    }
                    Err(e) => Err(e),
                }
            }
            (request, response) => check_response(request, response, received),
        };
        let outcome = match &result {
            Ok(r) if r.len() == 0 => Outcome::Empty { rtt },
            Ok(r) => Outcome::Valid { rtt, size, items: r.len() },
            Err(reason) => {
                debug!(target: "ethp2p::eth", peer = ?self.session.remote_id(), request_id,
                       request = pending.request.kind().as_str(), %reason, "invalid response");
                Outcome::Invalid { reason: reason.clone(), rtt, size }
            }
        };
        self.emit(EthEvent::RequestOutcome { kind: pending.request.kind(), outcome });
        let _ = pending.reply.send(result.map_err(EthError::from));
        None
    }

    async fn fatal(&mut self, error: EthError) -> Flow {
        if let Some(reason) = error.disconnect_reason() {
            let _ = self.session.disconnect(reason).await;
        }
        Flow::Stop(error)
    }
}

/// Matches a response to the request's kind and validates it.
/// What a response's decoder kept from the received bytes, to spare the checks re-encoding.
enum Received<'a> {
    Nothing,
    HeaderHashes(Vec<B256>),
    TxEncodings(TxEncodings<'a>),
}

fn check_response(
    kind: &Request,
    response: EthMessage,
    received: Received<'_>,
) -> Result<Response, InvalidResponse> {
    let wrong =
        |got: &EthMessage| InvalidResponse::WrongKind { expected: kind.response_name(), got: got.name() };
    match (kind, response) {
        (Request::Headers(req), EthMessage::BlockHeaders(p)) => {
            let hashes = match received {
                Received::HeaderHashes(hashes) => {
                    validate_headers_with_hashes(req, &p.message, &hashes)?;
                    hashes
                }
                _ => validate_headers(req, &p.message)?,
            };
            Ok(Response::Headers(
                p.message.into_iter().zip(hashes).map(|(h, s)| Sealed::new_unchecked(h, s)).collect(),
            ))
        }
        (Request::Bodies(headers, _), EthMessage::BlockBodies(p)) => {
            match received {
                Received::TxEncodings(encodings) => validate_bodies_encoded(headers, &p.message, &encodings)?,
                _ => validate_bodies(headers, &p.message)?,
            }
            Ok(Response::Bodies(p.message))
        }
        (Request::Receipts(headers, _), EthMessage::Receipts(p)) => {
            let receipts = p.message.into_envelopes();
            validate_receipts(headers, &receipts)?;
            Ok(Response::Receipts(receipts))
        }
        (Request::Pooled(hashes), EthMessage::PooledTransactions(p)) => {
            validate_pooled_transactions(hashes, &p.message)?;
            Ok(Response::Pooled(p.message))
        }
        (Request::BlockAccessLists(headers, _), EthMessage::BlockAccessLists(r)) => {
            validate_block_access_lists(headers, &r.lists)?;
            Ok(Response::BlockAccessLists(r.lists))
        }
        (Request::Cells(hashes, mask), EthMessage::Cells(c)) => {
            validate_cells(hashes, *mask, &c)?;
            Ok(Response::Cells(c))
        }
        (_, other) => Err(wrong(&other)),
    }
}

//! [`Session`]: the p2p base protocol over an [`EciesStream`], and the TCP entry points
//! [`dial`] and [`RlpxListener`].
//!
//! A session is polled by its owner (the eth layer's per-peer task). While polled it answers
//! Pings, sends its own every `ping_interval`, and fails with `PingTimeout` or `IdleTimeout`
//! when the peer goes quiet. p2p messages never reach the owner; capability messages do, as
//! [`CapMessage`]s with ids relative to their capability.

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    task::{ready, Context, Poll},
    time::Duration,
};

use alloy_rlp::{Decodable, Encodable};
use bytes::Bytes;
use futures::{Sink, SinkExt, Stream, StreamExt};
use tokio::{
    io::{AsyncRead, AsyncWrite},
    net::{TcpListener, TcpStream},
    sync::{mpsc, Semaphore},
    task::JoinSet,
    time::{sleep, Instant, Sleep},
};
use tracing::{debug, trace};

use super::{
    p2p::{negotiate, split_id, BASE_PROTOCOL_LENGTH, MAX_DECOMPRESSED_SIZE, MAX_P2P_MESSAGE_SIZE},
    CapMessage, DisconnectReason, EciesStream, Hello, P2PMessage, RlpxConfig, RlpxError, SharedCapability,
    BASE_PROTOCOL_VERSION,
};
use crate::{
    record::{Enode, PeerId},
    NodeKey,
};

/// geth `p2p/peer.go` `discWriteTimeout`: how long we try to deliver our Disconnect.
const DISCONNECT_WRITE_TIMEOUT: Duration = Duration::from_secs(1);
/// Completed inbound sessions waiting for `RlpxListener::accept`.
const ACCEPT_QUEUE: usize = 16;

/// An established RLPx session: authenticated, Hello exchanged, capabilities negotiated.
///
/// It is a `Stream` of incoming [`CapMessage`]s and a `Sink` of outgoing ones. The stream
/// ends with an error when the session fails (including a Disconnect from the peer, which
/// gives [`RlpxError::Disconnected`] with its reason) and with `None` when the peer closes
/// the connection. Keepalive runs only while the stream is polled, so the owner should poll
/// it continuously (a `select!` loop with its own command channel is the intended shape).
///
/// ```no_run
/// use ethp2p::rlpx::{dial, CapMessage, DisconnectReason, Protocol, RlpxConfig};
/// use futures::{SinkExt, StreamExt};
/// # async fn run(enode: ethp2p::Enode, key: ethp2p::NodeKey) -> Result<(), ethp2p::rlpx::RlpxError> {
/// let config = RlpxConfig::builder().protocol(Protocol::eth(68)).protocol(Protocol::eth(69)).build()?;
/// let mut session = dial(&enode, &key, &config).await?;
/// let eth = session.capability_index("eth").expect("negotiation guarantees one shared capability");
/// println!("{} speaks {}", session.remote_hello().client_id, session.shared_capabilities()[eth].cap);
/// session.send(CapMessage::new(eth, 0x00, vec![0xc0])).await?; // eth Status (payload elided)
/// while let Some(msg) = session.next().await {
///     let msg = msg?; // Err(Disconnected(reason)), PingTimeout, ...: the session is over
///     if msg.id == 0x00 {
///         break; // the peer's Status
///     }
/// }
/// session.disconnect(DisconnectReason::ClientQuitting).await
/// # }
/// ```
pub struct Session<S = TcpStream> {
    inner: EciesStream<S>,
    remote_hello: Hello,
    shared: Vec<SharedCapability>,
    snappy: bool,
    remote_addr: Option<SocketAddr>,
    encoder: snap::raw::Encoder,
    decoder: snap::raw::Decoder,
    /// Reused buffer for outgoing frame payloads (id + compressed data).
    out: Vec<u8>,
    pong_due: bool,
    ping_due: bool,
    awaiting_pong: bool,
    ping_timer: Pin<Box<Sleep>>,
    pong_timer: Pin<Box<Sleep>>,
    idle_timer: Pin<Box<Sleep>>,
    ping_interval: Duration,
    ping_timeout: Duration,
    idle_timeout: Duration,
    closed: bool,
}

impl<S> std::fmt::Debug for Session<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("remote_id", &self.inner.remote_id())
            .field("remote_addr", &self.remote_addr)
            .field("client_id", &self.remote_hello.client_id)
            .field("shared", &self.shared)
            .finish_non_exhaustive()
    }
}

/// Dials `enode` over TCP and runs the RLPx and Hello handshakes, within the configured
/// connect and handshake timeouts.
pub async fn dial(enode: &Enode, key: &NodeKey, config: &RlpxConfig) -> Result<Session, RlpxError> {
    let addr = enode.tcp_addr();
    let tcp = tokio::time::timeout(config.connect_timeout, TcpStream::connect(addr))
        .await
        .map_err(|_| RlpxError::ConnectTimeout)??;
    tcp.set_nodelay(true)?;
    let mut session = Session::outgoing(tcp, key, enode.peer_id, config).await?;
    session.remote_addr = Some(addr);
    Ok(session)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Runs the initiator's handshakes (ECIES, then Hello) with `remote` over `io`, within
    /// `config.handshake_timeout`.
    pub async fn outgoing(
        io: S,
        key: &NodeKey,
        remote: PeerId,
        config: &RlpxConfig,
    ) -> Result<Self, RlpxError> {
        tokio::time::timeout(config.handshake_timeout, async {
            let stream = EciesStream::connect(io, key, remote).await?;
            Self::hello(stream, key, config).await
        })
        .await
        .map_err(|_| RlpxError::HandshakeTimeout)?
    }

    /// Runs the recipient's handshakes over `io`, within `config.handshake_timeout`.
    pub async fn incoming(io: S, key: &NodeKey, config: &RlpxConfig) -> Result<Self, RlpxError> {
        Self::incoming_from(io, key, config, |_| true).await
    }

    /// [`Self::incoming`], refusing the remote's key right after its auth packet is
    /// decrypted when `admit` says no (see [`EciesStream::accept_from`]).
    pub async fn incoming_from(
        io: S,
        key: &NodeKey,
        config: &RlpxConfig,
        admit: impl FnOnce(&PeerId) -> bool,
    ) -> Result<Self, RlpxError> {
        tokio::time::timeout(config.handshake_timeout, async {
            let stream = EciesStream::accept_from(io, key, admit).await?;
            Self::hello(stream, key, config).await
        })
        .await
        .map_err(|_| RlpxError::HandshakeTimeout)?
    }

    /// The Hello exchange on an authenticated stream: both sides send Hello at once; the
    /// first message from the peer must be Hello (or Disconnect).
    pub async fn hello(
        mut stream: EciesStream<S>,
        key: &NodeKey,
        config: &RlpxConfig,
    ) -> Result<Self, RlpxError> {
        let ours = Hello {
            protocol_version: BASE_PROTOCOL_VERSION,
            client_id: config.client_id.clone(),
            capabilities: config.protocols.iter().map(|p| p.cap.clone()).collect(),
            port: config.listen_port,
            id: key.peer_id(),
        };
        stream.send(&P2PMessage::Hello(ours).encode(false)[..]).await?;
        let frame = stream.next().await.ok_or(RlpxError::ClosedDuringHandshake)??;
        let (hello, shared) = match check_hello(&frame, stream.remote_id(), key.peer_id(), config) {
            Ok(ok) => ok,
            Err(e) => {
                if let Some(reason) = hello_disconnect_reason(&e) {
                    // Once a Hello of version 5 has been read, geth has switched to snappy
                    // (`doProtoHandshake`), so a Disconnect for a check after decoding (identity,
                    // capabilities) must be compressed; one for an undecodable Hello must not.
                    let snappy = matches!(
                        P2PMessage::decode(&frame, false),
                        Ok(P2PMessage::Hello(ref h)) if h.protocol_version >= 5
                    );
                    let disconnect = P2PMessage::Disconnect(reason).encode(snappy);
                    let _ =
                        tokio::time::timeout(DISCONNECT_WRITE_TIMEOUT, stream.send(&disconnect[..])).await;
                }
                return Err(e);
            }
        };
        let snappy = hello.protocol_version >= 5;
        debug!(target: "ethp2p::rlpx", peer = ?stream.remote_id(), client = %hello.client_id,
               caps = ?shared.iter().map(|s| s.cap.to_string()).collect::<Vec<_>>(), "session established");
        let now = Instant::now();
        Ok(Self {
            inner: stream,
            remote_hello: hello,
            shared,
            snappy,
            remote_addr: None,
            encoder: snap::raw::Encoder::new(),
            decoder: snap::raw::Decoder::new(),
            out: Vec::new(),
            pong_due: false,
            ping_due: false,
            awaiting_pong: false,
            ping_timer: Box::pin(tokio::time::sleep_until(now + config.ping_interval)),
            pong_timer: Box::pin(tokio::time::sleep_until(now + config.ping_interval + config.ping_timeout)),
            idle_timer: Box::pin(tokio::time::sleep_until(now + config.idle_timeout)),
            ping_interval: config.ping_interval,
            ping_timeout: config.ping_timeout,
            idle_timeout: config.idle_timeout,
            closed: false,
        })
    }
}

/// The Disconnect we send when the peer's Hello is refused: the one go-ethereum sends
/// (`p2p/transport.go` `close` writes one only for a `DiscReason`). A first message that is
/// not a Hello, too large, or not decodable is a plain error in geth's
/// `readProtocolHandshake`: the connection is closed without a Disconnect. A node id that is
/// not 64 bytes is `DiscInvalidIdentity` (0x07). A Hello whose capabilities we cannot use,
/// however long their names, is `DiscUselessPeer` (geth decodes any name, then matches none).
fn hello_disconnect_reason(error: &RlpxError) -> Option<DisconnectReason> {
    match error {
        RlpxError::HelloExpected(_)
        | RlpxError::P2pMessageTooLarge(_)
        | RlpxError::DecompressedTooLarge(_)
        | RlpxError::Snappy(_)
        | RlpxError::Rlp(_)
        | RlpxError::UnknownMessageId(_) => None,
        RlpxError::BadNodeIdLength(_) => Some(DisconnectReason::NullNodeIdentity),
        RlpxError::CapabilityNameTooLong(_) => Some(DisconnectReason::UselessPeer),
        other => other.disconnect_reason(),
    }
}

/// Checks the peer's first message: it must be a Hello from the key that authenticated,
/// with a usable version and at least one shared capability.
fn check_hello(
    frame: &[u8],
    remote_id: PeerId,
    local_id: PeerId,
    config: &RlpxConfig,
) -> Result<(Hello, Vec<SharedCapability>), RlpxError> {
    let id = u64::decode(&mut &frame[..])?;
    if id >= BASE_PROTOCOL_LENGTH {
        return Err(RlpxError::HelloExpected(id));
    }
    let hello = match P2PMessage::decode(frame, false)? {
        P2PMessage::Hello(hello) => hello,
        // Before Hello nobody should compress, but some clients do; decode tolerates both.
        P2PMessage::Disconnect(reason) => return Err(RlpxError::Disconnected(reason)),
        _ => return Err(RlpxError::HelloExpected(id)),
    };
    if hello.id != remote_id {
        return Err(RlpxError::UnexpectedIdentity);
    }
    if remote_id == local_id {
        return Err(RlpxError::ConnectedToSelf);
    }
    // Version 4 (no snappy) is still understood; nothing older was ever deployed.
    if hello.protocol_version < 4 {
        return Err(RlpxError::IncompatibleVersion(hello.protocol_version));
    }
    let shared = negotiate(&config.protocols, &hello.capabilities);
    if shared.is_empty() {
        return Err(RlpxError::NoSharedCapabilities);
    }
    Ok((hello, shared))
}

impl<S> Session<S> {
    /// The remote's node id, proven by the ECIES handshake.
    pub fn remote_id(&self) -> PeerId {
        self.inner.remote_id()
    }

    /// The remote's Hello (client id, capabilities, listen port).
    pub fn remote_hello(&self) -> &Hello {
        &self.remote_hello
    }

    /// The negotiated capabilities, in message-id order; [`CapMessage::cap`] indexes this.
    pub fn shared_capabilities(&self) -> &[SharedCapability] {
        &self.shared
    }

    /// The index of the negotiated capability called `name`, if any.
    pub fn capability_index(&self, name: &str) -> Option<usize> {
        self.shared.iter().position(|s| s.cap.name == name)
    }

    /// The remote's socket address, for sessions made by [`dial`] or [`RlpxListener`].
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// Whether messages are snappy-compressed (both Hellos had version 5 or more).
    pub fn is_snappy(&self) -> bool {
        self.snappy
    }

    /// The capability message carried by a frame whose p2p id is `id`.
    fn cap_message(&mut self, id: u64, mut frame: bytes::BytesMut) -> Result<CapMessage, RlpxError> {
        let (cap, shared) = self
            .shared
            .iter()
            .enumerate()
            .find(|(_, s)| id >= s.offset && id < s.offset + s.messages as u64)
            .ok_or(RlpxError::UnknownMessageId(id))?;
        let rel = (id - shared.offset) as u8;
        let data = if self.snappy {
            // Check the declared size before allocating anything for it.
            let len = snap::raw::decompress_len(&frame)?;
            if len > MAX_DECOMPRESSED_SIZE {
                return Err(RlpxError::DecompressedTooLarge(len));
            }
            let mut out = vec![0u8; len];
            let n = self.decoder.decompress(&frame, &mut out)?;
            out.truncate(n);
            Bytes::from(out)
        } else {
            frame.split().freeze()
        };
        Ok(CapMessage { cap, id: rel, data })
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// Sends Disconnect with `reason` (best effort, for at most 1 s) and closes the
    /// connection. The session yields nothing after this.
    pub async fn disconnect(&mut self, reason: DisconnectReason) -> Result<(), RlpxError> {
        if self.closed {
            return Ok(());
        }
        self.closed = true;
        let frame = P2PMessage::Disconnect(reason).encode(self.snappy);
        debug!(target: "ethp2p::rlpx", peer = ?self.remote_id(), %reason, "disconnecting");
        let inner = &mut self.inner;
        let result = tokio::time::timeout(DISCONNECT_WRITE_TIMEOUT, async {
            inner.send(&frame[..]).await?;
            SinkExt::<&[u8]>::close(inner).await
        })
        .await;
        match result {
            Ok(r) => r,
            Err(_) => Ok(()),
        }
    }

    /// Runs the keepalive timers and queues/sends Ping and Pong.
    fn poll_keepalive(&mut self, cx: &mut Context<'_>) -> Result<(), RlpxError> {
        if self.awaiting_pong && self.pong_timer.as_mut().poll(cx).is_ready() {
            return Err(RlpxError::PingTimeout);
        }
        if self.ping_timer.as_mut().poll(cx).is_ready() {
            let now = Instant::now();
            self.ping_timer.as_mut().reset(now + self.ping_interval);
            let _ = self.ping_timer.as_mut().poll(cx);
            if !self.awaiting_pong {
                self.ping_due = true;
                self.awaiting_pong = true;
                self.pong_timer.as_mut().reset(now + self.ping_timeout);
                let _ = self.pong_timer.as_mut().poll(cx);
            }
        }
        while self.ping_due || self.pong_due {
            match Sink::<&[u8]>::poll_ready(Pin::new(&mut self.inner), cx) {
                Poll::Ready(Ok(())) => {}
                Poll::Ready(Err(e)) => return Err(e),
                Poll::Pending => return Ok(()),
            }
            let msg = if self.pong_due {
                self.pong_due = false;
                P2PMessage::Pong
            } else {
                self.ping_due = false;
                P2PMessage::Ping
            };
            trace!(target: "ethp2p::rlpx", peer = ?self.remote_id(), ?msg, "keepalive");
            Pin::new(&mut self.inner).start_send(&msg.encode(self.snappy)[..])?;
            if let Poll::Ready(Err(e)) = Sink::<&[u8]>::poll_flush(Pin::new(&mut self.inner), cx) {
                return Err(e);
            }
        }
        Ok(())
    }

    /// Handles one incoming frame: p2p messages internally, capability messages out.
    fn on_frame(&mut self, mut frame: bytes::BytesMut) -> Result<Option<CapMessage>, RlpxError> {
        let now = Instant::now();
        self.idle_timer.as_mut().reset(now + self.idle_timeout);
        let id = split_id(&mut frame)?;
        if id >= BASE_PROTOCOL_LENGTH {
            return self.cap_message(id, frame).map(Some);
        }
        if frame.len() > MAX_P2P_MESSAGE_SIZE {
            return Err(RlpxError::P2pMessageTooLarge(frame.len()));
        }
        match id {
            0x00 => Err(RlpxError::UnexpectedHello),
            0x01 => Err(RlpxError::Disconnected(DisconnectReason::decode(&frame, self.snappy)?)),
            0x02 => {
                self.pong_due = true;
                Ok(None)
            }
            0x03 => {
                self.awaiting_pong = false;
                Ok(None)
            }
            // Reserved p2p ids: geth and reth ignore them, and so do we.
            _ => Ok(None),
        }
    }

    /// Ends the session with `error`: tells the peer why, if the error has a reason and the
    /// connection can still carry it, without waiting for it to be delivered.
    fn fail(&mut self, error: RlpxError) -> Poll<Option<Result<CapMessage, RlpxError>>> {
        self.closed = true;
        let waker = futures::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        if let Some(reason) = error.disconnect_reason() {
            let frame = P2PMessage::Disconnect(reason).encode(self.snappy);
            if let Poll::Ready(Ok(())) = Sink::<&[u8]>::poll_ready(Pin::new(&mut self.inner), &mut cx) {
                let _ = Pin::new(&mut self.inner).start_send(&frame[..]);
            }
        }
        // Flush and close our side without waiting, so the peer sees the end even while the
        // owner still holds the session.
        let _ = Sink::<&[u8]>::poll_close(Pin::new(&mut self.inner), &mut cx);
        debug!(target: "ethp2p::rlpx", peer = ?self.remote_id(), %error, "session failed");
        Poll::Ready(Some(Err(error)))
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for Session<S> {
    type Item = Result<CapMessage, RlpxError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.closed {
            return Poll::Ready(None);
        }
        if let Err(e) = this.poll_keepalive(cx) {
            return this.fail(e);
        }
        loop {
            match Pin::new(&mut this.inner).poll_next(cx) {
                Poll::Ready(Some(Ok(frame))) => match this.on_frame(frame) {
                    Ok(Some(msg)) => return Poll::Ready(Some(Ok(msg))),
                    Ok(None) => {
                        if let Err(e) = this.poll_keepalive(cx) {
                            return this.fail(e);
                        }
                    }
                    Err(RlpxError::Disconnected(reason)) => {
                        this.closed = true;
                        let waker = futures::task::noop_waker();
                        let _ = Sink::<&[u8]>::poll_close(
                            Pin::new(&mut this.inner),
                            &mut Context::from_waker(&waker),
                        );
                        debug!(target: "ethp2p::rlpx", peer = ?this.remote_id(), %reason, "peer disconnected");
                        return Poll::Ready(Some(Err(RlpxError::Disconnected(reason))));
                    }
                    Err(e) => return this.fail(e),
                },
                Poll::Ready(Some(Err(e))) => return this.fail(e),
                Poll::Ready(None) => {
                    this.closed = true;
                    return Poll::Ready(None);
                }
                Poll::Pending => break,
            }
        }
        if this.idle_timer.as_mut().poll(cx).is_ready() {
            return this.fail(RlpxError::IdleTimeout);
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<CapMessage> for Session<S> {
    type Error = RlpxError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        if self.closed {
            return Poll::Ready(Err(RlpxError::Closed));
        }
        Sink::<&[u8]>::poll_ready(Pin::new(&mut self.inner), cx)
    }

    fn start_send(self: Pin<&mut Self>, msg: CapMessage) -> Result<(), RlpxError> {
        let this = self.get_mut();
        let shared = this.shared.get(msg.cap).filter(|s| msg.id < s.messages);
        let Some(shared) = shared else {
            return Err(RlpxError::InvalidSend { cap: msg.cap, id: msg.id });
        };
        let id = shared.offset + msg.id as u64;
        this.out.clear();
        id.encode(&mut this.out);
        if this.snappy {
            let start = this.out.len();
            this.out.resize(start + snap::raw::max_compress_len(msg.data.len()), 0);
            let n = this.encoder.compress(&msg.data, &mut this.out[start..])?;
            this.out.truncate(start + n);
        } else {
            this.out.extend_from_slice(&msg.data);
        }
        Pin::new(&mut this.inner).start_send(&this.out[..])
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<&[u8]>::poll_flush(Pin::new(&mut self.inner), cx)
    }

    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        ready!(Sink::<&[u8]>::poll_close(Pin::new(&mut self.inner), cx))?;
        self.closed = true;
        Poll::Ready(Ok(()))
    }
}

/// An inbound connection whose handshake failed.
#[derive(Debug)]
pub struct InboundError {
    /// Where it came from.
    pub addr: SocketAddr,
    /// Why it failed.
    pub error: RlpxError,
}

#[derive(Debug, Default)]
struct ListenerStats {
    rejected: AtomicU64,
}

/// Accepts RLPx connections, running at most `max_pending_handshakes` handshakes at once.
///
/// A task owns the TCP listener and the handshakes; connections beyond the cap are closed as
/// soon as they are accepted, so a flood of half-open connections costs at most the cap in
/// sockets and memory. Dropping the listener stops the task and every pending handshake.
#[derive(Debug)]
pub struct RlpxListener {
    local_addr: SocketAddr,
    incoming: mpsc::Receiver<Result<Session, InboundError>>,
    permits: Arc<Semaphore>,
    max_pending: usize,
    stats: Arc<ListenerStats>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for RlpxListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl RlpxListener {
    /// Binds `addr` (port 0 picks a free one) and starts accepting.
    pub async fn bind(addr: SocketAddr, key: NodeKey, config: RlpxConfig) -> Result<Self, RlpxError> {
        let listener = TcpListener::bind(addr).await?;
        let local_addr = listener.local_addr()?;
        let (tx, incoming) = mpsc::channel(ACCEPT_QUEUE);
        let permits = Arc::new(Semaphore::new(config.max_pending_handshakes));
        let stats = Arc::new(ListenerStats::default());
        let task =
            tokio::spawn(accept_loop(listener, key, config.clone(), tx, permits.clone(), stats.clone()));
        Ok(Self { local_addr, incoming, permits, max_pending: config.max_pending_handshakes, stats, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The next inbound session, or the failure of an inbound handshake (useful to the pool
    /// for per-IP accounting). `None` once the listener's task has stopped.
    pub async fn accept(&mut self) -> Option<Result<Session, InboundError>> {
        self.incoming.recv().await
    }

    /// Handshakes running now, plus finished sessions not yet taken by `accept`.
    pub fn pending_handshakes(&self) -> usize {
        self.max_pending - self.permits.available_permits()
    }

    /// Connections closed at once because `max_pending_handshakes` were already running.
    pub fn rejected(&self) -> u64 {
        self.stats.rejected.load(Ordering::Relaxed)
    }
}

async fn accept_loop(
    listener: TcpListener,
    key: NodeKey,
    config: RlpxConfig,
    tx: mpsc::Sender<Result<Session, InboundError>>,
    permits: Arc<Semaphore>,
    stats: Arc<ListenerStats>,
) {
    let key = Arc::new(key);
    let config = Arc::new(config);
    let mut handshakes = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let (tcp, addr) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        // Out of file descriptors and the like: a local fault. Pause briefly
                        // instead of spinning on the error.
                        tracing::warn!(target: "ethp2p::rlpx", error = %e, "accept failed");
                        sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                };
                let Ok(permit) = permits.clone().try_acquire_owned() else {
                    stats.rejected.fetch_add(1, Ordering::Relaxed);
                    trace!(target: "ethp2p::rlpx", %addr, "pending handshake cap reached; closing");
                    drop(tcp);
                    continue;
                };
                let (key, config, tx) = (key.clone(), config.clone(), tx.clone());
                handshakes.spawn(async move {
                    let _ = tcp.set_nodelay(true);
                    match Session::incoming(tcp, &key, &config).await {
                        Ok(mut session) => {
                            session.remote_addr = Some(addr);
                            // The permit is held until the owner takes the session, so
                            // unaccepted sessions count against the cap too.
                            let _ = tx.send(Ok(session)).await;
                            drop(permit);
                        }
                        Err(error) => {
                            drop(permit);
                            trace!(target: "ethp2p::rlpx", %addr, %error, "inbound handshake failed");
                            // Informational: dropped if the owner is not keeping up.
                            let _ = tx.try_send(Err(InboundError { addr, error }));
                        }
                    }
                });
            }
            Some(_) = handshakes.join_next(), if !handshakes.is_empty() => {}
        }
    }
}

#[cfg(test)]
mod tests;

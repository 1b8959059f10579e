//! [`EciesStream`]: the typestate step from an unauthenticated byte stream to an
//! authenticated, encrypted frame stream.

use std::{
    pin::Pin,
    task::{Context, Poll},
};

use bytes::{Bytes, BytesMut};
use futures::{Sink, Stream};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio_util::codec::Framed;
use tracing::trace;

use super::{
    codec::RlpxCodec,
    ecies::{packet_len, Handshake, PacketKind},
    RlpxError,
};
use crate::{record::PeerId, NodeKey};

/// An authenticated RLPx connection: a `Stream` of frame payloads and a `Sink` of them.
///
/// The only ways to get one are [`EciesStream::connect`] and [`EciesStream::accept`], which
/// consume the raw stream and run the handshake, so a frame can never be sent unencrypted.
#[derive(Debug)]
pub struct EciesStream<S> {
    inner: Framed<S, RlpxCodec>,
    remote_id: PeerId,
}

impl<S: AsyncRead + AsyncWrite + Unpin> EciesStream<S> {
    /// Runs the initiator's side of the handshake with `remote` over `io`.
    pub async fn connect(mut io: S, key: &NodeKey, remote: PeerId) -> Result<Self, RlpxError> {
        let mut hs = Handshake::initiator(key.secret(), &remote)?;
        io.write_all(&hs.create_auth()).await?;
        io.flush().await?;
        let ack = read_packet(&mut io, PacketKind::Ack).await?;
        hs.read_ack(&ack)?;
        trace!(target: "ethp2p::rlpx", ?remote, "ECIES handshake done (initiator)");
        Ok(Self { inner: Framed::new(io, RlpxCodec::new(hs.secrets()?)), remote_id: remote })
    }

    /// Runs the recipient's side of the handshake over `io`; the remote's id comes from its
    /// auth packet.
    pub async fn accept(io: S, key: &NodeKey) -> Result<Self, RlpxError> {
        Self::accept_from(io, key, |_| true).await
    }

    /// [`Self::accept`], asking `admit` about the remote's id as soon as its auth packet is
    /// decrypted: a key it refuses gets no ack ([`RlpxError::Shunned`]), so no session keys
    /// are derived and no Hello or `Status` is exchanged. The id is inside the ECIES
    /// envelope, so this is the earliest a key can be refused (an IP can be refused before
    /// any of it).
    pub async fn accept_from(
        mut io: S,
        key: &NodeKey,
        admit: impl FnOnce(&PeerId) -> bool,
    ) -> Result<Self, RlpxError> {
        let mut hs = Handshake::recipient(key.secret());
        let auth = read_packet(&mut io, PacketKind::Auth).await?;
        let remote = hs.read_auth(&auth)?;
        if !admit(&remote) {
            trace!(target: "ethp2p::rlpx", ?remote, "auth from a shunned key: closed without an ack");
            return Err(RlpxError::Shunned);
        }
        io.write_all(&hs.create_ack()?).await?;
        io.flush().await?;
        trace!(target: "ethp2p::rlpx", ?remote, "ECIES handshake done (recipient)");
        Ok(Self { inner: Framed::new(io, RlpxCodec::new(hs.secrets()?)), remote_id: remote })
    }
}

impl<S> EciesStream<S> {
    /// The remote's id, proven by the handshake.
    pub fn remote_id(&self) -> PeerId {
        self.remote_id
    }

    /// The underlying byte stream.
    pub fn get_ref(&self) -> &S {
        self.inner.get_ref()
    }
}

/// Reads exactly one auth or ack packet: two bytes decide the length, the rest is read with
/// `read_exact`, so nothing after the packet is consumed.
async fn read_packet<S: AsyncRead + Unpin>(io: &mut S, kind: PacketKind) -> Result<Vec<u8>, RlpxError> {
    let eof = |e: std::io::Error| {
        if e.kind() == std::io::ErrorKind::UnexpectedEof {
            RlpxError::ClosedDuringHandshake
        } else {
            RlpxError::Io(e)
        }
    };
    let mut prefix = [0u8; 2];
    io.read_exact(&mut prefix).await.map_err(eof)?;
    let len = packet_len(kind, prefix)?;
    let mut packet = vec![0u8; len];
    packet[..2].copy_from_slice(&prefix);
    io.read_exact(&mut packet[2..]).await.map_err(eof)?;
    Ok(packet)
}

impl<S: AsyncRead + AsyncWrite + Unpin> Stream for EciesStream<S> {
    type Item = Result<BytesMut, RlpxError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.inner).poll_next(cx)
    }
}

impl<'a, S: AsyncRead + AsyncWrite + Unpin> Sink<&'a [u8]> for EciesStream<S> {
    type Error = RlpxError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<&'a [u8]>::poll_ready(Pin::new(&mut self.inner), cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: &'a [u8]) -> Result<(), RlpxError> {
        Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<&'a [u8]>::poll_flush(Pin::new(&mut self.inner), cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<&'a [u8]>::poll_close(Pin::new(&mut self.inner), cx)
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Sink<Bytes> for EciesStream<S> {
    type Error = RlpxError;

    fn poll_ready(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<Bytes>::poll_ready(Pin::new(&mut self.inner), cx)
    }
    fn start_send(mut self: Pin<&mut Self>, item: Bytes) -> Result<(), RlpxError> {
        Pin::new(&mut self.inner).start_send(item)
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<Bytes>::poll_flush(Pin::new(&mut self.inner), cx)
    }
    fn poll_close(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), RlpxError>> {
        Sink::<Bytes>::poll_close(Pin::new(&mut self.inner), cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::{SinkExt, StreamExt};

    #[tokio::test]
    async fn duplex_handshake_and_frames() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
        let kb_id = kb.peer_id();
        let (ra, rb) = tokio::join!(EciesStream::connect(a, &ka, kb_id), EciesStream::accept(b, &kb));
        let (mut a, mut b) = (ra.unwrap(), rb.unwrap());
        assert_eq!(b.remote_id(), ka.peer_id());
        assert_eq!(a.remote_id(), kb.peer_id());
        a.send(Bytes::from_static(b"hello")).await.unwrap();
        b.send(&b"world"[..]).await.unwrap();
        assert_eq!(&b.next().await.unwrap().unwrap()[..], b"hello");
        assert_eq!(&a.next().await.unwrap().unwrap()[..], b"world");
    }

    #[tokio::test]
    async fn garbage_instead_of_auth() {
        let (mut a, b) = tokio::io::duplex(64 * 1024);
        let kb = NodeKey::generate();
        let server = tokio::spawn(async move { EciesStream::accept(b, &kb).await });
        a.write_all(&[0x01; 400]).await.unwrap();
        let err = server.await.unwrap().unwrap_err();
        assert!(matches!(err, RlpxError::Ecies(_)), "{err}");
        assert!(!err.should_ban());
    }

    #[tokio::test]
    async fn dialing_the_wrong_key_fails() {
        let (a, b) = tokio::io::duplex(64 * 1024);
        let (ka, kb) = (NodeKey::generate(), NodeKey::generate());
        let wrong = NodeKey::generate().peer_id();
        let (ra, rb) = tokio::join!(EciesStream::connect(a, &ka, wrong), EciesStream::accept(b, &kb));
        assert!(matches!(rb.unwrap_err(), RlpxError::Ecies(crate::rlpx::EciesError::BadTag)));
        assert!(matches!(ra.unwrap_err(), RlpxError::ClosedDuringHandshake));
    }
}

//! RLPx: the encrypted transport every devp2p session runs over, and the p2p base protocol.
//!
//! Layers, lowest first:
//!
//! - `Handshake` (sans-IO): the ECIES auth/ack exchange (EIP-8, pre-EIP-8 accepted) and the
//!   derivation of the frame secrets.
//! - `RlpxCodec`: the frame codec (AES-256-CTR + keccak MACs) as a `tokio_util` codec.
//! - `EciesStream`: consumes an unauthenticated `AsyncRead + AsyncWrite`, runs the
//!   handshake and yields an authenticated frame stream.
//!
//! These three are the crate's own (public with the `test-utils` feature, for benches, fuzz
//! targets and tests that speak raw RLPx).
//! - [`Session`]: the p2p base protocol on top (Hello, capability negotiation, snappy,
//!   Ping/Pong, Disconnect). It is a `Stream` of [`CapMessage`]s and a `Sink` of them; the
//!   eth layer builds on it.
//! - [`dial`] and [`RlpxListener`]: TCP with the timeouts and the pending-handshake cap of
//!   [`RlpxConfig`].
//!
//! No task owns a session: the `Session` is polled by whoever holds it (the eth layer's
//! session task), so its state has exactly one owner. Only the listener runs its own task,
//! which accepts TCP connections and runs at most `max_pending_handshakes` handshakes.

mod codec;
mod config;
mod ecies;
mod error;
mod mac;
mod p2p;
mod session;
mod stream;

pub use codec::MAX_FRAME_SIZE;
pub_with_test_utils!(codec::RlpxCodec);
pub use config::{
    RlpxConfig, RlpxConfigBuilder, DEFAULT_CONNECT_TIMEOUT, DEFAULT_HANDSHAKE_TIMEOUT, DEFAULT_IDLE_TIMEOUT,
    DEFAULT_MAX_PENDING_HANDSHAKES, DEFAULT_PING_INTERVAL, DEFAULT_PING_TIMEOUT,
};
pub_with_test_utils!(ecies::{encrypt_to, packet_len, Handshake, PacketKind, Secrets});
pub use error::{Backoff, EciesError, RlpxError};
pub use p2p::{
    negotiate, CapMessage, Capability, DisconnectReason, Hello, P2PMessage, Protocol, SharedCapability,
    BASE_PROTOCOL_VERSION, MAX_DECOMPRESSED_SIZE, MAX_P2P_MESSAGE_SIZE,
};
pub use session::{dial, InboundError, RlpxListener, Session};
pub_with_test_utils!(stream::EciesStream);

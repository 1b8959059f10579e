//! What the discv4 core reports: events for the service, the fate of each datagram, and
//! counters.

#![cfg_attr(not(any(test, feature = "test-utils")), allow(unreachable_pub, dead_code))]

use std::net::{IpAddr, SocketAddr};

#[cfg(doc)]
use super::Discv4Core;
use super::{
    proto::{Message, NodeRecord},
    PacketError,
};
use crate::record::{Candidate, Enr, PeerId};

/// Identifies a command whose answer arrives later as a [`CoreEvent`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct RequestId(pub u64);

/// What the core reports.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CoreEvent {
    /// A node proved its endpoint and entered the table (or its record changed).
    Discovered(Candidate),
    /// A lookup ended.
    LookupFinished {
        /// The command that started it; `None` for self and random lookups.
        request: Option<RequestId>,
        /// The nodes closest to the target that answered, closest first.
        closest: Vec<NodeRecord>,
        /// The hop at which the target key itself was first seen (0 = already in our table).
        target_hop: Option<u32>,
        /// FindNode queries that were answered.
        queries: u32,
    },
    /// Answer to [`Discv4Core::ping`]: the node's ENR seq from its PONG, or `Err` on timeout.
    PingResult {
        /// The command.
        request: RequestId,
        /// `Ok(enr_seq)` or `Err(())` on timeout.
        result: Result<Option<u64>, ()>,
    },
    /// Answer to [`Discv4Core::request_enr`].
    EnrResult {
        /// The command.
        request: RequestId,
        /// The verified record, or `None` on timeout.
        enr: Option<Enr>,
    },
    /// A majority of recent PONGs now says our external IP is this.
    ExternalIp(IpAddr),
    /// A node sent us a verified request (PING, or FINDNODE / ENRRequest once bonded).
    /// Only reported after [`Discv4Core::report_contacts`]`(true)`.
    Contacted {
        /// Its key, recovered from the packet's signature.
        peer: PeerId,
        /// The datagram's source.
        from: SocketAddr,
        /// The TCP port its PING claims (none for other requests, or when it claims 0).
        tcp_port: Option<u16>,
    },
}

/// A datagram the core wants sent (see [`Discv4Core::poll_outgoing`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outgoing {
    /// Where to.
    pub addr: SocketAddr,
    /// What.
    pub payload: Payload,
}

/// The contents of an [`Outgoing`] datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    /// A signed packet (a request: the core keeps its hash).
    Signed(Vec<u8>),
    /// A reply to sign with our key before sending (`proto::encode`).
    Unsigned(Message),
}

/// What [`Discv4Core::handle_datagram`] did with a datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Inbound {
    /// A valid discv4 packet, processed.
    Handled,
    /// Not a discv4 packet (no valid discv4 hash, or too short or too large to have one).
    Foreign,
    /// A discv4 packet that was dropped, and why.
    Dropped(DropReason),
}

/// Why a discv4 packet was dropped. Each is counted in [`Discv4Stats`].
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum DropReason {
    /// Malformed or badly signed.
    Malformed(PacketError),
    /// Its expiration has passed.
    Expired,
    /// A reply we did not ask for (or from another key or IP than we asked).
    Unsolicited,
    /// A request from an endpoint that has not proved itself.
    NotBonded,
    /// Over the per-IP rate.
    RateLimited,
    /// Source outside `netrestrict`.
    Restricted,
    /// Sent with our own key (a reflection).
    FromSelf,
}

/// Counters since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Discv4Stats {
    /// Valid discv4 packets received.
    pub packets_in: u64,
    /// Datagrams sent.
    pub packets_out: u64,
    /// Bytes received in valid packets.
    pub bytes_in: u64,
    /// Bytes sent.
    pub bytes_out: u64,
    /// Datagrams that were not discv4 (no valid hash). With a shared port these are what
    /// neither discv5 nor discv4 could decode.
    pub foreign: u64,
    /// Malformed or badly signed packets.
    pub malformed: u64,
    /// Expired packets.
    pub expired: u64,
    /// Replies nobody asked for.
    pub unsolicited: u64,
    /// Requests from endpoints without a valid proof.
    pub not_bonded: u64,
    /// Requests over the per-IP rate.
    pub rate_limited: u64,
    /// Packets from outside `netrestrict`.
    pub restricted: u64,
    /// Live table entries.
    pub table_len: u64,
    /// Candidates reported.
    pub candidates: u64,
    /// Candidates dropped because the candidate stream's reader lagged (service only).
    pub candidates_dropped: u64,
    /// Datagrams over 1,280 bytes, dropped unread (service only; on Linux the kernel drops
    /// them first, counted in `DiscoveryStats::socket_drops`).
    pub oversize: u64,
    /// Datagrams shed because their IP was over its packet rate (service only).
    pub shed_ip: u64,
    /// Datagrams shed because their /24 or /48 was over its packet rate (service only).
    pub shed_subnet: u64,
    /// Datagrams shed because the port was over its ingest budget (service only).
    pub shed_global: u64,
    /// Contacts dropped because the [`Contacts`](crate::discovery::Contacts) reader lagged
    /// (service only).
    pub contacts_dropped: u64,
    /// Datagrams dropped because the signature workers' queues were full (service only).
    pub crypto_busy: u64,
    /// Datagrams from quiet sources taken past a full worker queue, through its quiet lane
    /// (service only; handled, so not a drop).
    pub quiet_lane: u64,
    /// Packets decoded by a worker but dropped because the service task was behind (service
    /// only).
    pub verified_dropped: u64,
}

impl Discv4Stats {
    /// Every datagram the core was given, whatever became of it.
    pub fn datagrams_in(&self) -> u64 {
        self.packets_in
            + self.foreign
            + self.malformed
            + self.expired
            + self.unsolicited
            + self.not_bonded
            + self.rate_limited
            + self.restricted
            + self.oversize
            + self.shed()
            + self.crypto_busy
            + self.verified_dropped
    }

    /// Datagrams shed by the ingest budgets, whatever the reason.
    pub fn shed(&self) -> u64 {
        self.shed_ip + self.shed_subnet + self.shed_global
    }
}

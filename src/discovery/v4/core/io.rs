//! What enters and leaves the core: datagrams in, in one step ([`Discv4Core::handle_datagram`])
//! or in two around a signature recovery done elsewhere ([`Discv4Core::precheck`], then
//! [`Discv4Core::handle_decoded`]); datagrams out, signed ([`Discv4Core::poll_transmit`]) or
//! left for the caller to sign ([`Discv4Core::poll_outgoing`]).
//!
//! Why two steps: the signature recovery of a packet and the signature of a reply are ~90% of
//! the work of a PING→PONG (BENCHMARKS.md, `discv4_load`). Neither needs the core's state, so
//! the service runs both on worker threads and keeps the core, the only owner of the table,
//! on its task. What the core must remember of a packet it sends is its hash (a PONG quotes
//! its PING's, an ENRResponse its request's), and the hash covers the signature: so the
//! core signs its requests itself and leaves only its replies (PONG, NEIGHBOURS,
//! ENRResponse), the bulk of what a busy node sends, unsigned.

use std::{
    net::{IpAddr, SocketAddr},
    time::Instant,
};

use alloy_primitives::B256;

use super::{canonical_addr, Discv4Core, RateBucket, TARGET};
use crate::discovery::v4::{
    event::{DropReason, Inbound, Outgoing, Payload},
    proto::{self, Message, Packet},
    PacketError,
};

impl Discv4Core {
    /// The next datagram to send, signed with our key.
    pub fn poll_transmit(&mut self) -> Option<(SocketAddr, Vec<u8>)> {
        let Outgoing { addr, payload } = self.outbox.pop_front()?;
        let bytes = match payload {
            Payload::Signed(bytes) => bytes,
            Payload::Unsigned(message) => proto::encode(&message, self.local.key().secret()).0,
        };
        Some((addr, bytes))
    }

    /// The next datagram to send, where replies are left unsigned for the caller to sign with
    /// our key (`proto::encode`), off the core's thread. Packets must go out in the order
    /// given to each address: a PONG comes before the PING that follows it.
    pub fn poll_outgoing(&mut self) -> Option<Outgoing> {
        self.outbox.pop_front()
    }

    /// Queues a signed datagram.
    pub(super) fn transmit(&mut self, addr: SocketAddr, bytes: Vec<u8>) {
        self.stats.packets_out += 1;
        self.stats.bytes_out += bytes.len() as u64;
        self.outbox.push_back(Outgoing { addr, payload: Payload::Signed(bytes) });
    }

    /// Signs and queues a request, whose hash the answer will quote.
    pub(super) fn send(&mut self, addr: SocketAddr, message: &Message) -> B256 {
        let (bytes, hash) = proto::encode(message, self.local.key().secret());
        tracing::trace!(target: TARGET, %addr, kind = message.name(), "send");
        self.transmit(addr, bytes);
        hash
    }

    /// Queues a reply unsigned: nothing of it needs remembering, so it can be signed later,
    /// elsewhere.
    pub(super) fn reply(&mut self, addr: SocketAddr, message: Message) {
        tracing::trace!(target: TARGET, %addr, kind = message.name(), "send");
        self.stats.packets_out += 1;
        self.stats.bytes_out += message.packet_len() as u64;
        self.outbox.push_back(Outgoing { addr, payload: Payload::Unsigned(message) });
    }

    /// Whether `ip` has a request left in its bucket (refilled to `now`), without
    /// spending it: checked before the signature recovery, spent only after it (see
    /// [`Self::charge_request`]).
    fn request_allowed(&mut self, ip: IpAddr, now: Instant) -> bool {
        let Some(rate) = self.config.reply_rate_per_ip else { return true };
        let rate = f64::from(rate);
        let burst = rate * 2.0;
        let bucket = self.limiter.get_or_insert_mut(ip, || RateBucket { tokens: burst, last: now });
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
        bucket.last = now;
        bucket.tokens >= 1.0
    }

    /// Spends one request of `ip`'s bucket: only for a request whose signature checked
    /// out, so junk spoofed from a victim's address cannot use up the victim's replies.
    fn charge_request(&mut self, ip: IpAddr) {
        if let Some(bucket) = self.limiter.get_mut(&ip) {
            bucket.tokens = (bucket.tokens - 1.0).max(0.0);
        }
    }

    /// Processes one datagram from `from` (its real source address): [`Self::precheck`],
    /// the hash and signature checks, then [`Self::handle_decoded`], all on this thread.
    pub fn handle_datagram(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Inbound {
        let hash = match proto::check_hash(bytes) {
            Ok(hash) => hash,
            Err(e) => return self.handle_decoded(now, from, bytes.len(), Err(e)),
        };
        if let Some(dropped) = self.precheck(now, from, bytes) {
            return dropped;
        }
        let decoded = proto::decode_checked(bytes, hash);
        self.handle_decoded(now, from, bytes.len(), decoded)
    }

    /// The checks worth making before a datagram's signature is recovered: its source is
    /// within `netrestrict`, and a request's IP has replies left (peeked, not spent: see
    /// [`Self::charge_request`]). `None` when the datagram should go on to
    /// `proto::decode` and then [`Self::handle_decoded`]; otherwise it was dropped (and
    /// counted), and this says why.
    pub fn precheck(&mut self, now: Instant, from: SocketAddr, bytes: &[u8]) -> Option<Inbound> {
        let from = canonical_addr(from);
        let outcome = if !self.config.netrestrict.allows(&from.ip()) {
            Err(DropReason::Restricted)
        } else if is_request(proto::packet_type(bytes)) && !self.request_allowed(from.ip(), now) {
            // Read before the hash is checked: a junk datagram that claims to be a request
            // from an IP over its rate is dropped a little early, which costs nobody.
            Err(DropReason::RateLimited)
        } else {
            return None;
        };
        Some(self.count(from, bytes.len(), outcome))
    }

    /// Processes a datagram of `len` bytes from `from` that passed [`Self::precheck`], given
    /// what `proto::decode` made of it: a hash error means it was not discv4 at all.
    pub fn handle_decoded(
        &mut self,
        now: Instant,
        from: SocketAddr,
        len: usize,
        decoded: Result<Packet, PacketError>,
    ) -> Inbound {
        let from = canonical_addr(from);
        let outcome = match decoded {
            Ok(packet) => self.handle_packet(now, from, packet),
            // What the core cannot parse (too short, too large, wrong hash) it counts as
            // `foreign` and drops: with a shared port discv5 has already tried it.
            Err(PacketError::TooShort(_) | PacketError::TooLarge(_) | PacketError::HashMismatch) => {
                self.stats.foreign += 1;
                return Inbound::Foreign;
            }
            Err(e) => Err(DropReason::Malformed(e)),
        };
        self.count(from, len, outcome)
    }

    fn count(&mut self, from: SocketAddr, len: usize, outcome: Result<(), DropReason>) -> Inbound {
        match outcome {
            Ok(()) => {
                self.stats.packets_in += 1;
                self.stats.bytes_in += len as u64;
                Inbound::Handled
            }
            Err(drop) => {
                match drop {
                    DropReason::Malformed(_) | DropReason::FromSelf => self.stats.malformed += 1,
                    DropReason::Expired => self.stats.expired += 1,
                    DropReason::Unsolicited => self.stats.unsolicited += 1,
                    DropReason::NotBonded => self.stats.not_bonded += 1,
                    DropReason::RateLimited => self.stats.rate_limited += 1,
                    DropReason::Restricted => self.stats.restricted += 1,
                }
                tracing::trace!(target: TARGET, %from, ?drop, "dropped");
                Inbound::Dropped(drop)
            }
        }
    }

    fn handle_packet(&mut self, now: Instant, from: SocketAddr, packet: Packet) -> Result<(), DropReason> {
        let Packet { message, peer_id, hash } = packet;
        if !self.config.netrestrict.allows(&from.ip()) {
            return Err(DropReason::Restricted);
        }
        // The signature checked out: now the request is charged. Checked again first, since
        // with the recovery on a worker other requests of this IP may have been charged
        // since the precheck.
        if is_request(Some(message.packet_type())) {
            if !self.request_allowed(from.ip(), now) {
                return Err(DropReason::RateLimited);
            }
            self.charge_request(from.ip());
        }
        if peer_id == self.peer_id {
            return Err(DropReason::FromSelf);
        }
        if let Some(expiration) = message.expiration() {
            if proto::is_expired(expiration, self.unix_now(now)) {
                return Err(DropReason::Expired);
            }
        }
        tracing::trace!(target: TARGET, %from, kind = message.name(), "recv");
        match message {
            Message::Ping(ping) => self.on_ping(now, from, peer_id, hash, ping),
            Message::Pong(pong) => self.on_pong(now, from, peer_id, pong),
            Message::FindNode(find) => self.on_findnode(now, from, peer_id, find),
            Message::Neighbours(neighbours) => self.on_neighbours(now, from, peer_id, neighbours),
            Message::EnrRequest(_) => self.on_enr_request(now, from, peer_id, hash),
            Message::EnrResponse(response) => self.on_enr_response(now, from, peer_id, response),
        }
    }
}

/// PING, FINDNODE and ENRRequest: the packets that make us answer, charged to the sender's
/// reply budget.
fn is_request(packet_type: Option<u8>) -> bool {
    matches!(packet_type, Some(0x01 | 0x03 | 0x05))
}

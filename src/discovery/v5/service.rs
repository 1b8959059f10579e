//! The task that owns the `discv5::Discv5` instance: its construction from our config, the
//! random lookups and their pace, and the turning of records into candidates.

use std::{
    net::{IpAddr, SocketAddr},
    num::NonZeroUsize,
    sync::{atomic::Ordering, Arc},
    time::Duration,
};

use discv5::NodeContact;
use enr::{CombinedPublicKey, NodeId as Discv5NodeId};
use tokio::{net::UdpSocket, sync::mpsc, task::JoinSet, time::Instant};
use tracing::{debug, trace};

use super::{
    bump,
    config::{check_bootnode, check_enode},
    filter::table_filter_for,
    Candidates, Command, Counters, Discv5, Discv5Config, COMMAND_CAPACITY,
};
use crate::{
    discovery::{
        budget::{SessionCap, V5_SESSION_BAN},
        contact::{Contact, ContactProtocol, ContactSink},
        socket::Sockets,
        v4::Datagram,
        Candidate, CandidateSource, Discv5Error, EthEntry,
    },
    record::{public_key_of, Enode, Enr, LocalEnr, NodeId},
};

/// The discv5 contact of an enode: its key and UDP endpoint, without a record.
fn enode_contact(enode: &Enode) -> Result<NodeContact, Discv5Error> {
    let public = public_key_of(&enode.peer_id).ok_or(Discv5Error::BootnodeUnreachable(enode.node_id()))?;
    let key = enr::k256::ecdsa::VerifyingKey::from_sec1_bytes(&public.serialize())
        .map_err(|_| Discv5Error::BootnodeUnreachable(enode.node_id()))?;
    Ok(NodeContact::new(CombinedPublicKey::from(key), enode.udp_addr(), None))
}

/// The TALKREQ protocol name used to open a session with an enode bootnode. Nobody serves
/// it; the empty answer is enough, as the session is what we want.
const SESSION_OPENER_PROTOCOL: &[u8] = b"ethp2p-hello";

impl Discv5 {
    pub(super) async fn spawn(
        discv5: discv5::Discv5,
        local_addr: SocketAddr,
        local_enr: LocalEnr,
        config: Discv5Config,
        unrecognized: Option<mpsc::Sender<Datagram>>,
        session_cap: SessionCap,
    ) -> Result<(Self, Candidates), Discv5Error> {
        local_enr.share_with(discv5.external_enr());
        let events = discv5.event_stream().await.map_err(|e| Discv5Error::Start(e.to_string()))?;
        let mut added = std::collections::HashSet::new();
        for enr in &config.bootnodes {
            // `build()` checked reachability and netrestrict; the table filter agrees with
            // netrestrict's class, so a refusal here is a full bucket, which cannot happen in
            // an empty table.
            if let Err(reason) = discv5.add_enr(enr.clone()) {
                return Err(Discv5Error::BootnodeRejected(NodeId::from(enr.node_id().raw()), reason));
            }
            added.insert(enr.node_id());
        }
        let (commands, command_rx) = mpsc::channel(COMMAND_CAPACITY);
        let (candidate_tx, candidate_rx) = mpsc::channel(config.candidate_capacity);
        let counters = Arc::new(Counters::default());
        let seen = lru::LruCache::new(NonZeroUsize::new(config.seen_capacity).unwrap_or(NonZeroUsize::MIN));
        let mut service = Discv5Service {
            local_id: local_enr.node_id(),
            discv5,
            config,
            local_enr: local_enr.clone(),
            counters: counters.clone(),
            candidates: candidate_tx,
            seen,
            lookups: JoinSet::new(),
            pace: LookupPace::default(),
            probes: JoinSet::new(),
            unrecognized,
            session_cap,
            contacts: ContactSink::default(),
            added,
        };
        for enode in service.config.bootnode_enodes.clone() {
            service.open_session(&enode)?;
        }
        tokio::spawn(service.run(command_rx, events));
        debug!(target: "ethp2p::discv5", %local_addr, node_id = %local_enr.node_id(), "discv5 started");
        Ok((Self { commands, counters, local_addr, local_enr }, Candidates { rx: candidate_rx }))
    }
}

/// Builds the `discv5` crate's configuration from ours, on `socket`. This and
/// [`start_protocol`] are the only places that construct discv5.
///
/// discv5 gets the socket through `ListenConfig::FromSockets`: it spawns its own receive
/// task on it (and a send task), so whoever else uses the socket must only send on it. Its
/// packet filter (rate limits per IP) stays off, as by default: it would run before a
/// datagram is known to be discv5 and so throttle discv4 too. Its ban list does apply to
/// every datagram; we only ban IPs outside netrestrict, which discv4 drops as well.
///
/// With two sockets (dual stack) discv5 reads both and sends each packet on the socket of its
/// destination's family (`IpMode::DualStack`: a record with both `ip` and `ip6` is contacted
/// over IPv6, as the crate prefers).
pub(super) fn protocol_config(config: &Discv5Config, sockets: &Sockets) -> discv5::Config {
    let (ipv4, ipv6) = sockets.by_family();
    let listen = discv5::ListenConfig::FromSockets { ipv4, ipv6 };
    let mut builder = discv5::ConfigBuilder::new(listen);
    builder.table_filter(table_filter_for(&config.netrestrict));
    if !config.enr_update {
        builder.disable_enr_update();
    }
    builder.ping_interval(config.ping_interval);
    builder.build()
}

/// Creates and starts the discv5 protocol with our record and a ready `discv5::Config`.
pub(super) async fn start_protocol(
    local_enr: &LocalEnr,
    protocol: discv5::Config,
) -> Result<discv5::Discv5, discv5::Error> {
    let mut discv5 = discv5::Discv5::new(local_enr.record(), local_enr.key().to_combined_key(), protocol)
        .map_err(discv5::Error::Custom)?;
    discv5.start().await?;
    Ok(discv5)
}

/// Binds the UDP socket discv5 will own. An IPv6 address binds an IPv6-only socket, as
/// discv5 does when it binds its own: IPv4 peers are reached through an IPv4 listen address.
pub(super) async fn bind(addr: SocketAddr) -> Result<Arc<UdpSocket>, Discv5Error> {
    let err = |e: std::io::Error| Discv5Error::Bind(addr, e.to_string());
    let socket =
        crate::discovery::socket::bind_udp(addr, Some(crate::discovery::socket::DEFAULT_SOCKET_BUFFER))
            .map_err(err)?;
    Ok(Arc::new(socket))
}

/// Writes the bound address into our record where the record has none: the UDP port
/// always, the IP when it is a specific one.
pub(super) fn record_listen_addr(local_enr: &LocalEnr, addr: SocketAddr) -> Result<(), Discv5Error> {
    let content = local_enr.content();
    let (has_ip, has_udp) = match addr.ip() {
        IpAddr::V4(_) => (content.ip4.is_some(), content.udp4.is_some()),
        IpAddr::V6(_) => (content.ip6.is_some(), content.udp6.is_some()),
    };
    local_enr
        .update(|c| {
            let specific = !addr.ip().is_unspecified();
            match addr.ip() {
                IpAddr::V4(ip) => {
                    if !has_ip && specific {
                        c.ip4 = Some(ip);
                    }
                    if !has_udp {
                        c.udp4 = Some(addr.port());
                    }
                }
                IpAddr::V6(ip) => {
                    if !has_ip && specific {
                        c.ip6 = Some(ip);
                    }
                    if !has_udp {
                        c.udp6 = Some(addr.port());
                    }
                }
            }
        })
        .map(|_| ())
        .map_err(Discv5Error::Enr)
}

/// The pace of the service's random lookups (a pure core: it sees each lookup's outcome and
/// returns the pause before the next one, counted from the start of the one that ended).
///
/// The first [`Discv5Config::bootstrap_lookups`] lookups are the bootstrap phase, meant to
/// fill the table quickly; after it, one lookup every [`Discv5Config::lookup_interval`]
/// keeps the table fresh. A bootstrap lookup that learned no new record doubles the pause
/// (2 s, 4 s, … up to `lookup_interval`) and one that learned something restores the
/// bootstrap pace, as the node's demand lookups do. Once the table holds what the network
/// can tell us, the remaining fast lookups learn nothing, yet each one costs the peers it
/// asks a NODES answer and us a signature check of every record in it. In `benches/pool.rs`
/// (100 nodes in one process on two cores) those checks were 80% of the CPU time and, at the
/// fixed 2 s pace, kept both cores busy for the first ~95 s, 35 s after the peer counts had
/// settled; with the backoff, for ~23 s.
#[derive(Debug, Default)]
struct LookupPace {
    /// Lookups ended so far.
    done: u32,
    /// Bootstrap lookups in a row that learned nothing new.
    fruitless: u32,
}

impl LookupPace {
    fn after_lookup(&mut self, learned: bool, config: &Discv5Config) -> Duration {
        self.done = self.done.saturating_add(1);
        if self.done > config.bootstrap_lookups {
            return config.lookup_interval;
        }
        self.fruitless = if learned { 0 } else { self.fruitless.saturating_add(1) };
        let ceiling = config.lookup_interval.max(config.bootstrap_lookup_interval);
        // 2^16 × any bootstrap interval worth having is past any sane `lookup_interval`.
        config.bootstrap_lookup_interval.saturating_mul(1 << self.fruitless.min(16)).min(ceiling)
    }
}

/// The task that owns the `discv5::Discv5` instance.
struct Discv5Service {
    /// Our node id, computed once: deriving it from the key is a scalar multiplication,
    /// too slow to repeat for every record considered.
    local_id: NodeId,
    discv5: discv5::Discv5,
    config: Discv5Config,
    local_enr: LocalEnr,
    counters: Arc<Counters>,
    candidates: mpsc::Sender<Candidate>,
    /// Last sequence number emitted per node, to emit each record once.
    seen: lru::LruCache<NodeId, u64>,
    /// The running random lookup (one at a time); dropping the service aborts it.
    lookups: JoinSet<Result<Vec<Enr>, discv5::QueryError>>,
    /// The pause after each random lookup.
    pace: LookupPace,
    /// Requests whose answer discv5 handles itself: TALKREQs that open sessions with enode
    /// bootnodes, and PINGs that revalidate new table entries. Each ends with discv5's
    /// request timeout at the latest.
    probes: JoinSet<()>,
    /// Where datagrams discv5 cannot decode go: discv4's queue, when it shares the port.
    unrecognized: Option<mpsc::Sender<Datagram>>,
    /// New sessions per IP (see `discovery::budget`): an IP over the cap is banned.
    session_cap: SessionCap,
    /// Who listens for nodes that contact us, if anyone.
    contacts: ContactSink,
    /// Records we put into the table ourselves (bootnodes, `add_enr`): discv5 files them as
    /// incoming, so their table direction says nothing about who called whom.
    added: std::collections::HashSet<Discv5NodeId>,
}

impl Discv5Service {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, mut events: mpsc::Receiver<discv5::Event>) {
        let mut next_lookup = Instant::now();
        // When the running random lookup started, and the records learned by then.
        let mut running = (next_lookup, 0);
        let mut shutdown_reply = None;
        loop {
            tokio::select! {
                command = commands.recv() => match command {
                    Some(Command::Shutdown(reply)) => {
                        shutdown_reply = Some(reply);
                        break;
                    }
                    Some(command) => self.on_command(command),
                    // Every handle is gone: nobody can ask for a shutdown any more.
                    None => break,
                },
                Some(event) = events.recv() => self.on_event(event),
                // One random lookup at a time; the next one is scheduled when it ends, from
                // what it learned.
                () = tokio::time::sleep_until(next_lookup),
                    if self.config.random_lookups && self.lookups.is_empty() => {
                    let target = Discv5NodeId::random();
                    trace!(target: "ethp2p::discv5", %target, "random lookup");
                    self.lookups.spawn(self.discv5.find_node(target));
                    running = (Instant::now(), self.counters.discovered.load(Ordering::Relaxed));
                }
                Some(_) = self.probes.join_next() => {}
                Some(done) = self.lookups.join_next() => {
                    bump(&self.counters.lookups);
                    match done {
                        Ok(Ok(enrs)) => {
                            for enr in &enrs {
                                self.consider(enr);
                            }
                        }
                        Ok(Err(e)) => debug!(target: "ethp2p::discv5", error = ?e, "lookup failed"),
                        Err(e) => debug!(target: "ethp2p::discv5", error = %e, "lookup task ended"),
                    }
                    // Its `Discovered` events and its result went through `consider`, which
                    // counts each new (node, seq) once.
                    let learned = self.counters.discovered.load(Ordering::Relaxed) > running.1;
                    let pause = self.pace.after_lookup(learned, &self.config);
                    trace!(target: "ethp2p::discv5", learned, ?pause, "random lookup done");
                    next_lookup = running.0 + pause;
                }
            }
        }
        self.lookups.shutdown().await;
        self.probes.shutdown().await;
        self.discv5.shutdown();
        debug!(target: "ethp2p::discv5", "discv5 stopped");
        if let Some(reply) = shutdown_reply {
            let _ = reply.send(());
        }
    }

    /// Sends a TALKREQ to an enode so that discv5 opens a session and then fetches its record.
    /// The answer does not matter; the task ends with discv5's request timeout at the latest.
    fn open_session(&mut self, enode: &Enode) -> Result<(), Discv5Error> {
        let contact = enode_contact(enode)?;
        let talk = self.discv5.talk_req(contact, SESSION_OPENER_PROTOCOL.to_vec(), Vec::new());
        let node_id = enode.node_id();
        self.probes.spawn(async move {
            if let Err(e) = talk.await {
                debug!(target: "ethp2p::discv5", %node_id, error = ?e, "enode session opener failed");
            }
        });
        Ok(())
    }

    /// PINGs a node that just entered the table. discv5 0.12 pings a node it dialled at once,
    /// but one that contacted us only after `ping_interval` (5 min): until then a node that
    /// completed one handshake from a spoofable-looking address sits in the table unchecked,
    /// and is served to others in NODES. geth revalidates new entries within seconds, and
    /// hive's `discv5 test` FindnodeResults waits 60 s for our PINGs to its bystanders.
    /// For a node we dialled this is a second PING, one packet per table insertion.
    fn revalidate(&mut self, enr: Enr) {
        let node_id = enr.node_id();
        let ping = self.discv5.send_ping(enr);
        self.probes.spawn(async move {
            if let Err(e) = ping.await {
                trace!(target: "ethp2p::discv5", %node_id, error = ?e, "new entry did not answer PING");
            }
        });
    }

    fn on_command(&mut self, command: Command) {
        match command {
            Command::Stats(reply) => {
                let stats = self
                    .counters
                    .snapshot(self.discv5.table_entries_id().len(), self.discv5.connected_peers());
                let _ = reply.send(stats);
            }
            Command::AddEnr(enr, reply) => {
                let result = check_bootnode(&enr, &self.config.netrestrict).and_then(|()| {
                    self.discv5.add_enr(enr.clone()).map_err(|reason| {
                        Discv5Error::BootnodeRejected(NodeId::from(enr.node_id().raw()), reason)
                    })?;
                    self.added.insert(enr.node_id());
                    Ok(())
                });
                let _ = reply.send(result);
            }
            Command::Lookup(target, reply) => {
                // Run it beside the service loop; its results go through `consider` via the
                // Discovered events, and the caller gets the closest nodes.
                let query = self.discv5.find_node(Discv5NodeId::new(&target.0));
                let netrestrict = self.config.netrestrict.clone();
                tokio::spawn(async move {
                    let result = match query.await {
                        Ok(enrs) => Ok(enrs
                            .iter()
                            .filter_map(|enr| Candidate::from_enr(enr, CandidateSource::Discv5).ok())
                            .filter(|c| netrestrict.allows(&c.ip))
                            .collect()),
                        Err(e) => Err(Discv5Error::Query(format!("{e:?}"))),
                    };
                    let _ = reply.send(result);
                });
            }
            Command::AddEnode(enode, reply) => {
                let result =
                    check_enode(&enode, &self.config.netrestrict).and_then(|()| self.open_session(&enode));
                let _ = reply.send(result);
            }
            Command::FindNode(enr, distances, reply) => {
                let query = self.discv5.find_node_designated_peer(enr, distances);
                tokio::spawn(async move {
                    let _ = reply.send(query.await.map_err(|e| Discv5Error::Query(format!("{e:?}"))));
                });
            }
            Command::TableEntries(reply) => {
                let _ = reply.send(self.discv5.table_entries_enr());
            }
            Command::Contacts(reply) => {
                let _ = reply.send(self.contacts.subscribe());
            }
            Command::Shutdown(_) => unreachable!("handled by the loop"),
        }
    }

    fn on_event(&mut self, event: discv5::Event) {
        match event {
            discv5::Event::Discovered(enr) => self.consider(&enr),
            discv5::Event::SessionEstablished(enr, addr) => {
                if self.session_cap.on_session(std::time::Instant::now(), addr.ip()) {
                    self.ban_for_sessions(addr.ip());
                } else if self.config.netrestrict.allows(&addr.ip()) {
                    if self.contacts.wanted() && self.started_by_remote(&enr) {
                        self.report_contact(&enr, addr);
                    }
                    self.consider(&enr);
                } else {
                    self.restrict(enr.node_id(), addr.ip());
                }
            }
            discv5::Event::NodeInserted { node_id, .. } => {
                let Some(enr) = self.discv5.find_enr(&node_id) else { return };
                // The table filter is only the netrestrict class; enforce the exact list.
                let ip = enr.ip4().map(IpAddr::V4).or(enr.ip6().map(IpAddr::V6));
                if let Some(ip) = ip.filter(|ip| !self.config.netrestrict.allows(ip)) {
                    self.restrict(node_id, ip);
                    return;
                }
                self.revalidate(enr);
            }
            discv5::Event::UnrecognizedFrame(frame) => {
                bump(&self.counters.unrecognized);
                let forwarded = match &self.unrecognized {
                    // Full means discv4 is behind: drop, as a full socket buffer would,
                    // rather than stall discv5's events behind it.
                    Some(v4) => v4.try_send((frame.src_address, frame.packet)).is_ok(),
                    None => false,
                };
                if !forwarded {
                    bump(&self.counters.unrecognized_dropped);
                    trace!(target: "ethp2p::discv5", from = %frame.src_address, "unrecognized datagram dropped");
                }
            }
            discv5::Event::SocketUpdated(addr) => {
                debug!(target: "ethp2p::discv5", %addr, seq = self.local_enr.seq(), "our address changed");
            }
            // Dropping a TalkRequest answers it with an empty response; we serve no talk
            // protocols.
            _ => {}
        }
    }

    /// Whether the remote started this new session with `enr`'s node (see
    /// [`Discv5::contacts`]). discv5 0.12 drops the direction from its event, but it files
    /// the node in its table with it before emitting the event.
    fn started_by_remote(&self, enr: &Enr) -> bool {
        let id = enr.node_id();
        if self.added.contains(&id) {
            return false;
        }
        let key = discv5::Key::from(id);
        let direction = self.discv5.with_kbuckets(|table| {
            table
                .read()
                .get_bucket(&key)
                .and_then(|bucket| bucket.get(&key))
                .map(|node| node.status.direction)
        });
        match direction {
            Some(direction) => direction == discv5::ConnectionDirection::Incoming,
            // Not in the table (full bucket, or no address to file it under): only a record
            // with no UDP address proves we did not dial it from the record.
            None => enr.udp4_socket().is_none() && enr.udp6_socket().is_none(),
        }
    }

    fn report_contact(&mut self, enr: &Enr, addr: SocketAddr) {
        let Ok(peer_id) = crate::record::peer_id_of_enr(enr) else { return };
        let tcp_port = match addr.ip() {
            IpAddr::V4(_) => enr.tcp4(),
            IpAddr::V6(_) => enr.tcp6(),
        };
        trace!(target: "ethp2p::discv5", node_id = %enr.node_id(), %addr, "contacted by");
        let protocol = ContactProtocol::Discv5;
        self.contacts.report(Contact { peer_id, addr, tcp_port, enr: Some(enr.clone()), protocol });
    }

    /// Bans an IP that completed more handshakes in a minute than the session cap allows.
    /// A completed handshake proves the source address, so nobody can get another host
    /// banned by spoofing it. The ban is discv5's: its receive task drops every datagram
    /// from the IP, discv4's too, until it expires ([`V5_SESSION_BAN`], checked by discv5
    /// every 5 minutes). Sessions that reached us beyond the channel of discv5's events
    /// (100 slots, `try_send`) are not counted, so under a flood the cap errs lenient.
    fn ban_for_sessions(&mut self, ip: IpAddr) {
        bump(&self.counters.banned_ips);
        self.discv5.ban_ip(ip, Some(V5_SESSION_BAN));
        debug!(target: "ethp2p::discv5", %ip, "IP over the new-session cap banned");
    }

    /// Removes a node outside netrestrict from the table and bans its IP, so discv5 drops its
    /// packets. discv5's ban list is process-wide; that is acceptable because a process runs
    /// one node, and tests never hit this (their nodes only know loopback peers).
    fn restrict(&mut self, node_id: Discv5NodeId, ip: IpAddr) {
        bump(&self.counters.restricted);
        self.discv5.remove_node(&node_id);
        self.discv5.ban_ip(ip, None);
        debug!(target: "ethp2p::discv5", %ip, "peer outside netrestrict removed and banned");
    }

    /// Classifies a record, counts it and emits it as a candidate, once per (node, seq).
    fn consider(&mut self, enr: &Enr) {
        let node_id = NodeId::from(enr.node_id().raw());
        if node_id == self.local_id {
            return;
        }
        if self.seen.get(&node_id).is_some_and(|&seq| seq >= enr.seq()) {
            return;
        }
        self.seen.put(node_id, enr.seq());
        bump(&self.counters.discovered);
        let candidate = match Candidate::from_enr(enr, CandidateSource::Discv5) {
            Ok(candidate) => candidate,
            Err(e) => {
                bump(&self.counters.unusable);
                trace!(target: "ethp2p::discv5", %node_id, error = %e, "record cannot be a candidate");
                return;
            }
        };
        if !self.config.netrestrict.allows(&candidate.ip) {
            bump(&self.counters.restricted);
            return;
        }
        match candidate.eth {
            EthEntry::ForkId(fork_id) => {
                bump(&self.counters.with_eth);
                let foreign = match &self.config.fork_filter {
                    Some(filter) => filter.validate(fork_id).is_err(),
                    None => self.local_enr.content().fork_id.is_some_and(|ours| ours.hash != fork_id.hash),
                };
                if foreign {
                    bump(&self.counters.foreign_fork);
                }
            }
            EthEntry::Missing => bump(&self.counters.missing_eth),
            _ => bump(&self.counters.malformed_eth),
        }
        trace!(target: "ethp2p::discv5", %node_id, ip = %candidate.ip, eth = ?candidate.eth, "candidate");
        match self.candidates.try_send(candidate) {
            Ok(()) => bump(&self.counters.emitted),
            Err(_) => bump(&self.counters.dropped),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_pace_backs_off_while_lookups_learn_nothing() {
        let config = Discv5Config::default();
        let secs = Duration::from_secs;
        let mut pace = LookupPace::default();
        // Learning: the bootstrap pace.
        assert_eq!(pace.after_lookup(true, &config), secs(2));
        // Nothing new: 4, 8, 16 s, then the steady interval, never more.
        let fruitless: Vec<_> = (0..5).map(|_| pace.after_lookup(false, &config)).collect();
        assert_eq!(fruitless, [secs(4), secs(8), secs(16), secs(30), secs(30)]);
        // Something new again: back to the bootstrap pace.
        assert_eq!(pace.after_lookup(true, &config), secs(2));
        // The phase ends after `bootstrap_lookups` lookups whatever they learn.
        for _ in pace.done..config.bootstrap_lookups {
            assert_eq!(pace.after_lookup(true, &config), secs(2));
        }
        assert_eq!(pace.after_lookup(true, &config), config.lookup_interval);

        // No bootstrap phase: the steady interval from the first lookup.
        let none = Discv5Config { bootstrap_lookups: 0, ..Discv5Config::default() };
        assert_eq!(LookupPace::default().after_lookup(true, &none), none.lookup_interval);
        // A bootstrap pace slower than the steady one is kept as configured.
        let slow = Discv5Config { bootstrap_lookup_interval: secs(60), ..Discv5Config::default() };
        assert_eq!(LookupPace::default().after_lookup(false, &slow), secs(60));
    }
}

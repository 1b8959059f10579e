//! The pool's state to and from the address book on disk (`pool::book` holds the file format).

use std::{
    net::SocketAddr,
    time::{Duration, Instant, SystemTime},
};

use super::PoolState;
use crate::pool::{
    book::{AddressBook, BookEntry},
    event::Direction,
    reputation::{PeerKind, Reputation},
};

impl PoolState {
    /// The address book to persist: every dialable node with its reputation, whether we
    /// were connected to it, when it was last seen and any ban. `now`/`wall` convert the
    /// monotonic instants to Unix seconds.
    pub fn to_book(&self, now: Instant, wall: SystemTime) -> AddressBook {
        let unix = |t: Instant| -> u64 {
            let wall_now = wall.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
            if t >= now {
                (wall_now + (t - now)).as_secs()
            } else {
                wall_now.saturating_sub(now - t).as_secs()
            }
        };
        let mut entries: Vec<BookEntry> = self
            .dials
            .known()
            .map(|(peer_id, addr, tried)| {
                let k = self.known.get(&peer_id);
                BookEntry {
                    peer_id,
                    addr: self.sessions.get(&peer_id).map_or(addr, |s| {
                        if s.direction == Direction::Outbound {
                            s.addr
                        } else {
                            addr
                        }
                    }),
                    kind: k.map_or(PeerKind::Basic, |k| k.kind),
                    tried: tried || self.sessions.contains_key(&peer_id),
                    reputation: k.map_or(0, |k| k.reputation.get()),
                    last_seen: unix(k.map_or(now, |k| k.last_seen)),
                    banned_until: k.and_then(|k| k.banned_until).filter(|t| *t > now).map(unix),
                    dns: self.dials.is_dns(&peer_id),
                }
            })
            .collect();
        // Banned nodes are no longer in the scheduler; keep their bans across restarts.
        for (peer_id, k) in &self.known {
            if let Some(until) = k.banned_until.filter(|t| *t > now) {
                if !self.dials.contains(peer_id) {
                    entries.push(BookEntry {
                        peer_id: *peer_id,
                        addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                        kind: k.kind,
                        tried: false,
                        reputation: k.reputation.get(),
                        last_seen: unix(k.last_seen),
                        banned_until: Some(unix(until)),
                        dns: false,
                    });
                }
            }
        }
        AddressBook::new(entries)
    }

    /// Loads a saved address book: bans are restored, and nodes we were connected to are
    /// queued first, best reputation first, so a restart redials known-good peers before
    /// anything else.
    pub fn load_book(&mut self, book: &AddressBook, now: Instant, wall: SystemTime) {
        let wall_now = wall.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default().as_secs();
        let to_instant = |unix: u64| -> Option<Instant> {
            if unix >= wall_now {
                now.checked_add(Duration::from_secs(unix - wall_now))
            } else {
                now.checked_sub(Duration::from_secs(wall_now - unix)).or(Some(now))
            }
        };
        let mut entries: Vec<&BookEntry> =
            book.entries.iter().filter(|e| e.peer_id != self.local_id).collect();
        entries.sort_by(|a, b| {
            b.tried.cmp(&a.tried).then(b.reputation.cmp(&a.reputation)).then(b.last_seen.cmp(&a.last_seen))
        });
        for e in entries {
            let banned_until = e.banned_until.filter(|u| *u > wall_now).and_then(to_instant);
            let kind = self.kind(&e.peer_id);
            let known = self.known_mut(e.peer_id, now);
            known.reputation = Reputation::new(e.reputation);
            known.last_seen = to_instant(e.last_seen).unwrap_or(now);
            known.banned_until = banned_until;
            known.kind = kind; // the configuration, not the file, says who is vouched for
            if banned_until.is_none() && e.addr.port() != 0 && !e.addr.ip().is_unspecified() {
                self.dials.add(e.peer_id, e.addr, e.tried, self.config.max_candidates);
                if e.dns {
                    self.dials.mark_dns(e.peer_id);
                }
            }
        }
    }
}

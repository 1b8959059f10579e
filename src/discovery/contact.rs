//! "A remote contacted us": what the discovery services report to whoever listens (the
//! crawler records these as inbound sightings, which catch nodes behind NAT that nobody can
//! dial).
//!
//! Each service reports only once someone asked for a [`Contacts`] stream, and stops when
//! the stream is dropped: nobody listening costs nothing beyond one `bool` test per request.
//! The stream is bounded ([`CONTACT_CHANNEL_CAPACITY`]); when its reader lags, new contacts
//! are dropped (a contact is a sighting, not a command: the next one will do).

use std::net::SocketAddr;

use tokio::sync::mpsc;

use crate::record::{Enr, PeerId};

/// Contacts queued for a lagging reader before new ones are dropped. A crawler folds each in
/// microseconds; this covers a burst of a few thousand requests between two of its polls.
pub const CONTACT_CHANNEL_CAPACITY: usize = 4096;

/// The protocol a remote used to contact us.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ContactProtocol {
    /// A verified discv4 PING, FINDNODE or ENRRequest.
    Discv4,
    /// A discv5 handshake the remote started.
    Discv5,
}

/// A remote that contacted us on its own initiative.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct Contact {
    /// Its public key (checked: the packet's signature or the handshake proved it).
    pub peer_id: PeerId,
    /// Where its datagram came from (after NAT: the address we saw, not one it claims).
    pub addr: SocketAddr,
    /// The RLPx port it claims (discv4 PING `from.tcp`, or its record's `tcp`), if any.
    pub tcp_port: Option<u16>,
    /// Its record, when the protocol gave one (discv5 handshakes carry it).
    pub enr: Option<Enr>,
    /// How it contacted us.
    pub protocol: ContactProtocol,
}

/// A stream of [`Contact`]s from one discovery service; ends when the service stops.
#[derive(Debug)]
pub struct Contacts {
    pub(crate) rx: mpsc::Receiver<Contact>,
}

impl Contacts {
    /// A new stream and the sender the service keeps.
    pub(crate) fn channel() -> (mpsc::Sender<Contact>, Self) {
        let (tx, rx) = mpsc::channel(CONTACT_CHANNEL_CAPACITY);
        (tx, Self { rx })
    }

    /// The next contact, or `None` once the service has stopped.
    pub async fn recv(&mut self) -> Option<Contact> {
        self.rx.recv().await
    }
}

/// The service side: the sender, if someone listens, and what was lost.
#[derive(Debug, Default)]
pub(crate) struct ContactSink {
    tx: Option<mpsc::Sender<Contact>>,
    /// Contacts dropped because the reader lagged.
    pub(crate) dropped: u64,
}

impl ContactSink {
    /// Replaces the listener (a second subscriber takes over from the first).
    pub(crate) fn subscribe(&mut self) -> Contacts {
        let (tx, contacts) = Contacts::channel();
        self.tx = Some(tx);
        contacts
    }

    /// Whether anyone listens (a closed stream counts as nobody).
    pub(crate) fn wanted(&self) -> bool {
        self.tx.as_ref().is_some_and(|tx| !tx.is_closed())
    }

    /// Hands `contact` to the listener without waiting; a full stream drops it (counted), a
    /// closed one is forgotten.
    pub(crate) fn report(&mut self, contact: Contact) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(contact) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => self.dropped += 1,
            Err(mpsc::error::TrySendError::Closed(_)) => self.tx = None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn contact() -> Contact {
        Contact {
            peer_id: PeerId::from([1u8; 64]),
            addr: "127.0.0.1:1".parse().unwrap(),
            tcp_port: None,
            enr: None,
            protocol: ContactProtocol::Discv4,
        }
    }

    #[test]
    fn sink_reports_drops_when_full_and_forgets_a_closed_stream() {
        let mut sink = ContactSink::default();
        assert!(!sink.wanted());
        sink.report(contact()); // nobody listens: nothing happens
        let mut contacts = sink.subscribe();
        assert!(sink.wanted());
        for _ in 0..CONTACT_CHANNEL_CAPACITY + 3 {
            sink.report(contact());
        }
        assert_eq!(sink.dropped, 3);
        assert!(contacts.rx.try_recv().is_ok());
        drop(contacts);
        assert!(!sink.wanted());
        sink.report(contact());
        assert!(sink.tx.is_none());
    }
}

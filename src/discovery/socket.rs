//! The discovery UDP socket: bound with kernel buffers large enough for bursts (a public
//! bootnode sees thousands of datagrams per second; the default ~200 KiB receive buffer
//! dropped 45% of 10,000 datagrams sent at 5k/s, issue 16), and the kernel's count of
//! datagrams it dropped for lack of buffer, for the stats line.
//!
//! On Linux the socket also carries a classic BPF filter that drops every datagram over
//! [`MAX_DATAGRAM`] bytes in the kernel (issue 16). Both specs cap a packet at 1,280 bytes,
//! and the `discv5` crate, which reads the socket when the port is shared, reads into a
//! 1,280-byte buffer: a longer datagram is silently truncated by `recv_from` and then decoded
//! as if whole, so an oversize datagram got a WHOAREYOU. With the filter, no reader ever sees
//! one; the kernel counts it in the socket's drop counter ([`socket_drops`], which also counts
//! datagrams dropped for a full receive buffer). Elsewhere the discv4 reader drops what it can
//! see is too long, and discv5 truncates as before.

use std::{net::SocketAddr, sync::Arc};

use tokio::net::UdpSocket;

/// Receive and send buffer asked of the kernel by default (geth asks 4 MiB too; Linux
/// caps it at `net.core.rmem_max` unless raised).
pub const DEFAULT_SOCKET_BUFFER: usize = 4 << 20;

/// discv4.md and discv5-wire.md: no packet is larger than 1,280 bytes (the IPv6 minimum MTU).
pub(crate) const MAX_DATAGRAM: usize = 1280;

/// The discovery port's sockets: one, or one per IP family (dual stack). Two sockets rather
/// than one IPv6 socket taking IPv4-mapped addresses: `discv5` 0.12 runs dual stack only on
/// two sockets (`ListenConfig::FromSockets { ipv4, ipv6 }`, sending each packet on the socket
/// of its destination's family), and an IPv6-only socket is what every host allows
/// (`net.ipv6.bindv6only` and BSDs make a mapped socket a per-host gamble). Cheap to clone.
#[derive(Debug, Clone)]
pub(crate) struct Sockets {
    /// The socket of the first listen address.
    primary: Arc<UdpSocket>,
    /// The other family's socket, when dual stack.
    second: Option<Arc<UdpSocket>>,
    /// The primary socket's family, read once (sending picks a socket per datagram).
    primary_v6: bool,
}

impl Sockets {
    /// The primary socket and, for dual stack, the other family's.
    pub(crate) fn new(primary: Arc<UdpSocket>, second: Option<Arc<UdpSocket>>) -> Self {
        let primary_v6 = primary.local_addr().is_ok_and(|a| a.is_ipv6());
        Self { primary, second, primary_v6 }
    }

    /// One socket, one family.
    pub(crate) fn one(socket: Arc<UdpSocket>) -> Self {
        Self::new(socket, None)
    }

    /// The socket of the first listen address.
    pub(crate) fn primary(&self) -> &Arc<UdpSocket> {
        &self.primary
    }

    /// The other family's socket, when dual stack.
    pub(crate) fn second(&self) -> Option<&Arc<UdpSocket>> {
        self.second.as_ref()
    }

    /// The socket to send to `to` on: the one of `to`'s family. With one socket, that socket
    /// whatever the family (a send to the other family then fails, as it always did).
    pub(crate) fn for_dest(&self, to: &SocketAddr) -> &Arc<UdpSocket> {
        match &self.second {
            Some(second) if to.is_ipv6() != self.primary_v6 => second,
            _ => &self.primary,
        }
    }

    /// The IPv4 socket and the IPv6 socket, each when bound.
    pub(crate) fn by_family(&self) -> (Option<Arc<UdpSocket>>, Option<Arc<UdpSocket>>) {
        let (primary, second) = (Some(self.primary.clone()), self.second.clone());
        if self.primary_v6 {
            (second, primary)
        } else {
            (primary, second)
        }
    }

    /// Every socket, the primary first.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Arc<UdpSocket>> {
        std::iter::once(&self.primary).chain(&self.second)
    }
}

/// Binds a UDP socket at `addr` with `buffer` bytes of receive and send buffer (`None`:
/// the kernel's default). An IPv6 address binds an IPv6-only socket. A buffer the kernel
/// refuses or caps is not an error: what it granted is logged at debug. On Linux, datagrams
/// over [`MAX_DATAGRAM`] bytes are dropped by the kernel (see the module docs).
pub(crate) fn bind_udp(addr: SocketAddr, buffer: Option<usize>) -> std::io::Result<UdpSocket> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::DGRAM, Some(Protocol::UDP))?;
    if addr.is_ipv6() {
        socket.set_only_v6(true)?;
    }
    if let Some(size) = buffer {
        let _ = socket.set_recv_buffer_size(size);
        let _ = socket.set_send_buffer_size(size);
        tracing::debug!(
            target: "ethp2p::discovery",
            %addr,
            asked = size,
            recv = socket.recv_buffer_size().unwrap_or(0),
            send = socket.send_buffer_size().unwrap_or(0),
            "UDP socket buffers"
        );
    }
    drop_oversize_in_kernel(&socket)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    UdpSocket::from_std(socket.into())
}

/// Attaches a classic BPF program that keeps a datagram only when it is at most
/// [`MAX_DATAGRAM`] bytes of payload. On a UDP socket the filter sees the packet from the
/// UDP header on (8 bytes, which the kernel never trims) after the checksum check; returning
/// 0 drops it and counts it in the socket's drops.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn drop_oversize_in_kernel(socket: &socket2::Socket) -> std::io::Result<()> {
    use socket2::SockFilter;
    /// linux/filter.h: BPF_LD | BPF_W | BPF_LEN, BPF_JMP | BPF_JGT | BPF_K, BPF_RET | BPF_K.
    const LOAD_LEN: u16 = 0x80;
    const JUMP_IF_GREATER: u16 = 0x25;
    const RETURN: u16 = 0x06;
    const UDP_HEADER: u32 = 8;
    let program = [
        SockFilter::new(LOAD_LEN, 0, 0, 0),
        // Over the limit: jump one ahead, to the drop.
        SockFilter::new(JUMP_IF_GREATER, 1, 0, MAX_DATAGRAM as u32 + UDP_HEADER),
        SockFilter::new(RETURN, 0, 0, u32::MAX),
        SockFilter::new(RETURN, 0, 0, 0),
    ];
    socket.attach_filter(&program)
}

#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn drop_oversize_in_kernel(_: &socket2::Socket) -> std::io::Result<()> {
    Ok(())
}

/// Datagrams the kernel dropped on this socket since it was opened: over [`MAX_DATAGRAM`]
/// bytes (our filter) or arriving at a full receive buffer. Read from the `drops` column of
/// `/proc/net/udp` or `/proc/net/udp6`, by the socket's inode; `None` where those do not
/// exist (not Linux).
pub(crate) fn socket_drops(socket: &UdpSocket) -> Option<u64> {
    #[cfg(unix)]
    {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
        let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned();
        let table = if socket.local_addr().ok()?.is_ipv6() { "/proc/net/udp6" } else { "/proc/net/udp" };
        parse_udp_drops(&std::fs::read_to_string(table).ok()?, &inode)
    }
    #[cfg(not(unix))]
    {
        let _ = socket;
        None
    }
}

/// The `drops` column (the last) of the `/proc/net/udp` row whose `inode` (the tenth) is
/// `inode`.
fn parse_udp_drops(table: &str, inode: &str) -> Option<u64> {
    table.lines().skip(1).find_map(|line| {
        let fields: Vec<&str> = line.split_whitespace().collect();
        (fields.get(9) == Some(&inode)).then(|| fields.last()?.parse().ok()).flatten()
    })
}

/// Datagrams the kernel dropped host-wide because a UDP receive buffer was full
/// (`RcvbufErrors` of `/proc/net/snmp`); `None` where that file does not exist.
pub fn udp_receive_buffer_drops() -> Option<u64> {
    parse_snmp_rcvbuf_errors(&std::fs::read_to_string("/proc/net/snmp").ok()?)
}

fn parse_snmp_rcvbuf_errors(snmp: &str) -> Option<u64> {
    let mut udp = snmp.lines().filter(|l| l.starts_with("Udp:"));
    let (names, values) = (udp.next()?, udp.next()?);
    let column = names.split_whitespace().position(|n| n == "RcvbufErrors")?;
    values.split_whitespace().nth(column)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn buffers_are_asked_for_and_the_socket_works() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap(), Some(1 << 20)).unwrap();
        let granted = socket2::SockRef::from(&socket).recv_buffer_size().unwrap();
        let default = bind_udp("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let default = socket2::SockRef::from(&default).recv_buffer_size().unwrap();
        // Linux doubles what it grants, up to rmem_max; never less than the default.
        assert!(granted >= default, "asked 1 MiB, got {granted}, default {default}");
        let peer = bind_udp("127.0.0.1:0".parse().unwrap(), None).unwrap();
        peer.send_to(b"x", socket.local_addr().unwrap()).await.unwrap();
        let mut buf = [0u8; 4];
        assert_eq!(socket.recv_from(&mut buf).await.unwrap().0, 1);
    }

    /// Dual stack, each datagram leaves on the socket of its destination's family; with one
    /// socket, on that one.
    #[tokio::test]
    async fn sockets_send_on_the_destinations_family() {
        let v4 = Arc::new(bind_udp("127.0.0.1:0".parse().unwrap(), None).unwrap());
        let v6 =
            Arc::new(bind_udp("[::1]:0".parse().expect("valid"), None).expect("this host must have ::1"));
        let (to4, to6): (SocketAddr, SocketAddr) =
            ("127.0.0.1:1".parse().unwrap(), "[::1]:1".parse().unwrap());
        for sockets in
            [Sockets::new(v4.clone(), Some(v6.clone())), Sockets::new(v6.clone(), Some(v4.clone()))]
        {
            assert!(Arc::ptr_eq(sockets.for_dest(&to4), &v4));
            assert!(Arc::ptr_eq(sockets.for_dest(&to6), &v6));
            let (a, b) = sockets.by_family();
            assert!(Arc::ptr_eq(&a.unwrap(), &v4) && Arc::ptr_eq(&b.unwrap(), &v6));
        }
        let one = Sockets::one(v4.clone());
        assert!(Arc::ptr_eq(one.for_dest(&to6), &v4), "one socket sends everything");
        assert!(one.by_family().1.is_none());
    }

    #[test]
    fn reads_a_sockets_drop_column() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops\n\
                     1: 0100007F:A1B2 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4242 2 0000000000000000 17\n\
                     2: 0100007F:A1B3 00000000:0000 07 00000000:00000000 00:00000000 00000000     0        0 4343 2 0000000000000000 0\n";
        assert_eq!(parse_udp_drops(table, "4242"), Some(17));
        assert_eq!(parse_udp_drops(table, "4343"), Some(0));
        assert_eq!(parse_udp_drops(table, "99"), None);
    }

    /// The kernel keeps 1,280 bytes and drops 1,281, and counts the drop on the socket.
    #[cfg(target_os = "linux")]
    #[tokio::test]
    async fn the_kernel_drops_oversize_datagrams() {
        let socket = bind_udp("127.0.0.1:0".parse().unwrap(), None).unwrap();
        let to = socket.local_addr().unwrap();
        let peer = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(socket_drops(&socket), Some(0));
        peer.send_to(&[1u8; MAX_DATAGRAM + 1], to).unwrap();
        peer.send_to(&[2u8; 4000], to).unwrap();
        peer.send_to(&[3u8; MAX_DATAGRAM], to).unwrap();
        let mut buf = [0u8; 8192];
        let (len, _) = socket.recv_from(&mut buf).await.unwrap();
        assert_eq!((len, buf[0]), (MAX_DATAGRAM, 3), "only the datagram within the limit arrives");
        assert_eq!(socket_drops(&socket), Some(2));
    }

    #[test]
    fn reads_the_kernels_drop_counter() {
        let snmp = "Ip: Forwarding DefaultTTL\nIp: 1 64\nUdp: InDatagrams NoPorts InErrors OutDatagrams \
                    RcvbufErrors SndbufErrors\nUdp: 100 2 7 90 4505 0\nUdpLite: InDatagrams\nUdpLite: 0\n";
        assert_eq!(parse_snmp_rcvbuf_errors(snmp), Some(4505));
        assert_eq!(parse_snmp_rcvbuf_errors("Tcp: a\nTcp: 1\n"), None);
        if std::path::Path::new("/proc/net/snmp").exists() {
            assert!(udp_receive_buffer_drops().is_some());
        }
    }
}

//! Socket tables: the lines of `/proc/PID/net/{tcp,tcp6,udp,udp6,unix}` and the kernel's socket
//! state numbers, shared with the `sock_diag` parser ([`super::sock_diag`]).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// A socket table, named as the `/proc/net` file that lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Protocol {
    /// TCP over IPv4 (`/proc/net/tcp`).
    Tcp,
    /// TCP over IPv6 (`/proc/net/tcp6`), including IPv4-mapped peers of dual-stack sockets.
    Tcp6,
    /// UDP over IPv4.
    Udp,
    /// UDP over IPv6.
    Udp6,
    /// Unix domain sockets.
    Unix,
}

impl Protocol {
    /// Every table, in label order.
    pub const ALL: [Protocol; 5] = [Protocol::Tcp, Protocol::Tcp6, Protocol::Udp, Protocol::Udp6, Protocol::Unix];

    /// Label value and `/proc/net` file name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tcp => "tcp",
            Self::Tcp6 => "tcp6",
            Self::Udp => "udp",
            Self::Udp6 => "udp6",
            Self::Unix => "unix",
        }
    }

    /// TCP of either family.
    pub fn is_tcp(self) -> bool {
        matches!(self, Self::Tcp | Self::Tcp6)
    }
}

/// A socket's state, named as node_exporter's `node_tcp_connection_states` names them. UDP and
/// unix sockets use the same kernel numbers (`established` when connected, `close` when not,
/// `listen` for a listening unix socket).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum SockState {
    /// `TCP_ESTABLISHED` (1).
    Established,
    /// `TCP_SYN_SENT` (2).
    SynSent,
    /// `TCP_SYN_RECV` (3) and `TCP_NEW_SYN_RECV` (12).
    SynRecv,
    /// `TCP_FIN_WAIT1` (4).
    FinWait1,
    /// `TCP_FIN_WAIT2` (5).
    FinWait2,
    /// `TCP_TIME_WAIT` (6).
    TimeWait,
    /// `TCP_CLOSE` (7).
    Close,
    /// `TCP_CLOSE_WAIT` (8): the peer closed, this side has not. Growth is the classic leak.
    CloseWait,
    /// `TCP_LAST_ACK` (9).
    LastAck,
    /// `TCP_LISTEN` (10).
    Listen,
    /// `TCP_CLOSING` (11).
    Closing,
    /// Any other number (e.g. `TCP_BOUND_INACTIVE`, 13).
    Unknown,
}

impl SockState {
    /// Every state, in declaration (and label) order.
    pub const ALL: [SockState; 12] = [
        SockState::Established,
        SockState::SynSent,
        SockState::SynRecv,
        SockState::FinWait1,
        SockState::FinWait2,
        SockState::TimeWait,
        SockState::Close,
        SockState::CloseWait,
        SockState::LastAck,
        SockState::Listen,
        SockState::Closing,
        SockState::Unknown,
    ];

    /// From the kernel's state number (`st` in `/proc/net/tcp`, `idiag_state` in `sock_diag`).
    pub fn from_kernel(n: u8) -> Self {
        match n {
            1 => Self::Established,
            2 => Self::SynSent,
            3 | 12 => Self::SynRecv,
            4 => Self::FinWait1,
            5 => Self::FinWait2,
            6 => Self::TimeWait,
            7 => Self::Close,
            8 => Self::CloseWait,
            9 => Self::LastAck,
            10 => Self::Listen,
            11 => Self::Closing,
            _ => Self::Unknown,
        }
    }

    /// Label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Established => "established",
            Self::SynSent => "syn_sent",
            Self::SynRecv => "syn_recv",
            Self::FinWait1 => "fin_wait1",
            Self::FinWait2 => "fin_wait2",
            Self::TimeWait => "time_wait",
            Self::Close => "close",
            Self::CloseWait => "close_wait",
            Self::LastAck => "last_ack",
            Self::Listen => "listen",
            Self::Closing => "closing",
            Self::Unknown => "unknown",
        }
    }
}

/// One socket as a table lists it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketEntry {
    /// The table.
    pub protocol: Protocol,
    /// Its state.
    pub state: SockState,
    /// Local port (0 for unix sockets).
    pub local_port: u16,
    /// Remote address and port; `None` for unix sockets.
    pub remote: Option<(IpAddr, u16)>,
    /// Receive queue: bytes not yet read, or, for a listener, connections waiting in the accept
    /// queue.
    pub rx_queue: u32,
    /// The socket's inode (0 for sockets no process holds, like `time_wait`).
    pub inode: u64,
    /// A listener's accept-queue limit (its `listen()` backlog); only `sock_diag` reports it.
    pub backlog: Option<u32>,
}

/// Parses one data line of `/proc/net/{tcp,tcp6,udp,udp6}`:
/// `sl local_address rem_address st tx_queue:rx_queue tr:tm->when retrnsmt uid timeout inode ...`.
pub fn inet_line(protocol: Protocol, line: &str) -> Result<SocketEntry, String> {
    let mut f = line.split_ascii_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| format!("no {what} field"));
    let slot = next("sl")?;
    if !slot.ends_with(':') {
        return Err(format!("slot {slot:?} does not end in ':'"));
    }
    let (_, local_port) = endpoint(next("local_address")?)?;
    let remote = endpoint(next("rem_address")?)?;
    let state = u8::from_str_radix(next("st")?, 16).map_err(|e| format!("state: {e}"))?;
    let (_, rx) = next("tx_queue:rx_queue")?.split_once(':').ok_or("queues are not tx:rx")?;
    let rx_queue = u32::from_str_radix(rx, 16).map_err(|e| format!("rx_queue {rx:?}: {e}"))?;
    for what in ["tr:tm->when", "retrnsmt", "uid", "timeout"] {
        next(what)?;
    }
    let inode = next("inode")?;
    let inode = inode.parse::<u64>().map_err(|e| format!("inode {inode:?}: {e}"))?;
    Ok(SocketEntry {
        protocol,
        state: SockState::from_kernel(state),
        local_port,
        remote: Some(remote),
        rx_queue,
        inode,
        backlog: None,
    })
}

/// `HEXADDR:HEXPORT`: 8 hex digits for IPv4, 32 for IPv6, each 32-bit word printed as the
/// host-order value of a network-order word.
fn endpoint(text: &str) -> Result<(IpAddr, u16), String> {
    let (addr, port) = text.split_once(':').ok_or_else(|| format!("address {text:?} has no ':'"))?;
    let port = u16::from_str_radix(port, 16).map_err(|e| format!("port {port:?}: {e}"))?;
    let word = |hex: &str| u32::from_str_radix(hex, 16).map(u32::to_ne_bytes).map_err(|e| format!("{text:?}: {e}"));
    let ip = match addr.len() {
        8 => IpAddr::V4(Ipv4Addr::from(word(addr)?)),
        32 => {
            let mut octets = [0u8; 16];
            for (i, chunk) in octets.chunks_exact_mut(4).enumerate() {
                chunk.copy_from_slice(&word(addr.get(i * 8..i * 8 + 8).ok_or("short address")?)?);
            }
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        n => return Err(format!("address {addr:?} has {n} hex digits, expected 8 or 32")),
    };
    Ok((ip, port))
}

/// `__SO_ACCEPTCON` in the `Flags` column of `/proc/net/unix`: the socket is listening.
const UNIX_ACCEPTCON: u32 = 1 << 16;

/// Parses one data line of `/proc/net/unix`: `Num RefCount Protocol Flags Type St Inode [Path]`.
/// `St` is the socket layer's state (1 unconnected, 2 connecting, 3 connected, 4 disconnecting),
/// mapped onto the kernel state numbers that `sock_diag` reports for the same socket.
pub fn unix_line(line: &str) -> Result<SocketEntry, String> {
    let mut f = line.split_ascii_whitespace();
    let mut next = |what: &str| f.next().ok_or_else(|| format!("no {what} field"));
    let num = next("Num")?;
    if !num.ends_with(':') {
        return Err(format!("Num {num:?} does not end in ':'"));
    }
    next("RefCount")?;
    next("Protocol")?;
    let flags = next("Flags")?;
    let flags = u32::from_str_radix(flags, 16).map_err(|e| format!("flags {flags:?}: {e}"))?;
    next("Type")?;
    let st = next("St")?;
    let st = u8::from_str_radix(st, 16).map_err(|e| format!("state {st:?}: {e}"))?;
    let inode = next("Inode")?;
    let inode = inode.parse::<u64>().map_err(|e| format!("inode {inode:?}: {e}"))?;
    let state = if flags & UNIX_ACCEPTCON != 0 {
        SockState::Listen
    } else {
        match st {
            1 | 4 => SockState::Close,
            2 => SockState::SynSent,
            3 => SockState::Established,
            _ => SockState::Unknown,
        }
    };
    Ok(SocketEntry { protocol: Protocol::Unix, state, local_port: 0, remote: None, rx_queue: 0, inode, backlog: None })
}

/// Whether a `/proc/net` line is the column header.
pub fn is_header(line: &str) -> bool {
    let t = line.trim_start();
    t.starts_with("sl ") || t.starts_with("Num ")
}

#[cfg(test)]
mod tests {
    use super::*;

    // Captured from Linux 6.x: a listener on 127.0.0.1:3306 with 2 queued connections, and an
    // established connection to 10.0.0.5:5432.
    const TCP: &str = "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 41234 1 0000000000000000 100 0 0 10 0";
    const TCP_EST: &str = "   1: 0100007F:A1B2 0500000A:1538 01 00000000:00000000 02:000A1F2C 00000000  1000        0 41240 2 0000000000000000 20 4 30 10 -1";
    const TCP6: &str = "   0: 00000000000000000000000001000000:1F90 0000000000000000FFFF00000100007F:C350 08 00000000:00000000 00:00000000 00000000     0        0 5555 1 0000000000000000 20 0 0 10 0";

    #[test]
    fn inet_lines_give_state_ports_queue_and_inode() {
        let l = inet_line(Protocol::Tcp, TCP).unwrap();
        assert_eq!((l.state, l.local_port, l.rx_queue, l.inode), (SockState::Listen, 3306, 2, 41234));
        let e = inet_line(Protocol::Tcp, TCP_EST).unwrap();
        assert_eq!(e.state, SockState::Established);
        assert_eq!(e.remote, Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 5432)));
        let v6 = inet_line(Protocol::Tcp6, TCP6).unwrap();
        assert_eq!(v6.state, SockState::CloseWait);
        assert_eq!(v6.local_port, 8080);
        assert_eq!(v6.remote, Some(("::ffff:127.0.0.1".parse().unwrap(), 50000)));
    }

    #[test]
    fn malformed_inet_lines_are_errors_not_panics() {
        for bad in [
            "",
            "   0:",
            "   0: 0100007F:0CEA",
            "   0: 0100007F0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:0CEA 00000000:0000 ZZ 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:0CEA 00000000:0000 0A 0000000000000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 -1",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0",
            "   0: 0100:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:FFFFF 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "0 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 1",
            "   0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 99999999999999999999999",
        ] {
            assert!(inet_line(Protocol::Tcp, bad).is_err(), "{bad:?} should not parse");
        }
    }

    #[test]
    fn every_state_sits_at_its_own_index() {
        for (i, s) in SockState::ALL.iter().enumerate() {
            assert_eq!(*s as usize, i, "{s:?}");
        }
        for (i, p) in Protocol::ALL.iter().enumerate() {
            assert_eq!(*p as usize, i, "{p:?}");
        }
    }

    #[test]
    fn unix_lines_map_onto_kernel_states() {
        let listen = unix_line("0000000000000000: 00000002 00000000 00010000 0001 01 23456 /run/app.sock").unwrap();
        assert_eq!((listen.state, listen.inode), (SockState::Listen, 23456));
        let conn = unix_line("0000000000000000: 00000003 00000000 00000000 0001 03 23457").unwrap();
        assert_eq!(conn.state, SockState::Established);
        let dgram = unix_line("0000000000000000: 00000002 00000000 00000000 0002 01 23458 @abstract").unwrap();
        assert_eq!(dgram.state, SockState::Close);
        assert!(unix_line("0000000000000000: 00000002 00000000 0001XXXX 0001 01 1").is_err());
        assert!(unix_line("garbage").is_err());
        assert!(is_header("Num       RefCount Protocol Flags    Type St Inode Path"));
        assert!(is_header("  sl  local_address rem_address   st tx_queue rx_queue"));
    }
}

//! `NETLINK_SOCK_DIAG` messages: the dump requests leakwatch sends (`inet_diag_req_v2`,
//! `unix_diag_req`) and the replies it reads (`inet_diag_msg`, `unix_diag_msg`), as bytes.
//!
//! The layouts are the kernel's UAPI (`linux/inet_diag.h`, `linux/unix_diag.h`,
//! `linux/netlink.h`): header fields in host byte order, ports and addresses in network order.
//! The socket I/O lives in `sample::sock_diag`; this module never touches a file descriptor.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use super::sockets::{Protocol, SockState, SocketEntry};

/// `SOCK_DIAG_BY_FAMILY`, the request type of a dump of one family.
const SOCK_DIAG_BY_FAMILY: u16 = 20;
/// `TCPDIAG_GETSOCK`: the original inet_diag request, which the kernel answers for both
/// families at once (`inet_diag_dump_compat` sets `AF_UNSPEC`), in one walk of the hash table.
const TCPDIAG_GETSOCK: u16 = 18;
const NLM_F_REQUEST: u16 = 0x1;
/// `NLM_F_ROOT | NLM_F_MATCH`.
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_NOOP: u16 = 1;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLMSG_HDRLEN: usize = 16;
const AF_UNIX: u8 = 1;
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;
const IPPROTO_TCP: u8 = 6;
const IPPROTO_UDP: u8 = 17;
/// `sizeof(struct inet_diag_msg)`.
const INET_DIAG_MSG_LEN: usize = 72;
/// `sizeof(struct unix_diag_msg)`.
const UNIX_DIAG_MSG_LEN: usize = 16;
/// Every state bit: dump sockets in any state.
const ALL_STATES: u32 = u32::MAX;

/// What a dump reply says besides its sockets.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DumpError {
    /// The kernel refused the request with this errno (e.g. `ENOENT` when the `udp_diag` module is
    /// not loaded): the table must be read another way.
    #[error("the kernel answered errno {0}")]
    Kernel(i32),
    /// The bytes are not a well-formed reply.
    #[error("malformed sock_diag reply: {0}")]
    Malformed(String),
}

/// The dump request for one table, with sequence number `seq`.
pub fn request(protocol: Protocol, seq: u32) -> Vec<u8> {
    let body: Vec<u8> = match protocol {
        Protocol::Unix => {
            // unix_diag_req: family, protocol, pad[2], states, ino, show, cookie[2].
            let mut b = vec![AF_UNIX, 0, 0, 0];
            b.extend(ALL_STATES.to_ne_bytes());
            b.extend([0u8; 16]);
            b
        }
        inet => {
            let (family, proto) = match inet {
                Protocol::Tcp => (AF_INET, IPPROTO_TCP),
                Protocol::Tcp6 => (AF_INET6, IPPROTO_TCP),
                Protocol::Udp => (AF_INET, IPPROTO_UDP),
                _ => (AF_INET6, IPPROTO_UDP),
            };
            // inet_diag_req_v2: family, protocol, ext, pad, states, inet_diag_sockid (48 bytes).
            let mut b = vec![family, proto, 0, 0];
            b.extend(ALL_STATES.to_ne_bytes());
            b.extend([0u8; 48]);
            b
        }
    };
    message(SOCK_DIAG_BY_FAMILY, seq, &body)
}

/// The dump request for TCP over IPv4 and IPv6 together (`TCPDIAG_GETSOCK` with the original
/// `inet_diag_req`: family, src_len, dst_len, ext, inet_diag_sockid, states, dbs).
pub fn tcp_both_request(seq: u32) -> Vec<u8> {
    let mut body = vec![AF_INET, 0, 0, 0];
    body.extend([0u8; 48]);
    body.extend(ALL_STATES.to_ne_bytes());
    body.extend(0u32.to_ne_bytes());
    message(TCPDIAG_GETSOCK, seq, &body)
}

fn message(kind: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut msg = Vec::with_capacity(NLMSG_HDRLEN + body.len());
    msg.extend(((NLMSG_HDRLEN + body.len()) as u32).to_ne_bytes());
    msg.extend(kind.to_ne_bytes());
    msg.extend((NLM_F_REQUEST | NLM_F_DUMP).to_ne_bytes());
    msg.extend(seq.to_ne_bytes());
    msg.extend(0u32.to_ne_bytes());
    msg.extend(body);
    msg
}

/// Parses one datagram of a dump reply for `protocol`, appending its sockets to `out`. Returns
/// `Ok(true)` once the kernel's `NLMSG_DONE` is seen. Messages of another sequence number (a stale
/// reply) are skipped. An inet socket's table follows its address family (a
/// [`tcp_both_request`] reply, parsed as `Tcp`, yields `Tcp` and `Tcp6` entries).
pub fn parse_reply(buf: &[u8], protocol: Protocol, seq: u32, out: &mut Vec<SocketEntry>) -> Result<bool, DumpError> {
    let mut off = 0;
    while off < buf.len() {
        let hdr = buf.get(off..off + NLMSG_HDRLEN).ok_or_else(|| malformed("truncated header", off))?;
        let len = u32_at(hdr, 0) as usize;
        let kind = u16::from_ne_bytes([hdr[4], hdr[5]]);
        let msg_seq = u32_at(hdr, 8);
        if len < NLMSG_HDRLEN || off + len > buf.len() {
            return Err(malformed(&format!("message length {len}"), off));
        }
        let payload = &buf[off + NLMSG_HDRLEN..off + len];
        off += (len + 3) & !3;
        if msg_seq != seq {
            continue;
        }
        match kind {
            NLMSG_DONE => return Ok(true),
            NLMSG_NOOP => {}
            NLMSG_ERROR => {
                let errno =
                    payload.get(..4).map(|b| u32_at(b, 0) as i32).ok_or_else(|| malformed("short error", off))?;
                return Err(DumpError::Kernel(-errno));
            }
            SOCK_DIAG_BY_FAMILY | TCPDIAG_GETSOCK => out.push(match protocol {
                Protocol::Unix => unix_msg(payload)?,
                inet => inet_msg(inet, payload)?,
            }),
            other => return Err(malformed(&format!("unexpected message type {other}"), off)),
        }
    }
    Ok(false)
}

fn malformed(what: &str, offset: usize) -> DumpError {
    DumpError::Malformed(format!("{what} at byte {offset}"))
}

fn u32_at(b: &[u8], at: usize) -> u32 {
    u32::from_ne_bytes([b[at], b[at + 1], b[at + 2], b[at + 3]])
}

/// `inet_diag_msg`: family, state, timer, retrans, sockid { sport, dport (big-endian), src[16],
/// dst[16], if, cookie[2] }, expires, rqueue, wqueue, uid, inode.
fn inet_msg(protocol: Protocol, p: &[u8]) -> Result<SocketEntry, DumpError> {
    if p.len() < INET_DIAG_MSG_LEN {
        return Err(DumpError::Malformed(format!("inet_diag_msg of {} bytes", p.len())));
    }
    let protocol = match (p[0], protocol.is_tcp()) {
        (AF_INET, true) => Protocol::Tcp,
        (AF_INET6, true) => Protocol::Tcp6,
        (AF_INET, false) => Protocol::Udp,
        _ => Protocol::Udp6,
    };
    let state = SockState::from_kernel(p[1]);
    let local_port = u16::from_be_bytes([p[4], p[5]]);
    let remote_port = u16::from_be_bytes([p[6], p[7]]);
    let remote = match p[0] {
        AF_INET => IpAddr::V4(Ipv4Addr::new(p[24], p[25], p[26], p[27])),
        AF_INET6 => {
            let mut octets = [0u8; 16];
            octets.copy_from_slice(&p[24..40]);
            IpAddr::V6(Ipv6Addr::from(octets))
        }
        f => return Err(DumpError::Malformed(format!("address family {f} in an inet reply"))),
    };
    let rqueue = u32_at(p, 56);
    let wqueue = u32_at(p, 60);
    let inode = u64::from(u32_at(p, 68));
    let backlog = (state == SockState::Listen && protocol.is_tcp()).then_some(wqueue);
    Ok(SocketEntry {
        protocol,
        state,
        local_port,
        remote: Some((remote, remote_port)),
        rx_queue: rqueue,
        inode,
        backlog,
    })
}

/// `unix_diag_msg`: family, type, state, pad, ino, cookie[2].
fn unix_msg(p: &[u8]) -> Result<SocketEntry, DumpError> {
    if p.len() < UNIX_DIAG_MSG_LEN {
        return Err(DumpError::Malformed(format!("unix_diag_msg of {} bytes", p.len())));
    }
    Ok(SocketEntry {
        protocol: Protocol::Unix,
        state: SockState::from_kernel(p[2]),
        local_port: 0,
        remote: None,
        rx_queue: 0,
        inode: u64::from(u32_at(p, 4)),
        backlog: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header(len: usize, kind: u16, seq: u32) -> Vec<u8> {
        let mut h = Vec::new();
        h.extend((len as u32).to_ne_bytes());
        h.extend(kind.to_ne_bytes());
        h.extend(2u16.to_ne_bytes());
        h.extend(seq.to_ne_bytes());
        h.extend(4242u32.to_ne_bytes());
        h
    }

    fn inet_reply(state: u8, sport: u16, dport: u16, dst: [u8; 4], rq: u32, wq: u32, inode: u32) -> Vec<u8> {
        let mut p = vec![AF_INET, state, 0, 0];
        p.extend(sport.to_be_bytes());
        p.extend(dport.to_be_bytes());
        p.extend([127, 0, 0, 1]);
        p.extend([0u8; 12]);
        p.extend(dst);
        p.extend([0u8; 12]);
        p.extend([0u8; 12]); // if, cookie
        for v in [0u32, rq, wq, 0, inode] {
            p.extend(v.to_ne_bytes());
        }
        let mut m = header(NLMSG_HDRLEN + p.len(), SOCK_DIAG_BY_FAMILY, 7);
        m.extend(p);
        m
    }

    #[test]
    fn requests_have_the_uapi_sizes() {
        let tcp = request(Protocol::Tcp6, 9);
        assert_eq!(tcp.len(), 16 + 56);
        assert_eq!(u32_at(&tcp, 0) as usize, tcp.len());
        assert_eq!((tcp[16], tcp[17]), (AF_INET6, IPPROTO_TCP));
        assert_eq!(u32_at(&tcp, 8), 9);
        let unix = request(Protocol::Unix, 1);
        assert_eq!(unix.len(), 16 + 24);
        assert_eq!(unix[16], AF_UNIX);
        let both = tcp_both_request(3);
        assert_eq!(both.len(), 16 + 60);
        assert_eq!(u16::from_ne_bytes([both[4], both[5]]), TCPDIAG_GETSOCK);
    }

    #[test]
    fn a_reply_yields_sockets_until_done() {
        let mut buf = inet_reply(10, 8080, 0, [0; 4], 3, 128, 111);
        buf.extend(inet_reply(8, 40000, 5432, [10, 0, 0, 5], 0, 0, 222));
        let mut out = Vec::new();
        assert_eq!(parse_reply(&buf, Protocol::Tcp, 7, &mut out), Ok(false));
        assert_eq!(out.len(), 2);
        assert_eq!(
            (out[0].state, out[0].local_port, out[0].rx_queue, out[0].backlog),
            (SockState::Listen, 8080, 3, Some(128))
        );
        assert_eq!(out[1].state, SockState::CloseWait);
        assert_eq!(out[1].remote, Some((IpAddr::V4(Ipv4Addr::new(10, 0, 0, 5)), 5432)));
        assert_eq!((out[1].inode, out[1].backlog), (222, None));
        let mut done = header(20, NLMSG_DONE, 7);
        done.extend(0u32.to_ne_bytes());
        assert_eq!(parse_reply(&done, Protocol::Tcp, 7, &mut out), Ok(true));
        // A TCPDIAG_GETSOCK reply carries both families; each entry goes to its own table.
        let mut v6 = inet_reply(1, 8080, 5000, [0; 4], 0, 0, 333);
        v6[4] = TCPDIAG_GETSOCK as u8;
        v6[16] = AF_INET6;
        out.clear();
        assert_eq!(parse_reply(&v6, Protocol::Tcp, 7, &mut out), Ok(false));
        assert_eq!((out[0].protocol, out[0].inode), (Protocol::Tcp6, 333));
    }

    #[test]
    fn kernel_errors_stale_replies_and_garbage() {
        let mut err = header(20, NLMSG_ERROR, 7);
        err.extend((-2i32).to_ne_bytes());
        let mut out = Vec::new();
        assert_eq!(parse_reply(&err, Protocol::Udp, 7, &mut out), Err(DumpError::Kernel(2)));
        let stale = inet_reply(1, 1, 2, [1, 2, 3, 4], 0, 0, 5);
        assert_eq!(parse_reply(&stale, Protocol::Tcp, 8, &mut out), Ok(false));
        assert!(out.is_empty(), "another request's reply is skipped");
        let mut short = inet_reply(1, 1, 2, [1, 2, 3, 4], 0, 0, 5);
        short.truncate(40);
        assert!(matches!(parse_reply(&short, Protocol::Tcp, 7, &mut out), Err(DumpError::Malformed(_))));
        let mut tiny = header(20, SOCK_DIAG_BY_FAMILY, 7);
        tiny.extend([0u8; 4]);
        assert!(matches!(parse_reply(&tiny, Protocol::Tcp, 7, &mut out), Err(DumpError::Malformed(_))));
        assert!(matches!(parse_reply(&[1, 2, 3], Protocol::Tcp, 7, &mut out), Err(DumpError::Malformed(_))));
        let zero = header(0, SOCK_DIAG_BY_FAMILY, 7);
        assert!(matches!(parse_reply(&zero, Protocol::Tcp, 7, &mut out), Err(DumpError::Malformed(_))));
    }
}

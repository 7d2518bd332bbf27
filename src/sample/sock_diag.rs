//! The `NETLINK_SOCK_DIAG` socket: one dump request per table, replies read until `NLMSG_DONE`.
//! The socket is opened once and reused across passes; any failure closes it, and the next dump
//! opens a new one.

use std::time::Duration;

use rustix::fd::OwnedFd;
use rustix::net::netlink::{self, SocketAddrNetlink};
use rustix::net::{AddressFamily, RecvFlags, SendFlags, SocketFlags, SocketType};

use crate::parse::sock_diag::{parse_reply, request, tcp_both_request, DumpError};
use crate::parse::sockets::{Protocol, SocketEntry};

/// A dump that waits longer than this for the kernel is abandoned (the table is then read from
/// `/proc/net`).
const RECV_TIMEOUT: Duration = Duration::from_secs(1);
/// Receive buffer: the kernel fills dump datagrams up to 32 KiB; twice that leaves room.
const RECV_BUFFER: usize = 64 << 10;
/// At most this many datagrams per dump (about 30 million sockets): a bound on a runaway reply.
const MAX_DATAGRAMS: usize = 1 << 20;

/// Why a dump failed.
#[derive(Debug, thiserror::Error)]
pub enum DiagError {
    /// Opening, sending or receiving failed.
    #[error("sock_diag socket: {0}")]
    Io(#[from] std::io::Error),
    /// The kernel refused or sent something unreadable.
    #[error("{0}")]
    Dump(#[from] DumpError),
}

/// A reusable `NETLINK_SOCK_DIAG` socket in leakwatch's own network namespace.
#[derive(Debug, Default)]
pub struct SockDiag {
    socket: Option<OwnedFd>,
    buf: Vec<u8>,
    seq: u32,
}

impl SockDiag {
    /// Dumps one table into `out` (cleared first).
    pub fn dump(&mut self, protocol: Protocol, out: &mut Vec<SocketEntry>) -> Result<(), DiagError> {
        self.run(protocol, false, out)
    }

    /// Dumps TCP of both families into `out` (cleared first) in one walk of the kernel's table.
    pub fn dump_tcp_both(&mut self, out: &mut Vec<SocketEntry>) -> Result<(), DiagError> {
        self.run(Protocol::Tcp, true, out)
    }

    fn run(&mut self, protocol: Protocol, tcp_both: bool, out: &mut Vec<SocketEntry>) -> Result<(), DiagError> {
        out.clear();
        let result = self.try_dump(protocol, tcp_both, out);
        if result.is_err() {
            // Unread replies of a failed dump must not be taken for the next one's.
            self.socket = None;
            out.clear();
        }
        result
    }

    fn try_dump(&mut self, protocol: Protocol, tcp_both: bool, out: &mut Vec<SocketEntry>) -> Result<(), DiagError> {
        if self.socket.is_none() {
            let fd = rustix::net::socket_with(
                AddressFamily::NETLINK,
                SocketType::DGRAM,
                SocketFlags::CLOEXEC,
                Some(netlink::SOCK_DIAG),
            )
            .map_err(std::io::Error::from)?;
            rustix::net::sockopt::set_socket_timeout(&fd, rustix::net::sockopt::Timeout::Recv, Some(RECV_TIMEOUT))
                .map_err(std::io::Error::from)?;
            self.socket = Some(fd);
        }
        let Some(fd) = self.socket.as_ref() else { return Ok(()) };
        self.seq = self.seq.wrapping_add(1);
        let req = if tcp_both { tcp_both_request(self.seq) } else { request(protocol, self.seq) };
        rustix::net::sendto(fd, &req, SendFlags::empty(), &SocketAddrNetlink::new(0, 0))
            .map_err(std::io::Error::from)?;
        self.buf.resize(RECV_BUFFER, 0);
        for _ in 0..MAX_DATAGRAMS {
            let (n, full) =
                rustix::net::recv(fd, &mut self.buf[..], RecvFlags::empty()).map_err(std::io::Error::from)?;
            if full > n {
                return Err(DumpError::Malformed(format!("datagram of {full} bytes truncated to {n}")).into());
            }
            if n == 0 {
                return Err(DumpError::Malformed("empty datagram".into()).into());
            }
            if parse_reply(&self.buf[..n], protocol, self.seq, out)? {
                return Ok(());
            }
        }
        Err(DumpError::Malformed(format!("no NLMSG_DONE after {MAX_DATAGRAMS} datagrams")).into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse::sockets::SockState;

    #[test]
    fn a_listener_of_this_process_is_in_the_dump() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let inode = rustix::fs::fstat(&listener).unwrap().st_ino;
        let mut diag = SockDiag::default();
        let mut out = Vec::new();
        diag.dump(Protocol::Tcp, &mut out).unwrap();
        let me = out.iter().find(|e| e.inode == inode).expect("own listener in the dump");
        assert_eq!((me.state, me.local_port), (SockState::Listen, port));
        assert!(me.backlog.is_some_and(|b| b > 0));
        diag.dump(Protocol::Unix, &mut out).unwrap();
        let v6 = std::net::TcpListener::bind("[::1]:0").unwrap();
        let v6_inode = rustix::fs::fstat(&v6).unwrap().st_ino;
        diag.dump_tcp_both(&mut out).unwrap();
        assert!(out.iter().any(|e| e.inode == inode && e.protocol == Protocol::Tcp), "IPv4 in the combined dump");
        assert!(out.iter().any(|e| e.inode == v6_inode && e.protocol == Protocol::Tcp6), "IPv6 in the combined dump");
    }
}

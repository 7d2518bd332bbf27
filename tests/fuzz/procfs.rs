//! The pure parsers of `src/parse/`: arbitrary bytes never panic, and generated valid content
//! (written as the kernel writes it) parses back to the values it was made from.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use leakwatch::parse::cgroup::{self, Limit, V1_UNLIMITED_THRESHOLD};
use leakwatch::parse::fdlink::{self, FdKind};
use leakwatch::parse::sockets::{self, Protocol, SockState};
use leakwatch::parse::{kv, pids, pressure, sock_diag, stat, ParseError};
use proptest::collection::vec;
use proptest::prelude::*;

use crate::{check, ensure};

/// Bytes that look like kernel text: digits, hex, keys, separators, units, and some noise.
fn procish() -> impl Strategy<Value = Vec<u8>> {
    let token = prop_oneof![
        "[0-9]{1,22}".prop_map(String::into_bytes),
        "[0-9A-F]{1,32}".prop_map(String::into_bytes),
        "[A-Za-z_]{1,12}".prop_map(String::into_bytes),
        prop_oneof![
            Just(":"),
            Just(" "),
            Just("\t"),
            Just("\n"),
            Just("\r\n"),
            Just(" kB"),
            Just("="),
            Just("max"),
            Just("some"),
            Just("full"),
            Just("avg10="),
            Just("total="),
            Just("("),
            Just(")"),
            Just("-"),
            Just(","),
            Just("/"),
            Just("socket:["),
            Just("]"),
            Just(" (deleted)"),
        ]
        .prop_map(|s| s.as_bytes().to_vec()),
        vec(any::<u8>(), 0..4),
    ];
    vec(token, 0..48).prop_map(|t| t.concat())
}

/// A u64 that is small, near the top, or anywhere (a uniform u64 is almost never 0 or MAX).
fn num() -> impl Strategy<Value = u64> + Clone {
    prop_oneof![0u64..4096, (u64::MAX - 4096)..=u64::MAX, (1u64 << 54)..(1 << 55), any::<u64>()]
}

fn input() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![vec(any::<u8>(), 0..512), procish()]
}

/// A parse error always says where and what.
fn described(e: &ParseError) -> Result<(), TestCaseError> {
    let text = e.to_string();
    ensure!(!text.is_empty(), "an empty error message: {e:?}");
    if let ParseError::Malformed { line, .. } = e {
        ensure!(*line >= 1, "line numbers are 1-based: {e:?}");
    }
    Ok(())
}

#[test]
fn every_parser_takes_arbitrary_bytes_without_panicking() {
    check("parse::arbitrary_bytes", input(), |bytes| {
        match kv::colon_keyed(&bytes) {
            Ok(keyed) => {
                for key in ["VmRSS", "Threads", "MemTotal", "Name", ""] {
                    let _ = keyed.text(key);
                    if let Err(e) = keyed.bytes(key) {
                        described(&e)?;
                    }
                    if let Err(e) = keyed.count(key) {
                        described(&e)?;
                    }
                }
            }
            Err(e) => described(&e)?,
        }
        for result in [cgroup::single_value(&bytes).map(|_| ()), cgroup::limit(&bytes).map(|_| ())] {
            if let Err(e) = result {
                described(&e)?;
            }
        }
        match cgroup::flat_keyed(&bytes) {
            Ok(f) => {
                let _ = (f.get("anon"), f.len(), f.is_empty());
            }
            Err(e) => described(&e)?,
        }
        if let Err(e) = cgroup::memberships(&bytes) {
            described(&e)?;
        }
        match pressure::pressure(&bytes) {
            Ok(p) => {
                for line in [p.some, p.full].into_iter().flatten() {
                    for avg in [line.avg10, line.avg60, line.avg300] {
                        ensure!(avg.is_finite() && avg >= 0.0, "a PSI average {avg} passed");
                    }
                }
            }
            Err(e) => described(&e)?,
        }
        if let Err(e) = pids::max(&bytes) {
            described(&e)?;
        }
        if let Err(e) = stat::brief(&bytes) {
            described(&e)?;
        }
        let (kind, inode) = fdlink::classify(&bytes);
        ensure!(inode.is_none() || kind == FdKind::Socket, "an inode for a {kind:?}");
        let text = String::from_utf8_lossy(&bytes);
        for line in text.lines() {
            for protocol in Protocol::ALL {
                if let Ok(e) = sockets::inet_line(protocol, line) {
                    ensure!(e.protocol == protocol && e.remote.is_some(), "{e:?} from {line:?}");
                }
            }
            if let Ok(e) = sockets::unix_line(line) {
                ensure!(e.protocol == Protocol::Unix && e.remote.is_none(), "{e:?} from {line:?}");
            }
            let _ = sockets::is_header(line);
        }
        Ok(())
    });
}

/// A netlink message: header (length possibly wrong), type, sequence number, payload.
fn netlink_message() -> impl Strategy<Value = Vec<u8>> {
    let kind = prop_oneof![Just(1u16), Just(2), Just(3), Just(18), Just(20), any::<u16>()];
    let len_delta = prop_oneof![4 => Just(0i64), 1 => -20i64..20];
    (kind, prop_oneof![Just(7u32), any::<u32>()], len_delta, vec(any::<u8>(), 0..96)).prop_map(
        |(kind, seq, delta, payload)| {
            let len = (16 + payload.len() as i64 + delta).max(0) as u32;
            let mut m = Vec::new();
            m.extend(len.to_ne_bytes());
            m.extend(kind.to_ne_bytes());
            m.extend(2u16.to_ne_bytes());
            m.extend(seq.to_ne_bytes());
            m.extend(0u32.to_ne_bytes());
            m.extend(payload);
            while m.len() % 4 != 0 {
                m.push(0);
            }
            m
        },
    )
}

#[test]
fn sock_diag_replies_of_any_shape_never_panic() {
    let buf = prop_oneof![vec(any::<u8>(), 0..512), vec(netlink_message(), 0..6).prop_map(|m| m.concat())];
    let protocol = proptest::sample::select(Protocol::ALL.to_vec());
    check("parse::sock_diag_arbitrary", (buf, protocol, prop_oneof![Just(7u32), any::<u32>()]), |(buf, p, seq)| {
        let mut out = Vec::new();
        match sock_diag::parse_reply(&buf, p, seq, &mut out) {
            Ok(_) => {
                for e in &out {
                    ensure!(e.protocol.is_tcp() == p.is_tcp() || p == Protocol::Unix, "{e:?} in a {p:?} dump");
                    ensure!((e.protocol == Protocol::Unix) == (p == Protocol::Unix), "{e:?} in a {p:?} dump");
                }
            }
            Err(e) => ensure!(!e.to_string().is_empty(), "empty error"),
        }
        let request = sock_diag::request(p, seq);
        ensure!(u32::from_ne_bytes([request[0], request[1], request[2], request[3]]) as usize == request.len(), "");
        Ok(())
    });
}

/// One socket as a generator knows it.
#[derive(Debug, Clone)]
struct Sock {
    protocol: Protocol,
    state: u8,
    local: (IpAddr, u16),
    remote: (IpAddr, u16),
    rx: u32,
    tx: u32,
    inode: u32,
    uid: u32,
}

fn sock() -> impl Strategy<Value = Sock> {
    let protocol = proptest::sample::select(vec![Protocol::Tcp, Protocol::Tcp6, Protocol::Udp, Protocol::Udp6]);
    (protocol, 0u8..=13, any::<[u8; 16]>(), any::<[u8; 16]>(), any::<(u16, u16, u32, u32, u32, u32)>()).prop_map(
        |(protocol, state, a, b, (lp, rp, rx, tx, inode, uid))| {
            let ip = |o: [u8; 16]| match protocol {
                Protocol::Tcp | Protocol::Udp => IpAddr::V4(Ipv4Addr::new(o[0], o[1], o[2], o[3])),
                _ => IpAddr::V6(Ipv6Addr::from(o)),
            };
            Sock { protocol, state, local: (ip(a), lp), remote: (ip(b), rp), rx, tx, inode, uid }
        },
    )
}

/// `HEXADDR:HEXPORT` as `/proc/net/tcp` prints it: each 32-bit word of the address in host order.
fn proc_endpoint((ip, port): (IpAddr, u16)) -> String {
    let words: Vec<String> = match ip {
        IpAddr::V4(v4) => vec![format!("{:08X}", u32::from_ne_bytes(v4.octets()))],
        IpAddr::V6(v6) => v6
            .octets()
            .chunks_exact(4)
            .map(|c| format!("{:08X}", u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
            .collect(),
    };
    format!("{}:{port:04X}", words.concat())
}

#[test]
fn generated_proc_net_rows_parse_back_to_their_fields() {
    check("parse::proc_net_roundtrip", (sock(), 0usize..5000), |(s, slot)| {
        let line = format!(
            "{slot:4}: {} {} {:02X} {:08X}:{:08X} 00:00000000 00000000 {:5} 0 {} 1 0000000000000000 20 4 30 10 -1",
            proc_endpoint(s.local),
            proc_endpoint(s.remote),
            s.state,
            s.tx,
            s.rx,
            s.uid,
            s.inode
        );
        let e = sockets::inet_line(s.protocol, &line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        ensure!(e.state == SockState::from_kernel(s.state), "state of {line:?}: {:?}", e.state);
        ensure!(e.local_port == s.local.1, "local port of {line:?}");
        ensure!(e.remote == Some(s.remote), "remote of {line:?}: {:?} != {:?}", e.remote, s.remote);
        ensure!(e.rx_queue == s.rx && e.inode == u64::from(s.inode), "rx/inode of {line:?}: {e:?}");
        Ok(())
    });
}

#[test]
fn generated_sock_diag_replies_parse_back_to_their_sockets() {
    check("parse::sock_diag_roundtrip", (vec(sock(), 0..8), any::<u32>(), any::<bool>()), |(socks, seq, done)| {
        let mut buf = Vec::new();
        for s in &socks {
            let family = if matches!(s.remote.0, IpAddr::V4(_)) { 2u8 } else { 10 };
            let mut p = vec![family, s.state, 0, 0];
            p.extend(s.local.1.to_be_bytes());
            p.extend(s.remote.1.to_be_bytes());
            let octets = |ip: IpAddr| match ip {
                IpAddr::V4(v4) => [v4.octets().as_slice(), &[0u8; 12]].concat(),
                IpAddr::V6(v6) => v6.octets().to_vec(),
            };
            p.extend(octets(s.local.0));
            p.extend(octets(s.remote.0));
            p.extend([0u8; 12]); // interface, cookie
            for v in [0u32, s.rx, s.tx, s.uid, s.inode] {
                p.extend(v.to_ne_bytes());
            }
            buf.extend(((16 + p.len()) as u32).to_ne_bytes());
            buf.extend(20u16.to_ne_bytes());
            buf.extend(2u16.to_ne_bytes());
            buf.extend(seq.to_ne_bytes());
            buf.extend(0u32.to_ne_bytes());
            buf.extend(p);
        }
        if done {
            buf.extend(20u32.to_ne_bytes());
            buf.extend(3u16.to_ne_bytes());
            buf.extend(2u16.to_ne_bytes());
            buf.extend(seq.to_ne_bytes());
            buf.extend([0u8; 8]);
        }
        // A TCP dump is asked for as Tcp (both families come back); UDP as Udp.
        let asked = |s: &Sock| if s.protocol.is_tcp() { Protocol::Tcp } else { Protocol::Udp };
        for p in [Protocol::Tcp, Protocol::Udp] {
            let mine: Vec<&Sock> = socks.iter().filter(|s| asked(s) == p).collect();
            let mut out = Vec::new();
            // Parse only this protocol's messages: rebuild a buffer of them.
            let mut own = Vec::new();
            let mut off = 0;
            for s in &socks {
                let len = 16 + 72;
                if asked(s) == p {
                    own.extend_from_slice(&buf[off..off + len]);
                }
                off += len;
            }
            own.extend_from_slice(&buf[off..]);
            let finished = sock_diag::parse_reply(&own, p, seq, &mut out)
                .map_err(|e| TestCaseError::fail(format!("{p:?}: {e}")))?;
            ensure!(finished == done, "done {done}, parser said {finished}");
            ensure!(out.len() == mine.len(), "{} sockets, {} parsed", mine.len(), out.len());
            for (s, e) in mine.iter().zip(&out) {
                ensure!(e.protocol == s.protocol, "{:?} came back as {:?}", s.protocol, e.protocol);
                ensure!(e.state == SockState::from_kernel(s.state) && e.local_port == s.local.1, "{e:?} from {s:?}");
                ensure!(e.remote == Some(s.remote) && e.rx_queue == s.rx, "{e:?} from {s:?}");
                ensure!(e.inode == u64::from(s.inode), "{e:?} from {s:?}");
                let listening_tcp = e.state == SockState::Listen && e.protocol.is_tcp();
                ensure!(e.backlog == listening_tcp.then_some(s.tx), "backlog of {e:?} from {s:?}");
            }
        }
        Ok(())
    });
}

#[test]
fn generated_unix_rows_parse_back() {
    let row = (num(), any::<u32>(), 0u8..=5, any::<u32>(), "[ -~]{0,40}");
    check("parse::proc_net_unix_roundtrip", row, |(num, flags, st, inode, path)| {
        let line = format!("{num:016X}: 00000002 00000000 {flags:08X} 0001 {st:02X} {inode} {path}");
        let e = sockets::unix_line(&line).map_err(|e| TestCaseError::fail(format!("{line:?}: {e}")))?;
        let state = if flags & (1 << 16) != 0 {
            SockState::Listen
        } else {
            match st {
                1 | 4 => SockState::Close,
                2 => SockState::SynSent,
                3 => SockState::Established,
                _ => SockState::Unknown,
            }
        };
        ensure!(e.state == state && e.inode == u64::from(inode), "{e:?} from {line:?}");
        Ok(())
    });
}

#[test]
fn generated_kernel_files_parse_back_to_their_values() {
    let keys = vec(("[A-Za-z][A-Za-z0-9_()]{0,15}", num(), any::<bool>()), 1..20);
    check("parse::colon_keyed_roundtrip", keys, |rows| {
        let text: String = rows
            .iter()
            .map(|(k, v, kb)| if *kb { format!("{k}:\t{v:>8} kB\n") } else { format!("{k}:\t{v}\n") })
            .collect();
        let parsed = kv::colon_keyed(text.as_bytes()).map_err(|e| TestCaseError::fail(format!("{text:?}: {e}")))?;
        for (k, _, _) in &rows {
            // The first occurrence of a key wins.
            let (_, v, kb) = rows.iter().find(|(k2, _, _)| k2 == k).expect("the key is in the rows");
            let expected = if *kb { v.checked_mul(1024) } else { Some(*v) };
            match (parsed.bytes(k), expected) {
                (Ok(Some(got)), Some(want)) => ensure!(got == want, "{k}: {got} != {want}"),
                (Err(e), None) => ensure!(e.to_string().contains("overflows"), "{k}: {e}"),
                (got, want) => return Err(TestCaseError::fail(format!("{k}: {got:?}, expected {want:?}"))),
            }
            ensure!(*kb || parsed.count(k) == Ok(Some(*v)), "count of {k}");
        }
        Ok(())
    });
    let flat = vec(("[a-z_]{1,20}", num()), 0..30);
    check("parse::flat_keyed_roundtrip", (flat, any::<bool>()), |(rows, crlf)| {
        let eol = if crlf { "\r\n" } else { "\n" };
        let text: String = rows.iter().map(|(k, v)| format!("{k} {v}{eol}")).collect();
        let parsed = cgroup::flat_keyed(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ensure!(parsed.len() == rows.len(), "{} rows, {} parsed", rows.len(), parsed.len());
        for (k, _) in &rows {
            let first = rows.iter().find(|(k2, _)| k2 == k).map(|(_, v)| *v);
            ensure!(parsed.get(k) == first, "{k}");
        }
        Ok(())
    });
    check("parse::single_value_limit_pids_roundtrip", (num(), any::<bool>()), |(v, crlf)| {
        let text = format!("{v}{}", if crlf { "\r\n" } else { "\n" });
        ensure!(cgroup::single_value(text.as_bytes()) == Ok(v), "single_value({text:?})");
        let limit = if v >= V1_UNLIMITED_THRESHOLD { Limit::Unlimited } else { Limit::Bytes(v) };
        ensure!(cgroup::limit(text.as_bytes()) == Ok(limit), "limit({text:?})");
        ensure!(pids::max(text.as_bytes()) == Ok(Some(v)), "pids::max({text:?})");
        Ok(())
    });
    let membership = vec((0u32..=20, vec("[a-z_=]{1,10}", 0..4), "/[ -~]{0,40}", any::<bool>()), 1..8);
    check("parse::cgroup_membership_roundtrip", membership, |rows| {
        let text: String = rows
            .iter()
            .map(|(id, ctl, path, deleted)| {
                format!("{id}:{}:{path}{}\n", ctl.join(","), if *deleted { " (deleted)" } else { "" })
            })
            .collect();
        let parsed = cgroup::memberships(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        ensure!(parsed.len() == rows.len(), "{text:?}");
        for ((id, ctl, path, _), m) in rows.iter().zip(&parsed) {
            ensure!(m.hierarchy == *id && &m.controllers == ctl, "{m:?} from {text:?}");
            // A path that itself ends in " (deleted)" loses it once, as the kernel's suffix.
            ensure!(m.path == *path, "path {path:?} came back as {:?}", m.path);
        }
        Ok(())
    });
    let psi_line = (0u32..=10000, 0u32..=10000, 0u32..=10000, num());
    check("parse::pressure_roundtrip", (psi_line.clone(), proptest::option::of(psi_line)), |(some, full)| {
        let line = |kind: &str, (a, b, c, t): (u32, u32, u32, u64)| {
            format!(
                "{kind} avg10={}.{:02} avg60={}.{:02} avg300={}.{:02} total={t}\n",
                a / 100,
                a % 100,
                b / 100,
                b % 100,
                c / 100,
                c % 100
            )
        };
        let mut text = line("some", some);
        if let Some(f) = full {
            text.push_str(&line("full", f));
        }
        let p = pressure::pressure(text.as_bytes()).map_err(|e| TestCaseError::fail(e.to_string()))?;
        let same = |got: Option<pressure::PressureLine>, (a, b, c, t): (u32, u32, u32, u64)| {
            got.is_some_and(|g| {
                g.total_us == t
                    && [(g.avg10, a), (g.avg60, b), (g.avg300, c)]
                        .iter()
                        .all(|(v, w)| (v - f64::from(*w) / 100.0).abs() < 1e-9)
            })
        };
        ensure!(same(p.some, some), "{p:?} from {text:?}");
        ensure!(full.map_or(p.full.is_none(), |f| same(p.full, f)), "{p:?} from {text:?}");
        Ok(())
    });
}

#[test]
fn generated_stat_lines_and_fd_links_parse_back() {
    // comm may hold anything the kernel allows (16 bytes, no NUL), spaces and parentheses included.
    let comm = vec(any::<u8>().prop_filter("no NUL", |b| *b != 0), 0..16);
    let state = proptest::sample::select(b"RSDZTtXIPKW".to_vec());
    let fields = (any::<i32>(), comm, state, any::<i32>(), num(), vec(any::<i64>(), 17..40));
    check("parse::stat_roundtrip", fields, |(pid, comm, state, ppid, start, mut rest)| {
        let mut line = format!("{pid} (").into_bytes();
        line.extend(&comm);
        line.extend(format!(") {} {ppid}", state as char).into_bytes());
        // Fields 5..=21 (17 of them), then starttime (22), then the rest.
        let tail = rest.split_off(17);
        for f in &rest {
            line.extend(format!(" {f}").into_bytes());
        }
        line.extend(format!(" {start}").into_bytes());
        for f in &tail {
            line.extend(format!(" {f}").into_bytes());
        }
        line.push(b'\n');
        let b = stat::brief(&line)
            .map_err(|e| TestCaseError::fail(format!("{:?}: {e}", String::from_utf8_lossy(&line))))?;
        ensure!(
            b.state == state && b.ppid == ppid && b.start_ticks == start,
            "{b:?} from {:?}",
            String::from_utf8_lossy(&line)
        );
        Ok(())
    });
    check("parse::fdlink_roundtrip", num(), |inode| {
        let link = format!("socket:[{inode}]");
        ensure!(fdlink::classify(link.as_bytes()) == (FdKind::Socket, Some(inode)), "{link}");
        Ok(())
    });
}

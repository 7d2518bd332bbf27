//! Sockets of the target group: the namespace's socket tables matched by inode with the group's
//! descriptors, counted by table and state, listeners' accept queues, peer groups, and ages from a
//! bounded first-seen map.
//!
//! The tables come from a `NETLINK_SOCK_DIAG` dump when leakwatch shares the group leader's
//! network namespace (a sidecar in the same pod does), which costs a fraction of reading
//! `/proc/net/tcp`: that file walks the whole hash table and formats every row. Otherwise (another
//! namespace, a fixture tree, `connections.method: proc_net`, a kernel without the diag module for
//! a table) the leader's `/proc/PID/net/*` files are read.

use std::collections::{BTreeMap, HashMap};
use std::io::{BufRead, BufReader};
use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use super::read::{record, ReadError};
use super::sock_diag::{DiagError, SockDiag};
use crate::measure::{shrink_map, shrink_vec, trim_with, Structure, Trimmed};
use crate::parse::sock_diag::DumpError;
use crate::parse::sockets::{inet_line, is_header, unix_line, Protocol, SockState, SocketEntry};
use crate::parse::ParseError;
use crate::roots::Roots;
use crate::snapshot::{ErrorCounts, ErrorReason, ErrorSource, Listener, PeerSample, SocketMethod, SocketSample};

/// A `/proc/net` table longer than this many rows is refused (a time bound on the fallback).
pub const MAX_TABLE_ROWS: usize = 1_000_000;

/// Which way to read the socket tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MethodChoice {
    /// `sock_diag` when leakwatch shares the leader's network namespace, else `/proc/PID/net`.
    Auto,
    /// Always `/proc/PID/net`.
    ProcNet,
}

/// A configured peer group: TCP connections to a remote port (and optionally one address).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PeerSpec {
    /// The `peer` label value.
    pub name: String,
    /// The remote port, e.g. 5432.
    pub remote_port: u16,
    /// Only connections to this address (IPv4-mapped IPv6 peers match their IPv4 form).
    pub remote_address: Option<IpAddr>,
    /// The limit the connections are measured against (e.g. the pool size).
    pub limit: u64,
}

impl PeerSpec {
    fn matches(&self, remote: Option<(IpAddr, u16)>) -> bool {
        match remote {
            Some((addr, port)) => {
                port == self.remote_port && self.remote_address.is_none_or(|want| want == addr.to_canonical())
            }
            None => false,
        }
    }
}

/// Default cap on the sockets in the first-seen map.
pub const DEFAULT_CONN_MAX_TRACKED: usize = 65_536;

/// The socket sampler's settings, from `connections:`.
#[derive(Debug, Clone)]
pub struct ConnSettings {
    /// How to read the tables.
    pub method: MethodChoice,
    /// The peer groups.
    pub peers: Vec<PeerSpec>,
    /// Age past which a held socket is stale.
    pub stale_after: Duration,
    /// Cap on the first-seen map.
    pub max_tracked: usize,
}

impl Default for ConnSettings {
    fn default() -> Self {
        Self {
            method: MethodChoice::Auto,
            peers: Vec::new(),
            stale_after: super::DEFAULT_STALE_AFTER,
            max_tracked: DEFAULT_CONN_MAX_TRACKED,
        }
    }
}

/// State kept between passes: the netlink socket, tables whose diag module is missing, and the
/// first-seen map.
#[derive(Debug)]
pub struct ConnSampler {
    settings: ConnSettings,
    diag: SockDiag,
    /// `(st_dev, st_ino)` of leakwatch's own `/proc/self/ns/net`.
    own_netns: Option<(u64, u64)>,
    /// Dumps the kernel refused (no diag module): not tried again.
    no_diag: Vec<Dump>,
    /// Socket inode → when it was first seen held.
    first_seen: HashMap<u64, Instant>,
    entries: Vec<SocketEntry>,
    /// The most rows one table read needed in the last pass (the working size of `entries`).
    rows_needed: usize,
    line: Vec<u8>,
}

fn rows_structure(rows: &Vec<SocketEntry>) -> Structure {
    Structure::deque::<SocketEntry>("conn_table_rows", rows.len(), rows.capacity(), None)
}

fn netns_id(path: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|m| (m.dev(), m.ino()))
}

fn state_index(s: SockState) -> usize {
    s as usize
}

const STATES: usize = SockState::ALL.len();
const PROTOCOLS: usize = Protocol::ALL.len();

/// Counts by state, as an array while counting.
type StateCounts = [u64; STATES];

fn to_map<K: Ord>(counts: &StateCounts, key: impl Fn(SockState) -> K, out: &mut BTreeMap<K, u64>) {
    for (i, &n) in counts.iter().enumerate() {
        if n > 0 {
            out.insert(key(SockState::ALL[i]), n);
        }
    }
}

impl ConnSampler {
    /// A sampler; `own_roots` is leakwatch's own `/proc` (for its network namespace).
    pub fn new(settings: ConnSettings, own_roots: &Roots) -> Self {
        Self {
            settings,
            diag: SockDiag::default(),
            own_netns: netns_id(&own_roots.proc_file("self/ns/net")),
            no_diag: Vec::new(),
            first_seen: HashMap::new(),
            entries: Vec::new(),
            rows_needed: 0,
            line: Vec::new(),
        }
    }

    /// Its structures: the first-seen map and the buffer table rows are read into.
    pub fn structures(&self) -> [Structure; 2] {
        [
            Structure::map("conn_first_seen", &self.first_seen, Some(self.settings.max_tracked)),
            rows_structure(&self.entries),
        ]
    }

    /// Releases the first-seen map's room left by sockets that went away, and the row buffer's
    /// room beyond what the last pass needed. Every tracked socket keeps its first-seen time.
    pub fn trim(&mut self) -> Vec<Trimmed> {
        let max = Some(self.settings.max_tracked);
        let map = trim_with(&mut self.first_seen, |m| Structure::map("conn_first_seen", m, max), shrink_map);
        let need = self.rows_needed;
        let rows = trim_with(&mut self.entries, rows_structure, |e| shrink_vec(e, need));
        map.into_iter().chain(rows).collect()
    }

    /// Drops every first-seen time (the target is gone: its sockets with it).
    pub fn forget(&mut self) {
        self.first_seen.clear();
    }

    /// New settings (a reload); the first-seen map is kept, cut to a lowered cap (the oldest
    /// first-seen times stay: they decide staleness).
    pub fn set_settings(&mut self, settings: ConnSettings) {
        let keep = settings.max_tracked;
        if self.first_seen.len() > keep {
            let mut by_age: Vec<(Instant, u64)> = self.first_seen.iter().map(|(k, t)| (*t, *k)).collect();
            by_age.sort_unstable();
            for (_, inode) in &by_age[keep..] {
                self.first_seen.remove(inode);
            }
        }
        self.settings = settings;
    }

    /// One pass: the tables of `leader`'s network namespace, matched against `inodes` (the
    /// group's socket inodes, sorted and deduplicated).
    pub fn sample(&mut self, roots: &Roots, leader: i32, inodes: &[u64], errors: &mut ErrorCounts) -> SocketSample {
        let started = Instant::now();
        // Sockets the group no longer holds leave the map before new ones ask for room.
        self.first_seen.retain(|inode, _| inodes.binary_search(inode).is_ok());
        let shared_netns = self.settings.method == MethodChoice::Auto
            && self.own_netns.is_some()
            && netns_id(&roots.pid(leader).join("ns/net")) == self.own_netns;
        let mut out = SocketSample {
            stale_after: self.settings.stale_after,
            tracked_max: self.settings.max_tracked,
            ..SocketSample::default()
        };
        let mut peers: Vec<(StateCounts, u64)> = vec![([0; STATES], 0); self.settings.peers.len()];
        let mut held = [[0u64; STATES]; PROTOCOLS];
        let mut netns = [[0u64; STATES]; PROTOCOLS];
        self.rows_needed = 0;
        for protocol in Protocol::ALL {
            if out.methods.contains_key(&protocol) {
                continue;
            }
            let Some((method, covered)) = self.table(roots, leader, protocol, shared_netns, errors) else { continue };
            self.rows_needed = self.rows_needed.max(self.entries.len());
            for p in covered {
                out.methods.insert(*p, method);
            }
            for e in &self.entries {
                let (pi, si) = (e.protocol as usize, state_index(e.state));
                netns[pi][si] += 1;
                if e.inode == 0 || inodes.binary_search(&e.inode).is_err() {
                    continue;
                }
                held[pi][si] += 1;
                let room = self.first_seen.len() < self.settings.max_tracked;
                let stale = match self.first_seen.get(&e.inode) {
                    Some(first) => started.duration_since(*first) >= self.settings.stale_after,
                    None if room => {
                        self.first_seen.insert(e.inode, started);
                        self.settings.stale_after.is_zero()
                    }
                    None => {
                        out.untracked += 1;
                        false
                    }
                } && e.state != SockState::Listen;
                out.stale += u64::from(stale);
                if !e.protocol.is_tcp() {
                    continue;
                }
                if e.state == SockState::Listen {
                    out.listeners.push(Listener {
                        protocol: e.protocol,
                        port: e.local_port,
                        queued: u64::from(e.rx_queue),
                        backlog: e.backlog.map(u64::from),
                    });
                    continue;
                }
                for (spec, (counts, stale_n)) in self.settings.peers.iter().zip(peers.iter_mut()) {
                    if spec.matches(e.remote) {
                        counts[si] += 1;
                        *stale_n += u64::from(stale);
                    }
                }
            }
        }
        for protocol in Protocol::ALL {
            to_map(&held[protocol as usize], |s| (protocol, s), &mut out.held);
            to_map(&netns[protocol as usize], |s| (protocol, s), &mut out.netns);
        }
        out.tracked = self.first_seen.len();
        out.accept_queue_utilization = out
            .listeners
            .iter()
            .filter_map(|l| l.backlog.filter(|b| *b > 0).map(|b| l.queued as f64 / b as f64))
            .reduce(f64::max);
        out.peers = self
            .settings
            .peers
            .iter()
            .zip(peers)
            .map(|(spec, (counts, stale))| {
                let mut by_state = BTreeMap::new();
                to_map(&counts, |s| s, &mut by_state);
                let connections = counts.iter().sum();
                PeerSample {
                    name: spec.name.clone(),
                    limit: spec.limit,
                    by_state,
                    connections,
                    stale,
                    utilization: connections as f64 / spec.limit as f64,
                }
            })
            .collect();
        out.duration = started.elapsed();
        out
    }

    /// Reads one table into `self.entries`; returns how, and which tables the entries cover (one
    /// `sock_diag` dump of TCP covers `tcp` and `tcp6`: one walk of the kernel's hash table instead
    /// of two). `None` when the table could not be read either way.
    fn table(
        &mut self,
        roots: &Roots,
        leader: i32,
        protocol: Protocol,
        shared_netns: bool,
        errors: &mut ErrorCounts,
    ) -> Option<(SocketMethod, &'static [Protocol])> {
        const TCP_BOTH: &[Protocol] = &[Protocol::Tcp, Protocol::Tcp6];
        if shared_netns && protocol == Protocol::Tcp && !self.no_diag.contains(&Dump::TcpBoth) {
            match self.diag.dump_tcp_both(&mut self.entries) {
                Ok(()) => return Some((SocketMethod::SockDiag, TCP_BOTH)),
                Err(e) => self.diag_failed(Dump::TcpBoth, &e, errors),
            }
        }
        if shared_netns && !self.no_diag.contains(&Dump::Table(protocol)) {
            match self.diag.dump(protocol, &mut self.entries) {
                Ok(()) => return Some((SocketMethod::SockDiag, one(protocol))),
                Err(e) => self.diag_failed(Dump::Table(protocol), &e, errors),
            }
        }
        let path = roots.pid(leader).join("net").join(protocol.as_str());
        match read_table(&path, protocol, &mut self.entries, &mut self.line) {
            Ok(bad) => {
                if let Some(err) = bad {
                    // The good rows are kept; the file is counted once per pass.
                    record(errors, ErrorSource::ProcNet, &err);
                }
                Some((SocketMethod::ProcNet, one(protocol)))
            }
            Err(err) => {
                record(errors, ErrorSource::ProcNet, &err);
                None
            }
        }
    }

    /// A refused dump (no diag module, no compat interface) is not tried again; any failure is
    /// counted, and the caller falls back.
    fn diag_failed(&mut self, dump: Dump, e: &DiagError, errors: &mut ErrorCounts) {
        if let DiagError::Dump(DumpError::Kernel(errno)) = e {
            tracing::info!(?dump, errno, "the kernel refuses this sock_diag dump; not trying it again");
            self.no_diag.push(dump);
            if dump == Dump::TcpBoth {
                // Expected on kernels without the compat interface: the per-family dumps follow.
                return;
            }
        }
        let reason = match e {
            DiagError::Io(io) if io.kind() == std::io::ErrorKind::PermissionDenied => ErrorReason::PermissionDenied,
            DiagError::Dump(DumpError::Malformed(_)) => ErrorReason::Malformed,
            _ => ErrorReason::Io,
        };
        if errors.record(ErrorSource::SockDiag, reason) {
            tracing::warn!(?dump, "sock_diag dump failed: {e}; falling back");
        }
    }
}

/// The one-table slice for `protocol`.
fn one(protocol: Protocol) -> &'static [Protocol] {
    let i = protocol as usize;
    &Protocol::ALL[i..=i]
}

/// A kind of `sock_diag` dump.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dump {
    /// One table by family (`SOCK_DIAG_BY_FAMILY`).
    Table(Protocol),
    /// TCP of both families in one walk (`TCPDIAG_GETSOCK`).
    TcpBoth,
}

/// Streams a `/proc/net` table into `out`. Malformed rows are skipped; the first one is returned
/// as `Ok(Some(error))` so it is counted while the rest of the table is still used.
pub fn read_table(
    path: &Path,
    protocol: Protocol,
    out: &mut Vec<SocketEntry>,
    line: &mut Vec<u8>,
) -> Result<Option<ReadError>, ReadError> {
    out.clear();
    let io_err = |source| ReadError::Io { path: path.display().to_string(), source };
    let mut reader = BufReader::with_capacity(64 << 10, std::fs::File::open(path).map_err(io_err)?);
    let mut first_bad = None;
    for n in 1.. {
        line.clear();
        if reader.read_until(b'\n', line).map_err(io_err)? == 0 {
            break;
        }
        if n > MAX_TABLE_ROWS {
            return Err(ReadError::TooLarge { path: path.display().to_string() });
        }
        let text = String::from_utf8_lossy(line);
        if text.trim().is_empty() || (n == 1 && is_header(&text)) {
            continue;
        }
        let parsed = match protocol {
            Protocol::Unix => unix_line(&text),
            inet => inet_line(inet, &text),
        };
        match parsed {
            Ok(entry) => out.push(entry),
            Err(reason) if first_bad.is_none() => first_bad = Some(ReadError::parse(path, ParseError::at(n, reason))),
            Err(_) => {}
        }
    }
    Ok(first_bad)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peers_match_port_and_canonical_address() {
        let spec = PeerSpec {
            name: "pg".into(),
            remote_port: 5432,
            remote_address: Some("10.0.0.5".parse().unwrap()),
            limit: 20,
        };
        assert!(spec.matches(Some(("10.0.0.5".parse().unwrap(), 5432))));
        assert!(spec.matches(Some(("::ffff:10.0.0.5".parse().unwrap(), 5432))));
        assert!(!spec.matches(Some(("10.0.0.6".parse().unwrap(), 5432))));
        assert!(!spec.matches(Some(("10.0.0.5".parse().unwrap(), 5433))));
        assert!(!spec.matches(None));
        let any = PeerSpec { remote_address: None, ..spec };
        assert!(any.matches(Some(("::1".parse().unwrap(), 5432))));
    }

    /// A procfs root with `PID/net/*` tables: `tcp` holds `rows` (inode, state, remote port).
    fn tree(tag: &str, rows: &[(u64, u8, u16)]) -> std::path::PathBuf {
        let root = std::env::temp_dir().join(format!("leakwatch-conns-{tag}-{}", std::process::id()));
        let net = root.join("7/net");
        std::fs::create_dir_all(&net).unwrap();
        let mut tcp = String::from(
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n",
        );
        for (i, (inode, st, port)) in rows.iter().enumerate() {
            tcp.push_str(&format!(
                "{i:4}: 0100007F:1F90 0100007F:{port:04X} {st:02X} 00000000:00000000 00:00000000 00000000 0 0 {inode} 1 0 20 4 30 10 -1\n"
            ));
        }
        std::fs::write(net.join("tcp"), tcp).unwrap();
        for t in ["tcp6", "udp", "udp6"] {
            std::fs::write(net.join(t), "  sl  local_address rem_address   st\n").unwrap();
        }
        std::fs::write(net.join("unix"), "Num       RefCount Protocol Flags    Type St Inode Path\n").unwrap();
        root
    }

    #[test]
    fn trimming_the_map_keeps_every_tracked_socket_and_its_first_seen_time() {
        let rows: Vec<(u64, u8, u16)> = (1..=3000).map(|i| (i, 1, 5432)).collect();
        let root = tree("trim", &rows);
        let roots = Roots::new(&root, "/nonexistent");
        let settings = ConnSettings { stale_after: Duration::from_millis(300), ..ConnSettings::default() };
        let mut sampler = ConnSampler::new(settings, &Roots::default());
        let mut errors = ErrorCounts::default();
        let all: Vec<u64> = (1..=3000).collect();
        assert_eq!(sampler.sample(&roots, 7, &all, &mut errors).tracked, 3000);
        std::thread::sleep(Duration::from_millis(350));
        // All but 5 close: the map is pruned, its room stays.
        let left = sampler.sample(&roots, 7, &[1, 2, 3, 4, 5], &mut errors);
        assert_eq!((left.tracked, left.stale), (5, 5));
        let [map_before, _] = sampler.structures();
        assert!(map_before.bytes > Some(50_000), "the room of 3000 sockets: {map_before:?}");
        let trimmed = sampler.trim();
        let t = trimmed.iter().find(|t| t.name == "conn_first_seen").expect("the map was trimmed");
        let [map_after, _] = sampler.structures();
        assert_eq!((t.bytes_before, Some(t.bytes_after)), (map_before.bytes.unwrap(), map_after.bytes));
        assert_eq!((t.len_before, t.len_after), (5, 5));
        assert!(t.freed_bytes > 50_000, "{t:?}");
        // The rows buffer keeps what the last pass needed (the table has 3000 rows).
        assert!(trimmed.iter().all(|t| t.name != "conn_table_rows" || t.capacity_after >= 3000), "{trimmed:?}");
        // The five are still known as old: stale at once, not first seen again.
        assert_eq!(sampler.sample(&roots, 7, &[1, 2, 3, 4, 5], &mut errors).stale, 5);
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn held_sockets_age_into_stale_and_the_map_is_pruned_and_capped() {
        let root = tree("ages", &[(11, 1, 5432), (12, 8, 5432), (13, 10, 0), (14, 1, 80)]);
        let roots = Roots::new(&root, "/nonexistent");
        let peer = PeerSpec { name: "pg".into(), remote_port: 5432, remote_address: None, limit: 4 };
        let settings = ConnSettings {
            method: MethodChoice::Auto,
            peers: vec![peer],
            stale_after: Duration::from_millis(200),
            max_tracked: 3,
        };
        let mut sampler = ConnSampler::new(settings, &Roots::default());
        let mut errors = ErrorCounts::default();
        let first = sampler.sample(&roots, 7, &[11, 12, 13, 14], &mut errors);
        assert_eq!(first.methods.get(&Protocol::Tcp), Some(&SocketMethod::ProcNet), "a fixture root is not our netns");
        assert_eq!((first.stale, first.tracked, first.untracked), (0, 3, 1), "the cap leaves the 4th socket untracked");
        assert_eq!(first.peers[0].connections, 2);
        assert_eq!(first.peers[0].utilization, 0.5);
        std::thread::sleep(Duration::from_millis(250));
        let second = sampler.sample(&roots, 7, &[11, 12, 13, 14], &mut errors);
        assert_eq!(second.stale, 2, "11 and 12 are older than 200 ms; 13 listens; 14 is untracked");
        assert_eq!(second.peers[0].stale, 2);
        let third = sampler.sample(&roots, 7, &[11, 14], &mut errors);
        assert_eq!(third.tracked, 2, "12 and 13 were closed and pruned; 14 found room");
        assert_eq!((third.stale, third.untracked), (1, 0), "14 is new");
        assert_eq!(errors.iter().count(), 0, "{errors:?}");
        std::fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_table_with_bad_rows_keeps_the_good_ones() {
        let dir = std::env::temp_dir().join(format!("leakwatch-conns-unit-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("tcp");
        std::fs::write(
            &path,
            "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
             \x20  0: 0100007F:0CEA 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 111 1 0 100 0 0 10 0\n\
             \x20  1: garbage\n\
             \x20  2: 0100007F:0CEA 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 222 1 0 20 4 30 10 -1\n",
        )
        .unwrap();
        let (mut out, mut line) = (Vec::new(), Vec::new());
        let bad = read_table(&path, Protocol::Tcp, &mut out, &mut line).unwrap();
        assert_eq!(out.iter().map(|e| e.inode).collect::<Vec<_>>(), vec![111, 222]);
        let bad = bad.expect("the garbage row is reported");
        assert_eq!(bad.reason(), ErrorReason::Malformed);
        assert!(bad.to_string().contains("line 3"), "{bad}");
        let missing = read_table(&dir.join("tcp6"), Protocol::Tcp6, &mut out, &mut line).unwrap_err();
        assert_eq!(missing.reason(), ErrorReason::NotFound);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}

//! 500 connections that send their request head one byte per second (slowloris) do not lock
//! `/metrics` out: scrapes keep being answered, and every slow connection is closed (evicted to
//! make room, or by the header timeout).

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{http_get, Leakwatch};
use leakwatch::metric_names as n;

const SLOW: usize = 500;

#[test]
fn five_hundred_slow_clients_do_not_stop_scrapes_and_are_all_closed() {
    let lw = Leakwatch::start(&[]);
    lw.wait_for(Duration::from_secs(10), "a first sample", |m| m.get(n::SAMPLES_TOTAL, &[]).is_some());
    let mut slow: Vec<TcpStream> = (0..SLOW)
        .map(|_| {
            let s = TcpStream::connect(lw.addr).expect("connect a slow client");
            s.set_nonblocking(true).expect("non-blocking");
            s
        })
        .collect();
    let request = b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: ";
    let started = Instant::now();
    let mut latencies = Vec::new();
    let mut byte = 0;
    // For 12 s (past the 10 s header timeout): one byte a second on every slow connection, and a
    // scrape on a fresh connection every 250 ms.
    while started.elapsed() < Duration::from_secs(12) {
        if started.elapsed() >= Duration::from_secs(byte as u64) {
            let b = request[byte % request.len()];
            for s in &mut slow {
                let _ = s.write(&[b]);
            }
            byte += 1;
        }
        let t = Instant::now();
        let (status, body) = http_get(lw.addr, "/metrics");
        latencies.push(t.elapsed());
        assert_eq!(status, 200, "a scrape while {SLOW} slow clients are connected");
        assert!(body.contains(n::SAMPLES_TOTAL));
        std::thread::sleep(Duration::from_millis(250));
    }
    // Every slow connection has been closed by leakwatch: reading gives end of file (or a reset).
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut closed = 0;
    for s in &mut slow {
        s.set_nonblocking(false).expect("blocking");
        s.set_read_timeout(Some(deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(10))))
            .expect("timeout");
        let mut buf = [0u8; 1024];
        loop {
            match s.read(&mut buf) {
                Ok(0) => {
                    closed += 1;
                    break;
                }
                Ok(_) => continue, // a 408 or similar before the close
                Err(e) if matches!(e.kind(), std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe) => {
                    closed += 1;
                    break;
                }
                Err(_) => break, // still open at the deadline
            }
        }
    }
    assert_eq!(closed, SLOW, "every slow connection was closed");
    latencies.sort();
    eprintln!(
        "{} scrapes answered while {SLOW} slow clients trickled bytes: median {:?}, max {:?}",
        latencies.len(),
        latencies[latencies.len() / 2],
        latencies[latencies.len() - 1]
    );
}

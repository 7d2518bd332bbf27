#!/usr/bin/env python3
"""CPU per /metrics scrape (gzip asked) of a running exporter: its utime + stime over N
keep-alive scrapes, after 50 warm-up scrapes.

Usage: python3 benches/scrape_cpu.py PID PORT N
With leakwatch's 5 s sampling interval, N scrapes in a few seconds include about one render per
sample; a cached scrape copies the cached body.
"""
import http.client, os, sys, time
pid, port, n = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
def cpu():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
c = http.client.HTTPConnection("127.0.0.1", port)
def scrape():
    c.request("GET", "/metrics", headers={"Accept-Encoding": "gzip"}); r = c.getresponse(); r.read()
for _ in range(50): scrape()
t0 = cpu(); s0 = time.time()
for _ in range(n): scrape()
t1 = cpu()
print(f"{(t1 - t0) / n * 1e6:.1f} us CPU per scrape over {n} scrapes ({time.time()-s0:.1f} s)")

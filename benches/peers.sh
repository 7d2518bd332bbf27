#!/usr/bin/env bash
# leakwatch side by side with node_exporter and process-exporter, and leakwatch's own benches,
# in one run, printed as one table:
#
#   bash benches/peers.sh            # the measurement (about 4 minutes on 2 cores)
#   bash benches/peers.sh --quick    # short durations, to check the script works (figures not comparable)
#   bash benches/peers.sh --cost     # total cost: CPU per minute at 15 s / 60 s scrapes, gzip bytes,
#                                    # series, and scaling rows (about 25 minutes, 13 with
#                                    # COST_SCALING=0; --cost --quick: about 6)
#
# --cost runs leakwatch at its default settings (only --listen and --process-name), and, when
# LEAKWATCH_BEFORE_BIN names another leakwatch binary (e.g. main's), that one beside it, so
# "before" and "after" are measured in the same run. Each exporter runs in a cpuacct cgroup of its
# own (cgroup v1 or v2 cpu.stat), so its CPU is counted in ns, exited threads included; without
# one, utime+stime from /proc/PID/stat (10 ms ticks) is used. Prometheus-style scrapes (gzip asked)
# in windows of exactly K scrapes 15 s and 60 s apart, repeated and interleaved (median, spread, the
# ratio within each window, the load), plus CPU without scrapes and per scrape; then one target
# after another with 1 000 and
# 10 000 sockets, 1 000 and 10 000 fds, 50 children and 1 GiB RSS, scraped every 15 s
# (COST_SCALING=0 leaves the scaling rows out).
#
# Meant for a Debian bookworm machine, as root (like tests/run.sh), with network to package
# registries only. It fetches what it needs itself, into .cache/tools/peers/:
#   - prometheus-node-exporter, prometheus-process-exporter: `apt-get download` + `dpkg -x`, never
#     `apt-get install` (their maintainer scripts would start servers listening on every interface);
#   - wrk and the libluajit it links: the same way (run with LD_LIBRARY_PATH), so nothing is
#     installed system-wide;
#   - curl and python3, from Debian, only if missing (clients).
# Then, all on 127.0.0.1 and all watching one target, a python3 child holding 100 MiB whose
# process name (comm) is set to `lwbench-target`:
#   leakwatch          release build, --process-name lwbench-target --interval 5s (the default)
#   node_exporter      --collector.disable-defaults --collector.meminfo --collector.pressure (host only)
#   process-exporter   config matching comm lwbench-target, -gather-smaps=true (PSS, as leakwatch)
#   process-exporter   the same with -gather-smaps=false
# it measures idle RSS and CPU after 60 s, CPU per scrape over at least 2000 sequential keep-alive
# scrapes (utime+stime from /proc/PID/stat), RSS after 2000, response bytes and series, wrk latency
# p50/p99 at 1 and 16 connections (3 rounds of 5 s, median); then runs `cargo bench` for sample_cost,
# log_ingest and log_fanout and a 1 GiB log flood through a tailing leakwatch (RSS every 100 ms).
# It stops only the processes it started (their pids are tracked) and removes its temp dir.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tools="$repo/.cache/tools/peers"
started=$SECONDS

quick=0
cost=0
for arg in "$@"; do
  case "$arg" in
    --quick) quick=1 ;;
    --cost) cost=1 ;;
    -h | --help) sed -n '2,17p' "$0"; exit 0 ;;
    *) echo "usage: bash benches/peers.sh [--cost] [--quick]" >&2; exit 64 ;;
  esac
done
if [ "$quick" = 1 ]; then
  IDLE_SECS=5 SCRAPES=200 MIN_TICKS=5 WRK_ROUNDS=1 WRK_SECS=1 FLOOD_MIB=64
  export LEAKWATCH_BENCH_ITERS=100 INGEST_MIB=32 FANOUT_MIB=4
else
  IDLE_SECS=60 SCRAPES=2000 MIN_TICKS=50 WRK_ROUNDS=3 WRK_SECS=5 FLOOD_MIB=1024
  INGEST_MIB=512 FANOUT_MIB=64
fi
TARGET_COMM=lwbench-target
LW_INTERVAL_SECS=5 # leakwatch's default interval, given explicitly
TARGET_MIB=100
FLOOD_BUFFER_BYTES=$((8 << 20))

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\nbenches/peers.sh: %s\n' "$*" >&2; exit 1; }

# --- cleanup: only what this script started ------------------------------------------------------

pids=()
cgroups=() # cgroups --cost made (removed once their processes are gone)
work=""
cleanup() {
  local pid i cg
  for pid in "${pids[@]}"; do kill -TERM "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
  done
  for cg in "${cgroups[@]}"; do rmdir "$cg" 2>/dev/null || true; done
  [ -n "$work" ] && rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
track() { pids+=("$1"); }
stop() { # stop one tracked pid now and forget it (its number may be reused once it is reaped)
  local pid=$1 i rest=()
  kill -TERM "$pid" 2>/dev/null || true
  for i in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
  for i in "${pids[@]}"; do [ "$i" = "$pid" ] || rest+=("$i"); done
  pids=("${rest[@]}")
}

# --- tools -----------------------------------------------------------------------------------------

# shellcheck source=tests/debian.sh
. "$repo/tests/debian.sh"
apt_install_client() { # a client program from Debian, if missing
  command -v "$1" >/dev/null && return
  command -v apt-get >/dev/null || die "$1 is missing and apt-get is not available"
  echo "installing $2 (for $1)"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$2" >/dev/null
}

ne="$tools/root/usr/bin/prometheus-node-exporter"
pe="$tools/root/usr/bin/prometheus-process-exporter"
wrk_bin="$tools/root/usr/bin/wrk"
wrk() { LD_LIBRARY_PATH="$tools/root/usr/lib/x86_64-linux-gnu" "$wrk_bin" "$@"; }

tools_work() {
  "$ne" --version >/dev/null 2>&1 && "$pe" -version >/dev/null 2>&1 && { wrk -v 2>&1 || true; } | grep -q '^wrk'
}

fetch_tools() {
  local dl deb
  local packages=(prometheus-node-exporter prometheus-process-exporter wrk libluajit-5.1-2)
  command -v apt-get >/dev/null || die "apt-get is missing: cannot fetch ${packages[*]}"
  mkdir -p "$tools"
  rm -rf "$tools/root"
  dl="$tools/.download"
  deb_fetch "$dl" "${packages[@]}"
  : > "$tools/SOURCES"
  for deb in "$dl"/*.deb; do
    dpkg -x "$deb" "$tools/root"
    basename "$deb" >> "$tools/SOURCES"
  done
  rm -rf "$dl"
}

step "tools"
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
apt_install_client curl curl
apt_install_client python3 python3-minimal
if ! tools_work; then
  echo "fetching Debian's node_exporter, process-exporter and wrk (into .cache/tools/peers/, not installed)"
  fetch_tools
  tools_work || die "the fetched tools do not run; see $tools/SOURCES"
fi
sed 's/^/  /' "$tools/SOURCES"

step "building leakwatch (release) and its benches"
cargo build --release --quiet --bin leakwatch
[ "$cost" = 1 ] || cargo bench --quiet --no-run --bench sample_cost --bench log_ingest --bench log_fanout 2>&1 | grep -v '^  Executable' || true
lw="$repo/target/release/leakwatch"

work="$(mktemp -d /tmp/leakwatch-peers.XXXXXX)"

# --- helpers -----------------------------------------------------------------------------------------

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
taken=" "
pick_port() { # pick_port VAR FIRST: the first free port from FIRST on, not picked before, into VAR
  local p=$2
  while ! port_free "$p" || [[ "$taken" == *" $p "* ]]; do p=$((p + 1)); done
  taken+="$p "
  printf -v "$1" '%s' "$p"
}
clk_tck="$(getconf CLK_TCK)"
cpu_ticks() { sed 's/.*) //' "/proc/$1/stat" | awk '{ print $12 + $13 }'; } # utime + stime
# CPU time in ns summed over the threads, from schedstat: finer than the 10 ms ticks, for the idle
# phase, where leakwatch works for a few ms every 5 s (threads that exit are not counted).
cpu_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{ s += $1 } END { printf "%.0f", s }'; }
rss_kib() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }
wait_http() { # wait_http PID URL: until URL answers 200, or fail if PID dies
  local i
  for i in $(seq 150); do
    kill -0 "$1" 2>/dev/null || die "$(basename "$(readlink "/proc/$1/exe" 2>/dev/null || echo process)") (pid $1) exited; see $work"
    curl -sf -o /dev/null "$2" && return
    sleep 0.1
  done
  die "$2 did not answer within 15 s"
}
calc() { awk "BEGIN { printf \"%s\", ($*) }"; }
us_per_scrape() { calc "${scrape_ticks[$1]} * 1e6 / $clk_tck / ${scrape_n[$1]}"; }

# --- --cost: total CPU per minute, bytes and series; scaling rows ------------------------------------

if [ "$cost" = 1 ]; then
  # shellcheck source=benches/cost.sh
  . "$repo/benches/cost.sh"
  exit 0
fi

# --- the target and the exporters ----------------------------------------------------------------

step "starting the target and the exporters on 127.0.0.1"
python3 - > "$work/target.out" <<EOF &
import time
with open("/proc/self/comm", "w") as f:  # the process name that the exporters match
    f.write("$TARGET_COMM")
held = bytearray(b"\x01") * ($TARGET_MIB << 20)
print("ready", flush=True)
time.sleep(3600)
EOF
target=$!
track "$target"
for i in $(seq 100); do grep -q ready "$work/target.out" 2>/dev/null && break; sleep 0.1; done
grep -q ready "$work/target.out" || die "the python3 target did not start"
[ "$(cat "/proc/$target/comm")" = "$TARGET_COMM" ] || die "the target's comm is $(cat "/proc/$target/comm"), not $TARGET_COMM"
echo "target: pid $target, comm $TARGET_COMM, RSS $(( $(rss_kib "$target") >> 10 )) MiB"

cat > "$work/process-exporter.yaml" <<EOF
process_names:
  - name: "{{.Comm}}"
    comm:
      - $TARGET_COMM
EOF

names=(leakwatch node_exporter process-exporter process-exporter-nosmaps)
declare -A port pid_of url
pick_port 'port[leakwatch]' 20171
pick_port 'port[node_exporter]' 20100
pick_port 'port[process-exporter]' 20256
pick_port 'port[process-exporter-nosmaps]' 20257
for n in "${names[@]}"; do url[$n]="http://127.0.0.1:${port[$n]}/metrics"; done

"$lw" --listen "127.0.0.1:${port[leakwatch]}" --process-name "$TARGET_COMM" --interval "${LW_INTERVAL_SECS}s" --log warn \
  > "$work/leakwatch.log" 2>&1 &
pid_of[leakwatch]=$!; track $!
"$ne" --web.listen-address="127.0.0.1:${port[node_exporter]}" \
  --collector.disable-defaults --collector.meminfo --collector.pressure \
  > "$work/node_exporter.log" 2>&1 &
pid_of[node_exporter]=$!; track $!
"$pe" -web.listen-address "127.0.0.1:${port[process-exporter]}" \
  -config.path "$work/process-exporter.yaml" -gather-smaps=true \
  > "$work/process-exporter.log" 2>&1 &
pid_of[process-exporter]=$!; track $!
"$pe" -web.listen-address "127.0.0.1:${port[process-exporter-nosmaps]}" \
  -config.path "$work/process-exporter.yaml" -gather-smaps=false \
  > "$work/process-exporter-nosmaps.log" 2>&1 &
pid_of[process-exporter-nosmaps]=$!; track $!

# Readiness without a scrape of /metrics: leakwatch's /readyz (after its first sample), the
# Go exporters' landing page.
wait_http "${pid_of[leakwatch]}" "http://127.0.0.1:${port[leakwatch]}/readyz"
for n in node_exporter process-exporter process-exporter-nosmaps; do
  wait_http "${pid_of[$n]}" "http://127.0.0.1:${port[$n]}/"
done
declare -A ticks0 ns0 idle_ns idle_rss idle_ticks scrape_ticks scrape_secs rss_after bytes gz_bytes series
for n in "${names[@]}"; do
  ticks0[$n]="$(cpu_ticks "${pid_of[$n]}")"
  ns0[$n]="$(cpu_ns "${pid_of[$n]}")"
  echo "$n: pid ${pid_of[$n]}, ${url[$n]}"
done

step "idle for $IDLE_SECS s (no scrapes)"
sleep "$IDLE_SECS"
for n in "${names[@]}"; do
  idle_rss[$n]="$(rss_kib "${pid_of[$n]}")"
  idle_ticks[$n]=$(( $(cpu_ticks "${pid_of[$n]}") - ticks0[$n] ))
  idle_ns[$n]=$(( $(cpu_ns "${pid_of[$n]}") - ns0[$n] ))
  echo "$n: RSS $(calc "${idle_rss[$n]} / 1024" | xargs printf '%.1f') MiB; CPU while idle:" \
    "$(calc "${idle_ns[$n]} / 1e6" | xargs printf '%.1f') ms (schedstat), ${idle_ticks[$n]} ticks (stat)"
done

step "one scrape each: bytes, series, the target present"
for n in "${names[@]}"; do
  curl -sf -o "$work/$n.prom" "${url[$n]}" || die "$n: scrape of ${url[$n]} failed"
  bytes[$n]="$(wc -c < "$work/$n.prom")"
  series[$n]="$(grep -cv -e '^#' -e '^$' "$work/$n.prom")"
  gz_bytes[$n]="$(curl -sf --compressed -o /dev/null -w '%{size_download}' "${url[$n]}")"
  echo "$n: ${bytes[$n]} bytes (${gz_bytes[$n]} with gzip), ${series[$n]} series"
done
grep -q '^leakwatch_target_processes{target="lwbench-target"} 1$' "$work/leakwatch.prom" ||
  die "leakwatch does not see the target: $(grep '^leakwatch_target_processes' "$work/leakwatch.prom")"
for n in process-exporter process-exporter-nosmaps; do
  grep -q "^namedprocess_namegroup_num_procs{groupname=\"$TARGET_COMM\"} 1$" "$work/$n.prom" ||
    die "$n does not see the target"
done
grep -q '^node_memory_MemTotal_bytes ' "$work/node_exporter.prom" || die "node_exporter exports no meminfo"

step "$SCRAPES sequential scrapes each (one keep-alive connection): RSS after; CPU per scrape"
# utime+stime count in clock ticks (10 ms): scraping goes on in rounds of $SCRAPES until at least
# $MIN_TICKS ticks were spent (at most 10 rounds), so a cheap scrape is still measured to ~2 %.
declare -A scrape_n
for i in $(seq "$SCRAPES"); do printf 'url = "%s"\noutput = "/dev/null"\n' "URL"; done > "$work/curl.cfg.in"
for n in "${names[@]}"; do
  sed "s|URL|${url[$n]}|" "$work/curl.cfg.in" > "$work/curl.cfg"
  t0="$(cpu_ticks "${pid_of[$n]}")"
  s0=$(date +%s.%N)
  scrape_n[$n]=0
  for round in $(seq 10); do
    ok="$(curl -s -K "$work/curl.cfg" -w '%{http_code}\n' | grep -c '^200$' || true)"
    [ "$ok" = "$SCRAPES" ] || die "$n: only $ok of $SCRAPES scrapes returned 200"
    scrape_n[$n]=$(( scrape_n[$n] + SCRAPES ))
    [ "$round" = 1 ] && rss_after[$n]="$(rss_kib "${pid_of[$n]}")"
    [ $(( $(cpu_ticks "${pid_of[$n]}") - t0 )) -ge "$MIN_TICKS" ] && break
  done
  scrape_secs[$n]="$(calc "$(date +%s.%N) - $s0")"
  scrape_ticks[$n]=$(( $(cpu_ticks "${pid_of[$n]}") - t0 ))
  echo "$n: RSS $(( rss_after[$n] >> 10 )) MiB after $SCRAPES scrapes; ${scrape_n[$n]} scrapes in" \
    "$(printf '%.2f' "${scrape_secs[$n]}") s, ${scrape_ticks[$n]} CPU ticks ($(us_per_scrape "$n" | xargs printf '%.1f') µs/scrape)"
done

step "scrape latency under wrk: $WRK_ROUNDS rounds of $WRK_SECS s at 1 connection and $WRK_SECS s at 16, one exporter at a time"
# wrk 4 corrects its latency histogram for coordinated omission (each response slower than twice
# the mean interval adds the requests an open-loop client would have sent meanwhile), so for a
# server answering in 20 µs a single stall of the machine (other work on a shared host) can move
# p99 by hundreds of ms. Each figure is the median over the rounds, the rounds interleaved over the
# exporters; the worst round's p99 and the largest single latency are shown too.
cat > "$work/stats.lua" <<'EOF'
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format("lwbench requests=%d errors=%d secs=%.3f p50_us=%d p99_us=%d max_us=%d\n",
    summary.requests, e.connect + e.read + e.write + e.status + e.timeout,
    summary.duration / 1e6, latency:percentile(50), latency:percentile(99), latency.max))
end
EOF
declare -A lat # lat[name,conns,figure]: one value per round, space-separated
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" "$2"; }
median() { tr ' ' '\n' <<< "$1" | grep . | sort -g | awk '{ v[NR] = $1 } END { print v[int((NR + 1) / 2)] }'; }
largest() { tr ' ' '\n' <<< "$1" | grep . | sort -g | tail -1; }
for round in $(seq "$WRK_ROUNDS"); do
  for n in "${names[@]}"; do
    for c in 1 16; do
      threads=$(( c == 1 ? 1 : 2 ))
      out="$work/wrk.out"
      wrk -t"$threads" -c"$c" -d"${WRK_SECS}s" --timeout 5s -s "$work/stats.lua" "${url[$n]}" > "$out" 2>&1 ||
        die "$n: wrk failed: $(cat "$out")"
      [ "$(field errors "$out")" = 0 ] || die "$n: wrk saw errors: $(grep lwbench "$out")"
      for f in p50_us p99_us max_us; do lat[$n,$c,$f]+="$(field "$f" "$out") "; done
      lat[$n,$c,rps]+="$(calc "$(field requests "$out") / $(field secs "$out")") "
      echo "round $round, $n, $c conn: $(grep lwbench "$out" | cut -d' ' -f2-)"
    done
  done
done
declare -A p50_1 p99_1 p50_16 p99_16 p99_16_worst max_16 rps_16
for n in "${names[@]}"; do
  p50_1[$n]="$(median "${lat[$n,1,p50_us]}")"; p99_1[$n]="$(median "${lat[$n,1,p99_us]}")"
  p50_16[$n]="$(median "${lat[$n,16,p50_us]}")"; p99_16[$n]="$(median "${lat[$n,16,p99_us]}")"
  p99_16_worst[$n]="$(largest "${lat[$n,16,p99_us]}")"; max_16[$n]="$(largest "${lat[$n,16,max_us]}")"
  rps_16[$n]="$(median "${lat[$n,16,rps]}")"
done

step "stopping the exporters and the target"
for n in "${names[@]}"; do stop "${pid_of[$n]}"; done
stop "$target"

# --- leakwatch alone: its own benches ------------------------------------------------------------

step "cargo bench --bench sample_cost"
cargo bench --quiet --bench sample_cost 2>&1 | tee "$work/sample_cost.out"
step "cargo bench --bench log_ingest (LEAKWATCH_BENCH_MIB=$INGEST_MIB)"
LEAKWATCH_BENCH_MIB=$INGEST_MIB cargo bench --quiet --bench log_ingest 2>&1 | tee "$work/log_ingest.out"
step "cargo bench --bench log_fanout (LEAKWATCH_BENCH_MIB=$FANOUT_MIB)"
LEAKWATCH_BENCH_MIB=$FANOUT_MIB cargo bench --quiet --bench log_fanout 2>&1 | tee "$work/log_fanout.out"

# --- leakwatch alone: RSS while it tails a flood -------------------------------------------------

step "RSS of a tailing leakwatch while $FLOOD_MIB MiB of 100-byte lines are appended (8 MiB buffer)"
flood="$work/flood.log"
: > "$flood"
cat > "$work/flood.yaml" <<EOF
logs:
  max_lines: 1000000
  max_bytes: $FLOOD_BUFFER_BYTES
  sources:
    - name: flood
      path: $flood
EOF
pick_port flood_port 20172
"$lw" --config "$work/flood.yaml" --listen "127.0.0.1:$flood_port" --interval 500ms --log warn \
  > "$work/leakwatch-flood.log" 2>&1 &
flood_pid=$!; track "$flood_pid"
wait_http "$flood_pid" "http://127.0.0.1:$flood_port/readyz"
flood_rss0="$(rss_kib "$flood_pid")"
( while kill -0 "$flood_pid" 2>/dev/null; do rss_kib "$flood_pid" || true; sleep 0.1; done ) > "$work/flood.rss" 2>/dev/null &
rss_loop=$!; track "$rss_loop"
flood_t0=$(date +%s.%N)
# 1 MiB of 100-byte lines, appended FLOOD_MIB times in 1 MiB writes (as tests/integration/log_flood.rs).
{ yes "$(printf 'flood line %0*d' 88 0)" || true; } | head -c $((1 << 20)) > "$work/chunk"
for i in $(seq "$FLOOD_MIB"); do cat "$work/chunk" >> "$flood"; done
flood_size="$(stat -c %s "$flood")"
read_all=0
for i in $(seq 600); do
  got="$(curl -sf "http://127.0.0.1:$flood_port/metrics" | sed -n 's/^leakwatch_log_bytes_total{source="flood"} //p')"
  if [ -n "$got" ] && [ "$(calc "$got >= $flood_size")" = 1 ]; then read_all=1; break; fi
  sleep 0.1
done
flood_secs="$(calc "$(date +%s.%N) - $flood_t0")"
stop "$rss_loop"
[ "$read_all" = 1 ] || die "leakwatch did not read the whole flood within 60 s (read ${got:-?} of $flood_size bytes)"
flood_peak="$(sort -n "$work/flood.rss" | tail -1)"
flood_samples="$(wc -l < "$work/flood.rss")"
echo "read $flood_size bytes in $(printf '%.1f' "$flood_secs") s (writer included); $flood_samples RSS samples," \
  "before $(( flood_rss0 >> 10 )) MiB, peak $(calc "$flood_peak / 1024" | xargs printf '%.1f') MiB"
stop "$flood_pid"
rm -f "$flood"

# --- the table -------------------------------------------------------------------------------------

missing=0
num() { # num FILE AWK-PROGRAM: one number from a bench's output, or "?"
  local v
  v="$(awk "$2" "$1" | head -1)"
  if [ -z "$v" ]; then missing=1; echo "?"; else echo "$v"; fi
}
sample_x="$(num "$work/sample_cost.out" '/^python child/ && /Sampler::sample/ { print $(NF-1) }')"
own_sample_x="$(num "$work/sample_cost.out" '/^own process/ && /Sampler::sample/ { print $(NF-1) }')"
ingest_x="$(num "$work/log_ingest.out" '/^leakwatch LineSplitter/ { sub(/x$/, "", $(NF-1)); print $(NF-1) }')"
cat_x="$(num "$work/log_ingest.out" '/^cat FILE/ { sub(/x$/, "", $(NF-1)); print $(NF-1) }')"
along_x="$(num "$work/log_fanout.out" '/^ingest with .* subscribers reading along/ { sub(/x$/, "", $NF); print $NF }')"
fan_lps="$(num "$work/log_fanout.out" '/^fan-out from a full ring/ { for (i = 1; i <= NF; i++) if ($(i+1) == "lines/s,") { print $i; exit } }')"
fan_each="$(num "$work/log_fanout.out" '/^fan-out from a full ring/ { for (i = 1; i <= NF; i++) if ($(i+1) == "lines/s" && $(i+2) == "per") { sub(/^\(/, "", $i); print $i; exit } }')"

peers=(node_exporter process-exporter process-exporter-nosmaps)
mib() { calc "$1 / 1024" | xargs printf '%.1f MiB'; }
ms() { calc "$1 / 1000" | xargs printf '%.2f ms'; }
ratio() { if [ "$(calc "$2 > 0")" = 1 ]; then calc "$1 / $2" | xargs printf '%.2f'; else echo "–"; fi; }
ratios() { # ratios FIGURE-FUNCTION: leakwatch / each peer, as "a / b / c"
  local out="" p
  for p in "${peers[@]}"; do out+="${out:+ / }$(ratio "$($1 leakwatch)" "$($1 "$p")")"; done
  echo "$out"
}
met_all() { # met_all FIGURE-FUNCTION MAX-RATIO PEER...: leakwatch ≤ MAX × every named peer
  local f=$1 max=$2 p ok=yes
  shift 2
  for p in "$@"; do [ "$(calc "$($f leakwatch) <= $max * $($f "$p")")" = 1 ] || ok=no; done
  echo "$ok"
}
f_idle_rss() { echo "${idle_rss[$1]}"; }
f_rss_after() { echo "${rss_after[$1]}"; }
f_cpu() { us_per_scrape "$1"; }
f_p99_16() { echo "${p99_16[$1]}"; }
f_p99_1() { echo "${p99_1[$1]}"; }
f_p99_16_worst() { echo "${p99_16_worst[$1]}"; }
f_max_16() { echo "${max_16[$1]}"; }
f_bytes() { echo "${bytes[$1]}"; }
f_series() { echo "${series[$1]}"; }
# Idle CPU per minute (leakwatch samples every 5 s; the peers work only when scraped), and the CPU
# per scrape at Prometheus's usual 15 s scrape interval: one scrape plus 15 s of idle work.
f_idle_cpu() { calc "${idle_ns[$1]} / 1e3 / $IDLE_SECS * 60"; }
f_cpu15() { calc "$(us_per_scrape "$1") + ${idle_ns[$1]} / 1e3 / $IDLE_SECS * 15"; }
row() { printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$@"; }
each() { # each FIGURE-FUNCTION FORMAT-FUNCTION: the four exporters' cells
  local n
  for n in "${names[@]}"; do printf '%s\t' "$($2 "$($1 "$n")")"; done
}
show_row() { # show_row LABEL FIGURE-FUNCTION FORMAT-FUNCTION TARGET MET
  local a b c d
  IFS=$'\t' read -r a b c d <<< "$(each "$2" "$3")"
  row "$1" "$a" "$b" "$c" "$d" "$(ratios "$2")" "$4" "$5"
}
as_mib() { mib "$1"; }
as_us() { printf '%.0f µs' "$1"; }
as_ms() { ms "$1"; }
as_int() { printf '%.0f' "$1"; }

caps_limit=$((FLOOD_BUFFER_BYTES + (16 << 20)))
flood_ok="$( [ "$(calc "$flood_peak * 1024 <= $caps_limit")" = 1 ] && echo yes || echo no)"
sample_ok="$( [ "$sample_x" != "?" ] && [ "$(calc "$sample_x <= 2")" = 1 ] && echo yes || echo no)"
ingest_ok="$( [ "$ingest_x" != "?" ] && [ "$(calc "$ingest_x >= 0.5")" = 1 ] && echo yes || echo no)"
scan_vs_cat="$( [ "$cat_x" != "?" ] && calc "1 / $cat_x" | xargs printf '%.2f' || echo "?")"

step "results"
echo "leakwatch $(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?'), $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(awk '/^MemTotal/ { printf "%.0f GiB", $2 / 1048576 }' /proc/meminfo), $(uname -sr)$( [ "$quick" = 1 ] && echo ', QUICK RUN: durations shortened, figures not comparable')"
echo "peers: $(tr '\n' ' ' < "$tools/SOURCES")"
echo "ratios are leakwatch / node_exporter / process-exporter / process-exporter -gather-smaps=false;" \
  "latencies and scrapes/s are the median of $WRK_ROUNDS wrk rounds of $WRK_SECS s (coordinated-omission corrected by wrk)"
echo
row figure leakwatch node_exporter process-exporter "process-exporter (no smaps)" "leakwatch / peer" target "met?"
row --- --- --- --- --- --- --- ---
show_row "idle RSS after $IDLE_SECS s" f_idle_rss as_mib "≤ 0.5 × each peer" "$(met_all f_idle_rss 0.5 "${peers[@]}")"
show_row "RSS after $SCRAPES scrapes" f_rss_after as_mib "≤ 0.5 × each peer" "$(met_all f_rss_after 0.5 "${peers[@]}")"
show_row "CPU per scrape (≥ $SCRAPES sequential)" f_cpu as_us "≤ 0.2 × process-exporter" "$(met_all f_cpu 0.2 process-exporter process-exporter-nosmaps)"
show_row "idle CPU per minute" f_idle_cpu as_ms "–" "–"
show_row "CPU per scrape at a 15 s scrape interval (scrape + 15 s idle)" f_cpu15 as_ms "–" "–"
pass_us="$(calc "${idle_ns[leakwatch]} / 1e3 / ($IDLE_SECS / $LW_INTERVAL_SECS)")"
row "CPU per sampling pass (idle CPU ÷ passes, ${LW_INTERVAL_SECS} s interval)" "$(as_us "$pass_us")" – – – \
  "$(ratio "$pass_us" "$(f_cpu process-exporter)") × process-exporter's scrape" "–" "–"
show_row "response bytes" f_bytes as_int "–" "–"
IFS=$'\t' read -r a b c d <<< "$(for n in "${names[@]}"; do printf '%s\t' "${gz_bytes[$n]}"; done)"
row "response bytes, gzip asked" "$a" "$b" "$c" "$d" "–" "–" "–"
show_row "series" f_series as_int "–" "–"
IFS=$'\t' read -r a b c d <<< "$(for n in "${names[@]}"; do printf '%s\t' "$(ms "${p50_1[$n]}")"; done)"
row "p50 latency, 1 connection" "$a" "$b" "$c" "$d" "–" "–" "–"
show_row "p99 latency, 1 connection" f_p99_1 as_ms "–" "–"
IFS=$'\t' read -r a b c d <<< "$(for n in "${names[@]}"; do printf '%s\t' "$(ms "${p50_16[$n]}")"; done)"
row "p50 latency, 16 connections" "$a" "$b" "$c" "$d" "–" "–" "–"
show_row "p99 latency, 16 connections" f_p99_16 as_ms "≤ process-exporter" "$(met_all f_p99_16 1 process-exporter process-exporter-nosmaps)"
show_row "p99 latency, 16 connections, worst round" f_p99_16_worst as_ms "–" "–"
show_row "largest single latency, 16 connections" f_max_16 as_ms "–" "–"
IFS=$'\t' read -r a b c d <<< "$(for n in "${names[@]}"; do printf '%.0f\t' "${rps_16[$n]}"; done)"
row "scrapes/s, 16 connections" "$a" "$b" "$c" "$d" "–" "–" "–"
row "sample ÷ raw reads, python target (median)" "${sample_x}×" – – – – "≤ 2×" "$sample_ok"
row "sample ÷ raw reads, own process (median)" "${own_sample_x}×" – – – – "–" "–"
row "log ingest ÷ read_until scan" "${ingest_x}×" – – – – "≥ 0.5×" "$ingest_ok"
row "read_until scan ÷ cat" "${scan_vs_cat}×" – – – – "–" "–"
row "peak RSS tailing a $FLOOD_MIB MiB flood (8 MiB buffer)" "$(mib "$flood_peak")" – – – "$(calc "$flood_peak * 1024 / $FLOOD_BUFFER_BYTES" | xargs printf '%.2f') × caps" "≤ caps + 16 MiB = $((caps_limit >> 20)) MiB" "$flood_ok"
row "ingest with 100 subscribers ÷ alone" "${along_x}×" – – – – "–" "–"
row "fan-out to 100 subscribers" "$fan_lps lines/s ($fan_each each)" – – – – "–" "–"
echo
echo "benches/peers.sh: done in $((SECONDS - started)) s"
[ "$missing" = 0 ] || die "some bench figures could not be read from the benches' output (shown as ?)"

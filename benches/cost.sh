# shellcheck shell=bash
# `bash benches/peers.sh --cost`: sourced by benches/peers.sh after its tools, build and helpers
# (pick_port, wait_http, calc, track, stop, die, step, $lw, $ne, $pe, $work, $quick). Measures total
# CPU per minute of each exporter under Prometheus-style scrapes (gzip asked) at 15 s and 60 s
# intervals, bytes and series per scrape, then scaling rows. See docs/cost.md.

if [ "$quick" = 1 ]; then
  WINDOW_SECS=30 SCALE_SECS=30 SETTLE_SECS=6
else
  WINDOW_SECS=150 SCALE_SECS=90 SETTLE_SECS=15
fi
built="$(git -C "$repo" describe --always --dirty 2>/dev/null || echo '?')" # the build just made
before_bin="${LEAKWATCH_BEFORE_BIN:-}"
[ -z "$before_bin" ] || [ -x "$before_bin" ] || die "LEAKWATCH_BEFORE_BIN=$before_bin is not an executable"

# --- CPU accounting: a cpuacct cgroup per exporter ---------------------------------------------------

cg_root=""
if [ -w /sys/fs/cgroup/cpuacct ]; then
  cg_root=/sys/fs/cgroup/cpuacct # v1
elif [ -f /sys/fs/cgroup/cgroup.controllers ] && [ -w /sys/fs/cgroup ]; then
  cg_root=/sys/fs/cgroup # v2 (cpu.stat usage_usec is always there)
fi
declare -A cg_of
place() { # place NAME PID: moves PID into a cgroup of its own (if cgroups are writable)
  [ -n "$cg_root" ] || return 0
  local cg="$cg_root/lwbench-$1-$$"
  mkdir -p "$cg" && cgroups+=("$cg") && echo "$2" > "$cg/cgroup.procs" && cg_of[$1]="$cg" && return 0
  echo "note: could not place $1 in $cg; using /proc/PID/stat" >&2
}
cpu_ns_of() { # cpu_ns_of NAME PID: CPU time in ns (the cgroup's, or utime+stime in ticks × 10 ms)
  local cg="${cg_of[$1]:-}"
  if [ -n "$cg" ] && [ -f "$cg/cpuacct.usage" ]; then
    cat "$cg/cpuacct.usage"
  elif [ -n "$cg" ] && [ -f "$cg/cpu.stat" ]; then
    awk '/^usage_usec/ { printf "%.0f", $2 * 1000 }' "$cg/cpu.stat"
  else
    calc "$(cpu_ticks "$2") * 1e9 / $clk_tck" | xargs printf '%.0f'
  fi
}

# --- the targets -------------------------------------------------------------------------------------

# start_target KIND N: a python3 child named $TARGET_COMM holding 100 MiB plus, by KIND:
#   plain; sockets N (N/2 loopback TCP connections, both ends held: N sockets); fds N (N opens of
#   /dev/null); children N (N sleeping children); rss N (N MiB instead of 100).
start_target() {
  local kind=$1 n=${2:-0}
  rm -f "$work/target.out"
  python3 - "$kind" "$n" "$TARGET_COMM" "$TARGET_MIB" > "$work/target.out" 2>&1 <<'EOF' &
import os, resource, socket, subprocess, sys, time
kind, n, comm, mib = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
with open("/proc/self/comm", "w") as f:
    f.write(comm)
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
want = max(n + 1024, soft)
try:
    resource.setrlimit(resource.RLIMIT_NOFILE, (want, max(hard, want)))
except (ValueError, OSError):
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
held = bytearray(b"\x01") * ((n if kind == "rss" else mib) << 20)
keep = []
if kind == "sockets":
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4096)
    for _ in range(n // 2):
        c = socket.create_connection(srv.getsockname())
        s, _ = srv.accept()
        keep += [c, s]
    keep.append(srv)
elif kind == "fds":
    keep = [open("/dev/null") for _ in range(n)]
elif kind == "children":
    keep = [subprocess.Popen(["sleep", "3600"]) for _ in range(n)]
print("ready", flush=True)
time.sleep(3600)
EOF
  target=$!
  track "$target"
  local i
  for i in $(seq 600); do grep -q ready "$work/target.out" 2>/dev/null && break; kill -0 "$target" 2>/dev/null || break; sleep 0.1; done
  grep -q ready "$work/target.out" || die "the python3 target ($kind $n) did not start: $(cat "$work/target.out")"
}
stop_target() {
  local c
  for c in $(cat "/proc/$target/task/"*/children 2>/dev/null); do kill "$c" 2>/dev/null || true; done
  stop "$target"
}

# --- the exporters -----------------------------------------------------------------------------------

cat > "$work/process-exporter.yaml" <<EOF
process_names:
  - name: "{{.Comm}}"
    comm:
      - $TARGET_COMM
EOF
names=(leakwatch)
[ -n "$before_bin" ] && names+=(leakwatch-before)
names+=(node_exporter process-exporter process-exporter-nosmaps)
declare -A port pid_of url
pick_port 'port[leakwatch]' 20171
pick_port 'port[leakwatch-before]' 20181
pick_port 'port[node_exporter]' 20100
pick_port 'port[process-exporter]' 20256
pick_port 'port[process-exporter-nosmaps]' 20257
for n in "${names[@]}"; do url[$n]="http://127.0.0.1:${port[$n]}/metrics"; done

step "cost: starting the target and the exporters on 127.0.0.1 (leakwatch at its default settings)"
start_target plain
# Default settings: only where to listen and what to watch.
"$lw" --listen "127.0.0.1:${port[leakwatch]}" --process-name "$TARGET_COMM" --log warn > "$work/leakwatch.log" 2>&1 &
pid_of[leakwatch]=$!; track $!
if [ -n "$before_bin" ]; then
  "$before_bin" --listen "127.0.0.1:${port[leakwatch-before]}" --process-name "$TARGET_COMM" --log warn \
    > "$work/leakwatch-before.log" 2>&1 &
  pid_of[leakwatch-before]=$!; track $!
fi
"$ne" --web.listen-address="127.0.0.1:${port[node_exporter]}" \
  --collector.disable-defaults --collector.meminfo --collector.pressure > "$work/node_exporter.log" 2>&1 &
pid_of[node_exporter]=$!; track $!
"$pe" -web.listen-address "127.0.0.1:${port[process-exporter]}" \
  -config.path "$work/process-exporter.yaml" -gather-smaps=true > "$work/process-exporter.log" 2>&1 &
pid_of[process-exporter]=$!; track $!
"$pe" -web.listen-address "127.0.0.1:${port[process-exporter-nosmaps]}" \
  -config.path "$work/process-exporter.yaml" -gather-smaps=false > "$work/process-exporter-nosmaps.log" 2>&1 &
pid_of[process-exporter-nosmaps]=$!; track $!
for n in "${names[@]}"; do place "$n" "${pid_of[$n]}"; done
for n in "${names[@]}"; do
  case "$n" in
    leakwatch*) wait_http "${pid_of[$n]}" "http://127.0.0.1:${port[$n]}/readyz" ;;
    *) wait_http "${pid_of[$n]}" "http://127.0.0.1:${port[$n]}/" ;;
  esac
  echo "$n: pid ${pid_of[$n]}, ${url[$n]}, CPU from ${cg_of[$n]:-/proc/${pid_of[$n]}/stat}"
done

scrape_all() { # one Prometheus-style scrape of every exporter (gzip asked), in parallel
  local n curls=()
  for n in "${names[@]}"; do
    curl -sf -o /dev/null -H 'Accept-Encoding: gzip' "${url[$n]}" &
    curls+=($!)
  done
  wait "${curls[@]}" || true # only the curls: a bare `wait` would wait for the exporters too
}
# measure LABEL INTERVAL SECS: scrapes every INTERVAL s for SECS s; CPU per minute into cpm[LABEL,name]
declare -A cpm
measure() {
  local label=$1 every=$2 secs=$3 n t0 start next
  declare -A c0
  scrape_all # the first scrape after a change is not part of the window
  for n in "${names[@]}"; do c0[$n]="$(cpu_ns_of "$n" "${pid_of[$n]}")"; done
  t0=$(date +%s.%N)
  start=$SECONDS
  next=$SECONDS
  while [ $((SECONDS - start)) -lt "$secs" ]; do
    if [ "$SECONDS" -ge "$next" ]; then scrape_all; next=$((next + every)); fi
    sleep 0.2
  done
  local took
  took="$(calc "$(date +%s.%N) - $t0")"
  for n in "${names[@]}"; do
    cpm[$label,$n]="$(calc "($(cpu_ns_of "$n" "${pid_of[$n]}") - ${c0[$n]}) / 1e6 / $took * 60")"
  done
  printf '%s:' "$label"
  for n in "${names[@]}"; do printf ' %s %.1f ms/min;' "$n" "${cpm[$label,$n]}"; done
  echo
}

step "cost: bytes and series per scrape (gzip asked)"
declare -A gz plain series
sleep "$SETTLE_SECS"
for n in "${names[@]}"; do
  curl -sf -o "$work/$n.prom" "${url[$n]}" || die "$n: scrape failed"
  plain[$n]="$(wc -c < "$work/$n.prom")"
  series[$n]="$(grep -cv -e '^#' -e '^$' "$work/$n.prom")"
  gz[$n]="$(curl -sf -H 'Accept-Encoding: gzip' -o "$work/$n.prom.gz" -w '%{size_download}' "${url[$n]}")"
  gzip -t "$work/$n.prom.gz" 2>/dev/null || echo "note: $n did not answer with gzip"
  echo "$n: ${plain[$n]} bytes plain, ${gz[$n]} with gzip asked, ${series[$n]} series"
done
grep -q "^leakwatch_target_processes{target=\"$TARGET_COMM\"} 1\$" "$work/leakwatch.prom" || die "leakwatch does not see the target"
# The bodies stay for itemising the series (docs/cost.md): target/cost-bench/NAME.prom.
mkdir -p "$repo/target/cost-bench" && cp "$work"/*.prom "$repo/target/cost-bench/"

step "cost: total CPU per minute, scrapes every 15 s then every 60 s ($WINDOW_SECS s windows)"
measure "15s" 15 "$WINDOW_SECS"
measure "60s" 60 "$WINDOW_SECS"

step "cost: scaling rows, scrapes every 15 s ($SCALE_SECS s windows after $SETTLE_SECS s settling)"
scales=("sockets 1000" "sockets 10000" "fds 1000" "fds 10000" "children 50" "rss 1024")
[ "${COST_SCALING:-1}" = 0 ] && scales=() # COST_SCALING=0: the 15 s / 60 s rows only
for sc in "${scales[@]+"${scales[@]}"}"; do
  stop_target
  # shellcheck disable=SC2086
  start_target $sc
  sleep "$SETTLE_SECS"
  measure "$sc" 15 "$SCALE_SECS"
done
stop_target

# --- the table -------------------------------------------------------------------------------------

step "cost: results"
lw_name=leakwatch
echo "leakwatch $built${before_bin:+ (before: $before_bin)}," \
  "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(uname -sr), load $(cut -d' ' -f1-3 /proc/loadavg)" \
  "$( [ "$quick" = 1 ] && echo ', QUICK RUN: figures not comparable')"
echo "CPU per minute in ms (from ${cg_root:-/proc/PID/stat}); ratio = leakwatch / process-exporter (-gather-smaps)"
echo
hdr="| figure |"; sep="| --- |"
for n in "${names[@]}"; do hdr+=" $n |"; sep+=" ---: |"; done
echo "$hdr leakwatch / process-exporter | target | met? |"
echo "$sep ---: | --- | --- |"
line() { # line LABEL KEY TARGET-RATIO
  local out="| $1 |" n r ok="–"
  for n in "${names[@]}"; do out+=" $(printf '%.1f' "${cpm[$2,$n]}") |"; done
  r="$(calc "${cpm[$2,$lw_name]} / ${cpm[$2,process-exporter]}")"
  if [ "$3" != "–" ]; then ok="$( [ "$(calc "$r <= $3")" = 1 ] && echo yes || echo no)"; fi
  echo "$out $(printf "%.2f" "$r") | ≤ $3× | $ok |"
}
line "CPU per minute, scrape every 15 s" "15s" 0.5
line "CPU per minute, scrape every 60 s" "60s" 0.5
for sc in "${scales[@]+"${scales[@]}"}"; do line "CPU per minute, $sc (15 s scrapes)" "$sc" 1; done
out="| bytes per scrape, gzip asked |"; for n in "${names[@]}"; do out+=" ${gz[$n]} |"; done
smallest="$(for n in node_exporter process-exporter process-exporter-nosmaps; do echo "${gz[$n]}"; done | sort -n | head -1)"
echo "$out $(calc "${gz[$lw_name]} / $smallest" | xargs printf '%.2f') (÷ smallest peer) | ≤ smallest peer | $( [ "${gz[$lw_name]}" -le "$smallest" ] && echo yes || echo no) |"
out="| bytes per scrape, plain |"; for n in "${names[@]}"; do out+=" ${plain[$n]} |"; done
echo "$out – | – | – |"
out="| series per scrape |"; for n in "${names[@]}"; do out+=" ${series[$n]} |"; done
echo "$out $(calc "${series[$lw_name]} / ${series[process-exporter]}" | xargs printf '%.2f') | see docs/cost.md | – |"
echo
echo "benches/peers.sh --cost: done in $((SECONDS - started)) s"

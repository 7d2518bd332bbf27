# shellcheck shell=bash
# `bash benches/peers.sh --cost`: sourced by benches/peers.sh after its tools, build and helpers
# (pick_port, wait_http, calc, track, stop, die, step, $lw, $ne, $pe, $work, $quick). Measures total
# CPU per minute of each exporter under Prometheus-style scrapes (gzip asked) at 15 s and 60 s
# intervals, bytes and series per scrape, then scaling rows. See docs/cost.md.

# Repetitions of each window (COST_REPS); windows hold an exact number of scrapes (COST_K15 at
# 15 s, COST_K60 at 60 s); the decomposition's idle and scrape phases (see measure_parts). Every
# window lasts a multiple of 60 s, so it holds exactly one of leakwatch's full passes a minute
# (expensive_every 12 × 5 s).
if [ "$quick" = 1 ]; then
  REPS=${COST_REPS:-1} K15=${COST_K15:-2} K60=${COST_K60:-1} SCALE_K=2 SETTLE_SECS=6 IDLE_PARTS=2 SCRAPES=4
else
  REPS=${COST_REPS:-3} K15=${COST_K15:-4} K60=${COST_K60:-2} SCALE_K=8 SETTLE_SECS=15 IDLE_PARTS=4 SCRAPES=12
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
clock0=$EPOCHREALTIME
now() { awk "BEGIN { printf \"%.3f\", $EPOCHREALTIME - $clock0 }"; } # seconds since this script began
sleep_until() { # sleep_until T: sleeps until the epoch time T (a float)
  local left
  left="$(calc "$1 - $(now)")"
  [ "$(calc "$left > 0")" = 1 ] && sleep "$left"
  return 0
}
load1() { cut -d' ' -f1 /proc/loadavg; }
cpu_all() { # cpu_all ARRAY: each exporter's CPU ns now into ARRAY[name]
  local -n into=$1
  local n
  for n in "${names[@]}"; do into[$n]="$(cpu_ns_of "$n" "${pid_of[$n]}")"; done
}
median() { sort -g | awk '{ v[NR] = $1 } END { if (NR % 2) print v[(NR + 1) / 2]; else print (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
spread() { sort -g | awk -v f="${1:-%.1f}" 'NR == 1 { lo = $1 } { hi = $1 } END { printf f "–" f, lo, hi }'; }

# measure LABEL EVERY K: one window of exactly K scrapes, EVERY s apart, CPU read just before the
# first and exactly K × EVERY s after it (just before the next window's first scrape), so every
# window holds K scrapes and K × EVERY s of background work whatever the phase of the clock. CPU per
# minute of each exporter is appended to cpms[LABEL,name], the ratio leakwatch ÷ process-exporter
# of this window to ratios[LABEL], the 1-minute load average to loads[LABEL].
declare -A cpms ratios loads
measure() {
  local label=$1 every=$2 k=$3 n t0 took j
  declare -A c0 c1
  t0="$(now)"
  cpu_all c0
  for ((j = 0; j < k; j++)); do
    sleep_until "$(calc "$t0 + $j * $every")"
    scrape_all
  done
  sleep_until "$(calc "$t0 + $k * $every")"
  cpu_all c1
  took="$(calc "$(now) - $t0")"
  printf '%s (%d scrapes in %.1f s, load %s):' "$label" "$k" "$took" "$(load1)"
  declare -A v
  for n in "${names[@]}"; do
    v[$n]="$(calc "(${c1[$n]} - ${c0[$n]}) / 1e6 / $took * 60")"
    cpms[$label,$n]+="${v[$n]} "
    printf ' %s %.1f;' "$n" "${v[$n]}"
  done
  ratios[$label]+="$(calc "${v[leakwatch]} / ${v[process-exporter]}") "
  loads[$label]+="$(load1) "
  echo
}
# measure_parts LABEL: CPU per minute without scrapes (over IDLE_PARTS × 30 s; each 30 s window's
# figure is printed for the spread) and CPU per
# scrape (SCRAPES scrapes 5 s apart, so each finds a new leakwatch snapshot to render, less the idle
# rate over that time), into idle[LABEL,name] and
# per_scrape[LABEL,name] (ms), and the per-minute figure at a 15 s and a 60 s scrape interval that
# follows: idle + scrapes per minute × per scrape. Each part is an average over many events, so a
# Go collection or one slow scrape weighs 1/SCRAPES, not 1/2 as in a 2-scrape window.
declare -A idle per_scrape
measure_parts() {
  local label=$1 n i t0 took start
  declare -A c0 c1 first parts
  start="$(now)"; cpu_all first; cpu_all c1
  for ((i = 0; i < IDLE_PARTS; i++)); do
    for n in "${names[@]}"; do c0[$n]=${c1[$n]}; done
    t0="$(now)"
    sleep_until "$(calc "$start + ($i + 1) * 30")"
    cpu_all c1; took="$(calc "$(now) - $t0")"
    for n in "${names[@]}"; do parts[$n]+="$(calc "(${c1[$n]} - ${c0[$n]}) / 1e6 / $took * 60") "; done
  done
  took="$(calc "$(now) - $start")"
  for n in "${names[@]}"; do idle[$label,$n]="$(calc "(${c1[$n]} - ${first[$n]}) / 1e6 / $took * 60")"; done
  t0="$(now)"; cpu_all c0
  for ((i = 0; i < SCRAPES; i++)); do sleep_until "$(calc "$t0 + $i * 5")"; scrape_all; done
  sleep_until "$(calc "$t0 + $SCRAPES * 5")"
  cpu_all c1; took="$(calc "$(now) - $t0")"
  printf '%s, load %s:\n' "$label" "$(load1)"
  for n in "${names[@]}"; do
    per_scrape[$label,$n]="$(calc "((${c1[$n]} - ${c0[$n]}) / 1e6 - ${idle[$label,$n]} * $took / 60) / $SCRAPES")"
    printf '  %s: idle %.1f ms/min (windows: %s), %.2f ms per scrape\n' "$n" "${idle[$label,$n]}" \
      "$(tr ' ' '\n' <<< "${parts[$n]}" | grep . | spread)" "${per_scrape[$label,$n]}"
  done
}
model() { calc "${idle[$1,$2]} + 60 / $3 * ${per_scrape[$1,$2]}"; }

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

step "cost: total CPU per minute: $REPS × (a window of $K15 scrapes 15 s apart, one of $K60 scrapes 60 s apart), interleaved"
for ((rep = 0; rep < REPS; rep++)); do
  measure "15s" 15 "$K15"
  measure "60s" 60 "$K60"
done
step "cost: the same decomposed: CPU without scrapes ($IDLE_PARTS × 30 s) and per scrape ($SCRAPES scrapes)"
measure_parts plain

step "cost: scaling rows, one window of $SCALE_K scrapes 15 s apart each, after $SETTLE_SECS s settling"
scales=("sockets 1000" "sockets 10000" "fds 1000" "fds 10000" "children 50" "rss 1024")
[ "${COST_SCALING:-1}" = 0 ] && scales=() # COST_SCALING=0: the 15 s / 60 s rows only
for sc in "${scales[@]+"${scales[@]}"}"; do
  stop_target
  # shellcheck disable=SC2086
  start_target $sc
  sleep "$SETTLE_SECS"
  scrape_all # the first scrape after a change is not part of the window
  measure "$sc" 15 "$SCALE_K"
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
echo "Each CPU cell: median of the windows (min–max); ratio: median over the windows of leakwatch ÷"
echo "process-exporter measured in the same window (min–max); load: 1-minute load average at each window's end."
echo
hdr="| figure |"; sep="| --- |"
for n in "${names[@]}"; do hdr+=" $n |"; sep+=" ---: |"; done
echo "$hdr leakwatch / process-exporter | load | target | met? |"
echo "$sep ---: | --- | --- | --- |"
range() { # range VALUES FORMAT: " (min–max)" when there is more than one value (always succeeds)
  if [ "$(wc -l <<< "$1")" -gt 1 ]; then echo " ($(spread "$2" <<< "$1"))"; fi
}
line() { # line LABEL KEY TARGET-RATIO
  local out="| $1 |" n r ok="–" vals
  for n in "${names[@]}"; do
    vals="$(tr ' ' '\n' <<< "${cpms[$2,$n]}" | grep .)"
    out+=" $(median <<< "$vals" | xargs printf '%.1f')$(range "$vals" %.1f) |"
  done
  vals="$(tr ' ' '\n' <<< "${ratios[$2]}" | grep .)"
  r="$(median <<< "$vals")"
  if [ "$3" != "–" ]; then ok="$( [ "$(calc "$r <= $3")" = 1 ] && echo yes || echo no)"; fi
  out+=" $(printf "%.2f" "$r")$(range "$vals" %.2f)"
  echo "$out | $(echo "${loads[$2]}" | xargs | tr ' ' ',') | ≤ $3× | $ok |"
}
line "CPU per minute, scrape every 15 s" "15s" 0.5
line "CPU per minute, scrape every 60 s" "60s" 0.5
for i in 15 60; do
  out="| decomposed, every $i s: idle + $((60 / i)) × per scrape |"
  for n in "${names[@]}"; do out+=" $(printf '%.1f' "$(model plain "$n" "$i")") |"; done
  r="$(calc "$(model plain leakwatch "$i") / $(model plain process-exporter "$i")")"
  echo "$out $(printf '%.2f' "$r") | | ≤ 0.5× | $( [ "$(calc "$r <= 0.5")" = 1 ] && echo yes || echo no) |"
done
out="| idle (no scrape), ms per minute |"; for n in "${names[@]}"; do out+=" $(printf '%.1f' "${idle[plain,$n]}") |"; done
echo "$out – | | – | – |"
out="| per scrape, ms |"; for n in "${names[@]}"; do out+=" $(printf '%.2f' "${per_scrape[plain,$n]}") |"; done
echo "$out – | | – | – |"
for sc in "${scales[@]+"${scales[@]}"}"; do line "CPU per minute, $sc (15 s scrapes)" "$sc" 1; done
out="| bytes per scrape, gzip asked |"; for n in "${names[@]}"; do out+=" ${gz[$n]} |"; done
smallest="$(for n in node_exporter process-exporter process-exporter-nosmaps; do echo "${gz[$n]}"; done | sort -n | head -1)"
echo "$out $(calc "${gz[$lw_name]} / $smallest" | xargs printf '%.2f') (÷ smallest peer) | | ≤ smallest peer | $( [ "${gz[$lw_name]}" -le "$smallest" ] && echo yes || echo no) |"
out="| bytes per scrape, plain |"; for n in "${names[@]}"; do out+=" ${plain[$n]} |"; done
echo "$out – | | – | – |"
out="| series per scrape |"; for n in "${names[@]}"; do out+=" ${series[$n]} |"; done
echo "$out $(calc "${series[$lw_name]} / ${series[process-exporter]}" | xargs printf '%.2f') | | see docs/cost.md | – |"
echo
echo "benches/peers.sh --cost: done in $((SECONDS - started)) s"

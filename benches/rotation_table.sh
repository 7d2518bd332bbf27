#!/usr/bin/env bash
# Issue 17's closing table: each rotation kind x (quiet, loaded: two busy loops beside it), lines
# lost and duplicated as measured against the lines written, the loss leakwatch reported, and the
# losses of unknown size it flagged (leakwatch_log_unknown_losses_total: rotation / truncation / overflow).
# Prints one markdown table per load. About 2 x 60 s after the build.
#
#   bash benches/rotation_table.sh
set -euo pipefail
cd "$(dirname "$0")/.."
run() {
    cargo test --quiet --test integration log_tail_rotation_table -- --ignored --nocapture --test-threads 1 2>/dev/null |
        grep '^|'
}
cargo test --no-run --test integration 2>/dev/null
echo "quiet machine (load $(cut -d' ' -f1 /proc/loadavg) before):"
run
echo
busy=()
for _ in 1 2; do
    (while :; do :; done) &
    busy+=("$!")
done
trap 'kill "${busy[@]}" 2>/dev/null || true' EXIT
echo "loaded machine: two busy loops beside it:"
run

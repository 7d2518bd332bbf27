#!/usr/bin/env bash
# The test command of leakwatch: `bash tests/run.sh` from the repository root (or anywhere).
#
# Meant for a fresh Debian bookworm machine, as root, with network to package registries only.
# It installs what it needs itself:
#   - promtool and prometheus, from Debian's `prometheus` package, fetched with `apt-get download`
#     and unpacked with `dpkg -x` into .cache/tools/ (never `apt-get install prometheus`: its
#     maintainer scripts would start a Prometheus server listening on every interface; the
#     end-to-end test starts its own on 127.0.0.1). Set LEAKWATCH_PROMTOOL and
#     LEAKWATCH_PROMETHEUS to use others.
#   - python3 (the integration tests' memory hog), from Debian, if it is missing.
#   - curl and openssl (the TLS tests' client and certificate maker), from Debian, if missing.
#   - exporter-toolkit's web config fixtures (web/testdata: good and bad web config files, with
#     their certificates), from Debian's golang-github-prometheus-exporter-toolkit-dev, fetched
#     with `apt-get download` and unpacked into .cache/tools/exporter-toolkit/ (set
#     LEAKWATCH_TOOLKIT_TESTDATA to use another copy).
#   - runc, umoci and busybox-static (the pod test's container runtime, image unpacker and pause
#     and app containers' tools), from Debian, fetched with `apt-get download` and unpacked into
#     .cache/tools/bin/ (set LEAKWATCH_RUNC, LEAKWATCH_UMOCI, LEAKWATCH_BUSYBOX to use others).
#   - chromium (the console's browser tests), from Debian, if missing (LEAKWATCH_CHROMIUM to use
#     another build), and playwright-core from the npm registry into tests/console/node_modules
#     (`npm ci` against tests/console/package-lock.json; it downloads no browser), with the
#     machine's node and npm.
#   - a Python venv in .cache/venv with tests/helm/requirements.txt (helm-python-sdk: the real
#     Helm engine, no helm binary; kubernetes-validate: offline Kubernetes schemas), for the
#     chart checks (tests/helm/check_chart.py). Set LEAKWATCH_HELM_PYTHON to use another python.
# Then it runs, failing on the first error:
#   bash -n benches/peers.sh   (syntax only; the peer benchmark is run by hand)
#   git grep for merge-conflict markers (a merge must not leave them in the docs)
#   cargo fmt --all -- --check
#   cargo clippy --all-targets -- -D warnings
#   cargo build --release --bin leakwatch (LEAKWATCH_RELEASE_BIN, for the memory tests)
#   bash .ci/image.sh target/oci  (the static binary and the OCI image; LEAKWATCH_IMAGE, for the
#                                  image and pod tests)
#   cargo test --all-targets  (tests/fuzz at 1000 cases per target: PROPTEST_CASES raises it;
#                              LEAKWATCH_FUZZ_SECONDS is unset here so CI stays bounded)
#   cargo test --test integration http_load -- --ignored   (the HTTP load test, alone)
#   cargo test --test integration -- --ignored log_flood_1_gib log_tail_1000  (the 1 GiB floods and
#                              the 1 000 short-lived files, one at a time: memory and latency)
#   cargo test --lib leak_corpus_three_seeds -- --ignored  (the leak corpus, three seeds)
#   cargo test --test integration console:: -- --ignored  (the console's browser tests, alone:
#                                                           they measure latencies)
# The integration tests create cgroups and namespaces: they need root.
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
tools="$repo/.cache/tools"
started=$SECONDS

step() { printf '\n==> %s\n' "$*"; }
die() { printf '\ntests/run.sh: %s\n' "$*" >&2; exit 1; }

# --- tools -------------------------------------------------------------------------------------

step "checking the toolchain"
command -v cargo >/dev/null || die "cargo not found: install Rust (rustup) first"
cargo fmt --version >/dev/null 2>&1 || die "rustfmt missing: rustup component add rustfmt"
cargo clippy --version >/dev/null 2>&1 || die "clippy missing: rustup component add clippy"
echo "$(cargo --version); $(cargo clippy --version); $(cargo fmt --version)"
if [ "$(id -u)" != 0 ]; then
  echo "warning: not root: the cgroup and namespace integration tests will fail" >&2
fi

# shellcheck source=tests/debian.sh
. "$repo/tests/debian.sh"

if ! command -v python3 >/dev/null; then
  step "installing python3 (the integration tests' memory hog)"
  apt_update_once
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-minimal >/dev/null
fi
echo "$(python3 --version)"

for tool in curl openssl; do
  if ! command -v "$tool" >/dev/null; then
    step "installing $tool (the TLS tests need it)"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$tool" >/dev/null
  fi
done
echo "$(curl --version | head -n 1); $(openssl version)"

step "chromium and playwright-core (the console's browser tests)"
if [ -z "${LEAKWATCH_CHROMIUM:-}" ]; then
  if ! [ -x /usr/bin/chromium ]; then
    echo "installing Debian's chromium"
    apt_update_once
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
  fi
  LEAKWATCH_CHROMIUM=/usr/bin/chromium
fi
[ -x "$LEAKWATCH_CHROMIUM" ] || die "LEAKWATCH_CHROMIUM=$LEAKWATCH_CHROMIUM is not an executable"
echo "$("$LEAKWATCH_CHROMIUM" --version 2>/dev/null | tail -n 1)"
export LEAKWATCH_CHROMIUM
command -v node >/dev/null && command -v npm >/dev/null || die "node and npm are needed for the console's browser tests"
console_stamp="$repo/tests/console/node_modules/.package-lock.stamp"
if ! [ -d "$repo/tests/console/node_modules/playwright-core" ] || ! cmp -s "$repo/tests/console/package-lock.json" "$console_stamp"; then
  (cd "$repo/tests/console" && npm ci --no-audit --no-fund --loglevel=error)
  cp "$repo/tests/console/package-lock.json" "$console_stamp"
fi
echo "node $(node --version); playwright-core $(node -p 'require("./tests/console/node_modules/playwright-core/package.json").version')"

step "exporter-toolkit's web config fixtures"
if [ -z "${LEAKWATCH_TOOLKIT_TESTDATA:-}" ]; then
  LEAKWATCH_TOOLKIT_TESTDATA="$tools/exporter-toolkit/testdata"
  if ! [ -f "$LEAKWATCH_TOOLKIT_TESTDATA/web_config_users.good.yml" ]; then
    work="$tools/.download-toolkit"
    deb_fetch "$work" golang-github-prometheus-exporter-toolkit-dev
    dpkg -x "$work"/golang-github-prometheus-exporter-toolkit-dev_*.deb "$work/root"
    rm -rf "$tools/exporter-toolkit"
    mkdir -p "$tools/exporter-toolkit"
    cp -r "$work/root/usr/share/gocode/src/github.com/prometheus/exporter-toolkit/web/testdata" "$LEAKWATCH_TOOLKIT_TESTDATA"
    basename "$work"/golang-github-prometheus-exporter-toolkit-dev_*.deb > "$tools/exporter-toolkit/source"
    rm -rf "$work"
  fi
fi
[ -f "$LEAKWATCH_TOOLKIT_TESTDATA/web_config_users.good.yml" ] \
  || die "LEAKWATCH_TOOLKIT_TESTDATA=$LEAKWATCH_TOOLKIT_TESTDATA has no exporter-toolkit fixtures"
echo "$LEAKWATCH_TOOLKIT_TESTDATA"
export LEAKWATCH_TOOLKIT_TESTDATA

install_promtool() {
  local work="$tools/.download" deb
  deb_fetch "$work" prometheus
  deb="$(ls "$work"/prometheus_*.deb)"
  dpkg -x "$deb" "$work/root"
  mkdir -p "$tools/bin"
  install -m 0755 "$work/root/usr/bin/promtool" "$tools/bin/promtool"
  install -m 0755 "$work/root/usr/bin/prometheus" "$tools/bin/prometheus"
  basename "$deb" > "$tools/bin/promtool.source"
  rm -rf "$work"
}

step "promtool and prometheus"
if [ -z "${LEAKWATCH_PROMTOOL:-}" ] || [ -z "${LEAKWATCH_PROMETHEUS:-}" ]; then
  mkdir -p "$tools"
  if ! [ -x "$tools/bin/promtool" ] || ! "$tools/bin/promtool" --version >/dev/null 2>&1 \
    || ! [ -x "$tools/bin/prometheus" ] || ! "$tools/bin/prometheus" --version >/dev/null 2>&1; then
    command -v apt-get >/dev/null \
      || die "promtool/prometheus are not in $tools/bin and apt-get is missing: set LEAKWATCH_PROMTOOL and LEAKWATCH_PROMETHEUS"
    echo "fetching Debian's prometheus package for promtool and prometheus (into .cache/tools/)"
    install_promtool
  fi
fi
LEAKWATCH_PROMTOOL="${LEAKWATCH_PROMTOOL:-$tools/bin/promtool}"
LEAKWATCH_PROMETHEUS="${LEAKWATCH_PROMETHEUS:-$tools/bin/prometheus}"
for tool in "$LEAKWATCH_PROMTOOL" "$LEAKWATCH_PROMETHEUS"; do
  [ -x "$tool" ] || die "$tool is not an executable"
  version="$("$tool" --version 2>&1 </dev/null)" || die "$tool --version failed: $version"
  echo "$tool: ${version%%$'\n'*}"
done
export LEAKWATCH_PROMTOOL LEAKWATCH_PROMETHEUS

# pod_tool NAME PACKAGE PATH: installs PATH of the Debian PACKAGE as .cache/tools/bin/NAME.
pod_tool() {
  local work="$tools/.download-$1" deb
  deb_fetch "$work" "$2"
  deb="$(ls "$work/$2"_*.deb)"
  dpkg -x "$deb" "$work/root"
  mkdir -p "$tools/bin"
  install -m 0755 "$work/root/$3" "$tools/bin/$1"
  basename "$deb" > "$tools/bin/$1.source"
  rm -rf "$work"
}

step "runc, umoci and busybox-static (the pod test)"
for spec in runc:runc:usr/sbin/runc umoci:umoci:usr/bin/umoci busybox:busybox-static:bin/busybox; do
  IFS=: read -r name package path <<< "$spec"
  var="LEAKWATCH_${name^^}"
  if [ -z "${!var:-}" ]; then
    if ! [ -x "$tools/bin/$name" ] || ! "$tools/bin/$name" --help >/dev/null 2>&1; then
      command -v apt-get >/dev/null || die "$name is not in $tools/bin and apt-get is missing: set $var"
      echo "fetching Debian's $package package for $name (into .cache/tools/)"
      pod_tool "$name" "$package" "$path"
    fi
    printf -v "$var" '%s' "$tools/bin/$name"
  fi
  [ -x "${!var}" ] || die "$var=${!var} is not an executable"
  "${!var}" --help >/dev/null 2>&1 || die "${!var} --help failed"
  echo "${!var}"
  export "${var?}"
done

step "Python venv for the Helm chart checks"
if [ -n "${LEAKWATCH_HELM_PYTHON:-}" ]; then
  [ -x "$LEAKWATCH_HELM_PYTHON" ] || die "LEAKWATCH_HELM_PYTHON=$LEAKWATCH_HELM_PYTHON is not an executable"
else
  venv="$repo/.cache/venv"
  stamp="$venv/.requirements"
  if ! [ -x "$venv/bin/python" ] || ! cmp -s "$repo/tests/helm/requirements.txt" "$stamp"; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
      echo "installing python3-venv"
      apt_update_once
      DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
    fi
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install -q --disable-pip-version-check -r "$repo/tests/helm/requirements.txt"
    cp "$repo/tests/helm/requirements.txt" "$stamp"
  fi
  LEAKWATCH_HELM_PYTHON="$venv/bin/python"
fi
export LEAKWATCH_HELM_PYTHON
"$LEAKWATCH_HELM_PYTHON" -c 'import helm_python, kubernetes_validate, yaml; print("helm engine", helm_python.helm_sdk_version())' \
  || die "$LEAKWATCH_HELM_PYTHON cannot import helm_python, kubernetes_validate and yaml"

# --- checks ------------------------------------------------------------------------------------

step "bash -n benches/peers.sh (syntax only: the peer benchmark is run by hand, see docs/benchmarks.md)"
bash -n benches/peers.sh
bash -n benches/cost.sh

step "no merge-conflict markers in tracked files"
if git -C "$repo" grep -nE '^(<<<<<<<|>>>>>>>)( |$)|^=======$' -- . ':!*.rs'; then
  die "merge-conflict markers above (a merge left them)"
fi

step "cargo fmt --all -- --check"
cargo fmt --all -- --check

step "cargo clippy --all-targets -- -D warnings"
cargo clippy --all-targets --quiet -- -D warnings

step "cargo build --release --bin leakwatch (the memory tests measure the binary as it ships)"
cargo build --release --bin leakwatch --quiet
export LEAKWATCH_RELEASE_BIN="$repo/target/release/leakwatch"

step "bash .ci/image.sh target/oci (the static binary and the OCI image the pod test runs)"
bash .ci/image.sh target/oci
export LEAKWATCH_IMAGE="$repo/target/oci"

step "cargo test --all-targets"
unset LEAKWATCH_FUZZ_SECONDS
log="$(mktemp)"
trap 'rm -f "$log"' EXIT
status=0
cargo test --all-targets 2>&1 | tee "$log" || status=$?
if [ "$status" = 0 ]; then
  step "cargo test --test integration http_load -- --ignored (the HTTP load test, alone)"
  echo "# run alone: the ignored tests above that pass here are not skipped" >> "$log"
  cargo test --test integration http_load -- --ignored --nocapture 2>&1 | grep -v '^\[leakwatch\]' | tee -a "$log" || status=$?
  step "cargo test --test integration log_flood_1_gib log_tail_1000 -- --ignored (1 GiB floods, 1 000 short-lived files: alone)"
  cargo test --test integration -- --ignored --test-threads=1 --nocapture log_flood_1_gib log_tail_1000 2>&1 | grep -v '^\[leakwatch\]' | tee -a "$log" || status=$?
  step "cargo test --lib leak_corpus_three_seeds -- --ignored (the leak corpus, three seeds)"
  cargo test --lib leak_corpus_three_seeds -- --ignored --nocapture 2>&1 | tee -a "$log" || status=$?
fi
if [ "$status" = 0 ]; then
  step "cargo test --test integration console:: -- --ignored (the console's browser tests, alone)"
  cargo test --test integration console:: -- --ignored --nocapture 2>&1 | grep -v '^\[leakwatch\]' | tee -a "$log" || status=$?
fi

# One closing line over every test binary (cargo prints one `test result:` per binary).
awk '/^# run alone/ { alone = 1 }
     /^test result:/ {
       for (i = 1; i <= NF; i++) {
         if ($i ~ /^passed;?$/)  { p += $(i - 1); if (alone) s -= $(i - 1) }
         if ($i ~ /^failed;?$/)  f += $(i - 1)
         if ($i ~ /^ignored;?$/) s += $(i - 1)
       }
     }
     END { printf "\ntests: %d passed, %d failed, %d skipped\n", p, f, s }' "$log"
[ "$status" = 0 ] || die "cargo test failed (exit $status); see the failures above"
echo "tests/run.sh: all checks passed in $((SECONDS - started))s"

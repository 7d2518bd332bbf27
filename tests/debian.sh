# Shell helpers for fetching Debian packages without installing them; sourced by tests/run.sh
# and benches/peers.sh.

apt_updated=0
# Runs `apt-get update` the first time it is called.
apt_update_once() {
  if [ "$apt_updated" = 0 ]; then
    echo "running apt-get update"
    apt-get update -qq
    apt_updated=1
  fi
}

# deb_fetch DIR PACKAGE...: downloads the packages' .deb files into a fresh DIR (apt-get download,
# retried once after `apt-get update`) without installing them: no maintainer script runs.
deb_fetch() {
  local dir=$1
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  # -o APT::Sandbox::User=root: _apt cannot write into a directory under root's checkout.
  if ! (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@"); then
    echo "apt-get download failed; updating the package lists and retrying"
    apt_update_once
    (cd "$dir" && apt-get download -q -o APT::Sandbox::User=root "$@")
  fi
}

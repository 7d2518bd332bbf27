#!/usr/bin/env bash
# Builds leakwatch's container image without a container daemon: `bash .ci/image.sh [OUT]`.
#
# 1. A static binary: RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked
#    --target x86_64-unknown-linux-gnu (a static-pie; its own target directory, so the normal
#    build is left alone). Set LEAKWATCH_STATIC_BIN to package an already built static binary.
# 2. An OCI image layout in OUT (default target/oci), written with tar, gzip and sha256sum only:
#    one layer, scratch-like:
#      /usr/bin/leakwatch        the binary, stripped (root-owned, 0755)
#      /etc/passwd, /etc/group   root and nonroot (uid/gid 65532), from .ci/image/
#    no shell and nothing else; the config runs as 65532:65532 with the entrypoint
#    /usr/bin/leakwatch, exposes 10171/tcp and carries the org.opencontainers.image.* labels
#    (version from Cargo.toml, revision from git). Timestamps come from SOURCE_DATE_EPOCH
#    (default: the last commit's time), so the same binary gives the same digests.
#    The image is tagged with the version: `oci:OUT:VERSION`.
#
# The Dockerfile at the repository root builds the same layout for Docker or Buildah users.
#
# Environment: LEAKWATCH_IMAGE_NAME (default leakwatch/leakwatch: the name the Helm chart pulls,
# printed with the push command), LEAKWATCH_IMAGE_TAG (default: the version),
# LEAKWATCH_IMAGE_SOURCE (default: Cargo.toml's repository), LEAKWATCH_STATIC_BIN, SOURCE_DATE_EPOCH.
#
# Push it with skopeo (Debian package `skopeo`), e.g.:
#   skopeo copy oci:target/oci:0.1.0 docker://registry.example.com/leakwatch/leakwatch:0.1.0
set -euo pipefail

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$repo"
die() { printf '.ci/image.sh: %s\n' "$*" >&2; exit 1; }

out="${1:-target/oci}"
case "$out" in /*) ;; *) out="$repo/$out" ;; esac

# The first `key = "value"` of Cargo.toml's [package] table.
cargo_field() {
  awk -v key="$1" '
    /^\[/ { in_pkg = ($0 == "[package]") }
    in_pkg && $1 == key && $2 == "=" { sub(/^[^=]*= *"/, ""); sub(/" *$/, ""); print; exit }' Cargo.toml
}
version="$(cargo_field version)"
description="$(cargo_field description)"
license="$(cargo_field license)"
[ -n "$version" ] || die "no version in Cargo.toml"
name="${LEAKWATCH_IMAGE_NAME:-leakwatch/leakwatch}"
tag="${LEAKWATCH_IMAGE_TAG:-$version}"
source_url="${LEAKWATCH_IMAGE_SOURCE:-$(cargo_field repository)}"
revision="$(git rev-parse HEAD 2>/dev/null)" || die "not a git checkout: the revision label needs git"
epoch="${SOURCE_DATE_EPOCH:-$(git log -1 --format=%ct)}"
created="$(date -u -d "@$epoch" +%Y-%m-%dT%H:%M:%SZ)"
if [ -n "$(git status --porcelain --untracked-files=no 2>/dev/null)" ]; then
  echo "note: the work tree has uncommitted changes; the revision label says $revision" >&2
fi

# --- the static binary -------------------------------------------------------------------------
target=x86_64-unknown-linux-gnu
if [ -n "${LEAKWATCH_STATIC_BIN:-}" ]; then
  bin="$LEAKWATCH_STATIC_BIN"
else
  echo "building the static binary (cargo build --release --target $target, crt-static)"
  RUSTFLAGS='-C target-feature=+crt-static' cargo build --release --locked --quiet --target "$target" --bin leakwatch
  bin="$repo/target/$target/release/leakwatch"
fi
[ -x "$bin" ] || die "$bin is not an executable"
# A static-pie has no program interpreter: ldd calls it statically linked.
if ldd "$bin" 2>&1 | grep -q '=>'; then
  die "$bin is dynamically linked (ldd: $(ldd "$bin" 2>&1 | tr '\n' ' '))"
fi

# --- the layer ---------------------------------------------------------------------------------
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
root="$work/rootfs"
install -d -m 0755 "$root/etc" "$root/usr" "$root/usr/bin"
install -m 0644 .ci/image/passwd "$root/etc/passwd"
install -m 0644 .ci/image/group "$root/etc/group"
# Without its symbol table (about a fifth of the file; panics still print their messages).
strip --strip-all -o "$root/usr/bin/leakwatch" "$bin"
chmod 0755 "$root/usr/bin/leakwatch"
tar --create --file "$work/layer.tar" --directory "$root" --sort=name --format=posix \
  --pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime \
  --mtime="@$epoch" --owner=0 --group=0 --numeric-owner etc usr
gzip -9 -n -c "$work/layer.tar" > "$work/layer.tar.gz"

sha() { sha256sum "$1" | cut -d' ' -f1; }
size() { stat -c %s "$1"; }
# A JSON string (the values here are plain text; quotes and backslashes escaped).
js() { local s=${1//\\/\\\\}; s=${s//\"/\\\"}; printf '"%s"' "$s"; }

rm -rf "$out"
mkdir -p "$out/blobs/sha256"
blob() { local digest; digest="$(sha "$1")"; cp "$1" "$out/blobs/sha256/$digest"; echo "$digest"; }

diff_id="$(sha "$work/layer.tar")"
layer="$(blob "$work/layer.tar.gz")"

labels="$(js org.opencontainers.image.title):$(js leakwatch)"
labels+=",$(js org.opencontainers.image.description):$(js "$description")"
labels+=",$(js org.opencontainers.image.version):$(js "$version")"
labels+=",$(js org.opencontainers.image.revision):$(js "$revision")"
labels+=",$(js org.opencontainers.image.licenses):$(js "$license")"
labels+=",$(js org.opencontainers.image.created):$(js "$created")"
if [ -n "$source_url" ]; then
  labels+=",$(js org.opencontainers.image.source):$(js "$source_url")"
  labels+=",$(js org.opencontainers.image.url):$(js "$source_url")"
fi

cat > "$work/config.json" <<EOF
{"architecture":"amd64","os":"linux","created":$(js "$created"),"config":{"User":"65532:65532","Entrypoint":["/usr/bin/leakwatch"],"ExposedPorts":{"10171/tcp":{}},"WorkingDir":"/","Labels":{$labels}},"rootfs":{"type":"layers","diff_ids":["sha256:$diff_id"]},"history":[{"created":$(js "$created"),"created_by":".ci/image.sh: the static leakwatch binary, /etc/passwd, /etc/group"}]}
EOF
config="$(blob "$work/config.json")"

cat > "$work/manifest.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:$config","size":$(size "$work/config.json")},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:$layer","size":$(size "$work/layer.tar.gz")}],"annotations":{$labels}}
EOF
manifest="$(blob "$work/manifest.json")"

cat > "$out/index.json" <<EOF
{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:$manifest","size":$(size "$work/manifest.json"),"platform":{"architecture":"amd64","os":"linux"},"annotations":{"org.opencontainers.image.ref.name":$(js "$tag")}}]}
EOF
printf '{"imageLayoutVersion":"1.0.0"}\n' > "$out/oci-layout"

rel="${out#"$repo"/}"
echo "image $name:$tag -> OCI layout $rel (oci:$rel:$tag), manifest sha256:$manifest"
echo "size: binary $(size "$root/usr/bin/leakwatch") bytes stripped; layer $(size "$work/layer.tar") bytes, $(size "$work/layer.tar.gz") compressed; image $(du -sb "$out" | cut -f1) bytes on disk"
echo "push: skopeo copy oci:$rel:$tag docker://REGISTRY/$name:$tag"

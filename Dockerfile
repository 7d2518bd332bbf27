# leakwatch's image for Docker or Buildah users: the same layout as `.ci/image.sh` (which builds it
# without a daemon and is what the test suite checks): a static binary at /usr/bin/leakwatch,
# /etc/passwd and /etc/group with the nonroot user 65532, no shell, run as 65532:65532.
#   docker build -t leakwatch/leakwatch:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .
#   buildah bud -t leakwatch/leakwatch:0.1.0 --build-arg REVISION="$(git rev-parse HEAD)" .

FROM docker.io/library/rust:1.95-bookworm AS build
WORKDIR /src
COPY . .
RUN RUSTFLAGS='-C target-feature=+crt-static' \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin leakwatch \
 && ! ldd target/x86_64-unknown-linux-gnu/release/leakwatch | grep -q '=>' \
 && strip --strip-all -o /leakwatch target/x86_64-unknown-linux-gnu/release/leakwatch

FROM scratch
ARG VERSION=0.1.0
ARG REVISION=unknown
COPY .ci/image/passwd /etc/passwd
COPY .ci/image/group /etc/group
COPY --from=build /leakwatch /usr/bin/leakwatch
USER 65532:65532
EXPOSE 10171/tcp
ENTRYPOINT ["/usr/bin/leakwatch"]
LABEL org.opencontainers.image.title="leakwatch" \
      org.opencontainers.image.description="Sidecar that watches a process's memory, cgroup, logs and connections and serves them to Prometheus" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      org.opencontainers.image.source="https://github.com/leakwatch/leakwatch" \
      org.opencontainers.image.url="https://github.com/leakwatch/leakwatch"

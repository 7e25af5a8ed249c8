# parley's image: FROM scratch around the static binary, so that it builds
# where no registry answers. Two commands, from the repository's root:
#
#   CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o dist/parley ./cmd/parley
#   docker build -t parley .
#
#   docker run --rm parley lcc check /policies/balance.lcc
#
# Inside: the binary (with Mozilla's CA roots compiled in, for vCenter
# certificates signed by a public CA), the shipped policies in /policies,
# /data a volume owned by the non-root user (uid 65532), /pki (where a
# deployment keeps its CA, certificates and tokens) owned by it too, a
# writable /tmp.
FROM scratch
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="parley" \
      org.opencontainers.image.description="ESXi hosts that balance themselves: LCC-negotiating worker agents, a Raft policy and lease store, a simulated vCenter" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}" \
      org.opencontainers.image.source="https://github.com/parleyhq/parley" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY deploy/image/rootfs/ /
COPY --chown=65532:65532 deploy/image/owned/ /
COPY dist/parley /usr/local/bin/parley
COPY policies/*.lcc /policies/
USER 65532:65532
ENV TMPDIR=/tmp HOME=/data
WORKDIR /data
# store: 7000 raft, 7070 HTTP API and dashboard; worker: 7100 LCC messages; sim: 8989 SDK, 8990 control
EXPOSE 7000 7070 7100
VOLUME ["/data"]
# a store's readiness; a worker's or the simulator's services give their own (parley health --url ...)
HEALTHCHECK --interval=5s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/parley", "health", "--url", "https://127.0.0.1:7070/readyz"]
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["--help"]

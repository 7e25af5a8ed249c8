# Build a small static image of parley that runs as non-root.
#   docker build -t parley .
#   docker run --rm parley lcc check /policies/balance.lcc
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/parley ./cmd/parley

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/parley /usr/local/bin/parley
COPY policies/*.lcc /policies/
USER nonroot:nonroot
# store: 7000 raft, 7070 HTTP API; worker: 7100 LCC messages
EXPOSE 7000 7070 7100
VOLUME ["/data"]
ENTRYPOINT ["/usr/local/bin/parley"]
CMD ["--help"]

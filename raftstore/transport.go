package raftstore

import (
	"context"
	"crypto/tls"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	"github.com/parleyhq/parley/raftstore/pki"
)

// newTransport is raft's network transport: plain TCP when the member is
// insecure, otherwise mutual TLS (tlsStream), so that a peer without a
// certificate from the cluster's CA never gets a byte to the state
// machine: its handshake fails before raft reads a message.
func newTransport(cfg Config, adv net.Addr, log hclog.Logger) (*raft.NetworkTransport, error) {
	if cfg.TLS == nil {
		return raft.NewTCPTransportWithLogger(cfg.RaftAddr, adv, 5, 10*time.Second, log)
	}
	ln, err := net.Listen("tcp", cfg.RaftAddr)
	if err != nil {
		return nil, err
	}
	if adv == nil {
		adv = ln.Addr()
	}
	if h, _, err := net.SplitHostPort(cfg.RaftAdvertise); err == nil && net.ParseIP(h) == nil && h != "" {
		// a DNS name (a StatefulSet's pod, a Compose service): peers dial
		// the name, so a member that comes back with a new IP is found
		adv = nameAddr(cfg.RaftAdvertise)
	}
	stream := &tlsStream{Listener: tls.NewListener(ln, cfg.TLS.ServerConfig(true)), adv: adv, tls: cfg.TLS}
	return raft.NewNetworkTransportWithLogger(stream, 5, 10*time.Second, log), nil
}

// nameAddr is an advertised address kept as the name it was given
// (host:port), not the IP it resolved to at start.
type nameAddr string

func (a nameAddr) Network() string { return "tcp" }
func (a nameAddr) String() string  { return string(a) }

// tlsStream is a raft.StreamLayer over mutual TLS.
type tlsStream struct {
	net.Listener
	adv net.Addr
	tls *pki.TLS
}

func (s *tlsStream) Addr() net.Addr { return s.adv }

func (s *tlsStream) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return s.tls.Dial(ctx, "tcp", string(addr))
}

// httpClient is a client for calls between members (forwarding, catch-up
// checks): TLS with this member's certificate when the member has one.
func httpClient(t *pki.TLS, timeout time.Duration) *http.Client {
	tr := &http.Transport{MaxIdleConnsPerHost: 64, IdleConnTimeout: 90 * time.Second}
	if t != nil {
		tr.DialTLSContext = t.Dial
	}
	return &http.Client{Timeout: timeout, Transport: tr}
}

// scheme is the URL scheme of the API's members.
func scheme(t *pki.TLS) string {
	if t != nil {
		return "https://"
	}
	return "http://"
}

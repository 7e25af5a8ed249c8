package raftstore

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/hashicorp/raft"
)

// Member is a running store member: the raft node and its HTTP API.
type Member struct {
	*Store
	srv *http.Server
	ln  net.Listener
	err chan error
}

// Start opens the store, serves the HTTP API and, for a new member given
// Join addresses, asks the cluster to add it (retrying until ctx ends).
func Start(ctx context.Context, cfg Config) (*Member, error) {
	ln, err := net.Listen("tcp", cfg.HTTPAddr)
	if err != nil {
		return nil, fmt.Errorf("raftstore: listen on %s: %w", cfg.HTTPAddr, err)
	}
	if cfg.HTTPAdvertise == "" {
		cfg.HTTPAdvertise = ln.Addr().String()
	}
	st, err := Open(cfg)
	if err != nil {
		ln.Close()
		return nil, err
	}
	m := &Member{Store: st, ln: ln, err: make(chan error, 1),
		srv: &http.Server{Handler: st.Handler(), ReadHeaderTimeout: 10 * time.Second,
			// a slow or stalled client holds only its own connection, and not for long
			ReadTimeout: 2 * time.Minute, WriteTimeout: 2 * time.Minute, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
			ErrorLog: ServerLog(st.log)}}
	if cfg.TLS != nil {
		ln = tls.NewListener(ln, cfg.TLS.ServerConfig(false))
		m.ln = ln
	} else {
		log := st.log
		log.Warn().Msg("running insecure: plaintext, and every caller may do everything (--insecure)")
	}
	go func() { m.err <- m.srv.Serve(ln) }()
	if st.NeedsJoin() {
		if err := m.join(ctx); err != nil {
			m.Close()
			return nil, err
		}
	}
	return m, nil
}

func (m *Member) join(ctx context.Context) error {
	var via []string
	for _, a := range m.cfg.Join {
		if a != m.cfg.HTTPAdvertise { // the same list for every member (a StatefulSet's): not through itself
			via = append(via, a)
		}
	}
	if len(via) == 0 {
		return fmt.Errorf("raftstore: join via %v: no member but this one", m.cfg.Join)
	}
	c, err := NewClient(via, WithTLS(m.cfg.TLS), WithToken(m.cfg.Token))
	if err != nil {
		return err
	}
	deadline, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		cctx, ccancel := context.WithTimeout(deadline, 10*time.Second)
		_, err := c.Join(cctx, m.cfg.ID, m.cfg.RaftAdvertise, m.cfg.HTTPAdvertise)
		ccancel()
		if err == nil {
			m.log.Info().Strs("via", m.cfg.Join).Msg("joined the cluster")
			return nil
		}
		m.log.Warn().Err(err).Msg("join failed; retrying")
		select {
		case <-deadline.Done():
			return fmt.Errorf("raftstore: join via %v: %w", m.cfg.Join, err)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// HTTPAddr is the address the API listens on.
func (m *Member) HTTPAddr() string { return m.ln.Addr().String() }

// Err is closed with the HTTP server's error when it stops.
func (m *Member) Err() <-chan error { return m.err }

// Stop is a graceful Close, for SIGTERM: a leader first hands its
// leadership to another voter (raft's TimeoutNow, so the next write waits
// for no election timeout), then the member closes. A member that does
// not lead, or leads alone, just closes.
func (m *Member) Stop() error {
	if m.IsLeader() && m.otherVoters() > 0 {
		start := time.Now()
		err := m.raft.LeadershipTransfer().Error()
		_, to := m.raft.LeaderWithID()
		switch {
		case err != nil:
			m.log.Warn().Err(err).Msg("stopping: could not hand over the leadership; the others elect a leader after their election timeout")
		default:
			m.log.Info().Str("to", string(to)).Dur("took", time.Since(start)).Msg("stopping: handed over the leadership")
		}
	}
	return m.Close()
}

// otherVoters counts the voters of the configuration besides this member.
func (m *Member) otherVoters() int {
	f := m.raft.GetConfiguration()
	if f.Error() != nil {
		return 0
	}
	n := 0
	for _, srv := range f.Configuration().Servers {
		if srv.Suffrage == raft.Voter && string(srv.ID) != m.cfg.ID {
			n++
		}
	}
	return n
}

// Close stops the HTTP API and the raft node.
func (m *Member) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	herr := m.srv.Shutdown(ctx)
	if errors.Is(herr, http.ErrServerClosed) {
		herr = nil
	}
	return errors.Join(herr, m.Store.Close())
}

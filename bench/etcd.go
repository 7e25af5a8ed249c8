package main

import (
	"context"
	"crypto/tls"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"go.etcd.io/etcd/client/pkg/v3/transport"
	clientv3 "go.etcd.io/etcd/client/v3"
	"go.etcd.io/etcd/server/v3/embed"
)

// etcdCluster is an embedded 3-member etcd on loopback in this process:
// TLS with client certificates for clients and peers (the same CA as
// parley's), fsync on, its default timeouts. A pair is what parley's
// lease acquire and release do: a transaction that puts the key, attached
// to a lease the client was granted once, only if it does not exist; then
// a delete.
type etcdCluster struct {
	members []*embed.Etcd
	client  *clientv3.Client
	leases  []clientv3.LeaseID
}

func startEtcd(ctx context.Context, dir string, clients int) (*etcdCluster, error) {
	certs, err := benchPKI(dir)
	if err != nil {
		return nil, err
	}
	e := &etcdCluster{}
	type addrs struct{ peer, client url.URL }
	var as []addrs
	var initial []string
	for i := range 3 {
		p, err := freeAddr()
		if err != nil {
			return nil, err
		}
		c, err := freeAddr()
		if err != nil {
			return nil, err
		}
		a := addrs{url.URL{Scheme: "https", Host: p}, url.URL{Scheme: "https", Host: c}}
		as = append(as, a)
		initial = append(initial, fmt.Sprintf("etcd%d=%s", i+1, a.peer.String()))
	}
	for i, a := range as {
		id := fmt.Sprintf("etcd%d", i+1)
		if _, err := pkiIssue(certs, id); err != nil {
			return nil, err
		}
		tlsInfo := transport.TLSInfo{CertFile: filepath.Join(certs, id+".pem"), KeyFile: filepath.Join(certs, id+"-key.pem"),
			TrustedCAFile: filepath.Join(certs, "ca.pem"), ClientCertAuth: true}
		cfg := embed.NewConfig()
		cfg.Name, cfg.Dir = id, filepath.Join(dir, id)
		cfg.ListenPeerUrls, cfg.AdvertisePeerUrls = []url.URL{a.peer}, []url.URL{a.peer}
		cfg.ListenClientUrls, cfg.AdvertiseClientUrls = []url.URL{a.client}, []url.URL{a.client}
		cfg.InitialCluster = strings.Join(initial, ",")
		cfg.InitialClusterToken = "parley-bench"
		cfg.ClusterState = embed.ClusterStateFlagNew
		cfg.ClientTLSInfo, cfg.PeerTLSInfo = tlsInfo, tlsInfo
		cfg.LogLevel, cfg.LogOutputs = "error", []string{filepath.Join(dir, id+".log")}
		m, err := embed.StartEtcd(cfg)
		if err != nil {
			e.close()
			return nil, err
		}
		e.members = append(e.members, m)
	}
	for _, m := range e.members {
		select {
		case <-m.Server.ReadyNotify():
		case <-time.After(30 * time.Second):
			e.close()
			return nil, fmt.Errorf("%s not ready within 30s", m.Config().Name)
		case <-ctx.Done():
			e.close()
			return nil, ctx.Err()
		}
	}
	// the client talks to the leader, as parley's does
	var leader string
	if err := waitUntil(ctx, 10*time.Second, func() bool {
		for i, m := range e.members {
			if m.Server.Leader() != 0 && m.Server.Leader() == m.Server.MemberID() {
				leader = as[i].client.Host
				return true
			}
		}
		return false
	}); err != nil {
		e.close()
		return nil, fmt.Errorf("no leader: %w", err)
	}
	ct, err := pkiIssue(certs, "bench-etcd")
	if err != nil {
		e.close()
		return nil, err
	}
	e.client, err = clientv3.New(clientv3.Config{Endpoints: []string{"https://" + leader}, TLS: ct, DialTimeout: 5 * time.Second})
	if err != nil {
		e.close()
		return nil, err
	}
	for range clients {
		g, err := e.client.Grant(ctx, 60)
		if err != nil {
			e.close()
			return nil, err
		}
		e.leases = append(e.leases, g.ID)
	}
	return e, nil
}

func (e *etcdCluster) name() string { return "etcd" }

func (e *etcdCluster) pair(ctx context.Context, c, i int) error {
	key := fmt.Sprintf("vm/vm-%08d", i)
	r, err := e.client.Txn(ctx).
		If(clientv3.Compare(clientv3.CreateRevision(key), "=", 0)).
		Then(clientv3.OpPut(key, fmt.Sprintf("client-%02d", c), clientv3.WithLease(e.leases[c%len(e.leases)]))).
		Commit()
	if err != nil {
		return err
	}
	if !r.Succeeded {
		return fmt.Errorf("%s was held", key)
	}
	_, err = e.client.Delete(ctx, key)
	return err
}

func (e *etcdCluster) term() uint64 {
	var t uint64
	for _, m := range e.members {
		t = max(t, m.Server.Term())
	}
	return t
}

func (e *etcdCluster) close() {
	if e.client != nil {
		e.client.Close()
	}
	for _, m := range e.members {
		m.Close()
	}
}

// pkiIssue issues NAME for loopback and returns a client configuration
// carrying it.
func pkiIssue(certs, name string) (*tls.Config, error) {
	t, err := pkiLocal(certs, name)
	if err != nil {
		return nil, err
	}
	return t.ClientConfig("127.0.0.1"), nil
}

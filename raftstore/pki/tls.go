package pki

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// Files names a part's CA, certificate and key. The certificate and key
// are optional for a client that authenticates with a token only.
type Files struct {
	CA, Cert, Key string
}

// Enabled reports whether any file is named.
func (f Files) Enabled() bool { return f.CA != "" || f.Cert != "" || f.Key != "" }

// Check says what is missing for the use: a server needs all three, a
// client at least the CA, and a certificate comes with its key.
func (f Files) Check(server bool) error {
	var missing []string
	if f.CA == "" {
		missing = append(missing, "--tls-ca")
	}
	if server || f.Cert != "" || f.Key != "" {
		if f.Cert == "" {
			missing = append(missing, "--tls-cert")
		}
		if f.Key == "" {
			missing = append(missing, "--tls-key")
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("TLS needs %v", missing)
	}
	return nil
}

// TLS holds a part's loaded files and reloads them when they change (their
// modification time or size), so a rotated certificate is used from the
// next connection on without a restart. A file that fails to load keeps
// the last good one in use, and the failure is reported by Err.
type TLS struct {
	files Files

	mu    sync.Mutex
	stamp [3]fileStamp
	cert  *tls.Certificate
	pool  *x509.CertPool
	name  string // the certificate's common name
	err   error  // the last reload's failure
}

type fileStamp struct {
	mod  time.Time
	size int64
}

// Load reads the files once; an error names the file at fault.
func Load(f Files) (*TLS, error) {
	if err := f.Check(false); err != nil {
		return nil, err
	}
	t := &TLS{files: f}
	if err := t.reload(); err != nil {
		return nil, err
	}
	return t, nil
}

// Name is the common name of this part's certificate: its identity.
func (t *TLS) Name() string {
	t.current()
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.name
}

// Err is the last reload's failure, nil when the files in use are current.
func (t *TLS) Err() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.err
}

func stampOf(path string) fileStamp {
	if path == "" {
		return fileStamp{}
	}
	fi, err := os.Stat(path)
	if err != nil {
		return fileStamp{}
	}
	return fileStamp{fi.ModTime(), fi.Size()}
}

// current returns the certificate and pool, reloading changed files.
func (t *TLS) current() (*tls.Certificate, *x509.CertPool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := [3]fileStamp{stampOf(t.files.CA), stampOf(t.files.Cert), stampOf(t.files.Key)}
	if now != t.stamp {
		if err := t.reloadLocked(now); err != nil {
			t.err = err
		} else {
			t.err = nil
		}
	}
	return t.cert, t.pool
}

func (t *TLS) reload() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reloadLocked([3]fileStamp{stampOf(t.files.CA), stampOf(t.files.Cert), stampOf(t.files.Key)})
}

func (t *TLS) reloadLocked(stamp [3]fileStamp) error {
	caPEM, err := os.ReadFile(t.files.CA)
	if err != nil {
		return fmt.Errorf("TLS CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(caPEM) {
		return fmt.Errorf("TLS CA %s holds no PEM certificate", t.files.CA)
	}
	var cert *tls.Certificate
	name := ""
	if t.files.Cert != "" {
		c, err := tls.LoadX509KeyPair(t.files.Cert, t.files.Key)
		if err != nil {
			return fmt.Errorf("TLS certificate %s and key %s: %w", t.files.Cert, t.files.Key, err)
		}
		leaf, err := x509.ParseCertificate(c.Certificate[0])
		if err != nil {
			return fmt.Errorf("TLS certificate %s: %w", t.files.Cert, err)
		}
		if _, err := leaf.Verify(x509.VerifyOptions{Roots: pool, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
			return fmt.Errorf("TLS certificate %s is not signed by the CA in %s: %w", t.files.Cert, t.files.CA, err)
		}
		c.Leaf = leaf
		cert, name = &c, leaf.Subject.CommonName
	}
	t.stamp, t.cert, t.pool, t.name = stamp, cert, pool, name
	return nil
}

// ServerConfig is a server's TLS configuration. requireClient demands a
// client certificate from the CA (mutual TLS); otherwise one is verified
// when given, and a client may authenticate with a token instead.
func (t *TLS) ServerConfig(requireClient bool) *tls.Config {
	auth := tls.VerifyClientCertIfGiven
	if requireClient {
		auth = tls.RequireAndVerifyClientCert
	}
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
			cert, pool := t.current()
			if cert == nil {
				return nil, errors.New("no server certificate")
			}
			return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{*cert}, ClientCAs: pool, ClientAuth: auth}, nil
		},
	}
}

// ClientConfig is a client's TLS configuration for a server at addr
// (host:port or host): the CA's pool as roots, the server's name checked
// against host, and this part's certificate offered when it has one.
func (t *TLS) ClientConfig(addr string) *tls.Config {
	cert, pool := t.current()
	host := addr
	if h, _, err := net.SplitHostPort(addr); err == nil {
		host = h
	}
	c := &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool, ServerName: host}
	if cert != nil {
		c.Certificates = []tls.Certificate{*cert}
	}
	return c
}

// Dial opens a TLS connection to addr with the current files.
func (t *TLS) Dial(ctx context.Context, network, addr string) (net.Conn, error) {
	d := tls.Dialer{Config: t.ClientConfig(addr)}
	return d.DialContext(ctx, network, addr)
}

// PeerName is the common name of the verified certificate a peer
// presented on a connection, or "" when it presented none.
func PeerName(cs *tls.ConnectionState) string {
	if cs == nil || len(cs.VerifiedChains) == 0 || len(cs.VerifiedChains[0]) == 0 {
		return ""
	}
	return cs.VerifiedChains[0][0].Subject.CommonName
}

// IssueLocal issues NAME in dir for this machine's loopback addresses
// (unless it exists) and loads it: what an all-in-one-process system
// (parley demo, tests) gives each of its parts.
func IssueLocal(dir, name string) (*TLS, error) {
	if _, err := os.Stat(CertFile(dir, name)); err != nil {
		if err := Issue(dir, name, []string{"127.0.0.1", "::1", "localhost"}, false); err != nil {
			return nil, err
		}
	}
	return Load(Files{CA: filepath.Join(dir, CAFile), Cert: CertFile(dir, name), Key: KeyFile(dir, name)})
}

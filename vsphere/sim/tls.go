package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"time"

	"github.com/parleyhq/parley/vsphere"
)

// The simulator serves HTTPS with a certificate of its own, made at
// start: self-signed (it is its own CA), valid for loopback and the
// listen host. Clients trust it with its CA file (WriteCA) or pin its
// thumbprint, as they would a vCenter's.

func newCertificate(hosts ...string) (tls.Certificate, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 100))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "parley vcsim", Organization: []string{"parley simulator"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(365 * 24 * time.Hour),
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
		IsCA:                  true,
		IPAddresses:           []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:              []string{"localhost"},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else if h != "" {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return tls.Certificate{}, err
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}, nil
}

// Thumbprint is the SHA-1 thumbprint of the simulator's certificate as
// vSphere shows one: upper-case hex pairs joined by colons.
func (s *Sim) Thumbprint() string { return vsphere.Thumbprint(s.cert.Certificate[0]) }

// CAPEM is the simulator's certificate in PEM: the CA file of its clients.
func (s *Sim) CAPEM() []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Certificate[0]})
}

// WriteCA writes the CA file to path.
func (s *Sim) WriteCA(path string) error {
	return os.WriteFile(path, s.CAPEM(), 0o644)
}

// ServerTLS is the TLS configuration of the simulator's other endpoints
// (the control API), with the same certificate.
func (s *Sim) ServerTLS() *tls.Config {
	return &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{s.cert}}
}

// ClientTLS trusts the simulator's certificate, for clients of the
// control API.
func (s *Sim) ClientTLS() *tls.Config {
	pool := x509.NewCertPool()
	pool.AddCert(s.cert.Leaf)
	return &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
}

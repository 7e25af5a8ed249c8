package pki

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestInitAndIssue(t *testing.T) {
	dir := t.TempDir()
	if err := InitCA(dir); err != nil {
		t.Fatal(err)
	}
	if err := InitCA(dir); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("a second init replaced the CA: %v", err)
	}
	if fi, _ := os.Stat(filepath.Join(dir, CAKeyFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	if err := Issue(dir, "s1", []string{"10.0.0.1", "store1.example.com"}, false); err != nil {
		t.Fatal(err)
	}
	if err := Issue(dir, "s1", nil, false); err == nil {
		t.Error("issue replaced a certificate without --force")
	}
	if err := Issue(dir, "bad name", nil, false); err == nil {
		t.Error("issued a certificate for a name with a space")
	}
	if err := Issue(t.TempDir(), "s1", nil, false); err == nil || !strings.Contains(err.Error(), "cert init") {
		t.Errorf("issue without a CA: %v", err)
	}
	b, _ := os.ReadFile(CertFile(dir, "s1"))
	blk, _ := pem.Decode(b)
	cert, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if cert.Subject.CommonName != "s1" || len(cert.IPAddresses) != 1 || !cert.IPAddresses[0].Equal(net.ParseIP("10.0.0.1")) ||
		strings.Join(cert.DNSNames, ",") != "s1,store1.example.com" {
		t.Errorf("certificate names: cn %s ips %v dns %v", cert.Subject.CommonName, cert.IPAddresses, cert.DNSNames)
	}
	x, err := Load(Files{CA: filepath.Join(dir, CAFile), Cert: CertFile(dir, "s1"), Key: KeyFile(dir, "s1")})
	if err != nil {
		t.Fatal(err)
	}
	if x.Name() != "s1" {
		t.Errorf("identity %q, want s1", x.Name())
	}
	// a certificate of another CA does not load against this one
	other := t.TempDir()
	InitCA(other)
	Issue(other, "s1", nil, false)
	if _, err := Load(Files{CA: filepath.Join(dir, CAFile), Cert: CertFile(other, "s1"), Key: KeyFile(other, "s1")}); err == nil || !strings.Contains(err.Error(), "not signed by the CA") {
		t.Errorf("loaded another CA's certificate: %v", err)
	}
}

// TestReloadsRotatedCertificates: a certificate replaced on disk is what
// the next handshake presents, without a restart.
func TestReloadsRotatedCertificates(t *testing.T) {
	dir := t.TempDir()
	InitCA(dir)
	srv, err := IssueLocal(dir, "s1")
	if err != nil {
		t.Fatal(err)
	}
	cli, err := IssueLocal(dir, "c1")
	if err != nil {
		t.Fatal(err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", srv.ServerConfig(true))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			c.(*tls.Conn).Handshake()
			c.Close()
		}
	}()
	serial := func() string {
		c, err := tls.Dial("tcp", ln.Addr().String(), cli.ClientConfig(ln.Addr().String()))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		return c.ConnectionState().PeerCertificates[0].SerialNumber.String()
	}
	before := serial()
	time.Sleep(10 * time.Millisecond) // a distinct modification time
	if err := Issue(dir, "s1", []string{"127.0.0.1"}, true); err != nil {
		t.Fatal(err)
	}
	if after := serial(); after == before {
		t.Error("the server still presents the certificate that was replaced")
	}
	// a broken file keeps the last good certificate in use, and says so
	os.WriteFile(CertFile(dir, "s1"), []byte("garbage"), 0o644)
	serial()
	if srv.Err() == nil {
		t.Error("a broken certificate file was not reported")
	}
}

package vsphere_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parleyhq/parley/vsphere"
	"github.com/parleyhq/parley/vsphere/sim"
	"github.com/rs/zerolog"
)

// TestGovcEnvironment: govc's variables fill what parley's flags left
// unset, and a connection made from them alone works against the
// simulator (with the thumbprint from a known-hosts file).
func TestGovcEnvironment(t *testing.T) {
	s, _ := newSim(t, sim.Config{Hosts: 2, VMs: 2, Seed: 1})
	dir := t.TempDir()
	pw := filepath.Join(dir, "pw")
	os.WriteFile(pw, []byte("from-a-file\n"), 0o600)
	known := filepath.Join(dir, "known_hosts")
	os.WriteFile(known, []byte("other.example.com AA:BB\n"+s.URL().Host+" "+s.Thumbprint()+"\n"), 0o600)
	u := *s.URL()
	u.User = nil
	t.Setenv("GOVC_URL", u.String())
	t.Setenv("GOVC_USERNAME", "admin")
	t.Setenv("GOVC_PASSWORD", pw)
	t.Setenv("GOVC_TLS_KNOWN_HOSTS", known)
	t.Setenv("GOVC_CLUSTER", "DC0_C0")
	var cfg vsphere.Config
	cfg.FromGovcEnv()
	if cfg.URL != u.String() || cfg.User != "admin" || cfg.Password != "from-a-file" || cfg.Thumbprint != s.Thumbprint() || cfg.Cluster != "DC0_C0" {
		t.Fatalf("from govc's environment: %+v", cfg)
	}
	// parley's own settings win
	own := vsphere.Config{URL: "https://vc.example.com/sdk", User: "svc"}
	own.FromGovcEnv()
	if own.URL != "https://vc.example.com/sdk" || own.User != "svc" {
		t.Errorf("govc's environment replaced parley's own settings: %+v", own)
	}
	c, err := vsphere.Connect(ctxT(t), cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("connect with govc's environment alone: %v", err)
	}
	c.Close()
}

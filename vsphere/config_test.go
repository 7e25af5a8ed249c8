package vsphere

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestCredentialsSources(t *testing.T) {
	t.Setenv("PARLEY_VSPHERE_USER", "")
	t.Setenv("PARLEY_VSPHERE_PASSWORD", "")
	c := Config{URL: "https://alice:s3cret@vc.example/sdk"}
	if err := c.Credentials(""); err != nil || c.User != "alice" || c.Password != "s3cret" {
		t.Fatalf("from the URL: %+v %v", c, err)
	}
	t.Setenv("PARLEY_VSPHERE_USER", "bob")
	t.Setenv("PARLEY_VSPHERE_PASSWORD", "envpass")
	c = Config{URL: "https://vc.example/sdk"}
	if err := c.Credentials(""); err != nil || c.User != "bob" || c.Password != "envpass" {
		t.Fatalf("from the environment: %+v %v", c, err)
	}
	t.Setenv("PARLEY_VSPHERE_USER", "")
	t.Setenv("PARLEY_VSPHERE_PASSWORD", "")
	f := filepath.Join(t.TempDir(), "cred")
	os.WriteFile(f, []byte("carol:filepass\n"), 0o600)
	c = Config{URL: "https://vc.example/sdk"}
	if err := c.Credentials(f); err != nil || c.User != "carol" || c.Password != "filepass" {
		t.Fatalf("from a file: %+v %v", c, err)
	}
	c = Config{URL: "https://vc.example/sdk"}
	if err := c.Credentials(""); err == nil {
		t.Fatal("no credentials accepted")
	}
	if r := Redacted("https://alice:s3cret@vc.example/sdk"); strings.Contains(r, "s3cret") {
		t.Fatalf("redacted URL shows the password: %s", r)
	}
}

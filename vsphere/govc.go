package vsphere

import (
	"bufio"
	"net/url"
	"os"
	"strconv"
	"strings"

	"github.com/vmware/govmomi/vim25/soap"
)

// FromGovcEnv fills what parley's own flags left unset from govc's
// environment, so that an administrator's govc set-up works as is:
// GOVC_URL, GOVC_USERNAME, GOVC_PASSWORD (a value naming a file means its
// contents), GOVC_INSECURE, GOVC_TLS_CA_CERTS, GOVC_TLS_KNOWN_HOSTS (the
// thumbprint of the URL's host) and GOVC_CLUSTER (the cluster the worker's
// host must be in). GOVC_DATACENTER is read for completeness: a worker
// finds its host by name in every datacentre.
func (c *Config) FromGovcEnv() {
	if c.URL == "" {
		c.URL = os.Getenv("GOVC_URL")
	}
	if c.User == "" {
		c.User = fileOrValue(os.Getenv("GOVC_USERNAME"))
	}
	if c.Password == "" {
		c.Password = fileOrValue(os.Getenv("GOVC_PASSWORD"))
	}
	if !c.Insecure {
		c.Insecure, _ = strconv.ParseBool(os.Getenv("GOVC_INSECURE"))
	}
	if c.CAFile == "" {
		c.CAFile = os.Getenv("GOVC_TLS_CA_CERTS")
	}
	if c.Thumbprint == "" {
		if f := os.Getenv("GOVC_TLS_KNOWN_HOSTS"); f != "" && c.URL != "" {
			if u, err := soap.ParseURL(c.URL); err == nil && u != nil {
				c.Thumbprint = knownThumbprint(f, u.Host)
			}
		}
	}
	if c.Cluster == "" {
		c.Cluster = os.Getenv("GOVC_CLUSTER")
	}
	if c.Datacenter == "" {
		c.Datacenter = os.Getenv("GOVC_DATACENTER")
	}
}

// fileOrValue is the contents of the file a value names, or the value.
func fileOrValue(v string) string {
	if v == "" {
		return ""
	}
	if fi, err := os.Stat(v); err == nil && fi.Mode().IsRegular() {
		if b, err := os.ReadFile(v); err == nil {
			return strings.TrimSpace(string(b))
		}
	}
	return v
}

// knownThumbprint reads govc's known-hosts file ("host thumbprint" lines)
// for host (with or without its port).
func knownThumbprint(path, host string) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	bare := host
	if u, err := url.Parse("https://" + host); err == nil {
		bare = u.Hostname()
	}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) == 2 && (fields[0] == host || fields[0] == bare) {
			return fields[1]
		}
	}
	return ""
}

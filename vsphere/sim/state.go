package sim

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/vmware/govmomi/simulator"
	"github.com/vmware/govmomi/vim25/types"
)

// A simulator that keeps its state (Config.StateDir, parley sim --state
// DIR), as a vCenter keeps its database: the inventory's shape, each VM's
// host and demand, the hosts' maintenance, the clusters' configuration
// (DRS, rules and groups), the relocation record and the
// TLS key and certificate are saved every stateEvery and when it stops, and
// loaded when it starts again, so that a restarted simulator is the same
// vCenter: the same thumbprint, the same managed object ids, the VMs where
// they were (a kill -9 loses at most the last stateEvery). Relocations in
// flight when it stopped are lost with it, as a vCenter's tasks are: their
// VMs are where they were last saved.

const stateFile = "state.json"

// stateEvery is how often the state is saved.
const stateEvery = 2 * time.Second

// stateVersion is the version of state.json's encoding.
const stateVersion = 1

type savedState struct {
	V       int               `json:"v"`
	Saved   time.Time         `json:"saved"`
	Config  savedConfig       `json:"config"`
	Layout  Layout            `json:"layout"` // each VM's host and demand as of Saved
	IDs     map[string]string `json:"ids"`    // host and VM name -> managed object id
	Maint   map[string]bool   `json:"maintenance,omitempty"`
	Records []Relocation      `json:"relocations"`
	// Clusters is each cluster's configurationEx (its DRS settings, rules
	// and groups) by cluster name, in govmomi's typed JSON
	Clusters map[string]json.RawMessage `json:"clusters,omitempty"`
	CertPEM  string                     `json:"cert_pem"`
	KeyPEM   string                     `json:"key_pem"`
}

// savedConfig is what of Config shapes the inventory: a restart keeps it,
// whatever the flags of the restart say.
type savedConfig struct {
	Hosts        int    `json:"hosts"`
	VMs          int    `json:"vms"`
	Seed         int64  `json:"seed"`
	Clusters     int    `json:"clusters"`
	DRS          string `json:"drs,omitempty"`
	ZonedStorage bool   `json:"zoned_storage,omitempty"`
}

// loadState reads dir's state; nil when there is none yet.
func loadState(dir string) (*savedState, error) {
	b, err := os.ReadFile(filepath.Join(dir, stateFile))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("sim: state: %w", err)
	}
	var st savedState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("sim: state %s: %w", filepath.Join(dir, stateFile), err)
	}
	if st.V != stateVersion {
		return nil, fmt.Errorf("sim: state %s has version %d, this simulator reads %d", filepath.Join(dir, stateFile), st.V, stateVersion)
	}
	if len(st.Layout.Hosts) != st.Config.Hosts || len(st.Layout.VMs) != st.Config.VMs {
		return nil, fmt.Errorf("sim: state %s: %d hosts and %d VMs in its layout, %d and %d in its configuration",
			filepath.Join(dir, stateFile), len(st.Layout.Hosts), len(st.Layout.VMs), st.Config.Hosts, st.Config.VMs)
	}
	return &st, nil
}

// restoreClusters sets each saved cluster's configurationEx again: its
// rules and groups name VMs and hosts by managed object id, which a
// restart keeps (checkIDs).
func (s *Sim) restoreClusters(st *savedState) error {
	ctx := s.ctx()
	for _, o := range ctx.Map.All("ClusterComputeResource") {
		c, ok := o.(*simulator.ClusterComputeResource)
		if !ok {
			continue
		}
		raw, ok := st.Clusters[c.Name]
		if !ok {
			continue
		}
		var cfg types.BaseComputeResourceConfigInfo
		if err := types.NewJSONDecoder(bytes.NewReader(raw)).Decode(&cfg); err != nil {
			return fmt.Errorf("sim: state: cluster %s's configuration: %w", c.Name, err)
		}
		ctx.Map.WithLock(ctx, c, func() { c.ConfigurationEx = cfg })
	}
	return nil
}

// restoreCert is the saved certificate.
func (st *savedState) restoreCert() (tls.Certificate, error) {
	c, err := tls.X509KeyPair([]byte(st.CertPEM), []byte(st.KeyPEM))
	if err != nil {
		return c, fmt.Errorf("sim: state: certificate: %w", err)
	}
	c.Leaf, err = x509.ParseCertificate(c.Certificate[0])
	return c, err
}

// vmOrder is the saved VMs' names in the order of their ids, the order
// to create them in for vcsim to give them the same ids.
func (st *savedState) vmOrder() []string {
	names := make([]string, 0, len(st.Layout.VMs))
	for _, v := range st.Layout.VMs {
		names = append(names, v.Name)
	}
	num := func(n string) int {
		id := st.IDs[n]
		k, _ := strconv.Atoi(id[strings.LastIndexByte(id, '-')+1:])
		return k
	}
	sort.SliceStable(names, func(i, j int) bool { return num(names[i]) < num(names[j]) })
	return names
}

// checkIDs: every host and VM came back with the id it had.
func (s *Sim) checkIDs(st *savedState) error {
	for name, id := range st.IDs {
		if got := s.byName[name]; got != id {
			return fmt.Errorf("sim: state: %s came back as %q, not %q (the state was written by a different simulator?)", name, got, id)
		}
	}
	return nil
}

// saveState writes the state, atomically: a crash leaves the previous one.
func (s *Sim) saveState() error {
	dir := s.cfg.StateDir
	if dir == "" {
		return nil
	}
	keyDER, err := x509.MarshalPKCS8PrivateKey(s.cert.PrivateKey)
	if err != nil {
		return err
	}
	st := savedState{V: stateVersion, Saved: time.Now(), IDs: map[string]string{}, Maint: map[string]bool{},
		Config:  savedConfig{Hosts: s.cfg.Hosts, VMs: s.cfg.VMs, Seed: s.cfg.Seed, Clusters: s.cfg.Clusters, DRS: s.cfg.DRS, ZonedStorage: s.cfg.ZonedStorage},
		CertPEM: string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: s.cert.Certificate[0]})),
		KeyPEM:  string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}))}
	s.mu.Lock()
	hostIndex := map[string]int{}
	st.Layout.Hosts = append([]HostSpec(nil), s.Layout.Hosts...)
	for i, h := range st.Layout.Hosts {
		hostIndex[s.byName[h.Name]] = i
		st.IDs[h.Name] = s.byName[h.Name]
	}
	for _, v := range s.Layout.VMs {
		id := s.byName[v.Name]
		v.Host, v.CPUMHz, v.MemMB = hostIndex[s.vmHost[id]], s.cpu[id], s.mem[id]
		st.Layout.VMs = append(st.Layout.VMs, v)
		st.IDs[v.Name] = id
	}
	st.Records = append([]Relocation(nil), s.records...)
	hosts := make(map[string]string, len(s.hosts))
	for id, h := range s.hosts {
		hosts[id] = h.Name
	}
	s.mu.Unlock()
	ctx := s.ctx()
	for id, name := range hosts {
		h := s.hosts[id]
		ctx.Map.WithLock(ctx, h, func() {
			if h.Runtime.InMaintenanceMode {
				st.Maint[name] = true
			}
		})
	}
	st.Clusters = map[string]json.RawMessage{}
	for _, o := range ctx.Map.All("ClusterComputeResource") {
		c, ok := o.(*simulator.ClusterComputeResource)
		if !ok {
			continue
		}
		var buf bytes.Buffer
		var err error
		ctx.Map.WithLock(ctx, c, func() { err = types.NewJSONEncoder(&buf).Encode(c.ConfigurationEx) })
		if err != nil {
			return fmt.Errorf("cluster %s's configuration: %w", c.Name, err)
		}
		st.Clusters[c.Name] = json.RawMessage(bytes.TrimSpace(buf.Bytes()))
	}
	b, err := json.Marshal(&st)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(dir, stateFile+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Chmod(tmp.Name(), 0o600); err != nil { // it holds the TLS key
		return err
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, stateFile)); err != nil {
		return err
	}
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// keepSaving saves the state every stateEvery until the simulator stops.
func (s *Sim) keepSaving() {
	defer s.wg.Done()
	t := time.NewTicker(stateEvery)
	defer t.Stop()
	for {
		select {
		case <-s.stop:
			return
		case <-t.C:
			if err := s.saveState(); err != nil {
				fmt.Fprintln(os.Stderr, "sim: save state:", err)
			}
		}
	}
}

package test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/rs/zerolog"

	"github.com/parleyhq/parley/vsphere"
)

// TestSimAsProcess starts `parley sim` as its own process and drives it
// through the SDK URL it prints, and its control API.
func TestSimAsProcess(t *testing.T) {
	p := start(t, "sim", "sim", "--hosts", "4", "--vms", "12", "--seed", "9", "--migrate-time", "200ms")
	sdk := p.waitOutput("SDK ", 60*time.Second)
	thumb := p.waitOutput("THUMBPRINT ", 5*time.Second)
	caFile := p.waitOutput("CA ", 5*time.Second)
	control := p.waitOutput("CONTROL ", 5*time.Second)
	ctl := controlClient(t, caFile)
	ctx := ctxFor(t, time.Minute)
	if !strings.HasPrefix(sdk, "https://") || !strings.HasPrefix(control, "https://") {
		t.Fatalf("the simulator serves plaintext: SDK %s, control %s", sdk, control)
	}
	// its CA file and its thumbprint are each enough; a wrong pin is refused
	// even though the CA would have been trusted
	wrong := "00" + thumb[2:]
	if c, err := vsphere.Connect(ctx, vsphere.Config{URL: sdk, User: "u", Password: "p", CAFile: caFile, Thumbprint: wrong}, zerolog.Nop()); err == nil {
		c.Close()
		t.Fatal("connected with a wrong thumbprint pin")
	} else if !strings.Contains(err.Error(), "thumbprint") {
		t.Fatalf("a wrong pin failed with %v, not a thumbprint mismatch", err)
	}
	if c, err := vsphere.Connect(ctx, vsphere.Config{URL: sdk, User: "u", Password: "p"}, zerolog.Nop()); err == nil {
		c.Close()
		t.Fatal("connected to a certificate no one trusts")
	}
	if c, err := vsphere.Connect(ctx, vsphere.Config{URL: sdk, User: "u", Password: "p", Thumbprint: thumb}, zerolog.Nop()); err != nil {
		t.Fatalf("connect with the printed thumbprint: %v", err)
	} else {
		c.Close()
	}
	c, err := vsphere.Connect(ctx, vsphere.Config{URL: sdk, User: "u", Password: "p", CAFile: caFile}, zerolog.Nop())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	inv, err := c.Inventory(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.Hosts) != 4 || len(inv.VMs) != 12 {
		t.Fatalf("%d hosts, %d VMs", len(inv.Hosts), len(inv.VMs))
	}
	vm := inv.VMs[0]
	target := inv.Hosts[0]
	if target.ID == vm.Host {
		target = inv.Hosts[1]
	}
	// maintenance through the control API makes the migration fail
	resp, err := ctl.Post(control+"/hosts/"+target.Name+"/maintenance", "application/json", strings.NewReader(`{"on": true}`))
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("control: %v %v", resp, err)
	}
	if err := c.Migrate(ctx, vm.ID, target.ID, nil); !errors.Is(err, vsphere.ErrHostUnavailable) {
		t.Fatalf("migrate to a host in maintenance: %v", err)
	}
	ctl.Post(control+"/hosts/"+target.Name+"/maintenance", "application/json", strings.NewReader(`{"on": false}`))
	if err := c.Migrate(ctx, vm.ID, target.ID, nil); err != nil {
		t.Fatal(err)
	}
	var recs []struct{ VM, From, To, Result string }
	getJSON(t, ctl, control+"/relocations", &recs)
	if len(recs) != 1 || recs[0].VM != vm.Name || recs[0].To != target.Name || recs[0].Result != "success" {
		t.Fatalf("relocation record: %+v", recs)
	}
	// bad input to the control API is a 4xx
	resp, _ = ctl.Post(control+"/vms/nope/demand", "application/json", strings.NewReader(`{"cpu_mhz": 1, "mem_mb": 1}`))
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("unknown VM: %d", resp.StatusCode)
	}
}

func getJSON(t *testing.T, hc *http.Client, url string, v any) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatal(err)
	}
}

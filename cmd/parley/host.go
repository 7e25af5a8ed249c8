package main

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strconv"
)

func init() {
	register("host",
		command{"list", "hosts with their worker, drain state and VMs left", (*cli).hostList},
		command{"drain", "ask for a host to be emptied and put into maintenance (evacuate policy)", (*cli).hostDrain},
		command{"undrain", "withdraw a drain request", (*cli).hostUndrain},
	)
}

func (c *cli) hostList(ctx context.Context, args []string) int {
	fs, sf := c.storeCmd("host list", "host list [--store ADDRS] [-o table|json]")
	cl, _, code, ok := c.storeArgs(fs, sf, args, 0, 0, nil)
	if !ok {
		return code
	}
	hs, err := cl.Hosts(ctx, false)
	if err != nil {
		return c.storeErr("host list", err)
	}
	ws, err := cl.Workers(ctx, false)
	if err != nil {
		return c.storeErr("host list", err)
	}
	// each worker's own word on vCenter, best effort: a fleet that cannot
	// be read leaves the columns empty
	type vcView struct {
		Up     *bool    `json:"vcenter_up"`
		Reason string   `json:"vcenter_reason"`
		Age    *float64 `json:"view_age_seconds"`
	}
	views := map[string]vcView{}
	if fl, err := cl.Fleet(ctx); err == nil {
		for _, fh := range fl.Hosts {
			var v vcView
			if len(fh.Status) > 0 && json.Unmarshal(fh.Status, &v) == nil {
				views[fh.Host] = v
			}
		}
	}
	type row struct {
		Host    string   `json:"host"`
		Worker  string   `json:"worker,omitempty"`
		VCenter string   `json:"vcenter,omitempty"` // up, or unavailable: the reason
		ViewAge *float64 `json:"view_age_seconds,omitempty"`
		Drain   bool     `json:"drain"`
		State   string   `json:"state,omitempty"`
		Reason  string   `json:"reason,omitempty"`
		VMsLeft *int     `json:"vms_left,omitempty"`
	}
	rows := map[string]*row{}
	for _, w := range ws {
		r := &row{Host: w.Host, Worker: w.ID}
		if v, ok := views[w.Host]; ok && v.Up != nil {
			r.VCenter, r.ViewAge = "up", v.Age
			if !*v.Up {
				r.VCenter = "unavailable: " + v.Reason
			}
		}
		rows[w.Host] = r
	}
	for _, h := range hs {
		r := rows[h.Name]
		if r == nil {
			r = &row{Host: h.Name}
			rows[h.Name] = r
		}
		r.Drain, r.State, r.Reason = h.Drain, h.State, h.Reason
		if h.Updated > 0 && h.State != "" {
			n := h.VMsLeft
			r.VMsLeft = &n
		}
	}
	var out []*row
	for _, r := range rows {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Host < out[j].Host })
	if *sf.output == "json" {
		writeJSON(c.stdout, out)
		return exitOK
	}
	t := newTable(c.stdout, "HOST", "WORKER", "VCENTER", "VIEW AGE", "DRAIN", "STATE", "VMS LEFT", "REASON")
	for _, r := range out {
		left := "-"
		if r.VMsLeft != nil {
			left = strconv.Itoa(*r.VMsLeft)
		}
		worker := r.Worker
		if worker == "" {
			worker = "(no live worker)"
		}
		vc, age := r.VCenter, "-"
		if vc == "" {
			vc = "-"
		}
		if len(vc) > 40 {
			vc = vc[:40] + "..."
		}
		if r.ViewAge != nil && *r.ViewAge >= 0 {
			age = strconv.FormatFloat(*r.ViewAge, 'f', 1, 64) + " s"
		}
		t.row(r.Host, worker, vc, age, strconv.FormatBool(r.Drain), r.State, left, r.Reason)
	}
	t.flush()
	return exitOK
}

func (c *cli) hostDrain(ctx context.Context, args []string) int { return c.drainCmd(ctx, args, true) }

func (c *cli) hostUndrain(ctx context.Context, args []string) int {
	return c.drainCmd(ctx, args, false)
}

func (c *cli) drainCmd(ctx context.Context, args []string, on bool) int {
	name := "host undrain"
	if on {
		name = "host drain"
	}
	fs, sf := c.storeCmd(name, name+" HOST [--store ADDRS]")
	cl, pos, code, ok := c.storeArgs(fs, sf, args, 1, 1, nil)
	if !ok {
		return code
	}
	h, err := cl.Drain(ctx, pos[0], whoami(), on)
	if err != nil {
		return c.storeErr(name, err)
	}
	if *sf.output == "json" {
		writeJSON(c.stdout, h)
		return exitOK
	}
	if on {
		fmt.Fprintf(c.stdout, "%s: drain requested; workers following the evacuate policy will empty it and enter maintenance mode\n", h.Name)
	} else {
		fmt.Fprintf(c.stdout, "%s: drain withdrawn\n", h.Name)
	}
	return exitOK
}

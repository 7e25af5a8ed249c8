package test

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"strings"
	"sync"
	"testing"
)

// netlab puts each process of a test in its own network namespace, joined
// by veth pairs to a bridge in a switch namespace, with private addresses
// inside the namespaces only. The test process reaches every node through
// one more veth (the observer's), which faults never touch. A test can
// then cut links: a node's link down, nftables rules for one direction or
// both, random loss. These kernels have no netem, so delay is not here
// (see the delay proxy: not built yet).
type netlab struct {
	t      *testing.T
	id     string
	prefix string // 10.X.0
	sw     string // the switch namespace
	obs    string // the observer's veth in the test's namespace

	mu    sync.Mutex
	nodes map[string]*netnode
	next  int
}

type netnode struct {
	name string
	ns   string
	ip   string
}

// labReason says why namespaces cannot be made here, or "".
func labReason() string {
	if out, err := exec.Command("id", "-u").Output(); err != nil || strings.TrimSpace(string(out)) != "0" {
		return "network namespaces need root"
	}
	for _, tool := range []string{"ip", "nft"} {
		if _, err := exec.LookPath(tool); err != nil {
			return tool + " is not installed (.ci/run installs iproute2 and nftables)"
		}
	}
	name := fmt.Sprintf("plprobe%d", rand.IntN(1<<20))
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		return "cannot make a network namespace: " + strings.TrimSpace(string(out))
	}
	exec.Command("ip", "netns", "del", name).Run()
	return ""
}

func run(t *testing.T, args ...string) {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, stderr.String())
	}
}

func newNetlab(t *testing.T) *netlab {
	t.Helper()
	if why := labReason(); why != "" {
		t.Skip("partition tests skipped: " + why)
	}
	id := fmt.Sprintf("%05x", rand.IntN(1<<20))
	l := &netlab{t: t, id: id, prefix: fmt.Sprintf("10.%d.%d", 100+rand.IntN(150), rand.IntN(250)), sw: "plsw" + id, obs: "plo" + id, nodes: map[string]*netnode{}, next: 2}
	run(t, "ip", "netns", "add", l.sw)
	t.Cleanup(l.close)
	run(t, "ip", "-n", l.sw, "link", "set", "lo", "up")
	run(t, "ip", "-n", l.sw, "link", "add", "br0", "type", "bridge")
	run(t, "ip", "-n", l.sw, "link", "set", "br0", "up")
	// the observer: the test's own namespace on the bridge
	run(t, "ip", "link", "add", l.obs, "type", "veth", "peer", "name", "obs", "netns", l.sw)
	run(t, "ip", "-n", l.sw, "link", "set", "obs", "master", "br0", "up")
	run(t, "ip", "addr", "add", l.prefix+".1/24", "dev", l.obs)
	run(t, "ip", "link", "set", l.obs, "up")
	return l
}

// node makes (once) the namespace of a named node and returns it.
func (l *netlab) node(name string) *netnode {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n, ok := l.nodes[name]; ok {
		return n
	}
	i := l.next
	l.next++
	n := &netnode{name: name, ns: fmt.Sprintf("pl%s-%d", l.id, i), ip: fmt.Sprintf("%s.%d", l.prefix, i)}
	t := l.t
	run(t, "ip", "netns", "add", n.ns)
	run(t, "ip", "-n", n.ns, "link", "set", "lo", "up")
	port := fmt.Sprintf("p%d", i)
	run(t, "ip", "-n", l.sw, "link", "add", port, "type", "veth", "peer", "name", "eth0", "netns", n.ns)
	run(t, "ip", "-n", l.sw, "link", "set", port, "master", "br0", "up")
	run(t, "ip", "-n", n.ns, "addr", "add", n.ip+"/24", "dev", "eth0")
	run(t, "ip", "-n", n.ns, "link", "set", "eth0", "up")
	l.nodes[name] = n
	return n
}

// cut drops traffic from node a to each of the others (one way); both
// ways when both is true. heal undoes every cut of a.
func (l *netlab) cut(a string, both bool, others ...string) {
	n := l.node(a)
	var ips []string
	for _, o := range others {
		ips = append(ips, l.node(o).ip)
	}
	set := strings.Join(ips, ", ")
	rules := fmt.Sprintf("table inet plcut {\n chain out {\n  type filter hook output priority 0;\n  ip daddr { %s } drop\n }\n", set)
	if both {
		rules += fmt.Sprintf(" chain in {\n  type filter hook input priority 0;\n  ip saddr { %s } drop\n }\n", set)
	}
	rules += "}\n"
	l.nft(n, "delete table inet plcut", true)
	l.nft(n, rules, false)
}

// lossy drops pct percent of a node's packets at random, both ways.
func (l *netlab) lossy(a string, pct int) {
	n := l.node(a)
	l.nft(n, "delete table inet plcut", true)
	l.nft(n, fmt.Sprintf("table inet plcut {\n chain out {\n  type filter hook output priority 0;\n  ip daddr != %s.1 numgen random mod 100 < %d drop\n }\n chain in {\n  type filter hook input priority 0;\n  ip saddr != %s.1 numgen random mod 100 < %d drop\n }\n}\n", l.prefix, pct, l.prefix, pct), false)
}

func (l *netlab) heal(a string) { l.nft(l.node(a), "delete table inet plcut", true) }

func (l *netlab) nft(n *netnode, rules string, mayFail bool) {
	cmd := exec.Command("ip", "netns", "exec", n.ns, "nft", "-f", "-")
	cmd.Stdin = strings.NewReader(rules)
	if out, err := cmd.CombinedOutput(); err != nil && !mayFail {
		l.t.Fatalf("nft in %s: %v: %s\n%s", n.name, err, out, rules)
	}
}

func (l *netlab) close() {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, n := range l.nodes {
		exec.Command("ip", "netns", "del", n.ns).Run()
	}
	exec.Command("ip", "link", "del", l.obs).Run()
	exec.Command("ip", "netns", "del", l.sw).Run()
}

//go:build linux && !race

package chaos

// The lab: one network namespace per node and a "hub" namespace holding
// two bridges. Each node has eth0 on the data bridge (the mesh's gossip
// and events; a fault cuts it) and mg0 on the management bridge (its HTTP
// API; no fault touches it, so the harness keeps watching a node that is
// cut off). One veth joins the test's own namespace to the management
// bridge, so the harness reaches every node's API over it; deleting the
// hub namespace deletes that veth too. Namespaces are named after the test
// process's PID, so a later run deletes those a crashed one left behind.

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
)

// labPrefix starts every name the lab gives (namespaces, the veth in the
// test's namespace).
const labPrefix = "wch"

var labSeq atomic.Int32

// lab is the namespaces of one test.
type lab struct {
	t      *testing.T
	prefix string
	hub    string
	nodes  []string // namespaces, one per node
}

// Addresses: data plane 10.214.1.N, management 10.214.2.N (N = node
// index + 1), the harness 10.214.2.254.
func dataIP(i int) string { return fmt.Sprintf("10.214.1.%d", i+1) }
func mgmtIP(i int) string { return fmt.Sprintf("10.214.2.%d", i+1) }

const harnessIP = "10.214.2.254"

// requireLab skips the test, saying why, where namespaces cannot be made.
func requireLab(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: the chaos harness needs root to make network namespaces (CI runs it as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("SKIP: the chaos harness needs `ip` from iproute2 (apt-get install iproute2)")
	}
	if out, err := exec.Command("ip", "netns", "list").CombinedOutput(); err != nil {
		t.Skipf("SKIP: `ip netns` does not work here: %v: %s", err, bytes.TrimSpace(out))
	}
}

// deleteStaleLabs deletes the namespaces of test processes that are gone.
func deleteStaleLabs() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(f[0], labPrefix)
		if !ok {
			continue
		}
		digits := rest[:len(rest)-len(strings.TrimLeft(rest, "0123456789"))]
		pid, err := strconv.Atoi(digits)
		if err != nil || pid == os.Getpid() {
			continue
		}
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); os.IsNotExist(err) {
			_ = exec.Command("ip", "netns", "del", f[0]).Run()
		}
	}
}

// newLab makes n node namespaces and the hub; the test's cleanup deletes
// them.
func newLab(t *testing.T, n int) *lab {
	t.Helper()
	deleteStaleLabs()
	l := &lab{t: t, prefix: fmt.Sprintf("%s%dx%d", labPrefix, os.Getpid(), labSeq.Add(1))}
	l.hub = l.prefix + "h"
	var made []string
	t.Cleanup(func() {
		for _, ns := range made {
			if out, err := exec.Command("ip", "netns", "del", ns).CombinedOutput(); err != nil {
				t.Logf("deleting namespace %s: %v: %s", ns, err, out)
			}
		}
	})
	addNS := func(ns string) {
		l.ip("netns", "add", ns)
		made = append(made, ns)
		l.ip("-n", ns, "link", "set", "lo", "up")
	}
	addNS(l.hub)
	for _, br := range []string{"br0", "br1"} {
		l.ip("-n", l.hub, "link", "add", br, "type", "bridge")
		l.ip("-n", l.hub, "link", "set", br, "up")
	}
	// The harness's own leg on the management bridge.
	l.ip("link", "add", l.prefix, "type", "veth", "peer", "name", "up0", "netns", l.hub)
	l.ip("addr", "add", harnessIP+"/24", "dev", l.prefix)
	l.ip("link", "set", l.prefix, "up")
	l.ip("-n", l.hub, "link", "set", "up0", "master", "br1")
	l.ip("-n", l.hub, "link", "set", "up0", "up")
	for i := range n {
		ns := fmt.Sprintf("%sn%d", l.prefix, i)
		addNS(ns)
		for _, leg := range []struct{ dev, port, br, ip string }{
			{"eth0", fmt.Sprintf("d%d", i), "br0", dataIP(i)},
			{"mg0", fmt.Sprintf("m%d", i), "br1", mgmtIP(i)},
		} {
			l.ip("-n", ns, "link", "add", leg.dev, "type", "veth", "peer", "name", leg.port, "netns", l.hub)
			l.ip("-n", ns, "addr", "add", leg.ip+"/24", "dev", leg.dev)
			l.ip("-n", ns, "link", "set", leg.dev, "up")
			l.ip("-n", l.hub, "link", "set", leg.port, "master", leg.br)
			l.ip("-n", l.hub, "link", "set", leg.port, "up")
		}
		l.nodes = append(l.nodes, ns)
	}
	// Carrier changes reach the bridges in batches, up to a second late:
	// start the nodes on a network that forwards.
	warptest.Eventually(t, 30*time.Second, func() bool { return l.forwarding() == 2*n+1 },
		"the bridges' ports did not come up: %s", func() string { return l.output("bridge", "-n", l.hub, "link", "show") })
	return l
}

// forwarding counts the bridge ports that carry traffic.
func (l *lab) forwarding() int {
	up := 0
	for line := range strings.Lines(l.output("bridge", "-n", l.hub, "link", "show")) {
		if strings.Contains(line, "state forwarding") && !strings.Contains(line, "NO-CARRIER") {
			up++
		}
	}
	return up
}

// setData takes node i's data-plane link down or up, at the bridge's end.
func (l *lab) setData(i int, up bool) {
	state := "down"
	if up {
		state = "up"
	}
	l.ip("-n", l.hub, "link", "set", fmt.Sprintf("d%d", i), state)
}

func (l *lab) output(name string, args ...string) string {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return fmt.Sprintf("%s: %v: %s", name, err, out)
	}
	return string(out)
}

func (l *lab) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
}

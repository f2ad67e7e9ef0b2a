//go:build linux

package membership_test

// These tests run nodes in Linux network namespaces joined by a bridge, so
// that multicast discovery sends real announcements on a real (virtual)
// Ethernet segment that is nobody else's: a "hub" namespace holds the
// bridge, and each node's namespace has one veth interface, eth0, plugged
// into it. Nothing is added to the host's own namespace. A node runs in a
// child process — this test binary, re-executed inside its namespace with
// `ip netns exec` to run only TestHelperMulticastNode — that speaks a line
// protocol on stdout (lines starting with mcPrefix) and takes commands on
// stdin, and that stops when its stdin closes. They need root and iproute2
// (.ci/run installs it) and skip, saying why, without them.

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// Environment of a child node.
const (
	envMCNode  = "WARP_TEST_MC_NODE" // "1" makes TestHelperMulticastNode run a node
	envMCName  = "WARP_TEST_MC_NAME"
	envMCZone  = "WARP_TEST_MC_ZONE"
	envMCGroup = "WARP_TEST_MC_GROUP"
	envMCIface = "WARP_TEST_MC_INTERFACE"
	envMCKey   = "WARP_TEST_MC_KEY" // hex; empty: no key
	envMCLabel = "WARP_TEST_MC_LABEL"
	envMCPeers = "WARP_TEST_MC_PEERS" // comma-separated
	envMCBind  = "WARP_TEST_MC_BIND"  // BindAddr; empty: all addresses
)

// mcPrefix starts every protocol line of a child.
const mcPrefix = "warp-mc "

// mcGroup is the group of the tests: administratively scoped, and only
// ever sent on the test's own bridge.
const mcGroup = "239.77.13.1"

var (
	nsKey      = []byte("multicast-test-key-0123456789abc")
	nsOtherKey = []byte("another-cluster-key-0123456789ab")
)

// TestHelperMulticastNode is not a test of its own: it is the body of the
// child processes of this file's tests, and skips unless re-executed by
// them.
func TestHelperMulticastNode(t *testing.T) {
	if os.Getenv(envMCNode) != "1" {
		t.Skip("helper process of the network-namespace tests; runs only when they re-execute the test binary")
	}
	if err := runMulticastNode(os.Stdin, os.Stdout, os.Getenv); err != nil {
		fmt.Fprintln(os.Stderr, "warp-mc:", err)
		os.Exit(2)
	}
}

// runMulticastNode runs one mesh node until stdin ends. It prints
//
//	warp-mc error <quoted error>        when the node cannot be created (then returns)
//	warp-mc up <addr> <interface>       once the node runs
//	warp-mc members <a,b,…>             the alive members, at each change
//	warp-mc stats <auth> <label> <sent> <send errors> <received> <ignored> <joins> <answered>
//	                                    the discovery counters, at each change
//	warp-mc event <key> <origin>        per event received
//	warp-mc published <key> ok|<error>  the outcome of a publish command
//
// and takes the command "publish-await <replicas> <key>" on stdin.
func runMulticastNode(stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	opts := mesh.MeshOptions{
		NodeName:  getenv(envMCName),
		Zone:      getenv(envMCZone),
		Group:     getenv(envMCGroup),
		Interface: getenv(envMCIface),
		Label:     getenv(envMCLabel),
		BindAddr:  getenv(envMCBind),
		Profile:   "local",
		Logger:    slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	if k := getenv(envMCKey); k != "" {
		key, err := hex.DecodeString(k)
		if err != nil {
			return err
		}
		opts.SecretKeys = [][]byte{key}
	}
	if p := getenv(envMCPeers); p != "" {
		opts.Peers = strings.Split(p, ",")
	}
	out := &mcWriter{w: stdout}
	bus, err := mesh.NewMeshBus(opts)
	if err != nil {
		out.printf("error %s", strconv.Quote(err.Error()))
		return nil
	}
	defer bus.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.Subscribe(ctx, "mc:key")
	if err != nil {
		return err
	}
	ml := bus.Membership()
	out.printf("up %s %s", bus.Addr(), ml.DiscoveryStats().Interface)

	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range sub { // closed when ctx is cancelled
			out.printf("event %s %s", ev.Key, ev.Origin)
		}
	})
	wg.Go(func() {
		// Report the members at each change, and the counters when they
		// move (looked at every 50ms: reporting, not synchronisation).
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		lastMembers, lastStats := "", ""
		for {
			if m := aliveNames(bus.Members()); m != lastMembers {
				lastMembers = m
				out.printf("members %s", m)
			}
			st := ml.DiscoveryStats()
			if s := fmt.Sprintf("%d %d %d %d %d %d %d %d", st.Dropped["auth"], st.Dropped["label"], st.Sent, st.SendErrors,
				st.Received, st.Ignored, st.Joins, st.JoinsAnswered); s != lastStats {
				lastStats = s
				out.printf("stats %s", s)
			}
			select {
			case <-ctx.Done():
				return
			case <-ml.Changed():
			case <-tick.C:
			}
		}
	})

	sc := bufio.NewScanner(stdin)
	for sc.Scan() { // until the parent closes stdin or dies
		f := strings.Fields(sc.Text())
		if len(f) != 3 || f[0] != "publish-await" {
			out.printf("published ? %s", strconv.Quote("unknown command "+sc.Text()))
			continue
		}
		n, _ := strconv.Atoi(f[1])
		pctx, pcancel := context.WithTimeout(ctx, 20*time.Second)
		err := bus.PublishAndAwait(pctx, f[2], n)
		pcancel()
		if err != nil {
			out.printf("published %s %s", f[2], strconv.Quote(err.Error()))
		} else {
			out.printf("published %s ok", f[2])
		}
	}
	cancel()
	wg.Wait()
	return bus.Close()
}

// aliveNames lists the alive (and suspect) members, sorted, comma-joined.
func aliveNames(ms []syncbus.Member) string {
	var names []string
	for _, m := range ms {
		if m.State.Alive() {
			names = append(names, m.Name)
		}
	}
	slices.Sort(names)
	return strings.Join(names, ",")
}

// mcWriter writes protocol lines whole.
type mcWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *mcWriter) printf(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, mcPrefix+fmt.Sprintf(format, args...)+"\n")
}

// labSeq numbers the labs of one test process.
var labSeq atomic.Uint32

// lab is a set of network namespaces on one bridge.
type lab struct {
	t      *testing.T
	prefix string
	hub    string
	nodes  []string // namespace of each node, eth0 at 10.213.13.(i+1)/24
}

// requireNetns skips the test unless network namespaces can be made here.
func requireNetns(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipping: network namespaces need root (CI runs the tests as root)")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		t.Skip("skipping: the ip command (iproute2) is not installed; .ci/run installs it")
	}
	cleanStaleLabs()
	name := fmt.Sprintf("warpmc%dprobe", os.Getpid())
	if out, err := exec.Command("ip", "netns", "add", name).CombinedOutput(); err != nil {
		t.Skipf("skipping: cannot create a network namespace here (%v: %s)", err, bytes.TrimSpace(out))
	}
	_ = exec.Command("ip", "netns", "del", name).Run()
}

// cleanStaleLabs deletes the namespaces that labs of test processes that
// no longer run left behind (a killed test cannot clean up).
func cleanStaleLabs() {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for line := range strings.Lines(string(out)) {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		rest, ok := strings.CutPrefix(f[0], "warpmc")
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

// newLab makes n node namespaces on one bridge (and bare ones with only a
// loopback, for bare > 0), and deletes them all when the test ends, also
// when it fails. A node namespace has a decoy interface, decoy0, besides
// eth0.
func newLab(t *testing.T, n, bare int) *lab {
	t.Helper()
	requireNetns(t)
	l := &lab{t: t, prefix: fmt.Sprintf("warpmc%dx%d", os.Getpid(), labSeq.Add(1))}
	l.hub = l.prefix + "hub"
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
		// No duplicate address detection: an interface's IPv6 link-local
		// address is usable at once rather than a second or two later.
		// Best effort: without IPv6 there is nothing to detect.
		_ = exec.Command("ip", "netns", "exec", ns, "sh", "-c", "echo 0 > /proc/sys/net/ipv6/conf/default/accept_dad").Run()
	}
	addNS(l.hub)
	l.ip("-n", l.hub, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
	l.ip("-n", l.hub, "link", "set", "br0", "up")
	for i := range n {
		ns := fmt.Sprintf("%sn%d", l.prefix, i)
		port := fmt.Sprintf("p%d", i)
		addNS(ns)
		// A decoy first: up and multicast-capable, but not where the
		// node's address is, so a node that picked the first such
		// interface instead of its address's would hear nobody.
		l.ip("-n", ns, "link", "add", "decoy0", "type", "veth", "peer", "name", "decoy1")
		l.ip("-n", ns, "link", "set", "decoy1", "up")
		l.ip("-n", ns, "link", "set", "decoy0", "up")
		l.ip("-n", ns, "link", "add", "eth0", "type", "veth", "peer", "name", port, "netns", l.hub)
		l.ip("-n", ns, "addr", "add", fmt.Sprintf("10.213.13.%d/24", i+1), "dev", "eth0")
		l.ip("-n", ns, "link", "set", "eth0", "up")
		l.ip("-n", l.hub, "link", "set", port, "master", "br0")
		l.ip("-n", l.hub, "link", "set", port, "up")
		l.nodes = append(l.nodes, ns)
	}
	for i := range bare {
		ns := fmt.Sprintf("%sb%d", l.prefix, i)
		addNS(ns)
		l.nodes = append(l.nodes, ns)
	}
	if n > 0 {
		// The kernel applies carrier changes in batches, up to a second
		// late; until then a bridge port is disabled and its node hears
		// nothing. Start the nodes on a segment that works.
		warptest.Eventually(t, 30*time.Second, func() bool { return l.portsForwarding(n) },
			"the bridge's ports did not come up: %s", func() string { return l.output("bridge", "-n", l.hub, "link", "show") })
	}
	return l
}

// portsForwarding reports whether the first n ports of the bridge carry
// traffic.
func (l *lab) portsForwarding(n int) bool {
	out := l.output("bridge", "-n", l.hub, "link", "show")
	up := 0
	for line := range strings.Lines(out) {
		if strings.Contains(line, "state forwarding") && !strings.Contains(line, "NO-CARRIER") {
			up++
		}
	}
	return up == n
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

// mcNodeConfig describes one child node.
type mcNodeConfig struct {
	Name, Zone, Group, Interface, Label string
	Bind                                string
	Key                                 []byte
	Peers                               []string
}

// mcNode is a node running in a child process inside a namespace.
type mcNode struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	mu     sync.Mutex
	lines  [][]string // protocol lines, fields without the prefix
	raw    bytes.Buffer
	stderr bytes.Buffer
	done   chan struct{}
	once   sync.Once
}

// start runs a node in namespace ns; the test's cleanup stops it (closing
// its stdin, killing it 10s later if it has not exited).
func (l *lab) start(ns string, cfg mcNodeConfig) *mcNode {
	t := l.t
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("ip", "netns", "exec", ns, exe,
		"-test.run=^TestHelperMulticastNode$", "-test.count=1", "-test.timeout=3m")
	cmd.Env = append(os.Environ(),
		envMCNode+"=1",
		envMCName+"="+cfg.Name,
		envMCZone+"="+cfg.Zone,
		envMCGroup+"="+cfg.Group,
		envMCIface+"="+cfg.Interface,
		envMCKey+"="+hex.EncodeToString(cfg.Key),
		envMCLabel+"="+cfg.Label,
		envMCPeers+"="+strings.Join(cfg.Peers, ","),
		envMCBind+"="+cfg.Bind,
	)
	n := &mcNode{name: cfg.Name, cmd: cmd, done: make(chan struct{})}
	n.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = &lockedWriter{mu: &n.mu, w: &n.stderr}
	cmd.WaitDelay = 5 * time.Second
	if err := cmd.Start(); err != nil {
		t.Fatalf("node %s: %v", cfg.Name, err)
	}
	// The reader owns stdout until the child exits; Wait is called after
	// it has read everything.
	go func() {
		defer close(n.done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			n.mu.Lock()
			n.raw.WriteString(line + "\n")
			if rest, ok := strings.CutPrefix(line, mcPrefix); ok {
				n.lines = append(n.lines, strings.Fields(rest))
			}
			n.mu.Unlock()
		}
		_ = cmd.Wait()
	}()
	t.Cleanup(n.stop)
	return n
}

// stop closes the child's stdin and waits for it, killing it after 10s.
func (n *mcNode) stop() {
	n.once.Do(func() {
		_ = n.stdin.Close()
		select {
		case <-n.done:
		case <-time.After(10 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.done
		}
	})
}

// last returns the fields of the last line of kind (nil if none).
func (n *mcNode) last(kind string) []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	for i := len(n.lines) - 1; i >= 0; i-- {
		if n.lines[i][0] == kind {
			return n.lines[i]
		}
	}
	return nil
}

// has reports whether the child printed a line with exactly these fields.
func (n *mcNode) has(fields ...string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.ContainsFunc(n.lines, func(f []string) bool { return slices.Equal(f, fields) })
}

// members returns the child's last list of alive members.
func (n *mcNode) members() string {
	if f := n.last("members"); len(f) == 2 {
		return f[1]
	}
	return ""
}

// dropped returns the child's last counts of announcements dropped for
// "auth" and for "label".
func (n *mcNode) dropped() (auth, label uint64) {
	f := n.last("stats")
	if len(f) != 9 {
		return 0, 0
	}
	auth, _ = strconv.ParseUint(f[1], 10, 64)
	label, _ = strconv.ParseUint(f[2], 10, 64)
	return auth, label
}

func (n *mcNode) exited() bool {
	select {
	case <-n.done:
		return true
	default:
		return false
	}
}

// send writes a command to the child.
func (n *mcNode) send(t *testing.T, cmd string) {
	t.Helper()
	if _, err := io.WriteString(n.stdin, cmd+"\n"); err != nil {
		t.Fatalf("node %s: %v\n%s", n.name, err, n.diagnostics())
	}
}

// logged reports whether the child wrote s to its log (stderr).
func (n *mcNode) logged(s string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return strings.Contains(n.stderr.String(), s)
}

func (n *mcNode) diagnostics() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return fmt.Sprintf("--- stdout of %s:\n%s--- stderr of %s:\n%s", n.name, tailOf(n.raw.String()), n.name, tailOf(n.stderr.String()))
}

func tailOf(s string) string {
	const max = 8 << 10
	if len(s) > max {
		return "…" + s[len(s)-max:]
	}
	return s
}

// lockedWriter writes to w under mu.
type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(b)
}

// describeAll prints every node's output, for failure messages.
func describeAll(nodes ...*mcNode) func() string {
	return func() string {
		var b strings.Builder
		for _, n := range nodes {
			fmt.Fprintf(&b, "\n%s: members %q, exited %v\n%s", n.name, n.members(), n.exited(), n.diagnostics())
		}
		return b.String()
	}
}

// TestMulticastDiscoveryInNamespaces: three nodes in three namespaces on
// one bridge, given only the group (no peers), find each other and pass an
// awaited publish; a fourth, given a peer as well as the group, joins
// them. A node with another key and one with another label on the same
// group are never joined, though everyone hears their announcements, and
// never join anyone.
func TestMulticastDiscoveryInNamespaces(t *testing.T) {
	l := newLab(t, 6, 0)
	good := func(name, zone string) mcNodeConfig {
		return mcNodeConfig{Name: name, Zone: zone, Group: mcGroup, Label: "mc", Key: nsKey}
	}
	a := l.start(l.nodes[0], good("a", "za"))
	warptest.Eventually(t, 30*time.Second, func() bool { return a.last("up") != nil || a.exited() },
		"%s", describeAll(a))
	// Interface is empty: eth0 holds the node's address (the decoy
	// interface comes first, and would hear nobody).
	if f := a.last("up"); len(f) != 3 || f[2] != "eth0" {
		t.Fatalf("node a did not start on eth0: %v%s", f, describeAll(a)())
	}
	b := l.start(l.nodes[1], good("b", "zb"))
	cc := good("c", "zc")
	cc.Interface = "eth0" // named
	c := l.start(l.nodes[2], cc)
	wrongKey := good("wrong-key", "zx")
	wrongKey.Key = nsOtherKey
	d := l.start(l.nodes[3], wrongKey)
	wrongLabel := good("wrong-label", "zy")
	wrongLabel.Label = "another-cluster"
	e := l.start(l.nodes[4], wrongLabel)
	all := []*mcNode{a, b, c, d, e}

	cluster := []*mcNode{a, b, c}
	sameMembers := func(nodes []*mcNode, want string) func() bool {
		return func() bool {
			for _, n := range nodes {
				if n.members() != want {
					return false
				}
			}
			return true
		}
	}
	warptest.Eventually(t, 60*time.Second, sameMembers(cluster, "a,b,c"),
		"the three nodes did not find each other by multicast:%s", describeAll(all...))

	if a.logged("multicast discovery is open") {
		t.Errorf("a node with keys logged that discovery is open%s", describeAll(a)())
	}

	a.send(t, "publish-await 2 mc:key")
	warptest.Eventually(t, 30*time.Second, func() bool { return a.last("published") != nil },
		"no outcome of the awaited publish:%s", describeAll(all...))
	if f := a.last("published"); !slices.Equal(f, []string{"published", "mc:key", "ok"}) {
		t.Fatalf("awaited publish: %v%s", f, describeAll(all...)())
	}
	for _, n := range []*mcNode{b, c} {
		warptest.Eventually(t, 10*time.Second, func() bool { return n.has("event", "mc:key", "a") },
			"%s did not receive the event:%s", n.name, describeAll(all...))
	}

	// Peers and Group together.
	fc := good("f", "zf")
	fc.Peers = []string{a.last("up")[1]}
	f := l.start(l.nodes[5], fc)
	all = append(all, f)
	cluster = append(cluster, f)
	warptest.Eventually(t, 60*time.Second, sameMembers(cluster, "a,b,c,f"),
		"the node with a peer and the group did not join:%s", describeAll(all...))

	// Everyone hears the strangers' announcements, and they hear ours:
	// each refuses what it cannot open (counted by reason). Once several
	// were refused, the clusters are still apart.
	warptest.Eventually(t, 60*time.Second, func() bool {
		for _, n := range cluster {
			if auth, label := n.dropped(); auth < 2 || label < 2 {
				return false
			}
		}
		dAuth, _ := d.dropped()
		_, eLabel := e.dropped()
		return dAuth >= 2 && eLabel >= 2
	}, "announcements were not refused as expected:%s", describeAll(all...))
	for _, n := range cluster {
		if m := n.members(); m != "a,b,c,f" {
			t.Errorf("%s's members: %s, want a,b,c,f", n.name, m)
		}
	}
	if m := d.members(); m != "wrong-key" {
		t.Errorf("the node with another key sees %s, want only itself", m)
	}
	if m := e.members(); m != "wrong-label" {
		t.Errorf("the node with another label sees %s, want only itself", m)
	}

	// Each node closes cleanly when told to: its process runs this
	// package's TestMain, whose leak check fails the exit status if a
	// goroutine (discovery's included) outlived Close.
	for _, n := range all {
		n.stop()
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("%s exited with status %d%s", n.name, code, describeAll(n)())
		}
	}
}

// TestMulticastInterfaceErrorsInNamespace: in a namespace whose only
// interface is the loopback, a node with a group but no interface cannot
// pick one, and one naming an interface that is not there is refused; the
// constructor says which, and the child exits cleanly.
func TestMulticastInterfaceErrorsInNamespace(t *testing.T) {
	l := newLab(t, 0, 1)
	bare := l.nodes[0]
	for _, c := range []struct {
		iface, want string
	}{
		{"", "no network interface is up, multicast-capable and not a loopback"},
		{"eth0", `Interface \"eth0\"`},
		{"lo", `Interface \"lo\" cannot multicast`},
	} {
		n := l.start(bare, mcNodeConfig{Name: "lonely", Group: mcGroup, Interface: c.iface, Key: nsKey, Bind: "127.0.0.1"})
		warptest.Eventually(t, 30*time.Second, func() bool { return n.exited() },
			"the node with Interface %q did not exit:%s", c.iface, describeAll(n))
		f := n.last("error")
		if len(f) < 2 || !strings.Contains(strings.Join(f[1:], " "), c.want) {
			t.Errorf("Interface %q: %v, want an error containing %q%s", c.iface, f, c.want, describeAll(n)())
		}
		if code := n.cmd.ProcessState.ExitCode(); code != 0 {
			t.Errorf("Interface %q: the child exited with %d%s", c.iface, code, describeAll(n)())
		}
	}
}

// TestMulticastDiscoveryOverIPv6InNamespaces: two nodes of a cluster
// without keys find each other over an IPv6 link-local group, and each
// says in its log that discovery is open to anyone on the segment.
func TestMulticastDiscoveryOverIPv6InNamespaces(t *testing.T) {
	if _, err := os.Stat("/proc/sys/net/ipv6"); err != nil {
		t.Skip("skipping: this host has no IPv6")
	}
	l := newLab(t, 2, 0)
	const group = "ff02::77:1" // port DefaultGroupPort
	a := l.start(l.nodes[0], mcNodeConfig{Name: "a", Zone: "za", Group: group, Label: "mc6"})
	b := l.start(l.nodes[1], mcNodeConfig{Name: "b", Zone: "zb", Group: group, Label: "mc6"})
	warptest.Eventually(t, 60*time.Second, func() bool { return a.members() == "a,b" && b.members() == "a,b" },
		"the two nodes did not find each other over IPv6 multicast:%s", describeAll(a, b))
	for _, n := range []*mcNode{a, b} {
		if !n.logged("multicast discovery is open") {
			t.Errorf("%s did not log that discovery is open without keys%s", n.name, describeAll(n)())
		}
	}
}

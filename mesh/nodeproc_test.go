package mesh_test

// This file runs mesh nodes in child processes, for the tests that need a
// node to die the way real nodes die: SIGKILL, no leave, no goodbye. The
// child is this very test binary, re-executed to run only TestHelperNode
// with the node's settings in its environment. It speaks a line protocol
// on stdout (every line starting with procPrefix) and stops when its stdin
// closes, so a child outlives neither its parent nor its test.

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

// Environment of a child node.
const (
	envNode    = "WARP_TEST_NODE" // "1" makes TestHelperNode run a node
	envName    = "WARP_TEST_NODE_NAME"
	envZone    = "WARP_TEST_NODE_ZONE"
	envSeed    = "WARP_TEST_NODE_SEED"    // host:port to join
	envProfile = "WARP_TEST_NODE_PROFILE" // lan, local or wan
	envFast    = "WARP_TEST_NODE_FAST"    // "1": FastMembership timings
	envKey     = "WARP_TEST_NODE_KEY"     // the key the node subscribes to
	envPrefix  = "WARP_TEST_NODE_PREFIX"  // a prefix it subscribes to instead, when set
	envPort    = "WARP_TEST_NODE_PORT"    // the port to bind (default: the system's choice)
)

// procPrefix starts every protocol line of a child; the test framework's
// own output ("PASS") never does.
const procPrefix = "warp-node "

// procSecret and procLabel are the cluster's key and label, shared by the
// children and the in-process nodes of the same test.
var procSecret = []byte("0123456789abcdef0123456789abcdef")

const procLabel = "test"

// TestHelperNode is not a test of its own: it is the body of the child
// processes started by startNodeProc, and skips unless re-executed by it.
func TestHelperNode(t *testing.T) {
	if os.Getenv(envNode) != "1" {
		t.Skip("helper process of the multi-process tests; runs only when they re-execute the test binary")
	}
	if err := runHelperNode(os.Stdin, os.Stdout, os.Getenv); err != nil {
		// The parent reads stderr and the exit status; t.Fatal would
		// print to stdout among the protocol lines.
		fmt.Fprintln(os.Stderr, "warp-node:", err)
		os.Exit(2)
	}
}

// runHelperNode runs one node until stdin reaches EOF. It prints
//
//	warp-node subscribed <acks>                      once subscribed, with the acks sent before
//	warp-node addr <host:port>                       once, when the node is up
//	warp-node event <key> <origin> <zone>            per event on the subscription
//	warp-node member <kind> <name> <unixnano> <alive> per membership event
//
// where unixnano is the wall-clock time the child saw the membership event
// and alive the number of members it then counts alive (itself included).
func runHelperNode(stdin io.Reader, stdout io.Writer, getenv func(string) string) error {
	opts := mesh.MeshOptions{
		NodeName:   getenv(envName),
		BindAddr:   "127.0.0.1",
		Port:       -1,
		Zone:       getenv(envZone),
		Profile:    getenv(envProfile),
		Label:      procLabel,
		SecretKeys: [][]byte{procSecret},
		// The parent shows stderr when something goes wrong.
		Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo})),
	}
	// The node joins its seed only once it has subscribed (below): an
	// event that reached it before would be acknowledged as applied — it
	// had no subscription the event matched — and never logged, and the
	// parent could not tell that from a false acknowledgement.
	var seed netip.AddrPort
	if s := getenv(envSeed); s != "" {
		var err error
		if seed, err = netip.ParseAddrPort(s); err != nil {
			return fmt.Errorf("seed %q: %w", s, err)
		}
	}
	if port, err := strconv.Atoi(getenv(envPort)); err == nil && port > 0 {
		opts.Port = port
	}
	if getenv(envFast) == "1" {
		mesh.FastMembership(&opts)
	}
	key := getenv(envKey)
	if key == "" {
		key = "proc:key"
	}
	bus, err := mesh.NewMeshBus(opts)
	if err != nil {
		return err
	}
	defer bus.Close()

	out := &protoWriter{w: stdout}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sub, err := bus.Subscribe(ctx, key)
	if prefix := getenv(envPrefix); prefix != "" {
		sub, err = bus.SubscribePrefix(ctx, prefix)
	}
	if err != nil {
		return err
	}
	// A node restarted at its old address can hear events before it has
	// subscribed — peers still send to that address — and acknowledge
	// them, rightly (it holds nothing stale), with nothing logged: say how
	// many, so that the parent can tell such acks from false ones.
	out.printf("subscribed %d", bus.Metrics().AcksSent)
	if seed.IsValid() {
		bus.Membership().Contact(seed)
	}
	// Subscribe before announcing the address: a parent that publishes
	// once it has the address must not race the subscription.
	out.printf("addr %s", bus.Addr())

	var wg sync.WaitGroup
	wg.Go(func() {
		for ev := range sub { // closed when ctx is cancelled
			out.printf("event %s %s %s", ev.Key, ev.Origin, ev.Zone)
		}
	})
	wg.Go(func() {
		events := bus.Membership().Events()
		for {
			select {
			case <-ctx.Done():
				return
			case e, ok := <-events:
				if !ok {
					return
				}
				now := time.Now().UnixNano()
				out.printf("member %s %s %d %d", e.Kind, e.Node.Name, now, countAlive(bus.Members()))
			}
		}
	})

	_, _ = io.Copy(io.Discard, stdin) // until the parent closes stdin or dies
	cancel()
	wg.Wait()
	return bus.Close()
}

// countAlive counts the members in an alive state (suspect included).
func countAlive(ms []syncbus.Member) int {
	n := 0
	for _, m := range ms {
		if m.State.Alive() {
			n++
		}
	}
	return n
}

// protoWriter writes protocol lines whole, one at a time.
type protoWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (p *protoWriter) printf(format string, args ...any) {
	line := procPrefix + fmt.Sprintf(format, args...) + "\n"
	p.mu.Lock()
	defer p.mu.Unlock()
	_, _ = io.WriteString(p.w, line)
}

// nodeProcConfig describes one child node.
type nodeProcConfig struct {
	Name, Zone string
	Seed       string // host:port to join
	Profile    string // default "local"
	Fast       bool   // FastMembership timings
	Key        string // the key it subscribes to (default "proc:key")
	Prefix     string // a prefix it subscribes to instead, when set
	Port       int    // the port to bind (0: the system's choice)
}

// nodeProc is a mesh node running in a child process. Its methods are
// called from the test goroutine.
type nodeProc struct {
	name   string
	cmd    *exec.Cmd
	stdin  io.WriteCloser
	out    *procOutput
	stderr *lockedBuffer

	// done is closed once the child has exited and been reaped; waitErr
	// is cmd.Wait's result, valid after that.
	done    chan struct{}
	waitErr error

	stopped  sync.Once
	selfExit bool // the child exited without stop killing it
}

// startNodeProc starts a child node and registers its end in t.Cleanup: its
// stdin is closed, and it is killed if it has not exited 10s later. The
// child is never left running.
func startNodeProc(t testing.TB, cfg nodeProcConfig) *nodeProc {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		exe = os.Args[0]
	}
	if cfg.Profile == "" {
		cfg.Profile = "local"
	}
	// -test.timeout is a backstop for a child whose parent vanished in a
	// way that left its stdin open.
	cmd := exec.Command(exe, "-test.run=^TestHelperNode$", "-test.count=1", "-test.timeout=15m")
	cmd.Env = append(os.Environ(),
		envNode+"=1",
		envName+"="+cfg.Name,
		envZone+"="+cfg.Zone,
		envSeed+"="+cfg.Seed,
		envProfile+"="+cfg.Profile,
		envFast+"="+boolEnv(cfg.Fast),
		envKey+"="+cfg.Key,
		envPrefix+"="+cfg.Prefix,
		envPort+"="+strconv.Itoa(cfg.Port),
	)
	p := &nodeProc{
		name:   cfg.Name,
		cmd:    cmd,
		out:    &procOutput{},
		stderr: &lockedBuffer{},
		done:   make(chan struct{}),
	}
	cmd.Stdout = p.out
	cmd.Stderr = p.stderr
	cmd.WaitDelay = 5 * time.Second // do not hang on a pipe held by a stray grandchild
	p.stdin, err = cmd.StdinPipe()
	if err != nil {
		t.Fatalf("node %s: %v", cfg.Name, err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("node %s: starting %s: %v", cfg.Name, exe, err)
	}
	// The reaper: it owns cmd.Wait and ends when the child exits, which
	// the cleanup below guarantees.
	go func() {
		p.waitErr = cmd.Wait()
		close(p.done)
	}()
	t.Cleanup(func() { p.stop() })
	return p
}

func boolEnv(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

// addr waits for the child to announce its address.
func (p *nodeProc) addr(t testing.TB, timeout time.Duration) string {
	t.Helper()
	f := p.waitLine(t, timeout, "its address", func(f []string) bool { return f[0] == "addr" && len(f) == 2 })
	return f[1]
}

// waitLine waits until the child printed a protocol line for which match
// holds, and returns its fields. It fails the test at the deadline or if
// the child exits first, with the child's output.
func (p *nodeProc) waitLine(t testing.TB, timeout time.Duration, what string, match func(fields []string) bool) []string {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond) // polling interval, not synchronisation
	defer tick.Stop()
	for {
		if f, ok := p.out.find(match); ok {
			return f
		}
		select {
		case <-p.done:
			if f, ok := p.out.find(match); ok {
				return f
			}
			t.Fatalf("node %s exited (%v) before printing %s\n%s", p.name, p.waitErr, what, p.diagnostics())
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("node %s: no %s within %v\n%s", p.name, what, timeout, p.diagnostics())
		}
	}
}

// kill sends SIGKILL (os.Process.Kill on Unix) and reaps the child.
func (p *nodeProc) kill(t testing.TB) {
	t.Helper()
	if err := p.cmd.Process.Kill(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		t.Fatalf("node %s: kill: %v", p.name, err)
	}
	<-p.done
}

// stop closes the child's stdin, which makes it leave the cluster and
// exit; a child still running 10s later is killed. It returns whether the
// child exited without stop having to kill it, and may be called again
// (t.Cleanup does).
func (p *nodeProc) stop() (exitedByItself bool) {
	p.stopped.Do(func() {
		_ = p.stdin.Close()
		select {
		case <-p.done:
			p.selfExit = true
		case <-time.After(10 * time.Second):
			_ = p.cmd.Process.Kill()
		}
	})
	<-p.done
	return p.selfExit
}

// exitCode is the child's exit status once it has exited: -1 when a signal
// ended it.
func (p *nodeProc) exitCode() int {
	<-p.done
	return p.cmd.ProcessState.ExitCode()
}

// diagnostics returns the child's output, for failure messages.
func (p *nodeProc) diagnostics() string {
	return fmt.Sprintf("--- stdout of %s:\n%s--- stderr of %s:\n%s", p.name, p.out.raw(), p.name, p.stderr.String())
}

// memberEvent is one "member" line of a child.
type memberEvent struct {
	kind  string // a membership.EventKind: Join, Suspect, Failed, …
	node  string
	at    time.Time
	alive int
}

// memberEvents returns the child's membership events so far.
func (p *nodeProc) memberEvents() []memberEvent {
	var evs []memberEvent
	p.out.each(func(f []string) {
		if f[0] != "member" || len(f) != 5 {
			return
		}
		ns, err1 := strconv.ParseInt(f[3], 10, 64)
		alive, err2 := strconv.Atoi(f[4])
		if err1 != nil || err2 != nil {
			return
		}
		evs = append(evs, memberEvent{kind: f[1], node: f[2], at: time.Unix(0, ns), alive: alive})
	})
	return evs
}

// firstMemberEvent returns when the child first saw kind happen to node.
func (p *nodeProc) firstMemberEvent(kind, node string) (time.Time, bool) {
	for _, e := range p.memberEvents() {
		if e.kind == kind && e.node == node {
			return e.at, true
		}
	}
	return time.Time{}, false
}

// sawAlive reports whether the child has counted n members alive at once.
func (p *nodeProc) sawAlive(n int) bool {
	evs := p.memberEvents()
	return len(evs) > 0 && evs[len(evs)-1].alive == n
}

// procOutput is a child's stdout: it keeps the raw bytes for diagnostics
// and splits protocol lines into fields. exec's copying goroutine writes
// it while the test reads it.
type procOutput struct {
	mu      sync.Mutex
	buf     bytes.Buffer // everything, for diagnostics
	partial []byte       // an incomplete last line
	lines   [][]string   // fields of the protocol lines, prefix removed
}

func (o *procOutput) Write(b []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.buf.Write(b)
	o.partial = append(o.partial, b...)
	for {
		i := bytes.IndexByte(o.partial, '\n')
		if i < 0 {
			break
		}
		line := string(o.partial[:i])
		o.partial = o.partial[i+1:]
		if rest, ok := strings.CutPrefix(line, procPrefix); ok {
			if f := strings.Fields(rest); len(f) > 0 {
				o.lines = append(o.lines, f)
			}
		}
	}
	return len(b), nil
}

// find returns the first line whose fields match.
func (o *procOutput) find(match func([]string) bool) ([]string, bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for _, f := range o.lines {
		if match(f) {
			return f, true
		}
	}
	return nil, false
}

// each calls fn on every line so far, in order.
func (o *procOutput) each(fn func([]string)) {
	o.mu.Lock()
	lines := o.lines[:len(o.lines):len(o.lines)]
	o.mu.Unlock()
	for _, f := range lines {
		fn(f)
	}
}

func (o *procOutput) raw() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return tail(o.buf.String(), 16<<10)
}

// lockedBuffer is a bytes.Buffer safe for one writer and concurrent
// readers.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(b)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tail(l.buf.String(), 16<<10)
}

// tail keeps the last n bytes of s, where a failure's cause usually is.
func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

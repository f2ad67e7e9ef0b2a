package membership

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// testLogger discards unless MEMBERSHIP_TEST_LOG is set: memberlist's
// goroutines may log after a test has returned, when t.Log would panic.
func testLogger() *slog.Logger {
	if os.Getenv("MEMBERSHIP_TEST_LOG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// testConfig returns a node on loopback with fast timings.
func testConfig(name string) Config {
	return Config{
		Name:                name,
		BindAddr:            "127.0.0.1",
		BindPort:            -1,
		Profile:             ProfileLocal,
		ProbeInterval:       200 * time.Millisecond,
		ProbeTimeout:        100 * time.Millisecond,
		SuspicionMult:       3,
		GossipInterval:      50 * time.Millisecond,
		GossipToTheDeadTime: 2 * time.Second,
		PushPullInterval:    time.Second,
		TCPTimeout:          time.Second,
		DeadNodeReclaimTime: 300 * time.Millisecond,
		RejoinInterval:      500 * time.Millisecond,
		LeaveTimeout:        2 * time.Second,
		Logger:              testLogger().With("node", name),
		LogRate:             1e6,
		LogBurst:            1e6,
	}
}

// startNode starts a node that the test closes at its end.
func startNode(t testing.TB, cfg Config) *Membership {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New(%s): %v", cfg.Name, err)
	}
	t.Cleanup(func() { _ = m.Close() })
	return m
}

// startCluster starts n nodes named prefix0…; every node after the first
// has the first as its only seed. mod may adjust each config.
func startCluster(t testing.TB, prefix string, n int, mod func(i int, c *Config)) []*Membership {
	t.Helper()
	nodes := make([]*Membership, n)
	for i := range n {
		c := testConfig(fmt.Sprintf("%s%d", prefix, i))
		if i > 0 {
			c.Seeds = []string{nodes[0].Local().Addr.String()}
		}
		if mod != nil {
			mod(i, &c)
		}
		nodes[i] = startNode(t, c)
	}
	return nodes
}

// sees reports whether m's snapshot lists every named node in state.
func sees(m *Membership, state syncbus.MemberState, names ...string) bool {
	s := m.Snapshot()
	for _, name := range names {
		n, ok := s.Lookup(name)
		if !ok || n.State != state {
			return false
		}
	}
	return true
}

// names returns the nodes' names.
func names(nodes []*Membership) []string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = n.Name()
	}
	return out
}

// waitConverged waits until every node sees every node alive, and no
// other node alive.
func waitConverged(t testing.TB, nodes []*Membership, timeout time.Duration) {
	t.Helper()
	all := names(nodes)
	warptest.Eventually(t, timeout, func() bool {
		for _, n := range nodes {
			if !sees(n, syncbus.MemberAlive, all...) || len(n.Snapshot().Alive()) != len(nodes) {
				return false
			}
		}
		return true
	}, "cluster did not converge: %s", describe(nodes))
}

// describe prints every node's view, for failure messages.
func describe(nodes []*Membership) string {
	var b strings.Builder
	for _, n := range nodes {
		fmt.Fprintf(&b, "\n  %s sees:", n.Name())
		for _, m := range n.Snapshot().Nodes {
			fmt.Fprintf(&b, " %s/%s", m.Name, m.State)
		}
	}
	return b.String()
}

// eventLog collects a node's events in the background.
type eventLog struct {
	mu     sync.Mutex
	events []Event
	done   chan struct{}
}

func watchEvents(m *Membership) *eventLog {
	l := &eventLog{done: make(chan struct{})}
	go func() {
		defer close(l.done)
		for ev := range m.Events() {
			l.mu.Lock()
			l.events = append(l.events, ev)
			l.mu.Unlock()
		}
	}()
	return l
}

// count returns how many events of kind concern node (any node for "").
func (l *eventLog) count(kind EventKind, node string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, ev := range l.events {
		if ev.Kind == kind && (node == "" || ev.Node.Name == node) {
			n++
		}
	}
	return n
}

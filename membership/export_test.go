package membership

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// The helpers below serve the tests of package membership_test, which
// use the shared test kit (its fault-injecting transport imports this
// package, so only an external test package can use it).

// FastConfig returns a node on loopback with fast timings.
func FastConfig(name string) Config { return testConfig(name) }

// SetLookup replaces the resolver of seed host names.
func SetLookup(c *Config, f func(ctx context.Context, host string) ([]netip.Addr, error)) {
	c.lookup = f
}

// StartNode starts a node that the test closes at its end.
func StartNode(t testing.TB, cfg Config) *Membership { return startNode(t, cfg) }

// WaitConverged waits until every node sees every node alive.
func WaitConverged(t testing.TB, nodes []*Membership, timeout time.Duration) {
	t.Helper()
	waitConverged(t, nodes, timeout)
}

// Names returns the nodes' names.
func Names(nodes []*Membership) []string { return names(nodes) }

// Describe prints every node's view, for failure messages.
func Describe(nodes []*Membership) string { return describe(nodes) }

// SeesFailed reports whether m lists every named node as failed.
func SeesFailed(m *Membership, names ...string) bool {
	return sees(m, syncbus.MemberFailed, names...)
}

// Forgets reports whether memberlist itself has forgotten every named
// node (after GossipToTheDeadTime), so that only rejoining can bring
// them back.
func Forgets(m *Membership, names ...string) bool {
	for _, name := range names {
		if _, known := m.state.get(name); known {
			return false
		}
	}
	return true
}

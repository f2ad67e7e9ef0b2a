package bustest

import (
	"context"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/syncbus"
)

// Default values of Features.
const (
	DefaultTimeout       = 5 * time.Second
	DefaultAwaitDeadline = time.Second
)

// Node is one node of a cluster the suite asks a Factory for.
type Node struct {
	// Name is the node's name: the Origin of its events and its name in
	// Members and acknowledgement reports.
	Name string
	// Zone is the node's availability zone.
	Zone string
	// Region is the node's region, carried by its events.
	Region string
}

// Cluster is what a Factory returns: connected buses, one per node asked
// for, in the same order.
type Cluster struct {
	// Buses are the nodes' buses. Each must also have a Close() error
	// method, and implement syncbus.MetricsReporter and the optional
	// interfaces the Features declare.
	Buses []syncbus.Bus
	// Mute makes node i stop acknowledging events while it keeps
	// delivering them to its subscriptions, as a node whose acks are lost.
	// It cannot be undone. Nil when the transport cannot do it: the cases
	// that need it are skipped, saying why.
	Mute func(i int)
}

// Factory builds a cluster of len(nodes) connected buses with the given
// names, zones and regions, in which every node knows every other one as
// alive, and registers their Close with t.Cleanup. Each call builds a
// cluster isolated from the others (its own subject, topic, channel or
// ports), since the suite builds many in a row. It reports setup failures
// with t.Fatal.
type Factory func(t *testing.T, nodes []Node) *Cluster

// Features says what the bus under test supports and how to test it.
// Every Bus in this module supports everything; a bus outside it declares
// what it lacks and the cases that need it are skipped, saying why.
type Features struct {
	// Quorum: PublishAndAwait counts acknowledgements of other nodes.
	Quorum bool
	// ZoneAcks: PublishAndAwaitTopology counts zones.
	ZoneAcks bool
	// ZoneQuorum: PublishAndAwaitTopology honours syncbus.WithZoneQuorum.
	ZoneQuorum bool
	// Prefix: the buses implement syncbus.PrefixSubscriber.
	Prefix bool
	// Relay: the buses implement syncbus.Relayer.
	Relay bool
	// Members: the buses implement syncbus.MemberLister.
	Members bool
	// All: the buses implement syncbus.AllSubscriber, what a gateway
	// reads (with Relay, the relay semantics of package syncbus).
	All bool

	// PrefixBuffer is the number of events a prefix subscription holds
	// before it overflows (0 means syncbus.DefaultPrefixBuffer). The
	// overflow case publishes PrefixBuffer+5 awaited events, so a factory
	// for a slow transport may configure its buses with a small buffer
	// and say so here.
	PrefixBuffer int
	// Timeout bounds every wait of the suite for an event, a condition or
	// an awaiting call that should succeed (0 means DefaultTimeout).
	Timeout time.Duration
	// AwaitDeadline is the deadline given to awaiting calls that must fail
	// because a node is muted (0 means DefaultAwaitDeadline). It must be
	// long enough for every unmuted node's acknowledgement to arrive, as
	// the suite checks the acked nodes exactly.
	AwaitDeadline time.Duration
	// LeakIgnore are goleak options for goroutines the transport leaves
	// behind on purpose after Close (for example a library's own lingering
	// goroutines), added to those of the goroutines running before the
	// cluster was built.
	LeakIgnore []goleak.Option
}

func (f *Features) defaults() {
	if f.PrefixBuffer <= 0 {
		f.PrefixBuffer = syncbus.DefaultPrefixBuffer
	}
	if f.Timeout <= 0 {
		f.Timeout = DefaultTimeout
	}
	if f.AwaitDeadline <= 0 {
		f.AwaitDeadline = DefaultAwaitDeadline
	}
}

// Run runs the conformance suite against the buses newCluster builds, as
// subtests of t. Most subtests build their own cluster, so one failure
// does not spill into the next. Run must not run in parallel with other
// tests that start goroutines, since one subtest checks for leaks.
func Run(t *testing.T, newCluster Factory, f Features) {
	t.Helper()
	f.defaults()
	s := &suite{f: f, newCluster: newCluster}
	cases := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"Delivery", s.testDelivery},
		{"KeyIsolation", s.testKeyIsolation},
		{"Prefix", s.testPrefix},
		{"Lease", s.testLease},
		{"Unsubscribe", s.testUnsubscribe},
		{"InvalidInput", s.testInvalidInput},
		{"Coalescing", s.testCoalescing},
		{"PrefixOverflow", s.testPrefixOverflow},
		{"Relay", s.testRelay},
		{"All", s.testAll},
		{"AllLifecycle", s.testAllLifecycle},
		{"Quorum", s.testQuorum},
		{"Topology", s.testTopology},
		{"ZoneQuorum", s.testZoneQuorum},
		{"Deadline", s.testDeadline},
		{"ZoneQuorumDeadline", s.testZoneQuorumDeadline},
		{"FailFast", s.testFailFast},
		{"SingleNode", s.testSingleNode},
		{"Members", s.testMembers},
		{"Leave", s.testLeave},
		{"Metrics", s.testMetrics},
		{"Close", s.testClose},
		{"Concurrency", s.testConcurrency},
		{"Leaks", s.testLeaks},
	}
	for _, c := range cases {
		t.Run(c.name, c.run)
	}
}

// suite holds what every case needs.
type suite struct {
	f          Features
	newCluster Factory
}

// fiveNodes is the typical cluster: the publisher n1 shares zone a with
// n2, zone b has two nodes and zone c one.
func fiveNodes() []Node {
	return []Node{
		{Name: "n1", Zone: "a", Region: "eu"},
		{Name: "n2", Zone: "a", Region: "eu"},
		{Name: "n3", Zone: "b", Region: "eu"},
		{Name: "n4", Zone: "b", Region: "eu"},
		{Name: "n5", Zone: "c", Region: "eu"},
	}
}

// threeNodes is a smaller cluster, one node per zone.
func threeNodes() []Node {
	return []Node{
		{Name: "n1", Zone: "a", Region: "eu"},
		{Name: "n2", Zone: "b", Region: "eu"},
		{Name: "n3", Zone: "c", Region: "eu"},
	}
}

// cluster is a built Cluster with the test that uses it.
type cluster struct {
	t     *testing.T
	f     Features
	nodes []Node
	buses []syncbus.Bus
	mute  func(int)
}

// build asks the factory for a cluster and checks what it returned.
func (s *suite) build(t *testing.T, nodes []Node) *cluster {
	t.Helper()
	c := s.newCluster(t, nodes)
	if c == nil {
		t.Fatal("factory returned a nil Cluster")
	}
	if len(c.Buses) != len(nodes) {
		t.Fatalf("factory returned %d buses for %d nodes", len(c.Buses), len(nodes))
	}
	for i, b := range c.Buses {
		if b == nil {
			t.Fatalf("factory returned a nil bus for node %s", nodes[i].Name)
		}
		if _, ok := b.(closer); !ok {
			t.Fatalf("bus %T of node %s has no Close() error method", b, nodes[i].Name)
		}
		if _, ok := b.(syncbus.MetricsReporter); !ok {
			t.Fatalf("bus %T of node %s does not implement syncbus.MetricsReporter", b, nodes[i].Name)
		}
	}
	return &cluster{t: t, f: s.f, nodes: nodes, buses: c.Buses, mute: c.Mute}
}

type closer interface{ Close() error }

// ctx returns a context for a call expected to succeed, bounded by the
// suite's timeout.
func (c *cluster) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.f.Timeout)
	c.t.Cleanup(cancel)
	return ctx
}

// deadlineCtx returns a context for an awaiting call expected to fail at
// its deadline.
func (c *cluster) deadlineCtx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), c.f.AwaitDeadline)
	c.t.Cleanup(cancel)
	return ctx
}

func (c *cluster) name(i int) string { return c.nodes[i].Name }

func (c *cluster) metrics(i int) syncbus.Metrics {
	return c.buses[i].(syncbus.MetricsReporter).Metrics()
}

func (c *cluster) prefixer(i int) syncbus.PrefixSubscriber {
	c.t.Helper()
	p, ok := c.buses[i].(syncbus.PrefixSubscriber)
	if !ok {
		c.t.Fatalf("Features.Prefix is set but %T does not implement syncbus.PrefixSubscriber", c.buses[i])
	}
	return p
}

func (c *cluster) relayer(i int) syncbus.Relayer {
	c.t.Helper()
	r, ok := c.buses[i].(syncbus.Relayer)
	if !ok {
		c.t.Fatalf("Features.Relay is set but %T does not implement syncbus.Relayer", c.buses[i])
	}
	return r
}

func (c *cluster) lister(i int) syncbus.MemberLister {
	c.t.Helper()
	l, ok := c.buses[i].(syncbus.MemberLister)
	if !ok {
		c.t.Fatalf("Features.Members is set but %T does not implement syncbus.MemberLister", c.buses[i])
	}
	return l
}

func (c *cluster) allSubscriber(i int) syncbus.AllSubscriber {
	c.t.Helper()
	a, ok := c.buses[i].(syncbus.AllSubscriber)
	if !ok {
		c.t.Fatalf("Features.All is set but %T does not implement syncbus.AllSubscriber", c.buses[i])
	}
	return a
}

func (c *cluster) close(i int) error { return c.buses[i].(closer).Close() }

// need skips the test unless every named feature is supported.
func (s *suite) need(t *testing.T, features ...string) {
	t.Helper()
	for _, name := range features {
		var ok bool
		switch name {
		case "Quorum":
			ok = s.f.Quorum
		case "ZoneAcks":
			ok = s.f.ZoneAcks
		case "ZoneQuorum":
			ok = s.f.ZoneQuorum
		case "Prefix":
			ok = s.f.Prefix
		case "Relay":
			ok = s.f.Relay
		case "Members":
			ok = s.f.Members
		case "All":
			ok = s.f.All
		}
		if !ok {
			t.Skipf("the bus does not declare Features.%s", name)
		}
	}
}

// needMute skips the test when the cluster cannot mute a node.
func (c *cluster) needMute() {
	c.t.Helper()
	if c.mute == nil {
		c.t.Skip("the factory's Cluster has no Mute, so a node cannot be made to stop acknowledging")
	}
}

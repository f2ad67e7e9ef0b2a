package bustest_test

import (
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// A transport's conformance test: the factory builds connected nodes with
// the names, zones and regions asked for, registers their Close, and
// offers Mute. Here the nodes are in-memory; a mesh or a bridge builds
// its own buses the same way. (In a _test.go file this is
// func TestConformance(t *testing.T).)
func Example() {
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		net := syncbus.NewInMemoryNetwork()
		c := &bustest.Cluster{}
		var buses []*syncbus.InMemoryBus
		for _, n := range nodes {
			b, err := net.Join(n.Name, n.Zone, syncbus.WithNodeRegion(n.Region), syncbus.WithPrefixBuffer(32))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { _ = b.Close() })
			buses = append(buses, b)
			c.Buses = append(c.Buses, b)
		}
		c.Mute = func(i int) { buses[i].SetAcking(false) }
		return c
	}
	features := bustest.Features{
		Quorum: true, ZoneAcks: true, ZoneQuorum: true,
		Prefix: true, Relay: true, Members: true,
		PrefixBuffer: 32,
	}
	conformance := func(t *testing.T) { bustest.Run(t, factory, features) }
	_ = conformance
}

package syncbus_test

import (
	"testing"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// conformancePrefixBuffer keeps the overflow case short.
const conformancePrefixBuffer = 32

// inMemoryCluster builds the nodes on one InMemoryNetwork.
func inMemoryCluster(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
	t.Helper()
	net := syncbus.NewInMemoryNetwork()
	c := &bustest.Cluster{}
	var buses []*syncbus.InMemoryBus
	for _, n := range nodes {
		b, err := net.Join(n.Name, n.Zone,
			syncbus.WithNodeRegion(n.Region), syncbus.WithPrefixBuffer(conformancePrefixBuffer))
		if err != nil {
			t.Fatalf("Join(%q): %v", n.Name, err)
		}
		t.Cleanup(func() { _ = b.Close() })
		buses = append(buses, b)
		c.Buses = append(c.Buses, b)
	}
	c.Mute = func(i int) { buses[i].SetAcking(false) }
	return c
}

func TestConformance(t *testing.T) {
	bustest.Run(t, inMemoryCluster, bustest.Features{
		Quorum:       true,
		ZoneAcks:     true,
		ZoneQuorum:   true,
		Prefix:       true,
		Relay:        true,
		Members:      true,
		All:          true,
		PrefixBuffer: conformancePrefixBuffer,
	})
}

// TestConformanceDefaultBuffer runs the suite once with the default prefix
// buffer, as a transport that does not configure one would.
func TestConformanceDefaultBuffer(t *testing.T) {
	if testing.Short() {
		t.Skip("short mode")
	}
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		net := syncbus.NewInMemoryNetwork()
		c := &bustest.Cluster{}
		for _, n := range nodes {
			b, err := net.Join(n.Name, n.Zone, syncbus.WithNodeRegion(n.Region))
			if err != nil {
				t.Fatalf("Join(%q): %v", n.Name, err)
			}
			t.Cleanup(func() { _ = b.Close() })
			c.Buses = append(c.Buses, b)
		}
		// No Mute: the deadline cases must skip, saying why.
		return c
	}
	bustest.Run(t, factory, bustest.Features{Quorum: true, ZoneAcks: true, ZoneQuorum: true, Prefix: true, Relay: true, Members: true})
}

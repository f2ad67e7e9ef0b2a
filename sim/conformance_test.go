package sim_test

import (
	"context"
	"net/netip"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/membership/membershiptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/sim"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// simFactory builds the conformance suite's clusters as MeshBuses on a
// simulated network whose links lose loss of their datagrams. A muted
// node is one whose acknowledgements the network drops: it still
// delivers and relays.
func simFactory(seed uint64, loss float64) bustest.Factory {
	return func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		specs := make([]sim.NodeSpec, len(nodes))
		for i, n := range nodes {
			specs[i] = sim.NodeSpec{Name: n.Name, Zone: n.Zone, Region: n.Region}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := sim.NewCluster(ctx, sim.ClusterConfig{
			Nodes: specs, Seed: seed,
			Intra:   sim.Link{Latency: 100 * time.Microsecond, Loss: loss},
			Inter:   sim.Link{Latency: time.Millisecond, Jitter: 200 * time.Microsecond, Loss: loss},
			Profile: "local",
			Options: func(_ int, o *mesh.MeshOptions) { o.PrefixBuffer = 64 },
		})
		if err != nil {
			t.Fatalf("seed %d: %v", seed, err)
		}
		t.Cleanup(func() { _ = c.Close() })
		cl := &bustest.Cluster{Mute: func(i int) {
			c.Network().Drop(1, sim.Match{Kinds: []sim.Kind{sim.KindAcks}, From: []netip.AddrPort{c.Node(i).Host().Addr()}})
		}}
		for _, b := range c.Buses() {
			cl.Buses = append(cl.Buses, b)
		}
		return cl
	}
}

// TestConformanceSim runs the conformance suite on MeshBuses over the
// simulated network, on perfect links and with 5% of datagrams lost on
// every link (gossip included).
func TestConformanceSim(t *testing.T) {
	for _, tc := range []struct {
		name string
		loss float64
	}{{"NoLoss", 0}, {"Loss5", 0.05}} {
		t.Run(tc.name, func(t *testing.T) {
			if warptest.RaceEnabled {
				t.Skip("a minute under the race detector: the suite runs under it on the mesh over UDP, sim's network under it in the other sim tests, and this one without -race")
			}
			seed := testSeed(t, 11)
			bustest.Run(t, simFactory(seed, tc.loss), bustest.Features{
				Quorum: true, ZoneAcks: true, ZoneQuorum: true,
				Prefix: true, Relay: true, Members: true, All: true,
				PrefixBuffer:  64,
				Timeout:       15 * time.Second,
				AwaitDeadline: 2 * time.Second,
				LeakIgnore:    membershiptest.LeakOptions(),
			})
		})
	}
}

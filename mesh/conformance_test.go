package mesh_test

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/membership/membershiptest"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestConformanceUDP runs the conformance suite on meshes over real UDP on
// 127.0.0.1, several buses on distinct ports in this process.
func TestConformanceUDP(t *testing.T) {
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		buses := startCluster(t, nodes, func(_ int, o *mesh.MeshOptions) {
			o.PrefixBuffer = 64
		})
		c := &bustest.Cluster{Mute: func(i int) { buses[i].SetMuted(true) }}
		for _, b := range buses {
			c.Buses = append(c.Buses, b)
		}
		return c
	}
	bustest.Run(t, factory, bustest.Features{
		Quorum: true, ZoneAcks: true, ZoneQuorum: true,
		Prefix: true, Relay: true, Members: true, All: true,
		PrefixBuffer:  64,
		Timeout:       10 * time.Second,
		AwaitDeadline: time.Second,
		LeakIgnore:    membershiptest.LeakOptions(),
	})
	_ = syncbus.ErrClosed
}

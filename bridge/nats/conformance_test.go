package nats_test

import (
	"testing"
	"time"

	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestConformance runs the conformance suite on NATS buses against an
// embedded nats-server, each node on its own connection.
func TestConformance(t *testing.T) {
	srv := startServer(t)
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		buses := srv.cluster(t, nodes, natsbus.WithPrefixBuffer(64))
		c := &bustest.Cluster{Mute: func(i int) { natsbus.SetMuted(buses[i].NATSBus, true) }}
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
		AwaitDeadline: 2 * time.Second,
	})
	_ = syncbus.ErrClosed
}

package nats_test

import (
	"testing"
	"time"

	natsgo "github.com/nats-io/nats.go"

	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestConformance runs the conformance suite on NATS buses against an
// embedded nats-server, each node on its own connection: connections as
// nats.Connect makes them, and connections made with nats.NoEcho, which
// spare every node the echo of its own frames.
func TestConformance(t *testing.T) {
	srv := startServer(t)
	for _, c := range []struct {
		name string
		conn []natsgo.Option
	}{{"echo", nil}, {"no-echo", []natsgo.Option{natsgo.NoEcho()}}} {
		t.Run(c.name, func(t *testing.T) {
			factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
				buses := srv.clusterOn(t, nodes, c.conn, natsbus.WithPrefixBuffer(64))
				cl := &bustest.Cluster{Mute: func(i int) { natsbus.SetMuted(buses[i].NATSBus, true) }}
				for _, b := range buses {
					cl.Buses = append(cl.Buses, b)
				}
				return cl
			}
			bustest.Run(t, factory, bustest.Features{
				Quorum: true, ZoneAcks: true, ZoneQuorum: true,
				Prefix: true, Relay: true, Members: true, All: true,
				PrefixBuffer:  64,
				Timeout:       10 * time.Second,
				AwaitDeadline: 2 * time.Second,
			})
		})
	}
}

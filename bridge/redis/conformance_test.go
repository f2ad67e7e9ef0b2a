package redis_test

import (
	"testing"
	"time"

	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestConformance runs the conformance suite on Redis buses against a
// redis-server child process, each node on its own client.
func TestConformance(t *testing.T) {
	srv := startRedis(t)
	factory := func(t *testing.T, nodes []bustest.Node) *bustest.Cluster {
		buses := srv.cluster(t, nodes, redisbus.WithPrefixBuffer(64))
		c := &bustest.Cluster{Mute: func(i int) { redisbus.SetMuted(buses[i].RedisBus, true) }}
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

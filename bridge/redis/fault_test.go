package redis_test

import (
	"testing"

	"github.com/warpmesh/warp/bridge/bridgetest"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestServerRestart stops the Redis server (a child process) mid-stream
// and starts it again on the same port: every bus notices, go-redis
// reconnects and the bus resubscribes, every subscription receives its
// resync, and delivery and awaited publishes resume without any call from
// the user (bridgetest.ServerRestart).
func TestServerRestart(t *testing.T) {
	warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
	srv := startRedis(t)
	buses := srv.cluster(t, []bustest.Node{{Name: "n1", Zone: "a"}, {Name: "n2", Zone: "b"}, {Name: "n3", Zone: "c"}})
	bridgetest.ServerRestart(t, bridgetest.Broker{Stop: srv.stop, Start: srv.start}, buses, bridgetest.Outage{
		// The bus's sender sends the publish; the send fails, and the
		// failure is counted.
		DuringWhat: "counts the failed send",
		During: func(pub bridgetest.OutageBus, _ *warptest.Collector) bool {
			return pub.Metrics().PublishErrors > 0
		},
		// The reconnect's resync, and at most one more per other node
		// whose send failed in the outage: only its digest, which carries
		// no publish time, shows that loss after the reconnect, and a loss
		// that cannot be placed before the reconnect's resync resyncs
		// again rather than risk hiding one.
		Resyncs: func(int) (int, int) { return 1, 3 },
	})
}

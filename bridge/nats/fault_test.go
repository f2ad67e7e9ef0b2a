package nats_test

import (
	"testing"

	"github.com/warpmesh/warp/bridge/bridgetest"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestServerRestart stops the NATS server mid-stream and starts it again
// on the same port: every bus notices, nats.go reconnects, every
// subscription receives one resync, and delivery and awaited publishes
// resume without any call from the user (bridgetest.ServerRestart).
func TestServerRestart(t *testing.T) {
	warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
	srv := startServer(t)
	buses := srv.cluster(t, []bustest.Node{{Name: "n1", Zone: "a"}, {Name: "n2", Zone: "b"}, {Name: "n3", Zone: "c"}})
	bridgetest.ServerRestart(t, bridgetest.Broker{Stop: srv.stop, Start: srv.start}, buses, bridgetest.Outage{
		// nats.go keeps the publish in its reconnect buffer and sends it
		// once back (whether the others have resubscribed by then is a
		// race: their resync covers it); the publisher delivers it at once.
		DuringWhat: "delivers its own event during the outage",
		During: func(_ bridgetest.OutageBus, own *warptest.Collector) bool {
			return own.Count("f/during") > 0
		},
		// A slow-consumer drop (the backlog nats.go flushes on reconnect
		// can overrun a receiver on a loaded machine) is a resync of its
		// own.
		Resyncs: func(i int) (int, int) {
			n := 1 + int(buses[i].Metrics().DropsByReason["slow-consumer"])
			return n, n
		},
	})
}

package nats_test

import (
	"testing"

	"github.com/warpmesh/warp/bridge/bridgetest"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestRestartUnderLoad restarts the NATS server on the same port while one
// node publishes at a steady rate, and checks on every subscription of the
// two other nodes (a prefix subscription and one per key) that loss is
// never silent: each event arrived once, or the subscription got a resync
// after it was published. Core NATS keeps nothing for a subscriber that
// is away, so each subscription must resync at least once.
func TestRestartUnderLoad(t *testing.T) {
	warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
	srv := startServer(t)
	nodes := []bustest.Node{{Name: "pub", Zone: "a"}, {Name: "r1", Zone: "b"}, {Name: "r2", Zone: "c"}}
	bridgetest.RestartUnderLoad(t, bridgetest.Broker{Stop: srv.stop, Start: srv.start}, srv.cluster(t, nodes))
}

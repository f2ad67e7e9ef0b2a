package nats_test

import (
	"io"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/bridge/gatewaytest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestGatewayTwoRegions runs the gateway scenario with NATS as the bus
// that joins two regions (each an in-memory cluster here; the mesh version
// is in bridge/meshgateway_test.go): three gateways per region, one
// restarted mid-stream, every event exactly once everywhere it belongs.
func TestGatewayTwoRegions(t *testing.T) {
	warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
	srv := startServer(t)
	gatewaytest.Run(t, gatewaytest.Setup{
		Local: func(t *testing.T, region string) func(string) syncbus.Bus {
			net := syncbus.NewInMemoryNetwork()
			return func(name string) syncbus.Bus {
				b, err := net.Join(name, "z", syncbus.WithNodeRegion(region))
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
		Remote: func(t *testing.T) func(string, string) syncbus.Bus {
			subject := newSubject()
			return func(name, region string) syncbus.Bus {
				nc := srv.connect(t, name)
				b := &ownedBus{NATSBus: natsbus.NewNATSBus(nc, subject, natsbus.WithNodeName(name), natsbus.WithRegion(region),
					natsbus.WithPresenceInterval(200*time.Millisecond)), nc: nc}
				t.Cleanup(func() { _ = b.Close() })
				return b
			}
		},
		Gateway: func(t *testing.T, local, remote syncbus.Bus) io.Closer {
			g, err := bridge.NewGateway(local, remote)
			if err != nil {
				t.Fatal(err)
			}
			return g
		},
	})
}

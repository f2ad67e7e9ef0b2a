package redis_test

import (
	"io"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/bridge/gatewaytest"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestGatewayTwoRegions runs the gateway scenario with Redis as the bus
// that joins two regions (each an in-memory cluster here; the mesh version
// is in bridge/meshgateway_test.go): three gateways per region, one
// restarted mid-stream, every event exactly once everywhere it belongs.
func TestGatewayTwoRegions(t *testing.T) {
	warptest.LeakCheck(t) // first, so that it runs after the server's cleanup
	srv := startRedis(t)
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
			channel := newChannel()
			return func(name, region string) syncbus.Bus {
				c := srv.client()
				b := &ownedBus{RedisBus: redisbus.NewRedisBus(c, channel, redisbus.WithNodeName(name), redisbus.WithRegion(region),
					redisbus.WithPresenceInterval(200*time.Millisecond)), client: c}
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

// The two-region mesh gateway test: a mesh cluster in each of two regions,
// joined through NATS and, separately, through Redis, three gateways per
// region.

package bridge_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	natsgo "github.com/nats-io/nats.go"
	goredis "github.com/redis/go-redis/v9"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/bridge/gatewaytest"
	natsbus "github.com/warpmesh/warp/bridge/nats"
	redisbus "github.com/warpmesh/warp/bridge/redis"
	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus"
)

var (
	_ syncbus.AllSubscriber = (*mesh.MeshBus)(nil)
	_ syncbus.Relayer       = (*mesh.MeshBus)(nil)
)

// TestDefaultsMatchTheMesh: the bridges repeat the mesh's defaults rather
// than import it; this keeps them equal.
func TestDefaultsMatchTheMesh(t *testing.T) {
	if bridge.DefaultBatchInterval != mesh.DefaultBatchInterval {
		t.Errorf("DefaultBatchInterval %v, mesh %v", bridge.DefaultBatchInterval, mesh.DefaultBatchInterval)
	}
	if bridge.DefaultAckTimeout != mesh.DefaultAckTimeout {
		t.Errorf("DefaultAckTimeout %v, mesh %v", bridge.DefaultAckTimeout, mesh.DefaultAckTimeout)
	}
	if bridge.DefaultStallTimeout != mesh.DefaultStallTimeout {
		t.Errorf("DefaultStallTimeout %v, mesh %v", bridge.DefaultStallTimeout, mesh.DefaultStallTimeout)
	}
}

// meshLocal gives each region a mesh cluster on UDP loopback: the first
// node is every later node's seed.
func meshLocal(t *testing.T, region string) func(string) syncbus.Bus {
	var seed string
	return func(name string) syncbus.Bus {
		opts := mesh.MeshOptions{NodeName: name, BindAddr: "127.0.0.1", Port: -1, Zone: name, Region: region, Profile: "local"}
		if seed != "" {
			opts.Peers = []string{seed}
		}
		b, err := mesh.NewMeshBus(opts)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		t.Cleanup(func() { _ = b.Close() })
		if seed == "" {
			seed = b.Addr().String()
		}
		return b
	}
}

func gateway(t *testing.T, local, remote syncbus.Bus) io.Closer {
	t.Helper()
	g, err := bridge.NewGateway(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	return g
}

var names atomic.Int64

// TestMeshGatewayNATS: a mesh cluster in each of two regions, joined
// through NATS by three gateways per region (one restarted mid-stream):
// every event reaches every node of the other region exactly once.
func TestMeshGatewayNATS(t *testing.T) {
	srv, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Start()
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats-server not ready")
	}
	t.Cleanup(srv.Shutdown)
	gatewaytest.Run(t, gatewaytest.Setup{
		Local: meshLocal,
		Remote: func(t *testing.T) func(string, string) syncbus.Bus {
			subject := fmt.Sprintf("warp.mesh.gw.%d", names.Add(1))
			return func(name, region string) syncbus.Bus {
				nc, err := natsgo.Connect(srv.ClientURL(), natsgo.MaxReconnects(-1))
				if err != nil {
					t.Fatal(err)
				}
				b := natsbus.NewNATSBus(nc, subject, natsbus.WithNodeName(name), natsbus.WithRegion(region),
					natsbus.WithPresenceInterval(200*time.Millisecond))
				t.Cleanup(func() { _ = b.Close(); nc.Close() })
				return b
			}
		},
		Gateway: gateway,
	})
}

// TestMeshGatewayRedis: the same, joined through Redis.
func TestMeshGatewayRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("redis-server not found; install it (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	l.Close()
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	addr := "127.0.0.1:" + port
	probe := goredis.NewClient(&goredis.Options{Addr: addr})
	deadline := time.Now().Add(10 * time.Second)
	for probe.Ping(context.Background()).Err() != nil {
		if time.Now().After(deadline) {
			t.Fatal("redis-server did not answer")
		}
		time.Sleep(10 * time.Millisecond)
	}
	probe.Close()
	gatewaytest.Run(t, gatewaytest.Setup{
		Local: meshLocal,
		Remote: func(t *testing.T) func(string, string) syncbus.Bus {
			channel := fmt.Sprintf("warp:mesh:gw:%d", names.Add(1))
			return func(name, region string) syncbus.Bus {
				c := goredis.NewClient(&goredis.Options{Addr: addr})
				b := redisbus.NewRedisBus(c, channel, redisbus.WithNodeName(name), redisbus.WithRegion(region),
					redisbus.WithPresenceInterval(200*time.Millisecond))
				t.Cleanup(func() { _ = b.Close(); _ = c.Close() })
				return b
			}
		},
		Gateway: gateway,
	})
}

package mesh_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/mesh"
)

// TestJoinNewsReachesEveryNode: nodes started one after another, each
// given only the first as seed, all learn of each other within a few
// gossip rounds — not at the next full state exchange, 15 s later under the
// local profile (the data plane sends nothing to a node it does not know).
// The local profile's default timings are used.
func TestJoinNewsReachesEveryNode(t *testing.T) {
	if testing.Short() {
		t.Skip("starts 8 clusters")
	}
	for round := range 8 {
		var buses []*mesh.MeshBus
		for i := range 5 {
			o := mesh.MeshOptions{
				NodeName: fmt.Sprintf("r%d-n%d", round, i), BindAddr: "127.0.0.1", Port: -1,
				Profile: "local", Label: fmt.Sprintf("join-%d", round),
			}
			if i > 0 {
				o.Peers = []string{buses[0].Addr().String()}
			}
			b, err := mesh.NewMeshBus(o)
			if err != nil {
				t.Fatal(err)
			}
			buses = append(buses, b)
		}
		start := time.Now()
		// Well under the local profile's 15 s push/pull interval.
		waitConvergedWithin(t, buses, 5, 5*time.Second)
		t.Logf("round %d: converged in %v", round, time.Since(start).Round(time.Millisecond))
		for _, b := range buses {
			_ = b.Close()
		}
	}
}

func waitConvergedWithin(t *testing.T, buses []*mesh.MeshBus, n int, timeout time.Duration) {
	t.Helper()
	warptest.Eventually(t, timeout, func() bool {
		for _, b := range buses {
			if countAlive(b.Members()) != n {
				return false
			}
		}
		return true
	}, "%s", fmt.Sprintf("%d nodes to see each other", n))
}

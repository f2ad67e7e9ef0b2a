//go:build long

package sim_test

import (
	"os"
	"runtime/debug"
	"testing"
	"time"

	"github.com/warpmesh/warp/sim"
)

// TestChaosSim1000 runs the chaos faults on 1000 nodes in five zones of
// 200 (go test -tags long -run TestChaosSim1000 -timeout 60m ./sim): two
// nodes of two zones crashed and restarted, zone e cut off for 3s and
// healed, a node paused for 3s, two nodes restarted gracefully, under 15
// events a second, with the chaos invariants. Time is stretched as for
// TestLarge1000 (AutoScale: 25). Its soft memory limit is 8 GiB unless
// GOMEMLIMIT is set: under TestLarge1000's 3.5 GiB the collector ran
// almost without pause on a loaded machine, and the cluster had not
// converged after 20 minutes.
func TestChaosSim1000(t *testing.T) {
	if _, set := os.LookupEnv("GOMEMLIMIT"); !set {
		defer debug.SetMemoryLimit(debug.SetMemoryLimit(8 << 30))
	}
	zones := make([]sim.ZoneSpec, 0, 5)
	for _, z := range []string{"a", "b", "c", "d", "e"} {
		zones = append(zones, sim.ZoneSpec{Name: z, Nodes: 200})
	}
	runChaosSim(t, chaosPlan{
		zones: zones, seed: 1000, profile: "lan",
		rate: 15, calm: 2 * time.Second, faultFor: 3 * time.Second, victims: 2,
		grace: 3 * time.Second, settle: 3 * time.Second, memoryPerNode: 4 << 20,
	})
}

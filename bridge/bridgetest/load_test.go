package bridgetest_test

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge/bridgetest"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// TestLoadInMemory runs the load on buses that lose nothing: every event
// reaches every subscription covering it, and none resyncs.
func TestLoadInMemory(t *testing.T) {
	warptest.LeakCheck(t)
	network := syncbus.NewInMemoryNetwork()
	var buses []*syncbus.InMemoryBus
	for _, name := range []string{"pub", "r1", "r2"} {
		b, err := network.Join(name, "z-"+name)
		if err != nil {
			t.Fatal(err)
		}
		buses = append(buses, b)
	}
	load := bridgetest.NewLoad(t, buses[0], buses[1], buses[2])
	load.Start(time.Millisecond)
	load.WaitPublished(t, 40, "in memory")
	resyncs := load.Finish(t)
	if len(resyncs) != 2*5 {
		t.Errorf("%d subscriptions, want 10 (a prefix and 4 keys on each receiver): %v", len(resyncs), resyncs)
	}
	for sub, n := range resyncs {
		if n != 0 {
			t.Errorf("%s: %d resyncs on a bus that loses nothing", sub, n)
		}
	}
}

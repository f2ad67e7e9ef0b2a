package bridgetest

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// RestartBus is what RestartUnderLoad needs of a bus.
type RestartBus interface {
	LoadBus
	Health() bridge.Health
	Metrics() syncbus.Metrics
}

// Broker is how a test takes its broker away and brings it back.
type Broker struct {
	// Stop stops the broker. Start starts it again on the same address.
	// Each fails the test through the t it was made with, if it must.
	Stop, Start func()
}

// RestartUnderLoad restarts the broker while buses[0] publishes at a
// steady rate (one event every 5ms, see Load), and checks on every
// subscription of buses[1] and buses[2] (a prefix subscription and one per
// key) that loss is never silent: each event arrived once, or the
// subscription got a resync after it was published. It waits, at most 10s
// each time, for every bus to report the outage and, once the broker is
// back, to reconnect; 40 events are published before the outage, 40
// during it and 40 after. It is for brokers that keep nothing for a
// subscriber that is away, so each subscription must resync at least once.
//
// The buses, three on one broker, must know one another; NewLoad's
// cleanups close them.
func RestartUnderLoad[B RestartBus](t *testing.T, broker Broker, buses []B) {
	t.Helper()
	if len(buses) != 3 {
		t.Fatalf("RestartUnderLoad takes 3 buses, got %d", len(buses))
	}
	load := NewLoad(t, buses[0], buses[1], buses[2])
	load.Start(5 * time.Millisecond)
	load.WaitPublished(t, 40, "before the restart")

	broker.Stop()
	for _, b := range buses {
		warptest.Eventually(t, 10*time.Second, func() bool { return !b.Health().Connected }, "%s", b.Name()+" notices the outage")
	}
	load.WaitPublished(t, 40, "during the outage")
	broker.Start()
	for _, b := range buses {
		warptest.Eventually(t, 10*time.Second, func() bool {
			h := b.Health()
			return h.Connected && h.Reconnects >= 1
		}, "%s", b.Name()+" reconnects")
	}
	load.WaitPublished(t, 40, "after the restart")

	resyncs := load.Finish(t)
	t.Logf("publisher: %d publish errors counted; receivers: %d and %d gaps", buses[0].Metrics().PublishErrors,
		buses[1].Health().Gaps, buses[2].Health().Gaps)
	for sub, n := range resyncs {
		if n == 0 {
			t.Errorf("%s: no resync across the restart", sub)
		}
	}
}

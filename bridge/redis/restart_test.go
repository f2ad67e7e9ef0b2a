package redis_test

import (
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus/bustest"
)

// TestRestartUnderLoad restarts the Redis server (a child process) on the same port while one
// node publishes at a steady rate, and checks on every subscription of the
// two other nodes (a prefix subscription and one per key) that loss is
// never silent: each event arrived once, or the subscription got a resync
// after it was published. Redis pub/sub keeps nothing for a subscriber that
// is away, so each subscription must resync at least once.
func TestRestartUnderLoad(t *testing.T) {
	leakCheck(t) // first, so that it runs after the server's cleanup
	srv := startRedis(t)
	nodes := []bustest.Node{{Name: "pub", Zone: "a"}, {Name: "r1", Zone: "b"}, {Name: "r2", Zone: "c"}}
	buses := srv.cluster(t, nodes)
	load := newLoad(t, buses[0], buses[1], buses[2])
	t.Cleanup(func() {
		for _, b := range buses {
			_ = b.Close()
		}
		for _, s := range load.subs {
			<-s.c.Done()
		}
	})
	load.start(5 * time.Millisecond)
	load.waitPublished(t, 40, "before the restart")

	srv.stop()
	for _, b := range buses {
		eventually(t, 10*time.Second, b.Name()+" notices the outage", func() bool { return !b.Health().Connected })
	}
	load.waitPublished(t, 40, "during the outage")
	srv.start()
	for _, b := range buses {
		eventually(t, 10*time.Second, b.Name()+" reconnects", func() bool {
			h := b.Health()
			return h.Connected && h.Reconnects >= 1
		})
	}
	load.waitPublished(t, 40, "after the restart")

	resyncs := load.finish(t)
	t.Logf("publisher: %d publish errors counted; receivers: %d and %d gaps", buses[0].Metrics().PublishErrors,
		buses[1].Health().Gaps, buses[2].Health().Gaps)
	for sub, n := range resyncs {
		if n == 0 {
			t.Errorf("%s: no resync across the restart", sub)
		}
	}
}

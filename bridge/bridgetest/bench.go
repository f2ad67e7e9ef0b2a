package bridgetest

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// BenchNodes names n benchmark nodes b0, b1, … spread over three zones.
func BenchNodes(n int) []bustest.Node {
	nodes := make([]bustest.Node, n)
	for i := range nodes {
		nodes[i] = bustest.Node{Name: fmt.Sprintf("b%d", i), Zone: fmt.Sprintf("z%d", i%3)}
	}
	return nodes
}

// Burst10k is the bridges' burst benchmark: buses[0] publishes 10 000
// invalidations (burst/0 … burst/9999) as fast as it can, and an iteration
// ends once buses[1]'s prefix subscription delivered them all. It reports
// the broker messages and bytes the publisher sent per burst, in two
// sub-benchmarks: "batched" (the default) and "unbatched" (every event a
// message of its own). cluster builds the two buses, unbatched or not,
// with a prefix buffer that holds a burst.
func Burst10k[B RestartBus](b *testing.B, cluster func(b *testing.B, unbatched bool) []B) {
	for _, unbatched := range []bool{false, true} {
		name := "batched"
		if unbatched {
			name = "unbatched"
		}
		b.Run(name, func(b *testing.B) {
			buses := cluster(b, unbatched)
			b.Cleanup(func() {
				if b.Failed() {
					b.Logf("publisher %+v, %d publish errors; receiver %+v, drops %v", buses[0].Health(),
						buses[0].Metrics().PublishErrors, buses[1].Health(), buses[1].Metrics().DropsByReason)
				}
			})
			ctx := context.Background()
			sub, err := buses[1].SubscribePrefix(ctx, "burst/")
			if err != nil {
				b.Fatal(err)
			}
			const n = 10000
			var msgs, bytes uint64
			b.ResetTimer()
			for range b.N {
				before := buses[0].Metrics()
				for i := range n {
					if err := buses[0].Publish(ctx, fmt.Sprintf("burst/%d", i)); err != nil {
						b.Fatal(err)
					}
				}
				receiveAll(b, sub, n)
				after := buses[0].Metrics()
				msgs += after.Batches - before.Batches
				bytes += after.SentLocal.Bytes - before.SentLocal.Bytes
			}
			b.ReportMetric(float64(msgs)/float64(b.N), "msgs/10k")
			b.ReportMetric(float64(bytes)/float64(b.N), "bytes/10k")
		})
	}
}

// receiveAll receives n events from ch, failing (rather than hanging) when
// they do not come, and on a resync: events were lost.
func receiveAll(b *testing.B, ch <-chan syncbus.Event, n int) {
	b.Helper()
	for i := range n {
		select {
		case ev := <-ch:
			if ev.Op == syncbus.OpResync {
				b.Fatalf("event %d of %d: a resync: events were lost", i, n)
			}
		case <-time.After(30 * time.Second):
			b.Fatalf("event %d of %d: nothing within 30s", i, n)
		}
	}
}

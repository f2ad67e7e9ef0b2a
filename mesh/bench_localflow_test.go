package mesh_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"

	"github.com/warpmesh/warp/mesh"
	"github.com/warpmesh/warp/syncbus/bustest"
)

// BenchmarkPublishLocalSubscriptions measures Publish on a node of its own
// (no peers, so nothing leaves it) with 0, 1, 16 or 256 prefix
// subscriptions, each read by a goroutine as a cache would. It isolates
// what the publisher's side costs with local subscriptions: delivery to
// them and the check that they have room (waitLocalRoom).
//
//   - one: subscription i has the prefix "p<i>:" and the keys cycle through
//     them, so each event reaches one subscription: the check that every
//     subscription has room is the part that grows with their number.
//   - each: every subscription has the prefix "p:", so each event reaches
//     all of them.
func BenchmarkPublishLocalSubscriptions(b *testing.B) {
	for _, subs := range []int{0, 1, 16, 256} {
		for _, match := range []string{"one", "each"} {
			if subs <= 1 && match == "each" {
				continue // the same as "one"
			}
			b.Run(fmt.Sprintf("subs=%d/%s", subs, match), func(b *testing.B) {
				benchPublishLocal(b, subs, match == "each")
			})
		}
	}
}

func benchPublishLocal(b *testing.B, subs int, each bool) {
	bus, err := mesh.NewMeshBus(testOptions(bustest.Node{Name: "solo", Zone: "a"}))
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var readers sync.WaitGroup
	defer func() {
		_ = bus.Close() // closes the subscriptions, which ends their readers
		cancel()
		readers.Wait()
	}()
	prefix := func(i int) string {
		if each {
			return "p:"
		}
		return "p" + strconv.Itoa(i) + ":"
	}
	for i := range subs {
		ch, err := bus.SubscribePrefix(ctx, prefix(i))
		if err != nil {
			b.Fatal(err)
		}
		readers.Go(func() {
			for range ch {
			}
		})
	}
	keys := make([]string, benchKeys)
	for i := range keys {
		keys[i] = prefix(i%max(subs, 1)) + "k" + strconv.Itoa(i)
	}
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if err := bus.Publish(ctx, keys[i%len(keys)]); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.StopTimer()
	m := bus.Metrics()
	b.ReportMetric(float64(m.FlowStalls), "stalls")
	b.ReportMetric(float64(m.Dropped), "dropped")
}

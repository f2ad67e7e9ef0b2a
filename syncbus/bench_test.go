package syncbus_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

func benchEvent(key string) syncbus.Event {
	return syncbus.Event{ID: syncbus.NewIDGenerator().Next(), Key: key, Op: syncbus.OpInvalidate, Origin: "n1", Zone: "a", Time: time.Now()}
}

// A reader that keeps up: every event finds an empty one-event channel.
func BenchmarkDispatcherDeliverExact(b *testing.B) {
	d := newDispatcher(b, 0)
	ch, _ := d.Subscribe(context.Background(), "k")
	ev := benchEvent("k")
	b.ReportAllocs()
	for b.Loop() {
		d.Deliver(ev)
		<-ch
	}
}

// A reader that is away: every event replaces the held one.
func BenchmarkDispatcherDeliverExactCoalesce(b *testing.B) {
	d := newDispatcher(b, 0)
	_, _ = d.Subscribe(context.Background(), "k")
	ev := benchEvent("k")
	b.ReportAllocs()
	for b.Loop() {
		d.Deliver(ev)
	}
}

// An event nobody on this node subscribed to, among 10 000 subscribed keys
// and a few prefixes.
func BenchmarkDispatcherDeliverMiss(b *testing.B) {
	d := newDispatcher(b, 0)
	ctx := context.Background()
	for i := range 10000 {
		_, _ = d.Subscribe(ctx, fmt.Sprintf("user:%d", i))
	}
	for _, p := range []string{"a/", "b/c/", "order:"} {
		_, _ = d.SubscribePrefix(ctx, p)
	}
	ev := benchEvent("session:123")
	b.ReportAllocs()
	for b.Loop() {
		d.Deliver(ev)
	}
}

// One exact subscription among 10 000 keys, plus a matching prefix and the
// all-keys subscription, all read.
func BenchmarkDispatcherDeliverMixed(b *testing.B) {
	d := newDispatcher(b, 0)
	ctx := context.Background()
	for i := range 10000 {
		_, _ = d.Subscribe(ctx, fmt.Sprintf("user:%d", i))
	}
	k, _ := d.Subscribe(ctx, "user:42")
	p, _ := d.SubscribePrefix(ctx, "user:")
	all, _ := d.SubscribePrefix(ctx, "")
	ev := benchEvent("user:42")
	b.ReportAllocs()
	for b.Loop() {
		d.Deliver(ev)
		<-k
		<-p
		<-all
	}
}

// Many goroutines delivering to their own keys at once.
func BenchmarkDispatcherDeliverParallel(b *testing.B) {
	d := newDispatcher(b, 0)
	var next atomic.Int64
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		key := fmt.Sprintf("k%d", next.Add(1))
		ch, _ := d.Subscribe(context.Background(), key)
		ev := benchEvent(key)
		for pb.Next() {
			d.Deliver(ev)
			<-ch
		}
	})
}

func BenchmarkInMemoryPublish(b *testing.B) {
	bus := syncbus.NewInMemoryBus()
	defer bus.Close()
	ctx := context.Background()
	ch, _ := bus.Subscribe(ctx, "k")
	b.ReportAllocs()
	for b.Loop() {
		_ = bus.Publish(ctx, "k")
		<-ch
	}
}

func BenchmarkInMemoryPublishAndAwaitTopology5(b *testing.B) {
	net := syncbus.NewInMemoryNetwork()
	var first *syncbus.InMemoryBus
	for i, z := range []string{"a", "a", "b", "b", "c"} {
		n, err := net.Join(fmt.Sprintf("n%d", i+1), z)
		if err != nil {
			b.Fatal(err)
		}
		defer n.Close()
		if first == nil {
			first = n
		}
	}
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := first.PublishAndAwaitTopology(ctx, "k", 3); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAsyncPublish(b *testing.B) {
	bus := &funcBus{publish: func(context.Context, string) error { return nil }}
	p, err := syncbus.NewAsyncPublisher(bus, syncbus.AsyncConfig{QueueSize: 1 << 16})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		_ = p.Publish("k")
	}
	b.StopTimer()
	_ = p.Close()
}

func BenchmarkLatencyRecorderObserve(b *testing.B) {
	r := syncbus.NewLatencyRecorder()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			r.Observe(3 * time.Millisecond)
		}
	})
}

func BenchmarkDedupeWindowSeen(b *testing.B) {
	w := syncbus.NewDedupeWindow(0)
	ids := syncbus.NewIDGenerator()
	b.ReportAllocs()
	for b.Loop() {
		w.Seen(ids.Next())
	}
}

// Room with 0, 1, 16 or 256 prefix subscriptions, none of them full: what
// a bus with flow control pays each time it asks how much its
// subscriptions can take.
func BenchmarkDispatcherRoom(b *testing.B) {
	for _, subs := range []int{0, 1, 16, 256} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			d := dispatcherWithPrefixes(b, subs)
			b.ReportAllocs()
			for b.Loop() {
				if d.Room() == 0 {
					b.Fatal("no room")
				}
			}
		})
	}
}

// HasRoom, the test waitLocalRoom makes on every mesh Publish, beside
// Room above: with no subscription full it does not look at them.
func BenchmarkDispatcherHasRoom(b *testing.B) {
	for _, subs := range []int{0, 1, 16, 256} {
		b.Run(fmt.Sprintf("subs=%d", subs), func(b *testing.B) {
			d := dispatcherWithPrefixes(b, subs)
			b.ReportAllocs()
			for b.Loop() {
				if !d.HasRoom() {
					b.Fatal("no room")
				}
			}
		})
	}
}

// dispatcherWithPrefixes returns a dispatcher with n prefix subscriptions,
// none read.
func dispatcherWithPrefixes(b *testing.B, n int) *syncbus.Dispatcher {
	d := newDispatcher(b, 0)
	for i := range n {
		_, _ = d.SubscribePrefix(context.Background(), fmt.Sprintf("p%d:", i))
	}
	return d
}

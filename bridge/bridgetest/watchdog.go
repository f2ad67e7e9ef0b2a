package bridgetest

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// Watchdog lets a latency benchmark wait on channels without a timer per
// receive: a timer costs about as much as what the bridges add to the raw
// clients, so the bridge's loop and the raw client's must wait the same
// way, and that way must be cheap. The benchmark reports Progress once per
// iteration; a benchmark that made none for a whole period fails instead
// of hanging.
type Watchdog struct {
	progress atomic.Int64
	stalled  chan struct{}
}

// NewWatchdog starts a watchdog that declares tb stalled after a period
// without Progress (detected within two periods); it stops at tb's
// cleanup.
func NewWatchdog(tb testing.TB, period time.Duration) *Watchdog {
	w := &Watchdog{stalled: make(chan struct{})}
	stop, done := make(chan struct{}), make(chan struct{})
	tb.Cleanup(func() { close(stop); <-done })
	go func() {
		defer close(done)
		tick := time.NewTicker(period)
		defer tick.Stop()
		last := int64(-1)
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				n := w.progress.Load()
				if n == last {
					close(w.stalled)
					return
				}
				last = n
			}
		}
	}()
	return w
}

// Progress reports that the benchmark completed an iteration.
func (w *Watchdog) Progress() { w.progress.Add(1) }

// Next waits for one value of ch, whatever it carries (a raw client's
// message, a signal).
func Next[T any](tb testing.TB, w *Watchdog, ch <-chan T) T {
	select {
	case v := <-ch:
		return v
	case <-w.stalled:
		tb.Fatalf("stalled: a message did not come (%d iterations done)", w.progress.Load())
	}
	var zero T
	return zero
}

// Event waits for one event of ch, failing tb on a resync: events were
// lost.
func (w *Watchdog) Event(tb testing.TB, ch <-chan syncbus.Event) {
	select {
	case ev := <-ch:
		if ev.Op == syncbus.OpResync {
			tb.Fatalf("a resync after %d iterations: events were lost", w.progress.Load())
		}
	case <-w.stalled:
		tb.Fatalf("stalled: an event did not come (%d iterations done)", w.progress.Load())
	}
}

// EventualLatency is the loop of the bridges' eventual-latency benchmarks:
// buses[0] publishes an invalidation, and an iteration ends once every
// other bus's subscription delivered it.
func EventualLatency[B syncbus.Bus](b *testing.B, buses []B) {
	ctx := context.Background()
	subs := make([]<-chan syncbus.Event, len(buses)-1)
	for i := range subs {
		var err error
		if subs[i], err = buses[i+1].Subscribe(ctx, "lat"); err != nil {
			b.Fatal(err)
		}
	}
	w := NewWatchdog(b, 30*time.Second)
	b.ResetTimer()
	for range b.N {
		if err := buses[0].Publish(ctx, "lat"); err != nil {
			b.Fatal(err)
		}
		for _, s := range subs {
			w.Event(b, s)
		}
		w.Progress()
	}
}

// AwaitLatency is the loop of the bridges' awaited-publish benchmarks:
// buses[0] publishes with PublishAndAwait for every other bus.
func AwaitLatency[B syncbus.Bus](b *testing.B, buses []B) {
	ctx := context.Background()
	b.ResetTimer()
	for range b.N {
		if err := buses[0].PublishAndAwait(ctx, "lat", len(buses)-1); err != nil {
			b.Fatal(err)
		}
	}
}

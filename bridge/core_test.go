package bridge_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
)

// fakeBroker hands every published frame to every node's Link, in order,
// and can drop frames on the way.
type fakeBroker struct {
	mu    sync.Mutex
	links []*bridge.Link
	drop  atomic.Int64 // drop the next n event frames
}

type fakeTransport struct{ b *fakeBroker }

func (t fakeTransport) Publish(_ context.Context, frames [][]byte) error {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	for _, f := range frames {
		// The body of an unsealed frame starts after the envelope header
		// with its type (the high bit marks compression).
		isEvents := len(f) > wire.HeaderSize && wire.FrameType(f[wire.HeaderSize]&0x7f) == wire.FrameEvents
		if isEvents && t.b.drop.Load() > 0 {
			t.b.drop.Add(-1)
			continue
		}
		for _, l := range t.b.links {
			l.Receive(f, "")
		}
	}
	return nil
}

func (t fakeTransport) Ack(context.Context, string, string, []byte) error { return nil }

func fakeCore(t *testing.T, b *fakeBroker, name string) *bridge.Core {
	t.Helper()
	c, _ := linkedCore(t, b, fakeTransport{b}, bridge.WithNodeName(name), bridge.WithPresenceInterval(50*time.Millisecond))
	return c
}

// linkedCore starts a core sending through tr, whose link b delivers to;
// it is closed when the test ends.
func linkedCore(t *testing.T, b *fakeBroker, tr bridge.Transport, opts ...bridge.Option) (*bridge.Core, *bridge.Link) {
	t.Helper()
	cfg, err := bridge.Configure(nopQuorum, opts...)
	if err != nil {
		t.Fatal(err)
	}
	c, l := bridge.NewCore(cfg, tr)
	b.mu.Lock()
	b.links = append(b.links, l)
	b.mu.Unlock()
	t.Cleanup(func() { _ = c.Close() })
	return c, l
}

// receiver returns a function taking the next event from ch, which fails
// t when none comes within wait.
func receiver(t *testing.T, ch <-chan syncbus.Event, wait time.Duration) func(what string) syncbus.Event {
	return func(what string) syncbus.Event {
		t.Helper()
		return warptest.Next(t, ch, wait, what)
	}
}

// TestLossIsNeverSilent: a frame lost in the middle shows as a gap in the
// publisher's numbering when the next one arrives; the last frames of a
// burst, lost, show in the digest the publisher sends with its presence.
// Either way every subscription gets one resync naming the publisher.
func TestLossIsNeverSilent(t *testing.T) {
	warptest.LeakCheck(t)
	b := &fakeBroker{}
	pub, sub := fakeCore(t, b, "pub"), fakeCore(t, b, "sub")
	ctx := context.Background()
	ch, err := sub.SubscribePrefix(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	next := receiver(t, ch, 10*time.Second)
	publish := func(key string) {
		t.Helper()
		if err := pub.Publish(ctx, key); err != nil {
			t.Fatal(err)
		}
	}
	publish("k1")
	if ev := next("k1"); ev.Key != "k1" {
		t.Fatalf("got %+v", ev)
	}
	// A lost frame in the middle.
	b.drop.Store(1)
	before := pub.Metrics().Batches
	_ = pub.Publish(ctx, "k2")
	waitBatches(t, pub, before+1)
	_ = pub.Publish(ctx, "k3")
	if ev := next("after the gap"); ev.Op != syncbus.OpInvalidate || ev.Key != "k3" {
		t.Fatalf("got %+v, want k3", ev)
	}
	if ev := next("the gap's resync"); ev.Op != syncbus.OpResync || ev.Origin != "pub" {
		t.Fatalf("got %+v, want a resync naming pub", ev)
	}
	// The last frame of a burst lost: the digest tells.
	b.drop.Store(1)
	before = pub.Metrics().Batches
	_ = pub.Publish(ctx, "k4")
	waitBatches(t, pub, before+1)
	if ev := next("the digest's resync"); ev.Op != syncbus.OpResync || ev.Origin != "pub" {
		t.Fatalf("got %+v, want a resync naming pub", ev)
	}
	if h := sub.Health(); h.Gaps != 2 {
		t.Errorf("Gaps %d, want 2", h.Gaps)
	}
	select {
	case ev := <-ch:
		t.Errorf("unexpected %+v", ev)
	default:
	}
}

func waitBatches(t *testing.T, c *bridge.Core, n uint64) {
	t.Helper()
	warptest.Eventually(t, 10*time.Second, func() bool { return c.Metrics().Batches >= n }, "batches below %d", n)
}

package bridge_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// heldTransport is a fakeTransport that can hold every frame back, as a
// broker holds messages for a client that is away, and deliver them later
// in order.
type heldTransport struct {
	b    *fakeBroker
	mu   sync.Mutex
	hold bool
	held [][]byte
}

func (h *heldTransport) Publish(ctx context.Context, frames [][]byte) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.hold {
		for _, f := range frames {
			h.held = append(h.held, append([]byte(nil), f...))
		}
		return nil
	}
	return fakeTransport{h.b}.Publish(ctx, frames)
}

func (h *heldTransport) Ack(context.Context, string, string, []byte) error { return nil }

// release delivers what was held and stops holding.
func (h *heldTransport) release(ctx context.Context) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.hold = false
	held := h.held
	h.held = nil
	return fakeTransport{h.b}.Publish(ctx, held)
}

// reconnectPair builds a publisher p, whose frames go through tr, and a
// receiver r subscribed to every key; presence (and the digest it
// carries) runs every presence.
func reconnectPair(t *testing.T, presence time.Duration) (p, r *bridge.Core, rl *bridge.Link, tr *heldTransport, recv func(string) syncbus.Event, ch <-chan syncbus.Event) {
	t.Helper()
	b := &fakeBroker{}
	tr = &heldTransport{b: b}
	mk := func(name string, bt bridge.Transport) (*bridge.Core, *bridge.Link) {
		return linkedCore(t, b, bt, bridge.WithNodeName(name), bridge.WithPresenceInterval(presence), bridge.WithBatchSize(1))
	}
	p, _ = mk("p", tr)
	r, rl = mk("r", fakeTransport{b})
	ch, err := r.SubscribePrefix(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	recv = receiver(t, ch, 5*time.Second)
	return p, r, rl, tr, recv, ch
}

// publishDropped publishes key and waits until its frame was dropped.
func publishDropped(t *testing.T, b *fakeBroker, p *bridge.Core, key string) {
	t.Helper()
	b.drop.Store(1)
	if err := p.Publish(context.Background(), key); err != nil {
		t.Fatal(err)
	}
	warptest.Eventually(t, 5*time.Second, func() bool { return b.drop.Load() == 0 }, "the send of %s is dropped", key)
}

func mustPublish(t *testing.T, c *bridge.Core, key string) {
	t.Helper()
	if err := c.Publish(context.Background(), key); err != nil {
		t.Fatal(err)
	}
}

// reconnect makes r go through a disconnection and a reconnection, and
// checks the resync of everything that follows.
func reconnect(t *testing.T, rl *bridge.Link, recv func(string) syncbus.Event) {
	t.Helper()
	rl.Disconnected(nil)
	rl.Reconnected()
	if ev := recv("the reconnect's resync"); ev.Op != syncbus.OpResync || ev.Origin != "" {
		t.Fatalf("got %+v, want the reconnect's resync of everything", ev)
	}
}

// TestLossAfterReconnectIsNotSilent: a receiver reconnects (and resyncs);
// only later does the publisher fail to send an event. The gap that shows
// next is a loss the reconnect's resync did not cover: it must resync.
func TestLossAfterReconnectIsNotSilent(t *testing.T) {
	warptest.LeakCheck(t)
	p, r, rl, tr, recv, ch := reconnectPair(t, time.Minute)
	mustPublish(t, p, "a")
	if ev := recv("a"); ev.Key != "a" {
		t.Fatalf("got %+v, want a", ev)
	}
	reconnect(t, rl, recv)
	publishDropped(t, tr.b, p, "b")
	mustPublish(t, p, "c")
	if ev := recv("c"); ev.Key != "c" {
		t.Fatalf("got %+v, want c", ev)
	}
	select {
	case ev := <-ch:
		if ev.Op != syncbus.OpResync || ev.Origin != "p" {
			t.Fatalf("got %+v, want a resync naming p for the lost b", ev)
		}
	case <-time.After(5 * time.Second):
		t.Fatalf("b was lost silently: no resync after c (gaps counted: %d)", r.Health().Gaps)
	}
	if g := r.Health().Gaps; g != 1 {
		t.Errorf("gaps %d, want 1", g)
	}
}

// TestReconnectCoversEarlierLoss: events the publisher sent before the
// receiver's reconnect — one lost, the next held by the broker and handed
// over after the reconnect — show a gap that the reconnect's resync
// covers already: no second resync.
func TestReconnectCoversEarlierLoss(t *testing.T) {
	warptest.LeakCheck(t)
	p, r, rl, tr, recv, _ := reconnectPair(t, time.Minute)
	mustPublish(t, p, "a")
	a := recv("a")
	if a.Key != "a" {
		t.Fatalf("got %+v, want a", a)
	}
	// The receiver places p's events on its own clock no tighter than a's
	// delivery took (the most it knows of p's clock).
	slack := time.Since(a.Time)
	publishDropped(t, tr.b, p, "b")
	tr.mu.Lock()
	tr.hold = true
	tr.mu.Unlock()
	mustPublish(t, p, "c")
	published := time.Now()
	warptest.Eventually(t, 5*time.Second, func() bool {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return len(tr.held) == 1 && time.Since(published) > slack+time.Millisecond
	}, "c is held, published longer ago than the receiver's slack on p's clock")
	reconnect(t, rl, recv)
	if err := tr.release(context.Background()); err != nil {
		t.Fatal(err)
	}
	mustPublish(t, p, "d")
	// Delivery is in order and synchronous: a resync for the gap before c
	// would come between c and d.
	for _, want := range []string{"c", "d"} {
		if ev := recv(want); ev.Op != syncbus.OpInvalidate || ev.Key != want {
			t.Fatalf("got %+v, want %s (the gap before c was covered by the reconnect)", ev, want)
		}
	}
	if g := r.Health().Gaps; g != 0 {
		t.Errorf("gaps %d, want 0", g)
	}
}

// TestLossWhileDisconnectedWaitsForReconnect: a gap seen between a
// disconnection and the reconnection is left to the reconnect's resync.
func TestLossWhileDisconnectedWaitsForReconnect(t *testing.T) {
	warptest.LeakCheck(t)
	p, r, rl, tr, recv, _ := reconnectPair(t, time.Minute)
	mustPublish(t, p, "a")
	if ev := recv("a"); ev.Key != "a" {
		t.Fatalf("got %+v, want a", ev)
	}
	rl.Disconnected(nil)
	publishDropped(t, tr.b, p, "b")
	mustPublish(t, p, "c")
	if ev := recv("c"); ev.Key != "c" {
		t.Fatalf("got %+v, want c", ev)
	}
	rl.Reconnected()
	if ev := recv("the reconnect's resync"); ev.Op != syncbus.OpResync || ev.Origin != "" {
		t.Fatalf("got %+v, want the reconnect's resync of everything", ev)
	}
	mustPublish(t, p, "d")
	if ev := recv("d"); ev.Key != "d" {
		t.Fatalf("got %+v, want d and no resync for the gap before c", ev)
	}
	if g := r.Health().Gaps; g != 0 {
		t.Errorf("gaps %d, want 0", g)
	}
}

// TestDigestLossAfterReconnectIsNotSilent: the last event of a burst is
// lost after the receiver reconnected; only the publisher's digest shows
// it, and that must resync.
func TestDigestLossAfterReconnectIsNotSilent(t *testing.T) {
	warptest.LeakCheck(t)
	p, r, rl, tr, recv, _ := reconnectPair(t, 20*time.Millisecond)
	mustPublish(t, p, "a")
	if ev := recv("a"); ev.Key != "a" {
		t.Fatalf("got %+v, want a", ev)
	}
	reconnect(t, rl, recv)
	publishDropped(t, tr.b, p, "b")
	if ev := recv("the digest's resync"); ev.Op != syncbus.OpResync || ev.Origin != "p" {
		t.Fatalf("got %+v, want a resync naming p for the lost b", ev)
	}
	if g := r.Health().Gaps; g != 1 {
		t.Errorf("gaps %d, want 1", g)
	}
}

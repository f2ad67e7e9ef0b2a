package bridge_test

import (
	"context"
	"errors"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// cutTransport is a fakeTransport whose sends all fail while cut, as a
// client cut off from its broker while the other nodes are not.
type cutTransport struct {
	fakeTransport
	cut *atomic.Bool
}

var errCut = errors.New("cut off from the broker")

func (c cutTransport) Publish(ctx context.Context, frames [][]byte) error {
	if c.cut.Load() {
		return errCut
	}
	return c.fakeTransport.Publish(ctx, frames)
}

// TestLongOutageOfOnePublisherIsNotSilent: a publisher alone loses the
// broker for longer than receivers remember its numbering, and an event
// it publishes meanwhile fails to send. The receiver, which forgot the
// publisher, hears its next event as the first of a fresh window with no
// gap in sight: only the publisher knows what was lost, and its next
// digest must tell, so that the receiver resyncs.
func TestLongOutageOfOnePublisherIsNotSilent(t *testing.T) {
	warptest.LeakCheck(t)
	b := &fakeBroker{}
	var cut atomic.Bool
	const presence = 10 * time.Millisecond
	mk := func(name string, tr bridge.Transport) *bridge.Core {
		c, _ := linkedCore(t, b, tr, bridge.WithNodeName(name), bridge.WithPresenceInterval(presence), bridge.WithBatchSize(1))
		return c
	}
	p := mk("p", cutTransport{fakeTransport{b}, &cut})
	r := mk("r", fakeTransport{b})
	ch, err := r.SubscribePrefix(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	recv := receiver(t, ch, 5*time.Second)
	mustPublish(t, p, "a")
	if ev := recv("a"); ev.Key != "a" {
		t.Fatalf("got %+v, want a", ev)
	}

	cut.Store(true)
	mustPublish(t, p, "b") // accepted, then its send fails
	warptest.Eventually(t, 5*time.Second, func() bool { return p.Metrics().PublishErrors >= 1 }, "the send of b fails")
	listed := func() bool {
		return slices.ContainsFunc(r.Members(), func(m syncbus.Member) bool { return m.Name == "p" })
	}
	// The peer table and the numbering windows are forgotten together.
	warptest.Eventually(t, 10*time.Second, func() bool { return !listed() }, "r forgets p")

	cut.Store(false)
	mustPublish(t, p, "c")
	if ev := recv("c"); ev.Key != "c" {
		t.Fatalf("got %+v, want c (b was lost)", ev)
	}
	if ev := recv("the resync for the lost b"); ev.Op != syncbus.OpResync || ev.Origin != "p" {
		t.Fatalf("got %+v, want a resync naming p for the lost b", ev)
	}
	if g := r.Health().Gaps; g != 1 {
		t.Errorf("gaps %d, want 1", g)
	}
	// The notice leaves once: later digests claim nothing.
	mustPublish(t, p, "d")
	if ev := recv("d"); ev.Key != "d" {
		t.Fatalf("got %+v, want d", ev)
	}
	select {
	case ev := <-ch:
		t.Fatalf("got %+v after d, want nothing more", ev)
	case <-time.After(20 * presence):
	}
}

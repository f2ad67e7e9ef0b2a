package bridge_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/warpmesh/warp/bridge"
	"github.com/warpmesh/warp/internal/warptest"
	"github.com/warpmesh/warp/syncbus"
)

// queuedBroker hands every frame to every node through a queue of its own,
// read by a goroutine per node, as a broker client does: a node that is
// slow to take its frames holds neither the publisher nor the others.
type queuedBroker struct {
	mu     sync.Mutex
	queues []chan []byte
	wg     sync.WaitGroup
}

func (b *queuedBroker) Publish(_ context.Context, frames [][]byte) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range frames {
		for _, q := range b.queues {
			q <- append([]byte(nil), f...)
		}
	}
	return nil
}

func (b *queuedBroker) Ack(context.Context, string, string, []byte) error { return nil }

// node starts a core on the broker; the core is closed, and its queue's
// reader stopped, when the test ends.
func (b *queuedBroker) node(t *testing.T, name string, opts ...bridge.Option) *bridge.Core {
	t.Helper()
	cfg, err := bridge.Configure(nopQuorum, append([]bridge.Option{bridge.WithNodeName(name),
		bridge.WithPresenceInterval(50 * time.Millisecond)}, opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	c, l := bridge.NewCore(cfg, b)
	q := make(chan []byte, 1<<16)
	b.mu.Lock()
	b.queues = append(b.queues, q)
	b.mu.Unlock()
	b.wg.Go(func() {
		for f := range q {
			l.Receive(f, "")
		}
	})
	t.Cleanup(func() {
		_ = c.Close()
		b.mu.Lock()
		close(q)
		b.queues = nil // the other nodes' cleanups close theirs
		b.mu.Unlock()
	})
	return c
}

// TestBurstWaitsForASlowReader: a burst ten times larger than the
// receiver's prefix subscription arrives whole, in order, with no resync:
// while the subscription is full, the receiving node stops handing frames
// over and the broker's side holds them.
func TestBurstWaitsForASlowReader(t *testing.T) {
	warptest.LeakCheck(t)
	b := &queuedBroker{}
	t.Cleanup(b.wg.Wait)
	pub := b.node(t, "pub")
	// A long stall bound: on a loaded machine the test's reader may take
	// its time, and must never be let go here.
	sub := b.node(t, "sub", bridge.WithPrefixBuffer(16), bridge.WithStallTimeout(time.Minute))
	ctx := context.Background()
	ch, err := sub.SubscribePrefix(ctx, "b/")
	if err != nil {
		t.Fatal(err)
	}
	const n = 160
	for i := range n {
		if err := pub.Publish(ctx, fmt.Sprintf("b/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	// The subscription fills up before anyone reads it: the receiving
	// side must be holding the rest.
	// (Its channel has one slot more than the buffer, kept for a resync.)
	warptest.Eventually(t, 10*time.Second, func() bool { return len(ch) == cap(ch)-1 }, "%s", "the subscription never filled")
	next := receiver(t, ch, 10*time.Second)
	for i := range n {
		ev := next(fmt.Sprintf("event %d", i))
		if ev.Op != syncbus.OpInvalidate || ev.Key != fmt.Sprintf("b/%d", i) {
			t.Fatalf("event %d: got %v %q, want b/%d", i, ev.Op, ev.Key, i)
		}
	}
	m := sub.Metrics()
	if m.Resyncs != 0 || m.Dropped != 0 {
		t.Errorf("receiver: %d resyncs, %d dropped; want none", m.Resyncs, m.Dropped)
	}
	if m.FlowStalls == 0 || m.FlowStallTime <= 0 {
		t.Errorf("receiver: FlowStalls %d, FlowStallTime %v: the full subscription held nothing", m.FlowStalls, m.FlowStallTime)
	}
}

// TestFullSubscriptionIsLetGo: a prefix subscription nobody reads holds
// deliveries for StallTimeout, then is let go: it gets its buffer and one
// resync for the rest, the events after it flow without waiting, and once
// read it delivers again.
func TestFullSubscriptionIsLetGo(t *testing.T) {
	warptest.LeakCheck(t)
	b := &queuedBroker{}
	t.Cleanup(b.wg.Wait)
	pub := b.node(t, "pub")
	sub := b.node(t, "sub", bridge.WithPrefixBuffer(4), bridge.WithStallTimeout(50*time.Millisecond))
	ctx := context.Background()
	ch, err := sub.SubscribePrefix(ctx, "s/")
	if err != nil {
		t.Fatal(err)
	}
	const n = 20
	for i := range n {
		if err := pub.Publish(ctx, fmt.Sprintf("s/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	warptest.Eventually(t, 10*time.Second, func() bool {
		m := sub.Metrics()
		return m.Delivered+m.Dropped >= n
	}, "the receiver did not handle %d events", n)
	if m := sub.Metrics(); m.FlowReleased != 1 || m.Resyncs != 1 {
		t.Errorf("FlowReleased %d, Resyncs %d: want the subscription let go once, with one resync", m.FlowReleased, m.Resyncs)
	}
	next := receiver(t, ch, 10*time.Second)
	for i := range 4 {
		if ev := next("buffered"); ev.Key != fmt.Sprintf("s/%d", i) {
			t.Fatalf("buffered event %d: got %+v", i, ev)
		}
	}
	if ev := next("the resync"); ev.Op != syncbus.OpResync || ev.Key != "s/" {
		t.Fatalf("got %+v, want the resync of s/", ev)
	}
	if err := pub.Publish(ctx, "s/after"); err != nil {
		t.Fatal(err)
	}
	if ev := next("after the reader caught up"); ev.Key != "s/after" {
		t.Fatalf("got %+v, want s/after", ev)
	}
}

// TestPublishWaitsForOwnSubscription: a publish whose node's own prefix
// subscription is full waits for room, until its ctx ends; once the
// reader makes room it goes through.
func TestPublishWaitsForOwnSubscription(t *testing.T) {
	warptest.LeakCheck(t)
	b := &queuedBroker{}
	t.Cleanup(b.wg.Wait)
	c := b.node(t, "solo", bridge.WithPrefixBuffer(2), bridge.WithStallTimeout(time.Minute))
	ctx := context.Background()
	ch, err := c.SubscribePrefix(ctx, "o/")
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"o/1", "o/2"} {
		if err := c.Publish(ctx, k); err != nil {
			t.Fatal(err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = c.Publish(short, "o/3")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Publish with the own subscription full: %v, want the ctx's deadline", err)
	}
	short, cancel = context.WithTimeout(ctx, 50*time.Millisecond)
	err = c.PublishAndAwait(short, "o/3", 1)
	cancel()
	if err == nil {
		t.Fatal("PublishAndAwait with the own subscription full: nil")
	}
	next := receiver(t, ch, 10*time.Second)
	if ev := next("o/1"); ev.Key != "o/1" {
		t.Fatalf("got %+v", ev)
	}
	if err := c.Publish(ctx, "o/4"); err != nil {
		t.Fatalf("Publish once there is room: %v", err)
	}
	for _, k := range []string{"o/2", "o/4"} {
		if ev := next(k); ev.Key != k {
			t.Fatalf("got %+v, want %s", ev, k)
		}
	}
}

// TestHeldDeliveriesAreNotSilence: while a receiver holds its deliveries
// for a full subscription, the publisher's announcements wait behind its
// events; the receiver must not count that wait as the publisher's
// silence. Presence every 20ms would make the publisher failed after
// 60ms: the subscription stays full for ten times that, and the publisher
// stays alive all along.
func TestHeldDeliveriesAreNotSilence(t *testing.T) {
	warptest.LeakCheck(t)
	b := &queuedBroker{}
	t.Cleanup(b.wg.Wait)
	fast := bridge.WithPresenceInterval(20 * time.Millisecond)
	pub := b.node(t, "pub", fast)
	sub := b.node(t, "sub", fast, bridge.WithPrefixBuffer(4), bridge.WithStallTimeout(time.Minute))
	ctx := context.Background()
	wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := sub.WaitForMembers(wctx, 2); err != nil {
		t.Fatal(err)
	}
	ch, err := sub.SubscribePrefix(ctx, "h/")
	if err != nil {
		t.Fatal(err)
	}
	const n = 10
	for i := range n {
		if err := pub.Publish(ctx, fmt.Sprintf("h/%d", i)); err != nil {
			t.Fatal(err)
		}
	}
	warptest.Eventually(t, 10*time.Second, func() bool { return len(ch) == cap(ch)-1 }, "%s", "the subscription never filled")
	// Watch the receiver's view for 600ms (30 presence intervals) while
	// nothing reads.
	for end := time.Now().Add(600 * time.Millisecond); time.Now().Before(end); {
		for _, m := range sub.Members() {
			if m.Name == "pub" && !m.State.Alive() {
				t.Fatalf("the receiver holding its deliveries took pub for %v", m.State)
			}
		}
		<-time.After(5 * time.Millisecond) // a look every 5ms, not a wait for anything
	}
	next := receiver(t, ch, 10*time.Second)
	for i := range n {
		if ev := next(fmt.Sprintf("event %d", i)); ev.Key != fmt.Sprintf("h/%d", i) {
			t.Fatalf("event %d: got %+v", i, ev)
		}
	}
	if m := sub.Metrics(); m.Resyncs != 0 {
		t.Errorf("%d resyncs, want none", m.Resyncs)
	}
}

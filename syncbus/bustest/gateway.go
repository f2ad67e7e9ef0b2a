package bustest

import (
	"context"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// testAll: an all-events subscription gets invalidations of every key and
// lease revocations, published or relayed; Relayed tells the relayed ones
// apart on every node; a relay reaches each node once, the relaying node's
// own subscriptions included, however often and by whom it is relayed.
func (s *suite) testAll(t *testing.T) {
	s.need(t, "All")
	c := s.build(t, threeNodes())
	all := make([]<-chan syncbus.Event, 2)
	for i := range all {
		ch, err := c.allSubscriber(i).SubscribeAll(c.ctx())
		checkNoErr(t, err, c.name(i)+": SubscribeAll")
		all[i] = ch
	}
	keys := c.subscribeAll("al/k")

	// A published event: seen by every all-events subscription, not
	// relayed anywhere.
	checkNoErr(t, c.buses[1].Publish(c.ctx(), "al/k", tag(1)), "n2: Publish")
	var published syncbus.EventID
	for i := range c.buses {
		published = c.nextTagged(keys[i], "al/k", 1, c.name(i)+": key al/k").ID
	}
	for i, ch := range all {
		if ev := c.nextTagged(ch, "al/k", 1, c.name(i)+": all events"); ev.ID != published {
			t.Errorf("%s: all events got ID %v, the key subscription %v", c.name(i), ev.ID, published)
		}
	}
	for i := range c.buses {
		if c.allSubscriber(i).Relayed(published) {
			t.Errorf("%s: Relayed(%v) = true for an event published on the bus", c.name(i), published)
		}
	}

	// A lease revocation reaches all-events subscriptions, not key ones.
	checkNoErr(t, c.buses[2].RevokeLease(c.ctx(), "al/k"), "n3: RevokeLease")
	for i, ch := range all {
		ev := c.next(ch, c.name(i)+": all events, revocation")
		if ev.Op != syncbus.OpLeaseRevoke || ev.Key != "al/k" || ev.Origin != "n3" {
			t.Fatalf("%s: all events got %s, want the revocation of lease al/k by n3", c.name(i), describe(ev))
		}
	}

	if !s.f.Relay {
		expectEmptyAll(t, keys, c, "after a revocation")
		return
	}
	// A relayed event, relayed three times by two nodes: once everywhere.
	ids := syncbus.NewIDGenerator()
	ev := syncbus.Event{
		ID: ids.Next(), Key: "al/k", Op: syncbus.OpInvalidate,
		Origin: "gw-far", Zone: "far-zone", Region: "far-region", Scope: syncbus.ScopeGlobal,
		VectorClock: map[string]uint64{tagKey: 2},
		Time:        time.Now().Truncate(time.Millisecond),
	}
	for _, i := range []int{0, 0, 1} {
		checkNoErr(t, c.relayer(i).Relay(c.ctx(), ev), c.name(i)+": Relay")
	}
	for i := range c.buses {
		got := c.nextTagged(keys[i], "al/k", 2, c.name(i)+": key al/k, relayed event")
		if got.ID != ev.ID || got.Origin != "gw-far" {
			t.Errorf("%s: relayed event arrived as %s", c.name(i), describe(got))
		}
		if !c.allSubscriber(i).Relayed(ev.ID) {
			t.Errorf("%s: Relayed(%v) = false for an event relayed into the bus", c.name(i), ev.ID)
		}
	}
	// A late copy would come from a relaying node's own frames: each of
	// them publishes a sentinel after its relays, and the all-events
	// subscriptions are read until both arrived.
	for i, end := range []string{"al/end1", "al/end2"} {
		if s.f.Quorum {
			checkNoErr(t, c.buses[i].PublishAndAwait(c.ctx(), end, 2), c.name(i)+": PublishAndAwait("+end+")")
		} else {
			checkNoErr(t, c.buses[i].Publish(c.ctx(), end), c.name(i)+": Publish("+end+")")
		}
	}
	for i, ch := range all {
		copies, ends := 0, 0
		for ends < 2 {
			got := c.next(ch, c.name(i)+": all events until both sentinels")
			switch {
			case got.ID == ev.ID:
				copies++
			case got.Key == "al/end1" || got.Key == "al/end2":
				ends++
			default:
				t.Errorf("%s: all events got unexpected %s", c.name(i), describe(got))
			}
		}
		if copies != 1 {
			t.Errorf("%s: the event relayed 3 times reached the all-events subscription %d times, want 1", c.name(i), copies)
		}
	}
	expectEmptyAll(t, keys, c, "after the relays")

	// A relayed revocation reaches all-events subscriptions too.
	rev := ev
	rev.ID, rev.Op = ids.Next(), syncbus.OpLeaseRevoke
	checkNoErr(t, c.relayer(2).Relay(c.ctx(), rev), "n3: Relay of a revocation")
	for i, ch := range all {
		got := c.next(ch, c.name(i)+": all events, relayed revocation")
		if got.ID != rev.ID || got.Op != syncbus.OpLeaseRevoke {
			t.Errorf("%s: all events got %s, want the relayed revocation", c.name(i), describe(got))
		}
	}
}

func expectEmptyAll(t *testing.T, chs []<-chan syncbus.Event, c *cluster, what string) {
	t.Helper()
	for i, ch := range chs {
		expectEmpty(t, ch, c.name(i)+": "+what)
	}
}

// testAllLifecycle: an all-events subscription ends like any other: by
// UnsubscribeAll (twice is fine), by its ctx, and by Close.
func (s *suite) testAllLifecycle(t *testing.T) {
	s.need(t, "All")
	c := s.build(t, threeNodes())
	a := c.allSubscriber(0)
	ch, err := a.SubscribeAll(c.ctx())
	checkNoErr(t, err, "SubscribeAll")
	checkNoErr(t, a.UnsubscribeAll(c.ctx(), ch), "UnsubscribeAll")
	c.expectClosed(ch, "all events after UnsubscribeAll")
	checkNoErr(t, a.UnsubscribeAll(c.ctx(), ch), "second UnsubscribeAll")

	ctx, cancel := context.WithCancel(context.Background())
	ch, err = a.SubscribeAll(ctx)
	checkNoErr(t, err, "SubscribeAll")
	cancel()
	c.expectClosed(ch, "all events after its ctx was cancelled")

	// UnsubscribeAll leaves other kinds of subscription alone.
	k, err := c.buses[0].Subscribe(c.ctx(), "all/k")
	checkNoErr(t, err, "Subscribe")
	checkNoErr(t, a.UnsubscribeAll(c.ctx(), k), "UnsubscribeAll of a key subscription")
	checkNoErr(t, c.buses[1].Publish(c.ctx(), "all/k", tag(1)), "n2: Publish")
	c.nextTagged(k, "all/k", 1, "key subscription after UnsubscribeAll of it")

	ch, err = a.SubscribeAll(c.ctx())
	checkNoErr(t, err, "SubscribeAll")
	checkNoErr(t, c.close(0), "Close")
	c.expectClosed(ch, "all events after Close")
	if _, err := a.SubscribeAll(c.ctx()); err == nil {
		t.Error("SubscribeAll after Close: got nil error, want syncbus.ErrClosed")
	}
}

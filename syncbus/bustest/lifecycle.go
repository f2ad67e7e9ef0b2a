package bustest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/warpmesh/warp/syncbus"
)

// testRelay: a relayed event keeps its identity, reaches every node once
// however many times it is relayed, and a relayed revocation reaches lease
// subscriptions.
func (s *suite) testRelay(t *testing.T) {
	s.need(t, "Relay")
	c := s.build(t, threeNodes())
	exact := c.subscribeAll("r/k")
	var pre []<-chan syncbus.Event
	if s.f.Prefix {
		pre = c.subscribePrefixAll("r/")
	}
	ids := syncbus.NewIDGenerator()
	ev := syncbus.Event{
		ID: ids.Next(), Key: "r/k", Op: syncbus.OpInvalidate,
		Origin: "gw-far", Zone: "far-zone", Region: "far-region", Scope: syncbus.ScopeGlobal,
		VectorClock: map[string]uint64{"far": 3, tagKey: 1},
		Time:        time.Now().Add(-time.Minute).Truncate(time.Millisecond),
	}
	for _, i := range []int{0, 1, 0} {
		checkNoErr(t, c.relayer(i).Relay(c.ctx(), ev), c.name(i)+": Relay")
	}
	same := func(got syncbus.Event, want syncbus.Event, what string) {
		t.Helper()
		if got.ID != want.ID || got.Key != want.Key || got.Op != want.Op || got.Origin != want.Origin ||
			got.Zone != want.Zone || got.Region != want.Region || got.Scope != want.Scope ||
			!maps.Equal(got.VectorClock, want.VectorClock) || got.Time.Sub(want.Time).Abs() >= time.Millisecond {
			t.Errorf("%s: got %s at %v, want %s at %v", what, describe(got), got.Time, describe(want), want.Time)
		}
	}
	for i := range c.buses {
		same(c.next(exact[i], c.name(i)+": relayed event"), ev, c.name(i)+": relayed event")
	}

	if pre != nil {
		// Sentinels from both relaying nodes mark the end of what the
		// relays could have delivered.
		checkNoErr(t, c.buses[0].Publish(c.ctx(), "r/end", tag(2)), "n1: sentinel")
		checkNoErr(t, c.buses[1].Publish(c.ctx(), "r/end", tag(3)), "n2: sentinel")
		for i := range c.buses {
			copies := 0
			sentinels := map[uint64]bool{}
			for len(sentinels) < 2 {
				got := c.next(pre[i], c.name(i)+": prefix r/")
				switch {
				case got.ID == ev.ID:
					copies++
				case got.Key == "r/end":
					sentinels[tagOf(got)] = true
				default:
					t.Errorf("%s: prefix r/ got unexpected %s", c.name(i), describe(got))
				}
			}
			for _, got := range drain(pre[i]) {
				if got.ID == ev.ID {
					copies++
				}
			}
			if copies != 1 {
				t.Errorf("%s: the event relayed 3 times reached the prefix subscription %d times, want 1", c.name(i), copies)
			}
			expectEmpty(t, exact[i], c.name(i)+": key r/k after the relays")
		}
	}

	lease := c.subscribeLeaseAll("r/l")
	rev := ev
	rev.ID, rev.Key, rev.Op = ids.Next(), "r/l", syncbus.OpLeaseRevoke
	checkNoErr(t, c.relayer(2).Relay(c.ctx(), rev), "n3: Relay of a revocation")
	for i := range c.buses {
		same(c.next(lease[i], c.name(i)+": relayed revocation"), rev, c.name(i)+": relayed revocation")
	}
}

// membersMatch reports whether ms lists exactly the nodes of c as alive,
// with their zones and regions (members that left are allowed).
func (c *cluster) membersMatch(ms []syncbus.Member) error {
	seen := map[string]bool{}
	for _, m := range ms {
		i := c.index(m.Name)
		if i < 0 {
			if m.State.Alive() {
				return fmt.Errorf("unknown alive member %+v", m)
			}
			continue
		}
		n := c.nodes[i]
		if m.Zone != n.Zone || m.Region != n.Region || !m.State.Alive() {
			return fmt.Errorf("member %+v, want zone %q region %q alive", m, n.Zone, n.Region)
		}
		seen[m.Name] = true
	}
	if len(seen) != len(c.nodes) {
		return fmt.Errorf("%d of %d nodes listed", len(seen), len(c.nodes))
	}
	return nil
}

// testMembers: every node lists every node, with its zone and region, as
// alive.
func (s *suite) testMembers(t *testing.T) {
	s.need(t, "Members")
	c := s.build(t, fiveNodes())
	for i := range c.buses {
		var last error
		eventually(t, s.f.Timeout, c.name(i)+": Members lists every node alive", func() bool {
			last = c.membersMatch(c.lister(i).Members())
			return last == nil
		})
		if last != nil {
			t.Errorf("%s: %v", c.name(i), last)
		}
	}
}

// testLeave: a closed node stops counting as alive: the others list it as
// gone, fail fast for calls that needed it, and keep delivering.
func (s *suite) testLeave(t *testing.T) {
	s.need(t, "Members")
	c := s.build(t, fiveNodes())
	checkNoErr(t, c.close(4), "n5: Close")
	for i := range 4 {
		eventually(t, s.f.Timeout, c.name(i)+": Members no longer lists n5 alive", func() bool {
			for _, m := range c.lister(i).Members() {
				if m.Name == "n5" && m.State.Alive() {
					return false
				}
			}
			return true
		})
	}
	if s.f.Quorum {
		err := c.buses[0].PublishAndAwait(c.ctx(), "lv/k", 4, tag(1))
		checkQuorum(t, err, wantQuorum{
			kind: syncbus.QuorumReplicas, required: 4, available: 3, failFast: true,
		}, "PublishAndAwait(4) after n5 left")
	}
	if s.f.ZoneAcks {
		err := c.buses[0].PublishAndAwaitTopology(c.ctx(), "lv/k", 3, tag(2))
		checkQuorum(t, err, wantQuorum{
			kind: syncbus.QuorumZones, required: 3, available: 2, failFast: true,
		}, "PublishAndAwaitTopology(3) after zone c's only node left")
	}
	subs := make([]<-chan syncbus.Event, 4)
	for i := range subs {
		ch, err := c.buses[i].Subscribe(c.ctx(), "lv/k")
		checkNoErr(t, err, c.name(i)+": Subscribe")
		subs[i] = ch
	}
	checkNoErr(t, c.buses[2].Publish(c.ctx(), "lv/k", tag(3)), "n3: Publish after n5 left")
	for i, ch := range subs {
		c.nextTagged(ch, "lv/k", 3, c.name(i)+": after n5 left")
	}
}

// testMetrics: Published counts this node's publishes, Delivered one per
// subscription that received an event.
func (s *suite) testMetrics(t *testing.T) {
	c := s.build(t, threeNodes())
	base := c.allMetrics()
	n1a, err := c.buses[0].Subscribe(c.ctx(), "m/k")
	checkNoErr(t, err, "n1: Subscribe")
	n1b, err := c.buses[0].Subscribe(c.ctx(), "m/k")
	checkNoErr(t, err, "n1: second Subscribe")
	n2, err := c.buses[1].Subscribe(c.ctx(), "m/k")
	checkNoErr(t, err, "n2: Subscribe")
	var n3 <-chan syncbus.Event
	if s.f.Prefix {
		n3, err = c.prefixer(2).SubscribePrefix(c.ctx(), "m/")
	} else {
		n3, err = c.buses[2].Subscribe(c.ctx(), "m/k")
	}
	checkNoErr(t, err, "n3: subscribe")
	published := []uint64{0, 0, 0}
	delivered := []uint64{0, 0, 0}
	check := func(what string) {
		t.Helper()
		for i := range c.buses {
			ok := func() bool {
				m := c.metrics(i)
				return m.Published-base[i].Published == published[i] && m.Delivered-base[i].Delivered == delivered[i]
			}
			eventually(t, s.f.Timeout, fmt.Sprintf("%s: %s: Published +%d, Delivered +%d", c.name(i), what, published[i], delivered[i]), ok)
		}
	}

	checkNoErr(t, c.buses[0].Publish(c.ctx(), "m/k", tag(1)), "n1: Publish")
	for _, ch := range []<-chan syncbus.Event{n1a, n1b, n2, n3} {
		c.nextTagged(ch, "m/k", 1, "subscription of m/k")
	}
	published[0] = 1
	delivered = []uint64{2, 1, 1}
	check("after one Publish")

	lease, err := c.buses[1].SubscribeLease(c.ctx(), "m/l")
	checkNoErr(t, err, "n2: SubscribeLease")
	checkNoErr(t, c.buses[0].RevokeLease(c.ctx(), "m/l"), "n1: RevokeLease")
	if ev := c.next(lease, "n2: lease m/l"); ev.Op != syncbus.OpLeaseRevoke {
		t.Fatalf("n2: lease m/l got %s", describe(ev))
	}
	published[0], delivered[1] = 2, 2
	check("after RevokeLease")

	if !s.f.Quorum {
		return
	}
	before := c.metrics(0)
	checkNoErr(t, c.buses[0].PublishAndAwait(c.ctx(), "m/k", 2, tag(2)), "n1: PublishAndAwait(2)")
	published[0] = 3
	delivered = []uint64{4, 3, 2}
	check("after PublishAndAwait")
	after := c.metrics(0)
	if got := after.AwaitSatisfied - before.AwaitSatisfied; got != 1 {
		t.Errorf("n1: AwaitSatisfied grew by %d, want 1", got)
	}
	if got := after.AcksReceived - before.AcksReceived; got < 2 {
		t.Errorf("n1: AcksReceived grew by %d, want at least 2", got)
	}
	for i := 1; i < 3; i++ {
		if got := c.metrics(i).AcksSent - base[i].AcksSent; got < 1 {
			t.Errorf("%s: AcksSent grew by %d, want at least 1", c.name(i), got)
		}
	}
}

// testClose: Close closes every subscription channel, is idempotent, makes
// every method return ErrClosed, and leaves the other nodes working.
func (s *suite) testClose(t *testing.T) {
	c := s.build(t, threeNodes())
	b := c.buses[1]
	k, err := b.Subscribe(c.ctx(), "cl/k")
	checkNoErr(t, err, "Subscribe")
	l, err := b.SubscribeLease(c.ctx(), "cl/l")
	checkNoErr(t, err, "SubscribeLease")
	var p <-chan syncbus.Event
	if s.f.Prefix {
		p, err = c.prefixer(1).SubscribePrefix(c.ctx(), "cl/")
		checkNoErr(t, err, "SubscribePrefix")
	}

	checkNoErr(t, c.close(1), "Close")
	checkNoErr(t, c.close(1), "second Close")
	c.expectClosed(k, "key subscription after Close")
	c.expectClosed(l, "lease subscription after Close")
	if p != nil {
		c.expectClosed(p, "prefix subscription after Close")
	}

	isClosed := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, syncbus.ErrClosed) {
			t.Errorf("%s after Close: got %v, want syncbus.ErrClosed", what, err)
		}
	}
	ctx := c.ctx()
	isClosed(b.Publish(ctx, "cl/k"), "Publish")
	isClosed(b.PublishAndAwait(ctx, "cl/k", 1), "PublishAndAwait")
	isClosed(b.PublishAndAwaitTopology(ctx, "cl/k", 1), "PublishAndAwaitTopology")
	_, err = b.Subscribe(ctx, "cl/k")
	isClosed(err, "Subscribe")
	isClosed(b.Unsubscribe(ctx, "cl/k", k), "Unsubscribe")
	isClosed(b.RevokeLease(ctx, "cl/l"), "RevokeLease")
	_, err = b.SubscribeLease(ctx, "cl/l")
	isClosed(err, "SubscribeLease")
	isClosed(b.UnsubscribeLease(ctx, "cl/l", l), "UnsubscribeLease")
	if s.f.Prefix {
		_, err = c.prefixer(1).SubscribePrefix(ctx, "cl/")
		isClosed(err, "SubscribePrefix")
		isClosed(c.prefixer(1).UnsubscribePrefix(ctx, "cl/", p), "UnsubscribePrefix")
	}
	if s.f.Relay {
		ev := syncbus.Event{ID: syncbus.NewIDGenerator().Next(), Key: "cl/k", Origin: "elsewhere", Time: time.Now()}
		isClosed(c.relayer(1).Relay(ctx, ev), "Relay")
	}
	_ = c.metrics(1) // must not panic

	// The others go on.
	a, err := c.buses[0].Subscribe(ctx, "cl/after")
	checkNoErr(t, err, "n1: Subscribe")
	z, err := c.buses[2].Subscribe(ctx, "cl/after")
	checkNoErr(t, err, "n3: Subscribe")
	checkNoErr(t, c.buses[0].Publish(ctx, "cl/after", tag(1)), "n1: Publish after n2 closed")
	c.nextTagged(a, "cl/after", 1, "n1 after n2 closed")
	c.nextTagged(z, "cl/after", 1, "n3 after n2 closed")
	if s.f.Quorum {
		checkNoErr(t, c.buses[0].PublishAndAwait(ctx, "cl/after", 1, tag(2)), "n1: PublishAndAwait(1) after n2 closed")
	}
}

// testLeaks: closing every bus stops every goroutine they started.
func (s *suite) testLeaks(t *testing.T) {
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, s.f.LeakIgnore...)
	c := s.build(t, threeNodes())
	subs := c.subscribeAll("lk/k")
	ctx, cancel := context.WithCancel(context.Background())
	if _, err := c.buses[2].SubscribeLease(ctx, "lk/l"); err != nil {
		t.Fatalf("SubscribeLease: %v", err)
	}
	checkNoErr(t, c.buses[0].Publish(c.ctx(), "lk/k", tag(1)), "Publish")
	for i := range c.buses {
		c.nextTagged(subs[i], "lk/k", 1, c.name(i))
	}
	if s.f.Quorum {
		checkNoErr(t, c.buses[1].PublishAndAwait(c.ctx(), "lk/k", 2, tag(2)), "PublishAndAwait")
	}
	cancel()
	for i := range c.buses {
		checkNoErr(t, c.close(i), c.name(i)+": Close")
	}
	if err := goleak.Find(opts...); err != nil {
		t.Errorf("goroutines left after Close: %v", err)
	}
}

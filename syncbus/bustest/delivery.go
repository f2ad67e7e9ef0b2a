package bustest

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// subscribeAll subscribes key on every node.
func (c *cluster) subscribeAll(key string) []<-chan syncbus.Event {
	c.t.Helper()
	chs := make([]<-chan syncbus.Event, len(c.buses))
	for i, b := range c.buses {
		ch, err := b.Subscribe(c.ctx(), key)
		checkNoErr(c.t, err, fmt.Sprintf("%s: Subscribe(%q)", c.name(i), key))
		chs[i] = ch
	}
	return chs
}

// subscribePrefixAll subscribes prefix on every node.
func (c *cluster) subscribePrefixAll(prefix string) []<-chan syncbus.Event {
	c.t.Helper()
	chs := make([]<-chan syncbus.Event, len(c.buses))
	for i := range c.buses {
		ch, err := c.prefixer(i).SubscribePrefix(c.ctx(), prefix)
		checkNoErr(c.t, err, fmt.Sprintf("%s: SubscribePrefix(%q)", c.name(i), prefix))
		chs[i] = ch
	}
	return chs
}

// subscribeLeaseAll subscribes lease id on every node.
func (c *cluster) subscribeLeaseAll(id string) []<-chan syncbus.Event {
	c.t.Helper()
	chs := make([]<-chan syncbus.Event, len(c.buses))
	for i, b := range c.buses {
		ch, err := b.SubscribeLease(c.ctx(), id)
		checkNoErr(c.t, err, fmt.Sprintf("%s: SubscribeLease(%q)", c.name(i), id))
		chs[i] = ch
	}
	return chs
}

// testDelivery: an event reaches every node, the publisher included, with
// its fields; the first thing a new subscription sees is a real event.
func (s *suite) testDelivery(t *testing.T) {
	c := s.build(t, fiveNodes())
	subs := c.subscribeAll("d/k")

	// Defaults: the publisher's region, local scope, no vector clock.
	from := time.Now()
	checkNoErr(t, c.buses[0].Publish(c.ctx(), "d/k"), "n1: Publish")
	first := make([]syncbus.Event, len(subs))
	for i, ch := range subs {
		first[i] = c.next(ch, c.name(i)+": first event")
		c.checkFields(first[i], 0, "d/k", "eu", syncbus.ScopeLocal, nil, from, time.Now(), c.name(i)+": default publish")
	}

	// Options: WithRegion, WithScope and WithVectorClock travel unchanged.
	vc := map[string]uint64{"n3": 7, tagKey: 2}
	from = time.Now()
	checkNoErr(t, c.buses[2].Publish(c.ctx(), "d/k",
		syncbus.WithRegion("us"), syncbus.WithScope(syncbus.ScopeGlobal), syncbus.WithVectorClock(vc)), "n3: Publish with options")
	var second syncbus.EventID
	for i, ch := range subs {
		ev := c.next(ch, c.name(i)+": second event")
		c.checkFields(ev, 2, "d/k", "us", syncbus.ScopeGlobal, vc, from, time.Now(), c.name(i)+": publish with options")
		if ev.ID == first[i].ID {
			t.Errorf("%s: two publishes share ID %v", c.name(i), ev.ID)
		}
		if first[i].ID != first[0].ID {
			t.Errorf("%s: first publish has ID %v here, %v on %s", c.name(i), first[i].ID, first[0].ID, c.name(0))
		}
		if i == 0 {
			second = ev.ID
		} else if ev.ID != second {
			t.Errorf("%s: second publish has ID %v here, %v on %s", c.name(i), ev.ID, second, c.name(0))
		}
	}
}

// testKeyIsolation: a subscription gets its key only, not another key nor a
// longer key sharing its prefix; two subscriptions of one key both get it.
func (s *suite) testKeyIsolation(t *testing.T) {
	c := s.build(t, threeNodes())
	a := c.subscribeAll("iso/a")
	b := c.subscribeAll("iso/b")
	ax := c.subscribeAll("iso/ax")
	a2, err := c.buses[0].Subscribe(c.ctx(), "iso/a")
	checkNoErr(t, err, "n1: second Subscribe(iso/a)")

	checkNoErr(t, c.buses[1].Publish(c.ctx(), "iso/a", tag(1)), "n2: Publish(iso/a)")
	for i := range c.buses {
		c.nextTagged(a[i], "iso/a", 1, c.name(i)+": iso/a")
	}
	c.nextTagged(a2, "iso/a", 1, "n1: second iso/a subscription")

	checkNoErr(t, c.buses[2].Publish(c.ctx(), "iso/ax", tag(2)), "n3: Publish(iso/ax)")
	for i := range c.buses {
		// The iso/ax subscription is the witness that the node handled the
		// event; the others must not have received it.
		c.nextTagged(ax[i], "iso/ax", 2, c.name(i)+": iso/ax")
		expectEmpty(t, a[i], c.name(i)+": iso/a after a publish of iso/ax")
		expectEmpty(t, b[i], c.name(i)+": iso/b after a publish of iso/ax")
	}
	expectEmpty(t, a2, "n1: second iso/a subscription after a publish of iso/ax")

	checkNoErr(t, c.buses[0].Publish(c.ctx(), "iso/b", tag(3)), "n1: Publish(iso/b)")
	for i := range c.buses {
		c.nextTagged(b[i], "iso/b", 3, c.name(i)+": iso/b")
		expectEmpty(t, a[i], c.name(i)+": iso/a after a publish of iso/b")
		expectEmpty(t, ax[i], c.name(i)+": iso/ax after a publish of iso/b")
	}
}

// testPrefix: prefix subscriptions get the keys they cover, the empty
// prefix gets every key, and lease revocations reach neither.
func (s *suite) testPrefix(t *testing.T) {
	s.need(t, "Prefix")
	c := s.build(t, threeNodes())
	p := c.subscribePrefixAll("p/")
	all := c.subscribePrefixAll("")
	exact := c.subscribeAll("p/1")
	lease := c.subscribeLeaseAll("p/1")

	pubs := []struct {
		from int
		key  string
	}{{0, "p/1"}, {1, "q/1"}, {2, "p/2/x"}}
	for n, pub := range pubs {
		checkNoErr(t, c.buses[pub.from].Publish(c.ctx(), pub.key, tag(uint64(n+1))), "Publish("+pub.key+")")
	}
	for i := range c.buses {
		// Events of different publishers may arrive in any order.
		got := map[string]uint64{}
		for range pubs {
			ev := c.next(all[i], c.name(i)+": empty prefix")
			if ev.Op != syncbus.OpInvalidate {
				t.Fatalf("%s: empty prefix got %s, want an invalidation", c.name(i), describe(ev))
			}
			got[ev.Key] = tagOf(ev)
		}
		if len(got) != 3 || got["p/1"] != 1 || got["q/1"] != 2 || got["p/2/x"] != 3 {
			t.Errorf("%s: empty prefix got %v, want p/1:1 q/1:2 p/2/x:3", c.name(i), got)
		}
		got = map[string]uint64{}
		for range 2 {
			ev := c.next(p[i], c.name(i)+": prefix p/")
			got[ev.Key] = tagOf(ev)
		}
		if len(got) != 2 || got["p/1"] != 1 || got["p/2/x"] != 3 {
			t.Errorf("%s: prefix p/ got %v, want p/1:1 p/2/x:3", c.name(i), got)
		}
		expectEmpty(t, p[i], c.name(i)+": prefix p/ after its two keys")
		c.nextTagged(exact[i], "p/1", 1, c.name(i)+": exact p/1")
		expectEmpty(t, lease[i], c.name(i)+": lease p/1 after invalidations of key p/1")
	}

	checkNoErr(t, c.buses[0].RevokeLease(c.ctx(), "p/1"), "n1: RevokeLease(p/1)")
	for i := range c.buses {
		ev := c.next(lease[i], c.name(i)+": lease p/1")
		if ev.Op != syncbus.OpLeaseRevoke || ev.Key != "p/1" {
			t.Fatalf("%s: lease p/1 got %s, want its revocation", c.name(i), describe(ev))
		}
		expectEmpty(t, all[i], c.name(i)+": empty prefix after a lease revocation")
		expectEmpty(t, p[i], c.name(i)+": prefix p/ after a lease revocation")
		expectEmpty(t, exact[i], c.name(i)+": key p/1 after the revocation of lease p/1")
	}
}

// testLease: revocations reach the lease subscriptions of their ID only,
// and a key named like a lease never meets it.
func (s *suite) testLease(t *testing.T) {
	c := s.build(t, threeNodes())
	lx := c.subscribeLeaseAll("x")
	ly := c.subscribeLeaseAll("y")
	kx := c.subscribeAll("x")
	klx := c.subscribeAll("lease:x")

	from := time.Now()
	checkNoErr(t, c.buses[1].RevokeLease(c.ctx(), "x"), "n2: RevokeLease(x)")
	var id syncbus.EventID
	for i := range c.buses {
		ev := c.next(lx[i], c.name(i)+": lease x")
		if ev.Op != syncbus.OpLeaseRevoke || ev.Key != "x" || ev.Origin != "n2" || ev.Zone != "b" || ev.ID.IsZero() {
			t.Fatalf("%s: lease x got %s, want the revocation of x from n2 in zone b", c.name(i), describe(ev))
		}
		if ev.Time.Before(from.Add(-time.Second)) || ev.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("%s: revocation Time %v is not near now", c.name(i), ev.Time)
		}
		if i == 0 {
			id = ev.ID
		} else if ev.ID != id {
			t.Errorf("%s: revocation ID %v, %s got %v", c.name(i), ev.ID, c.name(0), id)
		}
		expectEmpty(t, ly[i], c.name(i)+": lease y after the revocation of x")
		expectEmpty(t, kx[i], c.name(i)+": key x after the revocation of lease x")
		expectEmpty(t, klx[i], c.name(i)+": key lease:x after the revocation of lease x")
	}

	checkNoErr(t, c.buses[2].Publish(c.ctx(), "x", tag(1)), "n3: Publish(x)")
	checkNoErr(t, c.buses[2].Publish(c.ctx(), "lease:x", tag(2)), "n3: Publish(lease:x)")
	for i := range c.buses {
		c.nextTagged(kx[i], "x", 1, c.name(i)+": key x")
		c.nextTagged(klx[i], "lease:x", 2, c.name(i)+": key lease:x")
		expectEmpty(t, lx[i], c.name(i)+": lease x after invalidations of keys x and lease:x")
	}

	checkNoErr(t, c.buses[0].RevokeLease(c.ctx(), "y"), "n1: RevokeLease(y)")
	for i := range c.buses {
		ev := c.next(ly[i], c.name(i)+": lease y")
		if ev.Op != syncbus.OpLeaseRevoke || ev.Key != "y" || ev.Origin != "n1" {
			t.Fatalf("%s: lease y got %s, want the revocation of y from n1", c.name(i), describe(ev))
		}
		expectEmpty(t, lx[i], c.name(i)+": lease x after the revocation of y")
	}
}

// subKind is one of the three kinds of subscription, for the cases that
// treat them alike.
type subKind struct {
	name        string
	key         string
	subscribe   func(c *cluster, i int, ctx context.Context, key string) (<-chan syncbus.Event, error)
	unsubscribe func(c *cluster, i int, key string, ch <-chan syncbus.Event) error
	publish     func(c *cluster, i int, key string) error
}

func (s *suite) subKinds() []subKind {
	kinds := []subKind{{
		name: "key", key: "u/k",
		subscribe: func(c *cluster, i int, ctx context.Context, key string) (<-chan syncbus.Event, error) {
			return c.buses[i].Subscribe(ctx, key)
		},
		unsubscribe: func(c *cluster, i int, key string, ch <-chan syncbus.Event) error {
			return c.buses[i].Unsubscribe(c.ctx(), key, ch)
		},
		publish: func(c *cluster, i int, key string) error { return c.buses[i].Publish(c.ctx(), key) },
	}, {
		name: "lease", key: "u/l",
		subscribe: func(c *cluster, i int, ctx context.Context, key string) (<-chan syncbus.Event, error) {
			return c.buses[i].SubscribeLease(ctx, key)
		},
		unsubscribe: func(c *cluster, i int, key string, ch <-chan syncbus.Event) error {
			return c.buses[i].UnsubscribeLease(c.ctx(), key, ch)
		},
		publish: func(c *cluster, i int, key string) error { return c.buses[i].RevokeLease(c.ctx(), key) },
	}}
	if s.f.Prefix {
		kinds = append(kinds, subKind{
			name: "prefix", key: "u/p/",
			subscribe: func(c *cluster, i int, ctx context.Context, key string) (<-chan syncbus.Event, error) {
				return c.prefixer(i).SubscribePrefix(ctx, key)
			},
			unsubscribe: func(c *cluster, i int, key string, ch <-chan syncbus.Event) error {
				return c.prefixer(i).UnsubscribePrefix(c.ctx(), key, ch)
			},
			publish: func(c *cluster, i int, key string) error { return c.buses[i].Publish(c.ctx(), key+"x") },
		})
	}
	return kinds
}

// testUnsubscribe: Unsubscribe and ctx cancellation close a channel exactly
// once, in either order and twice over, and leave the other subscriptions
// of the key alone.
func (s *suite) testUnsubscribe(t *testing.T) {
	c := s.build(t, threeNodes())
	for _, k := range s.subKinds() {
		for _, i := range []int{0, 2} {
			what := fmt.Sprintf("%s: %s subscription", c.name(i), k.name)
			keep, err := k.subscribe(c, i, c.ctx(), k.key)
			checkNoErr(t, err, what+": subscribe")

			// Unsubscribe, then again: closed once, second call nil.
			a, err := k.subscribe(c, i, c.ctx(), k.key)
			checkNoErr(t, err, what+": subscribe")
			checkNoErr(t, k.unsubscribe(c, i, k.key, a), what+": unsubscribe")
			c.expectClosed(a, what+" after unsubscribe")
			checkNoErr(t, k.unsubscribe(c, i, k.key, a), what+": second unsubscribe")

			// Cancel, then unsubscribe.
			ctx, cancel := context.WithCancel(context.Background())
			b, err := k.subscribe(c, i, ctx, k.key)
			checkNoErr(t, err, what+": subscribe")
			cancel()
			c.expectClosed(b, what+" after its ctx was cancelled")
			checkNoErr(t, k.unsubscribe(c, i, k.key, b), what+": unsubscribe after cancel")

			// Unsubscribe, then cancel.
			ctx, cancel = context.WithCancel(context.Background())
			d, err := k.subscribe(c, i, ctx, k.key)
			checkNoErr(t, err, what+": subscribe")
			checkNoErr(t, k.unsubscribe(c, i, k.key, d), what+": unsubscribe before cancel")
			cancel()
			c.expectClosed(d, what+" after unsubscribe and cancel")

			// A channel the bus never made, and nil, are refused or
			// ignored, never closed or panicked on.
			foreign := make(chan syncbus.Event)
			_ = k.unsubscribe(c, i, k.key, foreign)
			_ = k.unsubscribe(c, i, k.key, nil)
			select {
			case _, ok := <-foreign:
				if !ok {
					t.Errorf("%s: unsubscribe closed a channel the bus did not make", what)
				}
			default:
			}

			// An already cancelled ctx: an error, or a channel that closes.
			dead, cancelDead := context.WithCancel(context.Background())
			cancelDead()
			if ch, err := k.subscribe(c, i, dead, k.key); err == nil {
				c.expectClosed(ch, what+" with a cancelled ctx")
			}

			// The subscription kept all along still works.
			checkNoErr(t, k.publish(c, 1, k.key), what+": publish")
			ev := c.next(keep, what+": remaining subscription")
			if ev.Op == syncbus.OpResync {
				t.Errorf("%s: remaining subscription got %s, want the published event", what, describe(ev))
			}
			checkNoErr(t, k.unsubscribe(c, i, k.key, keep), what+": unsubscribe the remaining one")
			c.expectClosed(keep, what+" after unsubscribe")
		}
	}
}

// testInvalidInput: empty keys and unrelayable events are refused with
// clear errors, never a panic.
func (s *suite) testInvalidInput(t *testing.T) {
	c := s.build(t, threeNodes())
	b := c.buses[0]
	isInvalid := func(err error, what string) {
		t.Helper()
		if !errors.Is(err, syncbus.ErrInvalidKey) {
			t.Errorf("%s: got %v, want syncbus.ErrInvalidKey", what, err)
		}
	}
	isInvalid(b.Publish(c.ctx(), ""), `Publish("")`)
	_, err := b.Subscribe(c.ctx(), "")
	isInvalid(err, `Subscribe("")`)
	_, err = b.SubscribeLease(c.ctx(), "")
	isInvalid(err, `SubscribeLease("")`)
	isInvalid(b.RevokeLease(c.ctx(), ""), `RevokeLease("")`)
	if s.f.Quorum {
		isInvalid(b.PublishAndAwait(c.ctx(), "", 1), `PublishAndAwait("")`)
	}
	if s.f.ZoneAcks {
		isInvalid(b.PublishAndAwaitTopology(c.ctx(), "", 1), `PublishAndAwaitTopology("")`)
	}
	if s.f.Relay {
		r := c.relayer(0)
		good := syncbus.Event{ID: syncbus.NewIDGenerator().Next(), Key: "bad/k", Origin: "elsewhere", Time: time.Now()}
		ev := good
		ev.Key = ""
		isInvalid(r.Relay(c.ctx(), ev), "Relay with an empty key")
		ev = good
		ev.ID = syncbus.EventID{}
		if r.Relay(c.ctx(), ev) == nil {
			t.Error("Relay with a zero ID: got nil, want an error")
		}
		ev = good
		ev.Op = syncbus.OpResync
		if r.Relay(c.ctx(), ev) == nil {
			t.Error("Relay of a resync: got nil, want an error")
		}
		ev = good
		ev.Op = syncbus.Op(200)
		if r.Relay(c.ctx(), ev) == nil {
			t.Error("Relay with an unknown Op: got nil, want an error")
		}
	}

	// The bus still works afterwards.
	subs := c.subscribeAll("bad/after")
	checkNoErr(t, b.Publish(c.ctx(), "bad/after", tag(1)), "Publish after invalid input")
	for i := range c.buses {
		c.nextTagged(subs[i], "bad/after", 1, c.name(i)+": after invalid input")
	}
}

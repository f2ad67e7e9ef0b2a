package bustest

import (
	"context"
	"fmt"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

// publishAwaitedSeq publishes tags first..last on keyOf(tag) from node 0,
// each awaited by every other node, so every node has delivered each one
// before the next is published: the order of delivery is the order of
// publication on every node.
func (c *cluster) publishAwaitedSeq(first, last uint64, keyOf func(uint64) string) {
	c.t.Helper()
	for n := first; n <= last; n++ {
		ctx, cancel := context.WithTimeout(context.Background(), c.f.Timeout)
		err := c.buses[0].PublishAndAwait(ctx, keyOf(n), len(c.buses)-1, tag(n))
		cancel()
		checkNoErr(c.t, err, fmt.Sprintf("n1: PublishAndAwait(%q, all others) #%d", keyOf(n), n))
	}
}

// waitHandled waits until every node has handled (delivered or dropped)
// want more events than in base. The publisher's own delivery is not
// covered by acknowledgements, so the counters are the barrier.
func (c *cluster) waitHandled(base []syncbus.Metrics, want uint64) {
	c.t.Helper()
	for i := range c.buses {
		eventually(c.t, c.f.Timeout, fmt.Sprintf("%s: %d events delivered or dropped", c.name(i), want), func() bool {
			m := c.metrics(i)
			return (m.Delivered-base[i].Delivered)+(m.Dropped-base[i].Dropped) >= want
		})
	}
}

func (c *cluster) allMetrics() []syncbus.Metrics {
	ms := make([]syncbus.Metrics, len(c.buses))
	for i := range c.buses {
		ms[i] = c.metrics(i)
	}
	return ms
}

// testCoalescing: an exact-key subscription nobody reads keeps exactly the
// newest event; the others are counted as coalesced, and delivery goes on
// once it is read.
func (s *suite) testCoalescing(t *testing.T) {
	s.need(t, "Quorum")
	c := s.build(t, threeNodes())
	subs := c.subscribeAll("co/k")
	base := c.allMetrics()
	const n = 20
	key := func(uint64) string { return "co/k" }
	c.publishAwaitedSeq(1, n, key)
	c.waitHandled(base, n)
	for i := range c.buses {
		c.nextTagged(subs[i], "co/k", n, c.name(i)+": the one event held")
		expectEmpty(t, subs[i], c.name(i)+": after the held event")
		m := c.metrics(i)
		if got := m.Coalesced - base[i].Coalesced; got != n-1 {
			t.Errorf("%s: Coalesced grew by %d, want %d", c.name(i), got, n-1)
		}
		if got := m.Resyncs - base[i].Resyncs; got != 0 {
			t.Errorf("%s: Resyncs grew by %d, want 0", c.name(i), got)
		}
	}
	c.publishAwaitedSeq(n+1, n+1, key)
	for i := range c.buses {
		c.nextTagged(subs[i], "co/k", n+1, c.name(i)+": the event after the reader caught up")
	}
}

// testPrefixOverflow: a prefix subscription nobody reads holds its buffer,
// then one resync with Key = prefix instead of the rest, which is counted
// as dropped; it delivers again once read.
func (s *suite) testPrefixOverflow(t *testing.T) {
	s.need(t, "Prefix", "Quorum")
	c := s.build(t, threeNodes())
	subs := c.subscribePrefixAll("o/")
	base := c.allMetrics()
	size := uint64(s.f.PrefixBuffer)
	published := size + 5
	key := func(n uint64) string { return fmt.Sprintf("o/%d", n) }
	c.publishAwaitedSeq(1, published, key)
	c.waitHandled(base, published)

	for i := range c.buses {
		evs := drain(subs[i])
		var real, resyncs uint64
		for j, ev := range evs {
			switch ev.Op {
			case syncbus.OpInvalidate:
				real++
				if j < int(size) && tagOf(ev) != uint64(j+1) {
					t.Errorf("%s: event %d is %s, want tag %d", c.name(i), j, describe(ev), j+1)
				}
			case syncbus.OpResync:
				resyncs++
				if ev.Key != "o/" {
					t.Errorf("%s: resync with Key %q, want the prefix %q", c.name(i), ev.Key, "o/")
				}
				if j != len(evs)-1 {
					t.Errorf("%s: resync at position %d of %d, want it after the buffered events", c.name(i), j, len(evs))
				}
			default:
				t.Errorf("%s: unexpected %s", c.name(i), describe(ev))
			}
		}
		m := c.metrics(i)
		dropped := m.Dropped - base[i].Dropped
		if real != size || resyncs != 1 {
			t.Errorf("%s: got %d events and %d resyncs, want %d and 1", c.name(i), real, resyncs, size)
		}
		if real+dropped != published {
			t.Errorf("%s: %d events received + %d dropped != %d published", c.name(i), real, dropped, published)
		}
		if got := m.Resyncs - base[i].Resyncs; got != 1 {
			t.Errorf("%s: Resyncs grew by %d, want 1", c.name(i), got)
		}
		if got := m.Delivered - base[i].Delivered; got != size {
			t.Errorf("%s: Delivered grew by %d, want %d", c.name(i), got, size)
		}
	}

	// Caught up: delivery resumes, without another resync.
	c.publishAwaitedSeq(published+1, published+1, key)
	for i := range c.buses {
		c.nextTagged(subs[i], key(published+1), published+1, c.name(i)+": the event after the reader caught up")
		expectEmpty(t, subs[i], c.name(i)+": after catching up")
	}
}

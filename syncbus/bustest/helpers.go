package bustest

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/warpmesh/warp/syncbus"
)

// tagKey is the vector clock entry the suite uses to tell events of one key
// apart: WithVectorClock travels unchanged on every bus.
const tagKey = "bustest"

// tag marks a publish with n.
func tag(n uint64) syncbus.PublishOption {
	return syncbus.WithVectorClock(map[string]uint64{tagKey: n})
}

// tagOf returns the mark of ev, or 0 for an unmarked event.
func tagOf(ev syncbus.Event) uint64 { return ev.VectorClock[tagKey] }

// describe formats an event for failure messages.
func describe(ev syncbus.Event) string {
	return fmt.Sprintf("{Op:%v Key:%q Origin:%q Zone:%q Region:%q Scope:%v tag:%d ID:%v}",
		ev.Op, ev.Key, ev.Origin, ev.Zone, ev.Region, ev.Scope, tagOf(ev), ev.ID)
}

// next receives one event from ch within the suite's timeout; a closed
// channel or a timeout fails the test.
func (c *cluster) next(ch <-chan syncbus.Event, what string) syncbus.Event {
	c.t.Helper()
	timer := time.NewTimer(c.f.Timeout)
	defer timer.Stop()
	select {
	case ev, ok := <-ch:
		if !ok {
			c.t.Fatalf("%s: channel closed while waiting for an event", what)
		}
		return ev
	case <-timer.C:
		c.t.Fatalf("%s: no event within %v", what, c.f.Timeout)
	}
	return syncbus.Event{}
}

// nextTagged receives one event and checks that it is the invalidation of
// key marked n.
func (c *cluster) nextTagged(ch <-chan syncbus.Event, key string, n uint64, what string) syncbus.Event {
	c.t.Helper()
	ev := c.next(ch, what)
	if ev.Op != syncbus.OpInvalidate || ev.Key != key || tagOf(ev) != n {
		c.t.Fatalf("%s: got %s, want the invalidation of %q tagged %d", what, describe(ev), key, n)
	}
	return ev
}

// expectEmpty checks that nothing waits in ch. The suite calls it only once
// the node has handed a later event (a witness) to another of its
// subscriptions, so anything wrongly delivered would already be there.
func expectEmpty(t *testing.T, ch <-chan syncbus.Event, what string) {
	t.Helper()
	select {
	case ev, ok := <-ch:
		if !ok {
			t.Errorf("%s: channel unexpectedly closed", what)
			return
		}
		t.Errorf("%s: unexpected event %s", what, describe(ev))
	default:
	}
}

// expectClosed reads ch until it is closed, within the suite's timeout.
// Events still buffered before the close are allowed.
func (c *cluster) expectClosed(ch <-chan syncbus.Event, what string) {
	c.t.Helper()
	timer := time.NewTimer(c.f.Timeout)
	defer timer.Stop()
	for {
		select {
		case _, ok := <-ch:
			if !ok {
				return
			}
		case <-timer.C:
			c.t.Fatalf("%s: channel not closed within %v", what, c.f.Timeout)
		}
	}
}

// drain returns every event waiting in ch without blocking.
func drain(ch <-chan syncbus.Event) []syncbus.Event {
	var evs []syncbus.Event
	for {
		select {
		case ev, ok := <-ch:
			if !ok {
				return evs
			}
			evs = append(evs, ev)
		default:
			return evs
		}
	}
}

// eventually polls cond until it holds or the timeout passes. It is for
// conditions with no event to wait on, such as counters and member lists.
func eventually(t *testing.T, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not true within %v", what, timeout)
		}
		<-tick.C
	}
}

// checkNoErr fails the test when err is not nil.
func checkNoErr(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// quorumError checks that err reports an unsatisfied quorum and returns it.
func quorumError(t *testing.T, err error, what string) *syncbus.QuorumError {
	t.Helper()
	if err == nil {
		t.Fatalf("%s: got nil, want an error matching syncbus.ErrQuorumNotSatisfied", what)
	}
	if !errors.Is(err, syncbus.ErrQuorumNotSatisfied) {
		t.Fatalf("%s: %v does not match syncbus.ErrQuorumNotSatisfied", what, err)
	}
	var qe *syncbus.QuorumError
	if !errors.As(err, &qe) {
		t.Fatalf("%s: %v (%T) is not a *syncbus.QuorumError", what, err, err)
	}
	return qe
}

// sameStrings compares two lists, nil and empty being equal.
func sameStrings(got, want []string) bool { return slices.Equal(got, want) }

// checkReport checks the invariants of any AckReport of a successful call
// by publisher: nodes sorted, distinct, known and never the publisher;
// zones sorted and distinct.
func (c *cluster) checkReport(r syncbus.AckReport, publisher int, what string) {
	c.t.Helper()
	if !slices.IsSorted(r.Nodes) || len(slices.Compact(slices.Clone(r.Nodes))) != len(r.Nodes) {
		c.t.Errorf("%s: report nodes %v are not sorted and distinct", what, r.Nodes)
	}
	if !slices.IsSorted(r.Zones) || len(slices.Compact(slices.Clone(r.Zones))) != len(r.Zones) {
		c.t.Errorf("%s: report zones %v are not sorted and distinct", what, r.Zones)
	}
	for _, n := range r.Nodes {
		if n == c.name(publisher) {
			c.t.Errorf("%s: report nodes %v include the publisher", what, r.Nodes)
		}
		if c.index(n) < 0 {
			c.t.Errorf("%s: report nodes %v include unknown node %q", what, r.Nodes, n)
		}
	}
}

// index returns the position of the node named name, or -1.
func (c *cluster) index(name string) int {
	return slices.IndexFunc(c.nodes, func(n Node) bool { return n.Name == name })
}

// others returns the sorted names of every node but i.
func (c *cluster) others(i int) []string {
	var names []string
	for j, n := range c.nodes {
		if j != i {
			names = append(names, n.Name)
		}
	}
	slices.Sort(names)
	return names
}

// checkFields checks the fields every delivered event of a publish carries.
func (c *cluster) checkFields(ev syncbus.Event, publisher int, key string, region string, scope syncbus.Scope, vc map[string]uint64, from, to time.Time, what string) {
	c.t.Helper()
	p := c.nodes[publisher]
	if ev.ID.IsZero() {
		c.t.Errorf("%s: zero ID", what)
	}
	if ev.Op != syncbus.OpInvalidate || ev.Key != key {
		c.t.Errorf("%s: got Op %v Key %q, want OpInvalidate %q", what, ev.Op, ev.Key, key)
	}
	if ev.Origin != p.Name || ev.Zone != p.Zone {
		c.t.Errorf("%s: got Origin %q Zone %q, want %q %q", what, ev.Origin, ev.Zone, p.Name, p.Zone)
	}
	if ev.Region != region {
		c.t.Errorf("%s: got Region %q, want %q", what, ev.Region, region)
	}
	if ev.Scope != scope {
		c.t.Errorf("%s: got Scope %v, want %v", what, ev.Scope, scope)
	}
	if !maps.Equal(ev.VectorClock, vc) {
		c.t.Errorf("%s: got VectorClock %v, want %v", what, ev.VectorClock, vc)
	}
	// Transports may round Time; a second either way is plenty on one
	// machine and still catches a missing or garbage time.
	if ev.Time.Before(from.Add(-time.Second)) || ev.Time.After(to.Add(time.Second)) {
		c.t.Errorf("%s: Time %v is not between %v and %v", what, ev.Time, from, to)
	}
}

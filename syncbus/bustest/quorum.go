package bustest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/warpmesh/warp/syncbus"
)

// expectHeld checks that node i's subscription ch already holds the event
// tagged n: the node acknowledged it, and an ack is sent only after
// delivery.
func (c *cluster) expectHeld(i int, ch <-chan syncbus.Event, n uint64, what string) {
	c.t.Helper()
	for _, ev := range drain(ch) {
		if tagOf(ev) == n {
			return
		}
	}
	c.t.Errorf("%s: %s acknowledged the event tagged %d but its subscription does not hold it (acks must follow delivery)", what, c.name(i), n)
}

// checkDelivered checks that the publisher and every node of the report
// hold the event tagged n.
func (c *cluster) checkDelivered(r syncbus.AckReport, subs []<-chan syncbus.Event, key string, n uint64, what string) {
	c.t.Helper()
	for _, name := range r.Nodes {
		if i := c.index(name); i >= 0 {
			c.expectHeld(i, subs[i], n, what)
		}
	}
	c.nextTagged(subs[0], key, n, what+": the publisher's own subscription")
}

// zoneApplied counts the nodes of zone that applied an event by report r:
// those in r.Nodes, plus the publisher in its own zone.
func (c *cluster) zoneApplied(r syncbus.AckReport, publisher int, zone string) int {
	n := 0
	if c.nodes[publisher].Zone == zone {
		n++
	}
	for _, name := range r.Nodes {
		if i := c.index(name); i >= 0 && c.nodes[i].Zone == zone {
			n++
		}
	}
	return n
}

// zoneSize is the number of nodes in zone.
func (c *cluster) zoneSize(zone string) int {
	n := 0
	for _, node := range c.nodes {
		if node.Zone == zone {
			n++
		}
	}
	return n
}

// checkZoneReport checks that every zone of r really counts: q (<= 0
// means 1), or all its nodes if fewer, applied the event according to r.
func (c *cluster) checkZoneReport(r syncbus.AckReport, publisher, q int, what string) {
	c.t.Helper()
	q = max(q, 1)
	for _, z := range r.Zones {
		if got, need := c.zoneApplied(r, publisher, z), min(q, c.zoneSize(z)); got < need {
			c.t.Errorf("%s: zone %q reported with %d of its nodes applied (nodes %v), want %d", what, z, got, r.Nodes, need)
		}
	}
}

// wantQuorum is what a *QuorumError must say.
type wantQuorum struct {
	kind       syncbus.QuorumKind
	required   int
	zoneQuorum int
	available  int
	failFast   bool
	nodes      []string
	zones      []string
	deadline   bool // the cause is context.DeadlineExceeded (else nil)
}

func checkQuorum(t *testing.T, err error, w wantQuorum, what string) {
	t.Helper()
	qe := quorumError(t, err, what)
	if qe.Kind != w.kind || qe.Required != w.required || qe.ZoneQuorum != w.zoneQuorum || qe.FailFast != w.failFast {
		t.Errorf("%s: got Kind %d Required %d ZoneQuorum %d FailFast %v, want %d %d %d %v",
			what, qe.Kind, qe.Required, qe.ZoneQuorum, qe.FailFast, w.kind, w.required, w.zoneQuorum, w.failFast)
	}
	if qe.Available != w.available {
		t.Errorf("%s: got Available %d, want %d", what, qe.Available, w.available)
	}
	if !sameStrings(qe.AckedNodes, w.nodes) {
		t.Errorf("%s: got AckedNodes %v, want %v", what, qe.AckedNodes, w.nodes)
	}
	// A failed-fast call applied nothing; whether it reports the
	// publisher's own zone is left to the bus.
	if w.kind == syncbus.QuorumZones && !w.failFast && !sameStrings(qe.AckedZones, w.zones) {
		t.Errorf("%s: got AckedZones %v, want %v", what, qe.AckedZones, w.zones)
	}
	deadline := errors.Is(err, context.DeadlineExceeded)
	switch {
	case w.deadline && !deadline:
		t.Errorf("%s: %v does not match context.DeadlineExceeded", what, err)
	case !w.deadline && (deadline || qe.Cause != nil):
		t.Errorf("%s: got cause %v, want none (a fail-fast call neither sends nor waits)", what, qe.Cause)
	}
}

// testQuorum: PublishAndAwait is satisfied by acks of distinct other nodes,
// which have delivered the event when they ack; <= 0 means 1.
func (s *suite) testQuorum(t *testing.T) {
	s.need(t, "Quorum")
	c := s.build(t, fiveNodes())
	for round, replicas := range []int{4, 2, 1, 0, -3} {
		key := fmt.Sprintf("q/%d", round)
		subs := c.subscribeAll(key)
		what := fmt.Sprintf("PublishAndAwait(%d)", replicas)
		var r syncbus.AckReport
		n := uint64(round + 1)
		checkNoErr(t, c.buses[0].PublishAndAwait(c.ctx(), key, replicas, tag(n), syncbus.WithAckReport(&r)), what)
		c.checkReport(r, 0, what)
		if want := max(replicas, 1); len(r.Nodes) < want {
			t.Errorf("%s: report nodes %v, want at least %d", what, r.Nodes, want)
		}
		if replicas == 4 && !sameStrings(r.Nodes, c.others(0)) {
			t.Errorf("%s: report nodes %v, want every other node %v", what, r.Nodes, c.others(0))
		}
		c.checkDelivered(r, subs, key, n, what)
	}
}

// testTopology: PublishAndAwaitTopology counts zones, the publisher's own
// included; <= 0 means 1.
func (s *suite) testTopology(t *testing.T) {
	s.need(t, "ZoneAcks")
	c := s.build(t, fiveNodes())
	for round, zones := range []int{3, 2, 1, 0, -2} {
		key := fmt.Sprintf("t/%d", round)
		subs := c.subscribeAll(key)
		what := fmt.Sprintf("PublishAndAwaitTopology(%d)", zones)
		var r syncbus.AckReport
		n := uint64(round + 1)
		checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), key, zones, tag(n), syncbus.WithAckReport(&r)), what)
		c.checkReport(r, 0, what)
		if want := max(zones, 1); len(r.Zones) < want || !slices.Contains(r.Zones, "a") {
			t.Errorf("%s: report zones %v, want at least %d including the publisher's zone a", what, r.Zones, want)
		}
		if zones == 3 && !sameStrings(r.Zones, []string{"a", "b", "c"}) {
			t.Errorf("%s: report zones %v, want [a b c]", what, r.Zones)
		}
		c.checkZoneReport(r, 0, 1, what)
		c.checkDelivered(r, subs, key, n, what)
	}
}

// testZoneQuorum: with WithZoneQuorum(q) a zone counts once q of its nodes,
// or all of them if fewer, applied the event, the publisher counting in
// its own zone.
func (s *suite) testZoneQuorum(t *testing.T) {
	s.need(t, "ZoneAcks", "ZoneQuorum")
	c := s.build(t, fiveNodes())
	cases := []struct {
		zones, q int
		all      bool // every other node is needed
	}{
		{3, 2, true},
		{3, 9, true},
		{2, 2, false},
		{3, 0, false},
	}
	for round, tc := range cases {
		key := fmt.Sprintf("zq/%d", round)
		subs := c.subscribeAll(key)
		what := fmt.Sprintf("PublishAndAwaitTopology(%d, WithZoneQuorum(%d))", tc.zones, tc.q)
		var r syncbus.AckReport
		n := uint64(round + 1)
		checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), key, tc.zones, tag(n),
			syncbus.WithZoneQuorum(tc.q), syncbus.WithAckReport(&r)), what)
		c.checkReport(r, 0, what)
		if len(r.Zones) < tc.zones {
			t.Errorf("%s: report zones %v, want at least %d", what, r.Zones, tc.zones)
		}
		if tc.all && !sameStrings(r.Nodes, c.others(0)) {
			t.Errorf("%s: report nodes %v, want %v (zone a needs n2, zone b both nodes, zone c its only node)", what, r.Nodes, c.others(0))
		}
		c.checkZoneReport(r, 0, tc.q, what)
		c.checkDelivered(r, subs, key, n, what)
	}
}

// testDeadline: with the only node of zone c muted, calls that need it fail
// at their deadline, reporting exactly who acked; calls that do not need
// it succeed; the muted node still delivers.
func (s *suite) testDeadline(t *testing.T) {
	s.need(t, "Quorum")
	c := s.build(t, fiveNodes())
	c.needMute()
	c.mute(4)

	subs := c.subscribeAll("dl/1")
	var r syncbus.AckReport
	checkNoErr(t, c.buses[0].PublishAndAwait(c.ctx(), "dl/1", 3, tag(1), syncbus.WithAckReport(&r)), "PublishAndAwait(3) with n5 muted")
	if !sameStrings(r.Nodes, []string{"n2", "n3", "n4"}) {
		t.Errorf("PublishAndAwait(3) with n5 muted: report nodes %v, want [n2 n3 n4]", r.Nodes)
	}
	c.nextTagged(subs[4], "dl/1", 1, "n5 (muted) delivers")

	subs = c.subscribeAll("dl/2")
	err := c.buses[0].PublishAndAwait(c.deadlineCtx(), "dl/2", 4, tag(2))
	checkQuorum(t, err, wantQuorum{
		kind: syncbus.QuorumReplicas, required: 4, available: 4,
		nodes: []string{"n2", "n3", "n4"}, deadline: true,
	}, "PublishAndAwait(4) with n5 muted")
	for i := range c.buses {
		c.nextTagged(subs[i], "dl/2", 2, c.name(i)+": the event of the failed call is still delivered")
	}

	if !s.f.ZoneAcks {
		return
	}
	subs = c.subscribeAll("dl/3")
	r = syncbus.AckReport{}
	checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), "dl/3", 2, tag(3), syncbus.WithAckReport(&r)), "PublishAndAwaitTopology(2) with n5 muted")
	c.checkZoneReport(r, 0, 1, "PublishAndAwaitTopology(2) with n5 muted")
	if slices.Contains(r.Zones, "c") {
		t.Errorf("PublishAndAwaitTopology(2) with n5 muted: report zones %v include c, whose only node is muted", r.Zones)
	}
	c.nextTagged(subs[4], "dl/3", 3, "n5 (muted) delivers")

	subs = c.subscribeAll("dl/4")
	err = c.buses[0].PublishAndAwaitTopology(c.deadlineCtx(), "dl/4", 3, tag(4))
	checkQuorum(t, err, wantQuorum{
		kind: syncbus.QuorumZones, required: 3, available: 3,
		nodes: []string{"n2", "n3", "n4"}, zones: []string{"a", "b"}, deadline: true,
	}, "PublishAndAwaitTopology(3) with n5 muted")
	c.nextTagged(subs[4], "dl/4", 4, "n5 (muted) delivers")
}

// testZoneQuorumDeadline: with one of zone b's two nodes muted, a zone
// quorum of 2 cannot count zone b.
func (s *suite) testZoneQuorumDeadline(t *testing.T) {
	s.need(t, "ZoneAcks", "ZoneQuorum")
	c := s.build(t, fiveNodes())
	c.needMute()
	c.mute(3)

	subs := c.subscribeAll("zd/1")
	err := c.buses[0].PublishAndAwaitTopology(c.deadlineCtx(), "zd/1", 3, tag(1), syncbus.WithZoneQuorum(2))
	checkQuorum(t, err, wantQuorum{
		kind: syncbus.QuorumZones, required: 3, zoneQuorum: 2, available: 3,
		nodes: []string{"n2", "n3", "n5"}, zones: []string{"a", "c"}, deadline: true,
	}, "PublishAndAwaitTopology(3, WithZoneQuorum(2)) with n4 muted")
	c.nextTagged(subs[3], "zd/1", 1, "n4 (muted) delivers")

	subs = c.subscribeAll("zd/2")
	var r syncbus.AckReport
	checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), "zd/2", 2, tag(2), syncbus.WithZoneQuorum(2), syncbus.WithAckReport(&r)),
		"PublishAndAwaitTopology(2, WithZoneQuorum(2)) with n4 muted")
	c.checkZoneReport(r, 0, 2, "PublishAndAwaitTopology(2, WithZoneQuorum(2)) with n4 muted")
	if slices.Contains(r.Zones, "b") {
		t.Errorf("report zones %v include b, where one of two nodes is muted", r.Zones)
	}
	c.nextTagged(subs[3], "zd/2", 2, "n4 (muted) delivers")
}

// testFailFast: calls the alive members cannot satisfy return at once,
// without waiting and without publishing anything.
func (s *suite) testFailFast(t *testing.T) {
	s.need(t, "Quorum")
	c := s.build(t, fiveNodes())
	exact := c.subscribeAll("ff/k")
	var all []<-chan syncbus.Event
	if s.f.Prefix {
		all = c.subscribePrefixAll("")
	}
	base := c.metrics(0).Published

	// ctx allows a long wait: a nil cause proves the calls did not wait.
	for _, replicas := range []int{5, 50} {
		err := c.buses[0].PublishAndAwait(c.ctx(), "ff/k", replicas, tag(1))
		checkQuorum(t, err, wantQuorum{
			kind: syncbus.QuorumReplicas, required: replicas, available: 4, failFast: true,
		}, fmt.Sprintf("PublishAndAwait(%d) with 4 other nodes", replicas))
	}
	if s.f.ZoneAcks {
		for _, zones := range []int{4, 9} {
			err := c.buses[0].PublishAndAwaitTopology(c.ctx(), "ff/k", zones, tag(2))
			checkQuorum(t, err, wantQuorum{
				kind: syncbus.QuorumZones, required: zones, available: 3, failFast: true,
			}, fmt.Sprintf("PublishAndAwaitTopology(%d) with 3 zones", zones))
		}
	}
	if s.f.ZoneAcks && s.f.ZoneQuorum {
		err := c.buses[0].PublishAndAwaitTopology(c.ctx(), "ff/k", 4, tag(3), syncbus.WithZoneQuorum(2))
		checkQuorum(t, err, wantQuorum{
			kind: syncbus.QuorumZones, required: 4, zoneQuorum: 2, available: 3, failFast: true,
		}, "PublishAndAwaitTopology(4, WithZoneQuorum(2)) with 3 zones")
	}

	// Nothing was sent: the next event everywhere is a sentinel.
	checkNoErr(t, c.buses[0].Publish(c.ctx(), "ff/k", tag(99)), "n1: sentinel Publish")
	for i := range c.buses {
		c.nextTagged(exact[i], "ff/k", 99, c.name(i)+": key ff/k after failed-fast calls")
		expectEmpty(t, exact[i], c.name(i)+": key ff/k after the sentinel")
		if all != nil {
			c.nextTagged(all[i], "ff/k", 99, c.name(i)+": empty prefix after failed-fast calls")
			expectEmpty(t, all[i], c.name(i)+": empty prefix after the sentinel")
		}
	}
	if got := c.metrics(0).Published - base; got != 1 {
		t.Errorf("n1: Published grew by %d, want 1 (failed-fast calls publish nothing)", got)
	}
}

// testSingleNode: a lone node delivers to itself; it has no replicas to
// wait for, but its own zone counts.
func (s *suite) testSingleNode(t *testing.T) {
	c := s.build(t, []Node{{Name: "solo", Zone: "a", Region: "eu"}})
	sub := c.subscribeAll("s/k")[0]
	checkNoErr(t, c.buses[0].Publish(c.ctx(), "s/k", tag(1)), "Publish")
	c.nextTagged(sub, "s/k", 1, "the lone node's own subscription")

	if s.f.Quorum {
		for _, replicas := range []int{1, 0} {
			err := c.buses[0].PublishAndAwait(c.ctx(), "s/k", replicas, tag(2))
			checkQuorum(t, err, wantQuorum{
				kind: syncbus.QuorumReplicas, required: 1, available: 0, failFast: true,
			}, fmt.Sprintf("PublishAndAwait(%d) alone", replicas))
		}
	}
	if s.f.ZoneAcks {
		var r syncbus.AckReport
		checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), "s/k", 1, tag(3), syncbus.WithAckReport(&r)), "PublishAndAwaitTopology(1) alone")
		if len(r.Nodes) != 0 || !sameStrings(r.Zones, []string{"a"}) {
			t.Errorf("PublishAndAwaitTopology(1) alone: report %+v, want no nodes and zones [a]", r)
		}
		c.nextTagged(sub, "s/k", 3, "the lone node's own subscription")
		err := c.buses[0].PublishAndAwaitTopology(c.ctx(), "s/k", 2, tag(4))
		checkQuorum(t, err, wantQuorum{
			kind: syncbus.QuorumZones, required: 2, available: 1, failFast: true,
		}, "PublishAndAwaitTopology(2) alone")
	}
	if s.f.ZoneAcks && s.f.ZoneQuorum {
		checkNoErr(t, c.buses[0].PublishAndAwaitTopology(c.ctx(), "s/k", 1, tag(5), syncbus.WithZoneQuorum(3)),
			"PublishAndAwaitTopology(1, WithZoneQuorum(3)) alone: the zone has one alive node")
		c.nextTagged(sub, "s/k", 5, "the lone node's own subscription")
	}
	expectEmpty(t, sub, "the lone node's subscription after failed-fast calls")
}

package protocol

import (
	"context"
	"slices"
	"time"

	"github.com/warpmesh/warp/syncbus"
	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// await is one awaited publish in flight.
type await struct {
	id, seq uint64
	ev      wire.Event
	tracker *zones.Tracker
	report  bool

	start, deadline time.Time
	// Retransmission schedule.
	attempts int
	nextTry  time.Time
	// relays maps each remote zone to the relay last sent the event;
	// avoid holds the relays that stayed silent (not asked again).
	relays map[string]string
	avoid  map[string]bool
	// sentBoot is, per node, the incarnation the event was last sent to
	// (directly or through a relay): an ack counts only from it. A node
	// restarted since must get the event, and ack it, again.
	sentBoot map[string]uint64
}

// Await publishes ev and waits for acknowledgements until req is met, the
// alive nodes can no longer meet it, or deadline (zero: none). The outcome
// comes in Ready.Outcomes under id (the caller's, unique among those in
// flight), at once when the alive nodes cannot meet req (fail fast: the
// event is not sent). report asks for the acked nodes and zones of a
// success. Seq and the ack flag are set by the Core.
func (c *Core) Await(now time.Time, id uint64, ev wire.Event, req zones.Requirement, deadline time.Time, report bool) {
	if c.closed {
		c.rd.Outcomes = append(c.rd.Outcomes, Outcome{ID: id, Err: zones.NewTracker(c.view.topo, req).Err(syncbus.ErrClosed)})
		return
	}
	if err := zones.CheckFeasible(c.view.topo, req); err != nil {
		c.rd.Outcomes = append(c.rd.Outcomes, Outcome{ID: id, Err: err, FailFast: true})
		return
	}
	c.seq++
	ev.Seq = c.seq
	ev.Flags |= wire.EventAckWanted
	c.ring.add(&ev, now)
	a := &await{
		id: id, seq: ev.Seq, ev: ev, report: report,
		tracker:  zones.NewTracker(c.view.topo, req),
		start:    now,
		deadline: deadline,
		sentBoot: make(map[string]uint64, len(c.view.alive)),
	}
	c.awaits[id] = a
	c.awaitBySeq[a.seq] = a
	if c.view.mode == zones.ModeRelay {
		a.relays = make(map[string]string)
	}
	direct, relays := c.plan(zones.Spread(ev.ID), nil, a.relays)
	c.noteSent(a, nil)
	c.sendEvents(c.arenaEvent(&a.ev), 0, direct, relays)
	c.sent(now)
	if a.tracker.Result() != zones.Pending {
		c.finish(now, id, a, nil) // the publisher's own zone may be all that was asked
		return
	}
	c.schedule(now, a)
}

// arenaEvent copies ev into the arena, as a one-event batch.
func (c *Core) arenaEvent(ev *wire.Event) []wire.Event {
	c.evArena = append(c.evArena, *ev)
	n := len(c.evArena)
	return c.evArena[n-1 : n : n]
}

// noteSent records the incarnation of every node the event now goes to:
// all alive nodes (only), or the ones named.
func (c *Core) noteSent(a *await, only []string) {
	if only != nil {
		for _, n := range only {
			if boot, ok := c.view.bootOf(n); ok {
				a.sentBoot[n] = boot
			}
		}
		return
	}
	for _, p := range c.view.alive {
		a.sentBoot[p.Name] = p.Boot
	}
}

// Cancel ends an awaited publish whose caller stopped waiting (its ctx
// ended): its outcome, with cause, comes in Ready.Outcomes. An ID no
// longer in flight is ignored.
func (c *Core) Cancel(now time.Time, id uint64, cause error) {
	if a, ok := c.awaits[id]; ok {
		c.finish(now, id, a, cause)
	}
}

// finish ends a: satisfied, or with the tracker's error and cause.
func (c *Core) finish(now time.Time, id uint64, a *await, cause error) {
	delete(c.awaits, id)
	delete(c.awaitBySeq, a.seq)
	out := Outcome{ID: id, Latency: now.Sub(a.start)}
	if a.tracker.Result() == zones.Satisfied {
		if a.report {
			out.Report = a.tracker.Report()
		}
	} else {
		out.Err = a.tracker.Err(cause)
	}
	c.rd.Outcomes = append(c.rd.Outcomes, out)
}

// schedule sets a's next retransmission: the slowest unacked node's
// timeout, doubled per attempt, and wakes the Core for it or the deadline.
func (c *Core) schedule(now time.Time, a *await) {
	wait := time.Duration(0)
	for _, n := range a.tracker.Unacked() {
		wait = max(wait, c.rto(n))
	}
	if wait == 0 {
		wait = c.t.RetransmitInitial
	}
	wait = min(wait<<min(a.attempts, 16), c.t.RetransmitMax)
	a.nextTry = now.Add(wait)
	c.wake(a.nextTry)
	if !a.deadline.IsZero() {
		c.wake(a.deadline)
	}
}

// onOwnAcks counts acknowledgements of this node's awaited events.
func (c *Core) onOwnAcks(now time.Time, f *wire.Acks) {
	if f.Boot != c.self.Boot {
		c.drop("stale-ack") // acks of a previous incarnation's events
		return
	}
	for i := range f.Acks {
		ack := &f.Acks[i]
		for _, seq := range ack.Seqs {
			a := c.awaitBySeq[seq]
			if a == nil {
				continue // decided already, or never awaited
			}
			if boot, ok := a.sentBoot[ack.Node]; !ok || boot != ack.Boot {
				c.stats.StaleAcks++
				continue
			}
			if !a.tracker.Ack(ack.Node) {
				continue
			}
			c.stats.AcksReceived++
			if a.attempts == 0 {
				// A first transmission acked: a round trip on the path this
				// node's acks take (through a relay, its hold included).
				c.observeRTT(ack.Node, now.Sub(a.start))
			}
			if a.tracker.Result() != zones.Pending {
				c.finish(now, a.id, a, nil)
			}
		}
	}
}

// awaitsSetTopology applies a membership change to every await: a request
// the alive nodes can no longer satisfy ends at once.
func (c *Core) awaitsSetTopology(now time.Time) {
	for id, a := range c.awaits {
		if err := a.tracker.SetTopology(c.view.topo); err != nil {
			continue // another local node: cannot happen
		}
		if a.tracker.Result() != zones.Pending {
			c.finish(now, id, a, nil)
		}
	}
}

// tickAwaits ends the awaits whose deadline passed and retransmits the
// ones that are due.
func (c *Core) tickAwaits(now time.Time) {
	for id, a := range c.awaits {
		if !a.deadline.IsZero() && !now.Before(a.deadline) {
			c.finish(now, id, a, context.DeadlineExceeded)
			continue
		}
		if !now.Before(a.nextTry) {
			a.attempts++
			c.retransmit(a)
			c.schedule(now, a)
			continue
		}
		c.wake(a.nextTry)
		if !a.deadline.IsZero() {
			c.wake(a.deadline)
		}
	}
}

// retransmit resends an awaited event to the nodes that have not acked,
// through new relays where the old ones stayed silent.
func (c *Core) retransmit(a *await) {
	unacked := a.tracker.Unacked()
	if len(unacked) == 0 {
		return
	}
	if a.attempts == 1 {
		for _, n := range unacked {
			c.expiredRTT(n) // their first timeout was too short
		}
	}
	v := c.view
	var direct []string
	var relayFor map[string]string
	if v.mode == zones.ModeRelay {
		direct, relayFor = c.replanRelays(a, unacked)
	} else {
		direct = unacked
	}
	start := len(c.addrArena)
	for _, n := range direct {
		if addr, ok := v.addrOf(n); ok {
			c.addrArena = append(c.addrArena, addr)
		}
	}
	mid := len(c.addrArena)
	for _, n := range relayFor {
		if addr, ok := v.addrOf(n); ok {
			c.addrArena = append(c.addrArena, addr)
		}
	}
	end := len(c.addrArena)
	if end == start {
		return
	}
	c.noteSent(a, unacked)
	c.sendEvents(c.arenaEvent(&a.ev), wire.FlagRetransmit, c.addrArena[start:mid:mid], c.addrArena[mid:end:end])
	c.stats.Retransmits += uint64(end - start)
}

// replanRelays splits the unacked nodes of a relayed await: nodes of the
// local zone are resent directly; a remote zone whose relay has not acked
// gets another relay (the silent one is avoided from now on); in a remote
// zone whose relay acked, the nodes still missing are resent directly.
func (c *Core) replanRelays(a *await, unacked []string) (direct []string, relays map[string]string) {
	v := c.view
	local := v.topo.LocalZone()
	unackedSet := make(map[string]bool, len(unacked))
	for _, n := range unacked {
		unackedSet[n] = true
	}
	if a.relays == nil {
		a.relays = make(map[string]string)
	}
	silentZones := map[string]bool{}
	for zone, relay := range a.relays {
		if unackedSet[relay] {
			silentZones[zone] = true
			if a.avoid == nil {
				a.avoid = map[string]bool{}
			}
			a.avoid[relay] = true
		}
	}
	for _, n := range unacked {
		zone, _ := v.topo.ZoneOf(n)
		switch {
		case zone == local:
			direct = append(direct, n)
		case silentZones[zone]:
			// The new relay covers the zone.
		case a.relays[zone] == "":
			// No relay was ever picked for this zone (it joined later).
			silentZones[zone] = true
		default:
			direct = append(direct, n)
		}
	}
	avoid := func(name string) bool { return a.avoid[name] }
	for zone := range silentZones {
		tgt, ok := v.topo.PickRelay(zone, zones.Spread(a.ev.ID)+uint64(a.attempts), avoid)
		if !ok {
			continue
		}
		if relays == nil {
			relays = map[string]string{}
		}
		relays[zone] = tgt.Node
		a.relays[zone] = tgt.Node
	}
	slices.Sort(direct)
	return direct, relays
}

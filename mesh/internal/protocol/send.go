package protocol

import (
	"net/netip"
	"slices"
	"time"

	"github.com/warpmesh/warp/wire"
	"github.com/warpmesh/warp/zones"
)

// Publish queues events published on this node for every other node. The
// Core numbers them when they leave: at once while every alive receiver
// has credit, later otherwise (Pending counts the ones held; the caller
// stops feeding the Core beyond Config.PendingLimit). Seq is assigned by
// the Core; the other fields are sent as given (wire.FromSync builds
// them). The caller delivers them to its own subscriptions itself.
func (c *Core) Publish(now time.Time, evs ...wire.Event) {
	if len(evs) == 0 {
		return
	}
	c.pending = append(c.pending, evs...)
	c.flush(now)
}

// flush sends as many pending events as flow control allows.
func (c *Core) flush(now time.Time) {
	n := c.Pending()
	if n == 0 {
		c.flow.endStall(c, now)
		return
	}
	allow := c.flow.allowance(c)
	if !c.closed && allow <= 0 {
		c.flow.stall(c, now)
		return
	}
	if !c.closed {
		n = min(n, allow)
	}
	// Progress: a stall is a time without any, so this one ends here even
	// if the rest must wait again.
	c.flow.endStall(c, now)
	batch := c.pending[c.pendHead : c.pendHead+n]
	c.pendHead += n
	c.sendBatch(now, batch)
	if c.pendHead == len(c.pending) {
		clear(c.pending)
		c.pending, c.pendHead = c.pending[:0], 0
	} else if c.pendHead > len(c.pending)/2 {
		// Slide the held events to the front so the slice does not grow
		// for ever under steady backpressure.
		k := copy(c.pending, c.pending[c.pendHead:])
		clear(c.pending[k:])
		c.pending, c.pendHead = c.pending[:k], 0
	}
	if c.Pending() > 0 {
		c.flow.stall(c, now)
	}
}

// sendBatch numbers evs, keeps them for repair and sends them along one
// plan: the publisher's zone directly, and directly or through one relay
// per remote zone, as the view's mode says.
func (c *Core) sendBatch(now time.Time, evs []wire.Event) {
	start := len(c.evArena)
	for i := range evs {
		c.seq++
		evs[i].Seq = c.seq
		c.ring.add(&evs[i], now)
		c.evArena = append(c.evArena, evs[i])
	}
	batch := c.evArena[start:len(c.evArena):len(c.evArena)]
	c.spread++
	direct, relays := c.plan(c.spread, nil, nil)
	c.sendEvents(batch, 0, direct, relays)
	c.sent(now)
}

// plan returns the addresses one event or batch goes to: directly, and
// to the relays that fan it out in their zones. chosen, when not nil,
// receives each remote zone's relay.
func (c *Core) plan(spread uint64, avoid func(string) bool, chosen map[string]string) (direct, relays []netip.AddrPort) {
	v := c.view
	start := len(c.addrArena)
	var targets [64]zones.Target
	plan := v.topo.AppendPlan(targets[:0], v.mode, spread, avoid)
	for _, t := range plan {
		if !t.Relay {
			if a, ok := v.addrOf(t.Node); ok {
				c.addrArena = append(c.addrArena, a)
			}
		}
	}
	mid := len(c.addrArena)
	for _, t := range plan {
		if t.Relay {
			if a, ok := v.addrOf(t.Node); ok {
				c.addrArena = append(c.addrArena, a)
			}
			if chosen != nil {
				chosen[t.Zone] = t.Node
			}
		}
	}
	end := len(c.addrArena)
	return c.addrArena[start:mid:mid], c.addrArena[mid:end:end]
}

// sendEvents queues the Events frames of evs: plain to direct, marked for
// relaying to relays.
func (c *Core) sendEvents(evs []wire.Event, flags uint8, direct, relays []netip.AddrPort) {
	traffic := TrafficData
	if flags&wire.FlagRetransmit != 0 {
		traffic = TrafficRepair
	}
	if len(direct) > 0 {
		m := c.send(wire.FrameEvents, traffic)
		m.To = direct
		m.Events = c.header(flags)
		m.Events.Events = evs
	}
	if len(relays) > 0 {
		m := c.send(wire.FrameEvents, traffic)
		m.To = relays
		m.Events = c.header(flags | wire.FlagRelay)
		m.Events.Events = evs
	}
}

// header returns the header of the Events frames this node numbers.
func (c *Core) header(flags uint8) wire.Events {
	return wire.Events{Origin: c.self.Name, Boot: c.self.Boot, Zone: c.self.Zone, Region: c.self.Region, Flags: flags}
}

// sent notes that numbered events left at now: digests follow once the
// node goes quiet.
func (c *Core) sent(now time.Time) {
	c.lastSend = now
	c.wake(now.Add(c.t.Digests[0]))
}

// sendDigest tells p the highest number this node assigned, and the number
// after which p receives everything (when p joined this node's view).
// blocked asks p for its credit: this node holds events for want of it.
func (c *Core) sendDigest(p *peer, seq uint64, blocked bool) {
	if !p.Addr.IsValid() {
		return
	}
	traffic := TrafficRepair
	if blocked {
		traffic = TrafficControl
	}
	m := c.send(wire.FrameDigest, traffic, p.Addr)
	m.Digest = wire.Digest{Origin: c.self.Name, Boot: c.self.Boot, Seq: seq, Start: min(p.joinSeq, seq), Blocked: blocked}
}

// tickDigests announces this node's highest number to every alive node
// after it stops sending, on the Timings.Digests schedule.
func (c *Core) tickDigests(now time.Time) {
	if c.seq == 0 {
		return
	}
	if c.seq != c.digestSeq {
		c.digestSeq, c.digestRound = c.seq, 0
	}
	if c.digestRound >= len(c.t.Digests) {
		return
	}
	due := c.lastSend.Add(c.t.Digests[c.digestRound])
	if now.Before(due) {
		c.wake(due)
		return
	}
	c.digestRound++
	c.sendDigests(now)
	if c.digestRound < len(c.t.Digests) {
		c.wake(c.lastSend.Add(c.t.Digests[c.digestRound]))
	}
}

// sendDigests announces this node's highest number to every alive node.
// In relay mode a remote zone gets one digest, through its relay, when
// every node there already has a window of this incarnation (its credit
// says so): for them the digest's start only confirms what they know, so
// one value fits all. A zone with a newcomer gets its digests directly,
// each with the newcomer's own start. While the view has not settled
// (a node arrived less than Timings.ViewSettle ago) the last round goes
// directly to every node: a relay that did not know a node yet passed it
// neither the events nor the earlier digests.
func (c *Core) sendDigests(now time.Time) {
	var via []digestRelay
	if c.digestRound < len(c.t.Digests) || now.Sub(c.lastArrival) >= c.t.ViewSettle {
		via = c.digestRelays()
	}
	for _, p := range c.view.alive {
		if i := slices.IndexFunc(via, func(r digestRelay) bool { return r.zone == p.Zone }); i < 0 || !via[i].ok {
			c.sendDigest(p, c.seq, false)
		}
	}
	for _, r := range via {
		if r.ok {
			m := c.send(wire.FrameDigest, TrafficRepair, r.relay.Addr)
			m.Digest = wire.Digest{Origin: c.self.Name, Boot: c.self.Boot, Seq: c.seq, Start: r.start, Relay: true}
		}
	}
}

// digestRelay is a remote zone's relay for digests, and the start the
// digest carries; ok is cleared when a node of the zone needs its own.
type digestRelay struct {
	zone  string
	relay *peer
	start uint64
	ok    bool
}

// digestRelays returns, in relay mode, each remote zone's relay for
// this round's digests, in the plan's order.
func (c *Core) digestRelays() []digestRelay {
	v := c.view
	if v.mode != zones.ModeRelay {
		return nil
	}
	var targets [64]zones.Target
	via := c.digestVia[:0]
	// Each round through other relays than the last batch's: a node its
	// relay missed (the relay's view lacked it) then hears the digest
	// from another, and repairs.
	for _, t := range v.topo.AppendPlan(targets[:0], v.mode, c.spread+uint64(c.digestRound), nil) {
		if r, ok := v.nodes[t.Node]; ok && t.Relay && r.Addr.IsValid() {
			via = append(via, digestRelay{zone: t.Zone, relay: r, ok: true})
		}
	}
	c.digestVia = via
	for _, p := range v.alive {
		i := slices.IndexFunc(via, func(r digestRelay) bool { return r.zone == p.Zone })
		if i < 0 {
			continue
		}
		if f := c.flow.recv[p.Name]; f == nil || f.boot != p.Boot || !f.credited {
			via[i].ok = false
			continue
		}
		via[i].start = max(via[i].start, min(p.joinSeq, c.seq))
	}
	return via
}

// rto returns the retransmission timeout towards a node.
func (c *Core) rto(name string) time.Duration {
	return c.rtts[name].timeout(c.t.RetransmitInitial, c.t.RetransmitMin, c.t.RetransmitMax)
}

// expiredRTT backs off the timeout towards a node whose ack did not come
// in time.
func (c *Core) expiredRTT(name string) {
	r := c.rtts[name]
	if r == nil {
		r = &rtt{}
		c.rtts[name] = r
	}
	r.expired(c.t.RetransmitInitial, c.t.RetransmitMin, c.t.RetransmitMax)
}

// observeRTT folds a round-trip sample to a node in.
func (c *Core) observeRTT(name string, d time.Duration) {
	r := c.rtts[name]
	if r == nil {
		r = &rtt{}
		c.rtts[name] = r
	}
	r.observe(d)
}

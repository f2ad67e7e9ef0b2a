package protocol

import (
	"net/netip"
	"slices"
	"time"

	"github.com/warpmesh/warp/wire"
)

// aggregator collects, on a relay, the acks of its zone peers for events
// of other origins, to forward them to each origin in as few datagrams as
// their timing allows.
type aggregator struct {
	pending map[originKey]*aggEntry
}

// aggEntry is what a relay holds for one origin incarnation.
type aggEntry struct {
	to       netip.AddrPort     // the origin
	acks     map[string]*aggAck // node -> acks to forward
	waiting  map[uint64]int     // seq -> peer acks still expected
	sentAt   time.Time          // when the events were forwarded, for round-trip samples
	sample   bool               // whether sentAt may be sampled (not a retransmission)
	deadline time.Time
}

type aggAck struct {
	boot uint64
	seqs []uint64
}

func (g *aggregator) init() { g.pending = make(map[originKey]*aggEntry) }

// fanOut forwards a frame this node relays to the other nodes of its zone,
// and prepares to aggregate their acks for the events whose publisher
// waits (seqs).
func (c *Core) fanOut(now time.Time, from netip.AddrPort, f *wire.Events, seqs []uint64) {
	v := c.view
	c.names = v.topo.AppendZonePeers(c.names[:0], c.self.Zone, c.self.Name, f.Origin)
	start := len(c.addrArena)
	for _, n := range c.names {
		if a, ok := v.addrOf(n); ok {
			c.addrArena = append(c.addrArena, a)
		}
	}
	end := len(c.addrArena)
	if end == start {
		return
	}
	evStart := len(c.evArena)
	c.evArena = append(c.evArena, f.Events...)
	traffic := TrafficData
	if f.Flags&wire.FlagRetransmit != 0 {
		traffic = TrafficRepair
	}
	m := c.send(wire.FrameEvents, traffic)
	m.To = c.addrArena[start:end:end]
	m.Events = wire.Events{Origin: f.Origin, Boot: f.Boot, Zone: f.Zone, Region: f.Region,
		Flags: f.Flags &^ wire.FlagRelay, Events: c.evArena[evStart:len(c.evArena):len(c.evArena)]}
	c.stats.Relayed += uint64(len(f.Events))
	if len(seqs) == 0 {
		return
	}
	k := originKey{f.Origin, f.Boot}
	e := c.agg.pending[k]
	if e == nil {
		e = &aggEntry{to: from, acks: make(map[string]*aggAck), waiting: make(map[uint64]int)}
		c.agg.pending[k] = e
	}
	for _, seq := range seqs {
		e.waiting[seq] = end - start
	}
	if e.deadline.IsZero() {
		e.sentAt, e.sample = now, f.Flags&wire.FlagRetransmit == 0
		c.hold = c.relayHold(c.names)
		e.deadline = now.Add(c.hold)
		c.wake(e.deadline)
	}
}

// relayHold is how long a relay holds its peers' acks: twice the slowest
// measured round trip to a peer of its zone, within bounds, so that a
// loaded zone's acks still travel together; RelayHold until measured.
func (c *Core) relayHold(peers []string) time.Duration {
	var slowest time.Duration
	for _, n := range peers {
		if r := c.rtts[n]; r != nil && r.samples > 0 {
			slowest = max(slowest, r.srtt)
		}
	}
	if slowest == 0 {
		return c.t.RelayHold
	}
	return min(max(2*slowest, c.t.RelayHoldMin), c.t.RelayHoldMax)
}

// aggregate records zone peers' acks for another origin's events; they are
// forwarded when every expected ack is in, or at the entry's deadline.
// Acks that come after their entry was flushed start a new entry with the
// same hold, so late acks travel together too.
func (c *Core) aggregate(now time.Time, from netip.AddrPort, f *wire.Acks) {
	k := originKey{f.Origin, f.Boot}
	e := c.agg.pending[k]
	if e == nil {
		to, ok := c.view.addrOf(f.Origin)
		if !ok {
			c.drop("ack-for-unknown")
			return
		}
		e = &aggEntry{to: to, acks: make(map[string]*aggAck), waiting: make(map[uint64]int), deadline: now.Add(c.hold)}
		c.agg.pending[k] = e
		c.wake(e.deadline)
	}
	for _, a := range f.Acks {
		acc := e.acks[a.Node]
		if acc == nil {
			acc = &aggAck{}
			e.acks[a.Node] = acc
		}
		acc.boot = a.Boot
		acc.seqs = append(acc.seqs, a.Seqs...)
		if e.sample && len(a.Seqs) > 0 {
			if _, waited := e.waiting[a.Seqs[0]]; waited {
				c.observeRTT(a.Node, now.Sub(e.sentAt))
			}
		}
		for _, seq := range a.Seqs {
			if n, ok := e.waiting[seq]; ok {
				if n <= 1 {
					delete(e.waiting, seq)
				} else {
					e.waiting[seq] = n - 1
				}
			}
		}
	}
	if len(e.waiting) == 0 && !e.sentAt.IsZero() {
		c.flushEntry(k, e)
	}
	_ = from
}

// tick forwards the entries whose deadline passed.
func (g *aggregator) tick(c *Core, now time.Time) {
	for k, e := range g.pending {
		if !now.Before(e.deadline) {
			c.flushEntry(k, e)
			continue
		}
		c.wake(e.deadline)
	}
}

// flushAll forwards every entry (on close).
func (g *aggregator) flushAll(c *Core) {
	for k, e := range g.pending {
		c.flushEntry(k, e)
	}
}

// flushEntry sends the acks an entry holds in one datagram (more only past
// wire's limits) and forgets the entry.
func (c *Core) flushEntry(k originKey, e *aggEntry) {
	delete(c.agg.pending, k)
	if len(e.acks) == 0 {
		return
	}
	nodes := make([]string, 0, len(e.acks))
	for n := range e.acks {
		nodes = append(nodes, n)
	}
	slices.Sort(nodes)
	var batch []wire.Ack
	total := 0
	send := func() {
		m := c.send(wire.FrameAcks, TrafficData, e.to)
		m.Acks = wire.Acks{Origin: k.name, Boot: k.boot, Acks: batch}
		batch, total = nil, 0
	}
	for _, n := range nodes {
		a := e.acks[n]
		if len(batch) == wire.MaxAckNodes || total+len(a.seqs) > 128 {
			if len(batch) > 0 {
				send()
			}
		}
		batch = append(batch, wire.Ack{Node: n, Boot: a.boot, Seqs: a.seqs})
		total += len(a.seqs)
	}
	if len(batch) > 0 {
		send()
	}
}
